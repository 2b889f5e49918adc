"""Checks at the public boundary, shared by the reference and every adapter.

Each check raises ``TypeError`` (wrong kind of object or dtype) or ``ValueError`` (wrong shape
or value) with a message that names the argument, what was expected and what came.  Inner
functions assume checked input.

The rule for results (``finite_results``): finite input gives finite results, or an
``OverflowError`` that says what overflowed and which input is too large; never a NumPy
warning, never a silent ``inf`` or ``nan``.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple, ParamSpec, TypeVar

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from .losses import LOSSES
from .network import Network, Params, as_float_array, check_finite


class Batch(NamedTuple):
    """Checked inputs: ``x`` ``(batch, in)`` and ``y`` ``(batch, out)`` in the params' dtype.

    ``single`` records that the caller passed one sample as 1-D ``x`` ``(in,)`` and ``y``
    ``(out,)``, so results can be given back in that shape.
    """

    x: NDArray[np.floating]
    y: NDArray[np.floating]
    single: bool


def check_network_params(net: object, params: object) -> None:
    """Check that ``net`` is a ``Network`` and ``params`` are ``Params`` that fit it."""
    if not isinstance(net, Network):
        raise TypeError(f"net must be a crossgrad Network, got {type(net).__name__}")
    if not isinstance(params, Params):
        raise TypeError(
            f"params must be crossgrad Params (weights, biases), got {type(params).__name__}"
        )
    if len(params) != net.n_layers:
        raise ValueError(f"params has {len(params)} layers, the network has {net.n_layers}")
    for l, (W, _) in enumerate(params):
        expected = (net.sizes[l + 1], net.sizes[l])
        if W.shape != expected:
            raise ValueError(
                f"params.weights[{l}] has shape {W.shape}, the network's layer {l + 1} "
                f"({net.sizes[l]} -> {net.sizes[l + 1]}) needs {expected} (out, in)"
            )
    for kind, arrays in (("weights", params.weights), ("biases", params.biases)):
        for l, a in enumerate(arrays):
            check_finite(f"params.{kind}[{l}]", a)


def check_x(net: Network, params: Params, x: ArrayLike) -> tuple[NDArray[np.floating], bool]:
    """Check inputs ``x`` against ``net``: ``(x as (batch, in) in params' dtype, single)``.

    ``x`` is ``(batch, in)`` or one sample ``(in,)``; ``single`` tells which.
    """
    check_network_params(net, params)
    x_ = as_float_in("x", x, params.dtype)
    if x_.ndim not in (1, 2):
        raise ValueError(
            f"x must be (batch, {net.sizes[0]}) or one sample ({net.sizes[0]},), "
            f"got shape {x_.shape}"
        )
    single = x_.ndim == 1
    if single:
        x_ = x_[np.newaxis]
    if x_.shape[0] == 0:
        raise ValueError("x holds an empty batch (0 samples); at least one sample is needed")
    if x_.shape[1] != net.sizes[0]:
        raise ValueError(
            f"x has {x_.shape[1]} features, the network's input layer has {net.sizes[0]}"
        )
    return x_, single


def check_inputs(net: Network, params: Params, x: ArrayLike, y: ArrayLike) -> Batch:
    """Check ``net``, ``params``, ``x`` and ``y`` together; return the batch in params' dtype.

    ``x`` is ``(batch, in)`` or one sample ``(in,)``; ``y`` is ``(batch, out)`` or ``(out,)``
    to match.  The targets must lie in the loss's domain.
    """
    x_, single = check_x(net, params, x)
    y_ = as_float_in("y", y, params.dtype)
    if y_.ndim != (1 if single else 2):
        raise ValueError(
            f"y must have the same number of dimensions as x ("
            f"{'one sample (out,)' if single else '(batch, out)'}), got shape {y_.shape}"
        )
    if single:
        y_ = y_[np.newaxis]
    if y_.shape[0] != x_.shape[0]:
        raise ValueError(f"y has {y_.shape[0]} samples, x has {x_.shape[0]}")
    if y_.shape[1] != net.sizes[-1]:
        raise ValueError(
            f"y has {y_.shape[1]} outputs, the network's output layer has {net.sizes[-1]}"
        )
    loss = LOSSES[net.loss]
    problem = loss.target_error(y_)
    if problem is not None:
        raise ValueError(f"y must hold {loss.target_domain} for loss {net.loss!r}: {problem}")
    return Batch(x_, y_, single)


def as_float_in(name: str, value: ArrayLike, dtype: DTypeLike) -> NDArray[np.floating]:
    """``as_float_array(name, value, dtype)`` in C order, with a ``ValueError`` when a finite
    value is too large for ``dtype`` ("x = 1e+39 does not fit float32") instead of a cast
    that overflows."""
    if not (type(value) is np.ndarray and value.dtype == dtype):  # else nothing is converted
        check_fits(name, value, dtype)
    arr = as_float_array(name, value, dtype)
    # A strided or Fortran-ordered view is copied to C order: the products and sums of the
    # forward pass add in an order that depends on the layout, and the reference's results
    # must not depend on how the caller's array happens to lie in memory.
    return arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)


def check_fits(name: str, value: object, dtype: DTypeLike) -> None:
    """Raise ``ValueError`` if ``value`` holds finite floats beyond the range of ``dtype``.

    Only a cast from float64 (or a nested list of Python floats) to float32 can overflow;
    everything else passes, to be checked by ``as_float_array``.
    """
    if np.dtype(dtype) != np.float32:
        return
    try:
        arr = value if isinstance(value, np.ndarray) else np.asarray(value)
    except (TypeError, ValueError):
        return  # not an array at all: as_float_array says so
    if arr.dtype != np.float64 or arr.size == 0:
        return
    finite = np.abs(arr[np.isfinite(arr)])
    limit = float(np.finfo(np.float32).max)
    if finite.size and finite.max() > limit:
        raise ValueError(
            f"{name} = {_magnitude(arr, finite)} does not fit float32, the params' dtype "
            f"(its largest value is {limit:.3g}); pass float64 params, or rescale {name}"
        )


def _magnitude(arr: NDArray[Any], finite: NDArray[Any]) -> str:
    """The finite entry of largest magnitude, with its sign, for a message."""
    big = float(finite.max())
    flat = arr.ravel()
    sign = "-" if float(flat[np.argmax(np.where(np.isfinite(flat), np.abs(flat), -1))]) < 0 else ""
    return f"{sign}{big:.3g}"


def check_lr(lr: object) -> float:
    """Check a learning rate: a finite, positive real number."""
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
        raise TypeError(f"lr must be a real number, got {type(lr).__name__} {lr!r}")
    try:
        value = float(lr)
    except OverflowError:  # an int beyond float64
        raise ValueError(
            "lr must be finite and positive, got an integer beyond float64's largest value "
            f"({np.finfo(np.float64).max:.3g})"
        ) from None
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"lr must be finite and positive, got {value!r}")
    return value


def check_tolerance(name: str, value: object) -> float | None:
    """Check an ``rtol``/``atol`` override: ``None`` (the default) or a finite real >= 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{name} must be a real number or None, got {type(value).__name__} {value!r}"
        )
    number = float(value)
    if not (math.isfinite(number) and number >= 0):
        raise ValueError(f"{name} must be finite and non-negative, got {value!r}")
    return number


