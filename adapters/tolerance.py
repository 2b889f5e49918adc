"""How close two gradients must be: a tolerance derived from the dtype and the problem's scale.

Two correct implementations of backprop differ only by rounding, and rounding errors are
proportional to the size of the numbers that are added up, not to the result: a gradient entry
that cancels to nearly zero still carries the rounding error of its large terms.  So each
gradient entry is compared against its **error scale** ``S``, the same backward pass run on
absolute values, with every activation derivative replaced by ``max(|f'(z)|, 1)``::

    m_L     = the loss's gradient_scale (|ŷ| + |y| for ½‖ŷ − y‖², see reference.Loss)
              ∘ max(|f_L'(z_L)|, 1), and / batch for the mean reduction
    S(W_l)  = m_lᵀ |a_{l-1}|        S(b_l) = Σ_batch m_l
    m_{l-1} = (m_l |W_l|) ∘ max(|f'_{l-1}(z_{l-1})|, 1)

``S ≥ |∂L/∂θ|`` entry by entry.  Replacing ``f'`` by at least 1 covers frameworks that compute
``σ'`` as ``σ(1 − σ)``, which is exact only to ``eps`` *absolutely* where σ saturates, and the
``|ŷ| + |y|`` term covers the cancellation in ``ŷ − y``.

A candidate gradient ``g`` matches the reference ``r`` when, for every entry,
``|g − r| ≤ atol + rtol · S``, with by default ``atol = 0`` and

    rtol = RTOL_FACTOR · eps(dtype) · (n_layers + 1)

where ``eps`` is the machine epsilon of the params' dtype (2.2e-16 for float64, 1.2e-7 for
float32).  The factor leaves room for the different summation orders of the BLAS kernels;
it keeps a float64 check near 1e-13 · S, a million times tighter than what an implementation
that silently computes in float32 gets wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..reference import ACTIVATIONS, LOSSES, Network, Params, forward
from ..reference.validation import check_inputs

RTOL_FACTOR = 16.0
"""The constant in the default rtol; see the module docstring."""


def default_rtol(net: Network, dtype: np.dtype[np.floating] | type) -> float:
    """The default rtol (relative to the error scale ``S``) for ``net`` in ``dtype``."""
    return RTOL_FACTOR * float(np.finfo(dtype).eps) * (net.n_layers + 1)


def error_scale(net: Network, params: Params, x: ArrayLike, y: ArrayLike) -> Params:
    """The error scale ``S`` of every gradient entry, as ``Params`` shaped like ``params``.

    ``x``: ``(batch, in)`` or ``(in,)``; ``y``: ``(batch, out)`` or ``(out,)``.  Computed in the
    params' dtype.
    """
    batch = check_inputs(net, params, x, y)
    zs, activations = forward(net, params, batch.x)
    loss = LOSSES[net.loss]
    out = zs[-1] if loss.on_logits else activations[-1]
    m = loss.gradient_scale(out, batch.y)
    if net.reduction == "mean":
        m = m / batch.x.shape[0]
    if not loss.on_logits:
        m = m * _derivative_bound(net.activations[-1], zs[-1], activations[-1])

    n = net.n_layers
    S_W: list[NDArray[np.floating]] = [np.empty(0)] * n
    S_b: list[NDArray[np.floating]] = [np.empty(0)] * n
    for l in reversed(range(n)):
        S_W[l] = m.T @ np.abs(activations[l])
        S_b[l] = m.sum(axis=0)
        if l > 0:
            bound = _derivative_bound(net.activations[l - 1], zs[l - 1], activations[l])
            m = (m @ np.abs(params.weights[l])) * bound
    return Params._trusted(tuple(S_W), tuple(S_b))


def _derivative_bound(
    name: str, z: NDArray[np.floating], a: NDArray[np.floating]
) -> NDArray[np.floating]:
    return np.maximum(np.abs(ACTIVATIONS[name].derivative(z, a)), 1)


@dataclass(frozen=True)
class ParamComparison:
    """How a candidate's gradient of one parameter array compares with the reference's.

    ``max_abs_err`` is ``max |g − r|``; ``max_rel_err`` is ``max |g − r| / S`` (relative to the
    error scale, so it is meaningful where ``r`` is zero); ``worst_index`` is where
    ``|g − r| / (atol + rtol·S)`` peaks, and ``ok`` whether that ratio is at most 1 everywhere
    (with shape and dtype equal).
    """

    name: str
    max_abs_err: float
    max_rel_err: float
    worst_index: tuple[int, ...]
    worst_ratio: float
    ok: bool
    problem: str | None = None


def compare_arrays(
    name: str,
    candidate: NDArray[np.floating],
    reference: NDArray[np.floating],
    scale: NDArray[np.floating],
    rtol: float,
    atol: float = 0.0,
) -> ParamComparison:
    """Compare one candidate array with the reference under ``|g − r| ≤ atol + rtol · scale``."""
    if candidate.shape != reference.shape:
        return ParamComparison(
            name, np.inf, np.inf, (), np.inf, False,
            f"shape {candidate.shape}, expected {reference.shape}",
        )  # fmt: skip
    if candidate.dtype != reference.dtype:
        problem: str | None = f"dtype {candidate.dtype}, expected {reference.dtype}"
    elif not np.isfinite(candidate).all():
        problem = "non-finite values"
    else:
        problem = None
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(candidate.astype(np.float64) - reference.astype(np.float64))
        err = np.where(np.isnan(err), np.inf, err)
        allowed = atol + rtol * scale.astype(np.float64)
        ratio = np.divide(err, allowed, out=np.where(err > 0, np.inf, 0.0), where=allowed > 0)
        rel = np.divide(err, scale, out=np.where(err > 0, np.inf, 0.0), where=scale > 0)
    worst = np.unravel_index(int(np.argmax(ratio)), ratio.shape) if ratio.size else ()
    worst_ratio = float(ratio[worst]) if ratio.size else 0.0
    return ParamComparison(
        name=name,
        max_abs_err=float(err.max()) if err.size else 0.0,
        max_rel_err=float(rel.max()) if rel.size else 0.0,
        worst_index=tuple(int(i) for i in worst),
        worst_ratio=worst_ratio,
        ok=problem is None and worst_ratio <= 1,
        problem=problem,
    )
