"""``crossgrad check --json`` and ``SweepResult.to_dict()``: one JSON object, a stable schema.

Also the options of issue-style real use: ``--hidden-activation``/``--output-activation``,
``--weights``/``--samples``, ``--kinks``, and declined cases.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from crossgrad import testing
from crossgrad.cli import main

SUMMARY_KEYS = {
    "candidate",
    "kind",
    "cases",
    "max_abs_err",
    "max_rel_err",
    "max_err_over_tolerance",
}
CASE_KEYS = {"sizes", "activations", "loss", "reduction", "dtype", "weights", "biases", "x", "y"}
MLP = [
    "--hidden-activation",
    "relu",
    "--output-activation",
    "identity",
    "--loss",
    "half_sse",
    "--reduction",
    "mean",
    "--weights",
    "in_out",
]

GLUE = """
from crossgrad import testing
from realistic import wrap_layer_mlp


def declines_deep(net, params, x, y):
    if net.n_layers > 1:
        raise testing.Unsupported("one layer only")
    return wrap_layer_mlp(net, params, x, y)


def declines_all(net, params, x, y):
    raise testing.Unsupported("not today")


def raises(net, params, x, y):
    return 1 / 0


def asserts_the_architecture(net, params, x, y):
    if set(net.activations[:-1]) - {"relu"} or net.activations[-1] != "identity":
        raise AssertionError(f"drawn {net.activations}")
    return wrap_layer_mlp(net, params, x, y)
