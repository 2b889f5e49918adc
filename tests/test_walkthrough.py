"""``crossgrad.walkthrough``: the steps as data, their agreement, and the four renderings."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import numpy as np
import pytest

from crossgrad import adapters, walkthrough
from crossgrad._walkthrough_tex import ACTIVATION_TEX, LOSS_TEX, matrix, number
from crossgrad.reference import (
    ACTIVATIONS,
    LOSSES,
    BackpropResult,
    Network,
    Params,
    backprop,
    init_params,
    sgd_step,
    worked_example,
)

ERRATA = {("a1", (0,)), ("dL/dW1", (0, 0)), ("dL/dW1", (2, 3)), ("W1'", (0, 2)), ("W1'", (1, 0))}
"""Where the document's figures are wrong (README); the numbers themselves come from the data."""


FRAMEWORKS = [b for b in ("torch", "jax") if b in adapters.available()]


@pytest.fixture(scope="module")
def document() -> walkthrough.Walkthrough:
    return walkthrough.document(backends=())


def test_document_steps_follow_the_document(document: walkthrough.Walkthrough) -> None:
    assert tuple(s.quantity for s in document.steps) == worked_example.QUANTITIES
    ref = backprop(
        worked_example.NETWORK, worked_example.PARAMS, worked_example.X, worked_example.Y
    )
    updated = sgd_step(worked_example.PARAMS, ref.grads, worked_example.LR)
    expected = worked_example.quantities(ref, updated)
    for step in document.steps:
        np.testing.assert_array_equal(step.value, expected[step.quantity])
    assert document.lr == worked_example.LR == 0.1
    assert "inferred" in document.lr_source


def test_every_printed_figure_is_beside_its_value(document: walkthrough.Walkthrough) -> None:
    figures = document.figures
    assert [c.figure for c in figures] == sorted(
        worked_example.PRINTED, key=lambda f: worked_example.QUANTITIES.index(f.quantity)
    )
    for check in figures:
        step = document.step(check.figure.quantity)
        assert check.computed == step.value[check.figure.index]


def test_the_errata_are_flagged(document: walkthrough.Walkthrough) -> None:
    wrong = {(c.figure.quantity, c.figure.index) for c in document.figures if not c.agrees}
    assert wrong == ERRATA
    for check in document.figures:
        off = abs(check.figure.value - check.computed)
        assert (off > check.figure.unit * (1 + 1e-9)) == (not check.agrees)
    # a1[0] is printed twice: wrongly (0.482), then rightly in δ2·a1ᵀ.
    assert [c.agrees for c in document.step("a1").figures if c.figure.index == (0,)] == [
        False,
        True,
    ]


def test_quantity_names_for_three_layers() -> None:
    net = Network((3, 2, 2, 1), "tanh")
    got = [q for q, _, _ in walkthrough.quantity_names(net)]
    assert got[:7] == ["z1", "a1", "z2", "a2", "z3", "y_hat", "loss"]
    assert got[7:12] == ["delta3", "dL/dW3", "W3'", "dL/db3", "b3'"]
    assert got[-5:] == ["delta1", "dL/dW1", "W1'", "dL/db1", "b1'"]


def test_generated_example_is_reproducible_and_exact() -> None:
    net = Network((2, 2, 1), "tanh")
    params, x, y = walkthrough.example_inputs(net, 3)
    again = walkthrough.example_inputs(net, 3)
    assert params == again[0]
    np.testing.assert_array_equal(x, again[1])
    np.testing.assert_array_equal(y, again[2])
    drawn = init_params(net, 3)
    for mine, theirs in zip(params.weights, drawn.weights, strict=True):
        np.testing.assert_array_equal(mine, np.round(theirs, walkthrough.START_DECIMALS))
    assert params != walkthrough.example_inputs(net, 4)[0]
    assert np.all(np.abs(x) <= 2)
    assert set(y.tolist()) <= {0.0, 1.0}
    w = walkthrough.generate(net, 3, lr=0.5, backends=())
    ref = backprop(net, params, x, y)
    np.testing.assert_array_equal(w.step("dL/dW1").value, ref.grads.weights[0])
    np.testing.assert_array_equal(
        w.step("W2'").value, params.weights[1] - 0.5 * ref.grads.weights[1]
    )


