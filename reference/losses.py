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
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .activations import _sigmoid

Array = NDArray[np.floating]
Scalar = np.floating[Any]


@dataclass(frozen=True)
class Loss:
    """A per-sample loss and its gradient.

    ``value(out, y) -> (batch,)`` and ``gradient(out, y) -> (batch, width)`` take ``out`` and
    ``y`` of shape ``(batch, width)``.  ``out`` is ``ŷ``, or ``z`` of the output layer when
    ``on_logits`` is set (then the loss requires ``output_activation``).  ``target_domain``
    describes the valid targets, and ``target_error(y)`` returns why ``y`` is outside it, or
    ``None``.  ``fused_total(out, y) -> (total, gradient)``, when given, computes the batch
    sum of the values together with the gradient, sharing their work.
    """

    name: str
    formula: str
    value: Callable[[Array, Array], Array]
    gradient: Callable[[Array, Array], Array]
    target_domain: str
    target_error: Callable[[Array], str | None]
    gradient_scale: Callable[[Array, Array], Array]
    curvature: Callable[[Array, Array], Array]
    on_logits: bool = False
    output_activation: str | None = None
    fused_total: Callable[[Array, Array], tuple[Scalar, Array]] | None = None

    def total_and_gradient(self, out: Array, y: Array) -> tuple[Scalar, Array]:
        """``(Σ_batch value(out, y), gradient(out, y))``: the batch total as a NumPy scalar of
        ``out``'s dtype, and the gradient as a fresh array, the caller's to scale in place.

        Computed together where the two share work (``fused_total``).  The gradient is the
        same bit for bit either way; the total may differ from ``value(out, y).sum()`` in its
        last bits, because it adds the same terms in a different order.
        """
        if self.fused_total is not None:
            return self.fused_total(out, y)
        return self.value(out, y).sum(), self.gradient(out, y)


def _any_finite(y: Array) -> str | None:
    return None


def _half_sse(yhat: Array, y: Array) -> Array:
    r = yhat - y
    return 0.5 * np.einsum("ij,ij->i", r, r)


def _half_sse_gradient(yhat: Array, y: Array) -> Array:
    return yhat - y


def _half_sse_scale(yhat: Array, y: Array) -> Array:
    return np.abs(yhat) + np.abs(y)


def _half_sse_fused_total(yhat: Array, y: Array) -> tuple[Scalar, Array]:
    r = yhat - y  # the residual is the gradient: computed once
    # Σ_batch ½‖r_i‖² = ½ r·r: one dot product over the whole batch (np.vdot flattens).
    return 0.5 * np.vdot(r, r), r


def _mse(yhat: Array, y: Array) -> Array:
    r = yhat - y
    return np.einsum("ij,ij->i", r, r) / r.shape[1]


def _mse_gradient(yhat: Array, y: Array) -> Array:
    return (2 / yhat.shape[1]) * (yhat - y)


def _mse_fused_total(yhat: Array, y: Array) -> tuple[Scalar, Array]:
    r = yhat - y
    return np.vdot(r, r) / r.shape[1], (2 / yhat.shape[1]) * r


def _mse_scale(yhat: Array, y: Array) -> Array:
    return (2 / yhat.shape[1]) * (np.abs(yhat) + np.abs(y))


def _in_unit_interval(y: Array) -> str | None:
    if y.min() >= 0 and y.max() <= 1:  # two reductions, no boolean temporaries
        return None
    return f"values in [0, 1], got values from {float(y.min()):.6g} to {float(y.max()):.6g}"


def _bce_from_logits(z: Array, y: Array) -> Array:
    # −[y log σ(z) + (1−y) log(1−σ(z))] = max(z, 0) − y·z + log1p(e^{-|z|}), exact for any z.
    per_output = np.maximum(z, 0) - y * z + np.log1p(np.exp(-np.abs(z)))
    return per_output.mean(axis=1)


