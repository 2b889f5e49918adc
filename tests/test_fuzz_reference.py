"""Fuzzing the reference's public functions with adversarial arguments (see ``fuzzing``).

Property: a documented error naming the argument, or a finite result equal, bit for bit, to
the reference's on the same numbers passed as a plain float64 array; inputs never modified;
never a warning.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
from fuzzing import Drawn, Snapshot, all_finite, arrays_like, budget, outcome
from hypothesis import given
from hypothesis import strategies as st

from crossgrad import reference, strategies
from crossgrad.reference import ACTIVATIONS, LOSSES, REDUCTIONS, Network, Params

FUNCTIONS = ("backprop", "loss", "predict", "train_step")


def _call(name: str, case: Any, x: Any, y: Any) -> Any:
    if name == "predict":
        return reference.predict(case.net, case.params, x)
    if name == "train_step":
        return reference.train_step(case.net, case.params, x, y, lr=0.1)
    return getattr(reference, name)(case.net, case.params, x, y)


def _same(a: Any, b: Any) -> bool:
    """Whether two outcomes are the same: equal results, or errors of one type and message."""
    if isinstance(a, BaseException) or isinstance(b, BaseException):
        return type(a) is type(b) and str(a) == str(b)
    if isinstance(a, reference.BackpropResult):
        return a.loss == b.loss and a.grads == b.grads
    if isinstance(a, tuple):
        return a[0] == b[0] and a[1] == b[1]
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return bool(a.dtype == b.dtype and np.array_equal(a, b))


def _finite(result: Any) -> bool:
    if isinstance(result, reference.BackpropResult):
        return all_finite(result.loss, *result.preactivations, *result.grads.weights,
                          *result.grads.biases)  # fmt: skip
    if isinstance(result, tuple):
        return all_finite(result[0], *result[1].weights, *result[1].biases)
    return all_finite(result)


@budget(150)
@given(
    case=strategies.cases(width=(1, 4), depth=(1, 2), batch=(1, 3)),
    data=st.data(),
    name=st.sampled_from(FUNCTIONS),
    single=st.booleans(),
)
def test_adversarial_x_and_y(case: Any, data: st.DataObject, name: str, single: bool) -> None:
    x_values, y_values = (case.x[0], case.y[0]) if single else (case.x, case.y)
    x: Drawn = data.draw(arrays_like(x_values), label="x")
    y: Drawn = data.draw(arrays_like(y_values), label="y")
    snapshot = Snapshot(case.params, x.value, y.value)
    got = outcome(lambda: _call(name, case, x.value, y.value))
    snapshot.assert_unchanged()
    if x.canonical is None or (y.canonical is None and name != "predict"):
        assert isinstance(got, TypeError | ValueError), got
        words = set(str(got).replace("(", " ").replace(")", " ").split())
        assert words & {"x", "y"}, str(got)  # the bad one, or x when x fails first
        return
    expected = outcome(lambda: _call(name, case, x.canonical, y.canonical))
    assert _same(got, expected), (got, expected)
    if not isinstance(got, BaseException):
        assert _finite(got)


LRS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**1100), 2**1100),
    st.booleans(),
    st.sampled_from([None, "0.1", 1j, np.float32(0.5), np.float64(1e300), np.int8(3), [0.1]]),
)


@budget(100)
@given(case=strategies.cases(width=(1, 3), depth=(1, 2), batch=(1, 2)), lr=LRS)
def test_adversarial_learning_rates(case: Any, lr: Any) -> None:
    grads = reference.backprop(case.net, case.params, case.x, case.y).grads
    snapshot = Snapshot(case.params, grads)
    for got in (
        outcome(lambda: reference.sgd_step(case.params, grads, lr)),
        outcome(lambda: reference.train_step(case.net, case.params, case.x, case.y, lr)),
    ):
        snapshot.assert_unchanged()
        if isinstance(got, BaseException):
            assert "lr" in str(got), got
            continue
        new = got if isinstance(got, Params) else got[1]
        assert all_finite(*new.weights, *new.biases)
        assert new == reference.sgd_step(case.params, grads, float(lr))


NAMES = st.one_of(
    st.sampled_from([*ACTIVATIONS, *LOSSES, *REDUCTIONS]),
    st.text(max_size=5),
    st.sampled_from([None, 3, b"sigmoid", ["sigmoid"], ("relu", "relu"), ("relu", 1)]),
)
SIZES = st.one_of(
    st.lists(st.integers(-2, 4), max_size=4),
    st.lists(st.sampled_from([1, 2, True, 2.0, np.int64(3), "3", None, 2**70]), max_size=3),
    st.sampled_from([None, "3,2", 3, (3, 2), np.array([3, 2]), range(1, 4)]),
)


@budget(80)
@given(sizes=SIZES, activation=NAMES, loss=NAMES, reduction=NAMES)
def test_adversarial_networks(sizes: Any, activation: Any, loss: Any, reduction: Any) -> None:
    got = outcome(lambda: Network(sizes, activation=activation, loss=loss, reduction=reduction))
    if isinstance(got, BaseException):
        return
    assert got.sizes == tuple(int(n) for n in sizes)
    assert (got.loss, got.reduction) == (loss, reduction)
    assert len(got.activations) == got.n_layers == len(sizes) - 1
    assert all(isinstance(n, int) and n >= 1 for n in got.sizes)


SEEDS = st.one_of(
    st.integers(-5, 2**80),
    st.sampled_from([None, 1.5, True, "0", np.int64(7), np.uint8(3), -1, [1, 2]]),
)
DTYPES = st.sampled_from(
    [np.float64, np.float32, "float32", "float64", np.float16, np.int32, complex, "f8", object]
)


@budget(100)
@given(sizes=st.lists(st.integers(1, 4), min_size=2, max_size=3), seed=SEEDS, dtype=DTYPES)
def test_adversarial_init_params(sizes: list[int], seed: Any, dtype: Any) -> None:
    net = Network(sizes)
    got = outcome(lambda: reference.init_params(net, seed=seed, dtype=dtype))
    if isinstance(got, BaseException):
        assert any(word in str(got) for word in ("seed", "dtype")), got
        return
    assert got.dtype == np.dtype(dtype)
    assert got.sizes == net.sizes
    assert all_finite(*got.weights, *got.biases)
    if seed is not None:
        assert got == reference.init_params(net, seed=seed, dtype=dtype)


@budget(150)
@given(sizes=st.lists(st.integers(1, 3), min_size=2, max_size=3), data=st.data())
def test_adversarial_params(sizes: list[int], data: st.DataObject) -> None:
    layers = list(itertools.pairwise(sizes))
    weights = [data.draw(arrays_like(np.full((o, i), 0.5)), label="W") for i, o in layers]
    biases = [data.draw(arrays_like(np.full(o, 0.25)), label="b") for _, o in layers]
    values = [d.value for d in (*weights, *biases)]
    snapshot = Snapshot(*values)
    got = outcome(lambda: Params([w.value for w in weights], [b.value for b in biases]))
    snapshot.assert_unchanged()
    if any(d.canonical is None for d in (*weights, *biases)):
        if not isinstance(got, BaseException):
            # Params checks structure; whether values are finite is checked where params
            # enter a computation, with a message naming the array.
            assert any(d.how in ("nan", "inf") for d in (*weights, *biases)), got
            net = Network(sizes)
            got = outcome(
                lambda: reference.backprop(net, got, np.zeros(sizes[0]), np.zeros(sizes[-1]))
            )
        assert isinstance(got, TypeError | ValueError), got
        assert "weights" in str(got) or "biases" in str(got), got
        return
    if isinstance(got, BaseException):  # only a mix of dtypes may be refused here
        assert "share one dtype" in str(got), got
        return
    for a, d in zip((*got.weights, *got.biases), (*weights, *biases), strict=True):
        assert np.array_equal(a, d.canonical)
    assert got.dtype in (np.float32, np.float64)
