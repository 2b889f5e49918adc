"""What one step of the fast NumPy backend costs on a small network, part by part.

On a network of a few units a ``numpy`` training step is bound by calls, not arithmetic.  This
benchmark times, side by side in one process, the parts of ``numpy_backend.train_step`` on
the small headline cases (the worked example's 4-3-2 at one sample in float64, and 64-128-10
at batch 32 in float32), beside the whole step and beside ``jax.jit``'s step:

- ``step``: the ``numpy`` row of ``crossgrad bench``, ``train_step`` with the params it made
  last fed back in;
- ``checks``: the input checks of that call (``numpy_backend._prepare``, its fast path);
- ``compute``: the forward pass, the loss and the backward pass into the workspace
  (``numpy_backend._gradients``);
- ``params``: ``reference.Params(weights, biases)``, the public constructor every step's
  result goes through;
- ``rest``: ``step`` less the three above: the update, the new buffer's views, the results'
  finiteness check and NumPy's error state;
- ``numpy_call``: one NumPy call, ``np.add(z, z, out=t)`` on arrays of the output layer's
  shape, the unit a step is made of;
- ``jax.jit``: the ``jax.jit`` row of ``crossgrad bench`` (when JAX is installed).

Each part is timed as ``crossgrad bench`` times a step, in interleaved rounds (every part
takes one sample of at least ``min_sample_s`` per round, ``jax.jit`` waiting for its queued
steps at the end of each sample) and reported as the median over the rounds, in seconds per
call.

    python -m crossgrad.benchmarks.floor --json benchmarks/results/floor.json
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ..adapters import numpy_backend
from ..reference import Params
from . import backends, timing
from .cases import parse_case
from .runner import platform_info, print_and_save

CASES = ("4-3-2/b1/float64/sigmoid", "64-128-10/b32/float32/sigmoid")
PARTS = ("step", "checks", "compute", "params", "rest", "numpy_call", "jax.jit")


def _parts(case_id: str) -> dict[str, timing.Timed]:
    """The timed parts of one case, each a ``timing.Timed`` (``rest`` is derived, not timed)."""
    problem = backends.make_problem(parse_case(case_id))
    net, x, y, lr = problem.net, problem.x, problem.y, problem.lr
    step = backends.prepare("numpy", problem)
    step.warm_up()
    _, made = numpy_backend.train_step(net, problem.params, x, y, lr)  # the params fed back
    ws = numpy_backend.workspace(net, x.shape[0], x.dtype)
    weights, biases = list(made.weights), list(made.biases)
    z, t = ws.zs[-1].copy(), np.empty_like(ws.zs[-1])
    parts: dict[str, timing.Timed] = {
        "step": step,
        "checks": timing.Product(lambda: numpy_backend._prepare(net, made, x, y)),
        "compute": timing.Product(
            lambda: numpy_backend._gradients(
                ws, made, x, y, ws.zs, ws.activations, ws.weight_grads, ws.bias_grads, lr
            )
        ),
        "params": timing.Product(lambda: Params(weights, biases)),
        "numpy_call": timing.Product(lambda: np.add(z, z, out=t)),
    }
    if backends.available()["jax.jit"] is None:
        jitted = backends.prepare("jax.jit", problem)
        jitted.warm_up()
        parts["jax.jit"] = jitted  # run() per step, sync() once per sample, as in the benchmark
    return parts


def measure(
    cases: Sequence[str] = CASES,
    rounds: int = 15,
    min_sample_s: float = 0.05,
    pause_s: float = 0.15,
    progress: bool = True,
) -> dict[str, Any]:
    """The median seconds per call of every part of every case, as a JSON-ready dict.

    Timed as ``crossgrad bench`` times its steps (``timing.calibrate`` and ``timing.measure``:
    interleaved rounds, the starting part rotating, ``pause_s`` between samples; the defaults
    are the full benchmark's)."""
    result: dict[str, Any] = {
        "machine": platform_info(),
        "settings": {"rounds": rounds, "min_sample_s": min_sample_s, "pause_s": pause_s},
        "cases": {},
    }
    bar = tqdm(total=len(cases), desc="floor", disable=not progress, file=sys.stderr)
    with backends.frameworks_configured():
        for case_id in cases:
            parts = _parts(case_id)
            numbers = {name: timing.calibrate(part, min_sample_s) for name, part in parts.items()}
            timings = timing.measure(parts, numbers, rounds, pause_s)
            medians = {name: t.median for name, t in timings.items()}
            medians["rest"] = (
                medians["step"] - medians["checks"] - medians["compute"] - medians["params"]
            )
            result["cases"][case_id] = medians
            bar.update()
    bar.close()
    return result


def table(result: dict[str, Any]) -> str:
    """The medians as a plain-text table, in microseconds per call."""
    cases = list(result["cases"])
    lines = [f"{'µs per call':<12}" + "".join(f"{c:>32}" for c in cases)]
    for part in PARTS:
        if all(part in result["cases"][c] for c in cases):
            row = "".join(f"{1e6 * result['cases'][c][part]:>32.1f}" for c in cases)
            lines.append(f"{part:<12}{row}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m crossgrad.benchmarks.floor", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds (15)")
    parser.add_argument("--json", type=Path, help="write the figures to this JSON file")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    result = measure(rounds=args.rounds, progress=not args.no_progress)
    return print_and_save(table(result), result, args.json)


if __name__ == "__main__":
    sys.exit(main())
