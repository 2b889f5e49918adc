"""crossgrad.testing: a correct backprop passes, the usual student bugs are caught and named."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

from crossgrad import reference, testing
from crossgrad.reference import Network, Params

ACTIVATIONS = ["identity", "sigmoid", "tanh", "relu"]
LOSSES = ["half_sse", "mse"]
FAST = {"activations": ACTIVATIONS, "losses": LOSSES, "max_examples": 40, "seed": 7}

Array = np.ndarray[Any, Any]


def _f(name: str, z: Array) -> tuple[Array, Array]:
    f = reference.ACTIVATIONS[name]
    a = f.forward(z)
    return a, f.derivative(z, a)


def student(bug: str | None = None) -> Callable[..., tuple[float, list[Array], list[Array]]]:
    """A textbook backprop, written apart from the reference's, with one planted ``bug``.

    It takes the activations from the reference: a sigmoid of its own, one ulp away, can
    fail the tolerance model where ŷ nearly cancels y (reported to the lead).
    """

    def backprop(net: Network, params: Params, x: Array, y: Array) -> Any:
        dtype = np.float32 if bug == "float32 inside" else x.dtype
        Ws = [W.astype(dtype) for W in params.weights]
        bs = [b.astype(dtype) for b in params.biases]
        a, zs, acts, derivs = x.astype(dtype), [], [x.astype(dtype)], []
        for W, b, name in zip(Ws, bs, net.activations, strict=True):
            z = a @ W.T + b
            a, d = _f(name, z)
            if bug == "relu'(0) = 1" and name == "relu":
                d = (z >= 0).astype(z.dtype)
            zs.append(z)
            acts.append(a)
            derivs.append(d)
        batch, r = x.shape[0], a - y.astype(dtype)
        per_out = 1 if net.loss == "half_sse" else 2 / y.shape[1]
        loss = (0.5 if net.loss == "half_sse" else 1 / y.shape[1]) * (r * r).sum(axis=1)
        mean = net.reduction == "mean" and bug != "forgets 1/batch"
        delta = per_out * r / (batch if mean else 1)
        if bug == "only the first sample":
            delta[1:] = 0
        if bug != "missing sigmoid derivative":
            delta = delta * derivs[-1]
        dWs, dbs = [], []
        for l in reversed(range(net.n_layers)):
            dWs.insert(0, acts[l].T @ delta if bug == "transposed" else delta.T @ acts[l])
            dbs.insert(0, delta.sum(axis=0))
            if l > 0:
                delta = (delta @ Ws[l]) * derivs[l - 1]
        if bug == "float32 inside":
            dWs, dbs = [g.astype(x.dtype) for g in dWs], [g.astype(x.dtype) for g in dbs]
        if bug == "sign flipped":
            dWs, dbs = [-g for g in dWs], [-g for g in dbs]
        total = loss.mean() if net.reduction == "mean" else loss.sum()
        return float(total), dWs, dbs

    return backprop


def test_a_correct_implementation_is_accepted() -> None:
    result = testing.check_implementation(student(), **FAST)  # type: ignore[arg-type]
    assert result.ok
    assert result.cases == 40
    assert set(result.stats["your backprop"]) == {"loss", "W", "b"}


def test_the_reference_itself_passes_on_every_activation_and_loss() -> None:
    for dtype in ("float64", "float32"):
        result = testing.check_implementation(
            reference.backprop, dtype=dtype, far_out=True, max_examples=40, seed=1
        )
        assert result.cases == 40


BUGS = [
    # (bug, what the hint says, cases restricted to)
    ("forgets 1/batch", "the 1/batch of the mean reduction is missing", {}),
    ("only the first sample", "only the first sample's contribution", {}),
    ("transposed", "the transpose of", {}),
    ("missing sigmoid derivative", "derivative of layer 1's sigmoid is missing",
     {"activations": ["sigmoid"]}),
    ("float32 inside", "right only to float32 precision", {}),
    ("sign flipped", "the sign is flipped", {}),
    ("relu'(0) = 1", "your code takes relu'(0) = 1", {"activations": ["relu"]}),
]  # fmt: skip


@pytest.mark.parametrize(("bug", "hint", "restrict"), BUGS, ids=[b[0] for b in BUGS])
def test_student_bugs_are_caught_on_the_smallest_case_with_a_hint(
    bug: str, hint: str, restrict: dict[str, Any]
) -> None:
    with pytest.raises(testing.GradientMismatchError) as caught:
        testing.check_implementation(student(bug), **{**FAST, **restrict})  # type: ignore[arg-type]
    failure = caught.value.failure
    message = str(caught.value)
    assert isinstance(caught.value, AssertionError)
    assert "Smallest failing case Hypothesis found (seed 7)" in message
    assert failure.case.net.n_layers == 1
    assert failure.case.net.sizes[0] == 1
    assert failure.case.batch <= 2
    assert f"network     {' -> '.join(map(str, failure.case.net.sizes))}" in message
    assert "W1 = [[" in message
    assert "x  = [[" in message
    assert failure.wrong
    assert all(f"  {name}" in message for name in failure.wrong)
    assert any(hint in h for h in failure.hints), failure.hints
    assert f"Hint: {failure.hints[0]}" in message


def test_the_batch_bugs_shrink_to_a_batch_of_two() -> None:
    for bug in ("forgets 1/batch", "only the first sample"):
        with pytest.raises(testing.GradientMismatchError) as caught:
            testing.check_implementation(student(bug), reductions="mean", **FAST)  # type: ignore[arg-type]
        assert caught.value.failure.case.batch == 2
        assert caught.value.failure.case.net.sizes == (1, 1)


def test_an_exception_in_user_code_is_a_failure_with_the_smallest_case() -> None:
    def fragile(net: Network, params: Params, x: Array, y: Array) -> Any:
        if x.shape[0] > 3:
            raise ZeroDivisionError("my loop broke")
        return student()(net, params, x, y)

    with pytest.raises(testing.GradientMismatchError) as caught:
        testing.check_implementation(fragile, **FAST)  # type: ignore[arg-type]
    failure = caught.value.failure
    assert failure.case.batch == 4
    assert failure.case.net.sizes == (1, 1)
    assert failure.error is not None
    assert "ZeroDivisionError: my loop broke" in failure.error
    assert "in fragile" in str(caught.value)


def test_returning_the_wrong_thing_is_a_failure() -> None:
    with pytest.raises(testing.GradientMismatchError, match="returned the wrong thing"):
        testing.check_implementation(lambda *args: None, max_examples=5, seed=0)
    with pytest.raises(testing.GradientMismatchError, match="hold 1 array; the network has 2"):
        testing.check_implementation(
            lambda net, p, x, y: (0.0, [p.weights[0]], [p.biases[0]]),
            depth=2, max_examples=5, seed=0,
        )  # fmt: skip


def test_a_result_object_is_accepted_like_a_tuple() -> None:
    testing.check_implementation(reference.backprop, max_examples=10, seed=0)


def test_seeded_runs_are_reproducible() -> None:
    runs = []
    for _ in range(2):
        with pytest.raises(testing.GradientMismatchError) as caught:
            testing.check_implementation(student("forgets 1/batch"), **FAST)  # type: ignore[arg-type]
        runs.append(str(caught.value))
    assert runs[0] == runs[1]


def test_the_user_function_cannot_disturb_the_check() -> None:
    # Its gradients are the reference's one unit in the last place off: within the tolerance
    # on the case as drawn, past it on error scales taken after x was zeroed (they would be 0).
    def vandal(net: Network, params: Params, x: Array, y: Array) -> Any:
        result = reference.backprop(net, params, x, y)
        params.weights[0][...] = 0
        x[...] = 0
        grads = (*result.grads.weights, *result.grads.biases)
        up = [np.nextafter(g, np.copysign(np.inf, g)) for g in grads]  # away from 0
        off = [
            np.where(np.abs(g) >= np.finfo(g.dtype).tiny, u, g)
            for g, u in zip(grads, up, strict=True)
        ]
        return result.loss, off[: net.n_layers], off[net.n_layers :]

    assert testing.check_implementation(vandal, max_examples=20, seed=3).cases == 20


def test_assert_gradients_match_on_one_case() -> None:
    net = Network((3, 4, 2), activation=["tanh", "sigmoid"], loss="mse")
    params = reference.init_params(net, seed=0)
    x = np.random.default_rng(0).normal(size=(5, 3))
    y = np.random.default_rng(1).normal(size=(5, 2))
    testing.assert_gradients_match(student(), net, params, x, y)
    with pytest.raises(testing.GradientMismatchError) as caught:
        testing.assert_gradients_match(student("forgets 1/batch"), net, params, x, y)
    message = str(caught.value)
    assert message.splitlines()[2].startswith("Failing case:")
    assert "5 × the reference, the batch size" in message


def test_assert_gradients_match_with_x_in_the_users_columns_says_which_layout_it_takes() -> None:
    net = Network((3, 2))
    params = reference.init_params(net, seed=0)
    x, y = np.ones((5, 3)), np.zeros((5, 2))
    with pytest.raises(ValueError, match=r"x is \(3, 5\), \(in, batch\): params, x and y are"):
        testing.assert_gradients_match(student(), net, params, x.T, y.T, samples="columns")
    with pytest.raises(ValueError, match=r"input layer has 3$"):  # rows: no layout to mix up
        testing.assert_gradients_match(student(), net, params, x.T, y.T)


def test_sweep_reports_progress_and_stats() -> None:
    seen: list[tuple[int, int]] = []
    result = testing.sweep(
        impl=student(), trials=12, seed=5, activations=ACTIVATIONS, losses=LOSSES,
        dtype="float64",
        progress=lambda done, total: seen.append((done, total)),
    )  # fmt: skip
    assert seen == [(i, 12) for i in range(1, 13)]
    assert result.ok
    assert result.cases == 12
    assert result.seed == 5
    stats = result.stats["your backprop"]
    assert stats["W"].cases == stats["b"].cases == 12
    assert 0 <= stats["W"].max_rel_err <= 1e-12
    assert "your backprop" in result.table()


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({"trials": 0}, ValueError), ({"trials": 1.5}, TypeError), ({"seed": -1}, ValueError)],
)
def test_sweep_rejects_bad_arguments(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        testing.sweep(impl=student(), **kwargs)


def test_check_implementation_needs_a_callable() -> None:
    with pytest.raises(TypeError, match="fn must be callable"):
        testing.check_implementation("backprop")  # type: ignore[arg-type]


class _PlantedBackend:
    """An adapter-like object whose gradients forget the batch mean's 1/batch."""

    name = "planted"

    @staticmethod
    def backprop(net: Network, params: Params, x: Array, y: Array) -> reference.BackpropResult:
        result = reference.backprop(net, params, x, y)
        scale = len(x) if net.reduction == "mean" else 1
        grads = Params(
            [scale * W for W in result.grads.weights], [scale * b for b in result.grads.biases]
        )
        return reference.BackpropResult(
            result.loss, grads, result.preactivations, result.activations
        )


