"""Check a backpropagation against crossgrad's reference, on cases Hypothesis draws and shrinks.

For a user's own implementation ``fn(net, params, x, y)``, returning a result like
``reference.backprop``'s (``.loss`` and ``.grads`` with ``.weights`` and ``.biases``) or a tuple
``(loss, weight_grads, bias_grads)``::

    from crossgrad import testing

    testing.check_implementation(my_backprop)                    # many random cases
    testing.assert_gradients_match(my_backprop, net, params, x, y)   # one case

Both raise ``GradientMismatchError`` (an ``AssertionError``) whose message shows the smallest
failing case, which array is wrong and by how much, and a hint where the bug is recognised.
An exception raised by ``fn`` is reported the same way, with the smallest case that raises it.

``sweep`` is the engine behind both and behind ``crossgrad check``: it also cross-checks the
adapters (torch, jax, numeric) against the reference and returns a ``SweepResult``.

Every comparison uses the tolerance model of ``crossgrad.adapters.tolerance``.  Hypothesis
is imported by this module; ``import crossgrad`` does not import it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..reference import ACTIVATIONS, Network, Params
from ..reference.validation import check_inputs
from ..strategies import BATCH, DEPTH, WIDTH, Case, Range, cases
from ._compare import Backprop
from ._optimizer import OptimizerCase, OptimizerCheckResult, OptimizerFailure, check_optimizer
from ._sweep import (
    ErrorStats,
    Failure,
    GradientMismatchError,
    Progress,
    SweepResult,
    _Outcome,
    impl_checker,
    run,
)

__all__ = [
    "Backprop",
    "ErrorStats",
    "Failure",
    "GradientMismatchError",
    "OptimizerCase",
    "OptimizerCheckResult",
    "OptimizerFailure",
    "SweepResult",
    "assert_gradients_match",
    "check_implementation",
    "check_optimizer",
    "sweep",
]

Names = str | Sequence[str] | None
KINKED = ("relu", "leaky_relu")
"""Activations with a kink, which central differences cannot check near it."""

for _public in (
    ErrorStats, Failure, GradientMismatchError, SweepResult,
    OptimizerCase, OptimizerCheckResult, OptimizerFailure,
):  # fmt: skip
    _public.__module__ = __name__  # tracebacks and reprs show the public path


def _backend_checker(backends: Sequence[Any] | None, rtol: float | None, atol: float | None) -> Any:
    from .. import adapters

    def check(case: Case) -> _Outcome:
        report = adapters.crosscheck(
            case.net, case.params, case.x, case.y, backends=backends, rtol=rtol, atol=atol
        )
        comparisons = {name: list(c) for name, c in report.comparisons.items()}
        if report.ok:
            return _Outcome(comparisons, None)
        bad = [
            name
            for name in report.backends
            if name in report.errors or not all(c.ok for c in comparisons[name])
        ]

        def failure() -> Failure:
            flat = tuple(c for name in bad for c in comparisons[name])
            return Failure(", ".join(bad), case, flat, None, (), str(report))

        return _Outcome(comparisons, failure)

    return check


def sweep(
    backends: Sequence[Any] | None = None,
    *,
    impl: Backprop | None = None,
    trials: int = 100,
    seed: int | None = None,
    activations: Names = None,
    losses: Names = None,
    reductions: Names = None,
    dtype: object | Sequence[object] | None = None,
    depth: Range = DEPTH,
    width: Range = WIDTH,
    batch: Range = BATCH,
    kinks: bool | None = None,
    far_out: bool | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    progress: Progress | None = None,
) -> SweepResult:
    """Hold backends (or a user's ``impl``) against the reference on ``trials`` drawn cases.

    Parameters
    ----------
    backends
        Adapter names (``"torch"``, ``"jax"``, ``"numeric"``) and/or objects with ``.name``
        and ``.backprop``, passed to ``adapters.crosscheck``; ``None``: every available one.
        Ignored when ``impl`` is given.
    impl
        A user's ``fn(net, params, x, y)`` (see the module docstring) to check instead.
    trials
        The number of cases to draw (Hypothesis' ``max_examples``).
    seed
        Makes the run reproducible; ``None`` draws one, reported as ``SweepResult.seed``.
    activations, losses, reductions, dtype, depth, width, batch
        Restrict the cases, as in ``strategies.cases`` (``dtype=None``: both dtypes; ranges
        are an int or an inclusive ``(min, max)``).
    kinks, far_out
        Include pre-activations exactly on relu kinks / out to ``|z| ≈ 1e6``.  ``None``: on,
        except with the ``numeric`` backend (central differences straddle a kink and lose
        their accuracy far out) and, for ``far_out``, with ``impl``.  With ``numeric`` and
        ``activations=None`` the kinked activations (relu, leaky_relu) are left out too:
        the grid values put pre-activations exactly on 0 by chance as well.
    rtol, atol
        Override the tolerance model's defaults (``default_rtol``, ``atol = 0``).
    progress
        ``progress(checked, trials)``, called after each case until the first failure (the
        shrinking that follows a failure is not reported).

    Returns a ``SweepResult``: per candidate and kind (``loss``, ``z``, ``a``, ``W``, ``b``; a
    user's ``impl`` gets ``loss``, ``W``, ``b``), the cases checked and the worst absolute and
    relative errors, and the shrunk ``failure`` if any.  Raises ``ValueError``/``TypeError``
    for bad arguments and ``ImportError`` for a backend whose framework is not installed,
    before drawing any case.
    """
    if isinstance(trials, bool) or not isinstance(trials, int):
        raise TypeError(f"trials must be an int, got {type(trials).__name__}")
    if trials < 1:
        raise ValueError(f"trials must be at least 1, got {trials}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ValueError(f"seed must be a non-negative int or None, got {seed!r}")
    if impl is not None:
        if not callable(impl):
            raise TypeError(f"impl must be callable as impl(net, params, x, y), got {impl!r}")
        check = impl_checker(impl, rtol, 0.0 if atol is None else atol)
        numeric = False
    else:
        from .. import adapters

        for b in backends or ():
            if isinstance(b, str):
                adapters.get(b)  # an unknown name or a missing framework fails here, once
        check = _backend_checker(backends, rtol, atol)
        names = [getattr(b, "name", b) for b in backends or ()]
        numeric = "numeric" in names
    if numeric and activations is None:  # central differences straddle kinks: smooth only
        activations = [name for name in ACTIVATIONS if name not in KINKED]
    strategy = cases(
        activations=activations,
        losses=losses,
        reductions=reductions,
        dtype=dtype,
        depth=depth,
        width=width,
        batch=batch,
        kinks=not numeric if kinks is None else kinks,
        far_out=not numeric and impl is None if far_out is None else far_out,
    )
    return run(strategy, check, trials=trials, seed=seed, progress=progress)


def check_implementation(
    fn: Backprop,
    *,
    activations: Names = None,
    losses: Names = None,
    reductions: Names = None,
    dtype: object | Sequence[object] = "float64",
    depth: Range = DEPTH,
    width: Range = WIDTH,
    batch: Range = BATCH,
    max_examples: int = 200,
    seed: int | None = None,
    kinks: bool = True,
    far_out: bool = False,
    rtol: float | None = None,
    atol: float | None = None,
) -> SweepResult:
    """Check a user's backprop ``fn(net, params, x, y)`` against the reference.

    Draws up to ``max_examples`` cases (``strategies.cases`` with these restrictions; see
    ``sweep``), calls ``fn`` on each (with copies: ``fn`` cannot disturb the check) and
    compares its loss and gradients with the reference's under the tolerance model.  With a
    ``seed`` the run is reproducible; no Hypothesis database is read or written.

    Returns the ``SweepResult`` when every case agrees; raises ``GradientMismatchError`` (an
    ``AssertionError``) with the smallest failing case, the wrong arrays and a hint otherwise.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable as fn(net, params, x, y), got {fn!r}")
    result = sweep(
        impl=fn,
        trials=max_examples,
        seed=seed,
        activations=activations,
        losses=losses,
        reductions=reductions,
        dtype=dtype,
        depth=depth,
        width=width,
        batch=batch,
        kinks=kinks,
        far_out=far_out,
        rtol=rtol,
        atol=atol,
    )
    if result.failure is not None:
        raise GradientMismatchError(result.failure)
    return result


def assert_gradients_match(
    fn: Backprop,
    net: Network,
    params: Params,
    x: Any,
    y: Any,
    *,
    rtol: float | None = None,
    atol: float | None = None,
) -> None:
    """Assert that ``fn(net, params, x, y)`` gives the reference's loss and gradients.

    ``x`` is ``(batch, in)`` and ``y`` ``(batch, out)`` (checked like ``reference.backprop``'s
    arguments).  Raises ``GradientMismatchError`` with the case, the wrong arrays and a hint;
    ``rtol`` and ``atol`` override the tolerance model's defaults.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable as fn(net, params, x, y), got {fn!r}")
    checked = check_inputs(net, params, x, y)
    if checked.single:
        raise ValueError("x must be a batch (batch, in); pass one sample as x[None], y[None]")
    case = Case(net, params, checked.x, checked.y)
    outcome = impl_checker(fn, rtol, 0.0 if atol is None else atol)(case)
    if outcome.failure is not None:
        made = outcome.failure()
        raise GradientMismatchError(
            Failure(
                made.candidate, case, made.comparisons, made.error, made.hints, made.details,
                shrunk=False,
            )
        )  # fmt: skip
