"""The worked example's network through a few optimizer steps, every intermediate value shown.

``crossgrad example --optimizer adam --steps 2`` prints this: for each step the loss, the
gradient ``g``, the optimizer's state (for Adam ``m``, ``v``, their bias corrections ``m̂``,
``v̂``), the update and the new parameters, each computed by ``reference.optimizers``; the
same trajectory is cross-checked with torch.optim and optax (``adapters.crosscheck_training``).
Every step trains on the document's one sample ``(x, y)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import adapters
from .reference import Network, Params, train, worked_example
from .reference.optimizers import OPTIMIZERS, SGD, Adagrad, Adam, AdamW, RMSprop

Array = np.ndarray

FORMULAS: dict[type, tuple[str, ...]] = {
    SGD: ("g ← g + λ·θ", "b ← μ·b + (1 − τ)·g  (b ← g at t = 1; b = g when μ = 0)", "θ ← θ − lr·b"),
    Adam: (
        "g ← g + λ·θ",
        "m ← β₁·m + (1 − β₁)·g",
        "v ← β₂·v + (1 − β₂)·g²",
        "m̂ = m / (1 − β₁ᵗ),  v̂ = v / (1 − β₂ᵗ)",
        "θ ← θ − lr·m̂ / (√v̂ + ε)",
    ),
    AdamW: (
        "θ ← θ − lr·λ·θ",
        "m ← β₁·m + (1 − β₁)·g",
        "v ← β₂·v + (1 − β₂)·g²",
        "m̂ = m / (1 − β₁ᵗ),  v̂ = v / (1 − β₂ᵗ)",
        "θ ← θ − lr·m̂ / (√v̂ + ε)",
    ),
    RMSprop: ("g ← g + λ·θ", "v ← α·v + (1 − α)·g²", "θ ← θ − lr·g / (√v + ε)"),
    Adagrad: ("g ← g + λ·θ", "s ← s + g²", "θ ← θ − lr·g / (√s + ε)"),
}


@dataclass(frozen=True)
class OptimizerStep:
    """Step ``t`` (from 1): the loss before it and, by name, each quantity's arrays
    (``{"g": {"W1": ..., ...}, "m": ..., "update": ..., "θ": ...}``)."""

    t: int
    loss: float
    quantities: dict[str, dict[str, Array]]


@dataclass(frozen=True)
class OptimizerWalkthrough:
    """The optimizer, its formulas, the starting point and every step, with the
    cross-check's result per backend (``agreement[name]``: worst error over tolerance, or
    the reason it was skipped)."""

    optimizer: Any
    net: Network
    initial: Params
    x: Array
    y: Array
    formulas: tuple[str, ...]
    steps: tuple[OptimizerStep, ...]
    agreement: dict[str, str]
    ok: bool


def _named(arrays: Sequence[Array]) -> dict[str, Array]:
    return {
        f"{'W' if i % 2 == 0 else 'b'}{i // 2 + 1}": np.asarray(a) for i, a in enumerate(arrays)
    }


def _state_quantities(opt: Any, state: Any) -> dict[str, dict[str, Array]]:
    out: dict[str, dict[str, Array]] = {}
    for field in state._fields[1:]:
        arrays = getattr(state, field)
        if arrays and all(a is not None for a in arrays):
            out[field] = _named(arrays)
    if isinstance(opt, Adam):
        (beta1, beta2), t = opt.betas, state.t
        out["m̂"] = _named([m / (1 - beta1**t) for m in state.m])
        v = state.v_max if opt.amsgrad else state.v
        out["v̂"] = _named([v_ / (1 - beta2**t) for v_ in v])
    return out


def walk(
    name: str = "adam",
    steps: int = 2,
    backends: Sequence[str] = ("torch", "jax"),
) -> OptimizerWalkthrough:
    """``steps`` steps of the optimizer ``name`` (torch's defaults; ``lr`` the document's 0.1
    for SGD) on the worked example's network and sample."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; expected one of {', '.join(OPTIMIZERS)}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    we = worked_example
    opt = SGD(we.LR) if name == "sgd" else OPTIMIZERS[name]()
    batches = [(we.X[None], we.Y[None])] * steps
    traj = train(we.NETWORK, we.PARAMS, batches, opt)
    report = adapters.crosscheck_training(we.NETWORK, we.PARAMS, batches, opt, backends=backends)
    agreement = {}
    for backend in report.backends:
        if backend in report.skipped:
            agreement[backend] = f"skipped: {report.skipped[backend]}"
        elif backend in report.errors:
            agreement[backend] = f"error: {report.errors[backend]}"
        else:
            worst = report.worst(backend).max_err_over_tolerance
            agreement[backend] = (
                f"{'agrees' if report.first_failure(backend) is None else 'DISAGREES'} (worst error/tolerance {worst:.2g})"  # noqa: E501
            )
    previous = we.PARAMS
    out = []
    for t in range(steps):
        theta = traj.params[t]
        quantities = {"g": traj.grads[t].named()}
        quantities.update(_state_quantities(opt, traj.states[t]))
        quantities["update"] = {k: theta.named()[k] - previous.named()[k] for k in theta.named()}
        quantities["θ"] = theta.named()
        out.append(OptimizerStep(t + 1, traj.losses[t], quantities))
        previous = theta
    formulas = FORMULAS[type(opt)]
    return OptimizerWalkthrough(
        opt, we.NETWORK, we.PARAMS, we.X, we.Y, formulas, tuple(out), agreement, report.ok
    )