def test_sweep_cross_checks_backends_and_shrinks_a_disagreement() -> None:
    result = testing.sweep(["torch", _PlantedBackend()], trials=30, seed=2, dtype="float64")
    assert not result.ok
    assert result.failure is not None
    assert result.failure.candidate == "planted"
    assert result.failure.case.batch == 2
    assert result.failure.case.net.sizes == (1, 1)
    assert "planted" in str(result.failure)
    assert set(result.stats) == {"torch", "planted"}


def test_sweep_over_an_adapter_agrees() -> None:
    result = testing.sweep(["torch"], trials=30, seed=4)
    assert result.ok, result
    assert result.cases == 30
    assert set(result.stats) == {"torch"}
    assert set(result.stats["torch"]) == {"loss", "z", "a", "W", "b"}
    assert all(s.cases == 30 for s in result.stats["torch"].values())


def test_a_compiling_backend_starts_on_the_smallest_case_first(monkeypatch) -> None:
    jax_backend = pytest.importorskip("crossgrad.adapters.jax_backend")
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(jax_backend, "prepare", lambda *args: calls.append(args))
    ranges = {"depth": (2, 3), "width": (3, 5), "batch": (2, 4)}
    result = testing.sweep(["jax"], trials=3, seed=0, dtype="float32", **ranges)
    assert result.ok, result
    assert calls == [((3, 3, 3), 2, [np.dtype(np.float32)])]  # 2 layers of width 3, 2 samples
    assert testing.sweep(["torch"], trials=1, seed=0).ok  # torch does not compile
    assert len(calls) == 1


