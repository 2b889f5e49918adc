"""Check a backpropagation against crossgrad's reference, on cases Hypothesis draws and shrinks.

For a user's own implementation ``fn(net, params, x, y)``, returning a result like
``reference.backprop``'s (``.loss`` and ``.grads`` with ``.weights`` and ``.biases``) or a tuple
``(loss, weight_grads, bias_grads)``, or for a backend object with ``.name`` and
``.backprop``::

    from crossgrad import testing

    testing.check_implementation(my_backprop)                    # many random cases
    testing.assert_gradients_match(my_backprop, net, params, x, y)   # one case

Both raise ``GradientMismatchError`` (an ``AssertionError``) whose message shows the smallest
failing case, which array is wrong and by how much, whether the gradients are the derivative
of the function's own loss, and hints (``Hint``, with stable codes) where the bug is
recognised.  An exception raised by ``fn`` is reported the same way, with the smallest case
that raises it; ``Unsupported`` declines a case instead.  ``weights="in_out"`` and
``samples="columns"`` hand ``fn`` the case in its own layout.

``sweep`` is the engine behind both and behind ``crossgrad check``: it also cross-checks the
adapters (torch, jax, numeric) against the reference and returns a ``SweepResult``.

Every comparison uses the tolerance model of ``crossgrad.adapters.tolerance``.  Hypothesis
is imported by this module; ``import crossgrad`` does not import it.
"""

from __future__ import annotations

import concurrent.futures
import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from ..adapters._process import Spawned, worth_spawning
from ..reference import ACTIVATIONS, Network, Params
from ..reference.validation import check_inputs, check_tolerance
from ..strategies import (
    BATCH,
    DEPTH,
    KINKED,
    WIDTH,
    Case,
    Kinks,
    Range,
    cases,
    kink_policy,
    smallest,
)
from . import _parallel
from ._compare import (
    SAMPLE_LAYOUTS,
    WEIGHT_LAYOUTS,
    Backprop,
    Comparison,
    Layout,
    Unsupported,
    as_function,
)
from ._hints import CODES, Hint
from ._optimizer import OptimizerCase, OptimizerCheckResult, OptimizerFailure, check_optimizer
from ._sweep import (
    Check,
    CheckMany,
    ErrorStats,
    Failure,
    GradientMismatchError,
    Progress,
    SweepResult,
    _Outcome,
    impl_checker,
    run,
    timed_out,
)
from ._time_limit import TimeLimitExceededError, call_with_time_limit, check_timeout

if TYPE_CHECKING:
    from ..adapters import CrossCheckReport

__all__ = [
    "CODES",
    "SAMPLE_LAYOUTS",
    "WEIGHT_LAYOUTS",
    "Backprop",
    "Comparison",
    "ErrorStats",
    "Failure",
    "GradientMismatchError",
    "Hint",
    "OptimizerCase",
    "OptimizerCheckResult",
    "OptimizerFailure",
    "SweepResult",
    "Unsupported",
    "assert_gradients_match",
    "check_implementation",
    "check_optimizer",
    "sweep",
]

Names = str | Sequence[str] | None

# Comparison is adapters.tolerance.ParamComparison, which keeps its own home.
for _public in (
    ErrorStats, Failure, GradientMismatchError, Hint, SweepResult, Unsupported,
    OptimizerCase, OptimizerCheckResult, OptimizerFailure,
):  # fmt: skip
    _public.__module__ = __name__  # tracebacks and reprs show the public path


