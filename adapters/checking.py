"""Cross-checking backends against the reference, and the report a user reads when they disagree."""

from __future__ import annotations

import concurrent.futures
import itertools
import numbers
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..reference import BackpropResult, Network, Params
from ..reference.validation import Batch, check_inputs, check_tolerance
from . import _distribute, reference_backend, tolerance
from .protocol import Asynchronous, Backend, ManyAtOnce, as_backend

Array = NDArray[np.floating]
_T = TypeVar("_T")
Outcome = BackpropResult | str
"""A backend's result on one case, or why it has none (its exception, or what is wrong)."""


@dataclass(frozen=True)
class CrossCheckReport:
    """How every backend compares with the reference on one case.

    ``results[name]`` is each backend's ``BackpropResult`` (``"reference"`` included);
    ``comparisons[name]`` lists a ``ParamComparison`` for the loss, every forward value
    (``z1``, ``a1``, ...) and every gradient (``W1``, ``b1``, ...); ``tolerances[name]`` is the
    ``(rtol, atol)`` used: an entry agrees when ``|g − r| ≤ atol + rtol · S``, ``S`` its error
    scale (``crossgrad.adapters.tolerance``); ``errors[name]`` says why a backend has no
    result (the exception it raised, or what is wrong with what it returned).
    """

    net: Network
    results: Mapping[str, BackpropResult]
    comparisons: Mapping[str, list[tolerance.ParamComparison]]
    tolerances: Mapping[str, tuple[float, float]]
    errors: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether every backend ran and agrees everywhere."""
        return not self.errors and all(c.ok for cs in self.comparisons.values() for c in cs)

    @property
    def backends(self) -> tuple[str, ...]:
        """The backends checked, in order."""
        return tuple(self.tolerances)

    def worst(self, backend: str) -> tolerance.ParamComparison:
        """The comparison of ``backend`` closest to (or furthest past) its tolerance."""
        return max(self._compared(backend), key=lambda c: c.max_err_over_tolerance)

    def max_rel_err(self, backend: str) -> float:
        """The largest true relative error ``|g − r| / |r|`` of ``backend``, over everything."""
        return max(c.max_rel_err for c in self._compared(backend))

    def max_err_over_tolerance(self, backend: str) -> float:
        """The largest ``|g − r| / (atol + rtol·S)`` of ``backend``: at most 1 to pass."""
        return max(c.max_err_over_tolerance for c in self._compared(backend))

    def _compared(self, backend: str) -> list[tolerance.ParamComparison]:
        """The comparisons of ``backend``; a ``ValueError`` saying why when there are none."""
        if backend in self.errors:
            raise ValueError(
                f"backend {backend!r} has no comparisons: it failed ({self.errors[backend]})"
            )
        if backend not in self.comparisons:
            raise ValueError(
                f"backend must be one of the backends compared ({', '.join(self.backends)}), "
                f"got {backend!r}"
            )
        return self.comparisons[backend]

    def __str__(self) -> str:
        header = ("backend", "quantity", "max abs err", "rel err (vs value)", "err / tolerance",
                  "worst index", "")  # fmt: skip
        rows = [header]
        for backend in self.backends:
            if backend in self.errors:
                rows.append((backend, "(failed)", "", "", "", "", self.errors[backend]))
                continue
            for c in self.comparisons[backend]:
                verdict = "ok" if c.ok else f"MISMATCH{': ' + c.problem if c.problem else ''}"
                if c.worst_index == () and c.max_abs_err == np.inf:  # no entries to compare
                    rows.append((backend, c.name, "-", "-", "-", "-", verdict))
                    continue
                rows.append((
                    backend, c.name, f"{c.max_abs_err:.3g}", f"{c.max_rel_err:.3g}",
                    f"{c.max_err_over_tolerance:.3g}", str(list(c.worst_index)), verdict,
                ))  # fmt: skip
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
                 for r in rows]  # fmt: skip
        lines.insert(1, "  ".join("-" * w for w in widths))
        tol = ", ".join(f"{b}: rtol={r:.3g} atol={a:.3g}" for b, (r, a) in self.tolerances.items())
        verdict = "all backends agree" if self.ok else "BACKENDS DISAGREE"
        return (
            f"crosscheck of {self.net!r}: {verdict}\n"
            f"(an entry passes when |err| <= atol + rtol*S, S its error scale; {tol})\n"
            + "\n".join(lines)
        )

    def raise_for_mismatch(self) -> None:
        """Raise ``AssertionError`` carrying the table when any backend disagrees."""
        if not self.ok:
            raise AssertionError(str(self))


def reference_side(
    net: Network, params: Params, batch: Batch
) -> tuple[BackpropResult, Params, tolerance.Expected]:
    """The reference's result on a checked ``batch``, the error scales of its gradients, and
    the ``Expected`` every candidate is compared with: the loss, the forward values and the
    gradients with their error scales, in the order of a report (``loss``, ``z1``, ``a1``, ...
    ``zL``, ``aL``, ``W1``, ``b1``, ...)."""
    reference = reference_backend.backprop_checked(net, params, batch)
    forward_values = (  # the reference's forward pass, as (batch, width) arrays
        [np.atleast_2d(z) for z in reference.preactivations],
        [np.atleast_2d(a) for a in reference.activations],
    )
    forward, grads = tolerance.error_scales(net, params, batch.x, batch.y, forward_values)
    items = [("loss", np.asarray(reference.loss, params.dtype), np.asarray(forward.loss))]
    for l in range(net.n_layers):
        items.append((f"z{l + 1}", reference.preactivations[l], forward.preactivations[l]))
        items.append((f"a{l + 1}", reference.activations[l + 1], forward.activations[l]))
    for l in range(net.n_layers):
        items.append((f"W{l + 1}", reference.grads.weights[l], grads.weights[l]))
        items.append((f"b{l + 1}", reference.grads.biases[l], grads.biases[l]))
    return reference, grads, tolerance.Expected(items)


def candidates(net: Network, result: BackpropResult, dtype: np.dtype[Any]) -> list[Any]:
    """A backend's values in the order of ``reference_side``'s ``Expected``; ``result`` must
    have passed ``result_problem``."""
    values: list[Any] = [np.asarray(result.loss, dtype)]
    for l in range(net.n_layers):
        values += (result.preactivations[l], result.activations[l + 1])
    for l in range(net.n_layers):
        values += (result.grads.weights[l], result.grads.biases[l])
    return values


def result_problem(net: Network, result: object) -> str | None:
    """What makes ``result`` unusable as a backend's ``BackpropResult`` for ``net``, or
    ``None``.  Wrong values, shapes and dtypes inside it are for the comparison to report."""
    if not isinstance(result, BackpropResult):
        return f"returned {type(result).__name__}, expected a BackpropResult"
    loss: object = result.loss  # annotated float, but a user's result may hold anything
    if isinstance(loss, bool) or not (
        isinstance(loss, numbers.Real)
        or (isinstance(loss, np.ndarray) and loss.ndim == 0 and loss.dtype.kind in "iuf")
    ):
        return f"returned a loss of type {type(loss).__name__}, expected a real number"
    # The gradients are data: Params, or any object with the sequences weights and biases.
    grads = result.grads
    weights, biases = getattr(grads, "weights", None), getattr(grads, "biases", None)
    if not (isinstance(weights, Sequence) and isinstance(biases, Sequence)):
        return f"returned grads of type {type(grads).__name__}, expected Params"
    sequences: tuple[tuple[str, object, int], ...] = (
        ("grads.weights", weights, net.n_layers),
        ("grads.biases", biases, net.n_layers),
        ("preactivations", result.preactivations, net.n_layers),
        ("activations", result.activations, net.n_layers + 1),
    )
    for what, values, n in sequences:
        if not isinstance(values, Sequence) or len(values) != n:
            got = f"{len(values)} arrays" if isinstance(values, Sequence) else type(values).__name__
            return f"returned {what} as {got}, expected a sequence of {n} arrays"
    return None


def crosscheck(
    net: Network,
    params: Params,
    x: ArrayLike,
    y: ArrayLike,
    backends: Sequence[str | Backend | object] | None = None,
    rtol: float | None = None,
    atol: float | None = None,
) -> CrossCheckReport:
    """Run ``backends`` on one case and compare each with the reference.

    ``backends``: names (see ``adapters.available()``), ``Backend`` objects, or a user's
    implementation (an object with ``name`` and ``backprop``, or a function
    ``fn(net, params, x, y)``); ``None`` means ``adapters.defaults()``, the framework
    backends installed here.  ``rtol``/``atol`` override each backend's default tolerance.
    ``x``: ``(batch, in)`` or ``(in,)``; ``y``: ``(batch, out)`` or ``(out,)``.  An exception
    inside a backend, or a result that is not a ``BackpropResult`` of the network, is
    reported as that backend's failure, not raised.
    """
    batch = check_inputs(net, params, x, y)  # bad input raises here, as in the reference
    chosen = _choose(backends, rtol, atol)
    # Asynchronous backends (JAX) start first and run while the reference and the other
    # backends do their work; every result is collected in order at the end.
    pending = [_start(b, net, params, batch) for b in chosen]
    case = _Case(net, params, batch)
    return case.report(chosen, [finish() for finish in pending], rtol, atol)


def crosscheck_many(
    cases: Iterable[tuple[Network, Params, ArrayLike, ArrayLike]],
    backends: Sequence[str | Backend | object] | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    *,
    chunk: int = 64,
    executor: concurrent.futures.Executor | None = None,
) -> Iterator[CrossCheckReport]:
    """``crosscheck`` of every ``(net, params, x, y)`` in ``cases``: the same reports, in order.

    For sweeps.  Cases are taken ``chunk`` at a time, and each backend runs over the whole
    chunk before the next one starts, so that one framework's code and data stay in the CPU's
    caches: alternating torch, JAX and NumPy case by case costs about a third more time on
    small networks.  A backend declaring ``Capabilities(many=True)`` gets the chunk in one
    call; an asynchronous one (JAX) starts on every case of the chunk before the reference's
    side is computed, and computes meanwhile.  Reports are yielded as each chunk completes.
    Bad input raises the reference's ``TypeError``/``ValueError``, its message prefixed with
    ``cases[i]: ``.
    With an ``executor`` (any ``concurrent.futures.Executor``: a process pool, a
    ``dask.distributed`` client's ``get_executor()``), each chunk is one task it runs
    (``adapters._distribute``); the reports are the same, in the same order.  ``backends``,
    ``rtol``, ``atol``, ``chunk`` and ``executor`` are checked by the call itself, the cases as
    they are reached.
    """
    chosen = _choose(backends, rtol, atol)
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be a positive integer, got {chunk!r}")
    if executor is not None:
        if not isinstance(executor, concurrent.futures.Executor):
            raise TypeError(f"executor must be a concurrent.futures.Executor, got {executor!r}")
        return _distribute.crosscheck_many(executor, cases, backends, rtol, atol, chunk)
    return _reports(cases, chosen, rtol, atol, chunk)


def _reports(
    cases: Iterable[tuple[Network, Params, ArrayLike, ArrayLike]],
    chosen: list[Backend],
    rtol: float | None,
    atol: float | None,
    chunk: int,
) -> Iterator[CrossCheckReport]:
    """``crosscheck_many``'s reports, in this process, chunk by chunk."""
    iterator = iter(enumerate(cases))
    while group := list(itertools.islice(iterator, chunk)):
        checked = [_numbered(i, case, _checked, case) for i, case in group]
        # Asynchronous backends (JAX) start on the whole chunk first and compute while the
        # reference and the other backends work through it, as in ``crosscheck``.
        started = {
            k: [_start(b, *case) for case in checked]
            for k, b in enumerate(chosen)
            if b.capabilities.asynchronous
        }
        prepared = [
            _numbered(i, case, _Case, *c) for (i, case), c in zip(group, checked, strict=True)
        ]
        outcomes = [
            [finish() for finish in started[k]] if k in started else _run_many(b, prepared)
            for k, b in enumerate(chosen)
        ]
        for k, case in enumerate(prepared):
            yield case.report(chosen, [runs[k] for runs in outcomes], rtol, atol)


def _checked(
    case: tuple[Network, Params, ArrayLike, ArrayLike],
) -> tuple[Network, Params, Batch]:
    net, params, x, y = case
    return net, params, check_inputs(net, params, x, y)


def _numbered(i: int, case: object, fn: Callable[..., _T], *args: Any) -> _T:
    """``fn(*args)`` for ``cases[i]``, with ``cases[i]: `` before any error message."""
    try:
        return fn(*args)
    except (TypeError, ValueError, OverflowError) as exc:
        if not isinstance(case, tuple | list) or len(case) != 4:
            raise TypeError(
                f"cases[{i}] must be a tuple (net, params, x, y), got {type(case).__name__}"
            ) from None
        raise type(exc)(f"cases[{i}]: {exc}") from None


def _choose(
    backends: Sequence[str | Backend | object] | None, rtol: float | None, atol: float | None
) -> list[Backend]:
    """The backends to run (``get`` for names) after checking the tolerance overrides."""
    from . import defaults, get

    check_tolerance("rtol", rtol)
    check_tolerance("atol", atol)
    if backends is None:
        return [get(name) for name in defaults()]
    if isinstance(backends, str) or not isinstance(backends, Sequence):
        raise TypeError(f"backends must be a sequence of backends, got {type(backends).__name__}")
    return [
        get(b) if isinstance(b, str) else as_backend(b, f"backends[{i}]")
        for i, b in enumerate(backends)
    ]


class _Case:
    """One checked case with everything on the reference's side of the comparison."""

    def __init__(self, net: Network, params: Params, batch: Batch) -> None:
        self.net, self.params, self.batch = net, params, batch
        self.reference, self.grad_scale, self.expected = reference_side(net, params, batch)

    def report(
        self,
        chosen: Sequence[Backend],
        outcomes: Sequence[Outcome],
        rtol: float | None,
        atol: float | None,
    ) -> CrossCheckReport:
        """The report of ``chosen`` backends from their ``outcomes`` (a result or an error)."""
        net, dtype = self.net, self.params.dtype
        results: dict[str, BackpropResult] = {"reference": self.reference}
        comparisons: dict[str, list[tolerance.ParamComparison]] = {}
        tolerances: dict[str, tuple[float, float]] = {}
        errors: dict[str, str] = {}
        for backend, outcome in zip(chosen, outcomes, strict=True):
            name = backend.name
            own_rtol, own_atol = backend.tolerance(net, dtype, self.grad_scale, self.reference.loss)
            tol = (own_rtol if rtol is None else rtol, own_atol if atol is None else atol)
            tolerances[name] = tol
            if isinstance(outcome, str):
                errors[name] = outcome
                comparisons[name] = []
                continue
            try:
                compared = self.expected.compare(candidates(net, outcome, dtype), *tol)
            except (TypeError, ValueError) as exc:  # values that are not arrays of numbers
                errors[name] = f"returned values that do not compare: {_failure(exc)}"
                comparisons[name] = []
                continue
            results[name] = outcome
            comparisons[name] = compared
        return CrossCheckReport(net, results, comparisons, tolerances, errors)


def _outcome(net: Network, result: object) -> Outcome:
    """``result`` if it is a usable ``BackpropResult``, else why not, as text."""
    if isinstance(result, BaseException):
        return _failure(result)
    problem = result_problem(net, result)
    return cast(BackpropResult, result) if problem is None else problem


def _run(backend: Backend, net: Network, params: Params, batch: Batch) -> Outcome:
    """``backend``'s outcome on one checked case: a backend's failure is a finding to report."""
    try:
        result: object = backend.backprop_checked(net, params, batch)
    except Exception as exc:
        return _failure(exc)
    return _outcome(net, result)


def _start(backend: Backend, net: Network, params: Params, batch: Batch) -> Callable[[], Outcome]:
    """The outcome of ``backend`` on one case, as a function to call for it.  An asynchronous
    backend starts now and the call waits for it; any other runs when it is called."""
    if not backend.capabilities.asynchronous:
        return lambda: _run(backend, net, params, batch)
    try:
        finish = cast(Asynchronous, backend).start_checked(net, params, batch)
    except Exception as exc:
        failure = _failure(exc)
        return lambda: failure

    def wait() -> Outcome:
        try:
            result: object = finish()
        except Exception as exc:
            return _failure(exc)
        return _outcome(net, result)

    return wait


def _run_many(backend: Backend, cases: Sequence[_Case]) -> list[Outcome]:
    """The outcomes of ``backend`` on every case, in one call if it declares ``many``."""
    if not backend.capabilities.many:
        return [_run(backend, case.net, case.params, case.batch) for case in cases]
    try:
        results = cast(ManyAtOnce, backend).backprop_many_checked(
            [(case.net, case.params, case.batch) for case in cases]
        )
        if not isinstance(results, Sequence) or len(results) != len(cases):
            raise TypeError("backprop_many_checked did not return one outcome per case")
    except Exception:
        return [
            _run(backend, case.net, case.params, case.batch) for case in cases
        ]  # find the case that fails
    return [_outcome(case.net, r) for case, r in zip(cases, results, strict=True)]


def _failure(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
