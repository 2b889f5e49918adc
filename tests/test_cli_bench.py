"""``crossgrad bench``: options, exit codes, the printed table and the files it writes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from crossgrad.benchmarks import grid
from crossgrad.cli import build_parser, main
from crossgrad.cli.bench import PRESETS, cases_of, grid_of


def test_tiny_run_prints_the_table_and_writes_the_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench"
    args = ["bench", "--grid", "tiny", "--backends", "numpy", "--no-progress", "--out", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    for case in grid("tiny"):
        assert re.search(rf"^{re.escape(case.id)} +numpy ", text, re.MULTILINE)
    assert "GEMM peak" in text
    assert f"wrote {out / 'results.json'}" in text
    data = json.loads((out / "results.json").read_text("utf-8"))
    assert data["settings"]["grid"] == "tiny"
    assert data["settings"]["rounds"] == PRESETS["tiny"].rounds
    assert {r["backend"] for r in data["results"]} == {"numpy"}
    assert (out / "results.csv").read_text("utf-8").startswith("backend,network,batch,dtype,")
    assert (out / "results.png").stat().st_size > 0


def test_threads_and_rounds_are_passed_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["bench", "--grid", "tiny", "--backends", "numpy", "--threads", "1", "--rounds", "1"]
    assert main([*args, "--no-progress", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "results.json").read_text("utf-8"))
    assert data["machine"]["threads"] == 1
    assert data["settings"]["rounds"] == 1
    assert "1 threads for every backend" in capsys.readouterr().out


def test_quick_is_the_quick_grid_without_torch_compile() -> None:
    assert grid_of(build_parser().parse_args(["bench", "--quick"])) == "quick"
    assert "torch.compile" not in PRESETS["quick"].backends
    assert grid_of(build_parser().parse_args(["bench"])) == "full"
    assert "torch.compile" in PRESETS["full"].backends
    assert grid_of(build_parser().parse_args(["bench", "--grid", "tiny"])) == "tiny"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--backends", "numpy,mxnet"], "unknown backend(s) 'mxnet'"),
        (["--backends", ","], "unknown backend(s) (none given)"),
        (["--threads", "0"], "expected a positive integer, got 0"),
        (["--rounds", "many"], "expected an integer, got 'many'"),
        (["--grid", "huge"], "invalid choice: 'huge'"),
        (["--quick", "--grid", "full"], "not allowed with argument"),
    ],
)
def test_usage_errors_exit_2_with_a_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["bench", *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_bench_extra_is_a_message_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import crossgrad.cli.bench as bench

    monkeypatch.setattr(bench, "installed", lambda module: module != "matplotlib")
    assert main(["bench", "--grid", "tiny", "--out", str(tmp_path)]) == 2
    assert "needs matplotlib: pip install 'crossgrad[bench]'" in capsys.readouterr().err
    assert not (tmp_path / "results.json").exists()


def test_python_dash_m_crossgrad_benchmarks_is_crossgrad_bench() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "crossgrad.benchmarks", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    assert "usage: crossgrad bench" in done.stdout
    assert "--quick" in done.stdout


def test_case_times_just_those_cases_in_order_each_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = ["6-5-3/b4/float64/tanh", "4-3-2/b1/float32/sigmoid"]
    args = ["bench", "--case", cases[0], "--case", cases[1], "--case", cases[0]]
    args += ["--backends", "reference,numpy", "--rounds", "1", "--no-progress"]
    assert main([*args, "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    for case in cases:
        for backend in ("reference", "numpy"):
            assert re.search(rf"^{re.escape(case)} +{backend} ", text, re.MULTILINE)
    data = json.loads((tmp_path / "results.json").read_text("utf-8"))
    assert data["settings"]["grid"] == "custom"
    assert data["settings"]["rounds"] == 1
    timed = [f"{c['network']}/b{c['batch']}/{c['dtype']}/{c['activation']}" for c in data["cases"]]
    assert timed == cases
    assert [(r["backend"], r["activation"]) for r in data["results"]] == [
        ("reference", "tanh"), ("numpy", "tanh"), ("reference", "sigmoid"), ("numpy", "sigmoid"),
    ]  # fmt: skip
    assert (tmp_path / "results.png").stat().st_size > 0


def test_case_uses_the_full_grids_fairness_rules() -> None:
    args = build_parser().parse_args(["bench", "--case", "6-5-3/b4/float64/tanh"])
    assert grid_of(args) == "custom"
    assert PRESETS["custom"][:4] == PRESETS["full"][:4]  # rounds, sample, pause, GEMM size
    assert [c.id for c in cases_of(args)] == ["6-5-3/b4/float64/tanh"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--case", "784-10/b2/float32"], "expected SIZES/bBATCH/DTYPE/ACTIVATION, e.g. 784-"),
        (["--case", "784-9-3/b2/float32/swish"], "ACTIVATION must be one of sigmoid, tanh, relu"),
        (["--case", "784-10/b2/float32/relu"], "784-10 has no hidden layer for ACTIVATION 'relu'"),
        (["--case", "784-10/2/float32/relu"], "the batch must be 'b' and a positive integer"),
        (["--case", "784/b2/float32/relu"], "SIZES must be two or more positive layer widths"),
        (["--case", "784-10/b2/int8/relu"], "DTYPE must be one of float32, float64"),
        (["--case", "4-3-2/b1/float64/relu", "--grid", "tiny"], "not allowed with argument"),
        (["--case", "4-3-2/b1/float64/relu", "--quick"], "not allowed with argument"),
    ],
)
def test_a_bad_case_is_a_usage_error(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["bench", *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--case" in err
    assert message in err
