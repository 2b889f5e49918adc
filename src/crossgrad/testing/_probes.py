"""What the hints compute with: variants of the reference's backprop, follow-up cases, and
the check of a user's gradients against central differences of the user's own loss.

The follow-up cases are built from a failing case (two more samples; two more outputs; other
parameters and samples) so that explanations which coincide on the case shown (½, 1/batch and
1/n_outputs on a batch of 2 with 2 outputs) can be told apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..reference import ACTIVATIONS, LOSSES, BackpropResult, Network, Params, backprop, forward
from ..reference.backpropagation import batch_loss
from ..strategies import KINKED, Case, _grid, _layer_scale, _targets
from ._compare import Array, Gradients, compare

Call = Callable[[Case], "Gradients | None"]
"""Runs the user's function on another case: its gradients, or ``None`` if it failed there."""
Derivative = Callable[[int, Array, Array], Array]
"""``derivative(l, z, a)``: the activation derivative backprop uses at layer ``l`` (0-based)."""

MAX_SELF_CHECK_PARAMS = 64
"""Self-consistency costs two to four calls of the user's function per parameter: small
cases only."""


# --- variants of the reference ------------------------------------------------------------


def _true_derivative(net: Network) -> Derivative:
    return lambda l, z, a: ACTIVATIONS[net.activations[l]].derivative(z, a)


def _variant_grads(
    case: Case,
    derivative: Derivative,
    values: tuple[list[Array], list[Array]] | None = None,
    output_factor: Array | None = None,
) -> Params:
    """The reference's backprop with ``derivative`` in place of the activations' derivatives,
    on the forward pass's ``values`` ``(zs, activations)`` (the reference's, if not given),
    and the output layer's ``δ`` times ``output_factor`` ``(batch, out)``, if given."""
    net, params, x, y = case.net, case.params, case.x, case.y
    zs, acts = forward(net, params, x) if values is None else values
    loss = LOSSES[net.loss]
    scale = 1 / case.batch if net.reduction == "mean" else 1
    last = net.n_layers - 1
    if loss.on_logits:
        delta = scale * loss.gradient(zs[-1], y)
    else:
        delta = scale * loss.gradient(acts[-1], y) * derivative(last, zs[-1], acts[-1])
    if output_factor is not None:
        delta = delta * output_factor
    dW, db = [], []
    for l in reversed(range(net.n_layers)):
        dW.append(delta.T @ acts[l])
        db.append(delta.sum(axis=0))
        if l > 0:
            delta = (delta @ params.weights[l]) * derivative(l - 1, zs[l - 1], acts[l])
    return Params(tuple(dW[::-1]), tuple(db[::-1]))


@dataclass(frozen=True)
class ActivationVariant:
    """Another definition of one of the reference's activations, as some library has it:
    ``forward(z)`` and ``derivative(z)`` stand in for the activation named ``activation``."""

    activation: str
    forward: Callable[[Array], Array]
    derivative: Callable[[Array], Array]


def _variant_backprop(case: Case, variant: ActivationVariant) -> tuple[float, Params]:
    """The reference's loss and gradients on ``case`` with ``variant`` for its activation."""
    net, params, x = case.net, case.params, case.x
    zs: list[Array] = []
    activations = [x]
    for (W, b), name in zip(params, net.activations, strict=True):
        z = activations[-1] @ W.T + b
        zs.append(z)
        f = variant.forward if name == variant.activation else ACTIVATIONS[name].forward
        activations.append(f(z))
    true = _true_derivative(net)

    def derivative(l: int, z: Array, a: Array) -> Array:
        return variant.derivative(z) if net.activations[l] == variant.activation else true(l, z, a)

    loss = batch_loss(net, zs, activations, case.y)
    return loss, _variant_grads(case, derivative, (zs, activations))


def _scaled(params: Params, factor: float) -> Params:
    return Params(
        tuple(factor * W for W in params.weights), tuple(factor * b for b in params.biases)
    )


def _sum(a: Params, b: Params) -> Params:
    return Params(
        tuple(u + v for u, v in zip(a.weights, b.weights, strict=True)),
        tuple(u + v for u, v in zip(a.biases, b.biases, strict=True)),
    )


