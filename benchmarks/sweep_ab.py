"""Two versions of crossgrad side by side: cases per second of a warm sweep, alternately.

The companion of ``first_verdict_ab`` for the throughput of checking: each round measures
``check_speed.cases_per_second`` (a warm ``testing.sweep`` of ``--trials`` cases, after one of
100 that loads what the run needs) in a new process for each version, for backends
``torch,jax`` and for a correct NumPy ``impl`` (``crossgrad.reference:backprop``), swapping
which version goes first every round.  Each version is an install of its own (``pip install
--no-deps --target DIR``), put first on ``PYTHONPATH``; both run on this environment's Python
and frameworks.

    python -m crossgrad.benchmarks.sweep_ab /tmp/before-install /tmp/after-install \\
        --rounds 4 --json benchmarks/results/sweep_ab.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..cli._common import positive_int
from .first_verdict_ab import (
    SIDES,
    add_sides_arguments,
    installs,
    plot_sides,
    sides_summary,
    with_commits,
)
from .runner import parse_args, platform_info, print_and_save

KINDS = ("torch,jax", "impl")

_MEASURE = """
import json, sys
from crossgrad.benchmarks.check_speed import cases_per_second
from crossgrad.reference import backprop
trials, kind = int(sys.argv[1]), sys.argv[2]
sweep = {"impl": backprop} if kind == "impl" else {"backends": kind.split(",")}
print(json.dumps(cases_per_second(trials, **sweep)))
"""


def cases_per_second(install: Path, kind: str, trials: int) -> float:
    """``check_speed.cases_per_second`` of ``kind`` (``"torch,jax"`` or ``"impl"``) in a new
    process, with the crossgrad installed in ``install`` first on ``PYTHONPATH``."""
    env = {**os.environ, "PYTHONPATH": str(install)}
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(trials), kind], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"the {kind} sweep from {install} failed:\n{done.stdout}{done.stderr}")
    rate: float = json.loads(done.stdout.splitlines()[-1])
    return rate


def measure(
    installs: dict[str, Path],
    rounds: int,
    trials: int = 1000,
    progress: bool = True,
    kinds: Sequence[str] = KINDS,
) -> dict[str, Any]:
    """``rounds`` alternating measurements of each install, for each of ``kinds``."""
    result: dict[str, Any] = {"machine": platform_info(), "rounds": rounds, "trials": trials}
    rates: dict[str, dict[str, list[float]]] = {s: {k: [] for k in kinds} for s in SIDES}
    bar = tqdm(total=2 * rounds * len(kinds), desc="sweeps", disable=not progress, file=sys.stderr)
    for r in range(rounds):
        for kind in kinds:
            for side in SIDES if r % 2 == 0 else SIDES[::-1]:
                rates[side][kind].append(cases_per_second(installs[side], kind, trials))
                bar.update()
    bar.close()
    for side in SIDES:
        result[side] = sides_summary(installs[side], "cases_per_second", rates[side])
    return result


def table(result: dict[str, Any]) -> str:
    """The medians, their ratio and every run, as plain text."""
    lines = [
        f"cases per second, warm sweep of {result['trials']} trials, "
        f"{result['rounds']} rounds, alternating",
        f"{'':<10} {'before':>8} {'after':>8} {'after/before':>13}   every run: before / after",
    ]
    before, after = result["before"], result["after"]
    for kind in KINDS:
        runs = " / ".join(
            ", ".join(f"{v:.0f}" for v in side["cases_per_second"][kind])
            for side in (before, after)
        )
        b, a = before["median"][kind], after["median"][kind]
        lines.append(f"{kind:<10} {b:>8.0f} {a:>8.0f} {a / b:>12.2f}x   {runs}")
    return "\n".join(lines)


def plot(result: dict[str, Any], path: Path) -> None:
    """Every run of each version and kind, as points over its median's bar."""
    plot_sides(
        result, path, "cases_per_second",
        {"torch,jax": "--backends torch,jax", "impl": "--impl (NumPy)"},
        ylabel="cases per second (median: bar)",
        title=f"warm sweep of {result['trials']} trials, {result['rounds']} rounds, alternating",
    )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m crossgrad.benchmarks.sweep_ab", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--trials", type=positive_int, default=1000, help="cases per sweep (1000)")
    add_sides_arguments(parser)
    args = parse_args(parser, argv)
    result = measure(installs(args), args.rounds, args.trials, not args.no_progress)
    return print_and_save(table(with_commits(result, args)), result, args.json, plot)


if __name__ == "__main__":
    sys.exit(main())
