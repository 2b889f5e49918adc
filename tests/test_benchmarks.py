"""The benchmark's structure: grid, FLOP count, each backend's step, the report and its files.

No timed assertion: timings on a shared machine say nothing about correctness.
"""

from __future__ import annotations

import csv
import importlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

from crossgrad.adapters.tolerance import default_rtol, error_scale
from crossgrad.benchmarks import (
    BACKENDS,
    RESULT_KEYS,
    available,
    frameworks_configured,
    grid,
    make_problem,
    parse_case,
    prepare,
    report,
    run_benchmark,
    step_flops,
)
from crossgrad.benchmarks import timing as timing_module
from crossgrad.benchmarks.backends import Step
from crossgrad.benchmarks.cases import Case
from crossgrad.reference import Params, backprop, sgd_step

RUNNABLE = [name for name, reason in available().items() if reason is None]
FAST = [name for name in RUNNABLE if name != "torch.compile"]  # compiling takes seconds


def test_step_flops_of_the_worked_example_by_hand() -> None:
    # Layer 1 (4 -> 3): forward 2·1·4·3 = 24, ∂L/∂W 24, no δ below it; + b 3, Σδ 3;
    # update 2·(12 + 3) = 30.  Layer 2 (3 -> 2): 12 + 12 + δ 12; 2 + 2; update 2·(6 + 2) = 16.
    assert step_flops((4, 3, 2), 1) == (24 + 24 + 3 + 3 + 30) + (12 + 12 + 12 + 2 + 2 + 16)


def test_step_flops_of_the_mnist_network_by_hand() -> None:
    b = 256
    layer1 = 2 * 2 * b * 784 * 1024 + 2 * b * 1024 + 2 * (784 * 1024 + 1024)
    layer2 = 3 * 2 * b * 1024 * 1024 + 2 * b * 1024 + 2 * (1024 * 1024 + 1024)
    layer3 = 3 * 2 * b * 1024 * 10 + 2 * b * 10 + 2 * (1024 * 10 + 10)
    assert step_flops((784, 1024, 1024, 10), b) == layer1 + layer2 + layer3


@pytest.mark.parametrize("kind", ["full", "quick", "tiny"])
def test_grids_have_unique_readable_ids_in_both_dtypes(kind: str) -> None:
    cases = grid(kind)
    ids = [c.id for c in cases]
    assert len(set(ids)) == len(ids)
    assert {c.dtype for c in cases} == {"float32", "float64"}
    assert all(c.id == f"{c.network}/b{c.batch}/{c.dtype}/{c.activations[0]}" for c in cases)
    assert all(parse_case(c.id).id == c.id for c in cases)


def test_full_grid_holds_the_headline_cases_with_each_activation_and_the_sweeps() -> None:
    cases = {c.id: c for c in grid("full")}
    for dtype in ("float32", "float64"):
        for activation in ("sigmoid", "tanh", "relu"):
            example = cases[f"4-3-2/b1/{dtype}/{activation}"]
            assert example.activations == (activation, "sigmoid")  # the document's output layer
            assert example.loss == "half_sse"
            for network, batch in (("64-128-10", 32), ("784-1024-1024-10", 256)):
                classifier = cases[f"{network}/b{batch}/{dtype}/{activation}"]
                assert classifier.activations[-1] == "identity"
                assert set(classifier.activations[:-1]) == {activation}
                assert classifier.loss == "softmax_cross_entropy"
                assert classifier.group == "headline"
    groups = {c.group for c in cases.values()}
    assert groups == {"headline", "batch sweep", "width sweep"}
    assert {c.activation for c in cases.values() if c.group != "headline"} == {"relu"}


@pytest.mark.parametrize(
    "text",
    [
        "784-1024-1024-10/b256/float32/sigmoid",
        "64-128-10/b32/float64/tanh",
        "4-3-2/b1/float64/relu",
    ],
)
def test_a_grid_id_parses_to_the_grids_case(text: str) -> None:
    (case,) = [c for c in grid("full") if c.id == text]
    parsed = parse_case(text)
    assert (parsed.sizes, parsed.activations, parsed.loss, parsed.batch, parsed.dtype) == (
        case.sizes, case.activations, case.loss, case.batch, case.dtype,
    )  # fmt: skip