def _matches(got: Gradients, target: Params, scale: Params, rtol: float) -> bool:
    pairs = zip((*got.weights, *got.biases), (*target.weights, *target.biases), strict=True)
    scales = (*scale.weights, *scale.biases)
    # Values only: a wrong dtype is reported on its own, and must not hide the pattern.
    return all(
        g.shape == t.shape and compare("", g.astype(t.dtype), t, s, rtol).ok
        for (g, t), s in zip(pairs, scales, strict=True)
    )


def _fit_factor(got: Gradients, ref: Params) -> float | None:
    """The least-squares ``c`` in ``got ≈ c · ref``, or ``None`` when ``ref`` is all zero."""
    num = den = 0.0
    for g, r in zip((*got.weights, *got.biases), (*ref.weights, *ref.biases), strict=True):
        if g.shape != r.shape:
            return None
        r64 = r.astype(np.float64)
        num += float(np.sum(g.astype(np.float64) * r64))
        den += float(np.sum(r64 * r64))
    return num / den if den > 0 else None


# --- follow-up cases ----------------------------------------------------------------------


def _more_samples(case: Case, extra: int = 2) -> Case:
    """The case with ``extra`` more samples (new rows on the grid; the first rows kept)."""
    net, rng = case.net, np.random.default_rng(20250)
    x = _grid(rng, (extra, net.sizes[0]), 3)
    y = _targets(rng, net.loss, extra, net.sizes[-1], 3, one_hot=False)
    dtype = case.dtype
    return Case(
        net,
        case.params,
        np.concatenate([case.x, x.astype(dtype)]),
        np.concatenate([case.y, y.astype(dtype)]),
    )


def _more_outputs(case: Case, extra: int = 2) -> Case:
    """The case with ``extra`` more output units (new rows of the last ``W`` and ``b``)."""
    net, rng, dtype = case.net, np.random.default_rng(20251), case.dtype
    n_in = net.sizes[-2]
    scale = _layer_scale(n_in)
    W = np.concatenate([case.params.weights[-1], (scale * _grid(rng, (extra, n_in), 3))])
    b = np.concatenate([case.params.biases[-1], (scale * _grid(rng, (extra,), 3))])
    y = _targets(rng, net.loss, case.batch, extra, 3, one_hot=False)
    if net.loss == "softmax_cross_entropy":
        y[:] = 0.0  # keeps one-hot rows one-hot
    grown = Network(
        (*net.sizes[:-1], net.sizes[-1] + extra),
        activation=list(net.activations),
        loss=net.loss,
        reduction=net.reduction,
    )
    params = Params(
        (*case.params.weights[:-1], W.astype(dtype)), (*case.params.biases[:-1], b.astype(dtype))
    )
    return Case(grown, params, case.x, np.concatenate([case.y, y.astype(dtype)], axis=1))


def _fresh(case: Case) -> Case:
    """The same network and batch size with other parameters and samples (off the kinks)."""
    net, rng, dtype = case.net, np.random.default_rng(20252), case.dtype
    weights, biases = [], []
    for fan_in, fan_out in zip(net.sizes[:-1], net.sizes[1:], strict=True):
        scale = _layer_scale(fan_in)
        weights.append((scale * _grid(rng, (fan_out, fan_in), 4)).astype(dtype))
        biases.append((scale * _grid(rng, (fan_out,), 4)).astype(dtype))
    x = _grid(rng, (case.batch, net.sizes[0]), 4).astype(dtype)
    y = _targets(rng, net.loss, case.batch, net.sizes[-1], 4, one_hot=False).astype(dtype)
    return Case(net, Params(tuple(weights), tuple(biases)), x, y)


@dataclass(frozen=True)
class _Tried:
    """One case the user's function ran on: its gradients and the reference's."""

    case: Case
    got: Gradients
    ref: BackpropResult

    @property
    def batch(self) -> int:
        return self.case.batch

    @property
    def outputs(self) -> int:
        return self.case.net.sizes[-1]