def _backend_checker(
    backends: Sequence[Any] | None,
    rtol: float | None,
    atol: float | None,
    kinks: str,
    timeout: float | None = None,
) -> tuple[Check, CheckMany | None, float | None]:
    """The check of one case, the check of a list of cases at once where that is faster
    (``crosscheck_many``; ``None`` with functions or backend objects of the user's own,
    checked case by case under the time limit), and the time limit the checks call user
    code under (``None``: none, or no user code)."""
    # A plain function among the backends is checked as a user's impl is (one protocol):
    # its loss and gradients, under its own name.
    functions = [b for b in backends or () if callable(b) and not hasattr(b, "backprop")]
    others = [b for b in backends or () if not (callable(b) and not hasattr(b, "backprop"))]
    checks = [
        impl_checker(fn, rtol, 0.0 if atol is None else atol, getattr(fn, "__name__", "fn"),
                     kinks=kinks, timeout=timeout)
        for fn in functions
    ]  # fmt: skip
    crosscheck_them = backends is None or bool(others)
    # Only backends of the user's own (objects, not names nor spawned ones) run under the time
    # limit.
    own = [b for b in others if not isinstance(b, str | Spawned)]
    limit = timeout if own else None

    def check(case: Case) -> _Outcome:
        outcomes = [c(case) for c in checks]
        if crosscheck_them:
            own_name = str(getattr(own[0], "name", "your backend")) if own else ""

            def hung(after: float | None = limit) -> _Outcome:  # a call out of time
                message = timed_out(own_name, after or 0.0)
                return _Outcome({}, lambda: Failure(own_name, case, (), message, (), ""))

            try:
                crosschecked = call_with_time_limit(
                    _crosscheck, (case, others or None, rtol, atol), limit, hung
                )
            except TimeLimitExceededError as exc:
                crosschecked = hung(exc.timeout)
            outcomes.insert(0, crosschecked)
        comparisons = {k: v for o in outcomes for k, v in o.comparisons.items()}
        failed = [o for o in outcomes if o.failure is not None]
        if not failed:
            return _Outcome(comparisons, None)
        return _Outcome(comparisons, failed[0].failure)

    if checks or limit is not None:
        return check, None, timeout  # every case on its own, each under the time limit

    def check_many(cases: Sequence[Case]) -> list[_Outcome]:
        from .. import adapters

        reports = adapters.crosscheck_many(
            [(c.net, c.params, c.x, c.y) for c in cases], others or None, rtol, atol,
            chunk=len(cases),
        )  # fmt: skip
        return [_outcome(case, report) for case, report in zip(cases, reports, strict=True)]

    return check, check_many, None


def _crosscheck(
    case: Case, backends: Sequence[Any] | None, rtol: float | None, atol: float | None
) -> _Outcome:
    from .. import adapters

    report = adapters.crosscheck(
        case.net, case.params, case.x, case.y, backends=backends, rtol=rtol, atol=atol
    )
    return _outcome(case, report)


def _outcome(case: Case, report: CrossCheckReport) -> _Outcome:
    """The sweep's outcome of ``case`` from its cross-check ``report``."""
    comparisons = {name: list(report.comparisons[name]) for name in report.backends}
    if report.ok:
        return _Outcome(comparisons, None)
    bad = [
        name
        for name in report.backends
        if name in report.errors or not all(c.ok for c in comparisons[name])
    ]

    def failure() -> Failure:
        flat = tuple(c for name in bad for c in comparisons[name])
        errors = [f"{name}: {report.errors[name]}" for name in bad if name in report.errors]
        return Failure(", ".join(bad), case, flat, "; ".join(errors) or None, (), str(report))

    return _Outcome(comparisons, failure)


