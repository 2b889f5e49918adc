"""The worked example that started crossgrad, as data: its network, and every figure it prints.

The document, a hand-written worked example of backpropagation (not part of this repository;
``crossgrad example`` presents it in crossgrad's own words), trains a 4-3-2 sigmoid network with
loss ``½‖ŷ − y‖²`` on one sample for one SGD step.  Its figures are rounded by hand; each is
kept here as printed (a string, so its precision is known), with the quantity and index it
stands for.  ``compare_printed`` sets them beside exact values.

The learning rate is not printed.  It follows from the updated parameters: every printed
``W' = W − η ∂L/∂W`` and ``b' = b − η ∂L/∂b`` agrees with ``η = 0.1`` within the rounding of
its figures (the exceptions are the errata, see ``compare_printed``), so ``LR = 0.1``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from numpy.typing import NDArray

from .backpropagation import BackpropResult
from .network import Network, Params

NETWORK = Network((4, 3, 2), activation="sigmoid", loss="half_sse", reduction="mean")
PARAMS = Params(
    weights=[
        [[0.2, -0.1, 0.4, 0.1], [-0.3, 0.2, 0.1, -0.2], [0.1, 0.3, -0.2, 0.2]],
        [[0.3, -0.2, 0.1], [-0.4, 0.1, 0.2]],
    ],
    biases=[[0.0, 0.1, -0.1], [0.05, -0.05]],
)
X = np.array([1.0, 0.5, -1.0, 2.0])
"""The input, one sample ``(4,)``."""
Y = np.array([1.0, 0.0])
"""The target, ``(2,)``."""
LR = 0.1
"""The learning rate η, inferred from the printed updates (see the module docstring)."""

QUANTITIES = (
    "z1", "a1", "z2", "y_hat", "loss", "delta2", "dL/dW2", "W2'",
    "dL/db2", "b2'", "delta1", "dL/dW1", "W1'", "dL/db1", "b1'",
)  # fmt: skip
"""Every quantity of the example, in the document's order."""


@dataclass(frozen=True)
class PrintedFigure:
    """One number as the document prints it: ``quantity[index] = printed``, found in ``where``."""

    quantity: str
    index: tuple[int, ...]
    printed: str
    where: str

    @property
    def value(self) -> float:
        """The printed figure as a number."""
        return float(self.printed)

    @property
    def unit(self) -> float:
        """One unit in the last printed place: 0.001 for ``"0.354"``."""
        exponent = Decimal(self.printed).as_tuple().exponent
        return 10.0 ** int(exponent)


def _figures(quantity: str, printed: str, where: str) -> list[PrintedFigure]:
    """Figures of a scalar ``"a"``, a vector ``"a b c"`` or a matrix ``"a b; c d"``."""
    rows = [row.split() for row in printed.split(";")]
    if rows == [[printed]]:
        return [PrintedFigure(quantity, (), printed, where)]
    if len(rows) == 1:
        return [PrintedFigure(quantity, (j,), v, where) for j, v in enumerate(rows[0])]
    return [
        PrintedFigure(quantity, (i, j), v, where)
        for i, row in enumerate(rows)
        for j, v in enumerate(row)
    ]


