"""Bad input at the public boundary: a clear error naming the argument, expected and actual."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from crossgrad.reference import Network, Params, backprop, init_params, sgd_step, train_step

NET = Network((4, 3, 2))
PARAMS = init_params(NET, seed=0)
X = np.linspace(-1, 1, 8).reshape(2, 4)
Y = np.array([[1.0, 0.0], [0.0, 1.0]])


@pytest.mark.parametrize(
    ("changes", "error", "words"),
    [
        ({"net": "4-3-2"}, TypeError, "net must be a crossgrad Network, got str"),
        ({"params": [np.ones((3, 4))]}, TypeError, "params must be crossgrad Params"),
        (
            {
                "params": Params(
                    [np.full((3, 4), np.nan), np.ones((2, 3))], [np.ones(3), np.ones(2)]
                )
            },
            ValueError,
            "params.weights[0] must be finite, got 12 non-finite value(s)",
        ),
        (
            {"params": Params([np.ones((3, 4)), np.ones((2, 3))], [np.ones(3), [np.inf, 0]])},
            ValueError,
            "params.biases[1] must be finite, got 1 non-finite value(s)",
        ),
        ({"net": Network((4, 3, 3, 2))}, ValueError, "params has 2 layers, the network has 3"),
        (
            {"net": Network((5, 3, 2))},
            ValueError,
            "params.weights[0] has shape (3, 4), the network's layer 1 (5 -> 3) needs (3, 5)",
        ),
        ({"x": np.ones((2, 5))}, ValueError, "x has 5 features, the network's input layer has 4"),
        ({"x": np.ones((2, 2, 4))}, ValueError, "x must be (batch, 4) or one sample (4,)"),
        ({"x": np.ones(())}, ValueError, "x must be (batch, 4) or one sample (4,), got shape ()"),
        ({"x": np.ones((0, 4)), "y": np.ones((0, 2))}, ValueError, "empty batch"),
        ({"y": np.ones((3, 2))}, ValueError, "y has 3 samples, x has 2"),
        ({"y": np.ones((2, 3))}, ValueError, "y has 3 outputs, the network's output layer has 2"),
        ({"y": np.ones(2)}, ValueError, "y must have the same number of dimensions as x"),
        ({"x": np.ones(4), "y": np.ones((1, 2))}, ValueError, "one sample (out,)"),
        ({"x": np.full((2, 4), np.nan)}, ValueError, "x must be finite, got 8 non-finite"),
        ({"y": np.array([[np.inf, 0], [0, 0]])}, ValueError, "y must be finite"),
        ({"x": np.ones((2, 4), complex)}, TypeError, "x must be an array of real numbers"),
        ({"x": [["a"] * 4] * 2}, TypeError, "x must be an array of real numbers"),
        ({"x": np.ones((2, 4), np.float16)}, TypeError, "x must be float32 or float64"),
        (
            {"net": Network((4, 3, 2), loss="binary_cross_entropy"), "y": Y * 2},
            ValueError,
            "y must hold values in [0, 1] for loss 'binary_cross_entropy'",
        ),
        (
            {"net": Network((4, 3, 2), loss="softmax_cross_entropy"), "y": -Y},
            ValueError,
            "y must hold non-negative weights for loss 'softmax_cross_entropy'",
        ),
    ],
)
def test_backprop_rejects_bad_input(
    changes: dict[str, Any], error: type[Exception], words: str
) -> None:
    arguments: dict[str, Any] = {"net": NET, "params": PARAMS, "x": X, "y": Y} | changes
    with pytest.raises(error) as info:
        backprop(**arguments)
    assert words in str(info.value)
    with pytest.raises(error):
        train_step(**arguments, lr=0.1)


@pytest.mark.parametrize(
    ("lr", "error", "words"),
    [
        (0.0, ValueError, "lr must be finite and positive, got 0.0"),
        (-0.1, ValueError, "lr must be finite and positive, got -0.1"),
        (float("nan"), ValueError, "lr must be finite and positive, got nan"),
        (float("inf"), ValueError, "lr must be finite and positive"),
        (True, TypeError, "lr must be a real number, got bool"),
        ("0.1", TypeError, "lr must be a real number, got str"),
        (None, TypeError, "lr must be a real number, got NoneType"),
    ],
)
def test_learning_rate_must_be_finite_and_positive(
    lr: Any, error: type[Exception], words: str
) -> None:
    grads = backprop(NET, PARAMS, X, Y).grads
    for call in (lambda: sgd_step(PARAMS, grads, lr), lambda: train_step(NET, PARAMS, X, Y, lr)):
        with pytest.raises(error) as info:
            call()
        assert words in str(info.value)


def test_sgd_step_rejects_grads_that_do_not_fit() -> None:
    grads = backprop(NET, PARAMS, X, Y).grads
    other = init_params(Network((4, 5, 2)), seed=0)
    with pytest.raises(ValueError, match=r"grads layer 0 has shapes W \(5, 4\), b \(5,\)"):
        sgd_step(PARAMS, other, 0.1)
    with pytest.raises(ValueError, match="grads has 1 layers, params has 2"):
        sgd_step(PARAMS, init_params(Network((4, 2)), seed=0), 0.1)
    with pytest.raises(TypeError, match="grads has dtype float32, params has float64"):
        sgd_step(PARAMS, init_params(NET, seed=0, dtype=np.float32), 0.1)
    with pytest.raises(TypeError, match="grads must be crossgrad Params, got tuple"):
        sgd_step(PARAMS, (grads.weights, grads.biases), 0.1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="params must be crossgrad Params, got list"):
        sgd_step([], grads, 0.1)  # type: ignore[arg-type]


def test_float64_input_is_computed_in_the_params_dtype() -> None:
    params32 = init_params(NET, seed=0, dtype=np.float32)
    out = backprop(NET, params32, X, Y.astype(int))
    assert out.grads.dtype == np.float32
    assert all(a.dtype == np.float32 for a in (*out.preactivations, *out.activations))
    assert isinstance(out.loss, float)


def test_integer_and_list_input_is_accepted() -> None:
    out_list = backprop(NET, PARAMS, X.tolist(), [[1, 0], [0, 1]])
    out_array = backprop(NET, PARAMS, X, Y)
    assert out_list.grads == out_array.grads


def test_params_of_another_type_are_not_converted_silently() -> None:
    with pytest.raises(TypeError, match=r"params must be crossgrad Params \(weights, biases\)"):
        backprop(NET, (PARAMS.weights, PARAMS.biases), X, Y)  # type: ignore[arg-type]


def test_nothing_the_caller_passed_is_modified() -> None:
    x, y = X.copy(), Y.copy()
    params = Params([W.copy() for W in PARAMS.weights], [b.copy() for b in PARAMS.biases])
    for array in (x, y, *params.weights, *params.biases):
        array.setflags(write=False)  # any in-place write would raise
    _, new = train_step(NET, params, x, y, lr=0.5)
    sgd_step(params, backprop(NET, params, x, y).grads, lr=0.5)
    np.testing.assert_array_equal(x, X)
    np.testing.assert_array_equal(y, Y)
    assert params == PARAMS
    assert new != PARAMS


def test_float32_input_is_computed_in_float64_params() -> None:
    x32, y32 = X.astype(np.float32), Y.astype(np.float32)
    out = backprop(NET, PARAMS, x32, y32)
    assert out.activations[0].dtype == np.float64
    assert out.grads.dtype == np.float64
    assert out.grads == backprop(NET, PARAMS, x32.astype(np.float64), y32.astype(np.float64)).grads