def test_generated_softmax_target_is_one_hot() -> None:
    net = Network((2, 3), "identity", loss="softmax_cross_entropy")
    _, _, y = walkthrough.example_inputs(net, 5)
    assert sorted(y.tolist()) == [0.0, 0.0, 1.0]


def test_walk_rejects_what_it_cannot_walk() -> None:
    net, params = worked_example.NETWORK, worked_example.PARAMS
    x, y = worked_example.X, worked_example.Y
    with pytest.raises(ValueError, match="one sample"):
        walkthrough.walk(net, params, x[None], y[None], 0.1)
    with pytest.raises(TypeError, match="float64"):
        walkthrough.walk(net, init_params(net, 0, np.float32), x, y, 0.1)
    with pytest.raises(ValueError, match="lr"):
        walkthrough.walk(net, params, x, y, -1.0)
    with pytest.raises(ValueError, match="seed must be non-negative"):
        walkthrough.generate(net, -1, backends=())
    with pytest.raises(TypeError, match="seed must be an int"):
        walkthrough.example_inputs(net, 1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="digits"):
        walkthrough.to_markdown(walkthrough.walk(net, params, x, y, 0.1), digits=0)


class _Fake:
    """A backend that returns the reference's result, optionally nudged at one gradient entry."""

    def __init__(self, name: str, nudge: float = 0.0) -> None:
        self.name, self.nudge = name, nudge

    def backprop(self, net: Network, params: Params, x: Any, y: Any) -> BackpropResult:
        ref = backprop(net, params, x, y)
        weights = [W.copy() for W in ref.grads.weights]
        weights[0][0, 0] += self.nudge
        return dataclasses.replace(ref, grads=Params(weights, ref.grads.biases))


def _with_fakes(monkeypatch: pytest.MonkeyPatch, **fakes: _Fake) -> None:
    monkeypatch.setattr(adapters, "get", lambda name: adapters.protocol.as_backend(fakes[name]))


def test_agreeing_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_fakes(monkeypatch, torch=_Fake("torch"), jax=_Fake("jax"))
    w = walkthrough.document(backends=("torch", "jax"))
    assert w.ok
    for step in w.steps:
        assert set(step.agreement) == {"torch", "jax"}
        assert all(c.max_abs_err == 0 for c in step.agreement.values())
    assert "torch, jax agree" in walkthrough.to_text(w)


def test_a_nudged_gradient_is_caught_in_the_steps_it_touches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _with_fakes(monkeypatch, torch=_Fake("torch"), jax=_Fake("jax", nudge=1e-9))
    w = walkthrough.document(backends=("torch", "jax"))
    assert not w.ok
    assert {s.quantity for s in w.steps if not s.agrees} == {"dL/dW1", "W1'"}
    assert w.step("dL/dW1").agreement["jax"].worst_index == (0, 0)
    assert w.step("dL/dW1").agreement["torch"].ok
    text = walkthrough.to_text(w)
    assert "DISAGREE: jax" in text
    assert "DISAGREEMENT on dL/dW1, W1'" in text
    assert walkthrough.to_json(w)["backends"]["jax"]["agrees"] is False


@pytest.mark.parametrize("backend", FRAMEWORKS)
def test_real_backends_agree_on_the_document(backend: str) -> None:
    w = walkthrough.document(backends=(backend,))
    assert w.ok, walkthrough.to_text(w)


def test_json_schema(document: walkthrough.Walkthrough) -> None:
    data = json.loads(json.dumps(walkthrough.to_json(document)))
    assert len(data["figures"]) == len(worked_example.PRINTED)
    for record in data["figures"]:
        assert {"quantity", "index", "printed", "computed", "agrees", "where"} <= set(record)
        assert isinstance(record["index"], list)
        assert all(isinstance(i, int) for i in record["index"])
        assert isinstance(record["agrees"], bool)
    flagged = {(r["quantity"], tuple(r["index"])) for r in data["figures"] if not r["agrees"]}
    assert flagged == ERRATA
    summary = data["summary"]
    assert summary["figures_compared"] == len(worked_example.PRINTED)
    assert summary["figures_agree"] == len(worked_example.PRINTED) - len(ERRATA)
    assert data["lr"] == 0.1
    assert data["backends_agree"] is True
    assert [s["quantity"] for s in data["steps"]] == list(worked_example.QUANTITIES)
    assert data["params"]["W1"] == worked_example.PARAMS.weights[0].tolist()