def test_a_compiling_backend_is_imported_first(monkeypatch) -> None:
    from crossgrad import adapters

    real_get, order = adapters.get, []

    def get(name: str) -> Any:
        order.append(name)
        return real_get(name)

    monkeypatch.setattr(adapters, "get", get)
    assert testing.sweep(["torch", "jax"], trials=1, seed=0).ok
    assert order[:2] == ["jax", "torch"]  # so that JAX compiles while torch imports


def test_sweep_rejects_an_unknown_backend_before_drawing_cases() -> None:
    with pytest.raises(ValueError, match="unknown backend 'tensorflow'"):
        testing.sweep(["tensorflow"], trials=5)


def test_unsupported_declines_a_case_and_is_counted() -> None:
    def no_softmax(net: Network, params: Params, x: Array, y: Array) -> Any:
        if net.loss == "softmax_cross_entropy":
            raise testing.Unsupported("no softmax")
        return reference.backprop(net, params, x, y)

    result = testing.check_implementation(no_softmax, max_examples=40, seed=2)
    assert result.cases == 40
    assert set(result.declined) == {"no softmax"}
    assert result.cases_declined == result.declined["no softmax"] > 0
    n = result.cases_declined
    assert f"{n} case{'s' if n > 1 else ''} declined: no softmax" in str(result)


