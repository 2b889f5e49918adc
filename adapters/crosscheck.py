"""Cross-checking backends against the reference, and the report a user reads when they disagree."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..reference import BackpropResult, Network, Params
from ..reference.backprop import _backprop
from ..reference.validation import Batch, check_tolerance
from . import tolerance
from ._common import prepare

Array = NDArray[np.floating]


class Backend(Protocol):
    """Anything with a ``name`` and a ``backprop`` like ``reference.backprop``.

    A backend may also offer ``tolerance(scale, loss) -> (rtol, atol)`` (its own default
    tolerance); ``backprop_checked(net, params, batch)``, ``backprop`` on a ``Batch`` that
    ``reference.check_inputs`` has already checked (``crosscheck`` checks each case once); and
    ``backprop_many_checked([(net, params, batch), ...])``, a list with a result or the
    exception raised for each case, which ``crosscheck_many`` calls once per chunk; and
    ``start_checked(net, params, batch)``, which starts an asynchronous computation and
    returns the function that waits for its result (``crosscheck`` starts such a backend
    before it computes the reference's side).
    """

    name: str

    def backprop(
        self, net: Network, params: Params, x: ArrayLike, y: ArrayLike
    ) -> BackpropResult: ...


@dataclass(frozen=True)
class CrossCheckReport:
    """How every backend compares with the reference on one case.

    ``results[name]`` is each backend's ``BackpropResult`` (``"reference"`` included);
    ``comparisons[name]`` lists a ``ParamComparison`` for the loss, every forward value
    (``z1``, ``a1``, ...) and every gradient (``W1``, ``b1``, ...); ``tolerances[name]`` is the
    ``(rtol, atol)`` used: an entry agrees when ``|g − r| ≤ atol + rtol · S``, ``S`` its error
    scale (``crossgrad.adapters.tolerance``).
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
        return max(self.comparisons[backend], key=lambda c: c.worst_ratio)

    def max_rel_err(self, backend: str) -> float:
        """The largest error of ``backend`` relative to the error scale, over everything."""
        return max(c.max_rel_err for c in self.comparisons[backend])

    def __str__(self) -> str:
        header = ("backend", "quantity", "max abs err", "max rel err", "worst index", "err/allowed",
                  "")  # fmt: skip
        rows = [header]
        for backend in self.backends:
            if backend in self.errors:
                rows.append((backend, "(failed)", "", "", "", "", self.errors[backend]))
                continue
            for c in self.comparisons[backend]:
                verdict = "ok" if c.ok else f"MISMATCH{': ' + c.problem if c.problem else ''}"
                shape = c.problem is not None and c.problem.startswith("shape")
                errors = (
                    ("-",) * 4
                    if shape
                    else (  # no entries to compare: no errors
                        f"{c.max_abs_err:.3g}",
                        f"{c.max_rel_err:.3g}",
                        str(list(c.worst_index)),
                        f"{c.worst_ratio:.3g}",
                    )
                )
                rows.append((backend, c.name, *errors, verdict))  # fmt: skip
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
                 for r in rows]  # fmt: skip
        lines.insert(1, "  ".join("-" * w for w in widths))
        tol = ", ".join(f"{b}: rtol={r:.3g} atol={a:.3g}" for b, (r, a) in self.tolerances.items())
        verdict = "all backends agree" if self.ok else "BACKENDS DISAGREE"
        return (
            f"crosscheck of {self.net!r}: {verdict}\n"
            f"(rel err and tolerance are relative to each entry's error scale S; {tol})\n"
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
    reference = _backprop(net, params, batch.x, batch.y, batch.single)
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


def candidates(net: Network, result: BackpropResult, dtype: np.dtype[Any]) -> list[Array]:
    """A backend's values in the order of ``reference_side``'s ``Expected``.

    Raises ``TypeError`` (with what is wrong) when ``result`` is not a ``BackpropResult`` of
    real numbers: a string loss is refused, not parsed.
    """
    if not isinstance(result, BackpropResult):
        raise TypeError(f"got {type(result).__name__} {result!r:.100}")
    loss: Any = result.loss  # a backend of one's own may put anything here
    if isinstance(loss, str | bytes) or np.ndim(loss) != 0:
        raise TypeError(f"its loss must be a real number, got {result.loss!r:.100}")
    values = [np.asarray(result.loss, dtype)]
    for l in range(net.n_layers):
        values += (np.asarray(result.preactivations[l]), np.asarray(result.activations[l + 1]))
    for l in range(net.n_layers):
        values += (np.asarray(result.grads.weights[l]), np.asarray(result.grads.biases[l]))
    return values


def crosscheck(
    net: Network,
    params: Params,
    x: ArrayLike,
    y: ArrayLike,
    backends: Sequence[str | Backend] | None = None,
    rtol: float | None = None,
    atol: float | None = None,
) -> CrossCheckReport:
    """Run ``backends`` on one case and compare each with the reference.

    ``backends``: names (see ``available()``) and/or objects with ``name`` and ``backprop``;
    ``None`` means every framework backend installed here (``numeric``, slow, only when
    named).  ``rtol``/``atol`` override the tolerance model's defaults for every backend.
    ``x``: ``(batch, in)`` or ``(in,)``; ``y``: ``(batch, out)`` or ``(out,)``.  An exception
    inside a backend is reported as that backend's failure, not raised.
    """
    batch = prepare(net, params, x, y)  # bad input raises here, as in the reference
    chosen = _choose(backends, rtol, atol)
    # Backends that compute asynchronously (JAX) start first and run while the reference and
    # the other backends do their work; every result is collected in order at the end.
    pending = [_start(b, net, params, x, y, batch) for b in chosen]
    case = _Case(net, params, x, y, batch)
    return case.report(chosen, [finish() for finish in pending], rtol, atol)


def crosscheck_many(
    cases: Iterable[tuple[Network, Params, ArrayLike, ArrayLike]],
    backends: Sequence[str | Backend] | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    *,
    chunk: int = 64,
) -> Iterator[CrossCheckReport]:
    """``crosscheck`` of every ``(net, params, x, y)`` in ``cases``: the same reports, in order.

    For sweeps.  Cases are taken ``chunk`` at a time, and each backend runs over the whole
    chunk before the next one starts, so that one framework's code and data stay in the CPU's
    caches: alternating torch, JAX and NumPy case by case costs about a third more time on
    small networks.  Reports are yielded as each chunk completes.  Bad input raises the
    reference's ``TypeError``/``ValueError``, its message prefixed with ``cases[i]: ``.
    """
    chosen = _choose(backends, rtol, atol)
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be a positive integer, got {chunk!r}")
    iterator = iter(enumerate(cases))
    while group := list(itertools.islice(iterator, chunk)):
        prepared = [_Case.numbered(i, case) for i, case in group]
        outcomes = [_run_many(b, prepared) for b in chosen]
        for k, case in enumerate(prepared):
            yield case.report(chosen, [runs[k] for runs in outcomes], rtol, atol)


def _choose(
    backends: Sequence[str | Backend] | None, rtol: float | None, atol: float | None
) -> list[Backend]:
    """The backends to run (``get`` for names) after checking the tolerance overrides."""
    from . import available, get

    check_tolerance("rtol", rtol)
    check_tolerance("atol", atol)
    names = [n for n in available() if n != "numeric"] if backends is None else backends
    return [get(b) if isinstance(b, str) else b for b in names]


class _Case:
    """One checked case with everything on the reference's side of the comparison."""

    def __init__(
        self, net: Network, params: Params, x: ArrayLike, y: ArrayLike, batch: Batch | None = None
    ) -> None:
        self.net, self.params, self.x, self.y = net, params, x, y
        self.batch = prepare(net, params, x, y) if batch is None else batch
        self.reference, self.grad_scale, self.expected = reference_side(net, params, self.batch)

    @property
    def inputs(self) -> tuple[Network, Params, ArrayLike, ArrayLike, Batch]:
        """``(net, params, x, y, batch)``: the case as given, and checked."""
        return self.net, self.params, self.x, self.y, self.batch

    @classmethod
    def numbered(cls, i: int, case: tuple[Network, Params, ArrayLike, ArrayLike]) -> _Case:
        """``_Case(*case)``, with ``cases[i]: `` in front of any error message."""
        try:
            net, params, x, y = case
            return cls(net, params, x, y)
        except (TypeError, ValueError, OverflowError) as exc:
            if not isinstance(case, tuple | list) or len(case) != 4:
                raise TypeError(
                    f"cases[{i}] must be a tuple (net, params, x, y), got {type(case).__name__}"
                ) from None
            raise type(exc)(f"cases[{i}]: {exc}") from None

    def report(
        self,
        chosen: Sequence[Backend],
        outcomes: Sequence[BackpropResult | str],
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
            own = getattr(backend, "tolerance", None)
            if own is not None:
                default_rtol, default_atol = own(self.grad_scale, self.reference.loss)
            else:
                default_rtol, default_atol = tolerance.default_rtol(net, dtype), 0.0
            tol = (default_rtol if rtol is None else rtol, default_atol if atol is None else atol)
            tolerances[name] = tol
            if isinstance(outcome, str):
                errors[name] = outcome
                comparisons[name] = []
                continue
            try:  # a backend of one's own may return anything: a finding, like an exception
                found = self.expected.compare(candidates(net, outcome, dtype), *tol)
            except Exception as exc:
                errors[name] = f"it returned something that is not a BackpropResult: {exc}"
                comparisons[name] = []
                continue
            results[name] = outcome
            comparisons[name] = found
        return CrossCheckReport(net, results, comparisons, tolerances, errors)


def _run(
    backend: Backend, net: Network, params: Params, x: ArrayLike, y: ArrayLike, batch: Batch
) -> BackpropResult | str:
    """``backend``'s result on one case (as given, and as checked: ``batch``), or the
    exception it raised, as text: a backend's failure is a finding to report.  Built-in
    backends skip re-checking the input."""
    try:
        checked = getattr(backend, "backprop_checked", None)
        if checked is not None:
            result: BackpropResult = checked(net, params, batch)
            return result
        return backend.backprop(net, params, x, y)
    except Exception as exc:
        return _failure(exc)


def _start(
    backend: Backend, net: Network, params: Params, x: ArrayLike, y: ArrayLike, batch: Batch
) -> Callable[[], BackpropResult | str]:
    """What ``_run`` gives, as a function to call for it: a backend with ``start_checked``
    starts now and is waited for by the call; any other runs when it is called."""
    start = getattr(backend, "start_checked", None)
    if start is None:
        return lambda: _run(backend, net, params, x, y, batch)
    try:
        finish = start(net, params, batch)
    except Exception as exc:
        failure = _failure(exc)
        return lambda: failure

    def wait() -> BackpropResult | str:
        try:
            result: BackpropResult = finish()
            return result
        except Exception as exc:
            return _failure(exc)

    return wait


def _run_many(backend: Backend, cases: Sequence[_Case]) -> list[BackpropResult | str]:
    """``_run`` of ``backend`` on every case, in one call where the backend can take many."""
    many = getattr(backend, "backprop_many_checked", None)
    if many is None:
        return [_run(backend, *case.inputs) for case in cases]
    try:
        results = many([(case.net, case.params, case.batch) for case in cases])
    except Exception:
        return [_run(backend, *case.inputs) for case in cases]  # find the case that fails
    return [r if isinstance(r, BackpropResult) else _failure(r) for r in results]


def _failure(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
