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

Everything is computed in the dtype of the parameters.  The public functions check their
input once (``reference.validation``); the functions they call assume checked input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .activations import ACTIVATIONS
from .losses import LOSSES
from .network import Network, Params
from .validation import Batch, check_grads, check_inputs, check_lr, check_x, finite_results

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
        z = activations[-1] @ W.T + b
        zs.append(z)
        activations.append(ACTIVATIONS[name].forward(z))
    return zs, activations


def batch_loss(net: Network, zs: list[Array], activations: list[Array], y: Array) -> float:
    """``L``: the per-sample losses of the forward pass reduced over the batch (mean or sum).

    A loss on logits (``binary_cross_entropy``) takes the output layer's ``z_L``; every other
    loss takes ``ŷ = a_L``.
    """
    loss = LOSSES[net.loss]
    per_sample = loss.value(zs[-1] if loss.on_logits else activations[-1], y)
    return float(per_sample.mean() if net.reduction == "mean" else per_sample.sum())


def output_delta(net: Network, zs: list[Array], activations: list[Array], y: Array) -> Array:
    """``δ_L = ∂L/∂z_L = ∂L/∂a_L ∘ f_L'(z_L)``, ``(batch, out)``, the reduction's 1/batch in it.

    A loss on logits gives ``∂L/∂z_L`` itself: it is written together with its output
    activation, whose derivative cancels against the loss's (``σ(z) − y`` for
    ``binary_cross_entropy``).
    """
    loss = LOSSES[net.loss]
    if loss.on_logits:
        delta = loss.gradient(zs[-1], y)
    else:
        output = ACTIVATIONS[net.activations[-1]]
        delta = loss.gradient(activations[-1], y) * output.derivative(zs[-1], activations[-1])
    return delta / y.shape[0] if net.reduction == "mean" else delta


@finite_results("backprop")  # finite input: finite results, or an OverflowError
def gradients(net: Network, params: Params, batch: Batch) -> BackpropResult:
    """``backprop`` on input that ``check_inputs`` has already checked."""
    zs, activations = forward(net, params, batch.x)
    loss = batch_loss(net, zs, activations, batch.y)
    delta = output_delta(net, zs, activations, batch.y)

    weight_grads: list[Array] = []  # filled from the last layer to the first
    bias_grads: list[Array] = []
    for l in reversed(range(net.n_layers)):  # l indexes params; the document's layer is l + 1
        weight_grads.insert(0, delta.T @ activations[l])  # ∂L/∂W = δ aᵀ, summed over the batch
        bias_grads.insert(0, delta.sum(axis=0))  # ∂L/∂b = Σ δ
        if l > 0:  # δ ← (Wᵀ δ) ∘ f'(z) for the layer below
            below = ACTIVATIONS[net.activations[l - 1]]
            delta = (delta @ params.weights[l]) * below.derivative(zs[l - 1], activations[l])

    if batch.single:  # one sample in, vectors out
        zs, activations = [z[0] for z in zs], [a[0] for a in activations]
    return BackpropResult(loss, Params(weight_grads, bias_grads), tuple(zs), tuple(activations))


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
    return gradients(net, params, check_inputs(net, params, x, y))


@finite_results("loss")  # finite input: finite results, or an OverflowError
def loss(net: Network, params: Params, x: ArrayLike, y: ArrayLike) -> float:
    """The batch loss alone (a forward pass), with the same checks as ``backprop``: ``x``
    ``(batch, in)`` or ``(in,)``, ``y`` ``(batch, out)`` or ``(out,)``."""
    batch = check_inputs(net, params, x, y)
    zs, activations = forward(net, params, batch.x)
    return batch_loss(net, zs, activations, batch.y)


@finite_results("predict")  # finite input: finite results, or an OverflowError
def predict(net: Network, params: Params, x: ArrayLike) -> Array:
    """The network output ``ŷ = a_L``: ``(batch, out)`` for ``x`` ``(batch, in)``, or ``(out,)``."""
    x_, single = check_x(net, params, x)
    _, activations = forward(net, params, x_)
    return activations[-1][0] if single else activations[-1]


@finite_results("sgd_step")  # finite input: finite results, or an OverflowError
def sgd_step(params: Params, grads: Params, lr: float) -> Params:
    """One step of gradient descent: new ``Params`` ``W − lr·∂L/∂W``, ``b − lr·∂L/∂b``.

    ``grads`` must match ``params`` in shapes and dtype; ``lr`` is finite and positive.  The
    inputs are not modified.
    """
    lr = check_lr(lr)
    check_grads(params, grads)
    return _sgd(params, grads, lr)


def _sgd(params: Params, grads: Params, lr: float) -> Params:
    return Params(
        [W - lr * dW for W, dW in zip(params.weights, grads.weights, strict=True)],
        [b - lr * db for b, db in zip(params.biases, grads.biases, strict=True)],
    )


@finite_results("train_step")  # finite input: finite results, or an OverflowError
def train_step(
    net: Network, params: Params, x: ArrayLike, y: ArrayLike, lr: float
) -> tuple[float, Params]:
    """Forward, backward and update in one call: ``(loss before the step, new params)``.

    ``x`` is ``(batch, in)`` or one sample ``(in,)``, ``y`` ``(batch, out)`` or ``(out,)``, as
    for ``backprop``; the new params are ``W − lr·∂L/∂W``, ``b − lr·∂L/∂b`` (``sgd_step``).
    """
    lr = check_lr(lr)
    result = backprop(net, params, x, y)
    return result.loss, _sgd(params, result.grads, lr)