def test_declining_every_case_is_an_error_not_a_pass() -> None:
    def nothing(net: Network, params: Params, x: Array, y: Array) -> Any:
        raise testing.Unsupported("not today")

    smallest = {"depth": 1, "width": 1, "batch": 1}  # (cheaper to draw, all declined)
    with pytest.raises(ValueError, match=r"declined every case.*not today"):
        testing.check_implementation(nothing, max_examples=10, seed=0, **smallest)
    result = testing.sweep(impl=nothing, trials=10, seed=0, **smallest)
    assert (result.ok, result.cases, result.failure) == (False, 0, None)


def test_a_backend_object_is_accepted_as_impl_and_named() -> None:
    result = testing.check_implementation(_PlantedBackend(), reductions="sum", max_examples=10)
    assert result.cases == 10
    with pytest.raises(testing.GradientMismatchError) as caught:
        testing.check_implementation(_PlantedBackend(), reductions="mean", seed=1, **{
            k: v for k, v in FAST.items() if k != "seed"})  # fmt: skip
    assert caught.value.failure.candidate == "planted"
    assert "factor_batch" in [h.code for h in caught.value.failure.hints]


def test_the_tables_name_the_three_errors() -> None:
    result = testing.check_implementation(student(), **FAST)  # type: ignore[arg-type]
    table = result.table()
    for column in ("max abs err", "max rel err", "err/tol", "|yours − ref| / |ref|"):
        assert column in table
    stats = result.stats["your backprop"]["W"]
    assert 0 <= stats.max_err_over_tolerance <= 1
    assert stats.max_rel_err < 1e-9  # a TRUE relative error: correct code is ~1e-13


def test_a_plain_function_among_the_backends_is_checked_like_impl() -> None:
    def my_backprop(net: Network, params: Params, x: Array, y: Array) -> Any:
        return student("sign flipped")(net, params, x, y)

    result = testing.sweep(
        [student(), "numeric"], trials=10, seed=1, depth=(1, 2), width=(1, 3), losses=LOSSES,
        activations=["identity", "sigmoid", "tanh"],
    )  # fmt: skip
    assert set(result.stats) == {"backprop", "numeric"}  # student()'s inner function's name
    assert result.ok, result
    result = testing.sweep([my_backprop], trials=20, seed=1, activations=ACTIVATIONS, losses=LOSSES)
    assert result.failure is not None
    assert result.failure.candidate == "my_backprop"
    assert "sign" in [h.code for h in result.failure.hints]


