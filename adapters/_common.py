"""Plumbing shared by every backend: checking input, and packing results into the reference's
result type.  Called by each backend, never copied into one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ..reference import BackpropResult, Network, Params
from ..reference.validation import Batch, check_inputs


def prepare(net: Network, params: Params, x: ArrayLike, y: ArrayLike) -> Batch:
    """Check the inputs exactly as ``reference.backprop`` does (same errors, same messages)."""
    return check_inputs(net, params, x, y)


def result(
    loss: Any,
    weight_grads: Sequence[Any],
    bias_grads: Sequence[Any],
    preactivations: Sequence[Any],
    activations: Sequence[Any],
    dtype: np.dtype[Any],
    single: bool,
) -> BackpropResult:
    """A ``BackpropResult`` of NumPy arrays in ``dtype`` from any framework's arrays.

    Forward values come as ``(batch, width)``; with ``single`` they are returned as vectors,
    like the reference's.
    """

    def as_numpy(values: Sequence[Any]) -> tuple[np.ndarray, ...]:
        return tuple(np.asarray(v, dtype=dtype) for v in values)

    zs, acts = as_numpy(preactivations), as_numpy(activations)
    if single:
        zs, acts = tuple(z[0] for z in zs), tuple(a[0] for a in acts)
    return BackpropResult(
        loss=float(loss),
        grads=Params(as_numpy(weight_grads), as_numpy(bias_grads)),
        preactivations=zs,
        activations=acts,
    )
