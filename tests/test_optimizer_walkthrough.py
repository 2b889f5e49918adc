"""``crossgrad example --optimizer NAME --steps N``: the worked example through optimizer
steps, its values checked against Adam's formulas, in every format."""

from __future__ import annotations

import json

import numpy as np
import pytest

from crossgrad import optimizer_walkthrough as ow
from crossgrad.cli import main
from crossgrad.reference import worked_example

pytest.importorskip("torch")
pytest.importorskip("optax")


@pytest.fixture(scope="module")
def adam():
    return ow.walk("adam", 2)


def test_adam_step_values_follow_the_formulas(adam):
    first, second = adam.steps
    g1, g2 = first.quantities["g"], second.quantities["g"]
    for k, g in g1.items():
        np.testing.assert_allclose(first.quantities["m"][k], 0.1 * g, rtol=1e-15)
        np.testing.assert_allclose(first.quantities["v"][k], 0.001 * g**2, rtol=1e-15)
        np.testing.assert_allclose(first.quantities["m̂"][k], g, rtol=1e-14)
        # At t = 1, m̂/√v̂ = g/|g|: every entry moves by lr against its gradient's sign.
        np.testing.assert_allclose(first.quantities["update"][k], -1e-3 * np.sign(g), rtol=1e-4)
        m2 = 0.9 * first.quantities["m"][k] + 0.1 * g2[k]
        np.testing.assert_allclose(second.quantities["m"][k], m2, rtol=1e-14)
        np.testing.assert_allclose(second.quantities["m̂"][k], m2 / (1 - 0.9**2), rtol=1e-14)
    assert first.loss == pytest.approx(0.2180, abs=5e-5)  # the document's loss
    assert adam.initial is worked_example.PARAMS
    assert adam.ok
    assert set(adam.agreement) == {"torch", "jax"}


@pytest.mark.parametrize("fmt", ["text", "json", "markdown", "latex"])
def test_every_format(fmt, capsys):
    assert main(["example", "--optimizer", "adam", "--steps", "2", "--format", fmt]) == 0
    out = capsys.readouterr().out
    if fmt == "json":
        data = json.loads(out)
        assert [s["t"] for s in data["steps"]] == [1, 2]
        assert set(data["steps"][0]) >= {"loss", "g", "m", "v", "m̂", "v̂", "update", "θ"}
    elif fmt == "latex":
        assert out.startswith(r"\documentclass{article}")
        assert r"\hat{m}_{W1} = \begin{bmatrix}" in out
        assert out.rstrip().endswith(r"\end{document}")
    elif fmt == "markdown":
        assert "## Step t = 2" in out
        assert r"\hat{v}_{b2}" in out
    else:
        assert "Step t = 2" in out
        assert "m̂ W1" in out
        assert "torch: agrees" in out


@pytest.mark.parametrize("name", ["sgd", "adamw", "rmsprop", "adagrad"])
def test_other_optimizers(name):
    w = ow.walk(name, 1)
    assert set(w.steps[0].quantities) >= {"g", "update", "θ"}
    assert "torch" in w.agreement


def test_usage_errors(capsys):
    assert main(["example", "--steps", "2"]) == 2
    assert "--steps goes with --optimizer" in capsys.readouterr().err
    assert main(["example", "--optimizer", "adam", "--sizes", "2,1"]) == 2
    assert "--sizes: --optimizer walks the document's own network" in capsys.readouterr().err
    with pytest.raises(ValueError, match="steps must be a positive int"):
        ow.walk("adam", 0)