def test_code_computing_in_float32_is_not_called_inconsistent() -> None:
    # Its loss is too noisy for central differences: nothing is claimed about it.
    with pytest.raises(testing.GradientMismatchError) as caught:
        testing.check_implementation(student("float32 inside"), **FAST)  # type: ignore[arg-type]
    failure = caught.value.failure
    codes = [h.code for h in failure.hints]
    assert "not_own_derivative" not in codes
    assert failure.self_consistent is None
    assert set(codes) == {"float32_precision"}


def _worst(result: testing.SweepResult) -> dict[tuple[str, str], tuple[Any, ...]]:
    return {
        (name, kind): (s.cases, s.max_abs_err, s.max_rel_err, s.max_err_over_tolerance)
        for name, kinds in result.stats.items()
        for kind, s in kinds.items()
    }


def _assert_the_same_sweeps(
    one: Sequence[testing.SweepResult], other: Sequence[testing.SweepResult]
) -> None:
    """Two ways of running the same two sweeps (60 trials): one agreeing, one failing on W1."""
    assert one[0].ok
    assert one[0].cases == other[0].cases == 60
    assert _worst(one[0]) == _worst(other[0])
    failures = [one[1].failure, other[1].failure]
    assert failures[0] is not None
    assert failures[1] is not None
    assert failures[0].case.describe() == failures[1].case.describe()
    assert failures[0].wrong == failures[1].wrong == ("W1",)
    assert _worst(one[1]) == _worst(other[1])


def test_a_sweep_checks_the_cases_of_an_example_together_with_the_same_results(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Named backends check each Hypothesis example's list of cases in one crosscheck_many;
    # case by case (no check_many), the same seed must give the very same results.
    class Twice:  # W1's gradient doubled, where it is not 0
        name = "twice"

        def backprop(self, net: Network, params: Params, x: Array, y: Array) -> Any:
            right = reference.backprop(net, params, x, y)
            weights = [2 * right.grads.weights[0], *right.grads.weights[1:]]
            return dataclasses.replace(right, grads=Params(weights, right.grads.biases))

    def sweeps() -> tuple[testing.SweepResult, testing.SweepResult]:
        agree = testing.sweep(["torch", "jax"], trials=60, seed=3, dtype="float64", rtol=1e-10)
        fail = testing.sweep([Twice(), "torch"], trials=60, seed=3, timeout=None)
        return agree, fail

    together = sweeps()
    original = testing._backend_checker

    def one_by_one(*args: Any) -> Any:
        check, _, watched = original(*args)
        return check, None, watched

    monkeypatch.setattr(testing, "_backend_checker", one_by_one)
    one_by_one = sweeps()
    _assert_the_same_sweeps(together, one_by_one)


def test_a_users_calls_under_a_time_limit_give_the_same_results() -> None:
    # Under a time limit, the sweep runs in a thread of its own and calls the user's function
    # there, watched from this thread (``_time_limit.Watch``); without one, everything runs in
    # this thread.  The same seed must give the very same sweep, agreeing and failing.
    threads: list[str] = []

    def right(net: Network, params: Params, x: Array, y: Array) -> Any:
        threads.append(threading.current_thread().name)
        return reference.backprop(net, params, x, y)

    def twice(net: Network, params: Params, x: Array, y: Array) -> Any:
        got = right(net, params, x, y)  # W1's gradient doubled, where it is not 0
        weights = [2 * got.grads.weights[0], *got.grads.weights[1:]]
        return dataclasses.replace(got, grads=Params(weights, got.grads.biases))

    results = {}
    for timeout in (None, 60.0):
        threads.clear()
        results[timeout] = [
            testing.sweep(impl=fn, trials=60, seed=5, timeout=timeout) for fn in (right, twice)
        ]
        called_in = set(threads)
        if timeout is None:
            assert called_in == {threading.current_thread().name}
        else:  # the checks in the sweep's thread; the hints' probes in a worker, as ever
            assert called_in == {"crossgrad-sweep", "crossgrad-user-code"}
    _assert_the_same_sweeps(results[60.0], results[None])
