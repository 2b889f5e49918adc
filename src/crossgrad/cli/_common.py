"""What the subcommands share: usage errors, option types, the backends a command may use."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

BACKENDS = ("torch", "jax", "numeric")
"""The adapters a subcommand can cross-check with (``crossgrad.adapters``)."""


class UsageError(Exception):
    """A user's mistake found after parsing: ``main`` prints it without a traceback, exits 2."""


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    return _integer(text, 1)


def non_negative_int(text: str) -> int:
    """An argparse type: an integer of at least 0."""
    return _integer(text, 0)


def _integer(text: str, low: int) -> int:
    # One wording per kind of mistake: not an integer; an integer out of range (0 and -5 alike).
    wanted = "a positive integer" if low == 1 else "a non-negative integer"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"expected {wanted}, got {value}")
    return value


def positive_seconds(text: str) -> float:
    """An argparse type: a finite number of seconds greater than 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text}")
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


def require_backends(backends: Sequence[str], *, load: bool = True) -> None:
    """Raise ``UsageError`` naming the pip extra to install for a backend that is missing.

    With ``load=False`` the backends whose framework is installed are not imported here: a
    sweep imports them in its own order (a compiling backend first, to compile while the
    others import), and the ``adapters.BackendImportError`` it may raise goes to
    ``missing_backend``.
    """
    from .. import adapters

    available = adapters.available()
    for name in backends:
        if load or name not in available:
            try:
                adapters.get(name)
            except ImportError as exc:
                raise missing_backend(name, exc, backends) from None


def missing_backend(name: str, exc: ImportError, backends: Sequence[str]) -> UsageError:
    """The usage error for backend ``name`` of ``backends``, which failed to import with
    ``exc`` (whose message names the pip extra to install)."""
    from .. import adapters

    available = adapters.available()
    # Suggest only backends that run here: the others asked for, else the oracle.
    others = [b for b in backends if b != name and b in available] or ["numeric"]
    return UsageError(f"{exc} (or leave {name} out, e.g. --backends {','.join(others)})")


def import_testing() -> Any:
    """``crossgrad.testing``, or a ``UsageError`` saying how to install Hypothesis, which it
    draws its cases with (``import crossgrad`` does not need it)."""
    try:
        from .. import testing
    except ModuleNotFoundError as exc:
        if exc.name != "hypothesis":
            raise
        raise UsageError(
            "crossgrad check draws its cases with Hypothesis, which is not installed: "
            "pip install 'crossgrad[test]'"
        ) from None
    return testing


def print_walkthrough(module: Any, walk: Any, form: str, digits: int) -> int:
    """Print ``walk`` in ``form`` (text, json, markdown, latex) with ``module``'s writers
    (``crossgrad.walkthrough`` and ``crossgrad.optimizer_walkthrough`` have the same four);
    return the exit status: 0 when every backend agreed, else 1."""
    if form == "json":
        print(json.dumps(module.to_json(walk), indent=2, ensure_ascii=False))
    elif form == "markdown":
        print(module.to_markdown(walk, digits), end="")
    elif form == "latex":
        print(module.to_latex(walk, digits), end="")
    else:
        print(module.to_text(walk))
    return 0 if walk.ok else 1
