"""How fast checking is: ``crossgrad check`` from a fresh process, and cases per second.

Measured, for the backends ``torch,jax`` (both dtypes) and for ``--impl`` with a correct NumPy
implementation (``crossgrad.reference:backprop``, float64):

- ``first_verdict_seconds``: the wall time of ``crossgrad check --trials 100 --seed 0`` in a
  new process (imports included), ``off`` with the cache disabled (``CROSSGRAD_CACHE_DIR=off``:
  every process compiles), ``cold`` with an empty cache directory (a fresh temporary one) and
  ``warm`` after that run filled it;
- ``cases_per_second``: ``testing.sweep(trials=1000, seed=1)`` timed in this process after a
  warm-up sweep, so it counts drawing, checking and Hypothesis' own work, not imports;
  ``cases_per_second_all_cores``: the same over a warm pool of one process per core
  (``sweep(executor=...)``, what ``--workers auto`` runs), the pool's start left out;
- ``command_1000_trials_seconds``: ``crossgrad check --trials 1000 --seed 0``, a new process
  with the warm cache, wall time: beside the warm 100-trial run, what 900 more cases cost the
  command a user runs (JAX in its own process, see ``adapters._process``);
- ``workers_auto_1000_trials_seconds``: the same 1000-trial command with ``--workers auto``,
  wall time;
- ``import_seconds``: the wall time of ``python -c "import torch, jax"`` in a new process,
  what every first verdict with those backends pays before it checks anything;
- ``draw_milliseconds``: what drawing one case costs alone (``draw_cost``): Hypothesis'
  generate phase over ``strategies.cases()`` with an empty test body, per example, and per
  case in the lists of cases a sweep draws, beside the same for one drawn integer, what
  Hypothesis spends on any example.

Anchors, on the same networks (the float64 copies of the first cases that ``crossgrad check``
draws with seed 0): ``torch.autograd.gradcheck`` with ``fast_mode=True`` and with the full
Jacobian, and ``jax.test_util.check_grads`` (reverse mode, order 1), each as networks per
second.  ``crosscheck`` (reference vs torch vs jax) on those networks is timed alongside.

    python -m crossgrad.benchmarks.check_speed --json benchmarks/results/check_speed.json

writes the figures to ``check_speed.json`` and their plot, with the goals, to
``check_speed.png`` beside it.
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ..cli._common import positive_int
from ..reference import Network, Params
from .runner import add_output_options, new_figure, parse_args, platform_info, print_and_save

IMPL = "crossgrad.reference:backprop"
Case = tuple[Network, Params, np.ndarray, np.ndarray]


def _command(*options: str) -> list[str]:
    return [sys.executable, "-m", "crossgrad", "check", "--seed", "0", "--no-progress", *options]


def first_verdict(options: Sequence[str], cache: Path, install: Path | None = None) -> float:
    """Seconds to the verdict of ``crossgrad check --trials 100 --seed 0 OPTIONS``, new process
    (with the crossgrad installed in ``install`` first on ``PYTHONPATH``, if given)."""
    env = {**os.environ, "CROSSGRAD_CACHE_DIR": str(cache)}
    if install is not None:
        env["PYTHONPATH"] = str(install)
    start = time.perf_counter()
    done = subprocess.run(
        _command("--trials", "100", *options), env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        where = "" if install is None else f" from {install}"
        raise RuntimeError(
            f"crossgrad check {' '.join(options)}{where} failed:\n{done.stdout}{done.stderr}"
        )
    return seconds


def cases_per_second(trials: int, **sweep: Any) -> float:
    """Cases per second of a warm ``testing.sweep`` of ``trials`` cases, in this process (or
    over the ``executor=`` given, already warm once the first sweep has run on it)."""
    from .. import testing

    testing.sweep(trials=100, seed=0, **sweep)  # loads every bucket the run will need
    start = time.perf_counter()
    result = testing.sweep(trials=trials, seed=1, **sweep)
    seconds = time.perf_counter() - start
    if not result.ok:
        raise RuntimeError(f"the sweep found a disagreement:\n{result}")
    return result.cases / seconds


def cases_per_second_all_cores(trials: int, **sweep: Any) -> float:
    """``cases_per_second`` over a pool of one process per core (``spawn``, as ``crossgrad
    check --workers auto`` starts them), the pool's start and imports left out."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(os.cpu_count() or 1, mp_context=spawn) as pool:
        return cases_per_second(trials, executor=pool, **sweep)


