"""The check-speed benchmark's parts: the drawn cases, the anchors' verdicts, the results file.

No timed assertion: timings on a shared machine say nothing about correctness.
"""

from __future__ import annotations

import concurrent.futures
import importlib
import json
import statistics
from pathlib import Path

import numpy as np
import pytest
from user_code import write_module

from crossgrad.benchmarks import check_speed, first_verdict_ab, sweep_ab
from crossgrad.cli import main
from crossgrad.reference import Network, Params, init_params

RESULTS = Path(__file__).parent.parent / "benchmarks" / "results" / "check_speed.json"

SMOOTH = Network((2, 3, 1), ("tanh", "identity"), "half_sse")
X = np.array([[0.3, -0.7], [1.1, 0.4]])
Y = np.array([[0.5], [-0.2]])
# relu at its kink: the first unit's pre-activation is exactly 0 on the first sample
KINK = Network((2, 2, 1), ("relu", "identity"), "half_sse")
KINK_PARAMS = Params(
    [np.array([[1.0, 1.0], [0.5, -0.25]]), np.ones((1, 2))], [np.zeros(2), np.zeros(1)]
)
KINK_X = np.array([[1.0, -1.0]])
KINK_Y = np.array([[0.3]])


RECORDER = """
from crossgrad import reference

SEEN = []


def backprop(net, params, x, y):
    SEEN.append((net, [a.copy() for a in (*params.weights, *params.biases, x, y)]))
    return reference.backprop(net, params, x, y)
"""


def test_drawn_cases_are_float64_copies_of_what_check_draws(in_tmp):
    cases = check_speed.drawn_cases(4)
    assert len(cases) == 4
    for net, params, x, y in cases:
        assert params.dtype == np.float64
        assert x.dtype == y.dtype == np.float64
        assert x.shape[1] == net.sizes[0]
        assert y.shape[1] == net.sizes[-1]
    assert [c[0] for c in cases] == [c[0] for c in check_speed.drawn_cases(4)]
    # The witness: what `crossgrad check --seed 0` hands to a user's function.
    name = write_module(in_tmp, RECORDER)
    argv = ["check", "--impl", f"{name}:backprop", "--seed", "0", "--trials", "4", "--no-progress"]
    assert main(argv) == 0
    seen = importlib.import_module(name).SEEN
    assert len(seen) >= 4
    for (net, params, x, y), (net_seen, arrays) in zip(cases, seen[:4], strict=True):
        assert net == net_seen
        for ours, theirs in zip((*params.weights, *params.biases, x, y), arrays, strict=True):
            np.testing.assert_array_equal(ours, theirs.astype(np.float64), strict=True)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "full"])
def test_gradcheck_passes_smooth_and_flags_a_kink(fast):
    smooth = (SMOOTH, init_params(SMOOTH, seed=0), X, Y)
    kink = (KINK, KINK_PARAMS, KINK_X, KINK_Y)
    # Each case on its own: a count over both would pass if the verdicts were swapped.
    assert check_speed.gradcheck_rate([smooth], fast, progress=False)[1] == 0
    assert check_speed.gradcheck_rate([kink], fast, progress=False)[1] == 1


def test_check_grads_passes_smooth_and_flags_a_kink():
    pytest.importorskip("jax")
    smooth = (SMOOTH, init_params(SMOOTH, seed=0), X, Y)
    kink = (KINK, KINK_PARAMS, KINK_X, KINK_Y)
    assert check_speed.check_grads_rate([smooth], progress=False)[1] == 0
    assert check_speed.check_grads_rate([kink], progress=False)[1] == 1


@pytest.mark.parametrize(
    "loss", ["half_sse", "mse", "binary_cross_entropy", "softmax_cross_entropy"]
)
def test_the_jax_anchor_computes_the_reference_loss(loss):
    jax = pytest.importorskip("jax")
    from crossgrad.reference import LOSSES
    from crossgrad.reference import loss as reference_loss

    out = LOSSES[loss].output_activation or "identity"
    net = Network((2, 3, 3), ("tanh", out), loss, "sum")
    params = init_params(net, seed=1)
    y = np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
    with jax.enable_x64(True):
        got = check_speed._jax_loss(net)(list(params.weights), list(params.biases), X, y)
    np.testing.assert_allclose(float(got), reference_loss(net, params, X, y), rtol=1e-13)


def test_the_committed_results_have_every_figure():
    result = json.loads(RESULTS.read_text())
    assert result["machine"]["cores"] >= 1
    for name in ("torch,jax", "impl"):
        first = result[name]["first_verdict_seconds"]
        assert first["off"] > 0
        assert first["cold"] > 0
        assert first["warm"] > 0
        assert result[name]["cases_per_second"] > 0
        assert result[name]["cases_per_second_all_cores"] > 0
        assert result[name]["command_1000_trials_seconds"] > first["warm"]
    anchors = result["anchors_networks_per_second"]
    for name in ("crossgrad crosscheck", "torch gradcheck fast_mode", "torch gradcheck full",
                 "jax check_grads"):  # fmt: skip
        assert anchors[name] > 0
    draw = result["draw_milliseconds"]
    assert 0 < draw["one_integer"] < draw["case_in_a_sweep"] < draw["case"]
    table = check_speed.table(result)
    assert f"{result['impl']['cases_per_second']:.0f}" in table
    assert f"{result['impl']['cases_per_second_all_cores']:.0f}" in table
    assert f"{draw['case']:.2f} ms per example" in table
    assert "torch gradcheck full" in table
    # (Not below the warm first verdict any more: the command imports JAX in a process of
    # its own while it imports torch, so a warm verdict can take less than both imports.)
    assert result["import_seconds"] > 0
    assert f"importing torch and jax in a new process: {result['import_seconds']:.1f}s" in table


