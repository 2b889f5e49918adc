"""The benchmark report: a terminal table, the issue's goals, and results.json/.csv/.png."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from .backends import BACKENDS
from .runner import RESULT_KEYS, Report

GOALS = (
    # (case, other backend, what is compared, the goal's threshold), see ``goals``.
    ("4-3-2/b1/float64", "jax.jit", "throughput", 1.0),
    ("64-128-10/b32/float32", "torch", "throughput", 1.0),
    ("64-128-10/b32/float32", "jax.jit", "throughput", 1.0),
    ("784-1024-1024-10/b256/float32", "torch", "throughput", 0.9),
    ("784-1024-1024-10/b256/float32", None, "peak_fraction", 0.9),
)


def _case_id(record: dict[str, Any]) -> str:
    return f"{record['network']}/b{record['batch']}/{record['dtype']}"


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
        parts += ["", "Goals for the reference (issue 6), from this run:"]
        parts += [f"  {'met   ' if g['met'] else 'MISSED'} {g['text']}" for g in checked]
    return "\n".join(parts)


def goals(report: Report) -> list[dict[str, Any]]:
    """The issue's goals for the reference that this run can check, each with ``met``."""
    by_key = {(r["backend"], _case_id(r)): r for r in report["results"]}
    checked = []
    for case, other, what, threshold in GOALS:
        ours = by_key.get(("numpy", case))
        if ours is None:
            continue
        if what == "peak_fraction":
            value = ours["peak_fraction"]
            text = (
                f"{case}: numpy at {100 * value:.1f}% of GEMM peak (goal > {threshold:.0%}); "
                f"{100 * ours['alongside_fraction']:.1f}% of the GEMM rate timed alongside"
            )
        else:
            theirs = by_key.get((other, case))
            if theirs is None:
                continue
            value = ours["samples_per_s"] / theirs["samples_per_s"]
            text = (
                f"{case}: numpy {format_seconds(ours['median_s'])} vs {other} "
                f"{format_seconds(theirs['median_s'])}, throughput ratio {value:.2f} "
                f"(goal ≥ {threshold:g})"
            )
        checked.append(
            {"case": case, "other": other, "value": value, "met": value >= threshold, "text": text}
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


def plot(report: Report, path: Path) -> None:
    """Step time (top) and fraction of GEMM peak (bottom) against FLOPs per step, one column
    per dtype: a line per backend through each sweep (batch solid, width dashed), the
    headline cases as unconnected markers."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cases = {(c["network"], c["batch"], c["dtype"]): c for c in report["cases"]}
    dtypes = sorted({c["dtype"] for c in report["cases"]})
    fig = Figure(figsize=(6 * max(len(dtypes), 1), 8.5), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, max(len(dtypes), 1), squeeze=False, sharex="col")
    backends = list(dict.fromkeys(r["backend"] for r in report["results"]))
    colors = {name: f"C{i}" for i, name in enumerate(backends)}
    styles = {"batch sweep": ("-", "batch sweep"), "width sweep": ("--", "width sweep")}
    for col, dtype in enumerate(dtypes):
        top, bottom = axes[0][col], axes[1][col]
        for backend in backends:
            for group in ("headline", *styles):
                rows = [
                    (cases[(r["network"], r["batch"], dtype)]["flops"], r)
                    for r in report["results"]
                    if r["backend"] == backend
                    and r["dtype"] == dtype
                    and cases[(r["network"], r["batch"], dtype)]["group"] == group
                ]
                if not rows:
                    continue
                rows.sort(key=lambda item: item[0])
                x = [flops for flops, _ in rows]
                style, label = styles.get(group, ("none", "headline cases"))
                marker = "D" if group == "headline" else "o"
                kwargs = {"color": colors[backend], "linestyle": style, "marker": marker}
                kwargs["label"] = f"{backend}, {label}"
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
        top.legend(fontsize="small")
    machine = report["machine"]
    fig.suptitle(
        f"One SGD step (forward, backward, update), {machine['threads']} threads, {machine['cpu']}"
    )
    fig.savefig(path, dpi=110)
