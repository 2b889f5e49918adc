"""A user's backprop result held against the reference, under the tolerance model.

Gradients are compared with the tolerance model of ``adapters.tolerance``
(``|g − r| ≤ atol + rtol · S``), the loss against ``tolerance.forward_scales``' bound.  Each
comparison reports three numbers a reader cannot confuse: the absolute error, the relative
error against the value (``|g − r| / |r|`` over the entries where ``r ≠ 0``) and the error in
units of the tolerance (``|g − r| / (atol + rtol · S)``: at most 1 passes).

A user's function sees the case in its own layout (``Layout``): ``W`` as ``(out, in)`` or
``(in, out)``, samples as rows or as columns; its gradients are brought back to crossgrad's
layout before they are compared, and a gradient of the wrong shape for that layout is
reported as such.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from ..adapters.tolerance import Expected, ParamComparison, default_rtol
from ..reference import Network, Params
from ..strategies import Case

Array = NDArray[np.floating]
Backprop = Callable[[Network, Any, Array, Array], Any]
"""``fn(net, params, x, y)`` (``params``: ``Params``, or ``LaidOut`` in a user's layout): a
result with ``.loss`` and ``.grads`` (``.weights``, ``.biases``), like ``reference.backprop``'s,
or a tuple ``(loss, weight_grads, bias_grads)``.
A backend object (``.name`` and ``.backprop``, like ``adapters.get("torch")``) is accepted
wherever such a function is."""

WEIGHT_LAYOUTS = ("out_in", "in_out")
SAMPLE_LAYOUTS = ("rows", "columns")


class Unsupported(Exception):  # noqa: N818 - the user raises it to say "not this case"
    """Raised by a user's function for a case it does not handle: the case is discarded.

    ``raise Unsupported("no softmax")``: the case is not counted as checked; the sweep counts
    the cases declined, by reason, and reports them.  A run where every case is declined is a
    usage error, not a pass.
    """


class ProtocolError(Exception):
    """A user's function returned something that is not a backprop result."""


Comparison = ParamComparison
"""How one array (``loss``, ``W1``, ``b1``, ..., ``z1``, ``a1`` for backends) compares: the
comparison row of ``adapters.tolerance`` (``max_abs_err``, ``max_rel_err`` against the value,
``max_err_over_tolerance``, ``worst_index``, ``ok``, ``problem``)."""


def relative_error(candidate: Array, reference: Array) -> float:
    """``max |g − r| / |r|`` over the entries where ``r ≠ 0`` (0 if there are none)."""
    with np.errstate(invalid="ignore", over="ignore"):
        r = np.asarray(reference, np.float64)
        err = np.abs(np.asarray(candidate, np.float64) - r)
        nonzero = r != 0
        if not nonzero.any():
            return 0.0
        rel = err[nonzero] / np.abs(r[nonzero])
        rel = np.where(np.isnan(rel), np.inf, rel)
        return float(rel.max())


def compare(
    name: str,
    candidate: Array,
    reference: Array,
    scale: Array,
    rtol: float,
    atol: float = 0.0,
    problem: str | None = None,
) -> Comparison:
    """Compare one array with the reference under ``|g − r| ≤ atol + rtol · scale``.

    ``problem`` (a layout problem found before) fails the comparison with that text.
    """
    candidate, reference = np.asarray(candidate), np.asarray(reference)
    if candidate.shape != reference.shape:
        text = problem or f"shape {candidate.shape}, expected {reference.shape}"
        return Comparison(name, np.inf, np.inf, np.inf, (), False, text)
    if problem is None and candidate.dtype != reference.dtype:
        problem = f"dtype {candidate.dtype}, expected {reference.dtype}"
    elif problem is None and not np.isfinite(candidate).all():
        problem = "non-finite values"
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(candidate.astype(np.float64) - reference.astype(np.float64))
        err = np.where(np.isnan(err), np.inf, err)
        allowed = atol + rtol * np.asarray(scale, np.float64).reshape(reference.shape)
        zero_or_inf = np.where(err > 0, np.inf, 0.0)
        ratio = np.divide(err, allowed, out=zero_or_inf, where=allowed > 0)
    worst = np.unravel_index(int(np.argmax(ratio)), ratio.shape) if ratio.size else ()
    over = float(ratio[worst]) if ratio.size else 0.0
    return Comparison(
        name=name,
        max_abs_err=float(err.max()) if err.size else 0.0,
        max_rel_err=relative_error(candidate, reference),
        max_err_over_tolerance=over,
        worst_index=tuple(int(i) for i in worst),
        ok=problem is None and over <= 1,
        problem=problem,
    )


@dataclass(frozen=True)
class Gradients:
    """What a user's function returned, as arrays: one ``W`` and one ``b`` gradient per layer.

    ``problems`` names the arrays returned in a shape that does not fit the user's layout;
    ``library`` the package of the arrays returned when they were not NumPy's (``"jax"``,
    ``"torch"``: what a hint may name), else ``None``.
    """

    loss: float | None
    weights: tuple[Array, ...]
    biases: tuple[Array, ...]
    problems: tuple[tuple[str, str], ...] = ()
    library: str | None = None


def _arrays(what: str, value: object, n_layers: int) -> tuple[Array, ...]:
    if isinstance(value, np.ndarray | str | bytes) or not isinstance(value, Sequence):
        raise ProtocolError(
            f"{what} must be a sequence with one array per layer, got {type(value).__name__}"
        )
    if len(value) != n_layers:
        raise ProtocolError(
            f"{what} hold {_count(len(value), 'array')}; the network has "
            f"{_count(n_layers, 'layer')} (one array per layer)"
        )
    out = []
    for l, item in enumerate(value, start=1):
        try:
            arr = np.asarray(item)
        except (TypeError, ValueError) as exc:
            raise ProtocolError(f"{what}[{l - 1}] is not an array: {exc}") from None
        if arr.dtype.kind not in "iuf":
            raise ProtocolError(f"{what}[{l - 1}] must hold real numbers, got dtype {arr.dtype}")
        out.append(arr)
    return tuple(out)


def _count(n: int, noun: str) -> str:
    """``"1 array"``, ``"2 arrays"``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _loss(loss: object) -> float:
    """The user's loss as a float: a real number or a 0-d array of one, nothing else.

    Strings are refused rather than parsed (``float("0.5")`` would accept one), and so are
    booleans, complex numbers and arrays of more than one dimension.
    """
    if isinstance(loss, str | bytes | bool | np.bool_):
        raise ProtocolError(f"the loss must be a number, got {type(loss).__name__} {loss!r:.100}")
    try:
        arr = np.asarray(loss)
    except (TypeError, ValueError):
        arr = np.asarray(None)  # an object array: refused below
    if arr.dtype.kind not in "iuf" or arr.ndim != 0:
        what = f"an array of shape {arr.shape}" if arr.ndim else type(loss).__name__
        kind = f" of dtype {arr.dtype}" if arr.dtype.kind != "O" else ""
        raise ProtocolError(
            f"the loss must be a real number (or a 0-d array of one), got {what}{kind}: "
            f"{loss!r:.100}"
        )
    return float(arr)


def normalise(result: object, n_layers: int) -> Gradients:
    """A user's result (``reference.backprop``-like, or ``(loss, dWs, dbs)``) as ``Gradients``."""
    grads = getattr(result, "grads", None)
    if grads is not None and hasattr(grads, "weights") and hasattr(grads, "biases"):
        loss, weights, biases = getattr(result, "loss", None), grads.weights, grads.biases
    elif isinstance(result, tuple | list) and len(result) == 3:
        loss, weights, biases = result
    else:
        raise ProtocolError(
            "the function must return a result with .loss and .grads (.weights, .biases), like "
            f"reference.backprop, or a tuple (loss, weight_grads, bias_grads); got {result!r:.200}"
        )
    loss_ = None if loss is None else _loss(loss)
    return Gradients(
        loss_,
        _arrays("the weight gradients", weights, n_layers),
        _arrays("the bias gradients", biases, n_layers),
        library=_library(weights),
    )


def _library(arrays: Sequence[object]) -> str | None:
    """The top-level package of the first array's type (``jaxlib`` counts as ``jax``), or
    ``None`` for NumPy arrays and plain Python values."""
    package = type(arrays[0]).__module__.partition(".")[0] if len(arrays) else "numpy"
    package = "jax" if package == "jaxlib" else package
    return None if package in ("numpy", "builtins") else package


def as_function(impl: Any, argument: str = "fn") -> tuple[Backprop, str]:
    """``(fn, name)`` for a user's function or a backend object with ``.backprop``."""
    backprop = getattr(impl, "backprop", None)
    if backprop is not None and callable(backprop) and not _is_plain_function(impl):
        return backprop, str(getattr(impl, "name", type(impl).__name__))
    if not callable(impl):
        raise TypeError(
            f"{argument} must be callable as {argument}(net, params, x, y) or an object with "
            f".backprop(net, params, x, y), got {impl!r}"
        )
    return impl, "your backprop"


def _is_plain_function(value: object) -> bool:
    import types

    return isinstance(value, types.FunctionType | types.BuiltinFunctionType | types.MethodType)


@dataclass(frozen=True, eq=False)
class LaidOut:
    """Parameters in a user's layout, as a user's function receives them.

    The attributes of ``reference.Params`` (``weights``, ``biases``, ``(W, b)`` pairs by
    iteration), with ``W`` as ``(in, out)`` under ``weights="in_out"`` and ``b`` as ``(out, 1)``
    under ``samples="columns"``: shapes ``Params`` itself, always ``(out, in)`` and ``(out,)``,
    does not hold.
    """

    weights: tuple[Array, ...]
    biases: tuple[Array, ...]

    @property
    def dtype(self) -> np.dtype[Any]:
        """The floating dtype shared by all arrays."""
        return self.weights[0].dtype

    def __iter__(self) -> Iterator[tuple[Array, Array]]:
        """Iterate over ``(W, b)`` pairs, layer by layer."""
        return iter(zip(self.weights, self.biases, strict=True))

    def __len__(self) -> int:
        return len(self.weights)


@dataclass(frozen=True)
class Layout:
    """How a user's function takes the case and returns its gradients.

    ``weights``: ``"out_in"`` (crossgrad's, ``z = W a + b``) or ``"in_out"`` (``W`` is
    ``(in, out)``, ``z = a W + b``; ``∂L/∂W`` is returned as ``(in, out)`` too).
    ``samples``: ``"rows"`` (``x`` ``(batch, in)``, ``y`` ``(batch, out)``, ``b`` ``(out,)``)
    or ``"columns"`` (``x`` ``(in, batch)``, ``y`` ``(out, batch)``, ``b`` an ``(out, 1)``
    column, as the textbook writes them).  Bias gradients may come back as ``(out,)``, or as
    ``(1, out)`` with rows and ``(out, 1)`` with columns.
    """

    weights: Literal["out_in", "in_out"] = "out_in"
    samples: Literal["rows", "columns"] = "rows"

    @classmethod
    def of(cls, weights: object, samples: object) -> Layout:
        """A checked layout from the ``weights=`` and ``samples=`` arguments."""
        for argument, value, known in (
            ("weights", weights, WEIGHT_LAYOUTS),
            ("samples", samples, SAMPLE_LAYOUTS),
        ):
            if not isinstance(value, str):
                raise TypeError(f"{argument} must be one of {', '.join(known)}, got {value!r}")
            if value not in known:
                raise ValueError(f"{argument} must be one of {', '.join(known)}, got {value!r}")
        return cls(weights, samples)  # type: ignore[arg-type]

    @property
    def default(self) -> bool:
        return self.weights == "out_in" and self.samples == "rows"

    def describe(self) -> str:
        """``weights='in_out', samples='columns'`` (only what differs from the default)."""
        parts = [f"weights={self.weights!r}"] if self.weights != "out_in" else []
        parts += [f"samples={self.samples!r}"] if self.samples != "rows" else []
        return ", ".join(parts)

    def weight_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The user's shape of a weight of crossgrad shape ``(out, in)``."""
        return shape[::-1] if self.weights == "in_out" else shape

    def user_case(self, case: Case) -> tuple[Params | LaidOut, Array, Array]:
        """Fresh copies of the case's arrays, in this layout: ``(params, x, y)``."""
        weights = tuple(
            (W.T if self.weights == "in_out" else W).copy() for W in case.params.weights
        )
        columns = self.samples == "columns"
        biases = tuple((b[:, None] if columns else b).copy() for b in case.params.biases)
        x, y = (case.x.T, case.y.T) if columns else (case.x, case.y)
        params = Params(weights, biases) if self.default else LaidOut(weights, biases)
        return params, x.copy(), y.copy()

    def to_crossgrad(self, got: Gradients, net: Network) -> Gradients:
        """The user's gradients in crossgrad's layout; wrong shapes kept and named."""
        problems: list[tuple[str, str]] = []
        weights, biases = [], []
        sizes = net.sizes
        for l in range(net.n_layers):
            n_in, n_out = sizes[l], sizes[l + 1]
            W, b = got.weights[l], got.biases[l]
            want = self.weight_shape((n_out, n_in))
            if W.shape == want:
                weights.append(W.T if self.weights == "in_out" else W)
            else:
                weights.append(W)
                problems.append((f"W{l + 1}", self._weight_problem(l + 1, W.shape, want)))
            shapes = {(n_out,), (n_out, 1) if self.samples == "columns" else (1, n_out)}
            if b.shape in shapes:
                biases.append(b.reshape(n_out))
            else:
                biases.append(b)
                expected = " or ".join(str(s) for s in sorted(shapes, key=len))
                problems.append((f"b{l + 1}", f"shape {b.shape}, expected {expected}"))
        return Gradients(got.loss, tuple(weights), tuple(biases), tuple(problems), got.library)

    def _weight_problem(self, l: int, shape: tuple[int, ...], want: tuple[int, ...]) -> str:
        name = "(in, out)" if self.weights == "in_out" else "(out, in)"
        text = f"shape {shape}, expected {name} = {want}"
        if shape == want[::-1]:
            text += " (the transpose: returned in the other weight layout)"
        return text


def call(fn: Backprop, case: Case, layout: Layout) -> Gradients:
    """``fn`` on copies of ``case`` in ``layout``, its result in crossgrad's layout.

    Raises ``ProtocolError`` for a result of the wrong kind, ``Unsupported`` and any other
    exception from ``fn`` as they come.
    """
    params, x, y = layout.user_case(case)
    got = normalise(fn(case.net, params, x, y), case.net.n_layers)
    return layout.to_crossgrad(got, case.net)


CompareItem = tuple[str, Any, Any, Any, "str | None"]
"""One array to compare: ``(name, candidate, reference, scale, problem)``, ``compare``'s
arguments."""


def compare_all(items: Sequence[CompareItem], rtol: float, atol: float = 0.0) -> list[Comparison]:
    """``compare(name, candidate, reference, scale, rtol, atol, problem)`` of every item.

    The result is exactly ``compare``'s, item by item; only the work differs.  The items that
    need no report beyond their numbers (no ``problem``, the reference's shape and floating
    dtype, entries to compare) go through the backends' comparator, ``tolerance.Expected``:
    one float64 pass over all of them at once, a dozen NumPy calls per case instead of some
    25 per array.  The other items (a wrong shape or dtype, a layout problem, an empty array,
    an error that is not finite) are compared on their own, for ``compare``'s messages.
    """
    arrays = [
        (np.asarray(candidate), np.asarray(reference), np.asarray(scale))
        for _, candidate, reference, scale, _ in items
    ]
    fast = [
        k
        for k, ((_, _, _, _, problem), (g, r, s)) in enumerate(zip(items, arrays, strict=True))
        if problem is None
        and g.shape == r.shape
        and g.dtype == r.dtype
        and r.dtype.kind == "f"
        and 0 < r.size == s.size
    ]
    out: list[Comparison | None] = [None] * len(items)
    if fast:
        expected = Expected([(items[k][0], arrays[k][1], arrays[k][2]) for k in fast])
        rows = expected.compare([arrays[k][0] for k in fast], rtol, atol)
        for k, row in zip(fast, rows, strict=True):
            # An error that is not finite (a NaN or inf value, or an overflow) is left to
            # compare, which tells a non-finite candidate from an overflowing difference.
            if row.problem is None and math.isfinite(row.max_abs_err):
                out[k] = row
    return [
        row if row is not None else compare(name, g, r, s, rtol, atol, problem)
        for row, (name, g, r, s, problem) in zip(out, items, strict=True)
    ]


Worst = tuple[float, float, float]
"""``(max_abs_err, max_rel_err, max_err_over_tolerance)``, as in a ``Comparison``."""


def agreeing_errors(
    items: Sequence[CompareItem], rtol: float, atol: float = 0.0
) -> dict[str, Worst] | None:
    """When every item surely passes, the worst errors of each kind of item (its name
    without the layer number: ``loss``, ``W``, ``b``), in the order the kinds come; else
    ``None``, and ``compare_all`` decides and reports.

    What a sweep records of a case that agrees (``ErrorStats`` keeps the worst of each kind),
    in one float64 pass over every array and three reductions, where ``compare_all`` also
    finds each array's worst entry and builds its ``Comparison``.  The errors are exactly
    ``compare_all``'s, reduced over the arrays of a kind.  "Surely passes" is ``|g − r| ≤
    atol + rtol·S`` for every entry, with finite errors, and items ``compare_all`` takes in
    its one pass (no ``problem``, the reference's shape and floating dtype, entries to
    compare): ``compare_all`` passes every such item.
    """
    kinds: dict[str, list[tuple[Array, Array, Array]]] = {}
    for name, candidate, reference, scale, problem in items:
        g, r, s = np.asarray(candidate), np.asarray(reference), np.asarray(scale)
        if not (
            problem is None
            and g.shape == r.shape
            and g.dtype == r.dtype
            and r.dtype.kind == "f"
            and 0 < r.size == s.size
        ):
            return None
        kinds.setdefault(name.rstrip("0123456789"), []).append((g, r, s))
    arrays = [entry for group in kinds.values() for entry in group]
    g, r, s = (
        np.concatenate([entry[k].ravel() for entry in arrays], dtype=np.float64) for k in range(3)
    )
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(g - r)
        allowed = atol + rtol * s
        if not (err <= allowed).all() or not math.isfinite(err.max()):  # (NaN fails ≤ too)
            return None
        # As compare_all: the relative error where r ≠ 0, the ratio where the allowance is
        # positive (elsewhere err = 0 here).
        rel = np.divide(err, np.abs(r), out=np.zeros_like(err), where=r != 0)
        ratio = np.divide(err, allowed, out=np.zeros_like(err), where=allowed > 0)
    sizes = [sum(entry[1].size for entry in group) for group in kinds.values()]
    starts = np.cumsum([0, *sizes[:-1]])
    worst = zip(*(np.maximum.reduceat(a, starts).tolist() for a in (err, rel, ratio)), strict=True)
    return dict(zip(kinds, worst, strict=True))


def gradient_items(
    net: Network,
    weight_scales: Sequence[Array],
    bias_scales: Sequence[Array],
    candidate: Gradients,
    reference: Params,
) -> list[CompareItem]:
    """The ``compare_all`` items of ``W1, b1, W2, ...``: ``candidate`` against ``reference``,
    with the gradients' error scales (``tolerance.error_scale_arrays``, or the ``weights``
    and ``biases`` of ``tolerance.error_scale``), and the layout problems ``candidate``
    names."""
    problems = dict(candidate.problems)
    items: list[CompareItem] = []
    for l in range(net.n_layers):
        for kind, cand, ref, s in (
            ("W", candidate.weights, reference.weights, weight_scales),
            ("b", candidate.biases, reference.biases, bias_scales),
        ):
            name = f"{kind}{l + 1}"
            items.append((name, cand[l], ref[l], s[l], problems.get(name)))
    return items


def compare_gradients(
    net: Network,
    params: Params,
    scale: Params,
    candidate: Gradients,
    reference: Params,
    rtol: float | None = None,
    atol: float = 0.0,
) -> list[Comparison]:
    """``W1, b1, W2, ...`` of ``candidate`` against ``reference`` under the tolerance model.

    ``scale`` is the gradients' error scale (``tolerance.error_scale``); ``rtol`` defaults to
    ``default_rtol(net, params.dtype)``.
    """
    rtol_ = default_rtol(net, params.dtype) if rtol is None else rtol
    items = gradient_items(net, scale.weights, scale.biases, candidate, reference)
    return compare_all(items, rtol_, atol)
