"""testing._time_limit: calls run in reused worker threads, with the old thread's semantics."""

from __future__ import annotations

import contextvars
import threading
import traceback

import numpy as np
import pytest

from crossgrad.testing import _time_limit


def test_calls_reuse_one_worker_thread() -> None:
    first = _time_limit.call_with_time_limit(threading.current_thread, (), 10.0)
    second = _time_limit.call_with_time_limit(threading.current_thread, (), 10.0)
    assert first is second  # the Thread object itself: a new thread may reuse an ident
    assert first.name == "crossgrad-user-code"
    assert first is not threading.current_thread()


def test_a_call_that_times_out_abandons_its_worker() -> None:
    release, started = threading.Event(), threading.Event()
    blocked: list[int] = []

    def blocks() -> None:
        blocked.append(threading.get_ident())
        started.set()
        release.wait()

    with pytest.raises(_time_limit.TimeLimitExceededError, match=r"within 0\.05 s"):
        _time_limit.call_with_time_limit(blocks, (), 0.05)
    started.wait()
    try:  # the abandoned worker is still in its call: the next call runs in another thread
        assert _time_limit.call_with_time_limit(threading.get_ident, (), 10.0) != blocked[0]
    finally:
        release.set()


def test_an_exception_is_raised_with_its_traceback() -> None:
    def fails(x: int) -> int:
        raise KeyError(x)

    with pytest.raises(KeyError) as info:
        _time_limit.call_with_time_limit(fails, (3,), 10.0)
    names = [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert names[-1] == "fails"
    # The worker survives a failing call.
    assert _time_limit.call_with_time_limit(lambda: 5, (), 10.0) == 5


SETTING: contextvars.ContextVar[str] = contextvars.ContextVar("SETTING", default="unset")


def test_each_call_starts_from_an_empty_context() -> None:
    def set_and_read() -> str:
        before = SETTING.get()
        SETTING.set("set by a call")
        return before

    assert _time_limit.call_with_time_limit(set_and_read, (), 10.0) == "unset"
    assert _time_limit.call_with_time_limit(set_and_read, (), 10.0) == "unset"
    with np.errstate(divide="raise"):  # the caller's context does not reach the call either
        assert _time_limit.call_with_time_limit(np.geterr, (), 10.0)["divide"] != "raise"


def test_concurrent_callers_each_get_their_own_worker() -> None:
    n = 4
    barrier = threading.Barrier(n)
    seen: list[int] = []

    def meets_the_others() -> int:
        barrier.wait(timeout=30)  # only returns once all n calls run at the same time
        return threading.get_ident()

    def caller() -> None:
        seen.append(_time_limit.call_with_time_limit(meets_the_others, (), 60.0))

    threads = [threading.Thread(target=caller) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == n
