"""``crossgrad bench``: not written yet (placeholder so the command line parses)."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(subparsers: Any) -> None:
    subparsers.add_parser("bench", help="(not implemented yet)")


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError("crossgrad bench is not implemented yet")
