"""The floor benchmark's parts: that each times what it names, and the committed results file.

No timed assertion: timings on a shared machine say nothing about correctness.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from crossgrad import reference
from crossgrad.adapters import numpy_backend
from crossgrad.benchmarks import backends, floor
from crossgrad.benchmarks.cases import parse_case

RESULTS = Path(__file__).parent.parent / "benchmarks" / "results" / "floor.json"
CASE = "4-3-2/b1/float64/sigmoid"


def test_the_parts_time_the_fast_paths_of_one_step():
    parts = floor._parts(CASE)
    expected = {"step", "checks", "compute", "params", "numpy_call"}
    if backends.available()["jax.jit"] is None:
        expected.add("jax.jit")
    assert set(parts) == expected
    x, y, single, ws, flat = parts["checks"].run()
    assert flat is not None  # the params train_step made: the one-buffer path of a training loop
    assert (single, ws.batch) == (False, 1)
    made = parts["params"].run()  # the params the timed step fed back, through the constructor
    assert made.sizes == (4, 3, 2)
    loss = parts["compute"].run()  # the forward pass and the loss of those params on that batch
    assert loss == pytest.approx(reference.backprop(ws.net, made, x, y).loss, rel=1e-12, abs=0)


def test_a_short_run_gives_every_part_in_seconds():
    result = floor.measure(
        [CASE], rounds=1, min_sample_s=0.0, pause_s=0.0, progress=False, large_cases=()
    )
    assert "products" not in result
    figures = result["cases"][CASE]
    assert set(figures) >= {"step", "checks", "compute", "params", "rest", "numpy_call"}
    assert figures["rest"] == pytest.approx(
        figures["step"] - figures["checks"] - figures["compute"] - figures["params"]
    )
    assert all(v > 0 for k, v in figures.items() if k != "rest")
    assert "µs per call" in floor.table(result)


SMALL = "64-128-10/b32/float32/tanh"  # the products' code on a case quick enough for a test


def _close(got: np.ndarray, left: np.ndarray, right: np.ndarray) -> None:
    """``got`` is the float32 product ``left @ right``, within a few float32 roundings of
    each term: ``|got − left·right| ≤ 1e-5·(|left|·|right|)`` (1e-5 ≈ 128 float32 ulps)."""
    left64, right64 = left.astype(np.float64), right.astype(np.float64)
    error = np.abs(got.astype(np.float64) - (left64 @ right64).reshape(got.shape))
    assert (error <= 1e-5 * (np.abs(left64) @ np.abs(right64)).reshape(got.shape)).all()


def test_the_products_are_the_steps_own_matrix_products():
    torch = pytest.importorskip("torch")
    problem = backends.make_problem(parse_case(SMALL))
    net, x = problem.net, problem.x
    grads, weight_grads, bias_grads = numpy_backend.layout(net.sizes, x.dtype)
    with backends.frameworks_configured():
        parts = floor._products(SMALL, problem, (weight_grads, bias_grads))
    assert set(parts) == set(floor.PRODUCT_PARTS)
    ws = numpy_backend.workspace(net, x.shape[0], x.dtype)
    for name in ("numpy products", "torch products"):
        for array in (*ws.zs, *ws.deltas[:-1], grads):
            array.fill(np.nan)  # nothing left over from the step: each product writes anew
        parts[name].run()
        a = [x, *ws.activations[1:-1]]
        for l, W in enumerate(problem.params.weights):
            delta = ws.deltas[l]
            _close(ws.zs[l], a[l], W.T)
            _close(weight_grads[l], delta.T, a[l])
            _close(bias_grads[l], np.ones((1, len(delta)), delta.dtype), delta)
        assert np.isfinite(ws.deltas[0]).all()  # δ_1 = δ_2 W_2, written by the products
    assert torch.from_numpy(ws.zs[0]).data_ptr() == ws.zs[0].ctypes.data  # shared memory


def test_a_short_run_times_the_steps_and_their_products():
    pytest.importorskip("torch")
    result = floor.measure(
        [], rounds=1, min_sample_s=0.0, pause_s=0.0, progress=False, large_cases=[SMALL]
    )
    figures = result["products"][SMALL]
    assert set(figures) == set(floor.PRODUCT_PARTS)
    assert all(v > 0 for v in figures.values())
    assert result["settings"]["threads"] >= 1
    assert floor.table(result).splitlines()[0].split()[:3] == ["ms", "per", "call"]


def test_the_committed_results_have_every_part():
    result = json.loads(RESULTS.read_text())
    assert list(result["cases"]) == list(floor.CASES)
    for figures in result["cases"].values():
        assert set(figures) == set(floor.PARTS)
    assert list(result["products"]) == list(floor.LARGE_CASES)
    for figures in result["products"].values():
        assert set(figures) == set(floor.PRODUCT_PARTS)
    lines = floor.table(result).splitlines()
    small = lines[1 : 1 + len(floor.PARTS)]
    assert [line.split()[0] for line in small] == list(floor.PARTS)
    assert [line.split()[0] for line in lines[-len(floor.LARGE_CASES) :]] == list(floor.LARGE_CASES)


def test_the_json_comes_with_its_plot(tmp_path: Path) -> None:
    result = json.loads(RESULTS.read_text())
    path = tmp_path / "floor.json"
    assert floor.print_and_save(floor.table(result), result, path, floor.plot) == 0
    assert path.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    del result["products"]  # a run without torch: the small cases alone
    floor.plot(result, tmp_path / "small.png")
    assert (tmp_path / "small.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert RESULTS.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
