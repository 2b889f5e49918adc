"""How close two results must be: a tolerance derived from the dtype and the problem's scale.

Two correct implementations of backprop differ only by rounding, and rounding errors are
proportional to the size of the numbers that are added up, not to the result: an entry that
cancels to nearly zero still carries the rounding error of its large terms.  So every value is
compared against its **error scale** ``S``: the same computation run on absolute values.

Forward (``forward_scales``)::

    t_l = s_{l-1} |W_l|ᵀ + |b_l|               the size of the terms summed into z_l
    s_l = max(|f'(z_l)|, 1) · t_l + |a_l|      the error scale of a_l  (s_0 = |x|)

Backward (``error_scale``), with ``D_l = max(|f'(z_l)|, 1) + sup|f''| · t_l``::

    m_L     = (gradient_scale + curvature · max_j s_out) ∘ D_L, / batch for the mean reduction
              (max_j over each sample's outputs; no ∘ D_L for a loss on the logits)
    S(W_l)  = m_lᵀ s_{l-1}           S(b_l) = Σ_batch m_l
    m_{l-1} = (m_l |W_l|) ∘ D_{l-1}

``gradient_scale`` and ``curvature`` of each loss (``|ŷ| + |y|`` and 1 for ½‖ŷ − y‖²) are in
``LOSS_SCALES``, ``sup|f''|`` of each activation in ``CURVATURE``: the model's constants live
here, in one table each, not in the reference.
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

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..reference import ACTIVATIONS, LOSSES, Network, Params, forward
from ..reference.validation import check_inputs

Array = NDArray[np.floating]

RTOL_FACTOR = 16.0
"""The constant in the default rtol; see the module docstring."""

CURVATURE: dict[str, float] = {
    "identity": 0.0,
    "sigmoid": 0.1,  # sup|σ''| = 1/(6√3) ≈ 0.096
    "tanh": 0.77,  # sup|tanh''| = 4/(3√3) ≈ 0.770
    "relu": 0.0,
    "leaky_relu": 0.0,
    "softplus": 0.25,  # softplus'' = σ' ≤ 1/4
    "elu": 1.0,  # elu'' = e^z ≤ 1 on z ≤ 0
    "gelu": 0.8,  # sup|gelu''| = 2φ(0) ≈ 0.798
    "silu": 0.5,  # sup|silu''| ≈ 0.5 (at z = 0)
}
"""``sup|f''|`` of each activation: how far a rounding error in ``z`` can move ``f'(z)``."""

SLOPE_AT_MOST_ONE = frozenset(
    {"identity", "sigmoid", "tanh", "relu", "leaky_relu", "softplus", "elu"}
)
"""The activations with ``|f'| ≤ 1`` everywhere, whose ``max(|f'|, 1)`` in the model is 1:
the scales take 1 without computing ``f'`` (for tanh, ``f'`` as computed may round to one
ulp above 1 near 0).  gelu and silu reach about 1.13 and 1.10."""


@dataclass(frozen=True)
class LossScale:
    """The loss's part of the error scale, for output ``out`` and targets ``y`` ``(batch, width)``.

    ``gradient(out, y)`` bounds the size of the terms of ``∂ℓ/∂out`` (``(batch, width)``);
    ``curvature(out, y)`` bounds ``|∂²ℓ/∂out²|`` (a number, or an array broadcastable to
    ``(batch, width)``), how far a rounding error in ``out`` moves the gradient.
    """

    gradient: Callable[[Array, Array], Array]
    curvature: Callable[[Array, Array], Array | float]


