"""A framework backend in a process of its own (``adapters._process``): the backend's own
results, bit for bit; its errors, its import errors and its process's death, reported."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from crossgrad import adapters
from crossgrad.adapters import _process
from crossgrad.adapters._process import Spawned, worth_spawning
from crossgrad.benchmarks.crosscheck_throughput import random_case
from crossgrad.reference import Network, init_params
from crossgrad.reference.validation import Batch, check_inputs

pytestmark = pytest.mark.skipif(
    "jax" not in adapters.available(), reason="the spawned backend here is jax"
)


def _cases(n: int) -> list[tuple[Network, object, Batch]]:
    rng = np.random.default_rng(7)
    cases = []
    for i in range(n):
        dtype = np.float32 if i % 3 == 2 else np.float64
        net, params, x, y = random_case(rng, dtype=dtype, batch=1 if i % 4 == 0 else None)
        cases.append((net, params, check_inputs(net, params, x, y)))
    return cases


@pytest.fixture(scope="module")
def spawned() -> Iterator[Spawned]:
    """One child for the tests that leave it running (each child imports JAX anew)."""
    with Spawned("jax") as process:
        yield process


def test_results_are_the_backends_own_bit_for_bit(spawned: Spawned) -> None:
    jax = adapters.get("jax")
    cases = _cases(12)
    assert isinstance(spawned, adapters.Backend)
    assert spawned.name == "jax"
    assert spawned.capabilities.compiles
    started = [spawned.start_checked(*case) for case in cases]  # all in flight at once
    for case, finish in zip(cases, started, strict=True):
        got, want = finish(), jax.backprop_checked(*case)
        assert got.loss == want.loss
        assert got.grads == want.grads  # Params' equality: same dtype, same bits
        for g, w in zip(
            (*got.preactivations, *got.activations),
            (*want.preactivations, *want.activations),
            strict=True,
        ):
            np.testing.assert_array_equal(g, w, strict=True)


def test_large_cases_in_flight_at_once_do_not_wait_on_each_other() -> None:
    # crosscheck_many sends a whole chunk before it collects any answer.  Each question and
    # each answer here is larger than the socket's buffers: a child that stopped reading
    # questions while its first answer waited to be read would leave both processes
    # waiting on each other.
    net = Network((64, 64, 64, 8), "tanh", "half_sse")
    params = init_params(net, seed=0)
    batch = check_inputs(net, params, np.ones((64, 64)), np.zeros((64, 8)))
    want = adapters.get("jax").backprop_checked(net, params, batch).loss
    losses: list[float] = []
    with Spawned("jax") as spawned:

        def run() -> None:
            started = [spawned.start_checked(net, params, batch) for _ in range(12)]
            losses.extend(finish().loss for finish in started)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        thread.join(60)
        if thread.is_alive():
            spawned._process.kill()
            pytest.fail("the parent and the child waited on each other")
    assert losses == [want] * 12


def test_the_backends_exception_comes_back_as_itself_and_the_next_case_still_runs(
    spawned: Spawned,
) -> None:
    net = Network((3, 2), "sigmoid", "half_sse")
    params = init_params(net, seed=0)
    x, y = np.ones((4, 3)), np.zeros((4, 2))
    wrong = Batch(np.ones((4, 5)), y, single=False)  # unchecked: x does not fit the network
    with pytest.raises(ValueError, match="could not broadcast"):  # NumPy's, in the child
        spawned.backprop_checked(net, params, wrong)
    with pytest.raises(ValueError, match="could not broadcast"):
        adapters.get("jax").backprop_checked(net, params, wrong)  # as it is here
    assert (
        spawned.backprop(net, params, x, y).loss
        == adapters.get("jax").backprop(net, params, x, y).loss
    )


def test_ctrl_c_is_left_to_the_parent(spawned: Spawned) -> None:
    # The terminal sends SIGINT to the whole process group; the child keeps serving until
    # the parent, which reports the interruption, closes the socket.
    net, params, batch = _cases(1)[0]
    spawned.wait_imported()
    os.kill(spawned._process.pid, signal.SIGINT)
    assert spawned.backprop_checked(net, params, batch).loss == (
        adapters.get("jax").backprop_checked(net, params, batch).loss
    )
    assert spawned._process.poll() is None


def test_a_process_that_dies_is_named_by_every_later_call() -> None:
    net, params, batch = _cases(1)[0]
    spawned = Spawned("jax")
    spawned.wait_imported()
    spawned._process.kill()
    spawned._process.wait()
    for _ in range(2):
        with pytest.raises(RuntimeError, match=r"the jax backend's process ended"):
            spawned.backprop_checked(net, params, batch)
    spawned.close()


def test_an_import_that_fails_in_the_child_is_a_backend_import_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The child takes this process's sys.path, where a broken "jax" now comes first.
    (tmp_path / "jax.py").write_text("raise ImportError('this jax is broken')\n")
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    with Spawned("jax") as spawned, pytest.raises(adapters.BackendImportError) as raised:
        spawned.wait_imported()
    assert raised.value.backend == "jax"
    assert "this jax is broken" in str(raised.value)


def test_names_are_checked_before_anything_starts() -> None:
    with pytest.raises(ValueError, match="unknown backend 'tensorflow'"):
        Spawned("tensorflow")
    with pytest.raises(ValueError, match="only a framework backend"):
        Spawned("numpy")


def test_only_a_compiling_backend_not_imported_yet_is_worth_a_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import jax  # noqa: F401  (imported here: not worth a process of its own)

    assert not worth_spawning("jax")
    monkeypatch.delitem(sys.modules, "jax")
    assert worth_spawning("jax")
    assert not worth_spawning("torch")  # nothing to compile: it imports in this process
    assert not worth_spawning("numpy")
    monkeypatch.setattr(_process, "POSIX", False)  # Windows: no pass_fds
    assert not worth_spawning("jax")


def test_a_spawning_sweep_checks_every_case_without_importing_jax_here() -> None:
    # In a new process: a sweep spawns only where jax is not imported yet.  (Its cases are
    # not compared with an in-process sweep's: Hypothesis draws integers from the constants
    # of the local modules imported so far, and with an editable install those include
    # crossgrad's jax backend when it is imported here.  test_results_are_the_backends_own
    # compares the results case by case.)
    code = """if True:
        import sys
        from crossgrad import testing

        result = testing.sweep(["torch", "jax"], trials=30, seed=5, spawn=True)
        checked = {row["candidate"] for row in result.to_dict()["summary"]}
        print(result.ok, result.cases, sorted(checked), "jax" in sys.modules)
        """
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    assert done.stdout.strip() == "True 30 ['jax', 'torch'] False"


# ``python -m crossgrad``, started as a terminal starts a foreground command: with Python's
# KeyboardInterrupt handler for SIGINT, whatever this test process inherited (a shell's
# background job starts with SIGINT ignored, and Python then installs no handler, so the
# command could not be interrupted).  Set in the command itself, not in a preexec_fn: a
# fork in a process where JAX runs warns, and pytest makes the warning an error.
_IN_A_TERMINAL = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv[0] = 'crossgrad'; runpy.run_module('crossgrad', run_name='__main__')"
)


def test_ctrl_c_on_crossgrad_check_ends_both_processes_quietly() -> None:
    # As a terminal does it: SIGINT to the command's whole process group, once cases run.
    command = [sys.executable, "-c", _IN_A_TERMINAL, "check", "--trials", "100000", "--seed", "0"]
    with subprocess.Popen(
        command, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        start_new_session=True,
    ) as proc:  # fmt: skip
        try:
            assert proc.stderr is not None
            seen = ""
            while not re.search(r"\b[1-9][0-9]*/100000\b", seen):  # cases checked: JAX answered
                char = proc.stderr.read(1)
                assert char, f"the command ended first: {seen}"
                seen += char
            os.killpg(proc.pid, signal.SIGINT)
            _, err = proc.communicate(timeout=120)
        finally:  # a failure above must not leave the command (and its JAX process) running
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130
    assert "crossgrad check: interrupted" in err
    assert "Traceback" not in err
