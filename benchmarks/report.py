"""The benchmark report: a terminal table, the issue's goals, and results.json/.csv/.png."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from .backends import BACKENDS
from .cases import ACTIVATIONS
from .runner import RESULT_KEYS, Report, new_figure

MNIST = "784-1024-1024-10/b256/float32"

GOALS: tuple[tuple[str, str, str, float], ...] = (
    # (backend, case, the other backend or "best", threshold): the goal is met when
    # backend's throughput ≥ threshold × the other's ("best": the fastest other backend).
    *(("numpy", f"4-3-2/b1/float64/{act}", "jax.jit", 1 / 1.2) for act in ACTIVATIONS),
    *(("numpy", f"64-128-10/b32/float32/{act}", "torch", 1.0) for act in ACTIVATIONS),
    *(("numpy", f"64-128-10/b32/float32/{act}", "jax.jit", 1 / 1.2) for act in ACTIVATIONS),
    *(("numpy", f"{MNIST}/{act}", "torch", 1.0) for act in ACTIVATIONS),
    *(("numpy", f"{MNIST}/{act}", "best", 0.9) for act in ACTIVATIONS),
    *(("reference", f"{MNIST}/{act}", "numpy", 0.5) for act in ACTIVATIONS),
)


def _case_id(record: dict[str, Any]) -> str:
    return f"{record['network']}/b{record['batch']}/{record['dtype']}/{record['activation']}"


def format_seconds(s: float) -> str:
    """``s`` seconds in µs, ms or s with three significant digits."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if s >= scale or unit == "µs":
            return f"{s / scale:.3g} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover


def table(report: Report) -> str:
    """The results as an aligned text table, one row per case and backend."""
    first = {(r["backend"], _case_id(r)): r["first_step_s"] for r in report["compile"]}
    header = (
        "case", "backend", "median", "spread", "samples/s", "GFLOP/s", "peak", "alongside",
        "1st step",
    )  # fmt: skip
    rows = [header]
    for r in report["results"]:
        rows.append(
            (
                _case_id(r),
                r["backend"],
                format_seconds(r["median_s"]),
                format_seconds(r["spread_s"]),
                f"{r['samples_per_s']:,.0f}",
                f"{r['gflops']:.3g}",
                f"{100 * r['peak_fraction']:.1f}%",
                f"{100 * r['alongside_fraction']:.1f}%",
                format_seconds(first[(r["backend"], _case_id(r))]),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for k, row in enumerate(rows):
        cells = [
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def headline(report: Report) -> str:
    """The median step of every backend on each case of the run, one row per case: the
    side-by-side view the docs show (``table`` has every figure of every record)."""
    by_case: dict[str, dict[str, str]] = {}
    for r in report["results"]:
        by_case.setdefault(_case_id(r), {})[r["backend"]] = format_seconds(r["median_s"])
    names = [b for b in BACKENDS if any(b in row for row in by_case.values())]
    rows = [("case", *names)]
    rows += [(case, *(row.get(b, "-") for b in names)) for case, row in by_case.items()]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def summary(report: Report) -> str:
    """The machine line, the skipped backends, the table and the goals, as the CLI prints."""
    m = report["machine"]
    counts = m.get("gemm_measurements", {})
    gemm = ", ".join(
        f"{dt} {v:.1f}" + (f" (best of {counts[dt]})" if dt in counts else "")
        for dt, v in m["gemm_gflops"].items()
    )
    blas = "; ".join(
        " ".join(str(b[key]) for key in ("internal_api", "version", "architecture") if b[key])
        + f" ({b['num_threads']} threads)"
        for b in m["thread_settings"].get("blas", [])
    )
    parts = [
        f"{m['cpu']}: {m['threads']} threads for every backend; thread pools: {blas}",
        f"GEMM peak ({m['gemm_size']}² matmul, best library and best measurement in the run): "
        f"{gemm} GFLOP/s",
        "alongside: the fraction of the GEMM rate timed in the same rounds as the case ("
        + ", ".join(f"{lib} for {dt}" for dt, lib in m["gemm_alongside_library"].items())
        + ")",
    ]
    if m["openblas_env"]:
        parts.append(f"note: OpenBLAS environment set: {m['openblas_env']}")
    parts += [f"note: {note}" for note in m["notes"]]
    left_out = [name for name in BACKENDS if name not in report["settings"]["backends"]]
    if left_out:
        parts.append(f"not run: {', '.join(left_out)} (not asked for; see --backends)")
    for s in report["skipped"]:
        where = f" on {s['case']}" if "case" in s else ""
        parts.append(f"skipped {s['backend']}{where}: {s['reason']}")
    parts += ["", table(report)]
    checked = goals(report)
    if checked:
        parts += ["", "Goals (throughput ratios of medians from this run):"]
        parts += [f"  {'met   ' if g['met'] else 'MISSED'} {g['text']}" for g in checked]
    return "\n".join(parts)


def goals(report: Report) -> list[dict[str, Any]]:
    """The goals (``GOALS``) that this run can check, each with its ratio and ``met``."""
    by_key = {(r["backend"], _case_id(r)): r for r in report["results"]}
    checked = []
    for backend, case, other, threshold in GOALS:
        ours = by_key.get((backend, case))
        if ours is None:
            continue
        if other == "best":
            rivals = [r for (b, c), r in by_key.items() if c == case and b != backend]
            if not rivals:
                continue
            theirs = max(rivals, key=lambda r: r["samples_per_s"])
        else:
            theirs = by_key.get((other, case))
            if theirs is None:
                continue
        value = ours["samples_per_s"] / theirs["samples_per_s"]
        versus = f"the best other ({theirs['backend']})" if other == "best" else other
        text = (
            f"{case}: {backend} {format_seconds(ours['median_s'])} vs {versus} "
            f"{format_seconds(theirs['median_s'])}, throughput ratio {value:.2f} "
            f"(goal ≥ {threshold:.2g})"
        )
        checked.append(
            {
                "backend": backend,
                "case": case,
                "other": theirs["backend"] if other == "best" else other,
                "value": value,
                "threshold": threshold,
                "met": value >= threshold,
                "text": text,
            }
        )
    return checked


def write(report: Report, out: Path) -> list[Path]:
    """Write ``results.json``, ``results.csv`` and ``results.png`` into ``out``; their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "results.json", out / "results.csv", out / "results.png"]
    paths[0].write_text(json.dumps(report | {"goals": goals(report)}, indent=2) + "\n", "utf-8")
    with paths[1].open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=RESULT_KEYS)
        writer.writeheader()
        writer.writerows({key: r[key] for key in RESULT_KEYS} for r in report["results"])
    plot(report, paths[2])
    return paths


MARKERS = {"sigmoid": "D", "tanh": "s", "relu": "^"}


def _series(
    report: Report, cases: dict[str, dict[str, Any]], backend: str, dtype: str
) -> dict[tuple[str, str], list[tuple[int, dict[str, Any]]]]:
    """``backend``'s results in ``dtype`` by (group, activation), each sorted by FLOPs."""
    series: dict[tuple[str, str], list[tuple[int, dict[str, Any]]]] = {}
    for r in report["results"]:
        if r["backend"] == backend and r["dtype"] == dtype:
            case = cases[_case_id(r)]
            series.setdefault((case["group"], r["activation"]), []).append((case["flops"], r))
    for rows in series.values():
        rows.sort(key=lambda item: item[0])
    return series


def plot(report: Report, path: Path) -> None:
    """Step time (top) and fraction of GEMM peak (bottom) against FLOPs per step, one column
    per dtype: a line per backend through each sweep (batch solid, width dashed), the
    headline (and ``--case``) cases as unconnected markers, one shape per activation."""
    cases = {_case_id(c): c for c in report["cases"]}
    dtypes = sorted({c["dtype"] for c in report["cases"]})
    fig = new_figure(6 * max(len(dtypes), 1), 8.5)
    axes = fig.subplots(2, max(len(dtypes), 1), squeeze=False, sharex="col")
    backends = list(dict.fromkeys(r["backend"] for r in report["results"]))
    colors = {name: f"C{i}" for i, name in enumerate(backends)}
    styles = {"batch sweep": ("-", "batch sweep"), "width sweep": ("--", "width sweep")}
    for col, dtype in enumerate(dtypes):
        top, bottom = axes[0][col], axes[1][col]
        for backend in backends:
            for (group, activation), rows in _series(report, cases, backend, dtype).items():
                x = [flops for flops, _ in rows]
                style, label = styles.get(group, ("none", activation))
                kwargs = {
                    "color": colors[backend],
                    "linestyle": style,
                    "marker": MARKERS.get(activation, "o") if style == "none" else "o",
                    "label": f"{backend}, {label}",
                }
                top.plot(x, [r["median_s"] for _, r in rows], **kwargs)
                bottom.plot(x, [r["peak_fraction"] for _, r in rows], **kwargs)
        top.set(xscale="log", yscale="log", ylabel="seconds per SGD step", title=dtype)
        gemm = report["machine"]["gemm_gflops"][dtype]
        bottom.set(
            xscale="log",
            xlabel="FLOPs per step (network size × batch)",
            ylabel=f"fraction of GEMM peak ({gemm:.0f} GFLOP/s)",
        )
        bottom.axhline(1.0, color="grey", linewidth=0.8, linestyle=":")
        for ax in (top, bottom):
            ax.grid(True, which="both", alpha=0.3)
        top.legend(fontsize="x-small", ncol=2)
    machine = report["machine"]
    fig.suptitle(
        f"One SGD step (forward, backward, update), {machine['threads']} threads, {machine['cpu']}"
    )
    fig.savefig(path, dpi=110)
