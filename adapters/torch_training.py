"""A training run in PyTorch: the network of ``torch_backend`` stepped by real ``torch.optim``.

The optimizer is the ``torch.optim`` class itself (``SGD``, ``Adam``, ``AdamW``, ``RMSprop``,
``Adagrad``), built with the reference optimizer's hyperparameters; the reference follows
torch's conventions, so nothing needs adjusting.  Gradients come from ``torch.autograd.grad``
on ``torch_backend.forward`` and ``torch_backend.loss``.  Computes in the params' dtype on
fresh tensors: the caller's arrays and torch's global settings are left alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..reference import Network, Params
from ..reference.optimizers import SGD, Adagrad, Adam, AdamW, RMSprop
from . import torch_backend

name = "torch"


def optimizer(opt: SGD | Adam | RMSprop | Adagrad, tensors: list[torch.Tensor]) -> Any:
    """The ``torch.optim`` optimizer computing ``opt``'s steps on ``tensors``."""
    if isinstance(opt, SGD):
        return torch.optim.SGD(
            tensors, lr=opt.lr, momentum=opt.momentum, dampening=opt.dampening,
            nesterov=opt.nesterov, weight_decay=opt.weight_decay,
        )  # fmt: skip
    if isinstance(opt, Adam):
        cls = torch.optim.AdamW if isinstance(opt, AdamW) else torch.optim.Adam
        return cls(
            tensors, lr=opt.lr, betas=opt.betas, eps=opt.eps, weight_decay=opt.weight_decay,
            amsgrad=opt.amsgrad,
        )  # fmt: skip
    if isinstance(opt, RMSprop):
        return torch.optim.RMSprop(
            tensors, lr=opt.lr, alpha=opt.alpha, eps=opt.eps, weight_decay=opt.weight_decay,
            momentum=opt.momentum, centered=opt.centered,
        )  # fmt: skip
    return torch.optim.Adagrad(
        tensors, lr=opt.lr, lr_decay=0, weight_decay=opt.weight_decay,
        initial_accumulator_value=opt.initial_accumulator_value, eps=opt.eps,
    )  # fmt: skip


def trajectory(
    net: Network,
    params: Params,
    batches: Sequence[tuple[np.ndarray, np.ndarray]],
    opt: SGD | Adam | RMSprop | Adagrad,
) -> tuple[list[float], list[Params]]:
    """``(losses, params)`` of training ``net`` from ``params`` on checked ``batches`` (each
    ``x: (batch, in)``, ``y: (batch, out)`` in the params' dtype), one step per batch."""
    leaves = [torch.tensor(a, requires_grad=True) for pair in params for a in pair]
    weights, biases = leaves[0::2], leaves[1::2]
    optim = optimizer(opt, leaves)
    losses, thetas = [], []
    for x, y in batches:
        with torch.enable_grad():
            zs, activations = torch_backend.forward(net, weights, biases, torch.from_numpy(x))
            value = torch_backend.loss(net, zs, activations, torch.from_numpy(y))
            grads = torch.autograd.grad(value, leaves)
        for leaf, g in zip(leaves, grads, strict=True):
            leaf.grad = g
        optim.step()
        losses.append(value.item())
        arrays = [leaf.detach().numpy().copy() for leaf in leaves]
        thetas.append(Params(arrays[0::2], arrays[1::2]))
    return losses, thetas
