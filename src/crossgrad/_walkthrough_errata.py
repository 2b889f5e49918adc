"""The errata of a worked example in Markdown: the printed figures that disagree with the values.

``to_markdown`` ends a walk-through that carries printed figures (the document's own example)
with this section, so the table is made from the same comparison as ``crossgrad example``'s
text output, never copied by hand.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .walkthrough import Walkthrough

_QUANTITY = re.compile(r"^(?P<kind>dL/dW|dL/db|delta|z|a|W|b)(?P<layer>\d+)(?P<prime>'?)$")
_SYMBOL = {"z": "z", "a": "a", "W": "W", "b": "b", "delta": r"\delta"}


def quantity_tex(quantity: str) -> str:
    """A quantity's name (``"a1"``, ``"dL/dW1"``, ``"W1'"``, ``"y_hat"``) as LaTeX."""
    if quantity == "y_hat":
        return r"\hat{y}"
    if quantity == "loss":
        return "L"
    match = _QUANTITY.match(quantity)
    if match is None:
        return rf"\text{{{quantity}}}"
    kind, layer, prime = match["kind"], match["layer"], match["prime"]
    if kind.startswith("dL/d"):
        return rf"\partial L / \partial {kind[-1]}_{{{layer}}}"
    return f"{_SYMBOL[kind]}_{{{layer}}}{prime}"


def errata_markdown(w: Walkthrough) -> str:
    """A ``##`` section: how many printed figures agree, and a table of those that do not.

    Empty when ``w`` carries no printed figures.  A figure agrees when it is within one unit of
    its last printed place of the float64 reference's value.
    """
    figures = w.figures
    if not figures:
        return ""
    wrong = [c for c in figures if not c.agrees]
    lines = [
        "## The document's printed figures",
        "",
        f"{len(figures)} figures printed in the document were compared with the values above: "
        f"{len(figures) - len(wrong)} agree within one unit of their last printed place, "
        f"{len(wrong)} do not" + (":" if wrong else "."),
    ]
    if wrong:
        lines += [
            "",
            "| quantity | entry | printed | exact (8 significant digits) | off by | where it is "
            "printed |",
            "|---|---|---|---|---|---|",
        ]
        for c in wrong:
            f = c.figure
            where = f.where.replace("|", r"\|")
            lines.append(
                f"| ${quantity_tex(f.quantity)}$ | {list(f.index)} | {f.printed} "
                f"| {c.computed:.8g} | {c.error_in_units:.1f} units | {where} |"
            )
    return "\n".join(lines)
