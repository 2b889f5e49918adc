"""The fast NumPy backend (``adapters.get("numpy")``): the reference's results and contracts.

Every comparison with the reference goes through the tolerance model
(``crossgrad.adapters.tolerance``), as for torch and jax.  The backend has two code paths
where the size of the arrays decides (the sigmoid's and the relu derivative's short paths,
``np.dot`` or ``np.matmul``); the properties run both, by setting the thresholds to 0 or to
infinity.
"""

from __future__ import annotations

import contextlib
import math
import re
import sys
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossgrad import adapters, reference, strategies
from crossgrad.adapters import numpy_backend, numpy_kernels
from crossgrad.adapters.tolerance import default_rtol, error_scale
from crossgrad.reference import Network, Params
from crossgrad.reference import worked_example as doc
from crossgrad.strategies import Case

N = settings.default.max_examples


@contextlib.contextmanager
def paths(small: bool) -> Iterator[None]:
    """Every array on the small-array paths (``small``) or on the large-array paths."""
    saved = (
        numpy_kernels.SMALL,
        numpy_kernels.SMALL_MASK,
        numpy_kernels.SCALAR_CONSTANTS,
        numpy_backend.SMALL_PRODUCT,
    )
    numpy_kernels.SMALL = numpy_kernels.SMALL_MASK = numpy_backend.SMALL_PRODUCT = (
        sys.maxsize if small else -1
    )
    numpy_kernels.SCALAR_CONSTANTS = sys.maxsize if small else 0  # large: scalar constants
    getattr(numpy_backend._local, "cache", {}).clear()  # workspaces chose their product
    numpy_backend._local.last = None
    try:
        yield
    finally:
        (
            numpy_kernels.SMALL,
            numpy_kernels.SMALL_MASK,
            numpy_kernels.SCALAR_CONSTANTS,
            numpy_backend.SMALL_PRODUCT,
        ) = saved
        getattr(numpy_backend._local, "cache", {}).clear()
        numpy_backend._local.last = None


def _copy(params: Params) -> Params:
    return Params([W.copy() for W in params.weights], [b.copy() for b in params.biases])


def _assert_step_matches_the_reference(case: Case, params: Params, new: Params, lr: float) -> None:
    """``new`` is the reference's SGD step from ``params``, within the gradient's tolerance."""
    grads = reference.backprop(case.net, params, case.x, case.y).grads
    expected = reference.sgd_step(params, grads, lr)
    scale = error_scale(case.net, params, case.x, case.y)
    rtol = default_rtol(case.net, params.dtype)
    eps = float(np.finfo(params.dtype).eps)
    for name, got in new.named().items():
        ref, p, s = expected.named()[name], params.named()[name], scale.named()[name]
        assert (got.dtype, got.shape) == (ref.dtype, ref.shape), name
        bound = lr * rtol * s + 2 * eps * np.abs(p)  # the gradient's tolerance, then p − lr·g
        assert np.all(np.abs(got - ref) <= bound), name


@given(strategies.cases(), st.booleans())
@settings(max_examples=3 * N)
def test_the_numpy_backend_agrees_with_the_reference(case: Case, small: bool) -> None:
    # float32 and float64, every activation, loss and reduction, kinks and |z| up to ~1e6.
    with paths(small):
        report = adapters.crosscheck(case.net, case.params, case.x, case.y, backends=["numpy"])
    assert len(report.comparisons["numpy"]) == 1 + 4 * case.net.n_layers
    report.raise_for_mismatch()


@given(strategies.cases(), st.booleans(), st.sampled_from([1e-3, 0.1, 1.0]))
def test_train_step_is_the_reference_step_twice_over(case: Case, small: bool, lr: float) -> None:
    before = _copy(case.params)
    with paths(small):
        loss, new = numpy_backend.train_step(case.net, case.params, case.x, case.y, lr)
        # The second step starts from params this backend made: the one-buffer update.  A
        # large lr may take them where the next step overflows: the reference's error then.
        try:
            second: tuple[float, Params] | OverflowError = numpy_backend.train_step(
                case.net, new, case.x, case.y, lr
            )
        except OverflowError as exc:
            second = exc
    assert case.params == before  # nothing passed in is modified
    with paths(small):  # the loss of backprop, which is cross-checked above
        assert loss == numpy_backend.backprop(case.net, case.params, case.x, case.y).loss
    _assert_step_matches_the_reference(case, case.params, new, lr)
    if isinstance(second, OverflowError):
        with pytest.raises(OverflowError, match=re.escape(str(second))):
            reference.train_step(case.net, new, case.x, case.y, lr)
    else:
        _assert_step_matches_the_reference(case, new, second[1], lr)
        assert np.isfinite(second[0])