LOSS_SCALES: dict[str, LossScale] = {
    "half_sse": LossScale(
        lambda yhat, y: np.abs(yhat) + np.abs(y),  # the terms of ŷ − y
        lambda yhat, y: 1.0,  # ∂(ŷ − y)/∂ŷ = 1
    ),
    "mse": LossScale(
        lambda yhat, y: (2 / yhat.shape[1]) * (np.abs(yhat) + np.abs(y)),
        lambda yhat, y: 2 / yhat.shape[1],
    ),
    "binary_cross_entropy": LossScale(  # on logits: (σ(z) − y) / width
        lambda z, y: (ACTIVATIONS["sigmoid"].forward(z) + y) / z.shape[1],
        lambda z, y: 0.25 / z.shape[1],  # σ' ≤ 1/4
    ),
    "softmax_cross_entropy": LossScale(  # (Σy)·softmax − y
        lambda logits, y: y.sum(axis=1, keepdims=True) * _softmax(logits) + y,
        lambda logits, y: y.sum(axis=1, keepdims=True),  # (Σy)·softmax' ≤ Σy
    ),
}
"""The error scale of each loss's gradient, by loss name."""


def _softmax(logits: Array) -> Array:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def default_rtol(net: Network, dtype: np.dtype[np.floating] | type) -> float:
    """The default rtol (relative to the error scale ``S``) for ``net`` in ``dtype``."""
    return RTOL_FACTOR * float(np.finfo(dtype).eps) * (net.n_layers + 1)


def model_tolerance(
    net: Network, dtype: np.dtype[np.floating], scale: Params, loss: float
) -> tuple[float, float]:
    """The model's ``(rtol, atol)``: ``(default_rtol(net, dtype), 0)``, whatever the scales.

    The ``tolerance`` of every backend that computes in the params' dtype (see
    ``adapters.protocol.Backend.tolerance``); ``scale`` (the gradients' error scales) and
    ``loss`` (the reference's loss) are there for backends whose error does not follow the
    model, like the finite-difference oracle.
    """
    return default_rtol(net, dtype), 0.0


@dataclass(frozen=True)
class ForwardScales:
    """Error scales of the forward values: ``z_l`` and ``a_l`` ``(batch, width)``, the loss."""

    preactivations: tuple[NDArray[np.floating], ...]
    activations: tuple[NDArray[np.floating], ...]
    loss: float


ForwardValues = tuple[Sequence[NDArray[np.floating]], Sequence[NDArray[np.floating]]]
"""``([z_1..z_L], [a_0..a_L])``, the forward pass of ``reference.forward``."""


