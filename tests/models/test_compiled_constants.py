"""Module constants of the compiled modules are ``Final``, and ``math`` is called by name.

In the compiled build (``make compiled``), a module-level name that is not ``Final`` is read
from the module's dictionary at every use (a hash look-up, about 11 ns), and a function held
in one (``_sin = math.sin``) is called through Python's generic call; a ``Final`` constant is
a C variable and ``math.sin(x)`` a direct call to the C library (about 5× quicker in a loop
of both, measured with mypyc alone). Same values, same bits: only the look-ups go.
"""

from __future__ import annotations

import ast
from pathlib import Path

from models.compiled import INTERPRETED, compiled_sources

ROOT = Path(__file__).resolve().parents[2]


def _constant(node: ast.expr) -> bool:
    """A literal, a tuple of literals and names, or arithmetic on literals and names."""
    if isinstance(node, ast.Constant):
        return node.value is not None
    if isinstance(node, ast.UnaryOp):
        return _constant(node.operand)
    if isinstance(node, ast.BinOp) and not isinstance(node.op, ast.BitOr):  # ``A | B``: a type alias
        return all(_constant(x) or isinstance(x, ast.Name | ast.Attribute) for x in (node.left, node.right))
    if isinstance(node, ast.Tuple):
        return all(isinstance(e, ast.Constant | ast.Name) for e in node.elts)
    return False


def _math_alias(node: ast.expr) -> bool:
    return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "math"


def _plain_constant(node: ast.AnnAssign) -> bool:
    return node.value is not None and _constant(node.value) and "Final" not in ast.unparse(node.annotation)


def _offences(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name != "__all__" and (_constant(node.value) or _math_alias(node.value)):
                found.append(f"{path.name}:{node.lineno} {name}")
        elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Tuple) and _constant(node.value):
            found.append(f"{path.name}:{node.lineno} {ast.unparse(node.targets[0])}")  # A, B = 0, 1
        elif isinstance(node, ast.AnnAssign) and _plain_constant(node):  # X: float = 1.0
            found.append(f"{path.name}:{node.lineno} {ast.unparse(node.target)}")
    for node in ast.walk(tree):  # ``sin = math.sin`` inside a function: the same generic call
        if isinstance(node, ast.FunctionDef):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Assign) and _math_alias(inner.value) and inner.value.attr not in ("inf", "pi"):
                    found.append(f"{path.name}:{inner.lineno} local alias of math.{inner.value.attr}")
    return found


def test_the_compiled_modules_are_the_ones_checked() -> None:
    sources = compiled_sources()
    assert len(sources) >= 30
    assert not {f"{p.parent.name}/{p.name}" for p in sources} & INTERPRETED


def test_module_constants_are_final_and_math_is_called_by_name() -> None:
    offences = [o for path in compiled_sources() for o in _offences(path)]
    assert offences == [], "declare these Final (or call math.* by name): " + ", ".join(offences)


def test_the_check_finds_a_plain_constant_and_an_alias(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import math\nfrom typing import Final\n"
        "A = 1.5\nB: Final = 2.0\nC = (1, 2)\n_sin = math.sin\nAlias = int | str\n"
        "D, E = 0, 1\nF: float = 3.0\nG: Final[tuple[int, ...]] = (1,)\nH: dict[str, int] = {}\n"
        "def f(x: float) -> float:\n    cos = math.cos\n    return cos(x)\n"
    )
    assert _offences(sample) == [
        "sample.py:3 A",
        "sample.py:5 C",
        "sample.py:6 _sin",
        "sample.py:8 (D, E)",
        "sample.py:9 F",
        "sample.py:13 local alias of math.cos",
    ]
