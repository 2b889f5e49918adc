"""A ``Walkthrough`` written out as a worked example in the document's style: Markdown or LaTeX.

Both formats share one list of blocks (headings, paragraphs with inline ``$…$`` math, display
equations); Markdown shows equations as ``$$…$$`` (as the document does), LaTeX as a
standalone ``article`` with ``amsmath``.  Numbers are rounded to ``digits`` significant digits.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from . import _walkthrough_errata as _errata

if TYPE_CHECKING:
    from .walkthrough import Step, Walkthrough

ACTIVATION_TEX: dict[str, tuple[str, str, str]] = {
    "identity": (r"\operatorname{id}", "z", "1"),
    "sigmoid": (r"\sigma", r"\frac{1}{1 + e^{-z}}", r"\sigma(z)\,(1 - \sigma(z))"),
    "tanh": (r"\tanh", r"\frac{e^{z} - e^{-z}}{e^{z} + e^{-z}}", r"1 - \tanh^2 z"),
    "relu": (r"\operatorname{relu}", r"\max(z, 0)", r"1 \text{ if } z > 0 \text{ else } 0"),
    "leaky_relu": (
        r"\operatorname{leaky\_relu}",
        r"z \text{ if } z > 0 \text{ else } 0.01\,z",
        r"1 \text{ if } z > 0 \text{ else } 0.01",
    ),
    "softplus": (r"\operatorname{softplus}", r"\log(1 + e^{z})", r"\frac{1}{1 + e^{-z}}"),
    "elu": (
        r"\operatorname{elu}",
        r"z \text{ if } z > 0 \text{ else } e^{z} - 1",
        r"1 \text{ if } z > 0 \text{ else } e^{z}",
    ),
    "gelu": (r"\operatorname{gelu}", r"z\,\Phi(z)", r"\Phi(z) + z\,\varphi(z)"),
    "silu": (
        r"\operatorname{silu}",
        r"\frac{z}{1 + e^{-z}}",
        r"\sigma(z) + z\,\sigma(z)\,(1 - \sigma(z))",
    ),
}
"""For each activation: its symbol, ``f(z)`` and ``f'(z)`` in LaTeX (``σ`` is the sigmoid)."""

LOSS_TEX: dict[str, tuple[str, str]] = {
    "half_sse": (r"\frac{1}{2} \|\hat{y} - y\|^2", r"(\hat{y} - y) \circ {fp}"),
    "mse": (
        r"\frac{1}{n} \sum_j (\hat{y}_j - y_j)^2",
        r"\frac{2}{n} (\hat{y} - y) \circ {fp}",
    ),
    "binary_cross_entropy": (
        r"-\frac{1}{n} \sum_j \big[y_j \log \hat{y}_j + (1 - y_j) \log(1 - \hat{y}_j)\big]",
        r"\frac{1}{n} (\hat{y} - y)",
    ),
    "softmax_cross_entropy": (
        r"-\sum_j y_j \log \operatorname{softmax}(\hat{y})_j",
        r"\Big(\operatorname{softmax}(\hat{y}) \textstyle\sum_j y_j - y\Big) \circ {fp}",
    ),
}
"""For each loss: ``L`` and the output layer's ``δ_L = ∂L/∂z_L`` in LaTeX (``{fp}`` is
``f'(z_L)``, ``n`` the output width)."""

Block = tuple[str, str]  # ("h1" | "h2" | "h3" | "p" | "eq", text)


def number(v: float, digits: int | None) -> str:
    """``v`` rounded to ``digits`` significant digits, in LaTeX (``1.200 \\times 10^{-5}``).

    ``digits=None``: exactly, in the shortest positional form (for the starting values).
    """
    if digits is None:
        return np.format_float_positional(v, trim="-")
    text = f"{v:#.{digits}g}".rstrip(".")
    if float(text) == 0:
        return "0"  # no "-0"
    if "e" in text:
        mantissa, exponent = text.split("e")
        return rf"{mantissa} \times 10^{{{int(exponent)}}}"
    return text


