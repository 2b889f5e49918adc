"""A finite-difference oracle: central differences of the reference's forward pass, in float64.

Independent of every framework and of the reference's backward pass: each gradient entry is
``(L(θ + h) − L(θ − h)) / (2h)`` with its own step ``h = ∛eps · max(1, |θ|)`` (the step that
balances truncation error ``h²·|L'''|/6`` against rounding error ``eps·|L|/h``; both are then
about ``1e-11`` of the problem's scale).  Slow (two forward passes per parameter): for small
networks.  Not valid where a parameter sits within ``h`` of a kink (relu, leaky_relu at 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..reference import BackpropResult, Network, Params
from ..reference.backpropagation import batch_loss
from ..reference.validation import Batch
from . import _common
from .protocol import Capabilities
from .reference_backend import forward

name = "numeric"
capabilities = Capabilities()

STEP = float(np.finfo(np.float64).eps) ** (1 / 3)
RTOL = 1e-6
"""The oracle's tolerance, relative to the problem's scale (see ``tolerance``): its own error
is about 1e-10 of it, and a wrong derivative formula is off by far more than 1e-6."""


Array = NDArray[np.floating]

__all__ = ["backprop", "backprop_checked", "capabilities", "forward", "loss", "name", "tolerance"]


def loss(net: Network, zs: Sequence[Array], activations: Sequence[Array], y: Array) -> float:
    """The batch loss from the forward pass (``forward``: the reference's, in NumPy)."""
    return batch_loss(net, list(zs), list(activations), y)


def _loss_at(net: Network, weights: list[Array], biases: list[Array], x: Array, y: Array) -> float:
    zs, activations = forward(net, weights, biases, x)
    return loss(net, zs, activations, y)


def backprop(net: Network, params: Params, x: ArrayLike, y: ArrayLike) -> BackpropResult:
    """Like ``reference.backprop``, with every gradient entry from central differences."""
    return backprop_checked(net, params, _common.prepare(net, params, x, y))


def backprop_checked(net: Network, params: Params, batch: Batch) -> BackpropResult:
    """``backprop`` on input already checked by ``reference.check_inputs``."""
    x64, y64 = batch.x.astype(np.float64), batch.y.astype(np.float64)
    arrays = [a.astype(np.float64) for a in (*params.weights, *params.biases)]  # copies
    n = len(params)

    def loss_with(k: int, value: np.ndarray) -> float:
        trial = [value if j == k else a for j, a in enumerate(arrays)]
        return _loss_at(net, trial[:n], trial[n:], x64, y64)

    grads = []
    for k, theta in enumerate(arrays):
        grad = np.empty_like(theta)
        for i in np.ndindex(theta.shape):
            h = STEP * max(1.0, abs(float(theta[i])))
            plus, minus = theta.copy(), theta.copy()
            plus[i] += h
            minus[i] -= h
            # Divide by the steps as represented, not by 2h: θ ± h rounds.
            grad[i] = (loss_with(k, plus) - loss_with(k, minus)) / (plus[i] - minus[i])
        grads.append(grad)

    zs, activations = forward(net, arrays[:n], arrays[n:], x64)
    return _common.result(
        loss(net, zs, activations, y64),
        grads[:n],
        grads[n:],
        zs,
        activations,
        np.dtype(params.dtype),
        batch.single,
    )


def tolerance(
    net: Network, dtype: np.dtype[Any], scale: Params, loss: float
) -> tuple[float, float]:
    """The oracle's ``(rtol, atol)`` under ``|g − r| ≤ atol + rtol·S``, whatever the dtype.

    ``rtol = RTOL``; ``atol = RTOL·max S + 1000·STEP²·(1 + |L|)``.  The second term covers an
    entry whose own scale ``S`` is tiny or zero, where what remains is the oracle's rounding
    noise ``eps·|L|/h ≈ STEP²·|L|`` and its truncation error ``h²·|L'''|/6 ≈ STEP²·|L'''|``
    for third derivatives of order 1 (9e-12 is seen on a 1→1 elu network at 0).
    """
    max_scale = max(float(a.max()) for a in (*scale.weights, *scale.biases))
    return RTOL, RTOL * max_scale + 1000 * STEP**2 * (1 + abs(loss))
