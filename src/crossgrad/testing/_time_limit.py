"""A time limit for user code: a call that does not return in time is abandoned, not awaited.

The user's function runs in a daemon worker thread, and the caller waits for it at most
``timeout`` seconds.  A thread rather than a subprocess, because the function is the user's
own object, in the user's process: a lambda, a closure or a method works, its prints go where
the user's prints go, and the arrays need no copying between processes.  The price: Python
cannot stop a thread, so an abandoned call keeps running (and, in a busy loop, competing for
the CPU) until it returns or the process exits.  That is why a sweep stops calling user code
soon after its first time-out (see ``_sweep.run``), and why ``crossgrad check`` exits as soon
as it has printed its report.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class TimeLimitExceededError(Exception):
    """The user's code did not return within ``timeout`` seconds."""

    def __init__(self, timeout: float) -> None:
        super().__init__(f"did not return within {timeout:g} s")
        self.timeout = timeout


def check_timeout(timeout: object) -> float | None:
    """Check a ``timeout`` argument: ``None`` (no limit) or a finite number of seconds > 0."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError(
            f"timeout must be a number of seconds or None, got {type(timeout).__name__} {timeout!r}"
        )
    if not 0 < timeout < float("inf"):
        raise ValueError(f"timeout must be a positive, finite number of seconds, got {timeout!r}")
    return float(timeout)


def call_with_time_limit(fn: Callable[..., T], args: tuple[Any, ...], timeout: float | None) -> T:
    """``fn(*args)``, or ``TimeLimitExceededError`` after ``timeout`` seconds (``None``: none).

    An exception raised by ``fn`` is raised here, with its own traceback.
    """
    if timeout is None:
        return fn(*args)
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["result"] = fn(*args)
        except BaseException as exc:  # handed to the caller, raised in its thread
            outcome["error"] = exc

    worker = threading.Thread(target=work, name="crossgrad-user-code", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise TimeLimitExceededError(timeout)
    if "error" in outcome:
        raise outcome["error"]
    result: T = outcome["result"]
    return result