def sweep(
    backends: Sequence[Any] | None = None,
    *,
    impl: Backprop | Any | None = None,
    trials: int = 100,
    seed: int | None = None,
    activations: Names = None,
    hidden_activations: Names = None,
    output_activation: Names = None,
    losses: Names = None,
    reductions: Names = None,
    dtype: object | Sequence[object] | None = None,
    depth: Range = DEPTH,
    width: Range = WIDTH,
    batch: Range = BATCH,
    kinks: Kinks | bool | None = None,
    far_out: bool | None = None,
    weights: str = "out_in",
    samples: str = "rows",
    rtol: float | None = None,
    atol: float | None = None,
    progress: Progress | None = None,
    executor: concurrent.futures.Executor | None = None,
    timeout: float | None = 60.0,
    spawn: bool = False,
) -> SweepResult:
    """Hold backends (or a user's ``impl``) against the reference on ``trials`` drawn cases.

    Parameters
    ----------
    backends
        Adapter names (``"torch"``, ``"jax"``, ``"numeric"``) and/or objects with ``.name``
        and ``.backprop``, passed to ``adapters.crosscheck``, and/or plain functions
        ``fn(net, params, x, y)`` in the user protocol, checked as ``impl`` is (under their
        ``__name__``); ``None``: every available adapter.  Ignored when ``impl`` is given.
    impl
        A user's ``fn(net, params, x, y)`` (see the module docstring), or a backend object
        with ``.backprop`` (and ``.name``), to check instead.
    trials
        The number of cases to check (declined cases aside); Hypothesis draws them up to
        ``CASES_PER_EXAMPLE`` per example (``testing._sweep``).
    seed
        Makes the run reproducible; ``None`` draws one, reported as ``SweepResult.seed``.
    activations, hidden_activations, output_activation, losses, reductions, dtype, depth, \
    width, batch
        Restrict the cases, as in ``strategies.cases``: ``activations`` for every layer,
        ``hidden_activations``/``output_activation`` per position (``dtype=None``: both
        dtypes; ranges are an int or an inclusive ``(min, max)``).
    kinks
        ``"include"``, ``"avoid"`` or ``"only"`` (``strategies.cases``; ``True``/``False``:
        include/avoid).  ``None``: include, except with the ``numeric`` backend (central
        differences straddle a kink), which also leaves relu and leaky_relu out when
        ``activations`` is ``None``.
    far_out
        Include pre-activations out to ``|z| ≈ 1e6``.  ``None``: on, except with the
        ``numeric`` backend (central differences lose their accuracy far out) and with
        ``impl``.
    weights, samples
        The layout ``impl`` takes the case in and returns its gradients in: ``weights`` is
        ``"out_in"`` (``W`` ``(out, in)``, default) or ``"in_out"``; ``samples`` is ``"rows"``
        (``x`` ``(batch, in)``, default) or ``"columns"`` (``x`` ``(in, batch)``, ``y``
        ``(out, batch)``, biases ``(out, 1)``).  Only with ``impl``.
    rtol, atol
        Override the tolerance model's defaults (``default_rtol``, ``atol = 0``).
    progress
        ``progress(checked, trials)``, called after each case until the first failure (the
        shrinking that follows a failure is not reported).
    executor
        Any ``concurrent.futures.Executor`` (a process pool, ``dask.distributed``'s
        ``client.get_executor()``): the trials are split into chunks, each a sweep with a
        seed derived from ``seed``, run by ``executor`` and merged (``testing._parallel``).
    timeout
        Seconds a call of user code (``impl``, or a backend object of one's own) may take
        on one case (``None``: no limit); a call that takes longer fails the case and is
        abandoned, still running in its thread (see ``crossgrad.testing._time_limit``).
    spawn
        Run each named backend that compiles (``"jax"``) and whose framework this process
        has not imported in a Python process of its own (``adapters._process``), so that
        it imports and compiles on another core while this process imports the others;
        what ``crossgrad check`` does.  Ignored with ``executor``.

    Returns a ``SweepResult``: per candidate and kind (``loss``, ``z``, ``a``, ``W``, ``b``; a
    user's ``impl`` gets ``loss``, ``W``, ``b``), the cases checked and the worst errors, the
    cases declined, and the shrunk ``failure`` if any.  Raises ``ValueError``/``TypeError``
    for bad arguments and ``ImportError`` for a backend whose framework is not installed,
    before drawing any case.
    """
    if isinstance(trials, bool) or not isinstance(trials, int):
        raise TypeError(f"trials must be an int, got {type(trials).__name__}")
    if trials < 1:
        raise ValueError(f"trials must be at least 1, got {trials}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ValueError(f"seed must be a non-negative int or None, got {seed!r}")
    timeout_ = check_timeout(timeout)
    check_tolerance("rtol", rtol)
    check_tolerance("atol", atol)
    layout = Layout.of(weights, samples)
    policy = None if kinks is None else kink_policy(kinks)
    spawned: dict[str, Spawned] = {}  # closed however the sweep ends
    try:
        if impl is not None:
            fn, name = as_function(impl, "impl")
            policy = policy or "include"
            check: Check = impl_checker(
                fn, rtol, 0.0 if atol is None else atol, name, layout, policy, timeout_
            )
            check_many = None
            watched = timeout_  # the user's function runs under the time limit
            numeric = False
        else:
            if not layout.default:
                raise ValueError("weights= and samples= describe a user's impl; pass impl= too")
            from .. import adapters

            # An unknown name or a missing framework fails here, once.  A backend that compiles
            # is imported first and starts on the first case at once (``_prepare``), so that it
            # compiles while the others import.
            named = [b for b in backends or () if isinstance(b, str)]
            spawned = {
                b: Spawned(b) for b in named if spawn and executor is None and worth_spawning(b)
            }
            for b in sorted(named, key=lambda b: not _registered_compiles(b)):
                backend = spawned.get(b) or adapters.get(b)
                if executor is None:
                    _prepare(backend, depth, width, batch, dtype)
            for process in spawned.values():  # imported while this process imported the others
                process.wait_imported()
            if spawned:
                backends = [spawned.get(b, b) if isinstance(b, str) else b for b in backends or ()]
            names = [getattr(b, "name", b) for b in backends or ()]
            numeric = "numeric" in names
            policy = policy or ("avoid" if numeric else "include")
            check, check_many, watched = _backend_checker(backends, rtol, atol, policy, timeout_)
        if (
            numeric
            and activations is None
            and hidden_activations is None
            and output_activation is None
        ):
            activations = [name for name in ACTIVATIONS if name not in KINKED]
        strategy = cases(
            activations=activations,
            hidden_activations=hidden_activations,
            output_activation=output_activation,
            losses=losses,
            reductions=reductions,
            dtype=dtype,
            depth=depth,
            width=width,
            batch=batch,
            kinks=policy,
            far_out=not numeric and impl is None if far_out is None else far_out,
        )
        if executor is not None:  # every argument is checked: the chunks go out
            if not isinstance(executor, concurrent.futures.Executor):
                raise TypeError(f"executor must be a concurrent.futures.Executor, got {executor!r}")
            chunk = dict(  # noqa: C408  (this function's own keyword arguments, passed on)
                backends=backends, impl=impl, activations=activations,
                hidden_activations=hidden_activations, output_activation=output_activation,
                losses=losses, reductions=reductions, dtype=dtype, depth=depth, width=width,
                batch=batch, kinks=kinks, far_out=far_out, weights=weights, samples=samples,
                rtol=rtol, atol=atol, timeout=timeout,
            )  # fmt: skip
            seed_ = secrets.randbelow(2**32) if seed is None else seed
            return _parallel.sweep(executor, chunk, trials=trials, seed=seed_, progress=progress)
        return run(
            strategy,
            check,
            check_many=check_many,
            timeout=watched,
            trials=trials,
            seed=seed,
            progress=progress,
        )
    finally:
        for process in spawned.values():
            process.close()


def _registered_compiles(name: str) -> bool:
    from ..adapters import BACKENDS

    entry = BACKENDS.get(name)
    return entry is not None and entry.compiles


def _prepare(backend: Any, depth: Range, width: Range, batch: Range, dtype: object) -> None:
    """If ``backend`` compiles, have it start on the sweep's first case (the smallest the
    ranges allow: Hypothesis draws it first) in the background."""
    from ..adapters.protocol import Compiling

    if backend.capabilities.compiles:
        sizes, n, dtypes = smallest(depth, width, batch, dtype)
        cast(Compiling, backend).prepare(sizes, n, dtypes)


def check_implementation(
    fn: Backprop | Any,
    *,
    activations: Names = None,
    hidden_activations: Names = None,
    output_activation: Names = None,
    losses: Names = None,
    reductions: Names = None,
    dtype: object | Sequence[object] = "float64",
    depth: Range = DEPTH,
    width: Range = WIDTH,
    batch: Range = BATCH,
    max_examples: int = 200,
    seed: int | None = None,
    kinks: Kinks | bool = "include",
    far_out: bool = False,
    weights: str = "out_in",
    samples: str = "rows",
    rtol: float | None = None,
    atol: float | None = None,
    timeout: float | None = 60.0,
) -> SweepResult:
    """Check a user's backprop ``fn(net, params, x, y)`` (or backend object) against the
    reference.

    Runs ``max_examples`` Hypothesis examples of up to ten cases each (``strategies.cases``
    with these restrictions, a declined case drawn again; see ``sweep`` for every argument),
    calls ``fn`` on each in its layout (``weights``,
    ``samples``; with copies: ``fn`` cannot disturb the check) and compares its loss and
    gradients with the reference's under the tolerance model.  With a ``seed`` the run is
    reproducible; no Hypothesis database is read or written.  A call of
    ``fn`` that takes longer than ``timeout`` seconds fails its case (``None``: no limit).

    Returns the ``SweepResult`` when every case agrees; raises ``GradientMismatchError`` (an
    ``AssertionError``) with the smallest failing case, the wrong arrays and hints otherwise,
    and ``ValueError`` when ``fn`` declined every case (``Unsupported``).
    """
    as_function(fn)
    result = sweep(
        impl=fn,
        trials=max_examples,
        seed=seed,
        activations=activations,
        hidden_activations=hidden_activations,
        output_activation=output_activation,
        losses=losses,
        reductions=reductions,
        dtype=dtype,
        depth=depth,
        width=width,
        batch=batch,
        kinks=kinks,
        far_out=far_out,
        weights=weights,
        samples=samples,
        rtol=rtol,
        atol=atol,
        timeout=timeout,
    )
    if result.failure is not None:
        raise GradientMismatchError(result.failure)
    if result.cases == 0:
        raise ValueError(
            f"fn declined every case drawn ({result.declined_text() or 'none checked'}): "
            "restrict the cases to the ones it handles (activations=, losses=, ...)"
        )
    return result


def assert_gradients_match(
    fn: Backprop | Any,
    net: Network,
    params: Params,
    x: Any,
    y: Any,
    *,
    weights: str = "out_in",
    samples: str = "rows",
    rtol: float | None = None,
    atol: float | None = None,
    timeout: float | None = 60.0,
) -> None:
    """Assert that ``fn(net, params, x, y)`` gives the reference's loss and gradients.

    ``params``, ``x`` ``(batch, in)`` and ``y`` ``(batch, out)`` are in crossgrad's layout
    (checked like ``reference.backprop``'s arguments); ``fn`` receives them in its own
    (``weights``, ``samples``, as for ``sweep``).  Raises ``GradientMismatchError`` with the
    case, the wrong arrays and hints, and ``ValueError`` if ``fn`` raises ``Unsupported``;
    ``rtol`` and ``atol`` override the tolerance model's defaults; a call of ``fn`` that takes
    longer than ``timeout`` seconds is a failure too (``None``: no limit).
    """
    function, name = as_function(fn)
    layout = Layout.of(weights, samples)
    check_tolerance("rtol", rtol)
    check_tolerance("atol", atol)
    try:
        checked = check_inputs(net, params, x, y)
    except ValueError as exc:
        shape = np.shape(x)
        if samples == "columns" and len(shape) == 2 and shape[0] == net.sizes[0] != shape[1]:
            raise ValueError(
                f"{exc} (x is ({', '.join(map(str, shape))}), (in, batch): params, x and y are "
                "given in crossgrad's layout, x (batch, in), whatever samples= says; fn "
                "receives them in its own)"
            ) from None
        raise
    if checked.single:
        raise ValueError("x must be a batch (batch, in); pass one sample as x[None], y[None]")
    case = Case(net, params, checked.x, checked.y)
    from ._sweep import Declined

    try:
        outcome = impl_checker(
            function,
            rtol,
            0.0 if atol is None else atol,
            name,
            layout,
            timeout=check_timeout(timeout),
        )(case)
    except Declined as exc:
        raise ValueError(f"fn declined the case: {exc.reason}") from None
    if outcome.failure is not None:
        made = outcome.failure()
        raise GradientMismatchError(
            Failure(
                made.candidate, case, made.comparisons, made.error, made.hints, made.details,
                shrunk=False, self_consistent=made.self_consistent,
            )
        )  # fmt: skip
