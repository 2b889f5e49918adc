"""The tolerance model: the error scale bounds every gradient, float64 checks catch a float32
computation, float32 checks pass correct code, and the comparator flags what differs."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from crossgrad import adapters
from crossgrad.adapters import tolerance
from crossgrad.benchmarks.crosscheck_throughput import random_case
from crossgrad.reference import Network, Params, backprop

RNG = np.random.default_rng(11)
CASES = [random_case(RNG) for _ in range(40)]


def _cast(params: Params, dtype: type) -> Params:
    return Params(
        [W.astype(dtype) for W in params.weights], [b.astype(dtype) for b in params.biases]
    )


def _computing_in(dtype: type) -> SimpleNamespace:
    """A backend that computes in ``dtype`` inside and returns the params' dtype."""

    def run(net, params, x, y):
        out = backprop(net, _cast(params, dtype), np.asarray(x, dtype), np.asarray(y, dtype))
        grads = _cast(out.grads, params.dtype)
        return type(out)(
            out.loss,
            grads,
            tuple(z.astype(params.dtype) for z in out.preactivations),
            tuple(a.astype(params.dtype) for a in out.activations),
        )

    return SimpleNamespace(name=f"{np.dtype(dtype)} inside", backprop=run)


@pytest.mark.parametrize("case", range(len(CASES)))
def test_error_scale_bounds_every_gradient(case):
    net, params, x, y = CASES[case]
    grads = backprop(net, params, x, y).grads
    scale = tolerance.error_scale(net, params, x, y)
    assert scale.dtype == np.float64
    for g, s in zip((*grads.weights, *grads.biases), (*scale.weights, *scale.biases), strict=True):
        assert (np.abs(g) <= s).all()


@pytest.mark.parametrize("case", range(len(CASES)))
def test_float32_inside_fails_a_float64_check(case):
    net, params, x, y = CASES[case]
    report = adapters.crosscheck(net, params, x, y, backends=[_computing_in(np.float32)])
    assert not report.ok
    assert report.max_err_over_tolerance("float32 inside") > 1e3


@pytest.mark.parametrize("case", range(len(CASES)))
def test_correct_float32_runs_pass(case):
    net, params, x, y = CASES[case]
    params32 = _cast(params, np.float32)
    backends = ["torch", "jax", _computing_in(np.float64)]
    adapters.crosscheck(net, params32, x, y, backends=backends).raise_for_mismatch()


def test_default_rtol():
    net = Network((2, 3, 1))
    assert tolerance.default_rtol(net, np.float64) == 16 * np.finfo(np.float64).eps * 3
    assert tolerance.default_rtol(net, np.float32) == 16 * np.finfo(np.float32).eps * 3


REF = np.array([[1.0, -2.0], [0.0, 3.0]])
SCALE = np.array([[2.0, 2.0], [1.0, 4.0]])


def test_compare_arrays_bound_is_inclusive_and_elementwise():
    rtol = 2.0**-10  # powers of two: every sum below is exact
    at_bound = REF + np.array([[0.0, 0.0], [0.0, 4 * rtol]])  # allowed there: rtol · 4
    c = tolerance.compare_arrays("W1", at_bound, REF, SCALE, rtol)
    assert c.ok
    assert (c.worst_index, c.max_err_over_tolerance) == ((1, 1), 1.0)
    assert (c.max_abs_err, c.max_rel_err) == (4 * rtol, 4 * rtol / 3)  # true relative: vs 3
    past = REF + np.array([[0.0, 0.0], [2 * rtol, 0.0]])  # allowed there: rtol · 1
    c = tolerance.compare_arrays("W1", past, REF, SCALE, rtol)
    assert not c.ok
    assert (c.worst_index, c.max_err_over_tolerance) == ((1, 0), 2.0)
    assert c.max_rel_err == 0.0  # the only error sits where r = 0: no relative error there
    assert tolerance.compare_arrays("W1", past, REF, SCALE, rtol, atol=rtol).ok


def test_a_shape_mismatch_has_no_entries_to_compare():
    c = tolerance.compare_arrays("W1", REF.T[:1], REF, SCALE, rtol=1.0)
    assert (c.ok, c.problem, c.worst_index) == (False, "shape (1, 2), expected (2, 2)", ())
    assert c.max_err_over_tolerance == np.inf


def test_values_that_are_not_numbers_do_not_compare():
    c = tolerance.compare_arrays("loss", np.array("0.5"), np.array(0.5), np.array(1.0), 1.0)
    assert (c.ok, c.problem) == (False, "dtype <U3, expected float64")


@pytest.mark.parametrize(
    ("candidate", "problem"),
    [
        (REF.astype(np.float32), "dtype float32, expected float64"),
        (REF[:1], "shape (1, 2), expected (2, 2)"),
        (np.where(REF == 0, np.nan, REF), "non-finite values"),
        (np.where(REF == 0, np.inf, REF), "non-finite values"),
    ],
    ids=["dtype", "shape", "nan", "inf"],
)
def test_compare_arrays_flags_problems(candidate, problem):
    c = tolerance.compare_arrays("b2", candidate, REF, SCALE, rtol=1.0)
    assert (c.ok, c.problem) == (False, problem)


