"""``crossgrad example``: the walk-through, ``--json``, markdown and latex, exit codes."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from typing import Any

import pytest

from crossgrad import adapters
from crossgrad.cli import main
from crossgrad.reference import Network, Params, backprop, worked_example

FRAMEWORKS = [b for b in ("torch", "jax") if b in adapters.available()]
needs_frameworks = pytest.mark.skipif(
    FRAMEWORKS != ["torch", "jax"], reason="needs torch and jax (pip install 'crossgrad[all]')"
)


@needs_frameworks
def test_the_walkthrough_exits_0_despite_the_errata(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["example"]) == 0
    out = capsys.readouterr().out
    heads = ["z₁ = ", "a₁ = ", "z₂ = ", "ŷ = ", "L = ", "δ₂ = ", "∂L/∂W₂ = ", "W₂' = ", "b₂' = "]
    heads += ["δ₁ = ", "∂L/∂W₁ = ", "W₁' = ", "b₁' = "]
    positions = [out.index("\n" + head) for head in heads]
    assert positions == sorted(positions)  # in the document's order
    assert out.count("torch, jax agree (worst rel. diff") == len(worked_example.QUANTITIES)
    assert "η = 0.1: not printed in the document; inferred from its updates" in out
    n = len(worked_example.PRINTED)
    assert f"Printed figures: {n} compared, {n - 5} agree" in out
    assert "a1[0] printed 0.482" in out
    assert "Backends: torch and jax agree with the reference on all 15 steps" in out


@needs_frameworks
def test_json_has_every_figure_and_the_backends(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["example", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    figures = data["figures"]
    assert [(f["quantity"], tuple(f["index"]), f["printed"]) for f in figures] == [
        (p.quantity, p.index, p.printed)
        for q in worked_example.QUANTITIES
        for p in worked_example.PRINTED
        if p.quantity == q
    ]
    for f in figures:
        assert f["agrees"] == (abs(float(f["printed"]) - f["computed"]) <= f["unit"] * (1 + 1e-9))
    assert sum(not f["agrees"] for f in figures) == 5
    assert set(data["backends"]) == {"torch", "jax"}
    assert all(b["agrees"] for b in data["backends"].values())
    assert data["backends_agree"] is True
    assert data["lr"] == 0.1


@pytest.mark.parametrize("fmt", ["markdown", "latex"])
@needs_frameworks
def test_a_teachers_worked_example(fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["example", "--format", fmt, "--sizes", "2,2,1", "--activation", "tanh"]
    assert main([*argv, "--loss", "half_sse", "--seed", "3", "--lr", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "a 2-2-1 network (seed 3)" in out
    assert r"\eta = 0.5" in out
    assert r"(\hat{y} - y) \circ \tanh'(z_{2})" in out
    assert "torch, jax agree with it" in out
    if fmt == "latex":
        assert out.startswith(r"\documentclass{article}")
    else:
        assert out.startswith("# ")


def test_reference_only_with_numeric_and_per_layer_activations(
    capsys: pytest.CaptureFixture[str],
) -> None:
    if "numeric" not in adapters.available():
        pytest.skip("the numeric adapter is not there")
    argv = ["example", "--sizes", "3,2,2", "--activation", "relu,sigmoid", "--backends", "numeric"]
    assert main([*argv, "--loss", "binary_cross_entropy"]) == 0
    out = capsys.readouterr().out
    assert "activations relu, sigmoid" in out
    assert "numeric agree" in out


class _Wrong:
    def backprop(self, net: Network, params: Params, x: Any, y: Any) -> Any:
        ref = backprop(net, params, x, y)
        return dataclasses.replace(ref, loss=ref.loss * (1 + 1e-6))

    name = "torch"


def test_a_disagreeing_backend_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(adapters, "get", lambda name: adapters.protocol.as_backend(_Wrong()))
    assert main(["example", "--backends", "torch"]) == 1
    out = capsys.readouterr().out
    assert "DISAGREE: torch" in out
    assert "Backends: DISAGREEMENT on loss" in out


def test_a_missing_framework_exits_2_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "jax", None)  # `import jax` now fails
    assert main(["example"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "pip install 'crossgrad[jax]'" in captured.err
    assert "--backends torch" in captured.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--seed", "3"], "--seed is for a network of your own: give its --sizes too"),
        (["--lr", "0.5", "--loss", "mse"], "--loss, --lr are for a network of your own"),
        (["--sizes", "2,2,1", "--activation", "tanh,tanh,tanh"], "3 names"),
        (["--sizes", "2,1", "--activation", "tanh", "--loss", "binary_cross_entropy"], "sigmoid"),
        (
            ["--optimizer", "adam", "--backends", "torch,numeric"],
            "--backends with --optimizer must name training backends (torch, jax), got numeric",
        ),
    ],
)
def test_usage_errors_found_after_parsing(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["example", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("crossgrad example: error: ")
    assert message in err


@pytest.mark.parametrize(
    "argv",
    [
        ["--sizes", "2"],
        ["--sizes", "2,x,1"],
        ["--sizes", "2,0,1"],
        ["--activation", "swish"],
        ["--loss", "hinge"],
        ["--lr", "0"],
        ["--lr", "nan"],
        ["--seed", "-1"],
        ["--digits", "18"],
        ["--format", "html"],
        ["--json", "--format", "markdown"],
        ["--backends", "tensorflow"],
    ],
)
def test_bad_options_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["example", *argv])
    assert exc.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


@needs_frameworks
def test_the_console_command_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "crossgrad", "example", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["figures"]) == len(worked_example.PRINTED)


def test_a_learning_rate_near_the_float_limit_runs_without_a_warning(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # lr·S of the update's error scale overflows: no bound there, and no RuntimeWarning (an
    # error in this test run).
    assert main(["example", "--sizes", "2,2,1", "--lr", "1e308", "--backends", "numeric"]) == 0
    assert "η = 1e+308" in capsys.readouterr().out
