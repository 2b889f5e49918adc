"""Sweeps spread over executors: the same cases for any number of workers, one merged report,
the first failing chunk reported; ``crosscheck_many`` over an executor; ``--workers``."""

from __future__ import annotations

import collections
import concurrent.futures
import multiprocessing

import numpy as np
import pytest

from crossgrad import adapters, testing
from crossgrad.cli import build_parser
from crossgrad.reference import backprop, init_params
from crossgrad.reference.network import Network
from crossgrad.testing import _parallel

SMALL = {"depth": (1, 2), "width": (1, 4), "batch": (1, 3)}


def doubled_w1(net, params, x, y):
    """A backprop whose first weight gradient is twice the truth (module level: it pickles)."""
    result = backprop(net, params, x, y)
    return (
        result.loss,
        [2 * result.grads.weights[0], *result.grads.weights[1:]],
        result.grads.biases,
    )


def one_ulp_off(net, params, x, y):
    """The reference's gradients one unit in the last place off: within the tolerance, with
    errors that differ from case to case (module level: it pickles)."""
    result = backprop(net, params, x, y)
    off = [
        np.where(np.abs(g) >= np.finfo(g.dtype).tiny, np.nextafter(g, np.copysign(np.inf, g)), g)
        for g in (*result.grads.weights, *result.grads.biases)
    ]
    return result.loss, off[: net.n_layers], off[net.n_layers :]


def _stats(result):
    return {
        (name, kind): (s.cases, s.max_abs_err, s.max_rel_err, s.max_err_over_tolerance)
        for name, kinds in result.stats.items()
        for kind, s in kinds.items()
    }


def test_chunk_seeds_are_fixed_by_the_run_seed():
    chunks = _parallel.chunk_seeds(7, 2 * _parallel.CHUNK + 3)
    assert [n for n, _ in chunks] == [_parallel.CHUNK, _parallel.CHUNK, 3]
    assert chunks == _parallel.chunk_seeds(7, 2 * _parallel.CHUNK + 3)
    assert len({seed for _, seed in chunks}) == 3
    assert chunks != _parallel.chunk_seeds(8, 2 * _parallel.CHUNK + 3)


def _recording(seen):
    """The reference's backprop, noting each case it is called with (as bytes) in ``seen``."""

    def recording(net, params, x, y):
        arrays = (*params.weights, *params.biases, x, y)
        seen.append((net, tuple((a.dtype.str, a.shape, a.tobytes()) for a in arrays)))
        return backprop(net, params, x, y)

    return recording


def test_any_number_of_workers_draws_the_same_cases():
    # The reference against itself: every error is 0 whatever the cases, so the cases
    # themselves are compared, as the function saw them (chunks finish in any order).
    results, seen = [], []
    for workers in (1, 3):
        cases = []
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            results.append(
                testing.sweep(impl=_recording(cases), trials=40, seed=5, executor=pool, **SMALL)
            )
        seen.append(collections.Counter(cases))
    one, three = results
    assert one.ok
    assert three.ok
    assert one.cases == three.cases == 40
    assert sum(seen[0].values()) == 40
    assert seen[0] == seen[1]
    assert _stats(one) == _stats(three)
    assert one.stats["your backprop"]["W"].cases == 40


def test_progress_counts_every_chunk():
    seen = []
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        testing.sweep(
            impl=backprop, trials=30, seed=1, executor=pool,
            progress=lambda n, t: seen.append((n, t)), **SMALL,
        )  # fmt: skip
    assert sorted(n for n, _ in seen) == [5, 30] or sorted(n for n, _ in seen) == [25, 30]
    assert {t for _, t in seen} == {30}


def test_the_first_failing_chunk_is_reported_shrunk():
    failures = []
    for workers in (1, 2):
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            result = testing.sweep(impl=doubled_w1, trials=50, seed=3, executor=pool, **SMALL)
        assert not result.ok
        assert result.seed == result.failure.seed == 3
        assert result.cases < 50
        failures.append(result.failure)
    assert failures[0].wrong == failures[1].wrong
    assert "W1" in failures[0].wrong
    assert failures[0].case.net.sizes == failures[1].case.net.sizes
    assert failures[0].case.net.n_layers == 1  # shrunk to one layer


def test_a_process_pool_runs_a_users_function():
    with _parallel.process_pool(2) as pool:
        assert isinstance(pool, concurrent.futures.ProcessPoolExecutor)
        result = testing.sweep(impl=doubled_w1, trials=50, seed=3, executor=pool, **SMALL)
    with concurrent.futures.ThreadPoolExecutor(1) as threads:
        expected = testing.sweep(impl=doubled_w1, trials=50, seed=3, executor=threads, **SMALL)
    assert result.failure.wrong == expected.failure.wrong
    assert result.cases == expected.cases


def test_one_worker_needs_no_pool():
    with _parallel.process_pool(1) as pool:
        assert pool is None


