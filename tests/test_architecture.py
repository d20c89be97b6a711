"""Who may import whom (docs/architecture.md), enforced on every import of every module.

Every `import` and `from … import` counts wherever it is written: at module level, inside a
function or method, under `if TYPE_CHECKING:`. Two checks:

- the layer rules: each area (a top-level module or subpackage of gpt2lab) imports only the
  areas ALLOWED lists for it, plus the stdlib-only helpers everyone may use (COMMON);
- no circles: the module graph (one node per .py file) has no cycle of any length.

`test_an_injected_function_level_circle_is_caught` proves both fail on a circle hidden in a
function, the kind a module-level scan misses.
"""

from __future__ import annotations

import ast
import functools
import shutil
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "gpt2lab"

COMMON = {"errors", "files", "lazy", "options"}
"""Leaves of the stdlib kind (one-line errors, atomic writes, lazy attributes, typed options)
that any module may import."""

LEAVES = {"config", "hooks", "tokenizer", "reference", "plots", *COMMON}
"""Import nothing else from gpt2lab (the helpers in COMMON excepted)."""

ALLOWED: dict[str, set[str]] = {
    **{leaf: set() for leaf in LEAVES},
    "model": {"config", "hooks"},
    "data": {"tokenizer"},
    "pretrained": {"config", "model", "tokenizer"},
    "generate": {"model"},
    "quantize": {"model", "generate"},
    "evaluate": {"model", "data"},
    "interp": {"model", "hooks", "data", "plots"},
    "verify": {"config", "model", "pretrained", "reference"},
    "trace": {"model", "pretrained", "reference", "plots"},
    "train": {
        "params",
        "config",
        "model",
        "data",
        "pretrained",
        "tokenizer",
        "generate",
        "plots",
        "reference",
    },
    "lm_eval_adapter": {"evaluate", "generate", "pretrained"},
    "params": {"config", "model", "plots"},
    "experiments": {"config", "data", "train", "evaluate", "interp", "pretrained", "plots"},
    "timeline": {"model", "data", "pretrained", "evaluate", "interp", "train", "plots"},
    "viewer": {"config", "model", "pretrained", "interp", "train", "plots", "timeline"},
    "cli": {
        "config",
        "model",
        "data",
        "tokenizer",
        "pretrained",
        "generate",
        "quantize",
        "evaluate",
        "interp",
        "verify",
        "trace",
        "train",
        "experiments",
        "timeline",
        "viewer",
        "params",
    },
}
"""area -> the areas it may import: the picture in docs/architecture.md."""

NO_TORCH = {"config", "tokenizer", "reference", "plots", *COMMON}


def module_name(path: Path, root: Path) -> str:
    """src/gpt2lab/train/run.py -> 'gpt2lab.train.run'; a package's __init__ is the package."""
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.cache
def known_modules(root: Path) -> frozenset[str]:
    return frozenset(module_name(p, root) for p in root.rglob("*.py"))


def imports_of(path: Path, root: Path) -> set[str]:
    """Every module a file imports, at any depth (absolute names, relative ones resolved).

    `from gpt2lab.train import checkpoint` names the module gpt2lab.train.checkpoint;
    `from gpt2lab.train import TrainConfig` names the package gpt2lab.train.
    """
    known = known_modules(root)
    me = module_name(path, root)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                found.add(submodule if submodule in known else module)
    return found


def area(name: str) -> str:
    """'gpt2lab.train.run' -> 'train'; 'gpt2lab' -> ''."""
    return name.split(".")[1] if name.count(".") else ""


def module_graph(root: Path) -> dict[str, set[str]]:
    """{module: the gpt2lab modules it imports} for every .py file under root."""
    paths = {module_name(p, root): p for p in root.rglob("*.py")}
    graph = {}
    for name, path in paths.items():
        targets = {t for t in imports_of(path, root) if t in paths and t != name}
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def rule_violations(path: Path, root: Path) -> list[str]:
    """Why this file breaks the layer rules ([] when it does not)."""
    me = area(module_name(path, root))
    if me in ("", "__main__"):  # the package's lazy table and `python -m gpt2lab`
        return []
    imported = imports_of(path, root)
    used = {area(m) for m in imported if m.startswith("gpt2lab.")} - {me, ""}
    wrong = sorted(used - ALLOWED[me] - COMMON)
    problems = [f"{me} imports {w}" for w in wrong]
    if me in NO_TORCH and any(m == "torch" or m.startswith("torch.") for m in imported):
        problems.append(f"{me} imports torch")
    return problems


MODULES = sorted(SRC.rglob("*.py"))


def test_every_area_has_a_rule():
    areas = {area(module_name(p, SRC)) for p in MODULES} - {"", "__main__"}
    assert areas == set(ALLOWED), "add the new area to ALLOWED and to docs/architecture.md"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_import_rules(path):
    assert rule_violations(path, SRC) == []


def test_no_import_circles():
    graph = module_graph(SRC)
    assert sum(len(t) for t in graph.values()) > 100  # the scan sees the imports
    assert cycles(graph) == []


def test_an_injected_function_level_circle_is_caught(tmp_path):
    """model -> generate inside a method closes generate -> model: both checks fail."""
    root = tmp_path / "gpt2lab"
    shutil.copytree(SRC, root, ignore=shutil.ignore_patterns("__pycache__"))
    assert cycles(module_graph(root)) == [] and rule_violations(root / "model.py", root) == []
    model = root / "model.py"
    model.write_text(
        model.read_text()
        + "\n\ndef _sample(model, idx):\n"
        + "    from gpt2lab.generate import generate\n\n"
        + "    return generate(model, idx, 1)\n"
    )
    assert cycles(module_graph(root)) == [["gpt2lab.generate", "gpt2lab.model"]]
    assert rule_violations(model, root) == ["model imports generate"]
