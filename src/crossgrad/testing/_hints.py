"""Hints: recognise the usual backprop bugs in a wrong loss or gradient.

Each hint is tested, not guessed.  The user's gradients are held, under the same tolerance
model, against what a specific bug would give (the reference with a constant factor, with one
sample only, with a derivative left out, ...); the user's loss against the reference's times
the usual factors.  A hypothesis that fits the failing case is then tried on follow-up cases
built from it (two more samples; two more outputs; other values), which tell ½, 1/batch and
1/n_outputs apart; only the hypotheses that fit every case tried are reported, all of them
when several do.  Before any of that, the user's gradients are held against central
differences of the user's *own* loss: code whose gradients are not the derivative of its own
loss disagrees with itself, whatever the reference says.

Every hint has a stable ``code`` (see ``CODES``), for tools that read the JSON report.
"""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from scipy import special

from ..adapters.tolerance import default_rtol, error_scale
from ..reference import ACTIVATIONS, LOSSES, BackpropResult, Params, backprop, forward
from ..reference.activations import LEAKY_RELU_SLOPE
from ..strategies import KINKED, Case
from ._compare import Array, Gradients, Layout, compare
from ._probes import (
    ActivationVariant,
    Call,
    Derivative,
    _Cases,
    _fit_factor,
    _matches,
    _scaled,
    _sum,
    _Tried,
    _true_derivative,
    _variant_backprop,
    _variant_grads,
    self_consistent,
)

CODES = {
    "not_own_derivative": "the gradients are not the derivative of the function's own loss",
    "factor_batch": "a factor of the batch size (a sum over the batch for a mean)",
    "factor_inverse_batch": "a factor of 1/batch (a mean over the batch for a sum, or twice)",
    "factor_2": "a factor of 2 (the ½ of ½‖ŷ − y‖² dropped)",
    "factor_half": "a factor of ½ (a ½ too many)",
    "factor_n_outputs": "a factor of the number of outputs (a sum where the loss averages)",
    "factor_inverse_n_outputs": "a factor of 1/n_outputs (a mean where the loss sums)",
    "factor_constant": "another constant factor, the same on every case tried",
    "loss_ratio": "the loss differs by a ratio that is none of the usual factors",
    "clipped_log": "the loss clips the probabilities (or their logarithms) it takes the log of",
    "bce_backward_epsilon": "the binary cross-entropy's derivative divides by max(p(1 − p), "
    "1e-12), as torch's binary_cross_entropy backward does",
    "saturated_probability": "the gradients leave out the outputs whose probability σ(z) has "
    "rounded to exactly 0 or 1 (a loss on probabilities, not on the logits)",
    "sign": "the sign is flipped",
    "transposed": "a weight gradient is transposed (or in the other weight layout)",
    "bias_not_summed": "a bias gradient keeps one entry per sample: δ, not summed over the batch",
    "first_sample_only": "only the first sample of the batch contributes",
    "last_sample_only": "only the last sample of the batch contributes",
    "missing_activation_derivative": "a layer's activation derivative is left out",
    "derivative_at_activation": "the activation derivative is evaluated at a = f(z), not z",
    "activation_derivative_twice": "an activation derivative is applied twice",
    "kink_convention": "another derivative at an exact kink of relu or leaky_relu",
    "float32_precision": "right only to float32 precision",
    "wrong_layer": "later layers are right, one layer is wrong",
    "wrong_dtype": "the values are right, in another dtype than the params'",
    "gelu_tanh_approximation": "the gelu is the tanh approximation, not z·Φ(z)",
    "leaky_relu_slope": "the leaky_relu has another slope below 0 than 0.01",
    "softplus_threshold": "the softplus returns z itself above a threshold (torch's, 20)",
}
"""Every hint code, with what it means."""


class Hint(str):
    """A hint: its text (it is a ``str``), with a stable ``code`` from ``CODES``."""

    code: str

    def __new__(cls, code: str, text: str) -> Hint:
        if code not in CODES:  # pragma: no cover - a typo in this module
            raise ValueError(f"unknown hint code {code!r}")
        self = super().__new__(cls, text)
        self.code = code
        return self

    def __reduce__(self) -> tuple[type[Hint], tuple[str, str]]:
        # A str subclass pickles as cls(text) by default; a hint needs its code too (a
        # sweep's result comes back from worker processes pickled).
        return Hint, (self.code, str(self))

    def to_dict(self) -> dict[str, str]:
        """``{"code": ..., "text": ...}``, for the JSON report."""
        return {"code": self.code, "text": str(self)}


OURS_AT_KINK = {"relu": 0.0, "leaky_relu": LEAKY_RELU_SLOPE}
"""crossgrad's derivatives at 0: the left-hand slope, as torch takes it."""


# --- the hypotheses -----------------------------------------------------------------------


def _factors(batch: int, outputs: int, reduction: str) -> Iterator[tuple[str, float, str]]:
    """``(code, factor, what it means)`` for the usual constant factors on one case."""
    yield "sign", -1.0, "the sign is flipped: return ∂L/∂θ itself, not the descent direction −∂L/∂θ"
    yield (
        "factor_2",
        2.0,
        "your gradients are twice the reference's: for ½‖ŷ − y‖² the ½ cancels the 2 of the square",
    )
    yield (
        "factor_half",
        0.5,
        "your gradients are half the reference's: a ½ too many (the derivative of ½r² is r)",
    )
    mean = reduction == "mean"
    yield (
        "factor_batch",
        float(batch),
        f"your gradients are {batch} × the reference, the batch size: "
        + (
            "the 1/batch of the mean reduction is missing (a sum over the batch instead of a mean)"
            if mean
            else "multiplied by the batch size where the sum reduction has no factor"
        ),
    )
    yield (
        "factor_inverse_batch",
        1 / batch,
        f"your gradients are 1/{batch} × the reference, 1/batch size: "
        + (
            "divided by the batch size once too often"
            if mean
            else "a mean over the batch where reduction='sum' adds the samples up"
        ),
    )
    yield (
        "factor_n_outputs",
        float(outputs),
        f"your gradients are {outputs} × the reference, the number of outputs: a sum over the "
        "outputs where the "
        "loss takes a mean (mse and binary_cross_entropy average over outputs)",
    )
    yield (
        "factor_inverse_n_outputs",
        1 / outputs,
        f"your gradients are 1/{outputs} × the reference, 1/the number of outputs: a mean "
        "over the outputs "
        "where the loss sums them (half_sse is ½‖ŷ − y‖², softmax_cross_entropy a sum)",
    )