def check_grads(params: object, grads: object) -> None:
    """Check that ``grads`` are ``Params`` of the same shapes and dtype as ``params``."""
    if not isinstance(params, Params):
        raise TypeError(f"params must be crossgrad Params, got {type(params).__name__}")
    if not isinstance(grads, Params):
        raise TypeError(f"grads must be crossgrad Params, got {type(grads).__name__}")
    if grads.dtype != params.dtype:
        raise TypeError(f"grads has dtype {grads.dtype}, params has {params.dtype}")
    if len(grads) != len(params):
        raise ValueError(f"grads has {len(grads)} layers, params has {len(params)}")
    for l, ((W, b), (dW, db)) in enumerate(zip(params, grads, strict=True)):
        if dW.shape != W.shape or db.shape != b.shape:
            raise ValueError(
                f"grads layer {l} has shapes W {dW.shape}, b {db.shape}; "
                f"params has W {W.shape}, b {b.shape}"
            )


P = ParamSpec("P")
R = TypeVar("R")


def finite_results(what: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Enforce the rule for results on a public function of the reference.

    The function runs with NumPy's floating-point warnings off (an overflow is found in the
    results instead, where it can be explained); if anything it returns is not finite, an
    ``OverflowError`` names the first quantity that overflowed, the dtype and the input of
    largest magnitude: ``backprop overflows float64 in the loss: targets (y) of magnitude
    1e+200 ...``.  Checking costs one reduction per array (``_finite``).
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def checked(*args: P.args, **kwargs: P.kwargs) -> R:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                result = fn(*args, **kwargs)
                where = _first_non_finite(result)
            if where is not None:
                bound = signature.bind(*args, **kwargs).arguments
                raise OverflowError(_overflow_message(what, where, result, bound))
            return result

        return checked

    return decorate