def _fmt(value: float, digits: int) -> str:
    return f"{value:.{digits}g}"


def to_text(w: OptimizerWalkthrough, digits: int = 6) -> str:
    """The walk-through as plain text."""
    lines = [f"{w.optimizer} on the worked example's {'-'.join(map(str, w.net.sizes))} network"]
    lines += ["", "Each step:", *(f"  {f}" for f in w.formulas)]
    for step in w.steps:
        lines += ["", f"Step t = {step.t}: loss before the step L = {_fmt(step.loss, digits)}"]
        for quantity, arrays in step.quantities.items():
            for key, a in arrays.items():
                values = np.array2string(
                    a, precision=digits, separator=", ", floatmode="maxprec"
                ).replace("\n", "")
                lines.append(f"  {quantity:>6} {key:<3} = {values}")
    lines += ["", "Cross-checked over every step:"]
    lines += [f"  {name}: {what}" for name, what in w.agreement.items()]
    return "\n".join(lines)


def to_json(w: OptimizerWalkthrough) -> dict[str, Any]:
    """The walk-through as JSON-ready data (full precision)."""
    return {
        "optimizer": repr(w.optimizer),
        "sizes": list(w.net.sizes),
        "formulas": list(w.formulas),
        "initial": {k: v.tolist() for k, v in w.initial.named().items()},
        "x": w.x.tolist(),
        "y": w.y.tolist(),
        "steps": [
            {
                "t": s.t,
                "loss": s.loss,
                **{
                    q: {k: v.tolist() for k, v in arrays.items()}
                    for q, arrays in s.quantities.items()
                },
            }
            for s in w.steps
        ],
        "agreement": w.agreement,
        "ok": w.ok,
    }


_TEX = {"θ": r"\theta", "m̂": r"\hat{m}", "v̂": r"\hat{v}", "update": r"\Delta\theta",
        "buf": "b", "g_avg": r"\bar{g}"}  # fmt: skip
_TEX_FORMULA = str.maketrans({"←": r"\leftarrow ", "β": r"\beta", "₁": "_1", "₂": "_2",
                              "ᵗ": "^t", "θ": r"\theta ", "λ": r"\lambda ", "·": r"\cdot ",
                              "√": r"\sqrt", "ε": r"\epsilon ", "−": "-", "²": "^2",
                              "μ": r"\mu ", "τ": r"\tau ", "α": r"\alpha "})  # fmt: skip


