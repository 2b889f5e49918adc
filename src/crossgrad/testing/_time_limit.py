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

Handing a call to a thread and its result back costs two thread wake-ups.  So a sweep
starts the calls of all the cases of a Hypothesis example at once (``start_calls``): one
worker makes them one after another, with no wake-up between them, while the caller waits
for all of them (``Calls.wait_all``) and then checks each case in turn; each call's time
limit counts from its own start.  The caller does not check a case while the worker runs
the next call: the two threads would take turns at the GIL, each slowing the other.  Calls
not yet started when the caller is done (a case failed) are not made.
"""

from __future__ import annotations

import contextlib
import contextvars
import queue
import threading
import time
from collections.abc import Callable, Sequence
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


class Call:
    """One call handed to a worker (``start_calls``); ``wait(timeout)`` waits for its outcome.

    ``started`` is when the worker began it (``time.monotonic()``), ``None`` before; a call
    cancelled before it starts is skipped (``lock`` makes the two one step each).
    ``outcome`` is what the caller received from ``done``, once it has.
    """

    __slots__ = ("args", "cancelled", "done", "fn", "lock", "outcome", "started")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], lock: threading.Lock):
        self.fn, self.args, self.lock = fn, args, lock
        self.done: queue.SimpleQueue[_Done] = queue.SimpleQueue()
        self.started: float | None = None
        self.outcome: _Done | None = None
        self.cancelled = False

    def start(self) -> bool:
        """Mark the call started, unless it was cancelled first: whether to run it."""
        with self.lock:
            if not self.cancelled:
                self.started = time.monotonic()
            return not self.cancelled

    def cancel(self) -> bool:
        """Cancel the call if it has not started; whether it is left running (started, its
        outcome neither collected nor arrived)."""
        with self.lock:
            self.cancelled = True
            return self.started is not None and self.outcome is None and self.done.empty()

    def wait(self, timeout: float) -> _Done | None:
        """The outcome, or ``None`` once the call has run ``timeout`` seconds from its start
        (the time before it starts, while the worker finishes earlier calls, does not count)."""
        while self.outcome is None:
            started = self.started
            left = timeout if started is None else started + timeout - time.monotonic()
            try:
                self.outcome = self.done.get(timeout=max(left, 0.0))
            except queue.Empty:
                started = self.started
                if started is not None and time.monotonic() - started >= timeout:
                    return None
        return self.outcome


class _Worker:
    """A daemon thread that runs calls handed to it, one at a time, until told to stop.

    ``submit(calls)`` queues ``Call``s, to run one after another; each one's outcome
    ``(True, result)`` or ``(False, exception)`` arrives on its ``done``; ``retire()`` makes
    the thread exit after the calls queued so far (a cancelled one is skipped).
    """

    def __init__(self) -> None:
        self._tasks: queue.SimpleQueue[Sequence[Call] | None] = queue.SimpleQueue()
        thread = threading.Thread(target=self._serve, name="crossgrad-user-code", daemon=True)
        thread.start()

    def submit(self, calls: Sequence[Call]) -> None:
        """Run ``calls`` in this worker, in order, after the calls already queued (handed
        over at once: the thread wakes once for all of them)."""
        self._tasks.put(calls)

    def retire(self) -> None:
        """Let the thread exit once its queued calls (if any) are over."""
        self._tasks.put(None)

    def _serve(self) -> None:
        while (calls := self._tasks.get()) is not None:
            for call in calls:
                if call.start():
                    try:
                        outcome: _Done = (True, contextvars.Context().run(call.fn, *call.args))
                    except BaseException as exc:  # handed to the caller, raised in its thread
                        outcome = (False, exc)
                    call.done.put(outcome)
                    del outcome
                del call
            del calls  # hold nothing of a call while idle


_idle: list[_Worker] = []
"""Workers waiting for a call; a caller takes one (or starts one) and gives it back after."""
_idle_lock = threading.Lock()


def _outcome(outcome: _Done) -> Any:
    returned, value = outcome
    if not returned:
        raise value
    return value


class Calls:
    """Calls running one after another in one worker thread (``start_calls``).

    ``result(k)`` waits for the calls up to ``k``, in order (a call starts only once those
    before it have returned), each as ``call_with_time_limit`` waits for its one; ``close()``
    (also on leaving a ``with`` block) cancels the calls not yet started and gives the
    worker back for reuse, unless a call timed out or is left running: then the worker is
    abandoned to it, and exits once it returns.
    """

    def __init__(self, fn: Callable[..., Any], argses: Sequence[tuple[Any, ...]], timeout: float):
        self.timeout = timeout
        lock = threading.Lock()
        self.calls = [Call(fn, args, lock) for args in argses]
        with _idle_lock:
            idle = _idle.pop() if _idle else None
        worker = idle if idle is not None else _Worker()
        worker.submit(self.calls)
        self._worker: _Worker | None = worker  # None once closed
        self._abandoned = False

    def result(self, k: int) -> Any:
        """The value call ``k`` returned (or its exception, raised here), or
        ``TimeLimitExceededError`` once it, or a call before it, has run ``timeout`` seconds
        (the calls after one that did not return never start)."""
        outcome: _Done | None = None
        for call in self.calls[: k + 1]:
            outcome = None
            try:
                outcome = call.wait(self.timeout)
            finally:
                if outcome is None:  # timed out, or interrupted: the call may still be running
                    self._abandoned = True
            if outcome is None:
                raise TimeLimitExceededError(self.timeout)
        assert outcome is not None  # (k is an index of self.calls)
        return _outcome(outcome)

    def wait_all(self) -> None:
        """Wait until every call has returned, or until one has run ``timeout`` seconds (the
        calls after it never start): ``result(k)`` of the calls before that one is then at
        hand, and the worker no longer runs beside the caller.

        One wait, for the last call's outcome, however many calls: a wait that returns wakes
        this thread, which then takes the GIL from the worker.  It lasts until the time limit
        of the call running at the time (the first whose outcome has not arrived).
        """
        last = self.calls[-1]
        while last.outcome is None and last.done.empty():
            running = next(c for c in self.calls if c.outcome is None and c.done.empty())
            started = running.started
            left = self.timeout if started is None else started + self.timeout - time.monotonic()
            if left <= 0:
                return  # out of time: result() of that call raises TimeLimitExceededError
            with contextlib.suppress(queue.Empty):  # (at that call's limit: look again)
                last.outcome = last.done.get(timeout=left)

    def close(self) -> None:
        """Cancel the calls not started yet; give the worker back if nothing is left running."""
        if self._worker is None:
            return
        running = [call.cancel() for call in self.calls]  # every call, cancelled in order
        worker, self._worker = self._worker, None
        if self._abandoned or any(running):
            worker.retire()
        else:
            with _idle_lock:
                _idle.append(worker)

    def __enter__(self) -> Calls:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_calls(fn: Callable[..., Any], argses: Sequence[tuple[Any, ...]], timeout: float) -> Calls:
    """Start ``fn(*args)`` for every ``args`` of ``argses``, one after another in one worker
    thread, each to be abandoned ``timeout`` seconds after it starts; see ``Calls``."""
    return Calls(fn, argses, timeout)


def call_with_time_limit(fn: Callable[..., T], args: tuple[Any, ...], timeout: float | None) -> T:
    """``fn(*args)``, or ``TimeLimitExceededError`` after ``timeout`` seconds (``None``: none).

    An exception raised by ``fn`` is raised here, with its own traceback.  The call runs in
    an idle worker thread (a new one if none is idle), which is reused afterwards unless the
    call timed out (or the wait was interrupted): then it is abandoned to the call.
    """
    if timeout is None:
        return fn(*args)
    with start_calls(fn, [args], timeout) as calls:
        result: T = calls.result(0)
        return result