def matrix(value: np.ndarray, digits: int | None, row: bool = False) -> str:
    """A ``bmatrix``: a vector as a column (or a ``row``), a matrix as it is."""
    if value.ndim == 0:
        return number(float(value), digits)
    grid = value.reshape(1, -1) if row else value.reshape(value.shape[0], -1)
    body = r" \\ ".join(" & ".join(number(float(v), digits) for v in r) for r in grid)
    return rf"\begin{{bmatrix}} {body} \end{{bmatrix}}"


def _d(name: str) -> str:
    return rf"\frac{{\partial L}}{{\partial {name}}}"


def _prev(l: int) -> str:
    return "x" if l == 1 else f"a_{{{l - 1}}}"


def step_tex(w: Walkthrough, step: Step) -> str:
    """The step's definition in LaTeX, without its value: ``a_{1} = \\sigma(z_{1})``."""
    l, L = step.layer, w.net.n_layers
    f = ACTIVATION_TEX[w.net.activations[l - 1]][0] if l else ""
    if step.kind == "z":
        return f"z_{{{l}}} = W_{{{l}}} {_prev(l)} + b_{{{l}}}"
    if step.kind == "a":
        return f"a_{{{l}}} = {f}(z_{{{l}}})"
    if step.kind == "y_hat":
        return rf"\hat{{y}} = a_{{{l}}} = {f}(z_{{{l}}})"
    if step.kind == "loss":
        return f"L = {LOSS_TEX[w.net.loss][0]}"
    if step.kind == "delta":
        fp = f"{f}'(z_{{{l}}})"
        if l == L:
            rule = LOSS_TEX[w.net.loss][1].replace("{fp}", fp)
        else:
            rule = rf"(W_{{{l + 1}}}^T \delta_{{{l + 1}}}) \circ {fp}"
        return rf"\delta_{{{l}}} = \frac{{\partial L}}{{\partial z_{{{l}}}}} = {rule}"
    if step.kind == "dL/dW":
        return rf"{_d(f'W_{{{l}}}')} = \delta_{{{l}}}\, {_prev(l)}^T"
    if step.kind == "W'":
        return rf"W_{{{l}}}' = W_{{{l}}} - \eta {_d(f'W_{{{l}}}')}"
    if step.kind == "dL/db":
        return rf"{_d(f'b_{{{l}}}')} = \delta_{{{l}}}"
    return rf"b_{{{l}}}' = b_{{{l}}} - \eta {_d(f'b_{{{l}}}')}"


def _step_equation(w: Walkthrough, step: Step, digits: int) -> str:
    parts = [step_tex(w, step)]
    if step.kind == "dL/dW":  # the two factors first, as the document shows δ₂ · a₁ᵀ
        delta = w.step(f"delta{step.layer}").value
        prev = w.x if step.layer == 1 else w.step(f"a{step.layer - 1}").value
        x_exact = None if step.layer == 1 else digits
        parts.append(matrix(delta, digits) + " " + matrix(prev, x_exact, row=True))
    parts.append(matrix(step.value, digits))
    return " \\\\\n&= ".join(parts).replace(" = ", " &= ", 1)


def _setting(w: Walkthrough) -> Iterator[Block]:
    net = w.net
    yield ("h2", "Network architecture")
    widths = net.sizes
    layers = [f"input $\\rightarrow {widths[0]} \\times 1$"]
    layers += [
        f"hidden layer {l} $\\rightarrow {n} \\times 1$" for l, n in enumerate(widths[1:-1], 1)
    ]
    layers.append(f"output $\\rightarrow {widths[-1]} \\times 1$")
    yield ("p", ", ".join(layers) + ".")
    for name in dict.fromkeys(net.activations):
        symbol, f, fp = ACTIVATION_TEX[name]
        where = [l for l, a in enumerate(net.activations, 1) if a == name]
        which = (
            "every layer" if len(where) == net.n_layers else "layer " + ", ".join(map(str, where))
        )
        yield ("p", f"Activation ({which}): ${symbol}(z) = {f}$, ${symbol}'(z) = {fp}$.")
    n_note = f", $n = {widths[-1]}$" if net.loss in ("mse", "binary_cross_entropy") else ""
    yield ("p", f"Loss: $L = {LOSS_TEX[net.loss][0]}${n_note}.")
    for note in w.notes:
        yield ("p", f"Note: {note}.")
    yield ("p", f"Learning rate: $\\eta = {w.lr:g}$ ({w.lr_source}).")
    yield ("h2", "Starting weights and biases")
    for l, (W, b) in enumerate(w.params, start=1):
        yield ("eq", f"W_{{{l}}} = {matrix(W, None)}, \\quad b_{{{l}}} = {matrix(b, None)}")
    yield ("eq", f"x = {matrix(w.x, None)}, \\quad y = {matrix(w.y, None)}")


