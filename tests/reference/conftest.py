"""Fixtures for the NumPy reference tests (helpers live in reference_helpers.py)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _torch_threads():
    """Two cores: keep torch from oversubscribing them when tests run under xdist."""
    torch.set_num_threads(2)
