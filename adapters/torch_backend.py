"""The network in PyTorch: the same mathematics as the reference, gradients by autograd.

Nothing on this path is a hand-written derivative: the forward pass is written with torch
operations and ``torch.autograd.grad`` differentiates it.  Where torch's own functions follow
another convention than the reference, this module writes the reference's mathematics
instead (each case is commented).  Computes in the params' dtype; the user's torch settings
(default dtype, threads, grad mode) are left alone.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812  (torch's own convention)
from numpy.typing import ArrayLike

from ..reference import BackpropResult, Network, Params
from ..reference.validation import Batch
from . import _common

name = "torch"

Tensor = torch.Tensor

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "identity": lambda z: z,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,  # autograd: relu'(0) = 0, as the reference
    "leaky_relu": lambda z: F.leaky_relu(z, 0.01),  # autograd: slope 0.01 at 0, as the reference
    # F.softplus switches to the identity above threshold=20; logaddexp(z, 0) is log(1 + e^z)
    # exactly, and stable for any z.
    "softplus": lambda z: torch.logaddexp(z, torch.zeros_like(z)),
    "elu": lambda z: F.elu(z, alpha=1.0),
    "gelu": lambda z: F.gelu(z, approximate="none"),  # the exact erf form
    "silu": F.silu,
}

LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "half_sse": lambda yhat, y: 0.5 * ((yhat - y) ** 2).sum(dim=1),
    "mse": lambda yhat, y: ((yhat - y) ** 2).mean(dim=1),
    # Takes the output layer's logits z (the reference fuses this loss with its sigmoid).
    "binary_cross_entropy": lambda z, y: F.binary_cross_entropy_with_logits(
        z, y, reduction="none"
    ).mean(dim=1),
    "softmax_cross_entropy": lambda logits, y: -(y * F.log_softmax(logits, dim=1)).sum(dim=1),
}
LOSS_ON_LOGITS = {"binary_cross_entropy"}


def forward(
    net: Network, weights: list[Tensor], biases: list[Tensor], x: Tensor
) -> tuple[list[Tensor], list[Tensor]]:
    """``([z_1..z_L], [a_0..a_L])`` for ``x`` ``(batch, in)``; ``z = a Wᵀ + b``."""
    zs, activations = [], [x]
    for W, b, act in zip(weights, biases, net.activations, strict=True):
        z = F.linear(activations[-1], W, b)
        zs.append(z)
        activations.append(ACTIVATIONS[act](z))
    return zs, activations


def loss(net: Network, zs: list[Tensor], activations: list[Tensor], y: Tensor) -> Tensor:
    """The batch loss (0-d) from the forward pass."""
    out = zs[-1] if net.loss in LOSS_ON_LOGITS else activations[-1]
    per_sample = LOSSES[net.loss](out, y)
    return per_sample.mean() if net.reduction == "mean" else per_sample.sum()


def backprop(net: Network, params: Params, x: ArrayLike, y: ArrayLike) -> BackpropResult:
    """Like ``reference.backprop``: the loss and its gradients, by ``torch.autograd.grad``."""
    return backprop_checked(net, params, _common.prepare(net, params, x, y))


def _tensor(a: np.ndarray, requires_grad: bool = False) -> Tensor:
    # Shares the array's memory, which nothing here writes: autograd.grad returns new tensors
    # and leaves the leaves alone.  Copies only what torch cannot share: negative strides
    # (a reversed view) and read-only memory (torch would warn).
    a = np.ascontiguousarray(a)  # the array itself when it is already contiguous
    t = torch.from_numpy(a if a.flags.writeable else a.copy())
    return t.requires_grad_() if requires_grad else t


def backprop_checked(net: Network, params: Params, batch: Batch) -> BackpropResult:
    """``backprop`` on input already checked by ``reference.check_inputs``."""
    with torch.enable_grad():
        weights = [_tensor(W, requires_grad=True) for W in params.weights]
        biases = [_tensor(b, requires_grad=True) for b in params.biases]
        zs, activations = forward(net, weights, biases, _tensor(batch.x))
        value = loss(net, zs, activations, _tensor(batch.y))
        grads = torch.autograd.grad(value, [*weights, *biases])
    n = len(weights)
    return _common.result(
        value.item(),
        [g.numpy() for g in grads[:n]],
        [g.numpy() for g in grads[n:]],
        [z.detach().numpy() for z in zs],
        [a.detach().numpy() for a in activations],
        np.dtype(params.dtype),
        batch.single,
    )
