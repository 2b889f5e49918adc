"""Load a user's function from ``MODULE:FUNC``, as ``crossgrad check --impl`` takes it."""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

from ._common import UsageError


def _where(exc: BaseException) -> str:
    """`` (at file:line)`` of the innermost frame, or of a ``SyntaxError``'s text."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f" (at {exc.filename}:{exc.lineno})"
    frames = traceback.extract_tb(exc.__traceback__)
    return f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""


BACKPROP = "FUNC(net, params, x, y) or an object with .backprop(net, params, x, y)"
"""What ``--impl`` names when it checks a backprop."""


def load_function(
    spec: str, option: str = "--impl", signature: str = BACKPROP
) -> Callable[..., Any]:
    """The function ``FUNC`` of module ``MODULE`` named by ``spec = "MODULE:FUNC"``, given
    with ``option``, to be called as ``signature`` says.

    ``MODULE`` is imported from the current directory (put first on ``sys.path`` if it is not
    there already, as ``python -m`` would) or from ``PYTHONPATH``; ``FUNC`` may be dotted
    (``Class.method``).  Every way this can fail, including an exception raised while the
    module is imported, raises ``UsageError`` with what went wrong and where.  An object
    with a ``.backprop`` method is accepted too when ``signature`` is ``BACKPROP``.
    """
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        example = "my_backprop:backprop" if signature == BACKPROP else "my_module:func"
        raise UsageError(f"{option} must be MODULE:FUNC (e.g. {example}), got {spec!r}")
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name + ".").startswith(exc.name + "."):
            raise UsageError(
                f"cannot import {module_name!r}: no such module in the current directory "
                f"({cwd}) or on PYTHONPATH"
            ) from None
        raise UsageError(f"importing {module_name!r} failed: {exc}{_where(exc)}") from None
    except Exception as exc:  # the user's module raised while it was imported
        raise UsageError(
            f"importing {module_name!r} failed: {type(exc).__name__}: {exc}{_where(exc)}"
        ) from None
    value: Any = module
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            where = getattr(module, "__file__", None) or module_name
            raise UsageError(f"{module_name!r} ({where}) has no {attribute!r}") from None
    backprop = signature == BACKPROP and callable(getattr(value, "backprop", None))
    if not callable(value) and not backprop:
        kind = type(value).__name__
        raise UsageError(
            f"{option} {spec} is {'an' if kind[0] in 'aeiou' else 'a'} {kind}, not a function "
            f"{signature}"
        )
    return value
