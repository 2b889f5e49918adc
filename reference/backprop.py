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
from .losses import LOSSES, Scalar
from .network import Network, Params
from .validation import check_grads, check_inputs, check_lr, check_x, finite_results

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


def batch_loss(net: Network, zs: list[Array], activations: list[Array], y: Array) -> Scalar:
    """The reduced loss as a NumPy scalar, from the forward pass's ``zs`` and ``activations``.

    Computed as ``backprop`` computes it, so that ``loss`` and ``backprop(...).loss`` agree to
    the last bit; the loss gradient that comes with it is dropped.
    """
    return _reduced_loss_and_gradient(net, zs, activations, y)[0]


def loss_and_output_delta(
    net: Network, zs: list[Array], activations: list[Array], y: Array
) -> tuple[Scalar, Array]:
    """The reduced loss (a NumPy scalar) and δ_L = ∂L/∂z_L, with the reduction's 1/batch."""
    total, delta = _reduced_loss_and_gradient(net, zs, activations, y)
    if not LOSSES[net.loss].on_logits:  # else the loss is fused with its output activation
        ACTIVATIONS[net.activations[-1]].backward(delta, zs[-1], activations[-1])  # ∘ f'(z_L)
    return total, delta


def _reduced_loss_and_gradient(
    net: Network, zs: list[Array], activations: list[Array], y: Array
) -> tuple[Scalar, Array]:
    """The reduced loss (a NumPy scalar) and its gradient with respect to the loss's input
    (``ŷ``, or ``z_L`` for a loss on logits), the reduction's 1/batch folded in."""
    loss = LOSSES[net.loss]
    total, gradient = loss.total_and_gradient(zs[-1] if loss.on_logits else activations[-1], y)
    batch = y.shape[0]
    if net.reduction == "mean" and batch > 1:  # (a mean of one sample is that sample: exact)
        # sum / n: the mean without np.mean's Python-level overhead, which dominates small input
        total = total / batch
        gradient *= 1 / batch  # in place: the gradient is a fresh array
    return total, gradient


@finite_results("backprop")  # finite input, finite results, or an OverflowError
def _backprop(net: Network, params: Params, x: Array, y: Array, single: bool) -> BackpropResult:
    loss, grads, zs, activations = _gradients(net, params, x, y)
    if single:
        zs = [z[0] for z in zs]
        activations = [a[0] for a in activations]
    return BackpropResult(
        loss=float(loss),
        grads=grads,
        preactivations=tuple(zs),
        activations=tuple(activations),
    )


def _gradients(
    net: Network, params: Params, x: Array, y: Array
) -> tuple[Scalar, Params, list[Array], list[Array]]:
    """The loss (a NumPy scalar), the gradients, and the forward's ``zs`` and ``activations``."""
    zs, activations = forward(net, params, x)
    loss, delta = loss_and_output_delta(net, zs, activations, y)

    # The gradients are written into one buffer (see Params._in_buffer), so that an SGD step
    # on them is one array operation.
    grads = Params._in_buffer(net.sizes, x.dtype)
    for l in reversed(range(net.n_layers)):  # l indexes params; the document's layer is l + 1
        np.dot(delta.T, activations[l], out=grads.weights[l])
        np.add.reduce(delta, axis=0, out=grads.biases[l])  # Σ over the batch
        if l > 0:
            delta = np.dot(delta, params.weights[l])
            # ∘ f'(z_{l-1}), in place on the fresh product
            ACTIVATIONS[net.activations[l - 1]].backward(delta, zs[l - 1], activations[l])
    return loss, grads, zs, activations


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


@finite_results("loss")  # finite input, finite results, or an OverflowError
def loss(net: Network, params: Params, x: ArrayLike, y: ArrayLike) -> float:
    """The batch loss alone (a forward pass), with the same checks as ``backprop``."""
    batch = check_inputs(net, params, x, y)
    zs, activations = forward(net, params, batch.x)
    return float(batch_loss(net, zs, activations, batch.y))


@finite_results("predict")  # finite input, finite results, or an OverflowError
def predict(net: Network, params: Params, x: ArrayLike) -> Array:
    """The network output ``ŷ = a_L``: ``(batch, out)`` for ``x`` ``(batch, in)``, or ``(out,)``."""
    x_, single = check_x(net, params, x)
    _, activations = forward(net, params, x_)
    return activations[-1][0] if single else activations[-1]


def _sgd(params: Params, grads: Params, lr: float) -> Params:
    new = Params._in_buffer(params.sizes, params.dtype)
    return _sgd_into(params, grads, lr, new)


@finite_results("sgd_step")  # finite input, finite results, or an OverflowError
def sgd_step(params: Params, grads: Params, lr: float) -> Params:
    """One step of gradient descent: new ``Params`` ``W − lr·∂L/∂W``, ``b − lr·∂L/∂b``.

    ``grads`` must match ``params`` in shapes and dtype; ``lr`` is finite and positive.  The
    inputs are not modified.
    """
    lr_ = check_lr(lr)
    check_grads(params, grads)
    return _sgd(params, grads, lr_)


@finite_results("train_step")  # finite input, finite results, or an OverflowError
def train_step(
    net: Network, params: Params, x: ArrayLike, y: ArrayLike, lr: float
) -> tuple[float, Params]:
    """Forward, backward and update in one call: ``(loss before the step, new params)``."""
    lr_ = check_lr(lr)
    batch = check_inputs(net, params, x, y)
    loss, grads, _, _ = _gradients(net, params, batch.x, batch.y)
    return float(loss), _sgd_into_grads(params, grads, lr_)


def _sgd_into_grads(params: Params, grads: Params, lr: float) -> Params:
    """``_sgd`` written into the gradients' own arrays, which only ``train_step`` holds.

    The same numbers as ``_sgd`` without a new array the size of all the parameters: for
    large layers that allocation costs more than the arithmetic.
    """
    return _sgd_into(params, grads, lr, grads)


def _sgd_into(params: Params, grads: Params, lr: float, out: Params) -> Params:
    """``out ← params − lr·grads``, array by array; ``out`` may be ``grads`` itself.

    ``lr·dW`` is rounded first and then subtracted, as ``W - lr * dW`` is.  When all three
    are laid out in one buffer each (``Params._in_buffer``), that is one operation per step
    over the whole buffer instead of one per array.
    """
    p, g = params._flat(), grads._flat()
    o = g if out is grads else out._flat()
    pairs = (
        [(p, g, o)]
        if p is not None and g is not None and o is not None
        else zip(
            (*params.weights, *params.biases),
            (*grads.weights, *grads.biases),
            (*out.weights, *out.biases),
            strict=True,
        )
    )
    for p_, g_, o_ in pairs:
        np.multiply(g_, lr, out=o_)
        np.subtract(p_, o_, out=o_)
    return out