# Scales of huge inputs may overflow float64 (their bounds are loose); an infinite scale allows
# any finite error there, and no warning escapes.
@np.errstate(over="ignore", invalid="ignore")
def error_scale_arrays(
    net: Network,
    params: Params,
    x: NDArray[np.floating],
    y: NDArray[np.floating],
    forward_values: ForwardValues | None = None,
) -> tuple[ForwardScales, list[Array], list[Array]]:
    """``error_scales`` with the gradient scales as two lists, ``S(W_l)`` and ``S(b_l)``.

    For callers that only read the gradient scales, such as a sweep's check: ``Params``
    checks every array it is given, nearly a tenth of the call on a sweep's small networks.
    """
    x, y = x.astype(np.float64, copy=False), y.astype(np.float64, copy=False)
    if params.dtype == np.float64:
        weights, biases = params.weights, params.biases
        if forward_values is None:
            forward_values = forward(net, params, x)
    else:  # scales in float64, on a forward pass of their own in float64
        weights = tuple(W.astype(np.float64) for W in params.weights)
        biases = tuple(b.astype(np.float64) for b in params.biases)
        forward_values = forward(net, Params(weights, biases), x)
    zs, activations = forward_values
    abs_weights = [np.abs(W) for W in weights]

    # t_l: size of the terms summed into z_l; ss[l]: s_l, the error scale of a_l (s_0 = |x|);
    # bounds[l]: D_l.
    # (A bound of None is 1: multiplying by it is left out.)
    ts: list[Array] = []
    ss: list[Array] = [np.abs(x)]
    bounds: list[Array | None] = []
    for W_abs, b, name, z, a in zip(
        abs_weights, biases, net.activations, zs, activations[1:], strict=True
    ):
        t = ss[-1] @ W_abs.T + np.abs(b)
        # D_l: max(|f'(z)|, 1) for the derivative itself, plus sup|f''|·t for how far a
        # rounding error in z (of size eps·t) moves f'(z).
        curvature = CURVATURE[name]
        if name in SLOPE_AT_MOST_ONE:  # max(|f'|, 1) = 1
            ss.append(t + np.abs(a))
            bounds.append(1 + curvature * t if curvature else None)
        else:
            derivative = np.maximum(np.abs(ACTIVATIONS[name].derivative(z, a)), 1)
            ss.append(derivative * t + np.abs(a))
            bounds.append(derivative + curvature * t if curvature else derivative)
        ts.append(t)

    loss, loss_scale = LOSSES[net.loss], LOSS_SCALES[net.loss]
    out, out_scale = (zs[-1], ts[-1]) if loss.on_logits else (activations[-1], ss[-1])
    gradient_scale = loss_scale.gradient(out, y)
    per_sample = (gradient_scale * out_scale).sum(axis=1) + np.abs(loss.value(out, y))
    # sum / n: the mean, computed exactly as ndarray.mean computes it, without its overhead.
    total = per_sample.sum()
    forward_total = total / per_sample.size if net.reduction == "mean" else total

    # Backward, on absolute values: the loss gradient's terms, plus its movement under the
    # rounding error of the output.
    m = gradient_scale + loss_scale.curvature(out, y) * out_scale.max(axis=1, keepdims=True)
    if net.reduction == "mean":
        m = m / x.shape[0]
    last = bounds[-1]
    if not loss.on_logits and last is not None:
        m = m * last
    S_W: list[Array] = []
    S_b: list[Array] = []
    for l in reversed(range(net.n_layers)):
        # ss[l] scales this layer's input: s_{l-1} (≥ |a_{l-1}|) in the 1-based numbering above.
        S_W.append(m.T @ ss[l])
        S_b.append(m.sum(axis=0))
        if l > 0:
            m = m @ abs_weights[l]
            below = bounds[l - 1]
            if below is not None:
                m = m * below
    S_W.reverse()
    S_b.reverse()
    forward_scales = ForwardScales(tuple(ts), tuple(ss[1:]), float(forward_total))
    return forward_scales, S_W, S_b


def error_scales(
    net: Network,
    params: Params,
    x: NDArray[np.floating],
    y: NDArray[np.floating],
    forward_values: ForwardValues | None = None,
) -> tuple[ForwardScales, Params]:
    """The error scales of the forward values and of every gradient entry, in one pass.

    ``x``: ``(batch, in)``, ``y``: ``(batch, out)``, checked (see ``reference.check_inputs``).
    The gradient scales are ``Params`` shaped like ``params``.  Scales are computed in float64
    whatever the params' dtype: they multiply large magnitudes and must not overflow.
    ``forward_values``, the ``([z_1..z_L], [a_0..a_L])`` of ``reference.forward`` on these
    inputs, saves running the forward pass again when the params are float64.
    """
    forward_scales, weight_scales, bias_scales = error_scale_arrays(
        net, params, x, y, forward_values
    )
    return forward_scales, Params(weight_scales, bias_scales)