def _short(code: str) -> str:
    """A factor in a few words, for a product of two factors."""
    return {
        "sign": "−1 (the sign flipped)",
        "factor_2": "2 (a ½ missing)",
        "factor_half": "½ (a ½ too many)",
        "factor_batch": "the batch size (a sum where the reduction averages)",
        "factor_inverse_batch": "1/the batch size (a mean where the reduction sums)",
        "factor_n_outputs": "the number of outputs (a sum where the loss averages)",
        "factor_inverse_n_outputs": "1/the number of outputs (a mean where the loss sums)",
    }[code]


INVERSES = {("factor_2", "factor_half"), ("factor_batch", "factor_inverse_batch"),
            ("factor_n_outputs", "factor_inverse_n_outputs")}  # fmt: skip
"""Pairs of factors whose product is 1: never a product worth naming."""


def _pairs() -> list[tuple[int, int]]:
    """Indices into ``_factors`` of the products of two factors that are not 1."""
    codes = [code for code, _, _ in _factors(1, 1, "mean")]
    return [
        (i, j)
        for i in range(len(codes))
        for j in range(i + 1, len(codes))
        if (codes[i], codes[j]) not in INVERSES
    ]


def _product_hints(codes: tuple[str, str], lead: str) -> list[Hint]:
    """One hint per factor of a product: the first names the product, the second its half."""
    first, second = (_short(c) for c in codes)
    return [
        Hint(codes[0], f"{lead}: the product of two factors, {first} and {second}"),
        Hint(codes[1], f"(the second factor of the hint above) {second}"),
    ]


def _close(value: float, target: float, dtype: np.dtype[np.floating]) -> bool:
    return abs(value - target) <= 1e3 * float(np.finfo(dtype).eps) * max(abs(target), 1e-300)


def _loss_text(code: str, case: Case) -> str:
    """What a loss off by the factor ``code`` means, on ``case``."""
    net, b, o = case.net, case.batch, case.net.sizes[-1]
    formula = f"{net.loss} is {LOSSES[net.loss].formula}"
    return {
        "sign": "your loss has the opposite sign of the reference's",
        "factor_2": f"your loss is twice the reference's: a ½ missing ({formula})",
        "factor_half": f"your loss is half the reference's: a ½ too many ({formula})",
        "factor_batch": f"your loss is {b} × the reference's, the batch size: a sum over the "
        + (
            "batch where reduction='mean' averages"
            if net.reduction == "mean"
            else "batch, times the batch size again"
        ),
        "factor_inverse_batch": f"your loss is 1/{b} × the reference's, 1/the batch size: "
        + (
            "divided by the batch size once too often"
            if net.reduction == "mean"
            else "a mean over the batch where reduction='sum' adds the samples up"
        ),
        "factor_n_outputs": f"your loss is {o} × the reference's, the number of outputs: a sum "
        f"over the outputs where the loss averages them ({formula})",
        "factor_inverse_n_outputs": f"your loss is 1/{o} × the reference's, 1/the number of "
        f"outputs: a mean over the outputs where the loss sums them ({formula})",
    }[code]


_GELU_C = math.sqrt(2 / math.pi)
_GELU_K = 0.044715


def _gelu_tanh(z: Array) -> Array:
    return 0.5 * z * (1 + np.tanh(_GELU_C * (z + _GELU_K * z**3)))


def _gelu_tanh_derivative(z: Array) -> Array:
    t = np.tanh(_GELU_C * (z + _GELU_K * z**3))
    return 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * _GELU_C * (1 + 3 * _GELU_K * z**2)


def _leaky(slope: float) -> ActivationVariant:
    return ActivationVariant(
        "leaky_relu",
        lambda z: np.where(z > 0, z, slope * z),
        lambda z: np.where(z > 0, 1.0, slope).astype(z.dtype),
    )


SOFTPLUS_THRESHOLD = 20.0
"""torch's ``softplus`` (``threshold=20``) returns ``z`` itself where ``z > 20``."""

ACTIVATION_VARIANTS: tuple[tuple[str, str, ActivationVariant], ...] = (
    (
        "gelu_tanh_approximation",
        "your gelu is the tanh approximation 0.5·z·(1 + tanh(√(2/π)·(z + 0.044715·z³))) "
        "(jax.nn.gelu's default, approximate=True, and torch's with approximate='tanh'), "
        "where the reference's is exact, z·Φ(z) (torch's default, jax.nn.gelu(z, "
        "approximate=False))",
        ActivationVariant("gelu", _gelu_tanh, _gelu_tanh_derivative),
    ),
    *(
        (
            "leaky_relu_slope",
            f"your leaky_relu has slope {slope:g} below 0 ({library}), where the reference's "
            f"has {LEAKY_RELU_SLOPE:g} (torch's and jax.nn.leaky_relu's default)",
            _leaky(slope),
        )
        for slope, library in (
            (0.2, "tf.nn.leaky_relu's default"),
            (0.3, "Keras' LeakyReLU default"),
            (0.1, "a common choice"),
        )
    ),
    (
        "softplus_threshold",
        f"your softplus returns z itself where z > {SOFTPLUS_THRESHOLD:g} (torch's softplus, "
        f"threshold={SOFTPLUS_THRESHOLD:g}), where the exact softplus is z + log(1 + e^-z), "
        f"{math.log1p(math.exp(-SOFTPLUS_THRESHOLD)):.2g} more at z = {SOFTPLUS_THRESHOLD:g}; "
        "a larger threshold gives the exact one in float64",
        ActivationVariant(
            "softplus",
            lambda z: np.where(z > SOFTPLUS_THRESHOLD, z, np.logaddexp(0.0, z)),
            lambda z: np.where(z > SOFTPLUS_THRESHOLD, 1.0, special.expit(z)).astype(z.dtype),
        ),
    ),
)
"""Other definitions of the reference's activations that libraries use: ``(code, text,
variant)``, tried in this order."""


