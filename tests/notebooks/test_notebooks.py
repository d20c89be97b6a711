"""Every notebook runs top to bottom, offline and headless, and is committed without outputs.

Each notebook is executed in a fresh Jupyter kernel (nbclient) with the kernel's working
directory in a temporary folder, so nothing it writes lands in the repository. The inline
matplotlib backend renders with Agg (no display needed), and each notebook must produce
pictures. The notebooks assert their own results (NumPy vs the package vs transformers), so
an exception in any cell fails the test with the cell's traceback.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from notebook_outputs import has_outputs

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = ROOT / "notebooks"
EXPECTED = [
    "01_tokens.ipynb",
    "02_one_attention_head.ipynb",
    "03_gpt2_from_blocks.ipynb",
    "04_training.ipynb",
    "05_looking_inside.ipynb",
    "06_breaking_things.ipynb",
    "07_beyond_attention.ipynb",
]
NOTEBOOKS = [NOTEBOOK_DIR / name for name in EXPECTED]
CELL_TIMEOUT_S = 1800
"""A guard against a kernel that hangs, not a speed limit (speed lives in benchmarks/). The
slowest cell, notebook 4's 500 steps of the default run, takes 4 to 10 minutes on 2 cores
depending on the machine, and ran past 600 s on a slow one."""


def test_the_notebooks_are_all_there():
    assert sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb")) == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert not has_outputs(nb), (
        f"{path.name} holds outputs; run: python tests/notebooks/notebook_outputs.py {path}"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_markdown_cells_are_not_commented_code(path):
    """Text cells hold Markdown, not `# `-prefixed lines (which render as a wall of headings)."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        lines = [line for line in cell.source.splitlines() if line.strip()]
        assert not any(line.startswith("# #") for line in lines), cell.source[:80]
        assert len(lines) < 2 or not all(line.startswith("# ") for line in lines), cell.source[:80]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_runs_top_to_bottom(path, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")  # Agg-rendered
    monkeypatch.delenv("GPT2LAB_ONLINE", raising=False)
    before = sorted(p.name for p in NOTEBOOK_DIR.iterdir())

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError, with the traceback, if any cell fails

    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    assert any("image/png" in out.get("data", {}) for out in outputs), "no figure was drawn"
    as_text = [
        out
        for out in outputs
        if out.get("data", {}).get("text/plain", "").startswith("<Figure")
        and "image/png" not in out.get("data", {})
    ]
    assert not as_text, "a figure was displayed as text, not as a picture"
    assert sorted(p.name for p in NOTEBOOK_DIR.iterdir()) == before, "it wrote into notebooks/"