def error_scale(net: Network, params: Params, x: ArrayLike, y: ArrayLike) -> Params:
    """The error scale ``S`` of every gradient entry, as ``Params`` shaped like ``params``.

    ``x``: ``(batch, in)`` or ``(in,)``; ``y``: ``(batch, out)`` or ``(out,)``.  Computed in
    float64 whatever the params' dtype.
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
    """How a candidate's array (a gradient, a forward value or the loss) compares with the
    reference's ``r``, entry by entry, under ``|g − r| ≤ atol + rtol·S``.

    ``max_abs_err`` is ``max |g − r|``; ``max_rel_err`` is the true relative error
    ``max |g − r| / |r|`` over the entries with ``r ≠ 0`` (0 when there are none);
    ``max_err_over_tolerance`` is ``max |g − r| / (atol + rtol·S)``, at most 1 to pass, and
    ``worst_index`` where it peaks; ``ok`` whether it passes with shape and dtype equal and
    every value finite, and ``problem`` what else is wrong (``"shape (3, 4), expected (4,
    3)"``, a dtype, non-finite values), or ``None``.  A shape mismatch has no entries to
    compare: its errors are ``inf`` and its index ``()``.
    """

    name: str
    max_abs_err: float
    max_rel_err: float
    max_err_over_tolerance: float
    worst_index: tuple[int, ...]
    ok: bool
    problem: str | None = None


class Expected:
    """The reference side of a comparison, prepared once for any number of candidates.

    ``items`` are ``(name, reference, scale)``; ``scale`` has the reference's size (its shape
    may differ, e.g. ``(1, width)`` for a one-sample ``(width,)``).  ``compare(candidates,
    rtol, atol)`` gives one ``ParamComparison`` per item from one pass over the concatenation
    of every array: a dozen small NumPy calls per candidate instead of a dozen per array
    (per-array calls were a third of a cross-check's time).  This is the only comparator:
    ``compare_arrays`` is it on one array.
    """

    def __init__(
        self, items: Sequence[tuple[str, NDArray[np.floating], NDArray[np.floating]]]
    ) -> None:
        self.names = [name for name, _, _ in items]
        self.references = [np.asarray(r) for _, r, _ in items]
        self.scales = [
            np.asarray(s).reshape(r.shape)
            for r, (_, _, s) in zip(self.references, items, strict=True)
        ]
        sizes = [r.size for r in self.references]
        # Empty arrays have nothing to compare and would break reduceat: left out of the pass.
        self._in_pass = [k for k, n in enumerate(sizes) if n]
        self._sizes = [sizes[k] for k in self._in_pass]
        self._starts = np.array([0, *itertools.accumulate(self._sizes[:-1])])
        self._r = self._concatenate(self.references)
        self._s = self._concatenate(self.scales)
        # |r|, with ∞ where r = 0: the true relative error |g − r| / |r| is then 0 there.
        self._abs_r = np.where(self._r != 0, np.abs(self._r), np.inf)
        self._allowed: dict[tuple[float, float], tuple[NDArray[np.float64], NDArray[np.bool_]]] = {}

    def _concatenate(self, arrays: Sequence[NDArray[Any]]) -> NDArray[np.float64]:
        """The arrays in the pass, raveled one after another, in float64."""
        if not self._in_pass:
            return np.zeros(0)
        return np.concatenate([arrays[k].ravel() for k in self._in_pass], dtype=np.float64)

    def compare(
        self, candidates: Sequence[ArrayLike], rtol: float, atol: float = 0.0
    ) -> list[ParamComparison]:
        """One ``ParamComparison`` per item for ``candidates``, in the order of the items."""
        if len(candidates) != len(self.names):
            raise ValueError(f"{len(candidates)} candidates for {len(self.names)} expected arrays")
        values = [np.asarray(g) for g in candidates]
        problems: list[str | None] = []
        # Entries compare only when the shapes match and the values are numbers; for any other
        # candidate the reference stands in in the pass (its row is written below), so that
        # the others still get one pass.
        comparable: list[bool] = []
        for g, r in zip(values, self.references, strict=True):
            problems.append(_problem(g, r))
            comparable.append(g.shape == r.shape and g.dtype.kind in "biuf")
        g = self._concatenate(
            [v if ok else r for v, ok, r in zip(values, comparable, self.references, strict=True)]
        )
        with np.errstate(invalid="ignore", over="ignore"):
            err = np.abs(g - self._r)
            finite = bool(np.isfinite(err).all())
            if not finite:
                err[np.isnan(err)] = np.inf
            if (rtol, atol) not in self._allowed:  # the same for every backend of a case
                allowed = atol + rtol * self._s
                self._allowed[rtol, atol] = allowed, allowed > 0
            allowed, allowed_positive = self._allowed[rtol, atol]
            # Where the allowance is 0, any error is infinitely too large.
            ratio = np.divide(err, allowed, out=np.where(err > 0, np.inf, 0.0),
                              where=allowed_positive)  # fmt: skip
            # The true relative error, where r ≠ 0 (it may overflow to inf next to a subnormal r).
            rel = err / self._abs_r
            if not finite:
                rel[np.isnan(rel)] = 0.0  # ∞ / ∞ where r = 0: no relative error defined there
        rows: list[ParamComparison | None] = [None] * len(values)
        if self._in_pass:
            starts = self._starts
            worst_ratio = np.maximum.reduceat(ratio, starts)
            # The first entry of each array that reaches its array's largest ratio (argmax's
            # tie rule): every array holds at least one, so each start finds one in its own.
            # A NaN ratio (an infinite error over an infinite allowance) is the largest, as
            # for argmax, and equals no other.
            largest = worst_ratio.repeat(self._sizes)
            reached = ratio == largest
            if not finite:
                reached |= np.isnan(ratio) & np.isnan(largest)
            hits = reached.nonzero()[0]
            worst = hits[hits.searchsorted(starts)] - starts
            non_finite = (
                [False] * len(starts) if finite
                else np.logical_or.reduceat(~np.isfinite(err), starts).tolist()
            )  # fmt: skip
            for k, e, r, w, i, bad in zip(
                self._in_pass,
                np.maximum.reduceat(err, starts).tolist(),
                np.maximum.reduceat(rel, starts).tolist(),
                worst_ratio.tolist(),
                worst.tolist(),
                non_finite,
                strict=True,
            ):
                if not comparable[k]:
                    continue
                problem = problems[k] or ("non-finite values" if bad else None)
                rows[k] = ParamComparison(
                    self.names[k], e, r, w, _unravel(i, self.references[k].shape),
                    problem is None and w <= 1, problem,
                )  # fmt: skip
        return [
            row
            if row is not None  # compared in the pass
            # no entries to compare: a wrong shape, values that are not numbers
            else ParamComparison(name, np.inf, np.inf, np.inf, (), False, problem)
            if not ok
            else ParamComparison(name, 0.0, 0.0, 0.0, (), problem is None, problem)  # empty
            for row, name, ok, problem in zip(rows, self.names, comparable, problems, strict=True)
        ]


def _problem(candidate: NDArray[np.generic], reference: NDArray[np.floating]) -> str | None:
    """What makes ``candidate`` unlike ``reference`` besides its values, or ``None``."""
    if candidate.shape != reference.shape:
        return f"shape {candidate.shape}, expected {reference.shape}"
    if candidate.dtype != reference.dtype:
        return f"dtype {candidate.dtype}, expected {reference.dtype}"
    return None


def compare_arrays(
    name: str,
    candidate: ArrayLike,
    reference: NDArray[np.floating],
    scale: NDArray[np.floating],
    rtol: float,
    atol: float = 0.0,
) -> ParamComparison:
    """Compare one candidate array with the reference under ``|g − r| ≤ atol + rtol · scale``:
    ``Expected`` on one array."""
    return Expected([(name, reference, scale)]).compare([candidate], rtol, atol)[0]


def _unravel(k: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    """``np.unravel_index(k, shape)`` as Python ints, for the shapes of a network's arrays."""
    if len(shape) == 2:
        return divmod(k, shape[1])
    if len(shape) < 2:
        return (k,) if shape else ()
    return tuple(int(i) for i in np.unravel_index(k, shape))
