"""The reference's backprop: gradients against central differences, shapes, dtypes, extremes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from numdiff import assert_close_to_numeric, central_difference

from crossgrad.reference import (
    ACTIVATIONS,
    LOSSES,
    REDUCTIONS,
    Network,
    Params,
    backprop,
    loss,
    predict,
    sgd_step,
    train_step,
)


def _targets(net: Network, batch: int, rng: np.random.Generator) -> np.ndarray:
    shape = (batch, net.sizes[-1])
    if net.loss in ("binary_cross_entropy", "softmax_cross_entropy"):
        return rng.uniform(0, 1, size=shape)
    return rng.normal(size=shape)


def _problem(
    sizes: tuple[int, ...], activations: tuple[str, ...], loss_name: str, reduction: str,
    batch: int = 3, seed: int = 0, dtype: type = np.float64,
) -> tuple[Network, Params, np.ndarray, np.ndarray]:  # fmt: skip
    net = Network(sizes, activations, loss_name, reduction)
    rng = np.random.default_rng(seed)
    params = Params(
        [rng.normal(size=(o, i)).astype(dtype) for i, o in itertools.pairwise(sizes)],
        [rng.normal(scale=0.5, size=o).astype(dtype) for o in sizes[1:]],
    )
    x = rng.normal(size=(batch, sizes[0]))
    return net, params, x, _targets(net, batch, rng)


def _numeric_grads(net: Network, params: Params, x: np.ndarray, y: np.ndarray) -> Params:
    flat = [*params.weights, *params.biases]

    def grad_of(k: int) -> np.ndarray:
        def f(value: np.ndarray) -> float:
            arrays = [value if j == k else a for j, a in enumerate(flat)]
            n = len(params)
            return loss(net, Params(arrays[:n], arrays[n:]), x, y)

        return central_difference(f, flat[k])

    grads = [grad_of(k) for k in range(len(flat))]
    return Params(grads[: len(params)], grads[len(params) :])


def _assert_grads_close_to_numeric(out: Params, numeric: Params) -> None:
    scale = max(float(np.abs(g).max()) for g in (*numeric.weights, *numeric.biases))
    for analytic, expected in zip(
        (*out.weights, *out.biases), (*numeric.weights, *numeric.biases), strict=True
    ):
        assert_close_to_numeric(analytic, expected, scale=scale)


def _output_activations(loss_name: str) -> list[str]:
    required = LOSSES[loss_name].output_activation
    return [required] if required else sorted(ACTIVATIONS)


@pytest.mark.parametrize("hidden", sorted(ACTIVATIONS))
@pytest.mark.parametrize("loss_name", sorted(LOSSES))
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradients_match_central_differences(hidden: str, loss_name: str, reduction: str) -> None:
    output = LOSSES[loss_name].output_activation or "tanh"
    net, params, x, y = _problem((3, 4, 3), (hidden, output), loss_name, reduction)
    _assert_grads_close_to_numeric(
        backprop(net, params, x, y).grads, _numeric_grads(net, params, x, y)
    )


@pytest.mark.parametrize("loss_name", sorted(LOSSES))
def test_every_output_activation_against_central_differences(loss_name: str) -> None:
    for i, output in enumerate(_output_activations(loss_name)):
        net, params, x, y = _problem((2, 3, 2), ("softplus", output), loss_name, "mean", seed=i)
        _assert_grads_close_to_numeric(
            backprop(net, params, x, y).grads, _numeric_grads(net, params, x, y)
        )


@pytest.mark.parametrize(
    ("sizes", "batch"),
    [((1, 1), 1), ((3, 1), 1), ((1, 1, 1, 1), 2), ((2, 5, 1, 4, 3), 4)],
    ids=["width-1", "one-layer", "three-layers-of-width-1", "four-layers"],
)
def test_small_and_deep_shapes_against_central_differences(
    sizes: tuple[int, ...], batch: int
) -> None:
    names = ("tanh", "elu", "silu", "gelu")[: len(sizes) - 1]
    net, params, x, y = _problem(sizes, names, "half_sse", "mean", batch=batch)
    _assert_grads_close_to_numeric(
        backprop(net, params, x, y).grads, _numeric_grads(net, params, x, y)
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shapes_and_dtypes_are_preserved(dtype: type) -> None:
    net, params, x, y = _problem((4, 5, 3, 2), ("relu", "tanh", "identity"), "mse", "sum",
                                 batch=6, dtype=dtype)  # fmt: skip
    out = backprop(net, params, x, y)
    assert [g.shape for g in out.grads.weights] == [W.shape for W in params.weights]
    assert [g.shape for g in out.grads.biases] == [b.shape for b in params.biases]
    assert out.grads.dtype == dtype
    assert [z.shape for z in out.preactivations] == [(6, 5), (6, 3), (6, 2)]
    assert [a.shape for a in out.activations] == [(6, 4), (6, 5), (6, 3), (6, 2)]
    assert {a.dtype for a in (*out.preactivations, *out.activations)} == {np.dtype(dtype)}
    assert isinstance(out.loss, float)


def test_one_sample_gives_vectors_and_the_same_gradients_as_a_batch_of_one() -> None:
    net, params, x, y = _problem((4, 3, 2), ("sigmoid", "sigmoid"), "half_sse", "mean", batch=1)
    single, batch = backprop(net, params, x[0], y[0]), backprop(net, params, x, y)
    assert single.grads == batch.grads
    assert single.loss == batch.loss
    assert [z.shape for z in single.preactivations] == [(3,), (2,)]
    for s, b in zip(single.activations, batch.activations, strict=True):
        np.testing.assert_array_equal(s, b[0])


def test_forward_values_follow_the_textbook() -> None:
    net, params, x, y = _problem((3, 4, 2), ("tanh", "sigmoid"), "half_sse", "sum")
    out = backprop(net, params, x, y)
    (W1, W2), (b1, b2) = params.weights, params.biases
    z1 = x @ W1.T + b1
    z2 = np.tanh(z1) @ W2.T + b2
    np.testing.assert_allclose(out.preactivations[0], z1, rtol=1e-15)
    np.testing.assert_allclose(out.preactivations[1], z2, rtol=1e-15)
    y_hat = 1 / (1 + np.exp(-z2))
    np.testing.assert_allclose(out.activations[-1], y_hat, rtol=1e-15)
    np.testing.assert_allclose(out.loss, 0.5 * ((y_hat - y) ** 2).sum(), rtol=1e-14)
    np.testing.assert_array_equal(predict(net, params, x), out.activations[-1])
    # One sample goes through a different BLAS kernel than a batch: equal to an ulp or so.
    np.testing.assert_allclose(predict(net, params, x[0]), out.activations[-1][0], rtol=1e-15)


def test_sum_reduction_adds_the_samples_and_mean_divides_by_the_batch() -> None:
    net, params, x, y = _problem((3, 4, 2), ("relu", "identity"), "mse", "sum", batch=5)
    total = backprop(net, params, x, y)
    per_sample = [backprop(net, params, x[i], y[i]) for i in range(5)]
    assert total.loss == pytest.approx(sum(r.loss for r in per_sample), rel=1e-14, abs=0)
    for k, g in enumerate(total.grads.weights):
        np.testing.assert_allclose(g, sum(r.grads.weights[k] for r in per_sample), rtol=1e-13)
    mean = backprop(Network(net.sizes, net.activations, net.loss, "mean"), params, x, y)
    assert mean.loss == pytest.approx(total.loss / 5, rel=1e-15, abs=0)
    for g_mean, g_sum in zip(mean.grads.weights, total.grads.weights, strict=True):
        np.testing.assert_allclose(g_mean, g_sum / 5, rtol=1e-14)


@pytest.mark.parametrize("hidden", sorted(ACTIVATIONS))
def test_float32_agrees_with_float64(hidden: str) -> None:
    output = "identity"
    net, p64, x, y = _problem((4, 6, 3), (hidden, output), "half_sse", "mean")
    p32 = Params(
        [W.astype(np.float32) for W in p64.weights], [b.astype(np.float32) for b in p64.biases]
    )
    g64, g32 = backprop(net, p64, x, y).grads, backprop(net, p32, x, y).grads
    for a, b in zip((*g32.weights, *g32.biases), (*g64.weights, *g64.biases), strict=True):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * np.abs(b).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
@pytest.mark.parametrize("loss_name", sorted(LOSSES))
def test_preactivations_of_a_million_stay_finite_and_silent(
    act: str, loss_name: str, dtype: type
) -> None:
    # Weights of ±1e6 on an input of ±1 put |z| at 1e6 in both layers; any NumPy overflow or
    # invalid-value warning fails the test (pytest runs with filterwarnings = error).
    output = LOSSES[loss_name].output_activation or act
    net = Network((2, 2, 2), (act, output), loss_name)
    W = np.array([[1e6, 0.0], [0.0, -1e6]], dtype=dtype)
    params = Params([W, W], [np.zeros(2, dtype), np.zeros(2, dtype)])
    x = np.array([[1.0, 1.0], [-1.0, -1.0]])
    y = np.array([[1.0, 0.0], [0.0, 1.0]])
    out = backprop(net, params, x, y)
    assert np.isfinite(out.loss)
    assert min(np.abs(z).max() for z in out.preactivations) >= 1e6
    for g in (*out.grads.weights, *out.grads.biases):
        assert np.isfinite(g).all()
    _, new = train_step(net, params, x, y, lr=1e-9)
    assert all(np.isfinite(W).all() for W in new.weights)


def test_relu_at_its_kink_has_zero_derivative() -> None:
    # A zero weight row and bias put z exactly on 0: the unit passes no gradient (relu'(0) = 0).
    net = Network((2, 2, 1), ("relu", "identity"), "half_sse")
    params = Params([[[0.0, 0.0], [1.0, 1.0]], [[1.0, 1.0]]], [[0.0, 0.0], [0.0]])
    out = backprop(net, params, [[1.0, 2.0]], [[0.0]])
    assert out.preactivations[0][0, 0] == 0.0
    np.testing.assert_array_equal(out.grads.weights[0][0], [0.0, 0.0])
    assert out.grads.biases[0][0] == 0.0
    assert out.grads.biases[0][1] != 0.0


def test_leaky_relu_at_its_kink_uses_the_left_slope() -> None:
    net = Network((2, 1, 1), ("leaky_relu", "identity"), "half_sse")
    params = Params([[[0.0, 0.0]], [[1.0]]], [[0.0], [0.0]])
    out = backprop(net, params, [[1.0, 2.0]], [[-1.0]])
    # ŷ = 0, ∂L/∂ŷ = ŷ − y = 1, δ_1 = 1 · W_2 · leaky_relu'(0) = 0.01.
    assert out.grads.biases[0][0] == 0.01


def test_sgd_step_is_params_minus_lr_times_grads() -> None:
    net, params, x, y = _problem((3, 4, 2), ("elu", "sigmoid"), "binary_cross_entropy", "mean")
    grads = backprop(net, params, x, y).grads
    new = sgd_step(params, grads, lr=0.3)
    for p_new, p, g in zip(
        (*new.weights, *new.biases), (*params.weights, *params.biases),
        (*grads.weights, *grads.biases), strict=True,
    ):  # fmt: skip
        np.testing.assert_array_equal(p_new, p - 0.3 * g)
    loss_before, stepped = train_step(net, params, x, y, lr=0.3)
    assert loss_before == backprop(net, params, x, y).loss
    assert stepped == new


def test_a_small_step_against_the_gradient_lowers_the_loss() -> None:
    net, params, x, y = _problem((3, 6, 3), ("gelu", "identity"), "softmax_cross_entropy", "mean")
    before, new = train_step(net, params, x, y, lr=1e-3)
    assert loss(net, new, x, y) < before
