"""Throughput of ``adapters.crosscheck``: random small networks checked per second.

Issue 3's goal: reference vs torch vs jax on random small float64 networks (every activation
and loss) at >= 500 networks per second on a 2-core machine.  The networks (depth 1-5, widths
1-32, batch 1-16) are drawn from a fixed seed before the clock starts; one warm-up pass over
every distinct JAX bucket and dtype compiles outside the timed region (reported separately).
Each timed round checks every network twice: with ``crosscheck(net, params, x, y, ["torch",
"jax"])`` once per network, and with ``crosscheck_many(cases, ["torch", "jax"])``, the sweep,
which runs each backend over a chunk of networks in turn (same reports).  Rounds alternate the
two, and the median round is the result: this shared machine's speed drifts by a quarter from
minute to minute.  A last, untimed-for-the-headline pass times each stage on its own (checks,
reference and error scales, torch, jax, comparisons) to show where the time goes::

    python -m crossgrad.benchmarks.crosscheck_throughput --networks 2000 --seed 0 --json out.json
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from ..adapters import CrossCheckReport, crosscheck, crosscheck_many, get, tolerance
from ..adapters.checking import candidates, reference_side
from ..cli._common import non_negative_int, positive_int
from ..reference import ACTIVATIONS, LOSSES, REDUCTIONS, Network, Params, init_params
from ..reference.validation import check_inputs
from .runner import add_output_options, new_figure, parse_args, platform_info, print_and_save

Case = tuple[Network, Params, NDArray[np.floating], NDArray[np.floating]]

GOAL = 500
"""Issue 3's goal, networks per second (the table's last column, the plot's dashed line)."""


def targets(loss: str, rng: np.random.Generator, shape: tuple[int, ...]) -> NDArray[np.float64]:
    """Targets ``y`` of ``shape`` inside the domain of ``loss``."""
    if loss == "binary_cross_entropy":
        return rng.uniform(0, 1, shape)
    if loss == "softmax_cross_entropy":
        return rng.dirichlet(np.ones(shape[-1]), shape[:-1])
    return rng.normal(0, 1, shape)


def random_case(
    rng: np.random.Generator,
    max_depth: int = 5,
    max_width: int = 32,
    max_batch: int = 16,
    dtype: Any = np.float64,
    sizes: Sequence[int] | None = None,
    batch: int | None = None,
) -> Case:
    """A random network (mixed activations, any loss and reduction), its params, ``x``, ``y``.

    Depth ``1..max_depth`` layers, widths ``1..max_width``, batch ``1..max_batch``, unless
    ``sizes`` or ``batch`` fix them; ``x`` is ``(batch, in)`` standard normal, ``y``
    ``(batch, out)`` in the loss's domain.
    """
    if sizes is None:
        depth = int(rng.integers(1, max_depth + 1))
        sizes = [int(n) for n in rng.integers(1, max_width + 1, depth + 1)]
    depth = len(sizes) - 1
    loss = str(rng.choice(list(LOSSES)))
    activations = [str(rng.choice(list(ACTIVATIONS))) for _ in range(depth)]
    required = LOSSES[loss].output_activation
    if required is not None:
        activations[-1] = required
    net = Network(sizes, activations, loss, str(rng.choice(REDUCTIONS)))
    params = init_params(net, rng, dtype)
    if batch is None:
        batch = int(rng.integers(1, max_batch + 1))
    x = rng.normal(0, 1, (batch, sizes[0])).astype(dtype)
    return net, params, x, targets(loss, rng, (batch, sizes[-1])).astype(dtype)


