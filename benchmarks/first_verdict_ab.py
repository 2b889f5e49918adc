"""Two versions of crossgrad side by side: the first verdict of ``crossgrad check``, alternately.

This machine's speed drifts by a quarter or more between runs, so a change to the start-up
of ``crossgrad check`` is measured against the version before it in one run, alternately:
each round runs ``crossgrad check --trials 100 --seed 0`` (torch and jax, both dtypes) in a
new process for each version, with an empty cache directory (cold) and again with the cache
that run filled (warm), swapping which version goes first every round.  Each version is an
install of its own, made with ``pip install --no-deps --target DIR``, and put first on
``PYTHONPATH``; both run on this environment's Python and frameworks.

    git worktree add /tmp/before COMMIT
    pip install --no-deps --no-build-isolation --target /tmp/before-install /tmp/before
    (the same for the version after)
    python -m crossgrad.benchmarks.first_verdict_ab /tmp/before-install /tmp/after-install \\
        --rounds 4 --json benchmarks/results/first_verdict_ab.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..cli._common import positive_int
from .check_speed import first_verdict
from .runner import add_output_options, new_figure, parse_args, platform_info, print_and_save

SIDES = ("before", "after")
OPTIONS = ("--backends", "torch,jax")


def measure(installs: dict[str, Path], rounds: int, progress: bool = True) -> dict[str, Any]:
    """``rounds`` alternating cold and warm first verdicts of each install."""
    result: dict[str, Any] = {"machine": platform_info(), "rounds": rounds}
    times: dict[str, dict[str, list[float]]] = {s: {"cold": [], "warm": []} for s in SIDES}
    bar = tqdm(total=2 * rounds, desc="first verdicts", disable=not progress, file=sys.stderr)
    for r in range(rounds):
        for side in SIDES if r % 2 == 0 else SIDES[::-1]:
            with tempfile.TemporaryDirectory(prefix="crossgrad-cache-") as cache:
                for how in ("cold", "warm"):  # an empty cache, then the one that run filled
                    times[side][how].append(first_verdict(OPTIONS, Path(cache), installs[side]))
            bar.update()
    bar.close()
    for side in SIDES:
        result[side] = sides_summary(installs[side], "seconds", times[side])
    return result


def sides_summary(install: Path, key: str, runs: dict[str, list[float]]) -> dict[str, Any]:
    """One side's entry in the results: its install, every run under ``key``, the medians."""
    return {
        "install": str(install),
        key: runs,
        "median": {column: statistics.median(values) for column, values in runs.items()},
    }


def table(result: dict[str, Any]) -> str:
    """The medians and every run, as plain text."""
    lines = [f"crossgrad check --trials 100 --seed 0, {result['rounds']} rounds, alternating"]
    lines.append(f"{'':<8} {'cold (median)':>14} {'warm (median)':>14}   every run: cold / warm")
    for side in SIDES:
        r = result[side]
        runs = " / ".join(
            ", ".join(f"{t:.1f}" for t in r["seconds"][how]) for how in ("cold", "warm")
        )
        lines.append(
            f"{side:<8} {r['median']['cold']:>13.1f}s {r['median']['warm']:>13.1f}s   {runs}"
        )
    return "\n".join(lines)


def plot(result: dict[str, Any], path: Path) -> None:
    """Every run of each version, cold and warm, as points over its median's bar."""
    plot_sides(
        result, path, "seconds", {"cold": "cold cache", "warm": "warm cache"},
        ylabel="seconds to the verdict (median: bar)",
        title=f"crossgrad check --trials 100 --seed 0, {result['rounds']} rounds, alternating",
    )  # fmt: skip


def plot_sides(
    result: dict[str, Any],
    path: Path,
    key: str,
    columns: dict[str, str],
    ylabel: str,
    title: str,
) -> None:
    """Each side's runs under ``key``, per column (name: label), as points over the median's
    bar, the two sides' bars next to each other."""
    fig = new_figure(6.5, 4.5)
    ax = fig.subplots()
    for j, side in enumerate(SIDES):
        r = result[side]
        label = f"{side} ({r['commit']})" if "commit" in r else side
        for i, column in enumerate(columns):
            x = i + (j - 0.5) * 0.4
            ax.bar(
                x, r["median"][column], 0.4, color=f"C{j}", alpha=0.6,
                label=label if i == 0 else None,
            )  # fmt: skip
            runs = r[key][column]
            ax.plot([x] * len(runs), runs, "k.", label="one run" if i == j == 0 else None)
    ax.set(xticks=range(len(columns)), xticklabels=list(columns.values()), ylabel=ylabel,
           title=title)  # fmt: skip
    ax.legend(fontsize="small")
    machine = result["machine"]
    fig.suptitle(f"{machine['cores']} cores, {machine['cpu']}", fontsize="medium")
    fig.savefig(path, dpi=100)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m crossgrad.benchmarks.first_verdict_ab",
        description=__doc__.splitlines()[0],
    )
    add_sides_arguments(parser)
    args = parse_args(parser, argv)
    result = measure(installs(args), args.rounds, not args.no_progress)
    return print_and_save(table(with_commits(result, args)), result, args.json, plot)


def add_sides_arguments(parser: argparse.ArgumentParser) -> None:
    """The two installs, ``--rounds``, ``--commits`` and the output options."""
    parser.add_argument("before", type=Path, help="the install (pip --target) of the old version")
    parser.add_argument("after", type=Path, help="the install of the new version")
    parser.add_argument(
        "--rounds", type=positive_int, default=4, help="rounds, each version once (4)"
    )
    parser.add_argument("--commits", nargs=2, metavar=("BEFORE", "AFTER"), help="to record")
    add_output_options(parser)


def installs(args: argparse.Namespace) -> dict[str, Path]:
    """The install of each side, from the arguments."""
    return {"before": args.before, "after": args.after}


def with_commits(result: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """``result`` with each side's commit recorded, if ``--commits`` named them."""
    for side, commit in zip(SIDES, args.commits or (), strict=False):
        result[side]["commit"] = commit
    return result


if __name__ == "__main__":
    sys.exit(main())
