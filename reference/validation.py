"""Checks at the public boundary, shared by the reference and every adapter.

Each check raises ``TypeError`` (wrong kind of object or dtype) or ``ValueError`` (wrong shape
or value) with a message that names the argument, what was expected and what came.  Inner
functions assume checked input.
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

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
    x_ = as_float_array("x", x, params.dtype)
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
    y_ = as_float_array("y", y, params.dtype)
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


def check_lr(lr: object) -> float:
    """Check a learning rate: a finite, positive real number."""
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
        raise TypeError(f"lr must be a real number, got {type(lr).__name__} {lr!r}")
    value = float(lr)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"lr must be finite and positive, got {lr!r}")
    return value


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
