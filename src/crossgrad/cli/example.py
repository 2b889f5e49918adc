"""``crossgrad example``: the worked example step by step, cross-checked, beside its figures.

Thin over ``crossgrad.walkthrough``.  Without ``--sizes`` it is the document's example; with
``--sizes`` (and ``--activation``, ``--loss``, ``--seed``, ``--lr``) a new one for any small
network.  Exit 0 when every backend agrees with the reference (the document's own errata are
reported, not a failure), 1 when one disagrees, 2 on a usage error.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..reference import ACTIVATIONS, LOSSES, Network
from ._common import (
    UsageError,
    backend_list,
    names,
    non_negative_int,
    positive_int,
    print_walkthrough,
)

FORMATS = ("text", "json", "markdown", "latex")
DEFAULT_BACKENDS = ("torch", "jax")
OWN_NETWORK_OPTIONS = ("activation", "loss", "seed", "lr")


def _sizes(text: str) -> tuple[int, ...]:
    sizes = tuple(positive_int(part) for part in text.split(","))
    if len(sizes) < 2:
        raise argparse.ArgumentTypeError(
            f"expected at least two comma-separated layer widths (input,...,output), got {text!r}"
        )
    return sizes


def _activations(text: str) -> tuple[str, ...]:
    return names(text, tuple(ACTIVATIONS), "activation")


def _lr(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite positive number, got {text}")
    return value


def _digits(text: str) -> int:
    value = positive_int(text)
    if value > 17:
        raise argparse.ArgumentTypeError(f"expected at most 17 digits, got {value}")
    return value


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "example",
        help="walk through the worked example, cross-checked with torch and jax",
        description="Walk through the worked example of backprop-worked-example.md step by "
        "step: each value computed exactly by the NumPy reference, checked against torch and "
        "jax, beside the document's printed figure (marked where it is off by more than one "
        "unit in its last printed place).  With --sizes, write a new worked example for a "
        "small network of your own.",
        epilog="Exit status: 0 when every backend agrees with the reference (the document's "
        "errata are reported, not a failure), 1 when one disagrees, 2 on a usage error or a "
        "missing framework.  Example: crossgrad example --format markdown --sizes 2,2,1 "
        "--activation tanh --loss half_sse --seed 3",
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument(
        "--format",
        choices=FORMATS,
        help="text (default): the walk-through; json: the same as data; markdown, latex: a "
        "worked example in the document's style",
    )
    output.add_argument(
        "--json", dest="format", action="store_const", const="json", help="same as --format json"
    )
    parser.set_defaults(format="text")
    own = parser.add_argument_group("a network of your own (instead of the document's)")
    own.add_argument("--sizes", type=_sizes, metavar="IN,...,OUT", help="layer widths, e.g. 2,2,1")
    own.add_argument(
        "--activation",
        type=_activations,
        metavar="NAME[,NAME...]",
        help=f"one for every layer, or one per layer (default sigmoid): {', '.join(ACTIVATIONS)}",
    )
    own.add_argument("--loss", choices=tuple(LOSSES), help="default half_sse")
    own.add_argument(
        "--seed",
        type=non_negative_int,
        help="draws the starting weights (reference.init_params) and x, y (default 0)",
    )
    own.add_argument("--lr", type=_lr, help="the learning rate η (default 0.1)")
    steps = parser.add_argument_group("optimizer steps (instead of one gradient-descent step)")
    steps.add_argument(
        "--optimizer",
        choices=("sgd", "adam", "adamw", "rmsprop", "adagrad"),
        help="walk the document's network through optimizer steps (torch's defaults): "
        "the gradient, the optimizer's state (Adam: m, v, m̂, v̂), the update",
    )
    steps.add_argument(
        "--steps", type=positive_int, help="with --optimizer: how many steps (default 2)"
    )
    parser.add_argument(
        "--digits",
        type=_digits,
        default=4,
        help="significant digits of the computed numbers in markdown and latex (default 4; "
        "the table of the document's printed figures keeps 8 for the exact values)",
    )
    parser.add_argument(
        "--backends",
        type=backend_list,
        default=DEFAULT_BACKENDS,
        metavar="NAMES",
        help="comma-separated backends to cross-check with: torch, jax, numeric "
        "(default torch,jax; with --optimizer: torch, jax)",
    )


def _network(args: argparse.Namespace) -> Network | None:
    if args.sizes is None:
        given = [f"--{name}" for name in OWN_NETWORK_OPTIONS if getattr(args, name) is not None]
        if given:
            verb = "are" if len(given) > 1 else "is"
            raise UsageError(
                f"{', '.join(given)} {verb} for a network of your own: give its --sizes too "
                "(e.g. --sizes 2,2,1); without --sizes the example is the document's"
            )
        return None
    activation: str | tuple[str, ...] = args.activation or "sigmoid"
    if len(activation) == 1:
        activation = activation[0]
    try:
        return Network(args.sizes, activation=activation, loss=args.loss or "half_sse")
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    from .. import walkthrough
    from ._common import require_backends

    if args.optimizer is not None:
        from ._example_optimizer import run_optimizer

        return run_optimizer(args)
    if args.steps is not None:
        raise UsageError("--steps goes with --optimizer (e.g. --optimizer adam --steps 2)")
    net = _network(args)
    require_backends(args.backends)
    if net is None:
        w = walkthrough.document(backends=args.backends)
    else:
        seed = 0 if args.seed is None else args.seed
        lr = 0.1 if args.lr is None else args.lr
        w = walkthrough.generate(net, seed, lr, backends=args.backends)
    return print_walkthrough(walkthrough, w, args.format, args.digits)