def test_a_custom_id_is_a_classifier() -> None:
    case = parse_case(" 100-50-20-3/b7/float64/tanh ")
    assert case.sizes == (100, 50, 20, 3)
    assert case.activations == ("tanh", "tanh", "identity")
    assert (case.loss, case.batch, case.dtype, case.group) == (
        "softmax_cross_entropy", 7, "float64", "custom",
    )  # fmt: skip
    assert case.id == "100-50-20-3/b7/float64/tanh"
    no_hidden = parse_case("5-2/b1/float32/identity")  # no hidden layer: the output's
    assert no_hidden.activations == ("identity",)
    assert parse_case(no_hidden.id).id == no_hidden.id == "5-2/b1/float32/identity"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("784-1024-10/b256/float32", "got '784-1024-10/b256/float32' (3 part(s)"),
        ("784-1024-10/b256/float32/relu/x", "(5 part(s)"),
        ("784/b256/float32/relu", "SIZES must be two or more positive layer widths"),
        ("784-0-10/b256/float32/relu", "got '784-0-10'"),
        ("784-x-10/b256/float32/relu", "got '784-x-10'"),
        ("784--10/b256/float32/relu", "got '784--10'"),
        ("784-10/256/float32/relu", "the batch must be 'b' and a positive integer"),
        ("784-10/b0/float32/relu", "got 'b0'"),
        ("784-10/b-3/float32/relu", "got 'b-3'"),
        ("784-10/b2/float16/relu", "DTYPE must be one of float32, float64, got 'float16'"),
        ("784-10-3/b2/float32/swish", "ACTIVATION must be one of sigmoid, tanh, relu, got 'sw"),
        ("784-10/b2/float32/relu", "784-10 has no hidden layer for ACTIVATION 'relu'"),
        ("784-10-3/b2/float32/identity", "ACTIVATION must be one of sigmoid, tanh, relu, got 'id"),
    ],
)
def test_a_malformed_id_is_a_value_error_that_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="expected SIZES/bBATCH/DTYPE/ACTIVATION") as exc:
        parse_case(text)
    assert message in str(exc.value)


def test_unknown_grid_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="grid must be"):
        grid("huge")


def test_problem_is_reproducible_and_matches_the_case() -> None:
    case = grid("tiny")[1]
    a, b = make_problem(case), make_problem(case)
    assert a.params == b.params
    np.testing.assert_array_equal(a.x, b.x)
    assert a.x.shape == (case.batch, case.sizes[0])
    assert a.y.shape == (case.batch, case.sizes[-1])
    assert a.x.dtype == a.y.dtype == a.params.dtype == np.dtype(case.dtype)
    np.testing.assert_array_equal(a.y.sum(axis=1), 1)  # one-hot targets of a classifier


def _check_one_step(backend: str, case: Case) -> None:
    problem = make_problem(case)
    before = Params(
        [W.copy() for W in problem.params.weights], [b.copy() for b in problem.params.biases]
    )
    with frameworks_configured():
        step = prepare(backend, problem)
        step.warm_up()  # the first training step
        got = step.params()

    grads = backprop(problem.net, problem.params, problem.x, problem.y).grads
    expected = sgd_step(problem.params, grads, problem.lr)
    scale = error_scale(problem.net, problem.params, problem.x, problem.y)
    rtol = default_rtol(problem.net, problem.params.dtype)
    eps = float(np.finfo(problem.params.dtype).eps)
    for name, new in got.named().items():
        ref, p, s = expected.named()[name], problem.params.named()[name], scale.named()[name]
        assert new.dtype == ref.dtype, name
        # The gradient's tolerance times lr, plus the rounding of p − lr·g.
        bound = problem.lr * rtol * s + 2 * eps * np.abs(p)
        assert np.all(np.abs(new - ref) <= bound), f"{backend} {case.id} {name}"
    assert problem.params == before  # the benchmark step never writes to its problem


@pytest.mark.parametrize("case", grid("tiny"), ids=lambda c: c.id)
@pytest.mark.parametrize("backend", FAST)
def test_each_backend_takes_the_reference_step(backend: str, case: Case) -> None:
    _check_one_step(backend, case)


