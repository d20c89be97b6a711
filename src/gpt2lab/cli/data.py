"""Data commands: tokenizer train, data prepare."""

from __future__ import annotations


def register(subparsers) -> None:  # filled in with the data pipeline
    del subparsers
