"""Package attributes loaded on first use, so importing a package stays cheap. Leaf: stdlib.

    _LAZY = {"train": "gpt2lab.train.run"}        # name -> module that defines it
    __getattr__ = lazy_attributes(__name__, _LAZY)

`from gpt2lab.train import TrainConfig` then imports gpt2lab.train.config only, not torch:
what keeps `gpt2lab --help` instant.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_attributes(package: str, table: Mapping[str, str]) -> Callable[[str], Any]:
    """A module-level `__getattr__` that imports `table[name]` when `name` is first used."""

    def __getattr__(name: str) -> Any:
        if name in table:
            return getattr(importlib.import_module(table[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
