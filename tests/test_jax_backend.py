"""The JAX adapter: float64 without the global flag, the padded (bucketed) path against the
exact-shape path, compiling once per bucket, and jax.nn's conventions that it replaces."""

from __future__ import annotations

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crossgrad import adapters
from crossgrad.adapters import jax_backend, tolerance
from crossgrad.benchmarks.crosscheck_throughput import random_case
from crossgrad.reference import (
    ACTIVATIONS,
    BackpropResult,
    Network,
    Params,
    check_inputs,
    init_params,
)

NET = Network((3, 5, 2), ("gelu", "tanh"), "half_sse")
X, Y = np.linspace(-2, 2, 12).reshape(4, 3), np.zeros((4, 2))

# The exact-shape path compiles once per network (net is static), so the random networks
# share a few shapes: depths 1-5, widths 1-32,
# batches 1-16; and one network both wider than 32 and deeper than 8 (another bucket).
SHAPES = [((5, 1), 16), ((1, 32, 7, 2), 1), ((9, 3, 17, 1, 30, 4), 6)]
RNG = np.random.default_rng(7)
RANDOM_CASES = [
    random_case(RNG, sizes=sizes, batch=batch) for sizes, batch in SHAPES for _ in range(8)
] + [random_case(RNG, sizes=(40, *[3] * 9, 2), batch=12)]


def _assert_same(net: Network, params: Params, x, y, got: BackpropResult, want: BackpropResult):
    """``got`` equals ``want`` under the tolerance model (error scales of the same problem)."""
    batch = check_inputs(net, params, x, y)
    fwd, scale = tolerance.error_scales(net, params, batch.x, batch.y)
    rtol = tolerance.default_rtol(net, params.dtype)
    single = batch.single
    pairs = [("loss", np.asarray(got.loss), np.asarray(want.loss), np.asarray(fwd.loss))]
    for l in range(net.n_layers):
        for kind, g, w, s in (
            ("z", got.preactivations[l], want.preactivations[l], fwd.preactivations[l]),
            ("a", got.activations[l + 1], want.activations[l + 1], fwd.activations[l]),
            ("W", got.grads.weights[l], want.grads.weights[l], scale.weights[l]),
            ("b", got.grads.biases[l], want.grads.biases[l], scale.biases[l]),
        ):
            pairs.append((f"{kind}{l + 1}", g, w, s[0] if single and kind in "za" else s))
    for name, g, w, s in pairs:
        c = tolerance.compare_arrays(name, g, w, s, rtol)
        assert c.ok, (net, c)


@pytest.mark.parametrize("case", range(len(RANDOM_CASES)))
def test_bucketed_equals_exact_shape(case):
    net, params, x, y = RANDOM_CASES[case]
    bucketed = jax_backend.backprop(net, params, x, y)
    exact = jax_backend.backprop(net, params, x, y, bucketed=False)
    _assert_same(net, params, x, y, bucketed, exact)
    adapters.crosscheck(net, params, x, y, backends=["jax"]).raise_for_mismatch()


def test_one_sample_gives_vectors():
    net, params, x, y = RANDOM_CASES[-1]
    single = jax_backend.backprop(net, params, x[0], y[0])
    assert [a.shape for a in single.activations] == [(n,) for n in net.sizes]
    assert single.grads.dtype == np.float64


def test_small_shapes_share_one_compilation():
    def cache_size() -> int:  # the buckets' executables this process has (compiled or loaded)
        return len(jax_backend._BUCKETS._loaded)

    first = Network((3, 9, 2), ("tanh", "relu"), "mse")
    jax_backend.backprop(first, init_params(first, seed=0), X, np.ones((4, 2)))
    compiled = cache_size()
    other = Network((7, 30, 2), ("softplus", "identity"), "half_sse", "sum")  # also depth 2
    for n in (1, 5, 16):
        x, y = np.ones((n, 7)), np.ones((n, 2))
        jax_backend.backprop(other, init_params(other, seed=n), x, y)
    assert cache_size() == compiled
    for depth in range(1, 9):  # up to DEPTH_FLOOR layers: the same bucket
        net = Network((5, *[4] * (depth - 1), 3), "elu", "half_sse")
        jax_backend.backprop(net, init_params(net, seed=depth), np.ones((3, 5)), np.ones((3, 3)))
    assert cache_size() == compiled
    deeper = Network((5, *[4] * 8, 3), "elu", "half_sse")  # 9 layers: the next bucket, 16
    jax_backend.backprop(deeper, init_params(deeper, seed=9), np.ones((3, 5)), np.ones((3, 3)))
    assert cache_size() == compiled + 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float64_without_global_flag(dtype):
    assert jax.config.jax_enable_x64 is False  # the user's setting, as JAX ships
    params = init_params(NET, seed=1, dtype=dtype)
    report = adapters.crosscheck(NET, params, X, Y, backends=["jax"])
    assert jax.config.jax_enable_x64 is False
    report.raise_for_mismatch()  # float64's rtol: a float32 computation would fail it
    assert report.results["jax"].grads.dtype == dtype