def activation_variant_hints(cases: _Cases) -> list[Hint]:
    """A hint naming another definition of an activation (``ACTIVATION_VARIANTS``) when the
    user's loss and gradients are the reference's computed with it, on every case tried,
    and it changes them on at least one."""
    first = cases.first.case
    variants = [v for v in ACTIVATION_VARIANTS if v[2].activation in first.net.activations]
    if not variants:
        return []
    tried = cases.all()
    scales = [error_scale(t.case.net, t.case.params, t.case.x, t.case.y) for t in tried]
    for code, text, variant in variants:
        with np.errstate(all="ignore"):  # (far-out z: the variant overflows where it is flat)
            made = [_variant_backprop(t.case, variant) for t in tried]
        pairs = list(zip(tried, scales, made, strict=True))
        if all(_agrees(t, s, t.ref.loss, t.ref.grads, *m) for t, s, m in pairs):
            continue  # on these cases the variant changes nothing: it explains nothing
        if all(_agrees(t, s, t.got.loss, t.got, *m) for t, s, m in pairs):
            return [Hint(code, f"{text}: yours is the reference computed with it{_where(tried)}")]
    return []


def _agrees(
    t: _Tried,
    scale: Params,
    loss: float | None,
    got: Gradients | Params,
    target_loss: float,
    target: Params,
) -> bool:
    """Whether ``loss`` (if any) and ``got`` are ``target_loss`` and ``target`` on ``t``'s
    case, to the tolerance model with the gradients' error ``scale`` (the loss to 1000
    ulp)."""
    case = t.case
    grads = got if isinstance(got, Gradients) else Gradients(None, got.weights, got.biases)
    return (loss is None or _close(float(loss), target_loss, case.dtype)) and _matches(
        grads, target, scale, default_rtol(case.net, case.dtype)
    )


JAX_FLOAT32 = (
    "your arrays are JAX's, and JAX makes float32 arrays (silently, from float64 input too) "
    "unless its 64-bit mode is on"
)
"""The start of the cause named when the user's arrays are JAX's and the mode is off."""

JAX_TURN_ON = 'jax.config.update("jax_enable_x64", True) before any JAX array is made'


def _jax_float32(got: Gradients, in_worker: bool) -> str | None:
    """Why ``got``, JAX arrays, came in float32: JAX's 64-bit mode is off where the user's
    function ran (a worker thread of crossgrad's, with ``in_worker``), said as a hint's
    cause; ``None`` when the arrays are not JAX's or the mode is on there."""
    jax = sys.modules.get("jax")
    if got.library != "jax" or jax is None:
        return None
    here = bool(jax.config.read("jax_enable_x64"))
    there = _in_a_new_thread(lambda: bool(jax.config.read("jax_enable_x64"))) if in_worker else here
    if there:
        return None
    if here:  # on in this thread only: the scoped switch is per thread
        return (
            f"{JAX_FLOAT32}; it is on in the thread that called crossgrad, not in the worker "
            "thread your function runs in under the time limit (jax.enable_x64(True) in a "
            f"with-block is per thread): {JAX_TURN_ON} turns it on for the process, or "
            "timeout=None calls your function in your own thread"
        )
    return (
        f"{JAX_FLOAT32}, which it is not in this process: {JAX_TURN_ON}, or JAX_ENABLE_X64=1 in "
        "the environment"
    )


def _in_float32(values: Array) -> bool:
    """Whether every entry of ``values`` is a float32 number (float32 arrays always are)."""
    return bool(np.array_equal(values, values.astype(np.float32), equal_nan=True))


def _in_a_new_thread(fn: Callable[[], bool]) -> bool:
    """``fn()`` called in a new thread, as a worker thread calls the user's function."""
    seen: list[bool] = []
    thread = threading.Thread(target=lambda: seen.append(fn()))
    thread.start()
    thread.join()
    return seen[0]


