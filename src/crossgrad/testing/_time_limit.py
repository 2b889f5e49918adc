"""A time limit for user code: a call that does not return in time is abandoned, not awaited.

Two ways, one promise.  ``call_with_time_limit`` runs one call in a daemon worker thread,
and the caller waits for it at most ``timeout`` seconds.  A whole run that calls user code
many times (a sweep) runs instead in a thread of its own, calling the user's code right
there, while the thread that started it watches (``Watch``): no thread is woken per call,
and the user's code runs beside the sweep's own work, on the same core (handing each call
to a worker and its result back cost a tenth of a warm sweep's time).  A call that does not
return in time then ends the whole run: the run is abandoned to it.

Threads rather than subprocesses, because the function is the user's own object, in the
user's process: a lambda, a closure or a method works, its prints go where the user's
prints go, and the arrays need no copying between processes.  The price: Python cannot stop
a thread, so an abandoned call keeps running (and, in a busy loop, competing for the CPU)
until it returns or the process exits.  That is why a sweep ends at its first time-out
(see ``_sweep.run``), and why ``crossgrad check`` exits as soon as it has printed its report.

Workers are reused from call to call, since starting a thread costs as much as checking a
small case: an idle worker takes the next call, concurrent callers each take a worker of
their own, and a call that times out abandons its worker, which exits once that call
returns, if ever.  Every call runs in a fresh, empty ``contextvars`` context, as in a new
thread, so that one call's ``np.errstate`` (or any context variable) does not leak into the
next.
"""

from __future__ import annotations

import contextvars
import queue
import threading
import time
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


class _Call:
    """One call handed to a worker; ``wait(timeout)`` waits for its outcome.

    ``started`` is when the worker began it (``time.monotonic()``), ``None`` before.
    """

    __slots__ = ("args", "done", "fn", "started")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.fn, self.args = fn, args
        self.done: queue.SimpleQueue[_Done] = queue.SimpleQueue()
        self.started: float | None = None

    def wait(self, timeout: float) -> _Done | None:
        """The outcome, or ``None`` once the call has run ``timeout`` seconds from its start."""
        while True:
            started = self.started
            left = timeout if started is None else started + timeout - time.monotonic()
            try:
                return self.done.get(timeout=max(left, 0.0))
            except queue.Empty:
                started = self.started
                if started is not None and time.monotonic() - started >= timeout:
                    return None


class _Worker:
    """A daemon thread that runs the calls handed to it, one at a time, until told to stop.

    ``submit(call)`` queues a ``_Call``, whose outcome ``(True, result)`` or ``(False,
    exception)`` arrives on its ``done``; ``retire()`` makes the thread exit after the calls
    queued so far.
    """

    def __init__(self, name: str = "crossgrad-user-code") -> None:
        self._tasks: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        thread = threading.Thread(target=self._serve, name=name, daemon=True)
        thread.start()

    def submit(self, call: _Call) -> None:
        self._tasks.put(call)

    def retire(self) -> None:
        """Let the thread exit once its queued call (if any) is over."""
        self._tasks.put(None)

    def _serve(self) -> None:
        while (call := self._tasks.get()) is not None:
            call.started = time.monotonic()
            try:
                outcome: _Done = (True, contextvars.Context().run(call.fn, *call.args))
            except BaseException as exc:  # handed to the caller, raised in its thread
                outcome = (False, exc)
            call.done.put(outcome)
            del call, outcome  # hold nothing of a call while idle


_idle: list[_Worker] = []
"""Workers waiting for a call; a caller takes one (or starts one) and gives it back after."""
_idle_runs: list[_Worker] = []
"""The same, for the runs of ``Watch``: a new thread would cost each run a full garbage
collection (Hypothesis registers a random generator of its own per thread, and collects
garbage to check it)."""
_idle_lock = threading.Lock()


class Abandoned(BaseException):
    """Raised in a ``Watch``'s thread once the watching thread has given up on it.

    A ``BaseException``: no ``except Exception`` on the way (the sweep's own, for a user's
    errors) stops it from ending the run.
    """