@pytest.mark.skipif("torch.compile" not in RUNNABLE, reason="torch is not installed")
# torch's own modules, imported by the compiler, use a deprecated torch.jit API.
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_torch_compile_takes_the_reference_step() -> None:
    _check_one_step("torch.compile", grid("tiny")[0])  # one case: compiling takes seconds


@pytest.mark.parametrize("backend", FAST)
def test_steps_carry_the_params_forward(backend: str) -> None:
    problem = make_problem(grid("tiny")[3])
    with frameworks_configured():
        step = prepare(backend, problem)
        step.warm_up()
        once = step.params()
        step.run()
        step.sync()
        assert step.params() != once


def test_unknown_backend_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="backend must be one of"):
        prepare("tensorflow", make_problem(grid("tiny")[0]))


def _tiny_report(backends: tuple[str, ...] = ("numpy",)) -> report.Report:
    return run_benchmark(
        grid("tiny"),
        backends,
        rounds=3,
        min_sample_s=0.0,
        pause_s=0.0,
        gemm_size=32,
        progress=False,
        grid_name="tiny",
    )


def test_report_has_the_issues_schema() -> None:
    result = _tiny_report(tuple(FAST))
    machine = result["machine"]
    assert machine["threads"] >= 1
    assert set(machine["gemm_gflops"]) == {"float32", "float64"}
    assert all(v > 0 for v in machine["gemm_gflops"].values())
    assert len(result["results"]) == len(grid("tiny")) * len(FAST)
    for r in result["results"]:
        assert tuple(r) == RESULT_KEYS
        assert r["median_s"] > 0
        assert r["spread_s"] >= 0
        assert r["samples_per_s"] == pytest.approx(r["batch"] / r["median_s"])
        flops = step_flops(tuple(int(n) for n in r["network"].split("-")), r["batch"])
        assert r["gflops"] == pytest.approx(flops / r["median_s"] / 1e9)
        assert r["peak_fraction"] == pytest.approx(r["gflops"] / machine["gemm_gflops"][r["dtype"]])
    assert {(c["backend"], c["network"]) for c in result["compile"]} == {
        (r["backend"], r["network"]) for r in result["results"]
    }
    assert result["skipped"] == []


