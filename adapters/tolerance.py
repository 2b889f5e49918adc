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


# Scales of huge inputs may overflow float64 (their bounds are loose); an infinite scale allows
# any finite error there, and no warning escapes.
@np.errstate(over="ignore", invalid="ignore")
def error_scales(
    net: Network,
    params: Params,
    x: NDArray[np.floating],
    y: NDArray[np.floating],
    forward_values: tuple[Sequence[NDArray[np.floating]], Sequence[NDArray[np.floating]]]
    | None = None,
) -> tuple[ForwardScales, Params]:
    """The error scales of the forward values and of every gradient entry, in one pass.

    ``x``: ``(batch, in)``, ``y``: ``(batch, out)``, checked (see ``reference.check_inputs``).
    The gradient scales are ``Params`` shaped like ``params``.  Scales are computed in float64
    whatever the params' dtype: they multiply large magnitudes and must not overflow.
    ``forward_values``, the ``([z_1..z_L], [a_0..a_L])`` of ``reference.forward`` on these
    inputs, saves running the forward pass again when the params are float64.
    """
    weights = [W.astype(np.float64, copy=False) for W in params.weights]
    biases = [b.astype(np.float64, copy=False) for b in params.biases]
    x, y = x.astype(np.float64, copy=False), y.astype(np.float64, copy=False)
    if forward_values is None or params.dtype != np.float64:
        forward_values = forward(net, Params._trusted(tuple(weights), tuple(biases)), x)
    zs, activations = forward_values
    abs_weights = [np.abs(W) for W in weights]

    # t_l: size of the terms summed into z_l; s_l: error scale of a_l; bounds[l]: D_l.
    s = np.abs(x)
    ts, ss, bounds = [], [], []
    for W_abs, b, name, z, a in zip(
        abs_weights, biases, net.activations, zs, activations[1:], strict=True
    ):
        act = ACTIVATIONS[name]
        t = s @ W_abs.T + np.abs(b)
        derivative = np.maximum(np.abs(act.derivative(z, a)), 1)  # max(|f'(z)|, 1)
        s = derivative * t + np.abs(a)
        # D_l: max(|f'(z)|, 1) for the derivative itself, plus sup|f''|·t for how far a
        # rounding error in z (of size eps·t) moves f'(z).
        bounds.append(derivative + act.curvature * t if act.curvature else derivative)
        ts.append(t)
        ss.append(s)

    loss = LOSSES[net.loss]
    out, out_scale = (zs[-1], ts[-1]) if loss.on_logits else (activations[-1], ss[-1])
    gradient_scale = loss.gradient_scale(out, y)
    per_sample = (gradient_scale * out_scale).sum(axis=1) + np.abs(loss.value(out, y))
    forward_total = per_sample.mean() if net.reduction == "mean" else per_sample.sum()

    # Backward, on absolute values: the loss gradient's terms, plus its movement under the
    # rounding error of the output.
    m = gradient_scale + loss.curvature(out, y) * out_scale.max(axis=1, keepdims=True)
    if net.reduction == "mean":
        m = m / x.shape[0]
    if not loss.on_logits:
        m = m * bounds[-1]
    n = net.n_layers
    S_W: list[NDArray[np.floating]] = [np.empty(0)] * n
    S_b: list[NDArray[np.floating]] = [np.empty(0)] * n
    for l in reversed(range(n)):
        a_scale = ss[l - 1] if l > 0 else np.abs(x)  # the error scale of a_{l-1}, ≥ |a_{l-1}|
        S_W[l] = m.T @ a_scale
        S_b[l] = m.sum(axis=0)
        if l > 0:
            m = (m @ abs_weights[l]) * bounds[l - 1]
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


