"""Model commands: verify, convert."""

from __future__ import annotations


def register(subparsers) -> None:  # filled in with the model
    del subparsers
