"""Forward pass, backpropagation and the SGD update, written as the worked example reads.

Rows are samples.  For a batch ``x`` of shape ``(batch, in)`` and layers ``l = 1..L``::

    a_0 = x
    z_l = a_{l-1} W_lᵀ + b_l                  (batch, out_l)   the document's W x + b
    a_l = f_l(z_l)                            (batch, out_l)
    L   = reduce_batch(loss(a_L, y))          mean or sum over the batch

    δ_L = ∂L/∂z_L = ∂L/∂a_L ∘ f_L'(z_L)       (batch, out_L)
    for l = L..1:
        ∂L/∂W_l = δ_lᵀ a_{l-1}                (out_l, in_l)    the document's δ aᵀ, over samples
        ∂L/∂b_l = Σ_batch δ_l                 (out_l,)
        δ_{l-1} = (δ_l W_l) ∘ f_{l-1}'(z_{l-1})                the document's (Wᵀ δ) ∘ σ'(z)

Everything is computed in the dtype of the parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .activations import ACTIVATIONS
from .losses import LOSSES
from .network import Network, Params
from .validation import check_grads, check_inputs, check_lr, check_x

Array = NDArray[np.floating]


@dataclass(frozen=True)
class BackpropResult:
    """What one forward and backward pass computed.

    Attributes
    ----------
    loss
        The batch loss ``L`` (a Python float).
    grads
        ``∂L/∂W_l`` and ``∂L/∂b_l`` as ``Params`` of the same shapes and dtype as the params.
    preactivations
        ``z_1 .. z_L``, each ``(batch, out_l)``, or ``(out_l,)`` when ``x`` was one sample.
    activations
        ``a_0 = x .. a_L = ŷ``, each ``(batch, width_l)``, or ``(width_l,)`` for one sample.
    """

    loss: float
    grads: Params
    preactivations: tuple[Array, ...]
    activations: tuple[Array, ...]


def forward(net: Network, params: Params, x: Array) -> tuple[list[Array], list[Array]]:
    """The forward pass on checked input: ``([z_1..z_L], [a_0..a_L])``, ``x``: ``(batch, in)``."""
    zs: list[Array] = []
    activations = [x]
    for (W, b), name in zip(params, net.activations, strict=True):
        # np.dot: the same BLAS product as `@`, with less call overhead (matters on small arrays).
        z = np.dot(activations[-1], W.T)
        z += b  # in place: z is the fresh product, so no temporary of its size
        zs.append(z)
        activations.append(ACTIVATIONS[name].forward(z))
    return zs, activations


def batch_loss(net: Network, zs: list[Array], activations: list[Array], y: Array) -> Array:
    """The reduced loss as a 0-d array, from the forward pass's ``zs`` and ``activations``."""
    loss = LOSSES[net.loss]
    out = zs[-1] if loss.on_logits else activations[-1]
    total = loss.value(out, y).sum()
    # sum / n: the mean without np.mean's Python-level overhead, which dominates a small batch.
    return total / y.shape[0] if net.reduction == "mean" else total


def loss_and_output_delta(
    net: Network, zs: list[Array], activations: list[Array], y: Array
) -> tuple[Array, Array]:
    """The reduced loss (0-d) and δ_L = ∂L/∂z_L, the reduction's 1/batch folded into δ_L."""
    loss = LOSSES[net.loss]
    values, delta = loss.value_and_gradient(zs[-1] if loss.on_logits else activations[-1], y)
    total = values.sum()
    if net.reduction == "mean":
        total = total / y.shape[0]
        delta *= 1 / y.shape[0]  # in place: the gradient is a fresh array
    if not loss.on_logits:  # else the loss is fused with its output activation: δ_L is done
        ACTIVATIONS[net.activations[-1]].backward(delta, zs[-1], activations[-1])  # ∘ f'(z_L)
    return total, delta