def test_text_names_every_step_and_the_errata(document: walkthrough.Walkthrough) -> None:
    text = walkthrough.to_text(document)
    for head in ("z₁ = W₁·x + b₁", "a₁ = σ(z₁)", "ŷ = a₂ = σ(z₂)", "L = ½‖ŷ − y‖²", "δ₁ = ∂L/∂z₁"):
        assert head in text
    assert "η = 0.1: not printed in the document" in text
    summary = walkthrough.figures_summary(document)
    assert summary.startswith(f"Printed figures: {len(worked_example.PRINTED)} compared")
    for quantity, index in ERRATA:
        assert f"{quantity}{list(index)} printed" in summary
    assert text.count("✗ off by") == len(ERRATA)


def test_every_activation_and_loss_has_a_tex_form() -> None:
    assert set(ACTIVATION_TEX) == set(ACTIVATIONS)
    assert set(LOSS_TEX) == set(LOSSES)


@pytest.mark.parametrize(
    ("value", "digits", "expected"),
    [
        (0.21803042, 4, "0.2180"),
        (-0.0000123456, 3, r"-1.23 \times 10^{-5}"),
        (-0.0, 4, "0"),
        (5.0, 1, "5"),
        (0.1, None, "0.1"),
    ],
)
def test_number(value: float, digits: int | None, expected: str) -> None:
    assert number(value, digits) == expected


def _numbers_in(text: str) -> list[str]:
    return re.findall(r"-?\d+\.\d+|-?\d+", text)


@pytest.mark.parametrize("fmt", ["markdown", "latex"])
def test_custom_network_worked_example(fmt: str) -> None:
    net = Network((3, 2, 2), ("leaky_relu", "sigmoid"), loss="mse")
    w = walkthrough.generate(net, 7, lr=0.25, backends=())
    render = walkthrough.to_markdown if fmt == "markdown" else walkthrough.to_latex
    text = render(w, digits=5)
    for step in w.steps:  # every computed value, rounded, in order
        assert matrix(step.value, 5) in text
    assert r"\eta = 0.25" in text
    assert r"\frac{2}{n} (\hat{y} - y) \circ \sigma'(z_{2})" in text
    assert r"(W_{2}^T \delta_{2}) \circ \operatorname{leaky\_relu}'(z_{1})" in text
    assert text.count(r"\begin{bmatrix}") == text.count(r"\end{bmatrix}")
    if fmt == "latex":
        assert text.startswith(r"\documentclass{article}")
        assert text.rstrip().endswith(r"\end{document}")
        assert "$$" not in text
    else:
        assert text.startswith("# A worked backpropagation example: a 3-2-2 network (seed 7)")
        assert text.count("$$") % 2 == 0


def test_walk_rejects_a_string_of_backends_and_foreign_figures() -> None:
    we = worked_example
    with pytest.raises(TypeError, match="sequence of names"):
        walkthrough.walk(we.NETWORK, we.PARAMS, we.X, we.Y, 0.1, backends="torch")
    net = Network((4, 2), "sigmoid")
    params, x, y = walkthrough.example_inputs(net, 0)
    with pytest.raises(ValueError, match="names no entry"):
        walkthrough.walk(net, params, x, y, 0.1, printed=we.PRINTED)


def test_a_figure_outside_its_quantity_is_rejected() -> None:
    net = Network((4, 2, 2), "sigmoid")  # z1 has 2 entries; the document prints 3
    params, x, y = walkthrough.example_inputs(net, 0)
    figure = next(f for f in worked_example.PRINTED if f.quantity == "z1" and f.index == (2,))
    with pytest.raises(ValueError, match="names no entry"):
        walkthrough.walk(net, params, x, y, 0.1, printed=[figure])
    inside = next(f for f in worked_example.PRINTED if f.quantity == "z1" and f.index == (1,))
    w = walkthrough.walk(net, params, x, y, 0.1, printed=[inside])
    assert [c.figure for c in w.figures] == [inside]


def test_worst_names_the_step(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_fakes(monkeypatch, torch=_Fake("torch", nudge=1e-3))
    w = walkthrough.document(backends=("torch",))
    assert w.worst("torch").quantity in {"dL/dW1", "W1'"}
    data = walkthrough.to_json(w)["backends"]["torch"]
    assert data["worst_step"] == w.worst("torch").quantity
    assert data["max_rel_diff"] == w.worst("torch").agreement["torch"].max_rel_err > 0
