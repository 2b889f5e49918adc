"""A ``Walkthrough`` as ``crossgrad example`` prints it (plain text) and as JSON-ready data."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from .reference import LOSSES, Network
from .reference.worked_example import FigureCheck

if TYPE_CHECKING:
    from .walkthrough import Step, Walkthrough

Array = NDArray[np.floating]


def _jsonable(value: Array) -> Any:
    return value.tolist()


def to_json(w: Walkthrough) -> dict[str, Any]:
    """The walk-through as JSON-ready data.

    Keys: ``title``, ``network`` (sizes, activations, loss, reduction), ``params`` (``W1``,
    ``b1``, ...), ``x``, ``y``, ``lr``, ``lr_source``, ``tolerance``, ``backends`` (per backend:
    ``agrees``, worst ``max_rel_diff``/``max_abs_diff`` and the step where it occurs),
    ``backends_agree``, ``steps`` (``quantity``, ``value``, per-backend ``agreement``),
    ``figures`` (one record per printed figure: ``quantity``, ``index``, ``printed``,
    ``computed``, ``agrees``, ``unit``, ``error_in_units``, ``where``), ``notes`` (remarks
    on the setting, see ``Walkthrough.notes``) and ``summary``.
    """
    figures = [
        {
            "quantity": c.figure.quantity,
            "index": list(c.figure.index),
            "printed": c.figure.printed,
            "computed": c.computed,
            "agrees": c.agrees,
            "unit": c.figure.unit,
            "error_in_units": c.error_in_units,
            "where": c.figure.where,
        }
        for c in w.figures
    ]
    backends = {}
    for name in w.backends:
        worst = w.worst(name)
        backends[name] = {
            "agrees": all(step.agreement[name].ok for step in w.steps),
            "max_rel_diff": worst.agreement[name].max_rel_err,
            "max_abs_diff": max(step.agreement[name].max_abs_err for step in w.steps),
            "worst_step": worst.quantity,
        }
    return {
        "title": w.title,
        "network": {
            "sizes": list(w.net.sizes),
            "activations": list(w.net.activations),
            "loss": w.net.loss,
            "reduction": w.net.reduction,
        },
        "params": {name: _jsonable(v) for name, v in w.params.named().items()},
        "x": _jsonable(w.x),
        "y": _jsonable(w.y),
        "lr": w.lr,
        "lr_source": w.lr_source,
        "tolerance": {
            "rule": "|backend - reference| <= atol + rtol * S, S each entry's error scale "
            "(crossgrad.adapters.tolerance); relative difference = |backend - reference| / S",
            **{name: {"rtol": r, "atol": a} for name, (r, a) in w.tolerances.items()},
        },
        "backends": backends,
        "backends_agree": w.ok,
        "steps": [
            {
                "quantity": step.quantity,
                "value": _jsonable(step.value),
                "agreement": {
                    name: {
                        "agrees": c.ok,
                        "max_rel_diff": c.max_rel_err,
                        "max_abs_diff": c.max_abs_err,
                        "worst_index": list(c.worst_index),
                    }
                    for name, c in step.agreement.items()
                },
            }
            for step in w.steps
        ],
        "figures": figures,
        "notes": list(w.notes),
        "summary": {
            "figures_compared": len(figures),
            "figures_agree": sum(f["agrees"] for f in figures),
            "figures_disagree": [
                {k: f[k] for k in ("quantity", "index", "printed", "computed")}
                for f in figures
                if not f["agrees"]
            ],
        },
    }


_SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
_OUTPUT_DELTA_TEXT = {
    "half_sse": "(ŷ − y) ∘ {f}'(z{s})",
    "mse": "(2/n)(ŷ − y) ∘ {f}'(z{s}), n = {n}",
    "binary_cross_entropy": "(σ(z{s}) − y)/n, n = {n}",
    "softmax_cross_entropy": "(softmax(ŷ)·Σⱼyⱼ − y) ∘ {f}'(z{s})",
}


def _sub(l: int) -> str:
    return str(l).translate(_SUBSCRIPTS)


def _f(net: Network, l: int) -> str:
    name = net.activations[l - 1]
    return "σ" if name == "sigmoid" else name


def equation(net: Network, step: Step) -> str:
    """The step as the document writes it, in plain text: ``a₁ = σ(z₁)``."""
    l, s = step.layer, _sub(step.layer)
    prev = "x" if l == 1 else f"a{_sub(l - 1)}"
    f = _f(net, l) if l else ""
    forms = {
        "z": f"z{s} = W{s}·{prev} + b{s}",
        "a": f"a{s} = {f}(z{s})",
        "y_hat": f"ŷ = a{s} = {f}(z{s})",
        "loss": f"L = {LOSSES[net.loss].formula}",
        "dL/dW": f"∂L/∂W{s} = δ{s}·{prev}ᵀ",
        "W'": f"W{s}' = W{s} − η·∂L/∂W{s}",
        "dL/db": f"∂L/∂b{s} = δ{s}",
        "b'": f"b{s}' = b{s} − η·∂L/∂b{s}",
    }
    if step.kind != "delta":
        return forms[step.kind]
    if l == net.n_layers:
        rule = _OUTPUT_DELTA_TEXT[net.loss].format(f=f, s=s, n=net.sizes[-1])
    else:
        rule = f"(W{_sub(l + 1)}ᵀ·δ{_sub(l + 1)}) ∘ {f}'(z{s})"
    return f"δ{s} = ∂L/∂z{s} = {rule}"


def _num(v: float) -> str:
    return f"{v:.8g}"


def _rel(v: float) -> str:
    return "0" if v == 0 else f"{v:.1e}"


def _agreement_text(w: Walkthrough, step: Step) -> str:
    if not w.backends:
        return ""
    bad = [(name, c) for name, c in step.agreement.items() if not c.ok]
    if not bad:
        worst = max(c.max_rel_err for c in step.agreement.values())
        return f"{', '.join(w.backends)} agree (worst rel. diff {_rel(worst)})"
    return "DISAGREE: " + "; ".join(
        f"{name} rel. diff {_rel(c.max_rel_err)} at {list(c.worst_index)}"
        + (f" ({c.problem})" if c.problem else "")
        for name, c in bad
    )


def _figure_text(check: FigureCheck) -> str:
    mark = "✓" if check.agrees else f"✗ off by {check.error_in_units:.3g} units of its last place"
    return f"document {check.figure.printed:>7}  {mark}"


def _step_text(w: Walkthrough, step: Step) -> list[str]:
    head = equation(w.net, step)
    agreement = _agreement_text(w, step)
    lines = [f"{head:<44}  {agreement}".rstrip()]
    value = step.value
    for index in np.ndindex(value.shape):
        label = f"  [{', '.join(map(str, index))}]" if index else "  "
        entry = f"{label:<9}{_num(float(value[index])):>13}"
        checks = [c for c in step.figures if c.figure.index == index]
        if not checks:
            lines.append(entry)
        for i, check in enumerate(checks):
            lead = entry if i == 0 else " " * len(entry)
            where = f"  ({check.figure.where})" if len(checks) > 1 else ""
            lines.append(f"{lead}   {_figure_text(check)}{where}")
    return lines


def figures_summary(w: Walkthrough) -> str:
    """One line: how many printed figures were compared and which disagree."""
    figures = w.figures
    wrong = [c for c in figures if not c.agrees]
    line = (
        f"Printed figures: {len(figures)} compared, {len(figures) - len(wrong)} agree within "
        f"one unit of their last printed place, {len(wrong)} disagree"
    )
    if not wrong:
        return line + "."
    return (
        line
        + ": "
        + "; ".join(
            f"{c.figure.quantity}{list(c.figure.index)} printed {c.figure.printed}, "
            f"exact {_num(c.computed)}"
            for c in wrong
        )
        + "."
    )


def backends_summary(w: Walkthrough) -> str:
    """One line: whether every backend agrees with the reference, and the worst difference."""
    if not w.backends:
        return "Backends: none asked for; the values are the NumPy reference's alone."
    worst = {name: w.worst(name) for name in w.backends}
    diffs = ", ".join(
        f"{name} {_rel(step.agreement[name].max_rel_err)} on {step.quantity}"
        for name, step in worst.items()
    )
    if w.ok:
        who = " and ".join(w.backends)
        verb = "agrees" if len(w.backends) == 1 else "agree"
        return (
            f"Backends: {who} {verb} with the reference on all {len(w.steps)} steps "
            f"(worst relative difference: {diffs})."
        )
    bad = [s.quantity for s in w.steps if not s.agrees]
    return f"Backends: DISAGREEMENT on {', '.join(bad)} (worst relative difference: {diffs})."


def to_text(w: Walkthrough) -> str:
    """The walk-through as ``crossgrad example`` prints it."""
    net = w.net
    with np.printoptions(floatmode="maxprec", precision=8, suppress=True):
        arrays = [f"{name:<9} {np.array2string(v, prefix=' ' * 10)}" for name, v in (
            *w.params.named().items(), ("x", w.x), ("y", w.y)
        )]  # fmt: skip
    lines = [
        w.title,
        "",
        f"network   {' -> '.join(map(str, net.sizes))}, activations {', '.join(net.activations)}",
        f"loss      {net.loss}, one sample",
        *(f"note      {note}" for note in w.notes),
        *arrays,
        f"lr        η = {w.lr:g}: {w.lr_source}",
    ]
    if w.backends:
        tolerances = ", ".join(
            f"{name} rtol {r:.2g}" + (f" atol {a:.2g}" if a else "")
            for name, (r, a) in w.tolerances.items()
        )
        lines.append(
            f"checked   by {', '.join(w.backends)}: a value agrees when |Δ| ≤ atol + rtol·S, S its "
            f"error scale ({tolerances}); rel. diff = |Δ|/S"
        )
    if w.figures:
        lines.append(
            "values    the float64 reference's; ✓/✗: the document's figure is/is not within "
            "one unit of its last printed place"
        )
    for step in w.steps:
        lines.append("")
        lines.extend(_step_text(w, step))
    lines.append("")
    if w.figures:
        lines.append(figures_summary(w))
    lines.append(backends_summary(w))
    return "\n".join(lines)