def blocks(w: Walkthrough, digits: int) -> list[Block]:
    """The worked example as a list of blocks, in the document's order."""
    L = w.net.n_layers
    out: list[Block] = [("h1", w.title), *_setting(w), ("h2", "Forward pass")]
    for step in w.steps:
        if step.kind in ("z", "a", "y_hat"):
            what = "pre-activation" if step.kind == "z" else "activation"
            out.append(("p", f"Layer {step.layer} {what}:"))
        elif step.kind == "loss":
            out.append(("p", "Loss:"))
        elif step.kind == "delta":
            if step.layer == L:
                out.append(("h2", "Back propagation"))
            out.append(("h3", f"Layer {step.layer}"))
        out.append(("eq", _step_equation(w, step, digits)))
    note = (
        f"Every number is rounded to {digits} significant digits from crossgrad's float64 "
        "NumPy reference"
    )
    if w.backends:
        verdict = "agree with it" if w.ok else "DO NOT all agree with it"
        note += f"; {', '.join(w.backends)} {verdict} under crossgrad's tolerance model"
    out.append(("p", note + "."))
    return out


def to_markdown(w: Walkthrough, digits: int = 4) -> str:
    """The worked example in Markdown with ``$$`` display math, like the document."""
    lines = []
    for kind, text in blocks(w, digits):
        if kind == "eq":
            body = text if "&=" not in text else rf"\begin{{aligned}} {text} \end{{aligned}}"
            lines.append(f"$$\n{body}\n$$")
        else:
            prefix = {"h1": "# ", "h2": "## ", "h3": "### ", "p": ""}[kind]
            lines.append(prefix + text)
    errata = _errata.errata_markdown(w)  # the printed figures that disagree, as a table
    return "\n\n".join([*lines, errata] if errata else lines) + "\n"


def _latex_text(text: str) -> str:
    """Escape LaTeX's special characters outside ``$…$`` math."""
    pieces = text.split("$")
    for i in range(0, len(pieces), 2):  # even pieces are text, odd ones math
        for char, escaped in (("_", r"\_"), ("&", r"\&"), ("%", r"\%"), ("#", r"\#")):
            pieces[i] = pieces[i].replace(char, escaped)
        for char, escaped in (
            ("η", r"$\eta$"),
            ("−", "-"),
            ("·", r"$\cdot$"),
            ("∂", r"$\partial$"),
        ):
            pieces[i] = pieces[i].replace(char, escaped)
    return "$".join(pieces).replace("$$", "")  # merge the symbols' adjacent math


def max_matrix_columns(w: Walkthrough) -> int:
    """The most columns any ``bmatrix`` of the example has: the widest layer (a row ``aᵀ``, or
    a ``W`` of that many inputs)."""
    return max(w.net.sizes)


def to_latex(w: Walkthrough, digits: int = 4) -> str:
    """The worked example as a standalone LaTeX document (``article``, ``amsmath``).

    amsmath's matrices hold at most ``MaxMatrixCols`` (10) columns unless told otherwise, so
    the preamble raises it to the widest matrix of the example.
    """
    lines = [
        r"\documentclass{article}",
        r"\usepackage{amsmath}",
        rf"\setcounter{{MaxMatrixCols}}{{{max(10, max_matrix_columns(w))}}}",
        r"\begin{document}",
    ]
    for kind, text in blocks(w, digits):
        if kind == "eq":
            env = "aligned" if "&=" in text else None
            body = rf"\begin{{{env}}} {text} \end{{{env}}}" if env else text
            lines.append(f"\\[\n{body}\n\\]")
        elif kind == "p":
            lines.append(_latex_text(text) + "\n")
        else:
            command = {"h1": "section*", "h2": "subsection*", "h3": "subsubsection*"}[kind]
            lines.append(f"\\{command}{{{_latex_text(text)}}}")
    lines.append(r"\end{document}")
    return "\n".join(lines) + "\n"
