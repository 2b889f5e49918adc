"""The finite-difference oracle against the reference, on small smooth networks."""

from __future__ import annotations

import numpy as np
import pytest

from crossgrad import adapters
from crossgrad.adapters import numeric_backend, tolerance
from crossgrad.benchmarks.crosscheck_throughput import targets
from crossgrad.reference import LOSSES, Network, backprop, init_params

SMOOTH = ("identity", "sigmoid", "tanh", "softplus", "gelu", "silu")  # no kinks


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("loss", LOSSES)
def test_matches_reference_on_smooth_networks(loss, reduction):
    rng = np.random.default_rng(list(LOSSES).index(loss))
    hidden = [str(a) for a in rng.choice(SMOOTH, 2)]
    output = "sigmoid" if loss == "binary_cross_entropy" else str(rng.choice(SMOOTH))
    net = Network((3, 4, 3, 2), [*hidden, output], loss, reduction)
    x, y = rng.normal(0, 1, (5, 3)), targets(loss, rng, (5, 2))
    report = adapters.crosscheck(net, init_params(net, rng), x, y, backends=["numeric"])
    report.raise_for_mismatch()
    assert report.tolerances["numeric"][0] == numeric_backend.RTOL


def test_float32_params_give_float32_results():
    net = Network((2, 3, 1), "tanh")
    params = init_params(net, seed=0, dtype=np.float32)
    x, y = np.array([[0.5, -1.0]]), np.array([[0.25]])
    got = numeric_backend.backprop(net, params, x, y)
    assert got.grads.dtype == np.float32
    assert all(a.dtype == np.float32 for a in (*got.preactivations, *got.activations))
    adapters.crosscheck(net, params, x, y, backends=["numeric"]).raise_for_mismatch()


def test_oracle_tolerance_catches_a_small_error():
    # A gradient off by 1e-4 of itself (say, a constant rounded to 4 digits) must not pass.
    net = Network((3, 2), "sigmoid", "mse")
    params = init_params(net, seed=1)
    x, y = np.ones((2, 3)), np.zeros((2, 2))
    want = backprop(net, params, x, y)
    got = numeric_backend.backprop(net, params, x, y)
    scale = tolerance.error_scale(net, params, x, y)
    rtol, atol = numeric_backend.tolerance(net, params.dtype, scale, want.loss)
    W, S = want.grads.weights[0], scale.weights[0]
    assert tolerance.compare_arrays("W1", got.grads.weights[0], W, S, rtol, atol).ok
    assert not tolerance.compare_arrays("W1", W * (1 + 1e-4), W, S, rtol, atol).ok
