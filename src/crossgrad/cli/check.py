"""``crossgrad check``: a random cross-check sweep of the backends, or of your own backprop.

Thin over ``crossgrad.testing.sweep``: parses the options, shows a progress bar on stderr,
prints the summary table and, on a disagreement, the smallest failing case Hypothesis shrank
to (with a hint where the bug is recognised).  Exit 0 when everything agrees, 1 on a
disagreement (or an exception in ``--impl``'s code), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..reference import ACTIVATIONS, LOSSES, REDUCTIONS
from ..reference.optimizers import OPTIMIZERS
from ._common import (
    UsageError,
    backend_list,
    names,
    non_negative_int,
    positive_int,
    require_backends,
)
from ._impl import load_function

DTYPES = ("float32", "float64")


def _range(text: str) -> tuple[int, int]:
    """``N`` or ``MIN-MAX`` (also ``MIN,MAX``), both positive, ``MIN <= MAX``."""
    parts = text.replace(",", "-").split("-")
    if len(parts) not in (1, 2):
        raise argparse.ArgumentTypeError(f"expected N or MIN-MAX, got {text!r}")
    low, high = (positive_int(p) for p in (parts[0], parts[-1]))
    if low > high:
        raise argparse.ArgumentTypeError(f"expected MIN <= MAX, got {text!r}")
    return low, high


def _repeatable(known: tuple[str, ...], what: str) -> Any:
    def parse(text: str) -> tuple[str, ...]:
        return names(text, known, what)

    parse.__name__ = what  # argparse names the type in its messages
    return parse


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "check",
        help="cross-check the backends (or your own backprop) on random networks",
        description="Draw random networks, parameters and batches (crossgrad.strategies), "
        "compute their gradients with the NumPy reference and with torch, jax (or "
        "finite differences), or with your own backprop (--impl), and compare them under "
        "crossgrad's tolerance model.  On a disagreement, Hypothesis shrinks the case to the "
        "smallest one that still fails.",
        epilog="Exit status: 0 everything agrees, 1 a disagreement (the smallest failing case "
        "is printed), 2 a usage error.  Example: crossgrad check --impl my_backprop:backprop "
        "--trials 200 --activation sigmoid --loss half_sse",
    )
    parser.add_argument(
        "--trials", type=positive_int, default=100, help="cases to draw (default 100)"
    )
    parser.add_argument(
        "--seed", type=non_negative_int, help="reproduce a run (default: a fresh one, printed)"
    )
    for option, what, default in (
        ("--depth", "weight layers", "1-5"),
        ("--width", "width of every layer", "1-32"),
        ("--batch", "samples per batch", "1-16"),
    ):
        parser.add_argument(
            option, type=_range, metavar="N|MIN-MAX", help=f"{what} (default {default})"
        )
    for option, known in (
        ("--activation", tuple(ACTIVATIONS)),
        ("--loss", tuple(LOSSES)),
        ("--reduction", REDUCTIONS),
    ):
        what = option.lstrip("-")
        parser.add_argument(
            option,
            action="append",
            type=_repeatable(known, what),
            metavar="NAME",
            help=f"repeatable, or comma-separated (default: all): {', '.join(known)}",
        )
    parser.add_argument(
        "--dtype",
        choices=DTYPES,
        help="default: both for the backends, float64 for --impl",
    )
    what = parser.add_mutually_exclusive_group()
    what.add_argument(
        "--backends",
        type=backend_list,
        metavar="NAMES",
        help="comma-separated subset of torch,jax,numeric (default: torch,jax); numeric "
        "(central differences) is slow on wide networks",
    )
    what.add_argument(
        "--impl",
        metavar="MODULE:FUNC",
        help="check your own backprop FUNC(net, params, x, y) instead: it returns a result "
        "like reference.backprop's or a tuple (loss, weight_grads, bias_grads); MODULE is "
        "imported from the current directory or PYTHONPATH",
    )
    parser.add_argument(
        "--optimizer",
        choices=tuple(OPTIMIZERS),
        help="check your own optimizer step instead: --impl names FUNC(params, grads, state) "
        "-> (params, state), compared with this reference optimizer (torch's defaults)",
    )
    parser.add_argument(
        "--init",
        metavar="MODULE:FUNC",
        help="with --optimizer: FUNC(params) gives your step's first state (default None)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _flatten(groups: list[tuple[str, ...]] | None) -> list[str] | None:
    return None if groups is None else list(dict.fromkeys(n for g in groups for n in g))


def run(args: argparse.Namespace) -> int:
    if args.optimizer is not None:
        from . import _optimizer

        return _optimizer.run(args)
    if args.init is not None:
        raise UsageError("--init goes with --optimizer (your optimizer step's first state)")
    try:
        from .. import testing
    except ModuleNotFoundError as exc:
        if exc.name != "hypothesis":
            raise
        raise UsageError(
            "crossgrad check draws its cases with Hypothesis, which is not installed: "
            "pip install 'crossgrad[test]'"
        ) from None
    from tqdm import tqdm  # type: ignore[import-untyped, unused-ignore]

    impl = None if args.impl is None else load_function(args.impl)
    backends: tuple[str, ...] = ()
    if impl is None:
        backends = args.backends or ("torch", "jax")
        require_backends(backends)
    dtype = args.dtype or ("float64" if impl is not None else None)
    ranges = {k: getattr(args, k) for k in ("depth", "width", "batch") if getattr(args, k)}
    candidate = f"{args.impl}" if impl is not None else ", ".join(backends)

    bar = tqdm(
        total=args.trials,
        desc=f"checking {candidate}",
        unit="case",
        file=sys.stderr,
        disable=args.no_progress,
        leave=False,
    )

    def progress(checked: int, trials: int) -> None:
        bar.update(checked - bar.n)

    try:  # every option was checked by the parser; the user's own errors are in the result
        result = testing.sweep(
            backends,
            impl=impl,
            trials=args.trials,
            seed=args.seed,
            activations=_flatten(args.activation),
            losses=_flatten(args.loss),
            reductions=_flatten(args.reduction),
            dtype=dtype,
            progress=progress,
            **ranges,
        )
    finally:
        bar.close()

    cases = f"{result.cases} case{'s' if result.cases != 1 else ''}"
    print(f"{candidate} against the crossgrad reference: {cases} checked (seed {result.seed})")
    print(result.table())
    if result.failure is not None:
        print()
        print(result.failure)
        print(f"\nRun it again with --seed {result.seed} to reproduce.")
        return 1
    print(f"\nAll {result.cases} cases agree.")
    return 0
