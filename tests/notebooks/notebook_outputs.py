"""Keep notebooks in git without outputs, with no pre-commit hook.

    python tests/notebooks/notebook_outputs.py notebooks/*.ipynb

strips every code cell's outputs and execution count (and the widget state Jupyter may add)
in place. `test_notebooks.py` fails, naming this command, when a committed notebook has any.
"""

from __future__ import annotations

import sys

import nbformat

VOLATILE_METADATA = ("widgets", "execution")


def strip(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook without outputs, execution counts and run-time metadata (in place)."""
    for key in VOLATILE_METADATA:
        nb.metadata.pop(key, None)
    for cell in nb.cells:
        for key in VOLATILE_METADATA:
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nb


def has_outputs(nb: nbformat.NotebookNode) -> bool:
    """True when `strip` would change anything."""
    before = nbformat.writes(nb)
    return nbformat.writes(strip(nbformat.reads(before, as_version=4))) != before


def main(paths: list[str]) -> int:
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        if has_outputs(nb):
            nbformat.write(strip(nb), path)
            print(f"stripped {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
