"""A user's backprop result held against the reference, under the tolerance model.

Gradients are compared with ``adapters.tolerance`` (``|g − r| ≤ atol + rtol · S``), the loss
against ``tolerance.forward_scales``' bound.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..adapters.tolerance import ParamComparison, compare_arrays, default_rtol
from ..reference import Network, Params

Array = NDArray[np.floating]
Backprop = Callable[[Network, Params, Array, Array], Any]
"""``fn(net, params, x, y)``: a result with ``.loss`` and ``.grads`` (``.weights``,
``.biases``), like ``reference.backprop``'s, or a tuple ``(loss, weight_grads, bias_grads)``."""


class ProtocolError(Exception):
    """A user's function returned something that is not a backprop result."""


@dataclass(frozen=True)
class Gradients:
    """What a user's function returned, as arrays: one ``W`` and one ``b`` gradient per layer."""

    loss: float | None
    weights: tuple[Array, ...]
    biases: tuple[Array, ...]


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
    )


def compare_gradients(
    net: Network,
    params: Params,
    scale: Params,
    candidate: Gradients,
    reference: Params,
    rtol: float | None = None,
    atol: float = 0.0,
) -> list[ParamComparison]:
    """``W1, b1, W2, ...`` of ``candidate`` against ``reference`` under the tolerance model.

    ``scale`` is the gradients' error scale (``tolerance.error_scale``); ``rtol`` defaults to
    ``default_rtol(net, params.dtype)``.
    """
    rtol_ = default_rtol(net, params.dtype) if rtol is None else rtol
    out = []
    for l in range(net.n_layers):
        for kind, cand, ref, s in (
            ("W", candidate.weights, reference.weights, scale.weights),
            ("b", candidate.biases, reference.biases, scale.biases),
        ):
            out.append(compare_arrays(f"{kind}{l + 1}", cand[l], ref[l], s[l], rtol_, atol))
    return out
