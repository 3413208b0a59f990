"""``make browser`` (a step of ``make test``): a headless browser for the map test, or one line saying why not.

Each case runs the real Makefile target with a ``PATH`` of stand-ins for ``id``, ``apt-get``
and the browser, so nothing is installed and the machine's own browser is never seen.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

MAKE = shutil.which("make")
pytestmark = pytest.mark.skipif(MAKE is None, reason="make not installed")


def stand_in(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    path.chmod(0o755)


def make_browser(tmp_path: Path, *, uid: int, apt: str | None, browser: str | None) -> tuple[str, list[str]]:
    """Run ``make browser``; return its output and the apt-get calls it made."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    calls = tmp_path / "apt-calls"
    stand_in(bin_, "id", f"echo {uid}")
    if apt is not None:  # apt-get records its arguments, then succeeds or fails as told
        stand_in(bin_, "apt-get", f'echo "$*" >> {calls}\n{apt}')
    if browser is not None:
        stand_in(bin_, browser, "exit 0")
    env = {"PATH": str(bin_), "TMPDIR": str(tmp_path)}
    assert MAKE is not None
    done = subprocess.run(
        [MAKE, "--no-print-directory", "-s", "browser"], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr  # never stops `make test`
    lines = calls.read_text(encoding="utf-8").splitlines() if calls.exists() else []
    return done.stdout + done.stderr, lines


@pytest.mark.parametrize("browser", ["chromium", "chromium-browser", "google-chrome"])
def test_a_browser_on_path_means_nothing_to_do(tmp_path: Path, browser: str) -> None:
    out, calls = make_browser(tmp_path, uid=0, apt="exit 0", browser=browser)
    assert (out, calls) == ("", [])


def test_root_with_apt_installs_debian_chromium(tmp_path: Path) -> None:
    out, calls = make_browser(tmp_path, uid=0, apt="exit 0", browser=None)
    assert [c.split()[0] for c in calls] == ["update", "install"]
    assert calls[1].split()[-2:] == ["--no-install-recommends", "chromium"] and "-y" in calls[1].split()
    assert out.strip() == "browser: installed chromium with apt-get"


def test_an_apt_failure_is_one_line_and_make_goes_on(tmp_path: Path) -> None:
    out, calls = make_browser(tmp_path, uid=0, apt="echo 'Temporary failure resolving deb.debian.org'; exit 100",
                              browser=None)  # fmt: skip
    assert [c.split()[0] for c in calls] == ["update"]  # no install after a failed update
    assert len(out.strip().splitlines()) == 1
    assert "could not install chromium" in out and "map test will skip" in out
    log = tmp_path / "vigiamar-browser-install.log"
    assert "Temporary failure" in log.read_text(encoding="utf-8")  # apt's own words, for whoever looks


@pytest.mark.parametrize(("uid", "apt"), [(1000, "exit 0"), (0, None)], ids=["not-root", "no-apt-get"])
def test_without_root_apt_it_says_so_and_installs_nothing(tmp_path: Path, uid: int, apt: str | None) -> None:
    out, calls = make_browser(tmp_path, uid=uid, apt=apt, browser=None)
    assert calls == []
    assert len(out.strip().splitlines()) == 1 and "map test will skip" in out


def test_the_map_test_looks_for_the_same_browsers() -> None:
    from tests.streams import test_maps

    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    names = next(line for line in makefile.splitlines() if line.startswith("BROWSERS")).split(":=")[1].split()
    assert tuple(names) == test_maps.BROWSERS
    if test_maps.CHROMIUM is not None:
        assert os.access(test_maps.CHROMIUM, os.X_OK)