def loss_hints(cases: _Cases) -> list[Hint]:
    """Hints for a wrong loss: the ratio yours / reference's, and which factor it is."""
    # First the exact explanation: clipping within ε of 0 or 1 can look like float32 rounding
    # (and it may be all that makes a loss of 0 nonzero, where no ratio is defined).
    every = [t for t in cases.all() if t.got.loss is not None]
    clipped = _clipped_log_hints(every, _where(every))
    if clipped:
        return clipped
    tried = [t for t in every if t.ref.loss != 0]
    if not tried:
        return []
    ratios = [(t, float(t.got.loss) / t.ref.loss) for t in tried if t.got.loss is not None]
    where = _where(tried)
    first_ratio = ratios[0][1]
    loose = 1e3 * float(np.finfo(np.float32).eps)
    if cases.first.case.dtype == np.float64 and all(abs(r - 1) <= loose for _, r in ratios):
        return [
            Hint(
                "float32_precision",
                f"your loss is right only to float32 precision (yours / reference = "
                f"{first_ratio!r}{where}): "
                + (
                    _jax_float32(cases.first.got, cases.in_worker)
                    or (
                        "it is a float32 number: something computes it in float32"
                        if all(_in_float32(np.asarray(t.got.loss)) for t, _ in ratios)
                        else "something computes it in float32, or approximates it"
                    )
                ),
            )
        ]
    fits = []
    for k, (code, _, _) in enumerate(_factors(1, 1, cases.first.case.net.reduction)):
        per_case = [list(_factors(t.batch, t.outputs, t.case.net.reduction))[k] for t, _ in ratios]
        if all(f == 1.0 for _, f, _ in per_case):
            continue  # on these cases the factor is 1: it explains nothing
        if all(
            _close(r, f, t.case.dtype) for (t, r), (_, f, _) in zip(ratios, per_case, strict=True)
        ):
            fits.append(code)
    if fits:
        several = len(fits) > 1
        return [
            Hint(
                code,
                ("one explanation of several that fit: " if several else "")
                + f"{_loss_text(code, cases.first.case)} (yours / reference = "
                f"{first_ratio:.6g}{where})",
            )
            for code in fits
        ]
    per = [list(_factors(t.batch, t.outputs, t.case.net.reduction)) for t, _ in ratios]
    for i, j in _pairs():
        if (
            any(p[i][1] != 1.0 for p in per)
            and any(p[j][1] != 1.0 for p in per)
            and all(
                _close(r, p[i][1] * p[j][1], t.case.dtype)
                for (t, r), p in zip(ratios, per, strict=True)
            )
        ):
            shown = ", ".join(f"{r:.6g}" for _, r in ratios)
            return _product_hints(
                (per[0][i][0], per[0][j][0]), f"your loss / the reference's is {shown}{where}"
            )
    constant = all(_close(r, first_ratio, t.case.dtype) for t, r in ratios)
    net = cases.first.case.net
    formula = f"{net.loss} is {LOSSES[net.loss].formula}, {net.reduction} over the batch"
    if constant:
        text = (
            f"your loss is {first_ratio:.6g} × the reference's on every case tried{where}: "
            f"check the loss's definition ({formula})"
        )
    else:
        shown = ", ".join(f"{r:.6g}" for _, r in ratios)
        text = (
            f"your loss / the reference's is {shown} on the cases tried{where}: not a constant "
            f"factor; compare your loss with the reference's ({formula})"
        )
    return [Hint("loss_ratio", text)]


CLIPS: tuple[float | None, ...] = (None, 1e-7, 1e-12, 1e-15)
"""The clips ``ε`` of the probabilities, ``[ε, 1 − ε]``, that ``clipped_log`` tries; ``None``
is the machine epsilon of the case's dtype (scikit-learn's log losses clip there)."""
LOG_FLOOR = -100.0
"""The floor of the logarithms ``clipped_log`` tries too (``torch.nn.BCELoss`` clamps its
logarithms at −100)."""
FLOORED = 0.0
"""The variant with no clip (``ε = 0``) and the logarithms floored at ``LOG_FLOOR``."""
LOG_LOSSES = ("binary_cross_entropy", "softmax_cross_entropy")
"""The losses that take a logarithm of probabilities: the ones ``clipped_log`` applies to."""


def _clipped_loss(t: _Tried, clip: float | None) -> float:
    """The loss of ``t``'s case (one of ``LOG_LOSSES``) from the reference's output, with the
    probabilities clipped to ``[ε, 1 − ε]`` (``clip`` ε; ``None``: the dtype's machine epsilon)
    before the logarithm, or with the logarithms floored at ``LOG_FLOOR`` (``FLOORED``)."""
    net, case = t.case.net, t.case
    z = np.atleast_2d(np.asarray(t.ref.preactivations[-1], np.float64))
    y = np.atleast_2d(np.asarray(case.y, np.float64))
    binary = net.loss == "binary_cross_entropy"
    if binary:
        logs = [special.log_expit(z), special.log_expit(-z)]  # log p, log(1 − p)
        weights = [y, 1 - y]
    else:
        logs, weights = [special.log_softmax(z, axis=1)], [y]
    if clip == FLOORED:
        logs = [np.maximum(log, LOG_FLOOR) for log in logs]
    else:
        eps = float(np.finfo(case.dtype).eps) if clip is None else clip
        p = np.clip(np.exp(logs[0]), eps, 1 - eps)
        logs = [np.log(p), np.log1p(-p)] if binary else [np.log(p)]
    terms = -sum(w * log for w, log in zip(weights, logs, strict=True))
    per_sample = terms.mean(axis=1) if binary else terms.sum(axis=1)
    return float(per_sample.mean() if net.reduction == "mean" else per_sample.sum())


def _clipped_log_hints(tried: list[_Tried], where: str) -> list[Hint]:
    """``clipped_log`` if the user's loss is the reference's with clipped probabilities (or
    floored logarithms) on every case tried, clipping changing it on at least one."""
    if not tried or tried[0].case.net.loss not in LOG_LOSSES:
        return []
    for clip in (*CLIPS, FLOORED):
        losses = [_clipped_loss(t, clip) for t in tried]
        if all(
            _close(float(t.ref.loss), loss, t.case.dtype)
            for t, loss in zip(tried, losses, strict=True)
        ):
            continue  # clipping changes nothing on these cases: it explains nothing
        if all(
            t.got.loss is not None and _close(float(t.got.loss), loss, t.case.dtype)
            for t, loss in zip(tried, losses, strict=True)
        ):
            if clip == FLOORED:
                what = f"floors the logarithms at {LOG_FLOOR:g}"
                near = f"within e^{LOG_FLOOR:g} of 0 or 1"
            else:
                eps = float(np.finfo(tried[0].case.dtype).eps) if clip is None else clip
                what = (
                    f"clips the probabilities to [ε, 1 − ε] before the logarithm, ε = {eps:.3g}"
                    + (" (the dtype's machine epsilon)" if clip is None else "")
                )
                near = "within ε of 0 or 1"
            return [
                Hint(
                    "clipped_log",
                    f"your loss {what}: where a probability comes {near} it is not the exact "
                    "loss (far out it stops growing while the exact loss grows; yours is the "
                    f"reference's loss computed so{where})",
                )
            ]
    return []


