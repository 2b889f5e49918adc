"""Network descriptions, Params and their initialisation, including every rejected input."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import numpy as np
import pytest

from crossgrad.reference import Network, Params, init_params


def test_network_describes_the_worked_example() -> None:
    net = Network((4, 3, 2), activation="sigmoid", loss="half_sse", reduction="mean")
    assert net.sizes == (4, 3, 2)
    assert net.activations == ("sigmoid", "sigmoid")
    assert net.loss == "half_sse"
    assert net.reduction == "mean"
    assert net.n_layers == 2


def test_network_defaults_and_per_layer_activations() -> None:
    net = Network([5, 4, 3, 1], activation=["relu", "tanh", "identity"], loss="mse")
    assert net.sizes == (5, 4, 3, 1)
    assert net.activations == ("relu", "tanh", "identity")
    assert Network((2, 1)).activations == ("sigmoid",)
    assert Network((2, 1)).reduction == "mean"


def test_network_is_immutable_hashable_and_comparable() -> None:
    a = Network((4, 3, 2))
    assert a == Network([4, 3, 2], activation=("sigmoid", "sigmoid"))
    assert hash(a) == hash(Network((4, 3, 2)))
    assert a != Network((4, 3, 2), reduction="sum")
    with pytest.raises(AttributeError):
        a.sizes = (1, 1)  # type: ignore[misc]


def test_network_repr_round_trips() -> None:
    for net in (Network((4, 3, 2)), Network((3, 2, 2), ("relu", "identity"), "mse", "sum")):
        assert eval(repr(net), {"Network": Network}) == net


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"sizes": 4}, TypeError, "sizes must be a sequence"),
        ({"sizes": "432"}, TypeError, "sizes must be a sequence"),
        ({"sizes": (4,)}, ValueError, "at least an input and an output"),
        ({"sizes": (4, 0, 2)}, ValueError, "sizes[1] must be a positive width, got 0"),
        ({"sizes": (4, -3)}, ValueError, "sizes[1] must be a positive width"),
        ({"sizes": (4, 2.5)}, TypeError, "sizes[1] must be an integer, got float"),
        ({"sizes": (True, 2)}, TypeError, "sizes[0] must be an integer, got bool"),
        ({"activation": "swish"}, ValueError, "unknown activation 'swish'; expected one of"),
        ({"activation": 3}, TypeError, "activation must be a name or a sequence"),
        ({"activation": ["relu"]}, ValueError, "activation has 1 names, the network has 2"),
        ({"activation": ["relu", "nope"]}, ValueError, "unknown activation[1] 'nope'"),
        ({"loss": "hinge"}, ValueError, "unknown loss 'hinge'"),
        ({"loss": None}, TypeError, "loss must be a name (str), got NoneType"),
        ({"reduction": "max"}, ValueError, "unknown reduction 'max'; expected one of mean, sum"),
        (
            {"activation": "tanh", "loss": "binary_cross_entropy"},
            ValueError,
            "needs a 'sigmoid' output layer, got activation 'tanh'",
        ),
    ],
)
def test_network_rejects_bad_descriptions(
    kwargs: dict[str, Any], error: type[Exception], words: str
) -> None:
    arguments: dict[str, Any] = {"sizes": (4, 3, 2)} | kwargs
    with pytest.raises(error) as info:
        Network(**arguments)
    assert words in str(info.value)


def test_params_convert_lists_and_integers_to_float64() -> None:
    params = Params(weights=[[[1, 2]], [[3]]], biases=[np.array([0]), [1]])
    assert params.dtype == np.float64
    assert params.sizes == (2, 1, 1)
    assert len(params) == 2
    assert list(params.named()) == ["W1", "b1", "W2", "b2"]


def test_params_keep_float32_and_do_not_copy_or_modify() -> None:
    W = np.ones((2, 3), dtype=np.float32)
    b = np.zeros(2, dtype=np.float32)
    params = Params([W], [b])
    assert params.dtype == np.float32
    assert params.weights[0] is W
    assert W.flags.writeable


def test_params_equality_compares_values_and_dtypes() -> None:
    a = Params([[[1.0, 2.0]]], [[0.5]])
    assert a == Params([np.array([[1.0, 2.0]])], [np.array([0.5])])
    assert a != Params([[[1.0, 2.5]]], [[0.5]])
    assert a != Params([np.array([[1.0, 2.0]], np.float32)], [np.array([0.5], np.float32)])


BAD_PARAMS: list[tuple[Any, Any, type[Exception], str]] = [
    (
        [np.ones((3, 4))],
        [np.ones(3), np.ones(2)],
        ValueError,
        "weights has 1 layers but biases has 2",
    ),
    ([np.ones(4)], [np.ones(1)], ValueError, "weights[0] must be 2-D, got shape (4,)"),
    ([np.ones((3, 4))], [np.ones((3, 1))], ValueError, "biases[0] must be 1-D"),
    ([np.ones((3, 4))], [np.ones(2)], ValueError, "biases[0] has 2 entries, weights[0] has 3 rows"),
    (
        [np.ones((3, 4)), np.ones((2, 5))],
        [np.ones(3), np.ones(2)],
        ValueError,
        "weights[1] takes 5 inputs but layer 0 has 3 outputs",
    ),
    (
        [np.ones((3, 4), np.float32)],
        [np.ones(3)],
        TypeError,
        "must share one dtype, got a mix of float32 and float64",
    ),
    ([np.ones((3, 4), complex)], [np.ones(3)], TypeError, "weights[0] must be an array of real"),
    ([np.ones((3, 4), np.float16)], [np.ones(3)], TypeError, "float32 or float64, got float16"),
    ([np.array([["a"]])], [np.ones(1)], TypeError, "weights[0] must be an array of real numbers"),
    ([[[1.0, 2.0], [3.0]]], [np.ones(2)], TypeError, "weights[0] must be an array of real"),
    ([], [], ValueError, "weights must hold at least one layer"),
    (np.ones((3, 4)), [np.ones(3)], TypeError, "weights must be a sequence with one array per"),
    ([np.ones((0, 4))], [np.ones(0)], ValueError, "weights[0] must not be empty"),
]


@pytest.mark.parametrize(("weights", "biases", "error", "words"), BAD_PARAMS)
def test_params_reject_bad_arrays(
    weights: Any, biases: Any, error: type[Exception], words: str
) -> None:
    with pytest.raises(error) as info:
        Params(weights, biases)
    assert words in str(info.value)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_init_params_follows_torch_linear_default(dtype: type) -> None:
    net = Network((5, 7, 3))
    params = init_params(net, seed=1, dtype=dtype)
    assert params.dtype == dtype
    assert [W.shape for W in params.weights] == [(7, 5), (3, 7)]
    assert [b.shape for b in params.biases] == [(7,), (3,)]
    for (W, b), fan_in in zip(params, (5, 7), strict=True):
        bound = 1 / np.sqrt(fan_in)
        assert np.abs(W).max() <= bound
        assert np.abs(b).max() <= bound
        assert np.abs(W).max() > bound / 2  # really spread over the interval


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_init_params_draws_each_array_in_turn(dtype: type) -> None:
    net = Network((5, 7, 3))
    params = init_params(net, seed=2, dtype=dtype)
    rng = np.random.default_rng(2)  # the same draws, one array at a time, W1 b1 W2 b2
    for (W, b), fan_in in zip(params, (5, 7), strict=True):
        bound = 1 / np.sqrt(fan_in)
        np.testing.assert_array_equal(W, rng.uniform(-bound, bound, W.shape).astype(dtype))
        np.testing.assert_array_equal(b, rng.uniform(-bound, bound, b.shape).astype(dtype))


def test_params_are_plain_data() -> None:
    # Two fields and nothing hidden: copies, pickles and the caller's own Params are equal.
    params = init_params(Network((4, 3, 2)))
    assert set(vars(params)) == {"weights", "biases"}
    assert copy.deepcopy(params) == params
    assert pickle.loads(pickle.dumps(params)) == params
    assert Params(params.weights, params.biases) == params


def test_params_hold_non_finite_values_for_backprop_to_reject() -> None:
    # Params is data (a gradient may overflow); finiteness is checked where params are used.
    params = Params([np.full((1, 1), np.nan)], [np.array([np.inf])])
    assert np.isnan(params.weights[0]).all()


def test_init_params_is_reproducible() -> None:
    net = Network((4, 3, 2))
    assert init_params(net, seed=3) == init_params(net, seed=3)
    assert init_params(net, seed=3) != init_params(net, seed=4)
    rng = np.random.default_rng(0)
    first, second = init_params(net, seed=rng), init_params(net, seed=rng)
    assert first != second  # a Generator is advanced, not reset


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"net": (4, 3, 2)}, TypeError, "net must be a crossgrad Network, got tuple"),
        ({"dtype": np.int32}, TypeError, "dtype must be float32 or float64, got int32"),
        ({"seed": 1.5}, TypeError, "seed must be an int, a numpy Generator or None"),
    ],
)
def test_init_params_rejects_bad_arguments(
    kwargs: dict[str, Any], error: type[Exception], words: str
) -> None:
    arguments: dict[str, Any] = {"net": Network((4, 3, 2))} | kwargs
    with pytest.raises(error) as info:
        init_params(**arguments)
    assert words in str(info.value)