def test_draw_cost_times_the_generate_phase_alone():
    cost = check_speed.draw_cost(examples=20)
    assert set(cost) == {"case", "case_in_a_sweep", "one_integer"}
    assert all(v > 0 for v in cost.values())


def test_import_seconds_times_a_new_process():
    assert 0 < check_speed.import_seconds(["json"]) < check_speed.import_seconds(["json", "numpy"])


def test_the_committed_side_by_side_first_verdicts_are_whole() -> None:
    result = json.loads((RESULTS.parent / "first_verdict_ab.json").read_text())
    rounds = result["rounds"]
    for side in first_verdict_ab.SIDES:
        r = result[side]
        for how in ("cold", "warm"):
            assert len(r["seconds"][how]) == rounds
            assert r["median"][how] == statistics.median(r["seconds"][how])
        assert r["median"]["warm"] < r["median"]["cold"]
    table = first_verdict_ab.table(result)
    assert f"{result['after']['median']['warm']:.1f}s" in table
    assert f"{rounds} rounds, alternating" in table


def test_a_side_by_side_run_refuses_an_install_whose_check_fails(tmp_path: Path) -> None:
    broken = tmp_path / "install"
    (broken / "crossgrad").mkdir(parents=True)
    (broken / "crossgrad" / "__init__.py").write_text("raise ImportError('not this one')\n")
    with pytest.raises(RuntimeError, match="not this one"):
        check_speed.first_verdict(first_verdict_ab.OPTIONS, tmp_path / "cache", broken)


def test_the_json_comes_with_its_plot(tmp_path: Path, capsys) -> None:
    result = json.loads(RESULTS.read_text())
    path = tmp_path / "figures.json"
    text = check_speed.table(result)
    assert check_speed.print_and_save(text, result, path, check_speed.plot) == 0
    assert json.loads(path.read_text()) == result
    assert path.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert capsys.readouterr().out == text + "\n"
    committed = RESULTS.with_suffix(".png")  # the committed figures' plot, beside them
    assert committed.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_side_by_side_runs_come_with_their_plot(tmp_path: Path) -> None:
    committed = RESULTS.parent / "first_verdict_ab.json"
    first_verdict_ab.plot(json.loads(committed.read_text()), tmp_path / "ab.png")
    assert (tmp_path / "ab.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert committed.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name", ["sweep_ab.json", "impl_ahead_ab.json", "draws_ab.json"])
def test_the_committed_side_by_side_sweeps_are_whole(tmp_path: Path, name: str) -> None:
    committed = RESULTS.parent / name
    result = json.loads(committed.read_text())
    for side in sweep_ab.SIDES:
        r = result[side]
        for kind in sweep_ab.KINDS:
            assert len(r["cases_per_second"][kind]) == result["rounds"]
            assert r["median"][kind] == statistics.median(r["cases_per_second"][kind])
    table = sweep_ab.table(result)
    ratio = result["after"]["median"]["impl"] / result["before"]["median"]["impl"]
    assert f"{ratio:.2f}x" in table
    assert f"{result['rounds']} rounds, alternating" in table
    sweep_ab.plot(result, tmp_path / "ab.png")
    assert (tmp_path / "ab.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_side_by_side_sweep_runs_each_install_in_turn(tmp_path: Path) -> None:
    # An empty install directory: the crossgrad under test, the same on both sides.
    installs = {"before": tmp_path, "after": tmp_path}
    result = sweep_ab.measure(installs, 1, 20, progress=False, kinds=["impl"])
    for side in sweep_ab.SIDES:
        assert result[side]["install"] == str(tmp_path)
        (rate,) = result[side]["cases_per_second"]["impl"]
        assert result[side]["median"] == {"impl": rate}
        assert rate > 0
    broken = tmp_path / "broken"
    (broken / "crossgrad").mkdir(parents=True)
    (broken / "crossgrad" / "__init__.py").write_text("raise ImportError('not this one')\n")
    with pytest.raises(RuntimeError, match="not this one"):
        sweep_ab.cases_per_second(broken, "impl", 20)


def test_the_all_cores_rate_sweeps_over_a_pool_of_processes(monkeypatch) -> None:
    from crossgrad import reference, testing

    executors = []
    sweep = testing.sweep

    def recording(*args, **kwargs):
        executors.append(kwargs.get("executor"))
        return sweep(*args, **kwargs)

    monkeypatch.setattr(testing, "sweep", recording)
    rate = check_speed.cases_per_second_all_cores(20, impl=reference.backprop, depth=1)
    assert rate > 0
    assert len(executors) == 2  # the warm-up, then the timed sweep, on the same pool
    assert executors[0] is executors[1]
    assert isinstance(executors[0], concurrent.futures.ProcessPoolExecutor)
