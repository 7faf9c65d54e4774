"""`studio` sub-commands for this area (filled in by its issue)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this module's sub-commands; each sets `handler=fn(args) -> exit code`."""