def _backprop(net: Network, params: Params, x: Array, y: Array, single: bool) -> BackpropResult:
    zs, activations = forward(net, params, x)
    loss, delta = loss_and_output_delta(net, zs, activations, y)

    n = net.n_layers
    dW: list[Array] = [np.empty(0)] * n
    db: list[Array] = [np.empty(0)] * n
    for l in reversed(range(n)):  # l indexes params; the document's layer is l + 1
        dW[l] = np.dot(delta.T, activations[l])
        db[l] = delta.sum(axis=0)
        if l > 0:
            delta = np.dot(delta, params.weights[l])
            # ∘ f'(z_{l-1}), in place on the fresh product
            ACTIVATIONS[net.activations[l - 1]].backward(delta, zs[l - 1], activations[l])

    if single:
        zs = [z[0] for z in zs]
        activations = [a[0] for a in activations]
    return BackpropResult(
        loss=float(loss),
        grads=Params._trusted(tuple(dW), tuple(db)),
        preactivations=tuple(zs),
        activations=tuple(activations),
    )


def backprop(net: Network, params: Params, x: ArrayLike, y: ArrayLike) -> BackpropResult:
    """Forward and backward pass: the loss and its gradient with respect to every parameter.

    Parameters
    ----------
    net
        The network description.
    params
        Its parameters; their dtype (float32 or float64) is the dtype of every computation.
    x
        Inputs, ``(batch, in)``, or one sample ``(in,)``.  Converted to the params' dtype.
    y
        Targets, ``(batch, out)``, or ``(out,)`` with one-sample ``x``; in the loss's domain.

    Raises ``TypeError`` or ``ValueError`` naming the offending argument; nothing passed in is
    modified.
    """
    batch = check_inputs(net, params, x, y)
    return _backprop(net, params, batch.x, batch.y, batch.single)


def loss(net: Network, params: Params, x: ArrayLike, y: ArrayLike) -> float:
    """The batch loss alone (a forward pass), with the same checks as ``backprop``."""
    batch = check_inputs(net, params, x, y)
    zs, activations = forward(net, params, batch.x)
    return float(batch_loss(net, zs, activations, batch.y))


def predict(net: Network, params: Params, x: ArrayLike) -> Array:
    """The network output ``ŷ = a_L``: ``(batch, out)`` for ``x`` ``(batch, in)``, or ``(out,)``."""
    x_, single = check_x(net, params, x)
    _, activations = forward(net, params, x_)
    return activations[-1][0] if single else activations[-1]


def _sgd(params: Params, grads: Params, lr: float) -> Params:
    return Params._trusted(
        tuple(W - lr * dW for W, dW in zip(params.weights, grads.weights, strict=True)),
        tuple(b - lr * db for b, db in zip(params.biases, grads.biases, strict=True)),
    )


def sgd_step(params: Params, grads: Params, lr: float) -> Params:
    """One step of gradient descent: new ``Params`` ``W − lr·∂L/∂W``, ``b − lr·∂L/∂b``.

    ``grads`` must match ``params`` in shapes and dtype; ``lr`` is finite and positive.  The
    inputs are not modified.
    """
    lr_ = check_lr(lr)
    check_grads(params, grads)
    return _sgd(params, grads, lr_)


def train_step(
    net: Network, params: Params, x: ArrayLike, y: ArrayLike, lr: float
) -> tuple[float, Params]:
    """Forward, backward and update in one call: ``(loss before the step, new params)``."""
    lr_ = check_lr(lr)
    result = backprop(net, params, x, y)
    return result.loss, _sgd_into_grads(params, result.grads, lr_)


def _sgd_into_grads(params: Params, grads: Params, lr: float) -> Params:
    """``_sgd`` written into the gradients' own arrays, which only ``train_step`` holds.

    Same arithmetic as ``_sgd`` (``W − lr·dW``, bit for bit) without two new arrays the size
    of every parameter: for large layers those allocations cost more than the arithmetic.
    """
    for p, g in zip(
        (*params.weights, *params.biases), (*grads.weights, *grads.biases), strict=True
    ):
        np.multiply(g, lr, out=g)
        np.subtract(p, g, out=g)
    return grads