def _matrix(a: Array, digits: int) -> str:
    rows = a.reshape(-1, 1) if a.ndim == 1 else a
    body = r" \\ ".join(" & ".join(_fmt(float(v), digits) for v in row) for row in rows)
    return rf"\begin{{bmatrix}} {body} \end{{bmatrix}}"


def _tex_formula(text: str) -> str:
    for plain, tex in (("√v̂", r"\sqrt{\hat{v}}"), ("√v", r"\sqrt{v}"), ("√s", r"\sqrt{s}"),
                       ("m̂", r"\hat{m}"), ("v̂", r"\hat{v}"), ("lr", r"\eta "),
                       ("(b ← g at t = 1; b = g when μ = 0)", r"\quad(b \leftarrow g \text{ at } t = 1)")):  # fmt: skip  # noqa: E501
        text = text.replace(plain, tex)
    return text.translate(_TEX_FORMULA)


def _equations(step: OptimizerStep, digits: int) -> list[str]:
    """One display equation per quantity of ``step``: ``symbol_name = matrix, …``."""
    out = []
    for quantity, arrays in step.quantities.items():
        symbol = _TEX.get(quantity, quantity)
        out.append(
            r", \quad ".join(rf"{symbol}_{{{k}}} = {_matrix(a, digits)}" for k, a in arrays.items())
        )
    return out


def to_markdown(w: OptimizerWalkthrough, digits: int = 4) -> str:
    """The walk-through as Markdown with LaTeX math."""
    out = [f"# {type(w.optimizer).__name__} on the worked example", ""]
    out += [f"Optimizer: `{w.optimizer!r}`; every step trains on the sample (x, y).", ""]
    out += [f"- ${_tex_formula(f)}$" for f in w.formulas]
    for step in w.steps:
        out += [
            "",
            f"## Step t = {step.t}",
            "",
            f"Loss before the step: $L = {_fmt(step.loss, digits)}$",
            "",
        ]
        for equation in _equations(step, digits):
            out += ["$$", equation, "$$", ""]
    out += ["Cross-checked over every step:", ""]
    out += [f"- {name}: {what}" for name, what in w.agreement.items()]
    return "\n".join(out) + "\n"


def _tex_text(text: str) -> str:
    return text.replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")


def _aligned(formula: str) -> str:
    """``formula`` with an alignment point at its first ``←`` (or ``=``)."""
    if r"\leftarrow" in formula:
        return formula.replace(r"\leftarrow", r"&\leftarrow", 1)
    return formula.replace(" = ", " &= ", 1)


def to_latex(w: OptimizerWalkthrough, digits: int = 4) -> str:
    """The walk-through as a standalone LaTeX document."""
    out = [
        r"\documentclass{article}", r"\usepackage{amsmath}", r"\begin{document}",
        rf"\section*{{{type(w.optimizer).__name__} on the worked example}}",
        rf"Optimizer: \texttt{{{_tex_text(repr(w.optimizer))}}}; every step trains on the sample $(x, y)$.",  # noqa: E501
        r"\begin{align*}", " \\\\\n".join(_aligned(_tex_formula(f)) for f in w.formulas),
        r"\end{align*}",
    ]  # fmt: skip
    for step in w.steps:
        out += [
            rf"\subsection*{{Step $t = {step.t}$}}",
            rf"Loss before the step: $L = {_fmt(step.loss, digits)}$",
        ]
        out += [rf"\[ {equation} \]" for equation in _equations(step, digits)]
    out += [r"Cross-checked over every step:", r"\begin{itemize}"]
    out += [rf"\item {name}: {_tex_text(what)}" for name, what in w.agreement.items()]
    out += [r"\end{itemize}", r"\end{document}"]
    return "\n".join(out) + "\n"