class _Cases:
    """The failing case and, built when first needed, the follow-up cases: two more samples,
    two more outputs, and other parameters and samples."""

    def __init__(
        self,
        case: Case,
        got: Gradients,
        ref: BackpropResult,
        call: Call | None,
        in_worker: bool = False,
    ):
        self.first = _Tried(case, got, ref)
        self._call = call
        self.in_worker = in_worker  # the user's function runs in a worker thread
        self._more: list[_Tried] | None = None

    def all(self) -> list[_Tried]:
        if self._more is None:
            self._more = []
            if self._call is not None:
                for build in (_more_samples, _more_outputs, _fresh):
                    other = build(self.first.case)
                    got = self._call(other)
                    if got is not None and not got.problems:
                        ref = backprop(other.net, other.params, other.x, other.y)
                        self._more.append(_Tried(other, got, ref))
        return [self.first, *self._more]


# --- self-consistency ---------------------------------------------------------------------


STEPS = (1e-4, 1e-5)
"""Central-difference steps (relative to ``max(1, |θ|)``) of the self-consistency check."""


def _central_differences(
    case: Case, loss_of: Callable[[Case], float | None], h: float
) -> tuple[Array, ...] | None:
    """``∂(user's loss)/∂θ`` for every ``W``, then every ``b``, by central differences."""
    params = case.params
    fd_w: list[Array] = []
    fd_b: list[Array] = []
    for l in range(case.net.n_layers):
        for kind, out in (("W", fd_w), ("b", fd_b)):
            base = (params.weights if kind == "W" else params.biases)[l]
            d = np.zeros_like(base)
            for index in np.ndindex(base.shape):
                step = h * max(1.0, abs(float(base[index])))
                values = []
                for sign in (1.0, -1.0):
                    moved = base.copy()
                    moved[index] += sign * step
                    loss = loss_of(_replaced(case, kind, l, moved))
                    if loss is None or not np.isfinite(loss):
                        return None
                    values.append(loss)
                d[index] = (values[0] - values[1]) / (2 * step)
            out.append(d)
    return (*fd_w, *fd_b)


def _max_diff(a: tuple[Array, ...], b: tuple[Array, ...]) -> float:
    return max(
        float(np.abs(u.astype(np.float64) - v).max(initial=0.0)) for u, v in zip(a, b, strict=True)
    )


def self_consistent(
    case: Case, got: Gradients, loss_of: Callable[[Case], float | None]
) -> bool | None:
    """Whether the user's gradients are central differences of the user's own loss.

    Central differences at the step ``STEPS[0]``; if they disagree with the gradients, again
    at ``STEPS[1]``: a real disagreement stays the same, while a loss too noisy to
    differentiate (computed in float32, say) gives differences that disagree with each
    other, and then nothing is claimed.  ``None`` when it cannot be told reliably: no loss
    returned, a float32 case, more than ``MAX_SELF_CHECK_PARAMS`` parameters, a kinked unit
    within reach of the step, a noisy loss, or the user's function failing on a perturbed
    case.
    """
    if got.loss is None or case.dtype != np.float64:
        return None
    params = case.params
    if sum(W.size + b.size for W, b in params) > MAX_SELF_CHECK_PARAMS:
        return None
    if any(
        g.shape != r.shape
        for g, r in zip((*got.weights, *got.biases), (*params.weights, *params.biases), strict=True)
    ):
        return None
    zs, acts = forward(case.net, params, case.x)
    for l, (name, z) in enumerate(zip(case.net.activations, zs, strict=True)):
        if name in KINKED:
            reach = 10 * STEPS[0] * (np.abs(acts[l]).sum(axis=1, keepdims=True) + 1)
            if (np.abs(z) <= reach).any():
                return None
    mine = (*got.weights, *got.biases)
    first = _central_differences(case, loss_of, STEPS[0])
    if first is None:
        return None
    biggest = max(
        max(float(np.abs(a).max(initial=0.0)) for a in first),
        max(float(np.abs(a).max(initial=0.0)) for a in mine),
    )
    allowed = 1e-5 * biggest + 1e-9 * max(abs(got.loss), 1.0)
    off = _max_diff(mine, first)
    if off <= allowed:
        return True
    second = _central_differences(case, loss_of, STEPS[1])
    if second is None:
        return None
    # Noise grows as the step shrinks; a wrong gradient does not move.
    if _max_diff(first, second) > 0.1 * off:
        return None
    return False


def _replaced(case: Case, kind: str, l: int, value: Array) -> Case:
    weights, biases = list(case.params.weights), list(case.params.biases)
    (weights if kind == "W" else biases)[l] = value
    return Case(case.net, Params(tuple(weights), tuple(biases)), case.x, case.y)