class Expected:
    """The reference side of a comparison, prepared once for any number of candidates.

    ``items`` are ``(name, reference, scale)``; ``scale`` has the reference's size (its shape
    may differ, e.g. ``(1, width)`` for a one-sample ``(width,)``).  ``compare(candidates,
    rtol, atol)`` then gives what ``compare_arrays`` gives on each array, exactly, from one
    pass over the concatenation of every array: a dozen small NumPy calls per candidate instead
    of a dozen per array (per-array calls were a third of a cross-check's time).  A cross-check
    of several backends builds the reference's concatenation once.
    """

    def __init__(
        self, items: Sequence[tuple[str, NDArray[np.floating], NDArray[np.floating]]]
    ) -> None:
        self.names = [name for name, _, _ in items]
        self.references = [r for _, r, _ in items]
        self.scales = [np.reshape(s, r.shape) for _, r, s in items]
        self._sizes = [r.size for r in self.references]
        self._usual = all(self._sizes)  # an empty array takes the per-array path
        if self._usual:
            self._r = np.concatenate([r.ravel() for r in self.references], dtype=np.float64)
            self._s = np.concatenate([s.ravel() for s in self.scales], dtype=np.float64)
            self._starts = np.cumsum([0, *self._sizes[:-1]])
            self._s_positive = self._s > 0
            self._allowed: dict[
                tuple[float, float], tuple[NDArray[np.float64], NDArray[np.bool_]]
            ] = {}

    def compare(
        self, candidates: Sequence[NDArray[np.floating]], rtol: float, atol: float = 0.0
    ) -> list[ParamComparison]:
        """``compare_arrays`` of each candidate with its reference, in one pass."""
        refs = self.references
        usual = self._usual and all(
            g.shape == r.shape and g.dtype == r.dtype for g, r in zip(candidates, refs, strict=True)
        )
        if usual:
            g = np.concatenate([a.ravel() for a in candidates], dtype=np.float64)
            usual = bool(np.isfinite(g).all())
        if not usual:  # a shape or dtype mismatch, a non-finite or empty array: say which
            return [
                compare_arrays(n, g, r, s, rtol, atol)
                for n, g, r, s in zip(self.names, candidates, refs, self.scales, strict=True)
            ]
        s, starts = self._s, self._starts
        with np.errstate(invalid="ignore", over="ignore"):
            if (rtol, atol) not in self._allowed:  # the same for every backend of a case
                allowed = atol + rtol * s
                self._allowed[rtol, atol] = allowed, allowed > 0
            allowed, allowed_positive = self._allowed[rtol, atol]
            err = np.abs(g - self._r)
            # Where the allowance (or the scale) is 0, any error is infinitely too large.
            zero_or_inf = np.where(err > 0, np.inf, 0.0)
            ratio = np.divide(err, allowed, out=zero_or_inf.copy(), where=allowed_positive)
            rel = np.divide(err, s, out=zero_or_inf, where=self._s_positive)
        worst_ratio = np.maximum.reduceat(ratio, starts)
        # The first entry of each array that reaches its array's largest ratio (argmax's tie
        # rule): every array holds at least one, so each start finds one in its own array.
        hits = np.flatnonzero(ratio == np.repeat(worst_ratio, self._sizes))
        worst = hits[np.searchsorted(hits, starts)] - starts
        return [
            ParamComparison(name, e, r, _unravel(k, ref.shape), w, w <= 1)
            for name, ref, e, r, k, w in zip(
                self.names, refs,
                np.maximum.reduceat(err, starts).tolist(),
                np.maximum.reduceat(rel, starts).tolist(),
                worst.tolist(), worst_ratio.tolist(),
                strict=True,
            )
        ]  # fmt: skip


def _unravel(k: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    """``np.unravel_index(k, shape)`` as Python ints, for the shapes of a network's arrays."""
    if len(shape) == 2:
        return divmod(k, shape[1])
    if len(shape) < 2:
        return (k,) if shape else ()
    return tuple(int(i) for i in np.unravel_index(k, shape))


def compare_all(
    items: Sequence[tuple[str, NDArray[np.floating], NDArray[np.floating], NDArray[np.floating]]],
    rtol: float,
    atol: float = 0.0,
) -> list[ParamComparison]:
    """``compare_arrays`` on each ``(name, candidate, reference, scale)``, in one pass: the
    same results, exactly (see ``Expected``)."""
    expected = Expected([(name, r, s) for name, _, r, s in items])
    return expected.compare([g for _, g, _, _ in items], rtol, atol)
