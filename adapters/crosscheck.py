"""Cross-checking backends against the reference, and the report a user reads when they disagree."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike

from ..reference import BackpropResult, Network, Params
from ..reference.backprop import _backprop
from . import tolerance
from ._common import prepare


class Backend(Protocol):
    """Anything with a ``name`` and a ``backprop`` like ``reference.backprop``."""

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
                rows.append((
                    backend, c.name, f"{c.max_abs_err:.3g}", f"{c.max_rel_err:.3g}",
                    str(list(c.worst_index)), f"{c.worst_ratio:.3g}", verdict,
                ))  # fmt: skip
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


def _compare(
    net: Network,
    candidate: BackpropResult,
    reference: BackpropResult,
    forward: tolerance.ForwardScales,
    grads: Params,
    rtol: float,
    atol: float,
) -> list[tolerance.ParamComparison]:
    dtype = reference.grads.dtype
    items = [("loss", np.asarray(candidate.loss, dtype), np.asarray(reference.loss, dtype),
              np.asarray(forward.loss))]  # fmt: skip
    for l in range(net.n_layers):
        items.append((f"z{l + 1}", np.asarray(candidate.preactivations[l]),
                      reference.preactivations[l], forward.preactivations[l]))  # fmt: skip
        items.append((f"a{l + 1}", np.asarray(candidate.activations[l + 1]),
                      reference.activations[l + 1], forward.activations[l]))  # fmt: skip
    for l in range(net.n_layers):
        items.append((f"W{l + 1}", np.asarray(candidate.grads.weights[l]),
                      reference.grads.weights[l], grads.weights[l]))  # fmt: skip
        items.append((f"b{l + 1}", np.asarray(candidate.grads.biases[l]),
                      reference.grads.biases[l], grads.biases[l]))  # fmt: skip
    return tolerance.compare_all(items, rtol, atol)


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
    from . import available, get

    batch = prepare(net, params, x, y)  # bad input raises here, as in the reference
    chosen: list[Backend] = []
    for b in [n for n in available() if n != "numeric"] if backends is None else backends:
        chosen.append(get(b) if isinstance(b, str) else b)
    if rtol is not None and not (np.isfinite(rtol) and rtol >= 0):
        raise ValueError(f"rtol must be finite and non-negative, got {rtol!r}")
    if atol is not None and not (np.isfinite(atol) and atol >= 0):
        raise ValueError(f"atol must be finite and non-negative, got {atol!r}")

    reference = _backprop(net, params, batch.x, batch.y, batch.single)
    forward, grad_scale = tolerance.error_scales(net, params, batch.x, batch.y)
    results: dict[str, BackpropResult] = {"reference": reference}
    comparisons: dict[str, list[tolerance.ParamComparison]] = {}
    tolerances: dict[str, tuple[float, float]] = {}
    errors: dict[str, str] = {}
    for backend in chosen:
        name = backend.name
        own = getattr(backend, "tolerance", None)
        if own is not None:
            default_rtol, default_atol = own(grad_scale, reference.loss)
        else:
            default_rtol, default_atol = tolerance.default_rtol(net, params.dtype), 0.0
        tol = (default_rtol if rtol is None else rtol, default_atol if atol is None else atol)
        tolerances[name] = tol
        try:
            got = backend.backprop(net, params, x, y)
        except Exception as exc:  # a backend's failure is a finding to report
            errors[name] = f"{type(exc).__name__}: {exc}"
            comparisons[name] = []
            continue
        results[name] = got
        comparisons[name] = _compare(net, got, reference, forward, grad_scale, *tol)
    return CrossCheckReport(net, results, comparisons, tolerances, errors)