def test_the_worked_example() -> None:
    result = numpy_backend.backprop(doc.NETWORK, doc.PARAMS, doc.X, doc.Y)
    adapters.crosscheck(
        doc.NETWORK, doc.PARAMS, doc.X, doc.Y, backends=["numpy"]
    ).raise_for_mismatch()
    ref = reference.backprop(doc.NETWORK, doc.PARAMS, doc.X, doc.Y)
    loss, new = numpy_backend.train_step(doc.NETWORK, doc.PARAMS, doc.X, doc.Y, doc.LR)
    ours = doc.quantities(result, new)
    theirs = doc.quantities(ref, reference.sgd_step(doc.PARAMS, ref.grads, doc.LR))
    assert loss == result.loss
    for name, value in theirs.items():
        np.testing.assert_allclose(ours[name], value, rtol=1e-14, atol=1e-16, err_msg=name)
    # One sample in, one sample out: the forward values are vectors, as the reference's.
    assert [a.shape for a in result.activations] == [a.shape for a in ref.activations]


@pytest.mark.parametrize("small", [True, False], ids=["small-path", "large-path"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", list(reference.ACTIVATIONS))
def test_saturated_layers_at_z_1e6_stay_finite_and_agree(
    activation: str, dtype: type, small: bool
) -> None:
    # Rows of z = ±1e6, ±50 and 0 in the hidden layer; warnings are errors in this suite.
    net = Network((1, 5, 2), activation=(activation, "sigmoid"), loss="binary_cross_entropy")
    W1 = np.array([[1e6], [-1e6], [50.0], [-50.0], [0.0]], dtype)
    params = Params([W1, np.full((2, 5), 0.5, dtype)], [np.zeros(5, dtype), np.zeros(2, dtype)])
    x, y = np.ones((3, 1), dtype), np.array([[1, 0], [0, 1], [0.5, 0.5]], dtype)
    with paths(small):
        result = numpy_backend.backprop(net, params, x, y)
        report = adapters.crosscheck(net, params, x, y, backends=["numpy"])
    for values in (result.preactivations, result.activations, result.grads.weights):
        assert all(np.isfinite(v).all() for v in values)
    report.raise_for_mismatch()


@pytest.mark.parametrize("small", [True, False], ids=["small-path", "large-path"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_saturated_derivatives_keep_their_relative_precision(dtype: type, small: bool) -> None:
    # σ'(z) = e^{-|z|}/(1 + e^{-|z|})², tanh'(z) = 4e^{-2|z|}/(1 + e^{-2|z|})², far into
    # saturation, where 1 − σ² or σ(1 − σ) would be 0; exact values from Python floats.
    zs = (
        [-80.0, -30.0, -12.0, 0.0, 12.0, 30.0, 80.0]
        if dtype is np.float64
        else [-40.0, -15.0, 15.0, 40.0]
    )
    z = np.array([zs], dtype)
    a, d = np.empty_like(z), np.empty_like(z)
    eps = float(np.finfo(dtype).eps)
    exact = {
        "sigmoid": [math.exp(-abs(v)) / (1 + math.exp(-abs(v))) ** 2 for v in zs],
        "tanh": [4 * math.exp(-2 * abs(v)) / (1 + math.exp(-2 * abs(v))) ** 2 for v in zs],
        "softplus": [1 / (1 + math.exp(-v)) for v in zs],
    }
    with paths(small):
        for name, want in exact.items():
            numpy_kernels.ACTIVATIONS[name].forward(
                z, a, d, numpy_kernels.Scratch(z.shape, z.dtype)
            )
            np.testing.assert_allclose(d[0], want, rtol=8 * eps, atol=0, err_msg=name)


def test_the_sigmoid_beyond_its_clip_is_below_the_smallest_normal_number() -> None:
    # The long path's one approximation: where σ(z) (z < −H) or σ'(z) (|z| > H) is below the
    # smallest normal number it gives the value at ±H (see numpy_kernels._sigmoid): under
    # 1e-307 / 1e-38, and finite.
    for dtype, far in ((np.float32, 100.0), (np.float64, 800.0)):
        z = np.array([[-1e6, -far, far, 1e6]], dtype)
        a, d = np.empty_like(z), np.empty_like(z)
        with paths(small=False):
            scratch = numpy_kernels.Scratch(z.shape, z.dtype)
            numpy_kernels.ACTIVATIONS["sigmoid"].forward(z, a, d, scratch)
        tiny = float(np.finfo(dtype).smallest_normal)
        assert np.all((a[0, :2] >= 0) & (a[0, :2] < tiny))
        assert np.all(a[0, 2:] == 1)
        assert np.all((d >= 0) & (d < tiny))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_sigmoid_keeps_its_relative_precision_down_to_the_smallest_normal_number(
    dtype: type,
) -> None:
    # Just above the smallest normal number: σ(z) ≈ e^z there, σ'(z) ≈ e^{-|z|}.  A bound
    # clipping z too early (the values at ±86 standing for those at ±87.3 in float32) is
    # off by up to e^{1.3}.
    info = np.finfo(dtype)
    edge = math.log(float(info.smallest_normal)) + 0.05  # e^edge is normal
    zs = [edge, edge / 2, -edge / 2, -edge]
    z = np.array([zs], dtype)
    a, d = np.empty_like(z), np.empty_like(z)
    exact_a = [1 / (1 + math.exp(-v)) for v in z[0].tolist()]
    exact_d = [math.exp(-abs(v)) / (1 + math.exp(-abs(v))) ** 2 for v in z[0].tolist()]
    with paths(small=False):
        scratch = numpy_kernels.Scratch(z.shape, z.dtype)
        numpy_kernels.ACTIVATIONS["sigmoid"].forward(z, a, d, scratch)
    eps = float(info.eps)
    np.testing.assert_allclose(a[0], exact_a, rtol=8 * eps, atol=0)
    np.testing.assert_allclose(d[0], exact_d, rtol=8 * eps, atol=0)


@pytest.mark.parametrize("small", [True, False], ids=["clip-in-two", "np.clip"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_tanh_derivative_keeps_its_relative_precision_down_to_the_smallest_normal_number(
    dtype: type, small: bool
) -> None:
    # tanh'(z) = 1/cosh²(z) with z clipped at (H + 1)/2 (44.5 / 355), where cosh² is finite.
    # Inside the clip, just above the smallest normal number (z = ±44.3 in float32, where a
    # clip at 44 would be off by e^{0.6}), the exact value to 8 eps; beyond it, a value under
    # the smallest normal number, finite, with no warning (the test run makes them errors).
    info = np.finfo(dtype)
    tiny = float(info.smallest_normal)
    edge = (-math.log(tiny / 4) - 0.2) / 2  # 4e^{-2·edge} is normal
    z = np.array([[-1e6, -edge, -edge / 3, 0.0, edge / 3, edge, 1e6]], dtype)
    a, d = np.empty_like(z), np.empty_like(z)
    with paths(small):
        scratch = numpy_kernels.Scratch(z.shape, z.dtype)
        numpy_kernels.ACTIVATIONS["tanh"].forward(z, a, d, scratch)
    inside = z[0, 1:-1].tolist()
    exact = [4 * math.exp(-2 * abs(v)) / (1 + math.exp(-2 * abs(v))) ** 2 for v in inside]
    assert min(exact) >= tiny
    np.testing.assert_allclose(d[0, 1:-1], exact, rtol=8 * float(info.eps), atol=0)
    assert np.all((d[0, [0, -1]] >= 0) & (d[0, [0, -1]] < tiny))
    np.testing.assert_array_equal(a[0, [0, -1]], [-1, 1])


def _with(params: Params, kind: str, layer: int, value: float) -> Params:
    """A copy of ``params`` with ``value`` in the first entry of ``params.<kind>[layer]``."""
    copy = _copy(params)
    getattr(copy, kind)[layer].flat[0] = value
    return copy


BAD_INPUTS: list[tuple[str, Any]] = [
    ("x with the wrong width", lambda net, p, x, y: (net, p, x[:, :2], y)),
    ("y with the wrong width", lambda net, p, x, y: (net, p, x, y[:, :1])),
    ("batches that differ", lambda net, p, x, y: (net, p, x, y[:1])),
    ("nan in x", lambda net, p, x, y: (net, p, np.where(x > 0, np.nan, x), y)),
    ("inf in y", lambda net, p, x, y: (net, p, x, np.full_like(y, np.inf))),
    ("a 3-d x", lambda net, p, x, y: (net, p, x[None], y)),
    ("an empty batch", lambda net, p, x, y: (net, p, x[:0], y[:0])),
    ("a complex x", lambda net, p, x, y: (net, p, x.astype(complex), y)),
    ("a string y", lambda net, p, x, y: (net, p, x, "y")),
    (
        "params of another net",
        lambda net, p, x, y: (net, reference.init_params(Network((4, 2))), x, y),
    ),
    ("not a network", lambda net, p, x, y: ((4, 3, 2), p, x, y)),
    ("nan in params", lambda net, p, x, y: (net, _with(p, "weights", 1, np.nan), x, y)),
    ("inf in params", lambda net, p, x, y: (net, _with(p, "biases", 0, -np.inf), x, y)),
    ("not params", lambda net, p, x, y: (net, list(p), x, y)),
    (
        "targets out of [0, 1]",
        lambda net, p, x, y: (Network((4, 3, 2), loss="binary_cross_entropy"), p, x, y + 1),
    ),
    (
        "negative softmax weights",
        lambda net, p, x, y: (Network((4, 3, 2), loss="softmax_cross_entropy"), p, x, -y),
    ),
]


@pytest.mark.parametrize("bad", [b for _, b in BAD_INPUTS], ids=[i for i, _ in BAD_INPUTS])
@pytest.mark.parametrize("function", ["backprop", "train_step"])
def test_bad_input_raises_the_references_error(bad: Any, function: str) -> None:
    net = Network((4, 3, 2))
    params = reference.init_params(net)
    x = np.linspace(-1, 1, 12).reshape(3, 4)
    y = np.full((3, 2), 0.25)
    args = bad(net, params, x, y)
    extra = (0.1,) if function == "train_step" else ()
    with pytest.raises((TypeError, ValueError)) as expected:
        getattr(reference, function)(*args, *extra)
    with pytest.raises(type(expected.value)) as got:
        getattr(numpy_backend, function)(*args, *extra)
    assert str(got.value) == str(expected.value)


@pytest.mark.parametrize("lr", [0.0, -1.0, math.inf, "0.1", True])
def test_a_bad_learning_rate_raises_the_references_error(lr: Any) -> None:
    net = Network((4, 3, 2))
    params, x, y = reference.init_params(net), np.ones((2, 4)), np.zeros((2, 2))
    with pytest.raises((TypeError, ValueError)) as expected:
        reference.train_step(net, params, x, y, lr)
    with pytest.raises(type(expected.value), match=re.escape(str(expected.value))):
        numpy_backend.train_step(net, params, x, y, lr)


OVERFLOWS = [
    # (network, x, y): results beyond float64, for the reference's rule for results.
    ("the loss", Network((4, 3, 2)), np.ones((2, 4)), np.full((2, 2), 1e200)),
    ("a pre-activation", Network((4, 3, 2), activation="identity"), np.full((1, 4), 1e308),
     np.zeros((1, 2))),
    ("a gradient", Network((2, 2), activation="identity", loss="mse"),
     np.full((3, 2), 1e160), np.zeros((3, 2))),
]  # fmt: skip


@pytest.mark.parametrize(
    ("net", "x", "y"), [o[1:] for o in OVERFLOWS], ids=[o[0] for o in OVERFLOWS]
)
@pytest.mark.parametrize("function", ["backprop", "train_step"])
def test_results_beyond_float64_raise_the_references_overflow_error(
    net: Network, x: np.ndarray, y: np.ndarray, function: str
) -> None:
    params = reference.init_params(net)
    extra = (0.1,) if function == "train_step" else ()
    with pytest.raises(OverflowError) as expected:
        getattr(reference, function)(net, params, x, y, *extra)
    with pytest.raises(OverflowError) as got:  # and no NumPy warning (an error in the tests)
        getattr(numpy_backend, function)(net, params, x, y, *extra)
    assert str(got.value) == str(expected.value)


def test_large_but_finite_results_are_the_references() -> None:
    # Gradients near 1e160 fail the quick check (their squares overflow): the reference's
    # result is returned, finite.
    net = Network((2, 2), activation="identity", loss="mse")
    params = reference.init_params(net)
    x, y = np.full((1, 2), 1e80), np.zeros((1, 2))
    want = reference.backprop(net, params, x, y)
    assert not numpy_backend._surely_finite(want.loss, *want.grads.weights)  # the hand-over
    got = numpy_backend.backprop(net, params, x, y)
    assert math.isfinite(got.loss)
    assert got.loss == want.loss
    for g, w in zip(got.grads.weights, want.grads.weights, strict=True):
        assert np.array_equal(g, w)


def test_input_is_checked_on_every_call_not_only_the_first() -> None:
    net = Network((4, 3, 2))
    params, x, y = reference.init_params(net), np.ones((2, 4)), np.zeros((2, 2))
    _, new = numpy_backend.train_step(net, params, x, y, 0.1)
    x[1, 2] = np.nan  # the same array object as before, now with a nan
    with pytest.raises(ValueError, match=r"x must be finite, got 1 non-finite value"):
        numpy_backend.train_step(net, new, x, y, 0.1)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [("biases", 1, 1), ("weights", 0, (2, 3))])
def test_params_are_checked_on_every_call_even_those_train_step_made(
    bad: float, where: tuple[str, int, Any]
) -> None:
    # train_step's params are views into one buffer; a user may still write into them
    # (crossgrad never does), and the next call must say so, as the reference.  backprop
    # checks them on the way in; train_step finds them in the new params, W − lr·g.
    net = Network((4, 3, 2))
    x, y = np.ones((2, 4)), np.zeros((2, 2))
    _, new = numpy_backend.train_step(net, reference.init_params(net), x, y, 0.1)
    _, new = numpy_backend.train_step(net, new, x, y, 0.1)
    kind, layer, index = where
    getattr(new, kind)[layer][index] = bad
    message = rf"params.{kind}\[{layer}\] must be finite, got 1"
    for function, extra in ((numpy_backend.train_step, (0.1,)), (numpy_backend.backprop, ())):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # and no NumPy warning on the way
            with pytest.raises(ValueError, match=message):
                function(net, new, x, y, *extra)


def test_input_the_fast_path_does_not_take_gives_the_references_results() -> None:
    # Lists, integers, one sample, a non-contiguous view: check_inputs converts them.
    net = Network((4, 3, 2), activation="tanh")
    params = reference.init_params(net, dtype=np.float32)
    x = np.arange(16, dtype=np.float64).reshape(2, 8)[:, ::2]
    for args in ((x, [[0, 1], [1, 0]]), (x[0].tolist(), [0, 1]), (x.astype(int), np.eye(2))):
        got = numpy_backend.backprop(net, params, *args)
        ref = reference.backprop(net, params, *args)
        assert [z.shape for z in got.preactivations] == [z.shape for z in ref.preactivations]
        assert got.grads.dtype == np.float32
        adapters.crosscheck(net, params, *args, backends=["numpy"]).raise_for_mismatch()


@pytest.mark.parametrize("batch", [1, 2])  # one sample: δ is train_step's bias gradient
def test_results_are_not_overwritten_by_later_calls(batch: int) -> None:
    net = Network((4, 3, 2), activation=("relu", "identity"))
    params = reference.init_params(net)
    x, y = np.linspace(0.5, 1.5, 4 * batch).reshape(batch, 4), np.zeros((batch, 2))
    first = numpy_backend.backprop(net, params, x, y)
    kept = [a.copy() for a in (*first.grads.weights, *first.preactivations, *first.activations)]
    _, new = numpy_backend.train_step(net, params, x, y, 0.1)
    kept_params = _copy(new)
    numpy_backend.backprop(net, params, -x, y + 1)
    numpy_backend.train_step(net, new, -x, y + 1, 0.1)  # from new: the one-buffer update
    numpy_backend.train_step(net, params, 2 * x, y, 0.1)
    again = (*first.grads.weights, *first.preactivations, *first.activations)
    assert all(np.array_equal(a, b) for a, b in zip(again, kept, strict=True))
    assert new == kept_params
    # The identity's a is a copy of z, as the reference's: writing one leaves the other.
    assert first.activations[2] is not first.preactivations[1]
    assert new.weights[0].base is new.biases[1].base is not None  # one buffer per Params
    assert not np.shares_memory(new.weights[0], params.weights[0])


def test_params_not_made_last_in_this_thread_are_updated_as_any_others() -> None:
    # train_step updates the params it made last in one pass over their buffer; older ones,
    # ones made in another thread and ones of another network shape take the general path.
    net = Network((4, 3, 2), activation="tanh")
    x, y = np.linspace(-1, 1, 12).reshape(3, 4), np.full((3, 2), 0.25)
    p0 = reference.init_params(net)
    _, p1 = numpy_backend.train_step(net, p0, x, y, 0.1)
    _, p2 = numpy_backend.train_step(net, p1, x, y, 0.1)
    made: list[Params] = []
    thread = threading.Thread(
        target=lambda: made.append(numpy_backend.train_step(net, p2, x, y, 0.1)[1])
    )
    thread.start()
    thread.join()
    _, p3 = numpy_backend.train_step(net, p2, x, y, 0.1)  # p2 is this thread's last
    for start, got in ((p1, numpy_backend.train_step(net, p1, x, y, 0.1)[1]), (p2, made[0])):
        assert got == numpy_backend.train_step(net, _copy(start), x, y, 0.1)[1]
    _, p4 = numpy_backend.train_step(net, made[0], x, y, 0.1)  # made in the other thread
    assert p4 == numpy_backend.train_step(net, _copy(made[0]), x, y, 0.1)[1]
    _assert_step_matches_the_reference(Case(net, p2, x, y), p2, p3, 0.1)
    # Views into one buffer of another layout (biases first) are not train_step's buffer.
    big = np.concatenate([*p3.biases, *(W.ravel() for W in p3.weights)])
    views = Params([big[5:17].reshape(3, 4), big[17:].reshape(2, 3)], [big[:3], big[3:5]])
    assert views == p3
    assert (
        numpy_backend.train_step(net, views, x, y, 0.1)[1]
        == numpy_backend.train_step(net, p3, x, y, 0.1)[1]
    )
    wider = Network((4, 3, 3))  # p4 was made last, for another shape: the reference's error
    with pytest.raises(ValueError, match=r"params.weights\[1\] has shape \(2, 3\)"):
        numpy_backend.train_step(wider, p4, x, np.zeros((3, 3)), 0.1)


def test_the_kernels_constants_are_read_only_and_keep_their_values() -> None:
    for name in numpy_kernels.ACTIVATIONS:
        scratch = numpy_kernels.Scratch((3, 5), np.dtype(np.float64))
        z = np.linspace(-3, 3, 15).reshape(3, 5)
        a, d = np.empty_like(z), np.empty_like(z)
        with paths(small=False):
            numpy_kernels.ACTIVATIONS[name].forward(z, a, d, scratch)
        for value, constant in scratch._constants.items():
            assert not constant.flags.writeable, name
            assert np.all(constant == value), name


def test_workspaces_are_kept_per_thread_and_bounded() -> None:
    net = Network((3, 4, 2), activation="sigmoid")
    params = reference.init_params(net)
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((batch, 3)) for batch in range(1, 12)]
    expected = [reference.backprop(net, params, x, np.zeros((len(x), 2))) for x in xs]
    failures: list[str] = []
    cached: list[int] = []

    def worker(offset: int) -> None:
        for k in range(200):
            i = (k + offset) % len(xs)
            got = numpy_backend.backprop(net, params, xs[i], np.zeros((len(xs[i]), 2)))
            if not np.allclose(got.grads.weights[0], expected[i].grads.weights[0], rtol=1e-12):
                failures.append(f"thread {offset}, batch {len(xs[i])}")
        cached.append(len(numpy_backend._local.cache))

    threads = [threading.Thread(target=worker, args=(offset,)) for offset in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert cached == [numpy_backend.CACHE_SIZE] * 3  # 11 batch sizes, 8 workspaces kept


def test_the_backend_is_registered_and_covers_every_activation_and_loss() -> None:
    backend = adapters.get("numpy")
    assert backend is numpy_backend
    assert backend.name == "numpy"
    assert "numpy" in adapters.available()
    assert set(numpy_kernels.ACTIVATIONS) == set(reference.ACTIVATIONS)
    assert set(numpy_kernels.LOSSES) == set(reference.LOSSES)


def test_backprop_checked_takes_a_checked_batch() -> None:
    net = Network((4, 3, 2))
    params = reference.init_params(net)
    batch = reference.check_inputs(net, params, [0.5, 1, 0, -1], [1, 0])
    got = numpy_backend.backprop_checked(net, params, batch)
    ref = reference.backprop(net, params, [0.5, 1, 0, -1], [1, 0])
    assert got.activations[0].shape == (4,)
    np.testing.assert_allclose(got.grads.weights[0], ref.grads.weights[0], rtol=1e-14)
