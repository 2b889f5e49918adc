"""What a step of the fast NumPy backend costs, part by part, on small and MNIST-sized networks.

On a network of a few units a ``numpy`` training step is bound by calls, not arithmetic.  This
benchmark times, side by side in one process, the parts of ``numpy_backend.train_step`` on
the small headline cases (the worked example's 4-3-2 at one sample in float64, and 64-128-10
at batch 32 in float32), beside the whole step and beside ``jax.jit``'s step:

- ``step``: the ``numpy`` row of ``crossgrad bench``, ``train_step`` with the params it made
  last fed back in;
- ``checks``: the input checks of that call (``numpy_backend._prepare``, its fast path, as
  ``train_step`` calls it);
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

On the MNIST-sized headline cases (784-1024-1024-10 at batch 256, float32, one per hidden
activation) a step is bound by its matrix products instead; the same interleaved rounds time
(``products`` in the result):

- ``numpy``: the ``numpy`` row of ``crossgrad bench`` (as ``step`` above);
- ``numpy products``: the BLAS calls of that step alone, on its own workspace arrays, with
  ``out=`` as the step makes them: ``a W_lᵀ`` per layer forward, and per layer backward
  ``δ_lᵀ a_{l-1}``, ``1ᵀδ_l`` and (below the top) ``δ_l W_l``;
- ``torch``: the ``torch`` row of ``crossgrad bench`` (eager, ``torch.autograd.grad``);
- ``torch products``: the same products in torch (``torch.mm``/``torch.mv`` with ``out=``,
  on tensors sharing the NumPy arrays' memory).

Both libraries run on as many threads as the process has cores, as in ``crossgrad bench``.
The step less its products is what the elementwise work, the loss, the update and the
contract cost.

    python -m crossgrad.benchmarks.floor --json benchmarks/results/floor.json

writes the figures to ``floor.json`` and their plot to ``floor.png`` beside it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from ..adapters import numpy_backend
from ..cli._common import positive_int
from ..reference import Params
from . import backends, timing
from .cases import parse_case
from .runner import add_output_options, new_figure, parse_args, platform_info, print_and_save

CASES = ("4-3-2/b1/float64/sigmoid", "64-128-10/b32/float32/sigmoid")
PARTS = ("step", "checks", "compute", "params", "rest", "numpy_call", "jax.jit")
LARGE_CASES = tuple(f"784-1024-1024-10/b256/float32/{a}" for a in ("sigmoid", "tanh", "relu"))
PRODUCT_PARTS = ("numpy", "numpy products", "torch", "torch products")


def _parts(case_id: str) -> dict[str, timing.Timed]:
    """The timed parts of one case, each a ``timing.Timed`` (``rest`` is derived, not timed)."""
    problem = backends.make_problem(parse_case(case_id))
    net, x, y, lr = problem.net, problem.x, problem.y, problem.lr
    step = backends.prepare("numpy", problem)
    step.warm_up()
    _, made = numpy_backend.train_step(net, problem.params, x, y, lr)  # the params fed back
    ws = numpy_backend.workspace(net, x.shape[0], x.dtype)
    _, weight_grads, bias_grads = numpy_backend.layout(net.sizes, x.dtype)
    weights, biases = list(made.weights), list(made.biases)
    z, t = ws.zs[-1].copy(), np.empty_like(ws.zs[-1])
    parts: dict[str, timing.Timed] = {
        "step": step,
        "checks": timing.Product(lambda: numpy_backend._prepare(net, made, x, y, step=True)),
        "compute": timing.Product(
            lambda: numpy_backend._gradients(
                ws, made, x, y, ws.zs, ws.activations, weight_grads, bias_grads, lr
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


def _products(
    case_id: str,
    problem: backends.Problem | None = None,
    grads: tuple[tuple[NDArray[Any], ...], tuple[NDArray[Any], ...]] | None = None,
) -> dict[str, timing.Timed]:
    """The ``numpy`` and ``torch`` steps of a case and the matrix products of each alone (on
    ``problem``'s params and the step's workspace, the gradients into ``grads``, weights' and
    biases', as ``numpy_backend.layout`` makes them; ``problem`` is made from ``case_id`` and
    ``grads`` allocated if not given)."""
    import torch

    if problem is None:
        problem = backends.make_problem(parse_case(case_id))
    net, x = problem.net, problem.x
    steps = {name: backends.prepare(name, problem) for name in ("numpy", "torch")}
    for step in steps.values():
        step.warm_up()  # the numpy step fills its workspace: the products' operands
    ws = numpy_backend.workspace(net, x.shape[0], x.dtype)
    if grads is None:
        _, weight_grads, bias_grads = numpy_backend.layout(net.sizes, x.dtype)
    else:
        weight_grads, bias_grads = grads
    weights, product = problem.params.weights, ws.product
    inputs = [x, *ws.activations[1:-1]]  # a_{l-1} of every layer l

    def numpy_products() -> None:
        for l, W in enumerate(weights):
            product(inputs[l], W.T, out=ws.zs[l])
        for l in range(len(weights) - 1, -1, -1):
            delta = ws.deltas[l]
            product(delta.T, inputs[l], out=weight_grads[l])
            product(ws.ones, delta, out=bias_grads[l])
            if l:
                product(delta, weights[l], out=ws.deltas[l - 1])

    t = [torch.from_numpy(a) for a in inputs]
    tw = [torch.from_numpy(W) for W in weights]
    tz, td = [torch.from_numpy(z) for z in ws.zs], [torch.from_numpy(d) for d in ws.deltas]
    tgw = [torch.from_numpy(g) for g in weight_grads]
    tgb = [torch.from_numpy(g) for g in bias_grads]
    ones = torch.from_numpy(ws.ones.copy())

    def torch_products() -> None:
        for l, W in enumerate(tw):
            torch.mm(t[l], W.t(), out=tz[l])
        for l in range(len(tw) - 1, -1, -1):
            torch.mm(td[l].t(), t[l], out=tgw[l])
            torch.mv(td[l].t(), ones, out=tgb[l])
            if l:
                torch.mm(td[l], tw[l], out=td[l - 1])

    return {
        "numpy": steps["numpy"],
        "numpy products": timing.Product(numpy_products),
        "torch": steps["torch"],
        "torch products": timing.Product(torch_products),
    }


def measure(
    cases: Sequence[str] = CASES,
    rounds: int = 15,
    min_sample_s: float = 0.05,
    pause_s: float = 0.15,
    progress: bool = True,
    large_cases: Sequence[str] = LARGE_CASES,
) -> dict[str, Any]:
    """The median seconds per call of every part of every case, as a JSON-ready dict.

    Timed as ``crossgrad bench`` times its steps (``timing.calibrate`` and ``timing.measure``:
    interleaved rounds, the starting part rotating, ``pause_s`` between samples; the defaults
    are the full benchmark's).  ``large_cases`` are timed for ``products`` when torch is
    installed."""
    large = list(large_cases) if backends.available()["torch"] is None else []
    result: dict[str, Any] = {
        "machine": platform_info(),
        "settings": {"rounds": rounds, "min_sample_s": min_sample_s, "pause_s": pause_s},
        "cases": {},
    }
    bar = tqdm(total=len(cases) + len(large), desc="floor", disable=not progress, file=sys.stderr)
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
    if large:
        result["products"] = {}
        with timing.limit_threads(timing.default_threads()) as threads:
            result["settings"]["threads"] = threads.threads
            for case_id in large:
                parts = _products(case_id)
                numbers = {name: timing.calibrate(p, min_sample_s) for name, p in parts.items()}
                timings = timing.measure(parts, numbers, rounds, pause_s)
                result["products"][case_id] = {name: t.median for name, t in timings.items()}
                bar.update()
    bar.close()
    return result


def table(result: dict[str, Any]) -> str:
    """The medians as plain-text tables: the small cases' parts in microseconds per call,
    then (when measured) the large cases' steps and products in milliseconds."""
    cases = list(result["cases"])
    lines: list[str] = []
    if cases:
        lines.append(f"{'µs per call':<12}" + "".join(f"{c:>32}" for c in cases))
        for part in PARTS:
            if all(part in result["cases"][c] for c in cases):
                row = "".join(f"{1e6 * result['cases'][c][part]:>32.1f}" for c in cases)
                lines.append(f"{part:<12}{row}")
    products = result.get("products", {})
    if products:
        if lines:
            lines.append("")
        lines.append(f"{'ms per call':<38}" + "".join(f"{p:>16}" for p in PRODUCT_PARTS))
        for case_id, medians in products.items():
            row = "".join(f"{1e3 * medians[p]:>16.2f}" for p in PRODUCT_PARTS)
            lines.append(f"{case_id:<38}{row}")
    return "\n".join(lines)


def plot(result: dict[str, Any], path: Path) -> None:
    """The small cases' ``numpy`` step as stacked parts (checks, compute, params, rest) beside
    ``jax.jit``'s step, and (when measured) each large case's ``numpy`` and ``torch`` steps as
    their matrix products plus the rest."""
    products = result.get("products", {})
    fig = new_figure(13 if products else 6.5, 4.8)
    axes = fig.subplots(1, 2 if products else 1, squeeze=False)[0]
    small, cases = axes[0], list(result["cases"])
    bottom = [0.0] * len(cases)
    for i, part in enumerate(("checks", "compute", "params", "rest")):
        values = [1e6 * result["cases"][c][part] for c in cases]
        small.bar(
            [k - 0.2 for k in range(len(cases))],
            values,
            0.4,
            bottom=bottom,
            label=f"numpy: {part}",
            color=f"C{i}",
        )
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    if all("jax.jit" in result["cases"][c] for c in cases):
        values = [1e6 * result["cases"][c]["jax.jit"] for c in cases]
        small.bar(
            [k + 0.2 for k in range(len(cases))], values, 0.4, label="jax.jit step", color="C7"
        )
    small.set(
        xticks=range(len(cases)),
        xticklabels=cases,
        ylabel="µs per step",
        title="a small step, part by part",
    )
    small.legend(fontsize="small")
    if products:
        large, ids = axes[1], list(products)
        for j, library in enumerate(("numpy", "torch")):
            x = [k + (j - 0.5) * 0.4 for k in range(len(ids))]
            made = [1e3 * products[c][f"{library} products"] for c in ids]
            rest = [1e3 * (products[c][library] - products[c][f"{library} products"]) for c in ids]
            large.bar(x, made, 0.4, label=f"{library}: matrix products", color=f"C{2 * j}")
            large.bar(
                x,
                rest,
                0.4,
                bottom=made,
                label=f"{library}: the rest of the step",
                color=f"C{2 * j + 1}",
            )
        large.set(
            xticks=range(len(ids)),
            xticklabels=[c.rsplit("/", 1)[1] for c in ids],
            ylabel="ms per step",
            title=f"{ids[0].rsplit('/', 1)[0]}: numpy and torch",
        )
        large.legend(fontsize="small")
    machine = result["machine"]
    fig.suptitle(f"One SGD step, part by part, {machine['cores']} cores, {machine['cpu']}")
    fig.savefig(path, dpi=100)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m crossgrad.benchmarks.floor", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--rounds", type=positive_int, default=15, help="interleaved rounds (15)")
    add_output_options(parser)
    args = parse_args(parser, argv)
    result = measure(rounds=args.rounds, progress=not args.no_progress)
    return print_and_save(table(result), result, args.json, plot)


if __name__ == "__main__":
    sys.exit(main())