def test_arguments_are_checked_before_any_chunk_is_submitted():
    class Refusing(concurrent.futures.ThreadPoolExecutor):
        def submit(self, *args, **kwargs):
            raise AssertionError("submitted a chunk of a sweep with bad arguments")

    with Refusing(1) as pool:
        with pytest.raises(TypeError, match="impl must be callable"):
            testing.sweep(impl=3, trials=5, executor=pool)
        with pytest.raises(ValueError, match="unknown backend"):
            testing.sweep(["tensorflow"], trials=5, executor=pool)


def test_executor_must_be_an_executor():
    with pytest.raises(TypeError, match=r"executor must be a concurrent\.futures\.Executor"):
        testing.sweep(impl=backprop, trials=5, executor=object())
    with pytest.raises(TypeError, match=r"executor must be a concurrent\.futures\.Executor"):
        list(adapters.crosscheck_many([], backends=["numeric"], executor=4))


def _cases(n):
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        net = Network((2, 3, 2), ("tanh", "identity"), "half_sse")
        out.append(
            (net, init_params(net, seed=i), rng.normal(size=(3, 2)), rng.normal(size=(3, 2)))
        )
    return out


def test_crosscheck_many_over_an_executor_gives_the_same_reports_in_order():
    cases = _cases(11)
    plain = list(adapters.crosscheck_many(cases, backends=["numeric"], chunk=3))
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        spread = list(adapters.crosscheck_many(cases, backends=["numeric"], chunk=3, executor=pool))
    assert len(spread) == 11
    for a, b in zip(plain, spread, strict=True):
        assert a.ok
        assert b.ok
        np.testing.assert_array_equal(a.results["numeric"].loss, b.results["numeric"].loss)
        assert a.comparisons == b.comparisons


def test_crosscheck_many_over_an_executor_names_the_bad_case():
    cases = _cases(5)
    net, params, x, _ = cases[4]
    cases[4] = (net, params, x, np.zeros((3, 7)))
    with (
        concurrent.futures.ThreadPoolExecutor(2) as pool,
        pytest.raises(ValueError, match=r"^cases\[4\]: "),
    ):
        list(adapters.crosscheck_many(cases, backends=["numeric"], chunk=2, executor=pool))


def test_dask_distributed_spreads_a_sweep():
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            # Worker processes: Dask's own threads use the `random` module, which Hypothesis
            # (rightly) reports when it runs in the same process.
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        result = testing.sweep(
            impl=one_ulp_off, trials=40, seed=2, executor=client.get_executor(), **SMALL
        )
        cases = _cases(4)
        reports = list(
            adapters.crosscheck_many(
                cases, backends=["numeric"], chunk=2, executor=client.get_executor()
            )
        )
    # Fresh processes, as Dask's workers are: Hypothesis sometimes draws constants from the
    # source of the modules a process has imported (crossgrad's own, in an editable
    # install), and this test's process may have imported more of them.
    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=spawn) as pool:
        expected = testing.sweep(impl=one_ulp_off, trials=40, seed=2, executor=pool, **SMALL)
    assert result.ok
    assert result.cases == 40
    assert _stats(result) == _stats(expected)  # the same cases: the same worst errors
    assert result.stats["your backprop"]["W"].max_err_over_tolerance > 0
    assert len(reports) == 4
    assert all(r.ok for r in reports)


@pytest.mark.parametrize(("text", "workers"), [("1", 1), ("3", 3), ("auto", _parallel.cores())])
def test_workers_option(text, workers):
    args = build_parser().parse_args(["check", "--workers", text])
    assert args.workers == workers


def test_workers_option_rejects_zero(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["check", "--workers", "0"])
    assert "--workers" in capsys.readouterr().err


def test_check_with_workers_merges_one_report(capsys):
    from crossgrad.cli import main

    argv = ["check", "--impl", "crossgrad.reference:backprop", "--trials", "30", "--seed", "1",
            "--depth", "1-2", "--width", "1-4", "--no-progress"]  # fmt: skip
    assert main([*argv, "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "30 cases checked (seed 1)" in out
    assert "All 30 cases agree." in out


def no_softmax(net, params, x, y):
    """A correct backprop that declines softmax cross-entropy (module level: it pickles)."""
    if net.loss == "softmax_cross_entropy":
        raise testing.Unsupported("no softmax")
    return adapters.get("numpy").backprop(net, params, x, y)


def test_merged_chunks_keep_the_worst_error_over_tolerance_and_every_declined_case():
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        result = testing.sweep(impl=no_softmax, trials=60, seed=2, executor=pool, **SMALL)
    chunks = [
        testing.sweep(impl=no_softmax, trials=n, seed=s, **SMALL)
        for n, s in _parallel.chunk_seeds(2, 60)
    ]
    assert result.ok
    assert result.cases == sum(c.cases for c in chunks) == 60
    assert result.declined == {"no softmax": sum(c.declined["no softmax"] for c in chunks)}
    for kind, s in result.stats["your backprop"].items():
        worst = max(c.stats["your backprop"][kind].max_err_over_tolerance for c in chunks)
        assert s.max_err_over_tolerance == worst
    # The fast backend rounds differently from the reference: the column is not all zeros.
    assert 0 < result.stats["your backprop"]["W"].max_err_over_tolerance <= 1
