"""The PyTorch adapter: the user's torch settings are left alone, and the crosscheck sees the
difference between torch's own conventions and the reference's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from crossgrad import adapters
from crossgrad.adapters import torch_backend
from crossgrad.reference import Network, Params, backprop, init_params

NET = Network((3, 5, 2), ("elu", "softplus"), "mse")
PARAMS = init_params(NET, seed=3)
X, Y = np.linspace(-2, 2, 12).reshape(4, 3), np.zeros((4, 2))


def test_user_settings_are_left_alone():
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        with torch.no_grad():
            report = adapters.crosscheck(NET, PARAMS, X, Y, backends=["torch"])
            assert not torch.is_grad_enabled()
        assert torch.get_default_dtype() == torch.float32
    finally:
        torch.set_default_dtype(default)
    report.raise_for_mismatch()
    assert report.results["torch"].grads.dtype == np.float64


def test_gradients_come_from_autograd(monkeypatch):
    # Swap one activation for a wrong one: only the forward pass changes, and the gradients
    # follow it, so they come from differentiating the forward pass and nothing else.
    monkeypatch.setitem(torch_backend.ACTIVATIONS, "elu", lambda z: 2 * F.elu(z))
    report = adapters.crosscheck(NET, PARAMS, X, Y, backends=["torch"])
    names = {c.name for c in report.comparisons["torch"] if not c.ok}
    assert {"a1", "W1", "b1", "W2", "b2"} <= names
    # They are the new forward pass's: 2·elu(z1) into W2 is elu(z1) into 2·W2, so they are
    # the reference's at 2·W2 (twice those for W2 itself); elu's own derivative, written by
    # hand beside the new forward pass, would give others.
    (W1, W2), (b1, b2) = PARAMS.weights, PARAMS.biases
    want = backprop(NET, Params([W1, 2 * W2], [b1, b2]), X, Y).grads
    got = report.results["torch"].grads
    factors = (1, 2, 1, 1)  # W1, W2, b1, b2
    for g, w, k in zip(
        (*got.weights, *got.biases), (*want.weights, *want.biases), factors, strict=True
    ):
        np.testing.assert_allclose(g, k * w, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    ("activation", "torch_default", "x"),
    [
        ("softplus", F.softplus, np.linspace(20.5, 40, 40)),  # threshold=20: identity above
        ("gelu", F.gelu, None),  # for contrast: torch's default gelu is the exact one
        ("leaky_relu", lambda z: torch.where(z >= 0, z, 0.01 * z), np.zeros(3)),
    ],
    ids=["softplus", "gelu", "leaky_relu"],
)
def test_torch_defaults_would_be_caught(monkeypatch, activation, torch_default, x):
    net = Network((1, 1), activation, "half_sse", "sum")
    x = np.linspace(-3, 3, 13) if x is None else x
    params = Params([[[1.0]]], [[0.0]])
    y = np.full((x.size, 1), 2.0)
    monkeypatch.setitem(torch_backend.ACTIVATIONS, activation, torch_default)
    report = adapters.crosscheck(net, params, x[:, np.newaxis], y, backends=["torch"])
    assert report.ok == (activation == "gelu")


def _checked_cases(n: int, seed: int = 11):
    from crossgrad.benchmarks.crosscheck_throughput import random_case
    from crossgrad.reference.validation import check_inputs

    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        net, params, x, y = random_case(rng, max_depth=3, max_width=6, max_batch=4,
                                        dtype=np.float32 if i % 3 == 0 else np.float64)  # fmt: skip
        if i % 4 == 1:
            x, y = x[0], y[0]  # one sample, as vectors
        cases.append((net, params, check_inputs(net, params, x, y)))
    return cases


def _assert_identical(got, want):
    assert got.loss == want.loss
    assert got.grads == want.grads  # Params equality: same dtypes, same values
    for g, w in zip((*got.preactivations, *got.activations),
                    (*want.preactivations, *want.activations), strict=True):  # fmt: skip
        np.testing.assert_array_equal(g, w, strict=True)


def test_many_networks_in_one_backward_pass_are_each_networks_own_bit_for_bit():
    cases = _checked_cases(12)
    many = torch_backend.backprop_many_checked(cases)
    assert len(many) == len(cases)
    for case, got in zip(cases, many, strict=True):
        _assert_identical(got, torch_backend.backprop_checked(*case))


def test_a_failing_forward_pass_stays_with_its_case(monkeypatch):
    cases = _checked_cases(8)

    def broken(yhat, y):
        raise RuntimeError("mse is broken")

    monkeypatch.setitem(torch_backend.LOSSES, "mse", broken)
    many = torch_backend.backprop_many_checked(cases)
    failing = [i for i, (net, _, _) in enumerate(cases) if net.loss == "mse"]
    assert 0 < len(failing) < len(cases)
    for i, (case, got) in enumerate(zip(cases, many, strict=True)):
        if i in failing:
            assert isinstance(got, RuntimeError)
            assert str(got) == "mse is broken"
        else:
            _assert_identical(got, torch_backend.backprop_checked(*case))


def test_a_failing_joint_backward_pass_falls_back_to_one_case_at_a_time(monkeypatch):
    cases = _checked_cases(5)
    want = [torch_backend.backprop_checked(*case) for case in cases]
    grad, calls = torch.autograd.grad, []

    def only_one_network(outputs, inputs, *args, **kwargs):
        calls.append(len(inputs))
        if len(inputs) > 6:  # more leaves than one network of depth <= 3 has: the joint pass
            raise RuntimeError("out of memory")
        return grad(outputs, inputs, *args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", only_one_network)
    many = torch_backend.backprop_many_checked(cases)
    assert calls[0] == sum(2 * net.n_layers for net, _, _ in cases)
    assert len(calls) == 1 + len(cases)
    for got, w in zip(many, want, strict=True):
        _assert_identical(got, w)
