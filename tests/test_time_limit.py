"""testing._time_limit: calls run in reused worker threads, with the old thread's semantics."""

from __future__ import annotations

import contextvars
import threading
import time
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


def test_calls_started_together_run_in_order_in_one_reused_worker() -> None:
    ran: list[tuple[int, threading.Thread]] = []

    def record(k: int) -> int:
        ran.append((k, threading.current_thread()))
        return 10 * k

    with _time_limit.start_calls(record, [(1,), (2,), (3,)], 10.0) as calls:
        assert [calls.result(k) for k in range(3)] == [10, 20, 30]
    assert [k for k, _ in ran] == [1, 2, 3]
    workers = {thread for _, thread in ran}
    assert len(workers) == 1
    assert threading.current_thread() not in workers
    # Every result collected: the worker is given back and takes the next call.
    assert _time_limit.call_with_time_limit(threading.current_thread, (), 10.0) in workers


def test_each_call_of_a_batch_is_timed_from_its_own_start() -> None:
    # The fourth call waits 0.6 s for the three before it, then runs 0.2 s: well within its
    # limit of 0.7 s, though it is asked for first and ends 0.8 s after the batch started.
    def sleeps(seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    with _time_limit.start_calls(sleeps, [(0.2,)] * 4, 0.7) as calls:
        assert calls.result(3) == 0.2
        assert calls.result(0) == 0.2
    # Not from when its result is asked for: the second call runs 1 s, and it is asked for
    # 0.5 s after it started, with a limit of 0.7 s: a time-out 0.2 s later.
    with _time_limit.start_calls(sleeps, [(0.1,), (1.0,)], 0.7) as calls:
        assert calls.result(0) == 0.1
        time.sleep(0.5)
        asked = time.monotonic()
        with pytest.raises(_time_limit.TimeLimitExceededError):
            calls.result(1)
        assert time.monotonic() - asked < 0.6


@pytest.mark.parametrize(
    ("seconds", "timeout"),
    [
        (0.05, 10.0),
        # Three calls of 0.2 s with a limit of 0.3 s each: 0.6 s in all, none out of time;
        # waiting for all must not stop at the first call's limit.
        (0.2, 0.3),
    ],
)
def test_waiting_for_a_whole_batch_leaves_every_result_at_hand(
    seconds: float, timeout: float
) -> None:
    made: list[int] = []

    def sleeps(k: int) -> int:
        time.sleep(seconds)
        made.append(k)
        return k

    with _time_limit.start_calls(sleeps, [(0,), (1,), (2,)], timeout) as calls:
        calls.wait_all()
        assert made == [0, 1, 2]  # all three returned before wait_all did
        assert [calls.result(k) for k in range(3)] == [0, 1, 2]


def test_waiting_for_a_whole_batch_stops_at_a_call_out_of_time() -> None:
    calls, release, made, worker = _blocked_batch(0.05)
    try:  # call 0 hangs: wait_all returns once call 0 is out of time (in a thread: a test
        # of a broken wait_all fails instead of hanging)
        waiting = threading.Thread(target=calls.wait_all, daemon=True)
        waiting.start()
        waiting.join(timeout=5)
        assert not waiting.is_alive()
        with pytest.raises(_time_limit.TimeLimitExceededError):
            calls.result(0)
        calls.close()
    finally:
        release.set()
    worker.join(timeout=10)
    assert made == [0]


def _blocked_batch(
    timeout: float,
) -> tuple[_time_limit.Calls, threading.Event, list[int], threading.Thread]:
    """A batch of three calls whose first blocks until the event is set: the calls made so
    far, and the worker's thread."""
    release, started = threading.Event(), threading.Event()
    made: list[int] = []
    worker: list[threading.Thread] = []

    def call(k: int) -> int:
        made.append(k)
        if k == 0:
            worker.append(threading.current_thread())
            started.set()
            release.wait()
        return k

    calls = _time_limit.start_calls(call, [(0,), (1,), (2,)], timeout)
    started.wait()
    return calls, release, made, worker[0]


def test_closing_a_batch_cancels_the_calls_not_yet_started() -> None:
    calls, release, made, worker = _blocked_batch(10.0)
    calls.close()  # (a case failed before the others were needed)
    release.set()
    worker.join(timeout=10)  # left running at close, the worker exits after its queued calls
    assert not worker.is_alive()
    assert made == [0]


def test_a_time_out_in_a_batch_abandons_its_worker_and_the_calls_after() -> None:
    calls, release, made, worker = _blocked_batch(0.05)
    with pytest.raises(_time_limit.TimeLimitExceededError, match=r"within 0\.05 s"):
        calls.result(0)
    calls.close()
    try:  # the abandoned worker is still in its call: the next call runs in another thread
        assert _time_limit.call_with_time_limit(threading.current_thread, (), 10.0) is not worker
    finally:
        release.set()
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert made == [0]


def test_a_later_result_of_a_batch_whose_earlier_call_hangs_is_a_time_out() -> None:
    # Call 2 cannot start while call 0 runs: asking for it first waits for call 0, with
    # call 0's time limit, instead of forever.
    calls, release, made, worker = _blocked_batch(0.05)
    caught: list[Exception] = []

    def ask() -> None:
        try:
            calls.result(2)
        except _time_limit.TimeLimitExceededError as exc:
            caught.append(exc)

    asking = threading.Thread(target=ask, daemon=True)  # (a wait forever fails, not hangs)
    asking.start()
    asking.join(timeout=10)
    assert len(caught) == 1
    calls.close()
    release.set()
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert made == [0]