"""


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    name = f"glue_{os.getpid()}_{tmp_path.name}".replace("-", "_")
    (tmp_path / f"{name}.py").write_text(GLUE, "utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv("GLUE", name)
    return tmp_path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main(["check", "--trials", "40", "--seed", "2", "--no-progress", "--json", *argv])
    out = capsys.readouterr().out
    report = json.loads(out)  # exactly one JSON object: anything else fails here
    assert isinstance(report, dict)
    return code, report


def _check_schema(report: dict[str, Any]) -> None:
    assert {"ok", "seed", "cases_checked", "cases_declined", "summary", "failure"} <= set(report)
    assert isinstance(report["ok"], bool)
    assert isinstance(report["cases_checked"], int)
    for row in report["summary"]:
        assert set(row) == SUMMARY_KEYS
    failure = report["failure"]
    if failure is not None:
        assert set(failure["case"]) >= CASE_KEYS
        assert {"wrong", "hints", "self_consistent", "error"} <= set(failure)
        for hint in failure["hints"]:
            assert set(hint) == {"code", "text"}
            assert hint["code"] in testing.CODES


def test_a_correct_implementation_gives_ok_and_exit_0(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = _run(capsys, "--impl", "realistic:wrap_layer_mlp", *MLP)
    assert code == 0
    _check_schema(report)
    assert report["ok"] is True
    assert report["seed"] == 2
    assert report["cases_checked"] == 40
    assert report["failure"] is None
    assert {row["kind"] for row in report["summary"]} == {"loss", "W", "b"}
    assert all(row["max_err_over_tolerance"] <= 1 for row in report["summary"])


def test_a_failure_gives_the_case_the_wrong_arrays_and_coded_hints(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = _run(capsys, "--impl", "realistic:wrap_layer_mlp_loss_over_outputs", *MLP)
    assert code == 1
    _check_schema(report)
    failure = report["failure"]
    assert report["ok"] is False
    assert failure["wrong"] == ["loss"]
    assert failure["self_consistent"] is False
    assert failure["error"] is None
    codes = [h["code"] for h in failure["hints"]]
    assert codes[0] == "not_own_derivative"
    assert "factor_inverse_n_outputs" in codes
    case = failure["case"]
    assert case["activations"][-1] == "identity"
    assert len(case["weights"]) == len(case["sizes"]) - 1


def test_an_exception_is_reported_in_error(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = _run(capsys, "--impl", f"{os.environ['GLUE']}:raises", *MLP)
    assert code == 1
    _check_schema(report)
    assert "ZeroDivisionError" in report["failure"]["error"]
    assert report["failure"]["hints"] == []


def test_the_restrictions_draw_only_relu_hidden_and_identity_output(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    glue = os.environ["GLUE"]
    code, report = _run(
        capsys, "--impl", f"{glue}:asserts_the_architecture", *MLP, "--depth", "1-4"
    )
    assert (code, report["ok"]) == (0, True), report["failure"]


def test_declined_cases_are_counted_and_all_declined_exits_2(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    glue = os.environ["GLUE"]
    code, report = _run(capsys, "--impl", f"{glue}:declines_deep", *MLP)
    assert code == 0
    assert report["cases_declined"] > 0
    assert report["declined"] == {"one layer only": report["cases_declined"]}
    smallest = ["--depth", "1", "--width", "1", "--batch", "1"]  # (cheaper to draw, all declined)
    code, report = _run(capsys, "--impl", f"{glue}:declines_all", *MLP, *smallest)
    assert code == 2
    assert report["cases_checked"] == 0
    assert "declined every case" in report["error"]
    command = ["check", "--trials", "5", "--no-progress", "--impl", f"{glue}:declines_all"]
    assert main([*command, *smallest]) == 2
    assert "declined every case" in capsys.readouterr().err


def test_kinks_avoid_lets_a_tie_splitting_relu_pass(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = _run(
        capsys, "--impl", "realistic:wrap_layer_mlp_tie_split", *MLP, "--kinks", "only"
    )
    assert code == 1
    assert [h["code"] for h in report["failure"]["hints"]] == ["kink_convention"]
    assert "--kinks avoid" in report["failure"]["hints"][0]["text"]
    code, report = _run(
        capsys, "--impl", "realistic:wrap_layer_mlp_tie_split", *MLP, "--kinks", "avoid"
    )
    assert (code, report["ok"]) == (0, True)


def test_the_textbook_in_columns(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = _run(
        capsys,
        "--impl",
        "realistic:column_sigmoid",
        "--samples",
        "columns",
        "--activation",
        "sigmoid",
        "--loss",
        "half_sse",
        "--reduction",
        "mean",
    )
    assert (code, report["ok"]) == (0, True)


@pytest.mark.parametrize(
    "argv",
    [
        ["--weights", "in_out"],  # without --impl
        [
            "--impl",
            "realistic:wrap_layer_mlp",
            "--output-activation",
            "identity",
            "--loss",
            "binary_cross_entropy",
        ],
        ["--impl", "realistic:wrap_layer_mlp", "--kinks", "only", "--activation", "tanh"],
        ["--kinks", "sometimes"],
        ["--samples", "diagonal"],
    ],
)
def test_contradictions_are_usage_errors(
    in_tmp: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    argv = ["check", "--trials", "3", "--no-progress", *argv]
    if "sometimes" in argv or "diagonal" in argv:  # refused by argparse itself
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
    else:
        assert main(argv) == 2


def test_sweep_result_to_dict_is_strict_json() -> None:
    import realistic

    with pytest.raises(testing.GradientMismatchError) as caught:
        testing.check_implementation(
            realistic.wrap_layer_mlp_transposed,
            weights="in_out",
            width=(2, 3),
            max_examples=20,
            seed=1,
        )
    data = caught.value.failure.to_dict()
    text = json.dumps(data, allow_nan=False)  # inf errors (a shape mismatch) become null
    assert json.loads(text)["hints"][0]["code"] == "transposed"
    result = testing.check_implementation(
        realistic.wrap_layer_mlp,
        weights="in_out",
        hidden_activations="relu",
        output_activation="identity",
        losses="half_sse",
        reductions="mean",
        max_examples=10,
        seed=1,
    )
    report = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    _check_schema(report)
    assert report["cases_checked"] == 10
