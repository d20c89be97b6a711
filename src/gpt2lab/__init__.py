"""gpt2lab: a GPT-2 you can build, verify, train, break and see inside.

The top-level names are loaded lazily so that `import gpt2lab` stays cheap: the tokenizer
and data tools do not pay for importing torch.
"""

from __future__ import annotations

from gpt2lab.lazy import lazy_attributes

__version__ = "0.1.0"

_LAZY = {
    "GPTConfig": "gpt2lab.config",
    "GPT2LabError": "gpt2lab.errors",
    "GPT": "gpt2lab.model",
    "get_tokenizer": "gpt2lab.tokenizer",
}

__all__ = ["__version__", *_LAZY]

__getattr__ = lazy_attributes(__name__, _LAZY)
