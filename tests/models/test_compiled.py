"""models.compiled: the compiled build is used only whole, only while it matches every source."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import detectors.loitering
from models import compiled


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the layout: two packages, a built tree with its manifest; the decision undone."""
    for package, names in {"models": ("__init__.py", "geo.py", "settings.py"), "detectors": ("loitering.py",)}.items():
        (tmp_path / package).mkdir()
        for name in names:
            (tmp_path / package / name).write_text(f"# {package}/{name}\n", encoding="utf-8")
    build = tmp_path / "build" / "compiled"
    (build / "detectors").mkdir(parents=True)
    monkeypatch.setattr(compiled, "ROOT", tmp_path)
    monkeypatch.setattr(compiled, "BUILD", build)
    monkeypatch.setattr(compiled, "MANIFEST", build / "manifest.json")
    monkeypatch.setattr(compiled, "_active", None)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delenv(compiled.ENV, raising=False)
    compiled.write_manifest(compiled.compiled_sources())
    return tmp_path


def test_the_compiled_sources_leave_out_what_must_stay_interpreted(tree: Path) -> None:
    names = [str(p.relative_to(tree)) for p in compiled.compiled_sources()]
    assert names == ["models/geo.py", "detectors/loitering.py"]  # no __init__, no settings


def test_a_fresh_build_is_used_and_put_first(tree: Path) -> None:
    assert compiled.stale_reason() is None
    path = [str(tree / "detectors")]
    compiled.use("detectors", path)
    assert path == [str(tree / "build" / "compiled" / "detectors"), str(tree / "detectors")]
    assert str(tree / "build" / "compiled") in sys.path


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda t: (t / "detectors" / "loitering.py").write_text("# edited\n"), "detectors/loitering.py changed"),
        (lambda t: (t / "detectors" / "rendezvous.py").write_text("# new\n"), "added or removed"),
        (lambda t: (t / "models" / "geo.py").unlink(), "added or removed"),
        (lambda t: (t / "build" / "compiled" / "manifest.json").write_text("{"), "unreadable"),
    ],
)
def test_any_change_sets_the_whole_build_aside(tree: Path, change: object, words: str) -> None:
    change(tree)  # type: ignore[operator]
    reason = compiled.stale_reason()
    assert reason is not None and words in reason
    path = [str(tree / "detectors")]
    with pytest.warns(RuntimeWarning, match="not using the compiled build"):
        compiled.use("detectors", path)
    assert path == [str(tree / "detectors")]


def test_a_build_for_another_interpreter_is_not_used(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiled, "_interpreter", lambda: "cpython-313 .cpython-313-x86_64-linux-gnu.so")
    assert "built for" in (compiled.stale_reason() or "")


def test_the_environment_turns_it_off_or_requires_it(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(compiled.ENV, "0")
    assert not compiled.active()  # fresh, but not wanted
    monkeypatch.setattr(compiled, "_active", None)
    monkeypatch.setenv(compiled.ENV, "1")
    (tree / "models" / "geo.py").write_text("# edited\n")
    with pytest.raises(RuntimeError, match=r"cannot be used: models/geo\.py changed"):
        compiled.active()


def test_no_build_no_warning(tree: Path, recwarn: pytest.WarningsRecorder) -> None:
    import shutil

    shutil.rmtree(tree / "build")
    assert not compiled.active()
    assert not recwarn.list


def test_this_process_loads_what_the_decision_says() -> None:
    """The real tree: compiled modules exactly when the build is in use (CI runs the suite both ways)."""
    assert detectors.loitering.__file__ is not None
    assert detectors.loitering.__file__.endswith(".py") != compiled.active()
