"""The floor benchmark's parts: that each times what it names, and the committed results file.

No timed assertion: timings on a shared machine say nothing about correctness.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crossgrad import reference
from crossgrad.benchmarks import backends, floor

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
    result = floor.measure([CASE], rounds=1, min_sample_s=0.0, pause_s=0.0, progress=False)
    figures = result["cases"][CASE]
    assert set(figures) >= {"step", "checks", "compute", "params", "rest", "numpy_call"}
    assert figures["rest"] == pytest.approx(
        figures["step"] - figures["checks"] - figures["compute"] - figures["params"]
    )
    assert all(v > 0 for k, v in figures.items() if k != "rest")
    assert "µs per call" in floor.table(result)


def test_the_committed_results_have_every_part():
    result = json.loads(RESULTS.read_text())
    assert list(result["cases"]) == list(floor.CASES)
    for figures in result["cases"].values():
        assert set(figures) == set(floor.PARTS)
    lines = floor.table(result).splitlines()
    assert [line.split()[0] for line in lines[1:]] == list(floor.PARTS)
