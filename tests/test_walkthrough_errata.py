"""The errata section of a Markdown worked example (src/crossgrad/_walkthrough_errata.py)."""

from __future__ import annotations

import pytest

from crossgrad import walkthrough
from crossgrad._walkthrough_errata import errata_markdown, quantity_tex
from crossgrad.reference import Network, worked_example


@pytest.fixture(scope="module")
def document() -> walkthrough.Walkthrough:
    return walkthrough.document(backends=())


def table_rows(markdown: str) -> list[list[str]]:
    rows = [line for line in markdown.splitlines() if line.startswith("| $")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]


def test_the_documents_errata_are_the_figures_that_disagree(
    document: walkthrough.Walkthrough,
) -> None:
    wrong = [c for c in document.figures if not c.agrees]
    rows = table_rows(errata_markdown(document))
    assert [(r[1], r[2]) for r in rows] == [
        (str(list(c.figure.index)), c.figure.printed) for c in wrong
    ]
    assert [float(r[3]) for r in rows] == pytest.approx(
        [c.computed for c in wrong], rel=1e-7, abs=0
    )
    # the five errata of the document, found by the comparison, not copied
    assert {(c.figure.quantity, c.figure.index) for c in wrong} == {
        ("a1", (0,)),
        ("dL/dW1", (0, 0)),
        ("dL/dW1", (2, 3)),
        ("W1'", (0, 2)),
        ("W1'", (1, 0)),
    }


def test_the_summary_counts_every_printed_figure(document: walkthrough.Walkthrough) -> None:
    n = len(worked_example.PRINTED)
    n_wrong = sum(not c.agrees for c in document.figures)
    assert f"{n} figures printed in the document" in errata_markdown(document)
    assert f"{n - n_wrong} agree within one unit" in errata_markdown(document)
    assert f"{n_wrong} do not:" in errata_markdown(document)


def test_markdown_of_the_document_ends_with_its_errata(document: walkthrough.Walkthrough) -> None:
    markdown = walkthrough.to_markdown(document)
    assert markdown.endswith("\n\n" + errata_markdown(document) + "\n")
    assert markdown.count("## The document's printed figures") == 1


def test_an_example_without_printed_figures_has_no_errata() -> None:
    w = walkthrough.generate(Network((2, 2, 1), "tanh"), seed=3, backends=())
    assert errata_markdown(w) == ""
    assert "printed figures" not in walkthrough.to_markdown(w)


def test_figures_that_all_agree_get_a_count_and_no_table(
    document: walkthrough.Walkthrough,
) -> None:
    right = [c.figure for c in document.figures if c.agrees]
    we = worked_example
    w = walkthrough.walk(we.NETWORK, we.PARAMS, we.X, we.Y, we.LR, printed=right)
    text = errata_markdown(w)
    assert f"{len(right)} agree within one unit of their last printed place, 0 do not." in text
    assert "|" not in text


@pytest.mark.parametrize(
    ("quantity", "tex"),
    [
        ("z1", "z_{1}"),
        ("a2", "a_{2}"),
        ("y_hat", r"\hat{y}"),
        ("loss", "L"),
        ("delta2", r"\delta_{2}"),
        ("dL/dW1", r"\partial L / \partial W_{1}"),
        ("dL/db12", r"\partial L / \partial b_{12}"),
        ("W1'", "W_{1}'"),
        ("b3'", "b_{3}'"),
        ("other", r"\text{other}"),
    ],
)
def test_quantity_names_as_latex(quantity: str, tex: str) -> None:
    assert quantity_tex(quantity) == tex
