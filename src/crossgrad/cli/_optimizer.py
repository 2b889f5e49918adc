"""``crossgrad check --optimizer NAME --impl MODULE:FUNC``: check your own optimizer step.

Thin over ``crossgrad.testing.check_optimizer``: the step ``FUNC(params, grads, state) ->
(params, state)`` is checked against the reference optimizer ``NAME`` with its torch
defaults (``--init MODULE:FUNC`` gives the first state; without it the first call gets
``None``).  Exit 0 when every case agrees, 1 on a disagreement, 2 on a usage error; with
``--json``, one JSON object instead of the text (``OptimizerCheckResult.to_dict``, or
``{"ok": false, "failure": OptimizerFailure.to_dict()}``).
"""

from __future__ import annotations

import argparse
import json
import sys

from ..reference.optimizers import OPTIMIZERS
from ._common import UsageError, import_testing
from ._impl import load_function


def run(args: argparse.Namespace) -> int:
    """Run the optimizer check that ``crossgrad check`` parsed."""
    if args.impl is None:
        raise UsageError(
            "--optimizer checks your own optimizer step: give it with --impl MODULE:FUNC "
            "(FUNC(params, grads, state) -> (params, state))"
        )
    testing = import_testing()
    step = load_function(args.impl, "--impl", "FUNC(params, grads, state) -> (params, state)")
    init = None if args.init is None else load_function(args.init, "--init", "FUNC(params)")
    optimizer = OPTIMIZERS[args.optimizer]()
    if not args.json:
        print(f"{args.impl} against the crossgrad reference {optimizer}", flush=True)
    try:
        result = testing.check_optimizer(
            step, optimizer, init=init, seed=args.seed, max_examples=args.trials
        )
    except testing.GradientMismatchError as exc:
        if args.json:
            print(json.dumps({"ok": False, "failure": exc.failure.to_dict()}))
            return 1
        print()
        print(exc)
        seed = getattr(exc.failure, "seed", None)
        print(f"\nRun it again with --seed {seed} to reproduce.")
        return 1
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    print(
        f"All {result.cases} cases agree (seed {result.seed}): worst error/tolerance "
        f"{result.max_err_over_tolerance:.3g}, worst relative error {result.max_rel_err:.3g}."
    )
    sys.stdout.flush()
    return 0
