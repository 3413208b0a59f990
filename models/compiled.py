"""Where the modules of ``models`` and ``detectors`` load from: their compiled build, when it fits.

``make compiled`` (``tools/compile.py``) builds C extensions of most of both packages with
mypyc into ``build/compiled/`` and records there, in ``manifest.json``, the interpreter it
was built for and a hash of every source it compiled. Each package's ``__init__`` calls
:func:`use`: when the build exists, matches this interpreter and *every* hash still matches
its source, the package looks in the build first (``__path__``), so ``detectors.loitering``
loads from ``build/compiled/detectors/loitering.*.so``; else everything loads from the sources.

All or nothing: compiled modules call each other's functions and classes directly, so one
edited source sets the whole build aside (a warning says so once per process), never just
that module. ``VIGIAMAR_COMPILED=0`` loads the sources whatever is built; ``=1`` requires the
build (an import fails when it cannot be used: CI's compiled pass relies on it). The compiled
modules behave as the sources do (the test suite runs on both, see ``.ci/run``); they are
stricter in two ways the sources' type annotations already promise: an attribute of a
compiled class only takes a value of its declared type, and methods cannot be replaced at
run time (a shell that times the pipeline's ``push`` wraps its own reference to it instead).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import sysconfig
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "compiled"
MANIFEST = BUILD / "manifest.json"
ENV = "VIGIAMAR_COMPILED"
PACKAGES = ("models", "detectors")
# interpreted: package inits and this module (they choose where the rest loads from), config
# loading (runs once, reads annotations), the errors (other packages subclass them, which a
# compiled class refuses)
INTERPRETED = frozenset(
    {
        "models/__init__.py",
        "models/compiled.py",
        "models/errors.py",
        "models/settings.py",
        "models/configuring.py",
        "detectors/__init__.py",
        "detectors/registry.py",
    }
)

_active: bool | None = None


def compiled_sources() -> list[Path]:
    """The sources ``make compiled`` compiles, in a stable order."""
    return [
        path
        for package in PACKAGES
        for path in sorted((ROOT / package).glob("*.py"))
        if f"{package}/{path.name}" not in INTERPRETED
    ]


def _interpreter() -> str:
    return f"{sys.implementation.cache_tag} {sysconfig.get_config_var('EXT_SUFFIX')}"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_manifest(sources: list[Path]) -> None:
    data = {
        "interpreter": _interpreter(),
        "modules": {str(p.relative_to(ROOT)): _digest(p) for p in sources},
    }
    MANIFEST.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def stale_reason() -> str | None:
    """Why the build in ``build/compiled/`` cannot be used (None: it can). Assumes one exists."""
    try:
        data = json.loads(MANIFEST.read_text(encoding="utf-8"))
        modules = dict(data["modules"])
        interpreter = str(data["interpreter"])
    except (OSError, ValueError, KeyError, TypeError):
        return "its manifest is missing or unreadable"
    if interpreter != _interpreter():
        return f"it was built for {interpreter}, this is {_interpreter()}"
    current = {str(p.relative_to(ROOT)) for p in compiled_sources()}
    if set(modules) != current:
        changed = sorted(set(modules) ^ current)
        return f"modules were added or removed since it was built ({', '.join(changed[:3])})"
    for name, digest in sorted(modules.items()):
        try:
            if _digest(ROOT / name) != digest:
                return f"{name} changed since it was built"
        except OSError:
            return f"{name} is missing"
    return None


def active() -> bool:
    """Whether this process loads the compiled build (decided once, on first use)."""
    global _active
    if _active is None:
        _active = False
        wanted = os.environ.get(ENV, "").strip()
        if wanted != "0" and (BUILD.is_dir() or wanted == "1"):
            reason = stale_reason() if BUILD.is_dir() else "there is none (`make compiled` builds it)"
            if reason is None:
                _active = True
                if str(BUILD) not in sys.path:
                    sys.path.append(str(BUILD))  # the shared library every compiled module links to
            elif wanted == "1":
                raise RuntimeError(f"{ENV}=1 but the compiled build in {BUILD} cannot be used: {reason}")
            else:
                warnings.warn(
                    f"vigiamar: not using the compiled build in {BUILD}: {reason}; "
                    "`make compiled` rebuilds it, `make clean` removes it",
                    RuntimeWarning,
                    stacklevel=3,
                )
    return _active


def use(package: str, path: list[str]) -> None:
    """Called by ``package``'s ``__init__`` with its ``__path__``: the build first when active."""
    if active():
        where = str(BUILD / package)
        if where not in path:
            path.insert(0, where)
