"""gpt2lab: a GPT-2 you can build, verify, train, break and see inside.

The top-level names are loaded lazily so that `import gpt2lab` stays cheap: the tokenizer
and data tools do not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "GPTConfig": "gpt2lab.config",
    "GPT2LabError": "gpt2lab.errors",
    "GPT": "gpt2lab.model",
    "get_tokenizer": "gpt2lab.tokenizer",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gpt2lab' has no attribute {name!r}")
