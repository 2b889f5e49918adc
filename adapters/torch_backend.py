"""The network in PyTorch: the same mathematics as the reference, gradients by autograd.

Nothing on this path is a hand-written derivative: the forward pass is written with torch
operations and ``torch.autograd.grad`` differentiates it.  Where torch's own functions follow
another convention than the reference, this module writes the reference's mathematics
instead (each case is commented).  Computes in the params' dtype; the user's torch settings
(default dtype, threads, grad mode) are left alone: on a small case crossgrad runs torch on
one intra-op thread and restores the user's count afterwards (``_threads``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812  (torch's own convention)
from numpy.typing import ArrayLike

from ..reference import LOSSES as REFERENCE_LOSSES
from ..reference import BackpropResult, Network, Params
from ..reference.validation import Batch
from . import _common, _threads
from .protocol import Capabilities
from .tolerance import model_tolerance

name = "torch"
capabilities = Capabilities(many=True)
"""``backprop_many_checked`` runs one pass of autograd's engine over many networks."""
tolerance = model_tolerance

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
"""Each loss per sample, ``(batch,)``, from the output (``z_L`` for a loss on logits) and ``y``."""


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
    out = zs[-1] if REFERENCE_LOSSES[net.loss].on_logits else activations[-1]
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


class _Graph:
    """One network's forward pass and loss, recorded by autograd, waiting for its gradients."""

    def __init__(self, net: Network, params: Params, batch: Batch) -> None:
        self.params, self.batch = params, batch
        self.leaves = [_tensor(p, requires_grad=True) for p in (*params.weights, *params.biases)]
        n = len(params)
        self.zs, self.activations = forward(net, self.leaves[:n], self.leaves[n:], _tensor(batch.x))
        self.value = loss(net, self.zs, self.activations, _tensor(batch.y))

    def result(self, grads: Sequence[Tensor]) -> BackpropResult:
        """The ``BackpropResult`` given this graph's gradients, in the order of ``leaves``."""
        n = len(self.params)
        return _common.result(
            self.value.item(),
            [g.numpy() for g in grads[:n]],
            [g.numpy() for g in grads[n:]],
            [z.detach().numpy() for z in self.zs],
            [a.detach().numpy() for a in self.activations],
            np.dtype(self.params.dtype),
            self.batch.single,
        )


def backprop_checked(net: Network, params: Params, batch: Batch) -> BackpropResult:
    """``backprop`` on input already checked by ``reference.check_inputs``."""
    with torch.enable_grad(), _threads.single_threaded_if_small([(net, len(batch.x))]):
        graph = _Graph(net, params, batch)
        return graph.result(torch.autograd.grad(graph.value, graph.leaves))


def backprop_many_checked(
    cases: Sequence[tuple[Network, Params, Batch]],
) -> list[BackpropResult | Exception]:
    """``backprop_checked`` of every case, with one pass of autograd's engine for them all.

    The networks share no parameter, so the gradient of the sum of their losses with respect
    to one network's parameters is that network's own gradient, bit for bit: the sum passes
    exactly 1 back to every loss.  One call into the engine instead of one per network saves
    about a quarter of torch's time on small networks.  A case whose forward pass raises gets
    its exception in its place; should the joint backward pass raise, every case is run on
    its own, so that a failure stays with its case.
    """
    built: list[_Graph | Exception] = []
    small = _threads.single_threaded_if_small((net, len(batch.x)) for net, _, batch in cases)
    with torch.enable_grad(), small:
        for net, params, batch in cases:
            try:
                built.append(_Graph(net, params, batch))
            except Exception as exc:
                built.append(exc)
        graphs = [g for g in built if isinstance(g, _Graph)]
        try:
            total = torch.stack([g.value for g in graphs]).sum() if graphs else None
            leaves = [leaf for g in graphs for leaf in g.leaves]
            grads = torch.autograd.grad(total, leaves) if total is not None else ()
        except Exception:
            return [_run_alone(*case) for case in cases]
    outcomes: list[BackpropResult | Exception] = []
    start = 0
    for graph in built:
        if isinstance(graph, Exception):
            outcomes.append(graph)
            continue
        stop = start + len(graph.leaves)
        outcomes.append(graph.result(grads[start:stop]))
        start = stop
    return outcomes


def _run_alone(net: Network, params: Params, batch: Batch) -> BackpropResult | Exception:
    try:
        return backprop_checked(net, params, batch)
    except Exception as exc:
        return exc
