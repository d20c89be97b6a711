"""Atomic writes: whole files only, and the permissions a plain write would give."""

from __future__ import annotations

import os
import stat

import pytest

from gpt2lab.files import atomic_write, atomic_write_text, new_file_mode


def plain_write_mode(path) -> int:
    """The mode `open(path, 'w')` gives a new file here: the reference."""
    with open(path, "w") as f:
        f.write("x")
    mode = stat.S_IMODE(os.stat(path).st_mode)
    os.unlink(path)
    return mode


def test_a_new_file_gets_the_mode_open_would_give(tmp_path):
    expected = plain_write_mode(tmp_path / "plain.txt")
    path = atomic_write_text(tmp_path / "report.md", "# hi\n")
    assert stat.S_IMODE(os.stat(path).st_mode) == expected == new_file_mode()
    assert path.read_text() == "# hi\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]  # no temporary left


def test_a_replaced_file_keeps_its_mode(tmp_path):
    path = tmp_path / "scores.json"
    path.write_text("old")
    path.chmod(0o640)
    atomic_write_text(path, "new")
    assert path.read_text() == "new" and stat.S_IMODE(os.stat(path).st_mode) == 0o640


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")

    def broken(tmp):
        with open(tmp, "w") as f:
            f.write("half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic_write(path, broken)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]