PRINTED: tuple[PrintedFigure, ...] = tuple(
    figure
    for args in (
        ("z1", "-0.05 -0.6 0.75", "Layer 1 pre-activation z(1) = W1 X + b1"),
        ("a1", "0.482 0.354 0.679", "Layer 1 activation a1 = σ(z(1))"),
        ("z2", "0.193 -0.0737", "Layer 2 pre-activation z(2) = W2 a1 + b2"),
        ("y_hat", "0.548 0.482", "Layer 2 activation ŷ = σ(z(2))"),
        ("loss", "0.21803", "Loss L = ½‖ŷ − y‖²"),
        ("delta2", "-0.112 0.120", "δ2 in ∂L/∂W2 = δ2 · a1ᵀ"),
        ("a1", "0.487 0.354 0.679", "a1ᵀ in ∂L/∂W2 = δ2 · a1ᵀ"),
        ("dL/dW2", "-0.055 -0.040 -0.076; 0.059 0.043 0.082", "∂L/∂W2 = δ2 · a1ᵀ"),
        ("W2'", "0.306 -0.196 0.108; -0.406 0.096 0.192", "W2' = W2 − η ∂L/∂W2"),
        ("dL/db2", "-0.112 0.120", "∂L/∂b2 = δ(2) · 1"),
        ("b2'", "0.061 -0.062", "b' = b2 − η ∂L/∂b2"),
        (
            "dL/dW1",
            "-0.204 -0.01 0.020 -0.041; 0.008 0.004 -0.008 0.016; 0.002 0.001 -0.003 0.007",
            "∂L/∂w1 = ((w2ᵀ δ(2)) ∘ a1(1 − a1)) xᵀ",
        ),
        (
            "W1'",
            "0.202 -0.099 0.400 0.104; -0.304 0.200 0.101 -0.202; 0.100 0.300 -0.200 0.200",
            "W' = W1 − η ∂L/∂W1",
        ),
        ("dL/db1", "-0.020 0.008 0.003", "∂L/∂b1 = (W2ᵀ δ(2)) ∘ a1 ∘ (1 − a1)"),
        ("b1'", "0.002 0.099 -0.100", "b1' = b1 − η ∂L/∂b1"),
    )
    for figure in _figures(*args)
)
"""Every figure the document prints for a computed quantity (inputs and weights excluded)."""


def quantities(result: BackpropResult, updated: Params) -> dict[str, NDArray[np.floating]]:
    """Every quantity of the example, by name, from one ``backprop`` result and its SGD step.

    ``result`` must come from one sample (1-D ``x``) on the example's 4-3-2 network, as
    ``backprop(NETWORK, PARAMS, X, Y)`` gives it; ``updated`` is ``sgd_step(PARAMS, grads, LR)``.
    The names are those of ``QUANTITIES``; ``delta_l`` is ``∂L/∂z_l``, equal to ``∂L/∂b_l``.
    """
    (z1, z2), (_, a1, y_hat) = result.preactivations, result.activations
    (dW1, dW2), (db1, db2) = result.grads.weights, result.grads.biases
    return {
        "z1": z1,
        "a1": a1,
        "z2": z2,
        "y_hat": y_hat,
        "loss": np.asarray(result.loss),
        "delta2": db2,
        "dL/dW2": dW2,
        "W2'": updated.weights[1],
        "dL/db2": db2,
        "b2'": updated.biases[1],
        "delta1": db1,
        "dL/dW1": dW1,
        "W1'": updated.weights[0],
        "dL/db1": db1,
        "b1'": updated.biases[0],
    }


@dataclass(frozen=True)
class FigureCheck:
    """A printed figure beside the exact value; ``agrees`` within one unit of its last place."""

    figure: PrintedFigure
    computed: float

    @property
    def agrees(self) -> bool:
        """Whether the printed figure is within one unit of its last place of the exact value."""
        # A hair of slack so that a difference of exactly one unit, blurred by binary
        # rounding of the decimal figure, still counts as within one unit.
        return abs(self.figure.value - self.computed) <= self.figure.unit * (1 + 1e-9)

    @property
    def error_in_units(self) -> float:
        """``|printed − computed|`` in units of the last printed place."""
        return abs(self.figure.value - self.computed) / self.figure.unit


def compare_printed(values: Mapping[str, NDArray[np.floating]]) -> list[FigureCheck]:
    """Every printed figure beside the matching entry of ``values`` (see ``quantities``)."""
    checks = []
    for figure in PRINTED:
        computed = float(np.asarray(values[figure.quantity])[figure.index])
        if not math.isfinite(computed):
            raise ValueError(f"values[{figure.quantity!r}] is not finite at {figure.index}")
        checks.append(FigureCheck(figure, computed))
    return checks
