"""``crossgrad bench``: CPU throughput of one SGD step: the reference, the fast NumPy backend,
PyTorch and JAX.

Thin over ``crossgrad.benchmarks``: parses the options, runs the grid (or the ``--case``
cases), prints the table and the goals, and writes ``results.json``, ``results.csv`` and
``results.png`` with ``--out``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, NamedTuple

from crossgrad.benchmarks import BACKENDS, GRIDS, Case, grid, parse_case, report, run_benchmark
from crossgrad.benchmarks.cases import CASE_EXAMPLE, CASE_FORMAT
from crossgrad.benchmarks.timing import installed

from ._common import names, positive_int


class Preset(NamedTuple):
    """How a grid is timed: interleaved rounds, the least seconds per timed sample, the pause
    before each sample, the side of the GEMM-rate matrices, and the default backends."""

    rounds: int
    min_sample_s: float
    pause_s: float
    gemm_size: int
    backends: tuple[str, ...]


PRESETS = {
    "full": Preset(7, 0.05, 0.15, 1024, BACKENDS),
    # torch.compile takes 5 to 25 s per case to compile, more than the whole quick run.
    "quick": Preset(5, 0.02, 0.1, 1024, ("reference", "numpy", "torch", "jax.jit")),
    "tiny": Preset(2, 0.0, 0.0, 64, BACKENDS),  # for tests: the numbers mean nothing
    "custom": Preset(7, 0.05, 0.15, 1024, BACKENDS),  # --case: the full grid's fairness rules
}


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="time one SGD step: the NumPy reference and fast backend against torch and jax",
        description="Time one SGD training step (forward, backward, update) of the NumPy "
        "reference, the fast NumPy backend, torch eager, torch.compile and jax.jit on the same "
        "networks, with the same thread count, against the machine's GEMM rate measured in the "
        "same run.",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--quick",
        action="store_true",
        help="the quick grid, without torch.compile: done in about a minute",
    )
    size.add_argument("--grid", choices=GRIDS, help="which grid to run (default: full)")
    size.add_argument(
        "--case",
        action="append",
        type=_case,
        metavar=CASE_FORMAT,
        help=f"time just this case instead of a grid (repeatable), e.g. {CASE_EXAMPLE}; "
        "ACTIVATION is the hidden layers' (sigmoid, tanh or relu; identity for a network of two "
        "widths, which has none); the network is a classifier "
        "(identity output, softmax cross-entropy) except 4-3-2, the worked example's",
    )
    parser.add_argument(
        "--backends",
        type=_backend_list,
        help=f"comma-separated subset of {','.join(BACKENDS)} (default: all; --quick: "
        "no torch.compile)",
    )
    parser.add_argument(
        "--threads", type=positive_int, help="threads for every backend (default: all cores)"
    )
    parser.add_argument("--rounds", type=positive_int, help="interleaved timing rounds")
    parser.add_argument("--out", type=Path, help="write results.json, .csv and .png here")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _backend_list(text: str) -> tuple[str, ...]:
    return names(text, BACKENDS, "backend(s)")


def _case(text: str) -> Case:
    try:
        return parse_case(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def grid_of(args: argparse.Namespace) -> str:
    """The grid the options ask for: ``custom`` (``--case``), ``--quick``, ``--grid NAME``, or
    ``full``."""
    if args.case:
        return "custom"
    return "quick" if args.quick else args.grid or "full"


def cases_of(args: argparse.Namespace) -> list[Case]:
    """The cases to time: the ``--case`` cases in order (each once), or the grid's."""
    if args.case:
        return list({case.id: case for case in args.case}.values())
    return grid(grid_of(args))


def run(args: argparse.Namespace) -> int:
    needed = ["threadpoolctl"] + (["matplotlib"] if args.out is not None else [])
    missing = [name for name in needed if not installed(name)]
    if missing:
        print(
            f"crossgrad bench needs {' and '.join(missing)}: pip install 'crossgrad[bench]'",
            file=sys.stderr,
        )
        return 2
    grid_name = grid_of(args)
    preset = PRESETS[grid_name]
    result = run_benchmark(
        cases_of(args),
        args.backends or preset.backends,
        threads=args.threads,
        rounds=args.rounds or preset.rounds,
        min_sample_s=preset.min_sample_s,
        pause_s=preset.pause_s,
        gemm_size=preset.gemm_size,
        progress=not args.no_progress,
        grid_name=grid_name,
    )
    print(report.summary(result))
    if args.out is not None:
        paths = report.write(result, args.out)
        print("\nwrote " + ", ".join(str(p) for p in paths))
    sys.stdout.flush()
    return 0
