"""Run the benchmark: every case on every available backend, timed fairly, as a report.

``run_benchmark(cases, ...)`` returns a ``dict`` that is the JSON document written by
``--out``, less its ``goals`` (``report.goals``, added when it is written)::

    {"machine": {..., "threads": n, "gemm_gflops": {"float32": ..., "float64": ...}},
     "results": [{"backend", "network", "batch", "dtype", "activation", "median_s", "spread_s",
                  "samples_per_s", "gflops", "peak_fraction", "gemm_gflops_alongside",
                  "alongside_fraction"}, ...],
     "compile": [{"backend", "network", "batch", "dtype", "activation", "first_step_s"}, ...],
     "skipped": [{"backend", "reason"} or {"backend", "case", "reason"}, ...],
     "cases": [{"network", "batch", "dtype", "activation", "group", "flops"}, ...],
     "settings": {"grid", "rounds", "min_sample_s", "pause_s", "seed", "lr", "backends"}}

``first_step_s`` is the warm-up step, excluded from the timings: for the JIT backends it is
mostly compilation.  ``peak_fraction`` is ``gflops`` over the machine's GEMM rate in the same
dtype: the best rate of any library (``timing.gemm_rates``) seen in the run, measured at the
start and again after every case in that case's dtype.  A shared machine's speed drifts by a
quarter from minute to minute; a peak measured once, in a slow minute, let one run report a
step at 126% of "peak".  ``machine["gemm_measurements"]`` counts the measurements per dtype.

A best rate of the run is often well above a typical minute's rate, so each case also times
the product beside its steps: one library's product (``machine["gemm_alongside_library"]``,
the fastest at the start) runs as one more entry of the case's interleaved rounds.
``gemm_gflops_alongside`` is its median rate, and ``alongside_fraction`` is ``gflops`` over
it: how close the step comes to the matrix product under the same conditions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm  # type: ignore[import-untyped, unused-ignore]

from . import backends, timing
from .cases import DTYPES, Case

Report = dict[str, Any]

RESULT_KEYS = (
    "backend",
    "network",
    "batch",
    "dtype",
    "activation",
    "median_s",
    "spread_s",
    "samples_per_s",
    "gflops",
    "peak_fraction",
    "gemm_gflops_alongside",
    "alongside_fraction",
)
"""The fields of one record of ``results``, in order (the CSV's columns)."""

ALONGSIDE = "gemm"
"""The name under which a case's rounds time the GEMM product beside its backends."""


def run_benchmark(
    cases: Sequence[Case],
    backend_names: Sequence[str] = backends.BACKENDS,
    *,
    threads: int | None = None,
    rounds: int = 7,
    min_sample_s: float = 0.05,
    pause_s: float = 0.15,
    gemm_size: int = timing.GEMM_SIZE,
    seed: int = 0,
    progress: bool = True,
    grid_name: str = "custom",
) -> Report:
    """Time one SGD step of every case on every backend; see the module docstring for the result.

    ``threads`` defaults to every core this process may use.  Each case runs ``rounds``
    interleaved rounds; one sample lasts at least ``min_sample_s`` seconds (as many
    consecutive steps as that takes), ``pause_s`` after the previous sample.  Backends whose
    framework is missing, or whose preparation fails, are listed under ``skipped`` with the
    reason.
    """
    for name in backend_names:
        if name not in backends.BACKENDS:
            raise ValueError(f"unknown backend {name!r}; expected one of {backends.BACKENDS}")
    n_threads = timing.default_threads() if threads is None else threads
    if n_threads < 1:
        raise ValueError(f"threads must be at least 1, got {n_threads}")
    skipped: list[dict[str, str]] = []
    reasons = backends.available()
    active = []
    for name in backend_names:
        reason = reasons[name]
        if reason is None:
            active.append(name)
        else:
            skipped.append({"backend": name, "reason": reason})

    results: list[dict[str, Any]] = []
    compiled: list[dict[str, Any]] = []
    with timing.limit_threads(n_threads) as thread_settings, backends.frameworks_configured():
        machine = _machine(thread_settings, gemm_size)
        total = len(cases) * (len(active) * (rounds + 1) + rounds)  # + the GEMM's samples
        with tqdm(total=total, disable=not progress, unit="sample", leave=False) as bar:
            for case in cases:
                bar.set_description(case.id)
                problem = backends.make_problem(case, seed)
                steps: dict[str, backends.Step] = {}
                for name in active:
                    try:
                        steps[name] = backends.prepare(name, problem)
                        first = timing.seconds(steps[name].warm_up)
                    except Exception as exc:  # a framework's failure is reported, not raised
                        steps.pop(name, None)
                        reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
                        skipped.append({"backend": name, "case": case.id, "reason": reason})
                        bar.update(rounds + 1)
                        continue
                    compiled.append(_record(name, case) | {"first_step_s": first})
                    bar.update()
                if not steps:
                    bar.update(rounds)
                    continue
                # The GEMM product is timed in the same interleaved rounds as the steps, so
                # that the machine's drift hits it and them alike (see the module docstring).
                library = machine["gemm_alongside_library"][case.dtype]
                timed: dict[str, timing.Timed] = {
                    **steps,
                    ALONGSIDE: timing.Product(timing.gemm_product(library, case.dtype, gemm_size)),
                }
                numbers = {
                    name: timing.calibrate(step, min_sample_s) for name, step in timed.items()
                }
                timings = timing.measure(timed, numbers, rounds, pause_s, bar.update)
                alongside = 2 * gemm_size**3 / timings.pop(ALONGSIDE).median / 1e9
                for name, t in timings.items():
                    results.append(_result(name, case, t, alongside))
                _update_peak(machine, case.dtype, timing.gemm_rates(case.dtype, gemm_size))
    for record in results:
        record["peak_fraction"] = record["gflops"] / machine["gemm_gflops"][record["dtype"]]
    return {
        "machine": machine,
        "results": results,
        "cases": [_record("", case) | {"group": case.group, "flops": case.flops} for case in cases],
        "compile": compiled,
        "skipped": skipped,
        "settings": {
            "grid": grid_name,
            "rounds": rounds,
            "min_sample_s": min_sample_s,
            "pause_s": pause_s,
            "seed": seed,
            "lr": backends.LR,
            "backends": list(backend_names),
        },
    }


def _record(backend: str, case: Case) -> dict[str, Any]:
    record = {"backend": backend} if backend else {}
    return record | {
        "network": case.network,
        "batch": case.batch,
        "dtype": case.dtype,
        "activation": case.activation,
    }


def _result(backend: str, case: Case, t: timing.Timing, alongside: float) -> dict[str, Any]:
    """One record of ``results``; ``peak_fraction`` is filled in once the run's peak is known."""
    gflops = case.flops / t.median / 1e9
    return _record(backend, case) | {
        "median_s": t.median,
        "spread_s": t.spread,
        "samples_per_s": case.batch / t.median,
        "gflops": gflops,
        "peak_fraction": None,
        "gemm_gflops_alongside": alongside,
        "alongside_fraction": gflops / alongside,
    }


def _update_peak(machine: dict[str, Any], dtype: str, rates: dict[str, float]) -> None:
    """Keep the best GEMM rate seen so far, per library and overall, in ``machine``."""
    best = machine["gemm_gflops_by_library"][dtype]
    for library, rate in rates.items():
        best[library] = max(best.get(library, 0.0), rate)
    machine["gemm_gflops"][dtype] = max(best.values())
    machine["gemm_measurements"][dtype] += 1


def platform_info() -> dict[str, Any]:
    """The CPU, platform, core count and library versions of this machine."""
    import numpy as np

    versions = {"python": platform.python_version(), "numpy": np.__version__}
    for module in ("torch", "jax"):
        if module in sys.modules or timing.installed(module):
            versions[module] = __import__(module).__version__
    return {
        "cpu": _cpu_name(),
        "platform": platform.platform(),
        "cores": os.cpu_count(),
        "versions": versions,
    }


def _machine(thread_settings: timing.ThreadSettings, gemm_size: int) -> dict[str, Any]:
    by_library = {dtype: timing.gemm_rates(dtype, gemm_size) for dtype in DTYPES}
    info = platform_info()
    versions = info.pop("versions")
    return {
        **info,
        "threads": thread_settings.threads,
        "thread_settings": thread_settings.libraries,
        "notes": thread_settings.notes,
        "openblas_env": {
            key: os.environ[key]
            for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
            if key in os.environ
        },
        "versions": versions,
        "gemm_size": gemm_size,
        "gemm_gflops": {dtype: max(rates.values()) for dtype, rates in by_library.items()},
        "gemm_gflops_by_library": by_library,
        # The library with the fastest product at the start: its product is timed beside the
        # steps of every case in that dtype.
        "gemm_alongside_library": {
            dtype: max(rates, key=rates.__getitem__) for dtype, rates in by_library.items()
        },
        "gemm_measurements": dict.fromkeys(by_library, 1),
    }


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """``--json PATH`` (the figures, and their plot beside them) and ``--no-progress``, the
    options every ``python -m crossgrad.benchmarks.*`` command shares."""
    parser.add_argument(
        "--json",
        type=Path,
        metavar="PATH",
        help="write the figures to this JSON file, and their plot beside it (.png)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """``parser.parse_args(argv)``, and a usage error, before anything is measured, when
    ``--json`` asks for a file (and so for its plot) and matplotlib is not installed."""
    args = parser.parse_args(argv)
    if args.json is not None and not timing.installed("matplotlib"):
        parser.error(
            "--json also writes a plot, which needs matplotlib: pip install 'crossgrad[bench]'"
        )
    return args


def new_figure(width: float, height: float) -> Any:
    """A matplotlib ``Figure`` of ``width`` × ``height`` inches with the Agg canvas (no GUI,
    no global pyplot state), constrained layout."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def print_and_save(
    text: str,
    result: dict[str, Any],
    path: Path | None,
    plot: Callable[[dict[str, Any], Path], None] | None = None,
) -> int:
    """Print a benchmark's ``text``; with a ``path``, also write its ``result`` there as JSON
    (making the folder) and, given its ``plot`` function, the plot of it beside the JSON
    (``path`` with the suffix ``.png``).  Returns 0, the command's exit status."""
    print(text)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2) + "\n")
        if plot is not None:
            plot(result, path.with_suffix(".png"))
    return 0