class Watch:
    """A run (a whole sweep) in another thread, whose calls of user code the calling thread
    watches: ``run(body)``.  Threads of runs are reused, as workers are.

    In the run's thread, ``call_with_time_limit(fn, args, timeout)`` with the watch's
    ``timeout`` calls ``fn`` right there (in a fresh, empty ``contextvars`` context) and only
    notes when it started; no thread is woken per call, and the user's code runs beside the
    sweep's own, on the same core.  The calling thread sleeps until the running call's
    limit: if that call is still running then, the whole run is abandoned to it, and
    ``run`` returns what the call's ``if_hung`` gives (the failure of the case it was called
    on).  If the call returns after all, its thread raises ``Abandoned`` and ends.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.abandoned = False
        self._lock = threading.Lock()
        self._started: float | None = None  # when the running call started, if one runs
        self._if_hung: Callable[[], Any] | None = None
        self._hung: Callable[[], Any] | None = None  # the if_hung of the call given up on

    def call(self, fn: Callable[..., T], args: tuple[Any, ...], if_hung: Callable[[], Any]) -> T:
        """``fn(*args)`` in this thread, watched (see the class).  A call made inside another
        (user code that runs a check of its own) is covered by the outer call's limit."""
        with self._lock:
            if self.abandoned:
                raise Abandoned
            if self._started is not None:
                nested = True
            else:
                nested = False
                self._started, self._if_hung = time.monotonic(), if_hung
        if nested:
            return contextvars.Context().run(fn, *args)
        try:
            result: T = contextvars.Context().run(fn, *args)
        finally:
            with self._lock:
                self._started = self._if_hung = None
                abandoned = self.abandoned
            if abandoned:
                raise Abandoned  # (the run is over: whatever the call gave is dropped)
        return result

    def run(self, body: Callable[[], T]) -> tuple[bool, Any]:
        """``(True, body())``, with ``body`` run in another thread (an idle one, reused); or
        ``(False, hung)`` once a call of user code in it has run ``timeout`` seconds,
        ``hung`` being what its ``if_hung()`` gave.  An exception of ``body`` is raised here;
        an interruption of this thread (``KeyboardInterrupt``) abandons the run too."""

        def watched() -> T:
            _local.watch = self
            try:
                return body()
            finally:
                _local.watch = None

        with _idle_lock:
            runner = _idle_runs.pop() if _idle_runs else _Worker("crossgrad-sweep")
        run = _Call(watched, ())
        runner.submit(run)
        outcome: _Done | None = None
        try:
            outcome = self._wait(run)
        except BaseException:
            with self._lock:
                self.abandoned = True
            raise
        finally:
            if outcome is None:  # abandoned to a call that hangs, or interrupted
                runner.retire()
            else:
                with _idle_lock:
                    _idle_runs.append(runner)
        if outcome is None:
            assert self._hung is not None
            return False, self._hung()
        returned, value = outcome
        if not returned:
            raise value
        return True, value

    def _wait(self, run: _Call) -> _Done | None:
        """The run's outcome, or ``None`` once a call in it has run out of time."""
        wait = self.timeout
        while True:
            try:
                return run.done.get(timeout=wait)
            except queue.Empty:
                pass
            with self._lock:
                started = self._started
                wait = self.timeout
                if started is not None:
                    wait = started + self.timeout - time.monotonic()
                if wait <= 0:
                    self.abandoned, self._hung = True, self._if_hung
                    return None


_local = threading.local()  # .watch: the Watch whose run this thread is, if any


def call_with_time_limit(
    fn: Callable[..., T],
    args: tuple[Any, ...],
    timeout: float | None,
    if_hung: Callable[[], Any] | None = None,
) -> T:
    """``fn(*args)``, or ``TimeLimitExceededError`` after ``timeout`` seconds (``None``: none).

    An exception raised by ``fn`` is raised here, with its own traceback.  The call runs in
    an idle worker thread (a new one if none is idle), which is reused afterwards unless the
    call timed out (or the wait was interrupted): then it is abandoned to the call.  In the
    thread of a ``Watch``'s run, with its ``timeout`` and an ``if_hung``, the call runs right
    here instead, and the watching thread enforces the limit (see ``Watch``).
    """
    if timeout is None:
        return fn(*args)
    watch: Watch | None = getattr(_local, "watch", None)
    if watch is not None and if_hung is not None and watch.timeout == timeout:
        return watch.call(fn, args, if_hung)
    with _idle_lock:
        worker = _idle.pop() if _idle else _Worker()
    call = _Call(fn, args)
    worker.submit(call)
    outcome = None
    try:
        outcome = call.wait(timeout)
    finally:
        if outcome is None:  # timed out, or interrupted: abandoned to the call
            worker.retire()
        else:
            with _idle_lock:
                _idle.append(worker)
    if outcome is None:
        raise TimeLimitExceededError(timeout)
    returned, value = outcome
    if not returned:
        raise value
    result: T = value
    return result
