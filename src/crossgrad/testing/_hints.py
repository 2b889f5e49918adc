"""Hints: recognise the usual backprop bugs in a wrong gradient.

Each hint is tested, not guessed: the user's gradients are held, under the same tolerance
model, against what a specific bug would give (the reference with a constant factor, with one
sample only, with a derivative left out, ...).  Only hypotheses that match are reported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..adapters.tolerance import compare_arrays, default_rtol, error_scale
from ..reference import ACTIVATIONS, LOSSES, Network, Params, backprop, forward
from ..strategies import Case
from ._compare import Array, Backprop, Gradients, normalise

Derivative = Callable[[int, Array, Array], Array]
"""``derivative(l, z, a)``: the activation derivative backprop uses at layer ``l`` (0-based)."""


def _true_derivative(net: Network) -> Derivative:
    return lambda l, z, a: ACTIVATIONS[net.activations[l]].derivative(z, a)


def _variant_grads(case: Case, derivative: Derivative) -> Params:
    """The reference's backprop with ``derivative`` in place of the activations' derivatives."""
    net, params, x, y = case.net, case.params, case.x, case.y
    zs, acts = forward(net, params, x)
    loss = LOSSES[net.loss]
    scale = 1 / case.batch if net.reduction == "mean" else 1
    last = net.n_layers - 1
    if loss.on_logits:
        delta = scale * loss.gradient(zs[-1], y)
    else:
        delta = scale * loss.gradient(acts[-1], y) * derivative(last, zs[-1], acts[-1])
    dW, db = [], []
    for l in reversed(range(net.n_layers)):
        dW.append(delta.T @ acts[l])
        db.append(delta.sum(axis=0))
        if l > 0:
            delta = (delta @ params.weights[l]) * derivative(l - 1, zs[l - 1], acts[l])
    return Params(tuple(dW[::-1]), tuple(db[::-1]))


def _matches(got: Gradients, target: Params, scale: Params, rtol: float) -> bool:
    pairs = zip((*got.weights, *got.biases), (*target.weights, *target.biases), strict=True)
    scales = (*scale.weights, *scale.biases)
    # Values only: a wrong dtype is reported on its own, and must not hide the pattern.
    return all(
        g.shape == t.shape and compare_arrays("", g.astype(t.dtype), t, s, rtol).ok
        for (g, t), s in zip(pairs, scales, strict=True)
    )


def _scaled(params: Params, factor: float) -> Params:
    return Params(
        tuple(factor * W for W in params.weights), tuple(factor * b for b in params.biases)
    )


def _sum(a: Params, b: Params) -> Params:
    return Params(
        tuple(u + v for u, v in zip(a.weights, b.weights, strict=True)),
        tuple(u + v for u, v in zip(a.biases, b.biases, strict=True)),
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


def _factor_names(case: Case) -> list[tuple[float, str, bool]]:
    """``(factor, hint, whether the factor is the batch size's)`` for the usual factors."""
    b, out = case.batch, case.net.sizes[-1]
    named = [
        (-1.0, "the sign is flipped: return ∂L/∂θ itself, not the descent direction −∂L/∂θ",
         False),
        (2.0, "twice the reference: for ½‖ŷ − y‖² the ½ cancels the 2 of the square", False),
        (0.5, "half the reference: a ½ too many (the derivative of ½r² is r)", False),
    ]  # fmt: skip
    if case.net.reduction == "mean" and b > 1:
        named = [
            (float(b), f"{b} × the reference, the batch size: the 1/batch of the mean reduction "
             "is missing (a sum over the batch instead of a mean)", True),
            (1 / b, f"1/{b} × the reference: divided by the batch size once too often", True),
            *named,
        ]  # fmt: skip
    if out > 1:
        named.append(
            (float(out), f"{out} × the reference, the number of outputs: a sum over outputs "
             "where the loss takes a mean (mse and binary_cross_entropy average over outputs)",
             False)
        )  # fmt: skip
    return named


def _kink_derivative(net: Network, true: Derivative) -> Derivative:
    """The derivatives with relu'(0) = leaky_relu'(0) = 1, the other common convention."""

    def derivative(l: int, z: Array, a: Array) -> Array:
        name = net.activations[l]
        if name in ("relu", "leaky_relu"):
            return np.where(z >= 0, 1, 0.0 if name == "relu" else 0.01).astype(z.dtype)
        return true(l, z, a)

    return derivative


def _skip_derivative(k: int, true: Derivative) -> Derivative:
    """The derivatives with layer ``k``'s left out (taken as 1)."""
    return lambda l, z, a: np.ones_like(z) if l == k else true(l, z, a)


def _variants(case: Case, ref: Params) -> Iterator[tuple[str, Params, Params, bool]]:
    """``(hint, gradients of that bug, their error scale, batch-related)`` for each bug."""
    net, scale = case.net, error_scale(case.net, case.params, case.x, case.y)
    for factor, text, batch_related in _factor_names(case):
        yield text, _scaled(ref, factor), _scaled(scale, abs(factor)), batch_related
    if case.batch > 1:
        factors = (1.0, 1 / case.batch) if net.reduction == "mean" else (1.0,)
        for which, rows in (("first", slice(0, 1)), ("last", slice(-1, None))):
            one = backprop(net, case.params, case.x[rows], case.y[rows]).grads
            one_scale = error_scale(net, case.params, case.x[rows], case.y[rows])
            text = (
                f"only the {which} sample's contribution: accumulate ∂L/∂W and ∂L/∂b over "
                "every sample of the batch"
                + (" (a loop that overwrites instead of adding?)" if which == "last" else "")
            )
            for f in factors:
                yield text, _scaled(one, f), _sum(scale, _scaled(one_scale, f)), False
    true = _true_derivative(net)
    zs, _ = forward(net, case.params, case.x)
    kinked = [n for n, z in zip(net.activations, zs, strict=True) if n in ("relu", "leaky_relu")
              and (z == 0).any()]  # fmt: skip
    if kinked:
        yield (
            f"you take {kinked[0]}'(0) = 1; crossgrad, like torch, takes the derivative from "
            "the left at the kink: relu'(0) = 0, leaky_relu'(0) = 0.01 "
            "(check_implementation(..., kinks=False) skips exact kinks)",
            _variant_grads(case, _kink_derivative(net, true)),
            scale,
            False,
        )
    for k, name in enumerate(net.activations):
        if name == "identity" or (k == net.n_layers - 1 and LOSSES[net.loss].on_logits):
            continue
        yield (
            f"the derivative of layer {k + 1}'s {name} is missing: δ{k + 1} = (...) ∘ "
            f"{name}'(z{k + 1})",
            _variant_grads(case, _skip_derivative(k, true)),
            scale,
            False,
        )

    def at_a(l: int, z: Array, a: Array) -> Array:
        f = ACTIVATIONS[net.activations[l]]
        return f.derivative(a, f.forward(a))

    yield (
        "the activation's derivative is evaluated at a = f(z) instead of at z "
        "(for sigmoid, σ'(z) = a(1 − a), not σ'(a))",
        _variant_grads(case, at_a),
        scale,
        False,
    )


def _probe_batch_factor(fn: Backprop, case: Case, ref_factor: float) -> bool:
    """Whether ``fn``'s factor grows with the batch: run it on the batch repeated twice."""
    x2, y2 = np.concatenate([case.x, case.x]), np.concatenate([case.y, case.y])
    try:
        got = normalise(fn(case.net, case.params, x2, y2), case.net.n_layers)
    except Exception:  # the probe is optional: a user's error here only loses the hint
        return False
    ref = backprop(case.net, case.params, x2, y2).grads
    factor = _fit_factor(got, ref)
    return factor is not None and abs(factor - 2 * ref_factor) <= 1e-6 * abs(ref_factor)


def hints(case: Case, got: Gradients, ref: Params, fn: Backprop | None = None) -> list[str]:
    """Hints for why ``got`` differs from ``ref`` on ``case``; ``fn`` lets them probe the user's
    function on a related case (the same batch, repeated) to tell a batch factor from others.
    """
    out: list[str] = []
    for l, (g, r) in enumerate(zip(got.weights, ref.weights, strict=True), start=1):
        if g.shape != r.shape and g.shape == r.shape[::-1]:
            out.append(
                f"∂L/∂W{l} has shape {g.shape}, the transpose of {r.shape}: crossgrad's W is "
                "(out, in), so ∂L/∂W = δᵀ a (out × batch · batch × in), not aᵀ δ"
            )
        elif g.shape == r.shape and g.ndim == 2 and g.shape[0] == g.shape[1] > 1:
            s = error_scale(case.net, case.params, case.x, case.y).weights[l - 1]
            rtol = default_rtol(case.net, case.dtype)
            if compare_arrays("", g, r.T, s.T, rtol).ok:
                out.append(f"∂L/∂W{l} is the transpose of the reference's: W is (out, in)")
    if out:
        return out
    rtol = default_rtol(case.net, case.dtype)
    matched = [
        (text, batch_related)
        for text, target, scale, batch_related in _variants(case, ref)
        if _matches(got, target, scale, rtol)
    ]
    factor = _fit_factor(got, ref)
    grows = (
        factor is not None
        and factor != 0
        and fn is not None
        and case.net.reduction == "mean"
        and _probe_batch_factor(fn, case, factor)
    )
    if any(b for _, b in matched) and any(not b for _, b in matched) and fn is not None:
        matched = [(t, b) for t, b in matched if b == grows]  # the probe tells which it is
    if matched:
        return list(dict.fromkeys(t for t, _ in matched))
    if grows:
        return [
            f"{factor:.6g} × the reference, growing with the batch size: the 1/batch of "
            "the mean reduction is missing"
        ]
    scale = error_scale(case.net, case.params, case.x, case.y)
    loose = default_rtol(case.net, np.float32)
    # Right to float32 precision, and wrong by far more than float64 rounding (beyond the
    # geometric middle of the two tolerances): computed in float32, not merely reordered.
    middle = float(np.sqrt(loose * rtol))
    if (
        case.dtype == np.float64
        and _matches(got, ref, scale, loose)
        and not _matches(got, ref, scale, middle)
    ):
        return [
            "right only to float32 precision: something computes in float32 (a float32 "
            "array or constant, torch's default dtype, np.float32(...)); results must be "
            "computed in the params' dtype"
        ]
    if (
        factor is not None
        and factor != 0
        and abs(factor - 1) > loose
        and _matches(got, _scaled(ref, factor), _scaled(scale, abs(factor)), loose)
    ):
        return [f"every gradient is {factor:.6g} × the reference's: a constant factor is off"]
    return _first_wrong_layer(got, ref, scale, rtol)


def _first_wrong_layer(got: Gradients, ref: Params, scale: Params, rtol: float) -> list[str]:
    n = len(ref.weights)
    ok = [
        compare_arrays("", got.weights[l], ref.weights[l], scale.weights[l], rtol).ok
        and compare_arrays("", got.biases[l], ref.biases[l], scale.biases[l], rtol).ok
        for l in range(n)
    ]
    if all(ok) or not ok[-1]:
        return []
    wrong = max(l for l in range(n) if not ok[l]) + 1
    return [
        f"layers {wrong + 1}..{n} are right and layer {wrong} is wrong: check how δ is "
        f"carried back, δ{wrong} = (δ{wrong + 1} W{wrong + 1}) ∘ f'(z{wrong})"
    ]


def describe_value(value: Any) -> str:
    """A short form of one number for the report."""
    return f"{float(value):.10g}"