def _where(tried: list[_Tried]) -> str:
    if len(tried) < 2:
        return ""
    shapes = ", ".join(f"{t.batch}×{t.outputs}" for t in tried)
    return f"; on every case tried, batch × outputs {shapes}"


Target = Callable[[Case, Params], "tuple[Params, Params] | None"]
"""A bug's gradients on a case (given the reference's), with their error scale, or ``None``."""


def _kink_convention(case: Case) -> list[tuple[str, str, Derivative]]:
    """``(label, text, derivative)`` for the other conventions at an exact kink in ``case``."""
    net = case.net
    zs, _ = forward(net, case.params, case.x)
    kinked = sorted({n for n, z in zip(net.activations, zs, strict=True) if n in KINKED
                     and (z == 0).any()})  # fmt: skip
    if not kinked:
        return []
    true = _true_derivative(net)
    ours = " and ".join(f"{n}'(0) = {OURS_AT_KINK[n]:g}" for n in kinked)
    out: list[tuple[str, str, Derivative]] = []
    for label, values in (
        ("the right-hand slope", {"relu": 1.0, "leaky_relu": 1.0}),
        ("the mean of both slopes", {"relu": 0.5, "leaky_relu": (1 + LEAKY_RELU_SLOPE) / 2}),
        ("zero", {"relu": 0.0, "leaky_relu": 0.0}),
    ):
        if all(values[n] == OURS_AT_KINK[n] for n in kinked):
            continue

        def derivative(l: int, z: Array, a: Array, values: dict[str, float] = values) -> Array:
            d = true(l, z, a)
            name = net.activations[l]
            if name in values:
                d = np.where(z == 0, values[name], d).astype(z.dtype)
            return d

        yours = " and ".join(f"{n}'(0) = {values[n]:g}" for n in kinked)
        text = (
            f"at an exact kink (z = 0) your code takes {yours} ({label}); crossgrad, like "
            f"torch, takes the left-hand slope there: {ours}"
        )
        out.append((label, text, derivative))
    return out


BCE_EPSILON = float(np.float32(1e-12))
"""The floor of ``p(1 − p)`` in torch's backward of ``binary_cross_entropy`` (ATen's
``EPSILON``, a C++ ``float``: 1e-12 rounded to float32, 9.99999996e-13, also in float64):
``∂ℓ/∂p = (p − y) / max(p(1 − p), EPSILON)``."""
BCE_EPSILON_TEXT = (
    "your gradients divide by max(p(1 − p), 1e-12) where the binary cross-entropy's derivative "
    "divides by p(1 − p): where a probability p comes within about 1e-12 of 0 or 1, its part of "
    "the gradients is too small by the factor p(1 − p) / 1e-12, and the gradients are not the "
    "derivative of the loss (torch's "
    "backward of binary_cross_entropy, as nn.BCELoss calls it on torch.sigmoid's output, does "
    "this; binary_cross_entropy_with_logits on the logits does not)"
)


def _probabilities(case: Case) -> tuple[list[Array], list[Array], Array]:
    """The forward values of ``case`` and ``p(1 − p)`` of its output ``p = σ(z)``, computed in
    the case's dtype as a framework computes it from ``p`` (0 where ``p`` rounded to 0 or 1)."""
    zs, acts = forward(case.net, case.params, case.x)
    return zs, acts, acts[-1] * (1 - acts[-1])


def _output_scaled(factor: Callable[[Array], Array]) -> Target:
    """The gradients whose output-layer ``δ`` is multiplied by ``factor(p(1 − p))``, entry by
    entry; ``None`` where the factor is 1 everywhere."""

    def target(c: Case, ref: Params) -> tuple[Params, Params] | None:
        zs, acts, pq = _probabilities(c)
        f = factor(pq)
        if bool((f == 1).all()):
            return None
        grads = _variant_grads(c, _true_derivative(c.net), (zs, acts), output_factor=f)
        return grads, error_scale(c.net, c.params, c.x, c.y)

    return target


_bce_epsilon = _output_scaled(lambda pq: pq / np.maximum(pq, BCE_EPSILON))
"""A binary cross-entropy whose ``∂ℓ/∂p`` divides by ``max(p(1 − p), BCE_EPSILON)``."""


SATURATED_TEXT = (
    "your gradients leave out every output whose probability p = σ(z) has rounded to exactly "
    "0 or 1, where the loss's gradient is not 0: a binary cross-entropy computed from the "
    "probabilities differentiates through σ'(z) = p(1 − p), which is then 0; computed on the "
    "logits (torch's binary_cross_entropy_with_logits, nn.BCEWithLogitsLoss) it keeps them"
)


_saturated = _output_scaled(lambda pq: (pq != 0).astype(pq.dtype))
"""The output layer's ``δ`` left out wherever ``p = σ(z)`` is exactly 0 or 1."""


def _saturation_shows(case: Case) -> bool:
    """Whether ``case`` has a probability of exactly 0 or 1 whose gradient is not 0 (``p ≠ y``)."""
    _, acts, pq = _probabilities(case)
    return bool(((pq == 0) & (acts[-1] != case.y)).any())


def _floor_shows(case: Case) -> bool:
    """Whether ``case`` tells ``BCE_EPSILON`` from another floor: some probability with
    ``0 < p(1 − p) < BCE_EPSILON`` (where ``p`` is exactly 0 or 1 any floor gives 0)."""
    if case.net.loss != "binary_cross_entropy":
        return False
    pq = _probabilities(case)[2]
    return bool(((pq > 0) & (pq < BCE_EPSILON)).any())