def _bce_from_logits_gradient(z: Array, y: Array) -> Array:
    # ∂/∂z of the per-output loss is σ(z) − y: the sigmoid's derivative cancels the log's.
    return (_sigmoid(z) - y) / z.shape[1]


def _bce_from_logits_scale(z: Array, y: Array) -> Array:
    return (_sigmoid(z) + y) / z.shape[1]


def _non_negative(y: Array) -> str | None:
    if y.min() >= 0:  # one reduction, no boolean temporary
        return None
    return f"non-negative weights, got a minimum of {float(y.min()):.6g}"


def _log_softmax(logits: Array) -> Array:
    # Shifting by the row maximum leaves softmax unchanged and keeps every exponent ≤ 0.
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _softmax_cross_entropy(logits: Array, y: Array) -> Array:
    return -np.einsum("ij,ij->i", y, _log_softmax(logits))


def _softmax(logits: Array) -> Array:
    # e^{ŷ − max ŷ} / Σ e^{ŷ − max ŷ}: every exponent ≤ 0, so nothing overflows, and the sum is
    # at least 1; three array passes fewer than exp(log_softmax).
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    e /= e.sum(axis=1, keepdims=True)  # in place: e is a fresh array
    return e


def _softmax_cross_entropy_gradient(logits: Array, y: Array) -> Array:
    # ∂/∂ŷ −Σ_j y_j log softmax(ŷ)_j = (Σ_j y_j)·softmax(ŷ) − y; Σ_j y_j = 1 for one-hot rows.
    return y.sum(axis=1, keepdims=True) * _softmax(logits) - y


def _softmax_cross_entropy_fused_total(logits: Array, y: Array) -> tuple[Scalar, Array]:
    # The value's log softmax and the gradient's softmax share the shifted exponentials, their
    # row sums and the targets' row sums; each is the same arithmetic as in _log_softmax and
    # _softmax.  Summed over the batch, −Σ_ij y_ij (s_ij − log t_i) = Σ_i (Σ_j y_ij) log t_i
    # − Σ_ij y_ij s_ij, two dot products of non-negative terms (s ≤ 0, t ≥ 1): no cancellation.
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    row_sums = e.sum(axis=1, keepdims=True)
    weights = y.sum(axis=1, keepdims=True)  # Σ_j y_ij, 1 for one-hot rows
    total = np.vdot(weights, np.log(row_sums)) - np.vdot(y, shifted)
    e /= row_sums  # softmax, in place: e is a fresh array
    return total, weights * e - y


def _softmax_cross_entropy_scale(logits: Array, y: Array) -> Array:
    return y.sum(axis=1, keepdims=True) * _softmax(logits) + y


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
            _half_sse_scale,
            lambda yhat, y: np.ones((1, 1), yhat.dtype),  # ∂(ŷ − y)/∂ŷ = 1
            fused_total=_half_sse_fused_total,
        ),
        Loss(
            "mse",
            "mean_j (ŷ_j − y_j)²",
            _mse,
            _mse_gradient,
            "any finite values",
            _any_finite,
            _mse_scale,
            lambda yhat, y: np.full((1, 1), 2 / yhat.shape[1], yhat.dtype),
            fused_total=_mse_fused_total,
        ),
        Loss(
            "binary_cross_entropy",
            "mean_j −[y_j log ŷ_j + (1 − y_j) log(1 − ŷ_j)], ŷ = σ(z)",
            _bce_from_logits,
            _bce_from_logits_gradient,
            "values in [0, 1]",
            _in_unit_interval,
            _bce_from_logits_scale,
            lambda z, y: np.full((1, 1), 0.25 / z.shape[1], z.dtype),  # σ' ≤ 1/4
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
            _softmax_cross_entropy_scale,
            lambda logits, y: y.sum(axis=1, keepdims=True),  # (Σy)·softmax' ≤ Σy
            fused_total=_softmax_cross_entropy_fused_total,
        ),
    )
}
"""The supported losses by name; adding one is one entry here."""

REDUCTIONS = ("mean", "sum")
"""How per-sample losses combine over the batch."""
