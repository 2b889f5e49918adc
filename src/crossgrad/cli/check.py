"""``crossgrad check``: a random cross-check sweep of the backends, or of your own backprop.

Thin over ``crossgrad.testing.sweep``: parses the options, shows a progress bar on stderr,
prints the summary table and, on a disagreement, the smallest failing case Hypothesis shrank
to (with hints where the bug is recognised); with ``--json``, one JSON object instead
(``SweepResult.to_dict()``).  Exit 0 when everything agrees, 1 on a disagreement (or an
exception in ``--impl``'s code), 2 on a usage error (including an ``--impl`` that declines
every case).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from typing import Any

from ..adapters import BackendImportError
from ..reference import ACTIVATIONS, LOSSES, REDUCTIONS
from ..reference.optimizers import OPTIMIZERS
from ._common import (
    UsageError,
    backend_list,
    import_testing,
    missing_backend,
    names,
    non_negative_int,
    positive_int,
    positive_seconds,
    require_backends,
)
from ._impl import load_function

DTYPES = ("float32", "float64")
# The names of crossgrad.testing and crossgrad.strategies, written here because those modules
# import Hypothesis, which the other subcommands do not need (tests/test_cli_check.py holds
# them equal).
WEIGHT_LAYOUTS = ("out_in", "in_out")
SAMPLE_LAYOUTS = ("rows", "columns")
KINK_POLICIES = ("include", "avoid", "only")


def _range(text: str) -> tuple[int, int]:
    """``N`` or ``MIN-MAX`` (also ``MIN,MAX``), both positive, ``MIN <= MAX``."""
    parts = text.replace(",", "-").split("-")
    if len(parts) not in (1, 2) or not all(parts):  # ('-3' splits into '' and '3')
        raise argparse.ArgumentTypeError(
            f"expected N or MIN-MAX of positive integers, got {text!r}"
        )
    low, high = (positive_int(p) for p in (parts[0], parts[-1]))
    if low > high:
        raise argparse.ArgumentTypeError(f"expected MIN <= MAX, got {text!r}")
    return low, high


_NO_KINKS = "all; with --backends numeric, those without a kink"
RESTRICTIONS = (
    ("--activation", tuple(ACTIVATIONS), "every layer's activation", _NO_KINKS),
    ("--hidden-activation", tuple(ACTIVATIONS), "the hidden layers' (overrides --activation)",
     _NO_KINKS),
    ("--output-activation", tuple(ACTIVATIONS), "the output layer's (overrides --activation)",
     _NO_KINKS),
    ("--loss", tuple(LOSSES), "the loss", "all"),
    ("--reduction", REDUCTIONS, "the reduction over the batch", "all"),
)  # fmt: skip
"""The options that say which activations and losses are drawn: ``(option, the names it
takes, what it restricts, its default)``."""

_OPTION_NAMES = (
    (re.compile(r"\bkinks='(\w+)'"), r"--kinks \1"),
    (re.compile(r"\boutput_activation\b"), "--output-activation"),
    (re.compile(r"\bhidden_activations\b"), "--hidden-activation"),
)
"""The Python names in ``strategies``' messages about restrictions, as the options say them."""


def _as_options(message: str) -> str:
    """``message`` with the Python parameter names it uses replaced by the options' names."""
    for pattern, option in _OPTION_NAMES:
        message = pattern.sub(option, message)
    return message


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
        "--trials 200 --activation sigmoid --loss half_sse --reduction mean (name the "
        "reduction your backprop uses: without --reduction, both mean and sum are drawn)",
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
    for option, known, which, default in RESTRICTIONS:
        what = option.lstrip("-")
        parser.add_argument(
            option,
            action="append",
            type=_repeatable(known, what),
            metavar="NAME",
            help=f"{which}; repeatable, or comma-separated (default: {default}): "
            f"{', '.join(known)}",
        )
    parser.add_argument(
        "--kinks",
        choices=KINK_POLICIES,
        help="exact relu/leaky_relu kinks: include them (default), avoid them (no "
        "pre-activation near 0; the default with --backends numeric, whose central "
        "differences straddle a kink), or only cases with at least one",
    )
    parser.add_argument(
        "--far-out",
        action=argparse.BooleanOptionalAction,
        help="cases with pre-activations out to |z| ~ 1e6, where saturating activations and "
        "clipped or unstable losses show (default: on for the backends except numeric, off "
        "for --impl)",
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
        "--weights",
        choices=WEIGHT_LAYOUTS,
        default="out_in",
        help="with --impl: W as (out, in) (default, z = W a + b) or (in, out) (z = a W + b); "
        "dL/dW is returned in the same layout",
    )
    parser.add_argument(
        "--samples",
        choices=SAMPLE_LAYOUTS,
        default="rows",
        help="with --impl: x (batch, in) (default) or columns: x (in, batch), y (out, batch), "
        "biases (out, 1)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object (the report) and nothing else"
    )
    parser.add_argument(
        "--workers",
        type=_workers,
        default=1,
        metavar="N|auto",
        help="processes to split the trials over (default 1; auto: one per core); with N > 1 "
        "a seed draws the same cases whatever N",
    )
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=60.0,
        metavar="SECONDS",
        help="time limit per case for --impl's function (default 60): a case that takes "
        "longer is a failure",
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