def _gradient_hypotheses(case: Case) -> Iterator[tuple[str, str, Target]]:
    """``(code, text, target)`` for every gradient bug that applies to ``case``."""
    net = case.net
    reduction = net.reduction
    saturated = net.loss == "binary_cross_entropy" and _saturation_shows(case)
    if saturated or _floor_shows(case):
        # (named only if some case tried tells the floor: see gradient_hints)
        yield "bce_backward_epsilon", BCE_EPSILON_TEXT, _bce_epsilon
    if saturated:
        yield "saturated_probability", SATURATED_TEXT, _saturated

    for k, (code, _, text) in enumerate(_factors(case.batch, net.sizes[-1], reduction)):

        def factor(c: Case, ref: Params, k: int = k) -> tuple[Params, Params] | None:
            f = list(_factors(c.batch, c.net.sizes[-1], c.net.reduction))[k][1]
            if f == 1.0:
                return None
            return _scaled(ref, f), _scaled(error_scale(c.net, c.params, c.x, c.y), abs(f))

        if list(_factors(case.batch, net.sizes[-1], reduction))[k][1] != 1.0:
            yield code, text, factor

    here = list(_factors(case.batch, net.sizes[-1], reduction))
    for i, j in _pairs():

        def product(c: Case, ref: Params, i: int = i, j: int = j) -> tuple[Params, Params] | None:
            there = list(_factors(c.batch, c.net.sizes[-1], c.net.reduction))
            f = there[i][1] * there[j][1]
            if f == 1.0:
                return None
            return _scaled(ref, f), _scaled(error_scale(c.net, c.params, c.x, c.y), abs(f))

        if here[i][1] * here[j][1] != 1.0:  # one of the two may be 1 on this very case
            yield f"{here[i][0]}+{here[j][0]}", "", product

    for which, rows in (("first", slice(0, 1)), ("last", slice(-1, None))):
        text = (
            f"only the {which} sample's contribution: accumulate ∂L/∂W and ∂L/∂b over every "
            "sample of the batch"
        )
        if which == "last":
            text += " (a loop that overwrites instead of adding?)"

        def one(c: Case, ref: Params, rows: slice = rows) -> tuple[Params, Params] | None:
            if c.batch < 2:
                return None
            grads = backprop(c.net, c.params, c.x[rows], c.y[rows]).grads
            s = error_scale(c.net, c.params, c.x[rows], c.y[rows])
            f = 1 / c.batch if c.net.reduction == "mean" else 1.0
            return _scaled(grads, f), _sum(error_scale(c.net, c.params, c.x, c.y), _scaled(s, f))

        def one_mean(c: Case, ref: Params, rows: slice = rows) -> tuple[Params, Params] | None:
            if c.batch < 2 or c.net.reduction != "mean":
                return None
            grads = backprop(c.net, c.params, c.x[rows], c.y[rows]).grads
            s = error_scale(c.net, c.params, c.x[rows], c.y[rows])
            return grads, _sum(error_scale(c.net, c.params, c.x, c.y), s)

        if case.batch > 1:
            yield f"{which}_sample_only", text, one
            yield f"{which}_sample_only", text, one_mean

    def derivative_variant(build: Callable[[Case], Derivative | None]) -> Target:
        def target(c: Case, ref: Params) -> tuple[Params, Params] | None:
            derivative = build(c)
            if derivative is None:
                return None
            return _variant_grads(c, derivative), error_scale(c.net, c.params, c.x, c.y)

        return target

    def has_derivative(k: int) -> bool:
        name = net.activations[k]
        return name != "identity" and not (k == net.n_layers - 1 and LOSSES[net.loss].on_logits)

    for k, name in enumerate(net.activations):
        if not has_derivative(k):
            continue

        def skip(c: Case, k: int = k) -> Derivative:
            true = _true_derivative(c.net)
            return lambda l, z, a: np.ones_like(z) if l == k else true(l, z, a)

        def twice(c: Case, k: int = k) -> Derivative:
            true = _true_derivative(c.net)
            return lambda l, z, a: true(l, z, a) ** 2 if l == k else true(l, z, a)

        yield (
            "missing_activation_derivative",
            f"the derivative of layer {k + 1}'s {name} is missing: δ{k + 1} = (...) ∘ "
            f"{name}'(z{k + 1})",
            derivative_variant(skip),
        )
        yield (
            "activation_derivative_twice",
            f"layer {k + 1}'s {name} derivative is applied twice: δ{k + 1} = (...) ∘ "
            f"{name}'(z{k + 1}) once, not ∘ {name}'(z{k + 1})²",
            derivative_variant(twice),
        )

    def at_a(c: Case) -> Derivative:
        def derivative(l: int, z: Array, a: Array) -> Array:
            f = ACTIVATIONS[c.net.activations[l]]
            return f.derivative(a, f.forward(a))

        return derivative

    yield (
        "derivative_at_activation",
        "the activation's derivative is evaluated at a = f(z) instead of at z "
        "(for sigmoid, σ'(z) = a(1 − a), not σ'(a))",
        derivative_variant(at_a),
    )

    for label, text, _ in _kink_convention(case):

        def kink(c: Case, label: str = label) -> Derivative | None:
            found = [d for lab, _, d in _kink_convention(c) if lab == label]
            return found[0] if found else _true_derivative(c.net)

        yield "kink_convention", text, derivative_variant(kink)


def _consistent_target(t: _Tried, target: Target) -> bool:
    """Whether the user's gradients on ``t`` are what ``target`` predicts (or the truth)."""
    made = target(t.case, t.ref.grads)
    rtol = default_rtol(t.case.net, t.case.dtype)
    if made is None:  # the bug cannot show on this case: the gradients must then be right
        scale = error_scale(t.case.net, t.case.params, t.case.x, t.case.y)
        return _matches(t.got, t.ref.grads, scale, rtol)
    return _matches(t.got, made[0], made[1], rtol)