def drawn_cases(n: int) -> list[Case]:
    """The first ``n`` cases ``crossgrad check --seed 0`` draws, as float64 (anchors need it)."""
    from .. import testing
    from ..reference import backprop

    seen: list[Case] = []

    def record(net: Network, params: Params, x: Any, y: Any) -> Any:
        if len(seen) < n:
            as64 = [[np.asarray(a, np.float64) for a in arrays] for arrays in params]
            weights, biases = [w for w, _ in as64], [b for _, b in as64]
            seen.append((net, Params(weights, biases), np.asarray(x, np.float64),
                         np.asarray(y, np.float64)))  # fmt: skip
        return backprop(net, params, x, y)

    testing.sweep(impl=record, trials=n, seed=0)
    return seen


def _torch_loss(net: Network) -> Callable[..., Any]:
    from ..adapters import torch_backend

    def loss(x: Any, y: Any, *leaves: Any) -> Any:
        n = net.n_layers
        zs, activations = torch_backend.forward(net, list(leaves[:n]), list(leaves[n:]), x)
        return torch_backend.loss(net, zs, activations, y)

    return loss


def gradcheck_rate(cases: Sequence[Case], fast: bool, progress: bool) -> tuple[float, int]:
    """Networks per second of ``torch.autograd.gradcheck`` over ``cases``, and how many it
    failed: correct gradients, but finite differences straddle a kink (relu at 0, which the
    cases include on purpose) or lose their accuracy far out."""
    import torch
    from torch.autograd.gradcheck import GradcheckError

    one = torch.ones((1, 1), dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(lambda w: (w * w).sum(), [one], fast_mode=fast)  # first-call costs
    failed = 0
    start = time.perf_counter()
    label = f"gradcheck fast_mode={fast}"
    for net, params, x, y in tqdm(cases, desc=label, disable=not progress, file=sys.stderr):
        leaves = [torch.tensor(a, requires_grad=True) for a in (*params.weights, *params.biases)]
        fn = _torch_loss(net)
        tx, ty = torch.tensor(x), torch.tensor(y)
        try:
            torch.autograd.gradcheck(
                lambda *p, fn=fn, tx=tx, ty=ty: fn(tx, ty, *p), leaves, fast_mode=fast
            )
        except GradcheckError:
            failed += 1
    return len(cases) / (time.perf_counter() - start), failed


def _jax_loss(net: Network) -> Callable[..., Any]:
    import jax
    import jax.numpy as jnp

    from ..adapters import jax_backend

    def loss(weights: Any, biases: Any, x: Any, y: Any) -> Any:
        a = x
        for W, b, act in zip(weights, biases, net.activations, strict=True):
            z = a @ W.T + b
            a = jax_backend.ACTIVATIONS[act](z)
        if net.loss == "binary_cross_entropy":  # on the logits, as the reference fuses it
            per = jnp.mean(jax.nn.softplus(z) - y * z, axis=1)
        elif net.loss == "softmax_cross_entropy":
            per = -jnp.sum(y * jax.nn.log_softmax(z, axis=1), axis=1)
        elif net.loss == "mse":
            per = jnp.mean((a - y) ** 2, axis=1)
        else:
            per = 0.5 * jnp.sum((a - y) ** 2, axis=1)
        return jnp.mean(per) if net.reduction == "mean" else jnp.sum(per)

    return loss


def check_grads_rate(cases: Sequence[Case], progress: bool) -> tuple[float, int]:
    """Networks per second of ``jax.test_util.check_grads`` (reverse mode) over ``cases``,
    and how many it failed (see ``gradcheck_rate``)."""
    import jax
    from jax.test_util import check_grads as untyped_check_grads

    check_grads: Callable[..., None] = untyped_check_grads
    failed = 0
    with jax.enable_x64(True):
        check_grads(lambda w: (w * w).sum(), (np.ones((1, 1)),), order=1, modes=("rev",))
    start = time.perf_counter()
    with jax.enable_x64(True):
        for net, params, x, y in tqdm(
            cases, desc="jax check_grads", disable=not progress, file=sys.stderr
        ):
            fn = _jax_loss(net)
            weights, biases = list(params.weights), list(params.biases)
            try:
                check_grads(
                    lambda w, b, fn=fn, x=x, y=y: fn(w, b, x, y),
                    (weights, biases),
                    order=1,
                    modes=("rev",),
                )
            except AssertionError:
                failed += 1
    return len(cases) / (time.perf_counter() - start), failed


def crosscheck_rate(cases: Sequence[Case]) -> float:
    """Networks per second of ``adapters.crosscheck`` (reference vs torch vs jax), warm."""
    from ..adapters import crosscheck

    for case in cases:
        crosscheck(*case, backends=["torch", "jax"])
    start = time.perf_counter()
    for case in cases:
        report = crosscheck(*case, backends=["torch", "jax"])
        if not report.ok:
            raise RuntimeError(str(report))
    return len(cases) / (time.perf_counter() - start)


def measure(
    networks: int = 100, full_networks: int = 10, trials: int = 1000, progress: bool = True
) -> dict[str, Any]:
    """Every figure of the module docstring, as a JSON-ready dict."""
    runs = {"torch,jax": ["--backends", "torch,jax"], "impl": ["--impl", IMPL]}
    steps = tqdm(total=5 * len(runs) + 7, desc="check_speed", disable=not progress, file=sys.stderr)
    result: dict[str, Any] = {"machine": platform_info(), "trials": trials, "load": _load()}
    for name, options in runs.items():
        off = first_verdict(options, Path("off"))  # CROSSGRAD_CACHE_DIR=off: every process compiles
        steps.update()
        with tempfile.TemporaryDirectory(prefix="crossgrad-cache-") as cache:
            cold = first_verdict(options, Path(cache))
            steps.update()
            warm = first_verdict(options, Path(cache))
            steps.update()
            env = {**os.environ, "CROSSGRAD_CACHE_DIR": cache}
            start = time.perf_counter()
            command_line = _command("--trials", str(trials), *options)
            subprocess.run(command_line, env=env, capture_output=True, check=True)
            command = time.perf_counter() - start
            steps.update()
            start = time.perf_counter()
            subprocess.run(
                _command("--trials", str(trials), "--workers", "auto", *options),
                env=env, capture_output=True, check=True,
            )  # fmt: skip
            workers = time.perf_counter() - start
            steps.update()
        result[name] = {
            "first_verdict_seconds": {"off": off, "cold": cold, "warm": warm},
            f"command_{trials}_trials_seconds": command,
            f"workers_auto_{trials}_trials_seconds": workers,
        }
    from ..reference import backprop

    sweeps: dict[str, dict[str, Any]] = {
        "torch,jax": {"backends": ["torch", "jax"]},
        "impl": {"impl": backprop},
    }
    for name, sweep in sweeps.items():
        result[name]["cases_per_second"] = cases_per_second(trials, **sweep)
        result[name]["cases_per_second_all_cores"] = cases_per_second_all_cores(trials, **sweep)
        steps.update()
    result["import_seconds"] = import_seconds()
    result["draw_milliseconds"] = draw_cost()
    steps.update()
    cases = drawn_cases(networks)
    anchors: dict[str, float] = {
        "networks": len(cases),
        "full_mode_networks": min(full_networks, len(cases)),
    }
    anchors["crossgrad crosscheck"] = crosscheck_rate(cases)
    steps.update()
    failed: dict[str, int] = {}
    runs_: tuple[tuple[str, Callable[[], tuple[float, int]]], ...] = (
        ("torch gradcheck fast_mode", lambda: gradcheck_rate(cases, True, progress)),
        ("torch gradcheck full", lambda: gradcheck_rate(cases[:full_networks], False, progress)),
        ("jax check_grads", lambda: check_grads_rate(cases, progress)),
    )
    for name, run in runs_:
        anchors[name], failed[name] = run()
        steps.update()
    steps.close()
    result["anchors_networks_per_second"] = anchors
    result["anchors_failed_on_correct_gradients"] = failed
    result["load_after"] = _load()
    return result


def import_seconds(modules: Sequence[str] = ("torch", "jax")) -> float:
    """Seconds to import ``modules`` in a new Python process (its start included)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {', '.join(modules)}"], check=True)
    return time.perf_counter() - start


def draw_cost(examples: int = 1000) -> dict[str, float]:
    """Milliseconds of Hypothesis' generate phase with an empty test body: per example for
    ``strategies.cases()`` (``"case"``, what a test of one's own with ``@given(cases())``
    pays), per case for the lists of cases a sweep draws (``"case_in_a_sweep"``, see
    ``testing._sweep.CASES_PER_EXAMPLE``), and per example for one integer
    (``"one_integer"``, what Hypothesis spends on any example)."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    from .. import strategies
    from ..testing._sweep import CASES_PER_EXAMPLE

    def per_draw(strategy: Any, count: Callable[[Any], int] = lambda value: 1) -> float:
        drawn = [0]

        @settings(
            max_examples=examples, phases=[Phase.generate], database=None, deadline=None,
            derandomize=True, suppress_health_check=list(HealthCheck),
        )  # fmt: skip
        @given(strategy)
        def empty(value: Any) -> None:
            drawn[0] += count(value)

        empty()  # a warm-up: the first run builds the strategy and imports what it needs
        drawn[0] = 0
        gc.collect()  # what ran before left garbage: collected in here, it doubled one_integer
        start = time.perf_counter()
        empty()
        return 1000 * (time.perf_counter() - start) / drawn[0]

    in_lists = st.lists(strategies.cases(), min_size=1, max_size=CASES_PER_EXAMPLE)
    return {
        "case": per_draw(strategies.cases()),
        "case_in_a_sweep": per_draw(in_lists, len),
        "one_integer": per_draw(st.integers()),
    }


def _load() -> list[float]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return []


def table(result: dict[str, Any]) -> str:
    """The figures as a plain-text table."""
    trials = result["trials"]
    all_cores = all("cases_per_second_all_cores" in result[n] for n in ("torch,jax", "impl"))
    lines = [
        f"{'':<10} {'off 100':>9} {'cold 100':>9} {'warm 100':>9} {f'warm {trials}':>10} "
        f"{f'cases/s ({trials})':>16}"
        + (f" {'all cores':>10}" if all_cores else "")
        + f" {f'--workers auto, {trials}':>22}"
    ]
    for name in ("torch,jax", "impl"):
        r = result[name]
        first = r["first_verdict_seconds"]
        lines.append(
            f"{name:<10} {first['off']:>8.1f}s {first['cold']:>8.1f}s {first['warm']:>8.1f}s "
            f"{r[f'command_{trials}_trials_seconds']:>9.1f}s {r['cases_per_second']:>16.0f}"
            + (f" {r['cases_per_second_all_cores']:>10.0f}" if all_cores else "")
            + f" {r[f'workers_auto_{trials}_trials_seconds']:>21.1f}s"
        )
    if "import_seconds" in result:
        lines.append(f"importing torch and jax in a new process: {result['import_seconds']:.1f}s")
    draw = result["draw_milliseconds"]
    in_a_sweep = (
        f", {draw['case_in_a_sweep']:.2f} ms per case in a sweep's lists"
        if "case_in_a_sweep" in draw
        else ""
    )
    lines.append(
        f"drawing one case: {draw['case']:.2f} ms per example{in_a_sweep} "
        f"(Hypothesis' own floor, one integer: {draw['one_integer']:.2f} ms)"
    )
    anchors = result["anchors_networks_per_second"]
    lines.append("")
    lines.append(f"networks per second on the first {anchors['networks']} cases drawn (float64):")
    for name, value in anchors.items():
        if name not in ("networks", "full_mode_networks"):
            lines.append(f"  {name:<28} {value:>10.1f}")
    lines.append(f"(full-mode gradcheck on the first {anchors['full_mode_networks']} of them)")
    return "\n".join(lines)


GOALS = {"cold": 10.0, "warm": 4.0, "torch,jax": 400.0, "impl": 1000.0, "crosscheck": 500.0}
"""The goals of checking (2 cores): first verdicts in seconds, the rest per second."""


def plot(result: dict[str, Any], path: Path) -> None:
    """Three panels with the goals as dashed lines: the command's wall times (first verdicts
    off, cold and warm, and the warm 1000-trial run), cases per second of a warm sweep, and
    networks per second of ``crosscheck`` beside the gradcheck/check_grads anchors."""
    trials = result["trials"]
    fig = new_figure(15, 4.8)
    times, rates, anchors = fig.subplots(1, 3, width_ratios=(3, 1.2, 2))
    runs = ("torch,jax", "impl")
    kinds = [("off", "cache off, 100"), ("cold", "cold cache, 100"), ("warm", "warm cache, 100")]
    width = 0.2
    for i, (key, label) in enumerate([*kinds, ("1000", f"warm cache, {trials}")]):
        values = [
            result[run][f"command_{trials}_trials_seconds"]
            if key == "1000"
            else result[run]["first_verdict_seconds"][key]
            for run in runs
        ]
        bars = times.bar(
            [r + (i - 1.5) * width for r in range(len(runs))],
            values,
            width,
            label=label,
            color=f"C{i}",
        )
        times.bar_label(bars, fmt="%.1f", fontsize="small")
    for goal in ("cold", "warm"):
        times.axhline(GOALS[goal], color="grey", linestyle="--", linewidth=0.8)
        times.text(
            0.99,
            GOALS[goal],
            f"goal (torch,jax): {goal} cache ≤ {GOALS[goal]:g} s",
            fontsize="small",
            ha="right",
            va="bottom",
            transform=times.get_yaxis_transform(),
        )
    times.set(
        xticks=range(len(runs)),
        xticklabels=["--backends torch,jax", "--impl (NumPy)"],
        ylabel="seconds, new process, imports included",
        title="crossgrad check --seed 0 --trials N",
    )
    times.legend(fontsize="small")
    ways = [("cases_per_second", "one process")]
    if all("cases_per_second_all_cores" in result[run] for run in runs):
        ways.append(("cases_per_second_all_cores", "one process per core"))
    width = 0.8 / len(ways)
    for i, (key, label) in enumerate(ways):
        values = [result[run][key] for run in runs]
        offset = (i - (len(ways) - 1) / 2) * width
        bars = rates.bar(
            [r + offset for r in range(len(runs))], values, width, label=label, color=f"C{i + 4}"
        )
        rates.bar_label(bars, fmt="%.0f", fontsize="small")
    for r, run in enumerate(runs):
        rates.hlines(GOALS[run], r - 0.4, r + 0.4, color="grey", linestyle="--", linewidth=0.8)
    rates.legend(fontsize="small", loc="upper left")
    rates.set(
        xticks=range(len(runs)),
        xticklabels=["torch,jax", "impl"],
        ylabel="cases per second",
        title=f"warm sweep, {trials} trials (goals dashed)",
    )
    figures = {
        k: v
        for k, v in result["anchors_networks_per_second"].items()
        if k not in ("networks", "full_mode_networks")
    }
    bars = anchors.barh(
        list(figures), list(figures.values()), color=["C2", *["C7"] * (len(figures) - 1)]
    )
    anchors.bar_label(bars, fmt="%.1f", fontsize="small")
    anchors.axvline(GOALS["crosscheck"], color="grey", linestyle="--", linewidth=0.8)
    anchors.invert_yaxis()
    anchors.set(
        xscale="log",
        xlabel="networks per second (log)",
        title=f"the first {result['anchors_networks_per_second']['networks']} cases, "
        "float64 (goal dashed)",
    )
    machine = result["machine"]
    fig.suptitle(f"Checking speed, {machine['cores']} cores, {machine['cpu']}")
    fig.savefig(path, dpi=100)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m crossgrad.benchmarks.check_speed", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--networks", type=positive_int, default=100, help="anchor networks (100)")
    parser.add_argument(
        "--full-networks", type=positive_int, default=10, help="full gradcheck's (10)"
    )
    parser.add_argument(
        "--trials", type=positive_int, default=1000, help="trials of the rate (1000)"
    )
    add_output_options(parser)
    args = parse_args(parser, argv)
    result = measure(args.networks, args.full_networks, args.trials, not args.no_progress)
    return print_and_save(table(result), result, args.json, plot)


if __name__ == "__main__":
    sys.exit(main())