def _workers(text: str) -> int:
    """``auto`` (one per core) or a positive integer."""
    if text == "auto":
        if hasattr(os, "sched_getaffinity"):  # the cores this process may use
            return len(os.sched_getaffinity(0))
        return os.cpu_count() or 1
    return positive_int(text)


def _flatten(groups: list[tuple[str, ...]] | None) -> list[str] | None:
    return None if groups is None else list(dict.fromkeys(n for g in groups for n in g))


def run(args: argparse.Namespace) -> int:
    if args.optimizer is not None:
        from . import _optimizer

        return _optimizer.run(args)
    if args.init is not None:
        raise UsageError("--init goes with --optimizer (your optimizer step's first state)")
    testing = import_testing()
    from tqdm import tqdm  # type: ignore[import-untyped, unused-ignore]

    impl = None if args.impl is None else load_function(args.impl)
    backends: tuple[str, ...] = ()
    if impl is None:
        if args.weights != "out_in" or args.samples != "rows":
            raise UsageError("--weights and --samples describe your --impl; pass --impl too")
        backends = args.backends or ("torch", "jax")
        require_backends(backends, load=False)
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

    from ..testing._parallel import process_pool

    # every option was checked by the parser; the user's own errors are in the result
    try:
        with process_pool(args.workers) as executor:
            result = testing.sweep(
                backends,
                impl=impl,
                trials=args.trials,
                seed=args.seed,
                activations=_flatten(args.activation),
                hidden_activations=_flatten(args.hidden_activation),
                output_activation=_flatten(args.output_activation),
                losses=_flatten(args.loss),
                reductions=_flatten(args.reduction),
                dtype=dtype,
                kinks=args.kinks,
                far_out=args.far_out,
                weights=args.weights,
                samples=args.samples,
                progress=progress,
                executor=executor,
                timeout=args.timeout,
                spawn=True,  # jax imports and compiles in a process of its own meanwhile
                **ranges,
            )
    except ValueError as exc:  # restrictions that contradict each other
        raise UsageError(_as_options(str(exc))) from None
    except BackendImportError as exc:  # a backend's framework failed to import
        raise missing_backend(exc.backend, exc, backends) from None
    finally:
        bar.close()

    if result.failure is not None and result.failure.candidate.startswith("your backprop"):
        result = _named_candidate(result, candidate)
    if args.json:
        report = result.to_dict()
        if result.checked == 0:
            report["error"] = f"{candidate} declined every case drawn"
        print(json.dumps(report))
        if result.checked == 0:
            return 2
        return 0 if result.ok else 1
    if result.cases == 0 and result.failure is None:
        raise UsageError(
            f"{candidate} declined every case drawn ({result.declined_text()}); restrict the "
            "cases to the ones it handles (--activation, --loss, ...)"
        )
    print(f"{candidate} against the crossgrad reference: {result.summary()} (seed {result.seed})")
    table = result.table()
    if table:  # empty when the first case failed: nothing agreed to summarise
        print(table)
    if result.declined:
        print(result.declined_text())
    if result.failure is not None:
        print()
        print(result.failure)
        if impl is not None and not any(
            getattr(args, option.lstrip("-").replace("-", "_")) for option, *_ in RESTRICTIONS
        ):
            print(
                "\nThe cases were drawn from every activation, loss and reduction: if your "
                "code implements one network, restrict them to it (--hidden-activation, "
                "--output-activation, --loss, --reduction), or raise "
                "crossgrad.testing.Unsupported on the cases it does not handle."
            )
        print(f"\nRun it again with --seed {result.seed} to reproduce.")
        return 1
    print(f"\nAll {result.cases} cases agree.")
    return 0


def _named_candidate(result: Any, name: str) -> Any:
    """The result with the failure's candidate named as on the command line."""
    import dataclasses

    failure = result.failure
    label = failure.candidate.replace("your backprop", name, 1)
    return dataclasses.replace(result, failure=dataclasses.replace(failure, candidate=label))