def gradient_hints(cases: _Cases, kinks: str, layout: Layout) -> list[Hint]:
    """Hints for wrong gradients, tried on the follow-up cases before one is named."""
    first = cases.first
    case, got, ref = first.case, first.got, first.ref.grads
    rtol = default_rtol(case.net, case.dtype)
    scale = error_scale(case.net, case.params, case.x, case.y)
    if _matches(got, ref, scale, rtol):  # the values are right: the dtype is not
        returned = {g.dtype for g in (*got.weights, *got.biases)} - {np.dtype(case.dtype)}
        dtypes = ", ".join(sorted(str(d) for d in returned))
        lead = f"the values are right, in {dtypes} instead of the params' {case.dtype}"
        if all(d.itemsize > np.dtype(case.dtype).itemsize for d in returned):
            cause = (
                "something promotes (a float64 constant or np.where(..., 1.0, 0.0) with float32 "
                "arrays); return gradients in the params' dtype"
            )
        elif jax := _jax_float32(got, cases.in_worker):
            cause = jax
        else:
            narrow = min(returned, key=lambda d: d.itemsize).name
            cause = (
                f"something converts them (an array made with dtype=np.{narrow}, "
                f".astype(np.{narrow}), a {narrow} array they are computed from); return "
                "gradients in the params' dtype"
            )
        return [Hint("wrong_dtype", f"{lead}: {cause}")]
    matched: list[tuple[str, str, Target]] = []
    for code, text, target in _gradient_hypotheses(case):
        made = target(case, ref)
        if made is None:
            continue
        if _matches(Gradients(None, made[0].weights, made[0].biases), ref, scale, rtol):
            continue  # on this case the bug changes nothing: it cannot explain the difference
        if _matches(got, made[0], made[1], rtol):
            matched.append((code, text, target))
    if matched:
        others = cases.all()[1:]
        kept = [m for m in matched if all(_consistent_target(t, m[2]) for t in others)]
        if not any(_floor_shows(t.case) for t in cases.all()):  # its floor's value is unseen
            kept = [m for m in kept if m[0] != "bce_backward_epsilon"]
        if any("+" not in code for code, _, _ in kept):  # one factor explains it: no product
            kept = [m for m in kept if "+" not in m[0]]
    else:
        kept = []
    if kept:
        hints: list[Hint] = []
        for code, text, _ in kept:
            if "+" in code:
                a, b = code.split("+")
                shown = ", ".join(f"{_fit_factor(t.got, t.ref.grads):.6g}" for t in cases.all())
                lead = f"your gradients / the reference's are {shown}{_where(cases.all())}"
                hints += _product_hints((a, b), lead)
            else:
                hints.append(Hint(code, text))
        if kinks != "avoid":
            hints = [
                Hint(h.code, f"{h} (--kinks avoid, or kinks='avoid', draws no exact kinks)")
                if h.code == "kink_convention"
                else h
                for h in hints
            ]
        return list(dict.fromkeys(hints))
    loose = default_rtol(case.net, np.float32)
    # Right to float32 precision, and wrong by far more than float64 rounding (beyond the
    # geometric middle of the two tolerances): computed in float32, not merely reordered.
    middle = float(np.sqrt(loose * rtol))
    if (
        case.dtype == np.float64
        and _matches(got, ref, scale, loose)
        and not _matches(got, ref, scale, middle)
    ):
        where32 = "(a float32 array or constant, torch's default dtype, np.float32(...))"
        if jax := _jax_float32(got, cases.in_worker):
            text = f"right only to float32 precision: {jax}"
        elif all(_in_float32(g) for g in (*got.weights, *got.biases)):
            text = (
                "right only to float32 precision, and every value you return is a float32 "
                f"number: something computes in float32 {where32}; results must be computed in "
                "the params' dtype"
            )
        else:  # float64 values: float32 somewhere inside, or an approximation
            text = (
                "right only to float32 precision, far beyond float64 rounding: either something "
                f"computes in float32 {where32}, or the gradients are approximated (finite "
                "differences, an approximated function)"
            )
        return [Hint("float32_precision", text)]
    factor = _fit_factor(got, ref)
    if factor is not None and factor != 0 and abs(factor - 1) > loose:
        tried = cases.all()
        fits = all(
            (c := _fit_factor(t.got, t.ref.grads)) is not None
            and abs(c - factor) <= loose * abs(factor)
            and _matches(
                t.got,
                _scaled(t.ref.grads, factor),
                _scaled(error_scale(t.case.net, t.case.params, t.case.x, t.case.y), abs(factor)),
                loose,
            )
            for t in tried
        )
        if fits:
            return [
                Hint(
                    "factor_constant",
                    f"every gradient is {factor:.6g} × the reference's on every case tried"
                    f"{_where(tried)}: a constant factor is off",
                )
            ]
    return _first_wrong_layer(got, ref, scale, rtol, layout)


def transposed_hints(case: Case, got: Gradients, ref: Params, layout: Layout) -> list[Hint]:
    """Weight gradients transposed: by shape, or by value for square matrices."""
    out = []
    problems = dict(got.problems)
    for l, (g, r) in enumerate(zip(got.weights, ref.weights, strict=True), start=1):
        want = layout.weight_shape(r.shape)
        if f"W{l}" in problems and g.shape == want[::-1]:
            name = "(in, out)" if layout.weights == "in_out" else "(out, in)"
            out.append(
                Hint(
                    "transposed",
                    f"∂L/∂W{l} has shape {g.shape}, the transpose of the {name} = {want} that "
                    f"weights={layout.weights!r} expects: return ∂L/∂W in the layout W is "
                    "given in",
                )
            )
        elif g.shape != r.shape and g.shape == r.shape[::-1]:
            out.append(
                Hint(
                    "transposed",
                    f"∂L/∂W{l} has shape {g.shape}, the transpose of {r.shape}: crossgrad's W "
                    "is (out, in), so ∂L/∂W = δᵀ a (out × batch · batch × in), not aᵀ δ",
                )
            )
        elif g.shape == r.shape and g.ndim == 2 and g.shape[0] == g.shape[1] > 1:
            s = error_scale(case.net, case.params, case.x, case.y).weights[l - 1]
            rtol = default_rtol(case.net, case.dtype)
            if compare("", g, r.T, s.T, rtol).ok and not compare("", g, r, s, rtol).ok:
                out.append(
                    Hint("transposed", f"∂L/∂W{l} is the transpose of the reference's gradient")
                )
    return out


