"""What the subcommands share: usage errors, option types, the backends a command may use."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

BACKENDS = ("torch", "jax", "numeric")
"""The adapters a subcommand can cross-check with (``crossgrad.adapters``)."""


class UsageError(Exception):
    """A user's mistake found after parsing: ``main`` prints it without a traceback, exits 2."""


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    value = non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """An argparse type: an integer of at least 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def names(text: str, known: Sequence[str], what: str) -> tuple[str, ...]:
    """Comma-separated names, each one of ``known``; raises ``ArgumentTypeError`` otherwise."""
    found = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in found if name not in known]
    if unknown or not found:
        raise argparse.ArgumentTypeError(
            f"unknown {what} {', '.join(map(repr, unknown)) or '(none given)'}; "
            f"expected a comma-separated list of {', '.join(known)}"
        )
    return found


def backend_list(text: str) -> tuple[str, ...]:
    """An argparse type: ``torch,jax,numeric`` or any subset, without repeats."""
    found = names(text, BACKENDS, "backend")
    return tuple(dict.fromkeys(found))


def require_backends(backends: Sequence[str]) -> None:
    """Raise ``UsageError`` naming the pip extra to install for a backend that is missing."""
    from .. import adapters

    for name in backends:
        try:
            adapters.get(name)
        except ImportError as exc:
            others = [b for b in backends if b != name]
            instead = f"--backends {','.join(others)}" if others else "--backends numeric"
            raise UsageError(f"{exc} (or leave {name} out, e.g. {instead})") from None
