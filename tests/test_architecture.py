"""Who may import whom (ARCHITECTURE.md), enforced by parsing every module's top-level imports.

Function-level imports are allowed to reach upwards only for thin delegations
(`GPT.from_pretrained` -> pretrained); they are not counted here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "gpt2lab"
LEAVES = {"config", "hooks", "errors", "tokenizer", "reference", "plots"}


def top_level_imports(path: Path) -> set[str]:
    """gpt2lab subpackages/modules a file imports at module level ('gpt2lab.x.y' -> 'x')."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "gpt2lab" and len(parts) > 1:
                found.add(parts[1])
            elif parts[0] in ("torch", "numpy"):
                found.add(parts[0])
    return found


def area(path: Path) -> str:
    rel = path.relative_to(SRC).parts
    return rel[0].removesuffix(".py")


MODULES = sorted(
    p for p in SRC.rglob("*.py") if p.parent != SRC or p.stem not in ("__init__", "__main__")
)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_import_rules(path):
    me, imports = area(path), top_level_imports(path)
    own = imports - {"torch", "numpy", me}
    assert "cli" not in own and "viewer" not in own, "nothing imports the front ends"
    if me in LEAVES:
        assert own <= {"errors"}, f"{me} is a leaf but imports {own}"
    if me == "reference":
        assert "torch" not in imports, "the NumPy reference must not import torch"
    if me in ("tokenizer", "config", "errors", "plots"):
        assert "torch" not in imports
    if me == "model":
        assert own <= {"config", "hooks", "errors"}
    if me != "cli" and me != "viewer":
        assert "experiments" not in own or me == "experiments"
