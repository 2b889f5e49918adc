"""A time limit for user code: a call that does not return in time is abandoned, not awaited.

The user's function runs in a daemon worker thread, and the caller waits for it at most
``timeout`` seconds.  A thread rather than a subprocess, because the function is the user's
own object, in the user's process: a lambda, a closure or a method works, its prints go where
the user's prints go, and the arrays need no copying between processes.  The price: Python
cannot stop a thread, so an abandoned call keeps running (and, in a busy loop, competing for
the CPU) until it returns or the process exits.  That is why a sweep stops calling user code
soon after its first time-out (see ``_sweep.run``), and why ``crossgrad check`` exits as soon
as it has printed its report.

Workers are reused from call to call, since starting a thread costs as much as checking a
small case: an idle worker takes the next call, concurrent callers (sweeps in several threads)
each take a worker of their own, and a call that times out abandons its worker, which exits
once that call returns, if ever.  Every call runs in a fresh, empty ``contextvars`` context,
as in a new thread, so that one call's ``np.errstate`` (or any context variable) does not
leak into the next.
"""

from __future__ import annotations

import contextvars
import queue
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


_Done = tuple[bool, Any]
"""A call's outcome: ``(True, result)`` or ``(False, exception)``."""
_Task = tuple[Callable[..., Any], tuple[Any, ...], "queue.SimpleQueue[_Done]"]
"""A call for a worker: the function, its arguments, where its outcome goes."""


class _Worker:
    """A daemon thread that runs calls handed to it, one at a time, until told to stop.

    ``submit(fn, args)`` returns a queue that receives ``(True, result)`` or ``(False,
    exception)`` when the call is over; ``retire()`` makes the thread exit after the call in
    progress, if any.
    """

    def __init__(self) -> None:
        self._tasks: queue.SimpleQueue[_Task | None] = queue.SimpleQueue()
        thread = threading.Thread(target=self._serve, name="crossgrad-user-code", daemon=True)
        thread.start()

    def submit(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> queue.SimpleQueue[_Done]:
        """Run ``fn(*args)`` in this worker; its outcome arrives on the queue returned."""
        done: queue.SimpleQueue[_Done] = queue.SimpleQueue()
        self._tasks.put((fn, args, done))
        return done

    def retire(self) -> None:
        """Let the thread exit once its current call (if any) returns."""
        self._tasks.put(None)

    def _serve(self) -> None:
        while (task := self._tasks.get()) is not None:
            fn, args, done = task
            try:
                outcome: _Done = (True, contextvars.Context().run(fn, *args))
            except BaseException as exc:  # handed to the caller, raised in its thread
                outcome = (False, exc)
            done.put(outcome)
            del task, fn, args, done, outcome  # hold nothing of a call while idle


_idle: list[_Worker] = []
"""Workers waiting for a call; a caller takes one (or starts one) and gives it back after."""
_idle_lock = threading.Lock()


def call_with_time_limit(fn: Callable[..., T], args: tuple[Any, ...], timeout: float | None) -> T:
    """``fn(*args)``, or ``TimeLimitExceededError`` after ``timeout`` seconds (``None``: none).

    An exception raised by ``fn`` is raised here, with its own traceback.  The call runs in
    an idle worker thread (a new one if none is idle), which is reused afterwards unless the
    call timed out (or the wait was interrupted): then it is abandoned to the call.
    """
    if timeout is None:
        return fn(*args)
    with _idle_lock:
        worker = _idle.pop() if _idle else None
    if worker is None:
        worker = _Worker()
    done = worker.submit(fn, args)
    outcome: _Done | None = None
    try:
        outcome = done.get(timeout=timeout)
    except queue.Empty:
        pass
    finally:
        if outcome is None:  # timed out, or interrupted: the call may still be running
            worker.retire()
    if outcome is None:
        raise TimeLimitExceededError(timeout)
    with _idle_lock:
        _idle.append(worker)
    returned, value = outcome
    if not returned:
        raise value
    result: T = value
    return result
