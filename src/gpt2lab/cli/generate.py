"""generate commands (see the module's register function)."""

from __future__ import annotations


def register(subparsers) -> None:  # filled in by the generate work
    del subparsers
