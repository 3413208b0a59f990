"""Build the compiled form of vigiamar's hot modules: ``make compiled`` (about 2 minutes).

mypyc turns the type-annotated modules of ``models/`` and ``detectors/`` (checked by
``mypy --strict``) into C extensions, into ``build/compiled/`` beside the sources, never over
them. :mod:`models.compiled` loads them from there, in every process that imports
``models`` or ``detectors``, while ``build/compiled/manifest.json`` still matches the sources
(hash of every compiled module), the interpreter and ``VIGIAMAR_COMPILED`` is not ``0``;
edit one source and the whole build is set aside until it is built again (compiled modules
call each other directly, so a partial build is never used).

Left interpreted (:data:`INTERPRETED`): the package ``__init__`` files and
:mod:`models.compiled` (they choose where the rest loads from); config loading
(:mod:`models.settings`, :mod:`models.configuring`, :mod:`detectors.registry`: they run once
and read annotations); and :mod:`models.errors`, whose classes other packages subclass, which
a compiled class refuses. :mod:`detectors.pipeline` is compiled: the worker's metrics and the
benchmarks time its ``push`` through the partition engine's ``push_record``, not by replacing
the method.

    python tools/compile.py            # build (or rebuild) build/compiled/
    python tools/compile.py --clean    # remove it: everything loads from the sources again
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ["VIGIAMAR_COMPILED"] = "0"  # models.compiled.ENV: this process reads the sources, whatever build is there

from models.compiled import BUILD, ENV, PACKAGES, compiled_sources, write_manifest  # noqa: E402

SETUP = """
import sys
from setuptools import setup
from mypyc.build import mypycify

sources = sys.argv[sys.argv.index("--") + 1:]
del sys.argv[sys.argv.index("--"):]
setup(name="vigiamar-compiled", ext_modules=mypycify(["--config-file", "mypy.ini", *sources], opt_level="3"))
"""

MYPY_INI = """[mypy]
python_version = 3.11
ignore_missing_imports = True
"""


def build(jobs: int) -> int:
    sources = compiled_sources()
    with tempfile.TemporaryDirectory(prefix="vigiamar-compile-") as tmp:
        work = Path(tmp)
        # a copy of the two packages: mypyc names modules by their package, and setuptools
        # run in the repository would read its pyproject.toml (the build needs none of it)
        for package in PACKAGES:
            shutil.copytree(REPO / package, work / package, ignore=shutil.ignore_patterns("__pycache__"))
        (work / "setup.py").write_text(SETUP, encoding="utf-8")
        (work / "mypy.ini").write_text(MYPY_INI, encoding="utf-8")
        out = work / "out"
        cmd = [sys.executable, "setup.py", "build_ext", "--build-lib", str(out), "--build-temp", str(work / "tmp")]
        cmd += ["-j", str(jobs), "--", *(str(p.relative_to(REPO)) for p in sources)]
        print(f"compiling {len(sources)} modules with mypyc (about 2 minutes)", flush=True)
        done = subprocess.run(cmd, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if done.returncode != 0:
            print(done.stdout[-6000:], file=sys.stderr)
            print("compile: mypyc failed; nothing changed in build/compiled/", file=sys.stderr)
            return done.returncode
        if BUILD.exists():
            shutil.rmtree(BUILD)
        shutil.copytree(out, BUILD)
    write_manifest(sources)
    print(f"compile: {len(sources)} modules in {BUILD.relative_to(REPO)}/ ({ENV}=0 loads the sources)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clean", action="store_true", help="remove build/compiled/")
    parser.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1, help="parallel compiler jobs")
    args = parser.parse_args(argv)
    if args.clean:
        shutil.rmtree(BUILD, ignore_errors=True)
        print(f"compile: removed {BUILD.relative_to(REPO)}/")
        return 0
    return build(args.jobs)


if __name__ == "__main__":
    sys.exit(main())
