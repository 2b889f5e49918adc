"""The PyTorch adapter: the user's torch settings are left alone, and the crosscheck sees the
difference between torch's own conventions and the reference's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from crossgrad import adapters
from crossgrad.adapters import torch_backend
from crossgrad.reference import Network, Params, init_params

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
