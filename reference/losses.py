"""Loss functions, each with its gradient written beside it.

A loss is computed per sample and then reduced over the batch (``mean`` or ``sum``, see
``reference.Network``).  For one sample with network output ``ŷ`` (shape ``(out,)``) and
target ``y``:

- ``half_sse``: ``½‖ŷ − y‖²``, the worked example's loss.
- ``mse``: ``mean_j (ŷ_j − y_j)²``, equal to ``torch.nn.functional.mse_loss`` under mean
  reduction.
- ``binary_cross_entropy``: ``mean_j −[y_j log ŷ_j + (1 − y_j) log(1 − ŷ_j)]`` with targets in
  ``[0, 1]``.  It needs a sigmoid output layer and is fused with it: computed from the logits
  ``z`` (``ŷ = σ(z)``), so it never takes the log of a rounded 0 or 1 and never overflows.
- ``softmax_cross_entropy``: ``−Σ_j y_j log softmax(ŷ)_j`` with the network output ``ŷ`` as
  logits and a target row of non-negative weights (a one-hot row is the usual case).

Each ``Loss`` maps ``(out, y)`` arrays of shape ``(batch, width)`` to the per-sample values
``(batch,)`` and to the gradient ``∂loss/∂out`` ``(batch, width)``, where ``out`` is the
network output ``ŷ``, or the output layer's pre-activation ``z`` when ``on_logits`` is true.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .activations import sigmoid

Array = NDArray[np.floating]


@dataclass(frozen=True)
class Loss:
    """A per-sample loss and its gradient.

    ``value(out, y) -> (batch,)`` and ``gradient(out, y) -> (batch, width)`` take ``out`` and
    ``y`` of shape ``(batch, width)``.  ``out`` is ``ŷ``, or ``z`` of the output layer when
    ``on_logits`` is set (then the loss requires ``output_activation``).  ``target_domain``
    describes the valid targets, and ``target_error(y)`` returns why ``y`` is outside it, or
    ``None``.
    """

    name: str
    formula: str
    value: Callable[[Array, Array], Array]
    gradient: Callable[[Array, Array], Array]
    target_domain: str
    target_error: Callable[[Array], str | None]
    on_logits: bool = False
    output_activation: str | None = None


def _any_finite(y: Array) -> str | None:
    return None


def _half_sse(yhat: Array, y: Array) -> Array:
    r = yhat - y
    return 0.5 * np.einsum("ij,ij->i", r, r)


def _half_sse_gradient(yhat: Array, y: Array) -> Array:
    return yhat - y


def _mse(yhat: Array, y: Array) -> Array:
    r = yhat - y
    return np.einsum("ij,ij->i", r, r) / r.shape[1]


def _mse_gradient(yhat: Array, y: Array) -> Array:
    return (2 / yhat.shape[1]) * (yhat - y)


def _in_unit_interval(y: Array) -> str | None:
    if y.min() >= 0 and y.max() <= 1:
        return None
    return f"values in [0, 1], got values from {float(y.min()):.6g} to {float(y.max()):.6g}"


def _bce_from_logits(z: Array, y: Array) -> Array:
    # −[y log σ(z) + (1−y) log(1−σ(z))] = max(z, 0) − y·z + log1p(e^{-|z|}), exact for any z.
    per_output = np.maximum(z, 0) - y * z + np.log1p(np.exp(-np.abs(z)))
    return per_output.mean(axis=1)


def _bce_from_logits_gradient(z: Array, y: Array) -> Array:
    # ∂/∂z of the per-output loss is σ(z) − y: the sigmoid's derivative cancels the log's.
    return (sigmoid(z) - y) / z.shape[1]


def _non_negative(y: Array) -> str | None:
    if y.min() >= 0:
        return None
    return f"non-negative weights, got a minimum of {float(y.min()):.6g}"


def _log_softmax(logits: Array) -> Array:
    # Shifting by the row maximum leaves softmax unchanged and keeps every exponent ≤ 0:
    # log Σ_j e^{ŷ_j} = max ŷ + log Σ_j e^{ŷ_j − max ŷ} (log-sum-exp).
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _softmax_cross_entropy(logits: Array, y: Array) -> Array:
    return -np.einsum("ij,ij->i", y, _log_softmax(logits))


def _softmax(logits: Array) -> Array:
    # e^{ŷ − max ŷ} / Σ e^{ŷ − max ŷ}: every exponent ≤ 0, so nothing overflows.
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _softmax_cross_entropy_gradient(logits: Array, y: Array) -> Array:
    # ∂/∂ŷ −Σ_j y_j log softmax(ŷ)_j = (Σ_j y_j)·softmax(ŷ) − y; Σ_j y_j = 1 for one-hot rows.
    return y.sum(axis=1, keepdims=True) * _softmax(logits) - y


LOSSES: dict[str, Loss] = {
    loss.name: loss
    for loss in (
        Loss(
            "half_sse",
            "½‖ŷ − y‖²",
            _half_sse,
            _half_sse_gradient,
            "any finite values",
            _any_finite,
        ),
        Loss(
            "mse",
            "mean_j (ŷ_j − y_j)²",
            _mse,
            _mse_gradient,
            "any finite values",
            _any_finite,
        ),
        Loss(
            "binary_cross_entropy",
            "mean_j −[y_j log ŷ_j + (1 − y_j) log(1 − ŷ_j)], ŷ = σ(z)",
            _bce_from_logits,
            _bce_from_logits_gradient,
            "values in [0, 1]",
            _in_unit_interval,
            on_logits=True,
            output_activation="sigmoid",
        ),
        Loss(
            "softmax_cross_entropy",
            "−Σ_j y_j log softmax(ŷ)_j",
            _softmax_cross_entropy,
            _softmax_cross_entropy_gradient,
            "non-negative weights",
            _non_negative,
        ),
    )
}
"""The supported losses by name; adding one is one entry here."""

REDUCTIONS = ("mean", "sum")
"""How per-sample losses combine over the batch."""