def _first_non_finite(result: object) -> str | None:
    """The first quantity in ``result`` that is not finite, in the order computed, or ``None``.

    ``result`` is what a reference function returns: a ``BackpropResult``, ``Params``, a
    ``(loss, Params)`` pair, a loss or an output array.
    """
    if isinstance(result, float):
        return None if math.isfinite(result) else "the loss"
    if isinstance(result, np.ndarray):
        return None if _finite(result) else "the output"
    if isinstance(result, Params):
        return _first_non_finite_params(result)
    if isinstance(result, tuple):  # train_step: (loss, new params)
        return _first_non_finite(result[0]) or _first_non_finite(result[1])
    zs, loss, grads = result.preactivations, result.loss, result.grads  # type: ignore[attr-defined]
    for l, z in enumerate(zs, start=1):
        if not _finite(z):
            return f"the pre-activations z{l}"
    return _first_non_finite(loss) or _first_non_finite_params(grads)


def _first_non_finite_params(params: Params) -> str | None:
    for name, a in params.named().items():
        if not _finite(a):
            return name
    return None


def _finite(a: NDArray[Any]) -> bool:
    # a·a (the fastest reduction on small arrays) is finite when every entry is; when it is
    # not, an entry is non-finite or merely large (|a| > 1e154 overflows the square), and the
    # exact check decides.
    return math.isfinite(np.vdot(a, a)) or bool(np.isfinite(a).all())


def _overflow_message(what: str, where: str, result: object, arguments: dict[str, Any]) -> str:
    """``"<what> overflows <dtype> in <where>: <the largest input> of magnitude ..."``."""
    params = arguments.get("params")
    dtype = params.dtype if isinstance(params, Params) else np.dtype(np.float64)
    if where[0] in "Wb":  # an array of Params: a gradient, or a parameter after a step
        where = f"the new {where}" if what in ("sgd_step", "train_step") else f"∂L/∂{where}"
    sizes: dict[str, float] = {}  # the largest magnitude of each input, by its label
    batch = arguments.get("batch")  # checked input, as backprop's inner function receives it
    for argument, label in (("x", "inputs (x)"), ("y", "targets (y)")):
        if argument in arguments:
            sizes[label] = _largest(arguments[argument])
        elif isinstance(batch, Batch):
            sizes[label] = _largest(getattr(batch, argument))
    for argument, labels in (("params", ("weights", "biases")), ("grads", ("gradients",) * 2)):
        value = arguments.get(argument)
        if isinstance(value, Params):
            for arrays, label in zip((value.weights, value.biases), labels, strict=True):
                sizes[label] = max(sizes.get(label, 0.0), *(_largest(a) for a in arrays))
    if "lr" in arguments:
        sizes["lr"] = abs(float(arguments["lr"]))
    (label, largest), *rest = sorted(sizes.items(), key=lambda item: -item[1])
    others = ", ".join(f"{name} up to {size:.3g}" for name, size in rest)
    limit = float(np.finfo(dtype).max)
    return (
        f"{what} overflows {dtype} in {where}: {label} of magnitude {largest:.3g}"
        + (f" ({others})" if others else "")
        + f"; {dtype} holds magnitudes up to {limit:.3g}, so "
        + ("use a smaller lr" if label == "lr" else f"rescale the {label.split(' (')[0]}")
        + (" or use float64 params" if dtype == np.float32 else "")
    )


def _largest(value: object) -> float:
    with np.errstate(over="ignore"):
        arr = np.asarray(value, dtype=np.float64)
    return float(np.abs(arr).max()) if arr.size else 0.0