def _stages(cases: Sequence[Case], progress: bool) -> dict[str, float]:
    """Seconds spent in each stage of ``crosscheck`` over ``cases``, each stage timed alone."""
    torch_backprop, jax_backprop = get("torch").backprop, get("jax").backprop
    spent = dict.fromkeys(("checks", "reference+scales", "torch", "jax", "comparisons"), 0.0)
    for net, params, x, y in tqdm(cases, desc="stages", disable=not progress, file=sys.stderr):
        t0 = time.perf_counter()
        batch = check_inputs(net, params, x, y)
        t1 = time.perf_counter()
        _, _, wanted = reference_side(net, params, batch)
        t2 = time.perf_counter()
        got_torch = torch_backprop(net, params, x, y)
        t3 = time.perf_counter()
        got_jax = jax_backprop(net, params, x, y)
        t4 = time.perf_counter()
        rtol = tolerance.default_rtol(net, params.dtype)
        wanted.compare(candidates(net, got_torch, params.dtype), rtol)
        wanted.compare(candidates(net, got_jax, params.dtype), rtol)
        t5 = time.perf_counter()
        for stage, dt in zip(spent, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
            spent[stage] += dt
    return spent


def measure(
    n_networks: int = 2000,
    seed: int = 0,
    torch_threads: int | None = 1,
    rounds: int = 3,
    progress: bool = True,
) -> dict[str, Any]:
    """Time ``crosscheck`` and ``crosscheck_many`` (reference vs torch vs jax) over
    ``n_networks`` random networks, ``rounds`` times each, alternating.

    ``torch_threads`` sets torch's intra-op threads for the run (restored after; ``None``
    keeps torch's default): on a small network, more threads than free cores cost far more
    in synchronisation than they save.  Returns ``networks``, ``seed``, ``rounds``,
    ``torch_threads``, ``compile_seconds`` (the JAX warm-up), and for each way of checking
    (``crosscheck``, ``crosscheck_many``): ``networks_per_second`` (the median round),
    ``rounds_per_second`` (every round), ``mismatches`` (reports not ok over all rounds; 0
    expected); then ``stages``: seconds per stage from a last pass, each stage timed on its
    own.
    """
    import torch

    before = torch.get_num_threads()
    if torch_threads is not None:
        torch.set_num_threads(torch_threads)
    try:
        result = _measure(n_networks, seed, rounds, progress)
    finally:
        torch.set_num_threads(before)
    return {**result, "torch_threads": torch.get_num_threads() if torch_threads is None
            else torch_threads}  # fmt: skip


def _measure(n_networks: int, seed: int, rounds: int, progress: bool) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    cases = [random_case(rng) for _ in range(n_networks)]

    t0 = time.perf_counter()
    jax_backprop = get("jax").backprop
    warmed: set[tuple[int, int]] = set()
    for net, params, x, y in cases:  # one compile per distinct bucket: (depth, widest layer)
        key = (net.n_layers, max(net.sizes))
        if key not in warmed:
            jax_backprop(net, params, x, y)
            warmed.add(key)
    compile_seconds = time.perf_counter() - t0

    backends = ["torch", "jax"]

    def one_call_each() -> Iterator[CrossCheckReport]:
        return (crosscheck(*case, backends) for case in cases)

    def a_sweep() -> Iterator[CrossCheckReport]:
        return crosscheck_many(cases, backends)

    ways = {"crosscheck": one_call_each, "crosscheck_many": a_sweep}
    per_second: dict[str, list[float]] = {way: [] for way in ways}
    mismatches = dict.fromkeys(ways, 0)
    with tqdm(total=rounds * len(ways) * n_networks, desc="crosscheck", disable=not progress,
              file=sys.stderr) as progress_bar:  # fmt: skip
        for _ in range(rounds):
            for way, reports in ways.items():
                t0 = time.perf_counter()
                for report in reports():
                    mismatches[way] += not report.ok
                    progress_bar.update()
                per_second[way].append(n_networks / (time.perf_counter() - t0))
    return {
        "networks": n_networks,
        "seed": seed,
        "rounds": rounds,
        "compile_seconds": compile_seconds,
        **{
            way: {
                "networks_per_second": float(np.median(per_second[way])),
                "rounds_per_second": per_second[way],
                "mismatches": mismatches[way],
            }
            for way in ways
        },
        "stages": _stages(cases, progress),
    }


def table(result: dict[str, Any]) -> str:
    """The measurement as a small text table."""
    n = result["networks"]
    lines = [
        f"reference vs torch vs jax on {n} random float64 networks, seed {result['seed']}, "
        f"torch threads {result['torch_threads']}, {result['rounds']} rounds",
        f"  {'JAX compile':<34} {result['compile_seconds']:8.2f} s (warm-up, not timed)",
    ]
    for way, how in (("crosscheck", "one call per network"), ("crosscheck_many", "a sweep")):
        rates = result[way]["rounds_per_second"]
        lines.append(
            f"  {f'{way} ({how})':<34} {result[way]['networks_per_second']:8.1f} networks/s "
            f"(median; rounds {min(rates):.0f}-{max(rates):.0f}; "
            f"{result[way]['mismatches']} mismatches; goal >= {GOAL}/s)"
        )
    lines.append("  per network, each stage timed alone:")
    for stage, spent in result["stages"].items():
        lines.append(f"    {stage:<32} {1e3 * spent / n:8.3f} ms")
    return "\n".join(lines)


def plot(result: dict[str, Any], path: Path) -> None:
    """Networks per second of the two ways (every round a point, the median a bar, the goal
    dashed), and milliseconds per network of each stage timed alone."""
    fig = new_figure(11, 4.2)
    rates, stages = fig.subplots(1, 2, width_ratios=(1, 1.4))
    ways = ("crosscheck", "crosscheck_many")
    rates.bar(
        range(len(ways)),
        [result[w]["networks_per_second"] for w in ways],
        0.6,
        color=["C0", "C1"],
        alpha=0.7,
    )
    for i, way in enumerate(ways):
        rounds = result[way]["rounds_per_second"]
        rates.plot([i] * len(rounds), rounds, "k.")
    rates.axhline(GOAL, color="grey", linestyle="--", linewidth=0.8)
    rates.set(
        xticks=range(len(ways)),
        xticklabels=["one call per network", "a sweep"],
        ylabel="networks per second",
        title=f"crosscheck (goal ≥ {GOAL}/s dashed)",
    )
    n = result["networks"]
    names = list(result["stages"])
    spent = [1e3 * result["stages"][name] / n for name in names]
    bars = stages.barh(names, spent, color="C2")
    stages.bar_label(bars, fmt="%.3f", fontsize="small")
    stages.invert_yaxis()
    stages.set(xlabel="ms per network", title="each stage timed alone")
    machine = result["machine"]
    fig.suptitle(
        f"reference vs torch vs jax on {n} random float64 networks, torch threads "
        f"{result['torch_threads']}, {machine['cores']} cores, {machine['cpu']}"
    )
    fig.savefig(path, dpi=100)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``[--networks N] [--seed S] [--rounds R] [--torch-threads T]
    [--json PATH] [--no-progress]``; prints the table, and writes the measurement and the
    machine to ``PATH`` as JSON when given, and their plot beside it (``.png``)."""
    parser = argparse.ArgumentParser(
        prog="python -m crossgrad.benchmarks.crosscheck_throughput",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("--networks", type=positive_int, default=2000, help="networks (2000)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="their seed (0)")
    parser.add_argument("--rounds", type=positive_int, default=3, help="rounds of each way (3)")
    parser.add_argument(
        "--torch-threads",
        type=non_negative_int,
        default=1,
        help="torch intra-op threads (1; 0: torch's default)",
    )
    add_output_options(parser)
    args = parse_args(parser, argv)
    result = measure(
        args.networks, args.seed, args.torch_threads or None, args.rounds, not args.no_progress
    )
    report = {"machine": platform_info(), **result}
    return print_and_save(table(result), report, args.json, plot)


if __name__ == "__main__":
    raise SystemExit(main())
