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


def test_a_call_is_timed_from_its_own_start() -> None:
    def sleeps(seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    assert _time_limit.call_with_time_limit(sleeps, (0.2,), 0.7) == 0.2
    start = time.monotonic()
    with pytest.raises(_time_limit.TimeLimitExceededError):
        _time_limit.call_with_time_limit(sleeps, (2.0,), 0.3)
    assert 0.3 <= time.monotonic() - start < 1.5


# --- a watched run ---------------------------------------------------------------------


def _hung(label: str) -> str:
    return f"hung: {label}"


def test_a_watched_run_calls_user_code_in_its_own_thread() -> None:
    seen: list[tuple[str, str]] = []
    caller = threading.current_thread().name

    def user(k: int) -> int:
        seen.append((threading.current_thread().name, SETTING.get()))
        SETTING.set("set by a call")  # (each call has a context of its own)
        return 10 * k

    def body() -> list[int]:
        return [
            _time_limit.call_with_time_limit(user, (k,), 5.0, lambda: _hung("user"))
            for k in range(3)
        ]

    assert _time_limit.Watch(5.0).run(body) == (True, [0, 10, 20])
    assert seen == [("crossgrad-sweep", "unset")] * 3
    assert caller != "crossgrad-sweep"


@pytest.mark.parametrize("seconds", [0.05, 0.2])
def test_each_watched_call_gets_the_whole_time_limit(seconds: float) -> None:
    # Three calls of 0.2 s with a limit of 0.3 s each: 0.6 s in all, none out of time.
    def body() -> int:
        for _ in range(3):
            _time_limit.call_with_time_limit(time.sleep, (seconds,), 0.3, lambda: "hung")
        return 3

    assert _time_limit.Watch(0.3).run(body) == (True, 3)


def test_a_watched_call_out_of_time_ends_the_run_with_its_if_hung() -> None:
    release = threading.Event()
    after: list[str] = []

    def body() -> None:
        _time_limit.call_with_time_limit(lambda: 1, (), 0.2, lambda: _hung("first"))
        _time_limit.call_with_time_limit(release.wait, (), 0.2, lambda: _hung("second"))
        after.append("the run went on")  # must not: the run was abandoned

    finished: list[tuple[bool, object]] = []
    start = time.monotonic()
    watching = threading.Thread(  # (in a thread: a broken watch fails instead of hanging)
        target=lambda: finished.append(_time_limit.Watch(0.2).run(body)), daemon=True
    )
    watching.start()
    watching.join(timeout=10)
    assert finished == [(False, "hung: second")]
    assert 0.2 <= time.monotonic() - start < 2
    release.set()  # the call returns after all: its thread ends with Abandoned
    time.sleep(0.2)
    assert after == []


def test_an_exception_of_a_watched_run_is_raised_in_the_caller() -> None:
    def body() -> None:
        _time_limit.call_with_time_limit(_fails, (3,), 5.0, lambda: "hung")

    with pytest.raises(KeyError) as info:
        _time_limit.Watch(5.0).run(body)
    names = [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert names[-1] == "_fails"


def _fails(x: int) -> int:
    raise KeyError(x)


def test_watched_runs_reuse_their_thread_unless_it_was_abandoned() -> None:
    def thread() -> threading.Thread:
        return threading.current_thread()

    first = _time_limit.Watch(5.0).run(thread)[1]
    assert _time_limit.Watch(5.0).run(thread)[1] is first
    release = threading.Event()

    def hangs() -> None:
        _time_limit.call_with_time_limit(release.wait, (), 0.1, lambda: "hung")

    try:
        assert _time_limit.Watch(0.1).run(hangs) == (False, "hung")
        assert _time_limit.Watch(5.0).run(thread)[1] is not first  # (first is still in its call)
    finally:
        release.set()


def test_a_call_inside_a_watched_call_keeps_the_outer_limit() -> None:
    # User code that runs a check of its own inside the run: the inner call returning must
    # not leave the rest of the outer call unwatched.
    release = threading.Event()

    def outer() -> None:
        _time_limit.call_with_time_limit(lambda: None, (), 0.2, lambda: "inner hung")
        release.wait()

    def body() -> None:
        _time_limit.call_with_time_limit(outer, (), 0.2, lambda: "outer hung")

    finished: list[tuple[bool, object]] = []
    watching = threading.Thread(  # (in a thread: a broken watch fails instead of hanging)
        target=lambda: finished.append(_time_limit.Watch(0.2).run(body)), daemon=True
    )
    watching.start()
    watching.join(timeout=5)
    release.set()
    assert finished == [(False, "outer hung")]


def test_calls_without_an_if_hung_or_with_another_limit_go_to_a_worker() -> None:
    def body() -> list[str]:
        return [
            _time_limit.call_with_time_limit(lambda: threading.current_thread().name, (), 5.0),
            _time_limit.call_with_time_limit(
                lambda: threading.current_thread().name, (), 9.0, lambda: "hung"
            ),
        ]

    assert _time_limit.Watch(5.0).run(body) == (True, ["crossgrad-user-code"] * 2)
