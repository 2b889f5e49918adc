"""How close two results must be: a tolerance derived from the dtype and the problem's scale.

Two correct implementations of backprop differ only by rounding, and rounding errors are
proportional to the size of the numbers that are added up, not to the result: an entry that
cancels to nearly zero still carries the rounding error of its large terms.  So every value is
compared against its **error scale** ``S``: the same computation run on absolute values.

Forward (``forward_scales``)::

    t_l = s_{l-1} |W_l|ᵀ + |b_l|               the size of the terms summed into z_l
    s_l = max(|f'(z_l)|, 1) · t_l + |a_l|      the error scale of a_l  (s_0 = |x|)

Backward (``error_scale``), with ``D_l = max(|f'(z_l)|, 1) + sup|f''| · t_l``::

    m_L     = (gradient_scale + curvature · s_out) ∘ D_L, / batch for the mean reduction
    S(W_l)  = m_lᵀ s_{l-1}           S(b_l) = Σ_batch m_l
    m_{l-1} = (m_l |W_l|) ∘ D_{l-1}

``gradient_scale`` and ``curvature`` come with each loss (``reference.Loss``: ``|ŷ| + |y|`` and
1 for ½‖ŷ − y‖²), ``sup|f''|`` with each activation (``reference.Activation.curvature``).
``S ≥ |∂L/∂θ|`` entry by entry.  Each term has a reason: ``max(|f'|, 1)`` covers frameworks
that compute ``σ'`` as ``σ(1 − σ)``, exact only to ``eps`` *absolutely* where σ saturates;
``s_{l-1}`` instead of ``|a_{l-1}|`` covers an activation that is tiny but carries the absolute
rounding error of its large pre-activation (gelu far left); ``sup|f''| · t`` and
``curvature · s_out`` cover how far such forward errors move ``f'`` and the loss gradient;
``|ŷ| + |y|`` covers the cancellation in ``ŷ − y``.

A candidate value ``g`` matches the reference ``r`` when, for every entry,
``|g − r| ≤ atol + rtol · S``, with by default ``atol = 0`` and

    rtol = RTOL_FACTOR · eps(dtype) · (n_layers + 1)

where ``eps`` is the machine epsilon of the params' dtype (2.2e-16 for float64, 1.2e-7 for
float32).  Measured over random networks (all activations and losses, pre-activations up to
|z| of a few hundred), torch and jax reach at most about 1/20 of this bound, so
``RTOL_FACTOR = 16`` leaves a wide margin; yet a float64 check stays near 1e-14 · S, a hundred
million times tighter than the error of an implementation that silently computes in float32.
"""

from __future__ import annotations

from collections.abc import Sequence
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


@dataclass(frozen=True)
class ForwardScales:
    """Error scales of the forward values: ``z_l`` and ``a_l`` ``(batch, width)``, the loss."""

    preactivations: tuple[NDArray[np.floating], ...]
    activations: tuple[NDArray[np.floating], ...]
    loss: float


def _derivative_bound(
    name: str, z: NDArray[np.floating], a: NDArray[np.floating], t: NDArray[np.floating]
) -> NDArray[np.floating]:
    # max(|f'(z)|, 1) for the derivative itself, plus sup|f''|·t for how far a rounding error
    # in z (of size eps·t, t the size of z's terms) moves f'(z).
    act = ACTIVATIONS[name]
    bound = np.maximum(np.abs(act.derivative(z, a)), 1)
    return bound + act.curvature * t if act.curvature else bound


def error_scales(
    net: Network, params: Params, x: NDArray[np.floating], y: NDArray[np.floating]
) -> tuple[ForwardScales, Params]:
    """The error scales of the forward values and of every gradient entry, in one pass.

    ``x``: ``(batch, in)``, ``y``: ``(batch, out)``, checked (see ``reference.check_inputs``).
    The gradient scales are ``Params`` shaped like ``params``.  Scales are computed in float64
    whatever the params' dtype: they multiply large magnitudes and must not overflow.
    """
    params = Params._trusted(
        tuple(W.astype(np.float64) for W in params.weights),
        tuple(b.astype(np.float64) for b in params.biases),
    )
    x, y = x.astype(np.float64), y.astype(np.float64)
    zs, activations = forward(net, params, x)
    s = np.abs(x)
    ts, ss = [], []  # t_l: size of the terms summed into z_l; s_l: error scale of a_l
    for (W, b), name, z, a in zip(params, net.activations, zs, activations[1:], strict=True):
        t = s @ np.abs(W).T + np.abs(b)
        s = np.maximum(np.abs(ACTIVATIONS[name].derivative(z, a)), 1) * t + np.abs(a)
        ts.append(t)
        ss.append(s)

    loss = LOSSES[net.loss]
    out, out_scale = (zs[-1], ts[-1]) if loss.on_logits else (activations[-1], ss[-1])
    per_sample = (loss.gradient_scale(out, y) * out_scale).sum(axis=1) + np.abs(loss.value(out, y))
    forward_total = per_sample.mean() if net.reduction == "mean" else per_sample.sum()

    # Backward, on absolute values: the loss gradient's terms, plus its movement under the
    # rounding error of the output.
    m = loss.gradient_scale(out, y) + loss.curvature(out, y) * out_scale.max(axis=1, keepdims=True)
    if net.reduction == "mean":
        m = m / x.shape[0]
    if not loss.on_logits:
        m = m * _derivative_bound(net.activations[-1], zs[-1], activations[-1], ts[-1])
    n = net.n_layers
    S_W: list[NDArray[np.floating]] = [np.empty(0)] * n
    S_b: list[NDArray[np.floating]] = [np.empty(0)] * n
    for l in reversed(range(n)):
        a_scale = ss[l - 1] if l > 0 else np.abs(x)  # the error scale of a_{l-1}, ≥ |a_{l-1}|
        S_W[l] = m.T @ a_scale
        S_b[l] = m.sum(axis=0)
        if l > 0:
            bound = _derivative_bound(net.activations[l - 1], zs[l - 1], activations[l], ts[l - 1])
            m = (m @ np.abs(params.weights[l])) * bound
    forward_scales = ForwardScales(tuple(ts), tuple(ss), float(forward_total))
    return forward_scales, Params._trusted(tuple(S_W), tuple(S_b))