def unsummed_bias_hints(case: Case, got: Gradients, ref: Params, layout: Layout) -> list[Hint]:
    """Bias gradients of the per-sample shape whose sum over the batch is the reference's."""
    out = []
    problems = dict(got.problems)
    batch, columns = case.x.shape[0], layout.samples == "columns"
    scale: Params | None = None
    for l, (b, r) in enumerate(zip(got.biases, ref.biases, strict=True), start=1):
        per_sample = (r.shape[0], batch) if columns else (batch, r.shape[0])
        if f"b{l}" not in problems or batch < 2 or b.shape != per_sample:
            continue
        if scale is None:
            scale = error_scale(case.net, case.params, case.x, case.y)
        summed = b.sum(axis=1 if columns else 0)
        if compare("", summed, r, scale.biases[l - 1], default_rtol(case.net, case.dtype)).ok:
            each = "column" if columns else "row"
            out.append(
                Hint(
                    "bias_not_summed",
                    f"∂L/∂b{l} has shape {b.shape}, one {each} per sample, and its sum over "
                    f"the batch of {batch} is the reference's ∂L/∂b{l}: sum δ{l} over the batch",
                )
            )
    return out


def _first_wrong_layer(
    got: Gradients, ref: Params, scale: Params, rtol: float, layout: Layout
) -> list[Hint]:
    n = len(ref.weights)
    ok = [
        compare("", got.weights[l], ref.weights[l], scale.weights[l], rtol).ok
        and compare("", got.biases[l], ref.biases[l], scale.biases[l], rtol).ok
        for l in range(n)
    ]
    if all(ok) or not ok[-1]:
        return []
    wrong = max(l for l in range(n) if not ok[l]) + 1
    right = f"layer {n} is" if wrong + 1 == n else f"layers {wrong + 1}..{n} are"
    return [
        Hint(
            "wrong_layer",
            f"{right} right and layer {wrong} is wrong: check how δ is carried back, "
            f"{_carried_back(wrong, layout)}",
        )
    ]


def _carried_back(l: int, layout: Layout) -> str:
    """``δ_l`` from ``δ_{l+1}``, written in the user's ``layout``."""
    above = l + 1
    if layout.samples == "columns":  # δ (out, batch)
        product = f"W{above}ᵀ δ{above}" if layout.weights == "out_in" else f"W{above} δ{above}"
    else:  # δ (batch, out)
        product = f"δ{above} W{above}" if layout.weights == "out_in" else f"δ{above} W{above}ᵀ"
    return f"δ{l} = ({product}) ∘ f'(z{l})"


# --- all together -------------------------------------------------------------------------


@dataclass(frozen=True)
class Diagnosis:
    """The hints for one failing case, and whether the gradients fit the user's own loss."""

    hints: tuple[Hint, ...]
    self_consistent: bool | None


def diagnose(
    case: Case,
    got: Gradients,
    ref: BackpropResult,
    *,
    loss_wrong: bool,
    grads_wrong: bool,
    call: Call | None = None,
    kinks: str = "include",
    layout: Layout | None = None,
    in_worker: bool = False,
) -> Diagnosis:
    """Hints for why ``got`` differs from ``ref`` on ``case``.

    ``call`` runs the user's function on other cases (the follow-ups and, for the
    self-consistency check, the case with one parameter moved); without it, only the failing
    case is used.  ``in_worker``: the user's function ran in a worker thread (under a time
    limit), where per-thread settings of the caller's do not reach.  Gradient hints are
    given only when ``grads_wrong``, loss hints only when ``loss_wrong``.
    """
    layout_ = Layout() if layout is None else layout
    shape = (
        [
            *transposed_hints(case, got, ref.grads, layout_),
            *unsummed_bias_hints(case, got, ref.grads, layout_),
        ]
        if grads_wrong
        else []
    )
    if shape:
        return Diagnosis(tuple(shape), None)
    consistent = None
    if call is not None:

        def loss_of(other: Case) -> float | None:
            result = call(other)
            return None if result is None else result.loss

        consistent = self_consistent(case, got, loss_of)
    out: list[Hint] = []
    if consistent is False:
        out.append(
            Hint(
                "not_own_derivative",
                "your gradients are not the derivative of your own loss (central differences "
                "of the loss your function returns disagree with its gradients): your code "
                "disagrees with itself, whatever crossgrad's reference says",
            )
        )
    cases = _Cases(case, got, ref, call, in_worker)
    # Another library's definition of an activation explains the loss and the gradients at
    # once, exactly: nothing else is then tried (float32 rounding would fit it loosely).
    variant = activation_variant_hints(cases) if loss_wrong or grads_wrong else []
    out.extend(variant)
    if loss_wrong and not variant:
        out.extend(loss_hints(cases))
    if grads_wrong and not variant:
        out.extend(gradient_hints(cases, kinks, layout_))
    return Diagnosis(tuple(dict.fromkeys(out)), consistent)


def describe_value(value: object) -> str:
    """A short form of one number for the report."""
    return f"{float(value):.10g}"  # type: ignore[arg-type]