def test_files_written(tmp_path: Path) -> None:
    result = _tiny_report()
    paths = report.write(result, tmp_path / "out")
    assert [p.name for p in paths] == ["results.json", "results.csv", "results.png"]
    data = json.loads(paths[0].read_text("utf-8"))
    assert data["results"] == result["results"]
    assert data["machine"]["gemm_gflops"] == result["machine"]["gemm_gflops"]
    with paths[1].open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == RESULT_KEYS
    assert [float(r["median_s"]) for r in rows] == [r["median_s"] for r in result["results"]]
    assert paths[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_summary_shows_every_result_and_the_goals() -> None:
    result = _tiny_report()
    text = report.summary(result)
    for case in grid("tiny"):
        assert case.id in text
    assert "GEMM peak" in text
    assert (
        "not run: reference, torch, torch.compile, jax.jit (not asked for; see --backends)" in text
    )
    # The tiny grid holds the 4-3-2 float64 case but no jax.jit: its goal cannot be checked.
    assert "Goals" not in text


def test_headline_puts_every_backend_of_a_case_on_one_row() -> None:
    record = {"network": "4-3-2", "batch": 1, "dtype": "float64", "activation": "sigmoid"}
    result = {
        "results": [
            {**record, "backend": "torch", "median_s": 2e-4},
            {**record, "backend": "numpy", "median_s": 3e-5},
            {**record, "activation": "tanh", "backend": "numpy", "median_s": 4e-5},
        ]
    }
    lines = report.headline(result).splitlines()  # type: ignore[arg-type]
    assert lines[0].split() == ["case", "numpy", "torch"]  # in the order of BACKENDS
    assert lines[2].split() == ["4-3-2/b1/float64/sigmoid", "30", "µs", "200", "µs"]
    assert lines[3].split() == ["4-3-2/b1/float64/tanh", "40", "µs", "-"]


def test_goals_compare_throughputs_from_the_same_run() -> None:
    record = {"network": "4-3-2", "batch": 1, "dtype": "float64", "spread_s": 0.0}
    record |= {"activation": "sigmoid"}
    result = {
        "results": [
            record | {"backend": "numpy", "median_s": 2e-5, "samples_per_s": 5e4},
            record | {"backend": "jax.jit", "median_s": 1e-5, "samples_per_s": 1e5},
        ]
    }
    (goal,) = report.goals(result)
    assert (goal["backend"], goal["other"]) == ("numpy", "jax.jit")
    assert goal["value"] == pytest.approx(0.5)
    assert goal["threshold"] == pytest.approx(1 / 1.2)
    assert not goal["met"]


def _mnist(backend: str, activation: str, median_s: float) -> dict[str, object]:
    return {
        "backend": backend, "network": "784-1024-1024-10", "batch": 256, "dtype": "float32",
        "activation": activation, "median_s": median_s, "samples_per_s": 256 / median_s,
    }  # fmt: skip


def test_goals_on_the_mnist_case_per_activation_against_torch_the_best_and_the_reference() -> None:
    result = {
        "results": [
            _mnist("reference", "tanh", 0.05),
            _mnist("numpy", "tanh", 0.02),
            _mnist("torch", "tanh", 0.025),
            _mnist("jax.jit", "tanh", 0.018),
            _mnist("numpy", "relu", 0.02),  # relu: no other backend ran
        ]
    }
    goals = {(g["backend"], g["other"]): g for g in report.goals(result)}
    assert set(goals) == {("numpy", "torch"), ("numpy", "jax.jit"), ("reference", "numpy")}
    assert goals["numpy", "torch"]["value"] == pytest.approx(1.25)
    assert goals["numpy", "torch"]["met"]
    best = goals["numpy", "jax.jit"]  # the fastest other backend
    assert best["value"] == pytest.approx(0.9)
    assert best["met"]  # ≥ 0.9 of the best
    assert "the best other (jax.jit)" in best["text"]
    assert goals["reference", "numpy"]["value"] == pytest.approx(0.4)
    assert not goals["reference", "numpy"]["met"]  # more than 2× slower than numpy


def test_missing_framework_is_skipped_with_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    from crossgrad.benchmarks import backends

    monkeypatch.setattr(
        backends, "available", lambda: dict.fromkeys(BACKENDS) | {"jax.jit": "jax is not installed"}
    )
    result = _tiny_report(("numpy", "jax.jit"))
    assert result["skipped"] == [{"backend": "jax.jit", "reason": "jax is not installed"}]
    assert {r["backend"] for r in result["results"]} == {"numpy"}
    assert "skipped jax.jit: jax is not installed" in report.summary(result)


def test_a_backend_that_fails_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    from crossgrad.benchmarks import backends

    def broken(backend: str, problem: object) -> Step:
        raise RuntimeError("compiler exploded\nwith a long trace")

    monkeypatch.setattr(backends, "prepare", broken)
    result = _tiny_report()
    assert result["results"] == []
    assert {s["reason"] for s in result["skipped"]} == {"RuntimeError: compiler exploded"}
    assert len(result["skipped"]) == len(grid("tiny"))


def test_unknown_backend_or_thread_count_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown backend"):
        run_benchmark(grid("tiny"), ("numpy", "mxnet"), progress=False)
    with pytest.raises(ValueError, match="threads must be at least 1"):
        run_benchmark(grid("tiny"), ("numpy",), threads=0, progress=False)


def test_measure_interleaves_and_rotates() -> None:
    order: list[str] = []

    def step(name: str) -> Step:
        return Step(lambda: order.append(name), lambda: None, lambda: Params([[[1.0]]], [[0.0]]))

    timings = timing_module.measure({n: step(n) for n in "abc"}, dict.fromkeys("abc", 2), 3)
    assert order == list("aabbccbbccaaccaabb")
    assert all(len(t.samples) == 3 for t in timings.values())


def test_timing_median_and_interquartile_spread() -> None:
    t = timing_module.Timing((5.0, 1.0, 3.0, 2.0, 4.0))
    assert t.median == 3.0
    assert t.spread == 2.0  # 4 − 2


def test_limit_threads_sets_and_restores_torch_threads() -> None:
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    with timing_module.limit_threads(1) as settings:
        assert torch.get_num_threads() == 1
        assert settings.threads == 1
        assert all(b["num_threads"] == 1 for b in settings.libraries["blas"])
    assert torch.get_num_threads() == before


def test_crosscheck_throughput_command_writes_table_and_json(tmp_path: Path, capsys) -> None:
    from crossgrad.benchmarks import crosscheck_throughput

    out = tmp_path / "throughput.json"
    argv = ["--networks", "6", "--rounds", "2", "--seed", "3", "--no-progress", "--json", str(out)]
    assert crosscheck_throughput.main(argv) == 0
    text = capsys.readouterr().out
    assert "6 random float64 networks, seed 3, torch threads 1, 2 rounds" in text
    for way in ("crosscheck (one call per network)", "crosscheck_many (a sweep)"):
        assert way in text
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["machine"]["cores"] >= 1
    for way in ("crosscheck", "crosscheck_many"):
        rates = report[way]["rounds_per_second"]
        assert len(rates) == 2
        assert all(r > 0 for r in rates)
        assert report[way]["networks_per_second"] == pytest.approx(float(np.median(rates)))
        assert report[way]["mismatches"] == 0
    assert set(report["stages"]) == {"checks", "reference+scales", "torch", "jax", "comparisons"}
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # and its plot


@pytest.mark.parametrize(
    ("module", "flag"),
    [
        ("crosscheck_throughput", "--networks"),
        ("crosscheck_throughput", "--rounds"),
        ("floor", "--rounds"),
        ("check_speed", "--trials"),
        ("sweep_ab", "--trials"),
        ("first_verdict_ab", "--rounds"),
    ],
)
def test_the_benchmarks_reject_a_count_of_zero(module: str, flag: str, capsys) -> None:
    main = importlib.import_module(f"crossgrad.benchmarks.{module}").main
    sides = ["before", "after"] if module.endswith("_ab") else []  # (the installs, not read)
    with pytest.raises(SystemExit) as raised:
        main([*sides, flag, "0"])
    assert raised.value.code == 2
    assert f"argument {flag}: expected a positive integer, got 0" in capsys.readouterr().err


def test_gemm_peak_is_the_best_rate_seen_in_the_run(monkeypatch) -> None:
    # A machine that is slow when the run starts and fast later: the peak must be the later,
    # higher rate, so that no step is reported above 100% of a peak measured in a slow moment.
    rates = iter([1.0, 1.0, 50.0, 3.0, 7.0, 2.0])

    def drifting(dtype: str, size: int = 0, repeats: int = 5) -> dict[str, float]:
        return {"numpy": next(rates)}

    monkeypatch.setattr(timing_module, "gemm_rates", drifting)
    result = _tiny_report()
    machine = result["machine"]
    # float32 then float64 at the start (1, 1); then after each of the tiny grid's 4 cases.
    assert machine["gemm_measurements"] == {"float32": 3, "float64": 3}
    assert machine["gemm_gflops"] == {"float32": 50.0, "float64": 7.0}
    assert machine["gemm_gflops_by_library"] == {"float32": {"numpy": 50.0},
                                                 "float64": {"numpy": 7.0}}  # fmt: skip
    for r in result["results"]:
        assert r["peak_fraction"] == pytest.approx(r["gflops"] / machine["gemm_gflops"][r["dtype"]])


def test_the_gemm_is_timed_in_each_cases_rounds_beside_its_steps(monkeypatch) -> None:
    measured: list[tuple[list[str], float]] = []
    real_measure = timing_module.measure

    def spying(steps, numbers, rounds, pause_s=0.0, tick=lambda: None):
        timings = real_measure(steps, numbers, rounds, pause_s, tick)
        measured.append((list(steps), timings["gemm"].median))
        return timings

    monkeypatch.setattr(timing_module, "measure", spying)
    result = _tiny_report(("numpy",))
    assert [names for names, _ in measured] == [["numpy", "gemm"]] * len(grid("tiny"))
    for r, (_, gemm_median) in zip(result["results"], measured, strict=True):
        assert r["gemm_gflops_alongside"] == 2 * 32**3 / gemm_median / 1e9
        assert r["alongside_fraction"] == r["gflops"] / r["gemm_gflops_alongside"]
    libraries = result["machine"]["gemm_alongside_library"]
    for dtype, rates in result["machine"]["gemm_gflops_by_library"].items():
        assert libraries[dtype] in rates  # the fastest at the start, so it is installed


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_each_librarys_gemm_product_is_the_product_in_its_dtype(dtype: str) -> None:
    rng = np.random.default_rng(0)  # the operands gemm_product draws
    a = rng.standard_normal((16, 16)).astype(dtype)
    b = rng.standard_normal((16, 16)).astype(dtype)
    with frameworks_configured():
        for library in timing_module.gemm_libraries():
            product = np.asarray(timing_module.gemm_product(library, dtype, 16)())
            assert product.dtype == dtype, library
            np.testing.assert_allclose(product, a @ b, rtol=100 * np.finfo(dtype).eps, atol=0)
    with pytest.raises(ValueError, match="library must be one of numpy, torch, jax, got 'mkl'"):
        timing_module.gemm_product("mkl", "float32")


def test_summary_explains_the_alongside_column() -> None:
    result = _tiny_report()
    text = report.summary(result)
    assert "alongside: the fraction of the GEMM rate timed in the same rounds as the case" in text
    header = next(line for line in text.splitlines() if line.startswith("case "))
    assert re.split(r"\s{2,}", header.strip()) == [
        "case", "backend", "median", "spread", "samples/s", "GFLOP/s", "peak", "alongside",
        "1st step",
    ]  # fmt: skip


def test_print_and_save_prints_and_writes_the_json(tmp_path: Path, capsys) -> None:
    from crossgrad.benchmarks.runner import print_and_save

    path = tmp_path / "deeper" / "figures.json"
    assert print_and_save("the table", {"a": 1.5}, path) == 0
    assert capsys.readouterr().out == "the table\n"
    assert json.loads(path.read_text()) == {"a": 1.5}
    assert print_and_save("again", {"a": 2}, None) == 0
    assert capsys.readouterr().out == "again\n"
    assert not path.with_suffix(".png").exists()  # no plot function, no plot


def test_print_and_save_writes_the_plot_beside_the_json(tmp_path: Path, capsys) -> None:
    from crossgrad.benchmarks.runner import print_and_save

    drawn: list[tuple[dict[str, float], Path]] = []
    path = tmp_path / "figures.json"
    assert print_and_save("table", {"a": 1.5}, path, lambda r, p: drawn.append((r, p))) == 0
    assert drawn == [({"a": 1.5}, tmp_path / "figures.png")]
    print_and_save("table", {"a": 1.5}, None, lambda r, p: drawn.append((r, p)))
    assert len(drawn) == 1  # nothing written, nothing plotted


@pytest.mark.parametrize(
    "name",
    ["results", "check_speed", "floor", "first_verdict_ab", "sweep_ab", "crosscheck_throughput"],
)
def test_every_committed_benchmark_run_has_its_plot(name: str) -> None:
    results = Path(__file__).parent.parent / "benchmarks" / "results"
    assert (results / f"{name}.json").is_file()
    assert (results / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "name", ["check_speed", "floor", "first_verdict_ab", "sweep_ab", "crosscheck_throughput"]
)
def test_json_without_matplotlib_is_a_usage_error_before_any_timing(
    name: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    import importlib

    from crossgrad.benchmarks import timing

    module = importlib.import_module(f"crossgrad.benchmarks.{name}")
    real = timing.installed
    monkeypatch.setattr(timing, "installed", lambda m: m != "matplotlib" and real(m))

    def measure(*args, **kwargs):
        raise AssertionError("measured before the usage error")

    monkeypatch.setattr(module, "measure", measure)
    two_installs = name in ("first_verdict_ab", "sweep_ab")
    installs = [str(tmp_path), str(tmp_path)] if two_installs else []
    with pytest.raises(SystemExit) as raised:
        module.main([*installs, "--json", str(tmp_path / "out.json")])
    assert raised.value.code == 2
    assert "needs matplotlib: pip install 'crossgrad[bench]'" in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()
