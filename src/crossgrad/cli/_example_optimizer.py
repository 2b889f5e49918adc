"""``crossgrad example --optimizer NAME --steps N``: the document's network through optimizer
steps, thin over ``crossgrad.optimizer_walkthrough``."""

from __future__ import annotations

import argparse

from ._common import UsageError, print_walkthrough, require_backends

OWN_NETWORK_OPTIONS = ("sizes", "activation", "loss", "seed", "lr")


def run_optimizer(args: argparse.Namespace) -> int:
    """Print the optimizer walk-through in ``args.format``; exit 0 when every backend agrees."""
    from .. import optimizer_walkthrough as ow

    given = [f"--{name}" for name in OWN_NETWORK_OPTIONS if getattr(args, name) is not None]
    if given:
        raise UsageError(
            f"{', '.join(given)}: --optimizer walks the document's own network and sample; "
            "leave them out"
        )
    from ..adapters.training import TRAINING_BACKENDS

    other = [name for name in args.backends if name not in TRAINING_BACKENDS]
    if other:
        raise UsageError(
            f"--backends with --optimizer must name training backends "
            f"({', '.join(TRAINING_BACKENDS)}), got {', '.join(other)}: a training run steps "
            "a framework's own optimizer"
        )
    require_backends(args.backends)
    w = ow.walk(args.optimizer, 2 if args.steps is None else args.steps, backends=args.backends)
    return print_walkthrough(ow, w, args.format, args.digits)