def test_users_global_x64_is_kept():
    jax.config.update("jax_enable_x64", True)
    try:
        params = init_params(NET, seed=1, dtype=np.float32)
        report = adapters.crosscheck(NET, params, X, Y, backends=["jax"])
        assert jax.config.jax_enable_x64 is True
    finally:
        jax.config.update("jax_enable_x64", False)
    report.raise_for_mismatch()
    assert report.results["jax"].grads.dtype == np.float32


# The conventions of jax.nn that the adapter replaces: were they used, the adapter would be off.
def test_jax_nn_gelu_default_is_the_tanh_approximation():
    z = np.linspace(-3, 3, 13)
    exact = np.asarray(jax_backend.ACTIVATIONS["gelu"](jnp.asarray(z)))
    np.testing.assert_allclose(exact, ACTIVATIONS["gelu"].forward(z), rtol=1e-6, atol=1e-7)
    assert np.abs(np.asarray(jax.nn.gelu(jnp.asarray(z))) - exact).max() > 1e-4


def test_jax_nn_leaky_relu_slope_at_zero_is_one():
    assert float(jax.grad(jax.nn.leaky_relu)(0.0)) == 1.0
    assert float(jax.grad(jax_backend.ACTIVATIONS["leaky_relu"])(0.0)) == pytest.approx(0.01)


def _checked(cases):
    return [(net, params, check_inputs(net, params, x, y)) for net, params, x, y in cases]


def test_many_cases_in_flight_give_each_cases_own_result_bit_for_bit():
    cases = _checked(RANDOM_CASES[:10])
    many = jax_backend.backprop_many_checked(cases)
    assert len(many) == len(cases) > jax_backend.IN_FLIGHT
    for case, got in zip(cases, many, strict=True):
        want = jax_backend.backprop_checked(*case)
        assert got.loss == want.loss
        assert got.grads == want.grads
        for g, w in zip(got.activations, want.activations, strict=True):
            np.testing.assert_array_equal(g, w, strict=True)


def test_a_failing_case_in_flight_stays_with_its_case(monkeypatch):
    cases = _checked(RANDOM_CASES[:7])
    start = jax_backend.start_checked

    def fails_on_mse(net, params, batch):
        if net.loss == "mse":
            raise RuntimeError("no mse today")
        finish = start(net, params, batch)
        if net.loss == "half_sse":

            def late():
                raise FloatingPointError("half_sse failed late")

            return late
        return finish

    monkeypatch.setattr(jax_backend, "start_checked", fails_on_mse)
    many = jax_backend.backprop_many_checked(cases)
    losses = [net.loss for net, _, _ in cases]
    assert {"mse", "half_sse"} <= set(losses)
    assert len(set(losses)) > 2
    for loss, got in zip(losses, many, strict=True):
        if loss == "mse":
            assert isinstance(got, RuntimeError)
        elif loss == "half_sse":
            assert isinstance(got, FloatingPointError)
        else:
            assert got.grads.dtype == np.float64


def test_crosscheck_starts_jax_before_the_reference_and_collects_it_after(monkeypatch):
    events = []
    start = jax_backend.start_checked

    def recording(net, params, batch):
        events.append("jax started")
        finish = start(net, params, batch)
        return lambda: (events.append("jax collected"), finish())[1]

    module = importlib.import_module("crossgrad.adapters.reference_backend")
    backprop_reference = module.backprop_checked

    def reference(*args):
        events.append("reference")
        return backprop_reference(*args)

    monkeypatch.setattr(jax_backend, "start_checked", recording)
    monkeypatch.setattr(module, "backprop_checked", reference)
    adapters.crosscheck(NET, init_params(NET, seed=4), X, Y, backends=["jax"]).raise_for_mismatch()
    assert events == ["jax started", "reference", "jax collected"]


def test_exact_forward_and_loss_work_under_jit_and_grad_with_net_static():
    net = Network((3, 4, 2), ("tanh", "sigmoid"), "binary_cross_entropy", "sum")
    params = init_params(net, seed=2)
    y = np.linspace(0, 1, 8).reshape(4, 2)

    def batch_loss(weights, biases, x, y, net):
        zs, activations = jax_backend.forward(net, weights, biases, x)
        return jax_backend.loss(net, zs, activations, y)

    grad = jax.jit(jax.grad(batch_loss, argnums=(0, 1)), static_argnames=("net",))
    with jax.enable_x64(True):
        gW, gb = grad(list(params.weights), list(params.biases), X, y, net=net)
        gW, gb = [np.asarray(g) for g in gW], [np.asarray(g) for g in gb]
    from crossgrad.reference import backprop

    want = backprop(net, params, X, y).grads
    assert gW[0].dtype == np.float64
    for g, w in zip((*gW, *gb), (*want.weights, *want.biases), strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-15)