def error_scale(net: Network, params: Params, x: ArrayLike, y: ArrayLike) -> Params:
    """The error scale ``S`` of every gradient entry, as ``Params`` shaped like ``params``.

    ``x``: ``(batch, in)`` or ``(in,)``; ``y``: ``(batch, out)`` or ``(out,)``.  Computed in the
    params' dtype.
    """
    batch = check_inputs(net, params, x, y)
    return error_scales(net, params, batch.x, batch.y)[1]


def forward_scales(
    net: Network, params: Params, x: NDArray[np.floating], y: NDArray[np.floating]
) -> ForwardScales:
    """The forward pass on absolute values, bounding the rounding error of each value.

    ``t_l = s_{l-1} |W_l|ᵀ + |b_l|`` bounds the terms summed into ``z_l``;
    ``s_l = max(|f'(z_l)|, 1) · t_l + |a_l|`` bounds those of ``a_l`` (``s_0 = |x|``); the loss
    gets ``Σ_j m_j · s_L,j + |ℓ|`` per sample, reduced like the loss, with ``m`` the loss's
    ``gradient_scale`` (``s`` is ``t`` when the loss works on logits).  Like
    ``error_scale`` for gradients, a value agrees when ``|v − r| ≤ atol + rtol · scale``.
    ``x``: ``(batch, in)``, ``y``: ``(batch, out)``, both checked and in the params' dtype.
    """
    return error_scales(net, params, x, y)[0]


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


def compare_all(
    items: Sequence[tuple[str, NDArray[np.floating], NDArray[np.floating], NDArray[np.floating]]],
    rtol: float,
    atol: float = 0.0,
) -> list[ParamComparison]:
    """``compare_arrays`` on each ``(name, candidate, reference, scale)``, in one pass.

    The same element-wise arithmetic on the concatenation of every array (a dozen small NumPy
    calls in all instead of a dozen per array: the comparisons were a third of a cross-check's
    time), so the results equal ``compare_arrays``'s exactly.  ``scale`` has the reference's
    size (its shape may differ, e.g. ``(1, width)`` for a one-sample ``(width,)``).  Anything
    unusual (a shape or dtype mismatch, a non-finite or empty array) takes the per-array path.
    """
    candidates = [g for _, g, _, _ in items]
    references = [r for _, _, r, _ in items]
    usual = all(
        g.shape == r.shape and g.dtype == r.dtype and r.size
        for g, r in zip(candidates, references, strict=True)
    )
    if usual:
        g = np.concatenate([a.ravel() for a in candidates]).astype(np.float64)
        usual = bool(np.isfinite(g).all())
    if not usual:
        return [compare_arrays(n, g, r, np.reshape(s, r.shape), rtol, atol) for n, g, r, s in items]
    r = np.concatenate([a.ravel() for a in references]).astype(np.float64)
    s = np.concatenate([np.ravel(a) for _, _, _, a in items]).astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(g - r)
        allowed = atol + rtol * s
        ratio = np.divide(err, allowed, out=np.where(err > 0, np.inf, 0.0), where=allowed > 0)
        rel = np.divide(err, s, out=np.where(err > 0, np.inf, 0.0), where=s > 0)
    starts = np.cumsum([0] + [a.size for a in references])
    max_err = np.maximum.reduceat(err, starts[:-1])
    max_rel = np.maximum.reduceat(rel, starts[:-1])
    out = []
    for i, (name, _, ref, _) in enumerate(items):
        k = int(ratio[starts[i] : starts[i + 1]].argmax())
        worst_ratio = float(ratio[starts[i] + k])
        out.append(ParamComparison(
            name=name,
            max_abs_err=float(max_err[i]),
            max_rel_err=float(max_rel[i]),
            worst_index=tuple(int(j) for j in np.unravel_index(k, ref.shape)),
            worst_ratio=worst_ratio,
            ok=worst_ratio <= 1,
        ))  # fmt: skip
    return out