def test_zero_scale_allows_only_exact_zero():
    zero = np.zeros(2)
    assert tolerance.compare_arrays("b1", zero, zero, zero, rtol=1e-3).ok
    assert not tolerance.compare_arrays("b1", zero + 1e-300, zero, zero, rtol=1e-3).ok


@pytest.mark.parametrize("seed", range(4))
def test_one_pass_over_many_arrays_equals_one_array_at_a_time(seed):
    rng = np.random.default_rng(seed)
    shapes = [(), (3,), (2, 4), (1, 5)]
    items = []
    for i, shape in enumerate(shapes):
        ref = rng.normal(size=shape)
        scale = np.abs(rng.normal(size=shape)) * rng.integers(0, 2, size=shape)  # some zeros
        err = rng.normal(size=shape) * 1e-15 * rng.integers(0, 2, size=shape) * (i > 0)
        items.append((f"q{i}", ref + err, ref, scale))
    if seed == 3:  # a non-finite entry, a wrong shape and an empty array among the others
        items.append(("bad", np.array([np.nan, 1.0]), np.array([0.0, 1.0]), np.ones(2)))
        items.append(("T", np.ones((3, 2)), np.ones((2, 3)), np.ones((2, 3))))
        items.append(("empty", np.zeros(0), np.zeros(0), np.zeros(0)))
    rtol = 1e-15 * (seed + 1)
    want = [tolerance.compare_arrays(n, g, r, s, rtol, 1e-16) for n, g, r, s in items]
    expected = tolerance.Expected([(n, r, s) for n, _, r, s in items])
    assert expected.compare([g for _, g, _, _ in items], rtol, 1e-16) == want
    assert any(not c.ok for c in want)  # the comparison is not vacuous
    assert any(c.ok for c in want)


@pytest.mark.parametrize("name", sorted(tolerance.LOSS_SCALES))
def test_loss_gradient_scale_bounds_the_gradient(name: str) -> None:
    from crossgrad.reference import LOSSES

    rng = np.random.default_rng(3)
    out = rng.normal(0, 3, (4, 3))
    y = (
        rng.dirichlet(np.ones(3), 4) if name == "softmax_cross_entropy"
        else rng.uniform(0, 1, (4, 3)) if name == "binary_cross_entropy"
        else rng.normal(0, 1, (4, 3))
    )  # fmt: skip
    scale = tolerance.LOSS_SCALES[name].gradient(out, y)
    assert (np.abs(LOSSES[name].gradient(out, y)) <= scale).all()


def test_the_tables_cover_every_activation_and_loss() -> None:
    from crossgrad.reference import ACTIVATIONS, LOSSES

    assert set(tolerance.CURVATURE) == set(ACTIVATIONS)
    assert set(tolerance.LOSS_SCALES) == set(LOSSES)


@pytest.mark.parametrize("name", sorted(tolerance.CURVATURE))
def test_curvature_bounds_the_second_derivative(name: str) -> None:
    from crossgrad.reference import ACTIVATIONS

    act, z, h = ACTIVATIONS[name], np.linspace(-6, 6, 2401), 1e-4
    d = lambda t: act.derivative(t, act.forward(t))  # noqa: E731
    second = (d(z + h) - d(z - h)) / (2 * h)
    kink = np.abs(z) < 2 * h  # relu, leaky_relu, elu: f' jumps (or bends) at 0
    assert np.abs(second[~kink]).max() <= tolerance.CURVATURE[name] * (1 + 1e-3)


@pytest.mark.parametrize("name", sorted(tolerance.CURVATURE))
def test_the_slope_is_at_most_one_exactly_where_the_table_says(name: str) -> None:
    # The scales take max(|f'|, 1) = 1 for SLOPE_AT_MOST_ONE without computing f': it must
    # hold everywhere (up to f' rounded one ulp above 1), and fail for the others.
    from crossgrad.reference import ACTIVATIONS

    act = ACTIVATIONS[name]
    z = np.concatenate([np.linspace(-40, 40, 80001), [0.0, 1e-300, -1e-300, 1e6, -1e6]])
    slope = np.abs(act.derivative(z, act.forward(z))).max()
    if name in tolerance.SLOPE_AT_MOST_ONE:
        assert slope <= np.nextafter(1.0, 2.0)
    else:
        assert slope > 1.01


def test_an_infinite_error_over_an_infinite_allowance_is_the_worst_entry_of_its_own_array() -> None:
    # |g − r| overflows to inf where the allowance is inf too: a NaN ratio, the largest (as
    # argmax has it); its worst index must be in its own array, not the next one's.
    expected = tolerance.Expected(
        [
            ("W1", np.array([1.0, -1.7e308, 0.0]), np.array([1.0, np.inf, 1.0])),
            ("b1", np.array([1.0, 2.0]), np.array([1.0, 1.0])),
        ]
    )
    first, second = expected.compare([np.array([1.0, 1.7e308, 0.0]), np.array([1.0, 2.0])], 1e-3)
    assert first.worst_index == (1,)
    assert not first.ok
    assert second.worst_index == (0,)
    assert second.ok
