"""The rule for results: finite input gives finite results or a clear error, never a warning.

Each case is finite input that overflows somewhere; the error must name what overflowed, the
dtype and the input to blame.  pytest turns any NumPy warning into a failure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from crossgrad import adapters, reference
from crossgrad.reference import Network, Params, init_params

NET = Network((2, 3, 2))
P64 = init_params(NET, seed=0)
P32 = init_params(NET, seed=0, dtype=np.float32)
GRADS32 = reference.backprop(NET, P32, [1.0, 0.0], [0.0, 0.0]).grads
RELU = Network((2, 3), activation="relu")
RELU32 = init_params(RELU, seed=1, dtype=np.float32)


@pytest.mark.parametrize(
    ("call", "words"),
    [
        pytest.param(
            lambda: reference.backprop(NET, P64, [1.0, 2.0], [1e200, 0.0]),
            ["backprop overflows float64 in the loss", "targets (y) of magnitude 1e+200"],
            id="backprop-targets-1e200",
        ),
        pytest.param(
            lambda: reference.loss(NET, P64, [1.0, 2.0], [1e200, 0.0]),
            ["loss overflows float64 in the loss", "targets (y) of magnitude 1e+200"],
            id="loss-targets-1e200",
        ),
        pytest.param(
            lambda: reference.train_step(NET, P32, [1.0, 0.0], [0.0, 0.0], lr=1e300),
            ["train_step overflows float32 in the new W1", "lr of magnitude 1e+300"],
            id="train_step-lr-1e300-float32",
        ),
        pytest.param(
            lambda: reference.sgd_step(P32, GRADS32, lr=1e300),
            ["sgd_step overflows float32 in the new W1", "use a smaller lr"],
            id="sgd_step-lr-1e300-float32",
        ),
        pytest.param(
            lambda: reference.predict(
                Network((2, 2), activation="relu"),
                Params([np.full((2, 2), 3.0, np.float32)], [np.zeros(2, np.float32)]),
                [3e38, 3e38],
            ),
            ["predict overflows float32 in the output", "inputs (x) of magnitude 3e+38"],
            id="predict-relu-float32",
        ),
        pytest.param(
            lambda: reference.backprop(
                Network((1, 1), activation="tanh"), Params([[[1e308]]], [[1e308]]), [[10.0]], [[0]]
            ),
            ["backprop overflows float64 in the pre-activations z1", "weights of magnitude 1e+308"],
            id="backprop-saturated-z-is-still-inf",
        ),
    ],
)
def test_overflow_is_an_overflow_error_naming_the_culprit(
    call: Callable[[], Any], words: list[str]
) -> None:
    with pytest.raises(OverflowError) as info:
        call()
    for w in words:
        assert w in str(info.value)


def test_a_float64_value_too_large_for_float32_params_says_so() -> None:
    with pytest.raises(ValueError, match=r"x = 1e\+39 does not fit float32") as info:
        reference.backprop(NET, P32, np.array([1e39, 0.0]), [0.0, 0.0])
    assert "non-finite" not in str(info.value)
    with pytest.raises(ValueError, match=r"y = -5e\+38 does not fit float32"):
        reference.loss(NET, P32, [0.0, 0.0], [[-5e38, 1.0]])


def test_huge_but_representable_input_gives_finite_results() -> None:
    out = reference.backprop(NET, P64, np.full(2, 1e300), [0.0, 0.0])  # sigmoid saturates
    assert np.isfinite(out.loss)
    assert all(np.isfinite(a).all() for a in (*out.grads.weights, *out.grads.biases))


def test_crosscheck_raises_the_references_overflow_instead_of_reporting_disagreement() -> None:
    with pytest.raises(OverflowError, match="targets"):
        adapters.crosscheck(NET, P64, [1.0, 2.0], [1e200, 0.0], backends=["numeric"])
    with pytest.raises(OverflowError, match=r"^cases\[1\]: backprop overflows"):
        list(
            adapters.crosscheck_many(
                [(NET, P64, [1.0, 2.0], [0.0, 0.0]), (NET, P64, [1.0, 2.0], [1e200, 0.0])],
                backends=["numeric"],
            )
        )


def test_the_tolerance_model_does_not_warn_on_huge_inputs() -> None:
    report = adapters.crosscheck(NET, P64, np.full((4, 2), 1e300), np.zeros((4, 2)), ["numeric"])
    assert "reference" in report.results


def test_inputs_are_not_modified_when_a_result_overflows() -> None:
    x, y = np.array([1.0, 2.0]), np.array([1e200, 0.0])
    before = [a.copy() for a in (*P64.weights, *P64.biases, x, y)]
    with pytest.raises(OverflowError):
        reference.backprop(NET, P64, x, y)
    for a, b in zip(before, (*P64.weights, *P64.biases, x, y), strict=True):
        np.testing.assert_array_equal(a, b)


def test_results_do_not_depend_on_the_inputs_memory_layout() -> None:
    # Found by fuzzing: a strided y summed in another order, one unit in the last place off.
    net = Network((3, 2, 3), activation=("softplus", "identity"), loss="softmax_cross_entropy")
    params = Params(
        [np.array([[1.0, 0.5, 0.0], [-0.5, -0.5, -1.0]]), np.array([[0, 0], [0.5, 1], [-1, -1]])],
        [np.array([-1.0, -1.0]), np.array([1.0, 1.0, -0.5])],
    )
    x = np.array([[0.75, 0.25, 0.0], [-0.5, -0.375, -1.0]])
    y = np.array([[0.0, 0.0, 0.125], [0.875, 0.625, 1.0]])
    wide = np.zeros((2, 6))
    wide[:, ::2] = y
    contiguous = reference.backprop(net, params, x, y)
    for x_, y_ in ((x, wide[:, ::2]), (np.asfortranarray(x), np.asfortranarray(y))):
        other = reference.backprop(net, params, x_, y_)
        assert other.loss == contiguous.loss
        assert other.grads == contiguous.grads
