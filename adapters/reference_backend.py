"""The reference as a backend: ``crossgrad.reference`` behind the backend protocol.

It is what every other backend is compared with; as a backend of its own it shows the
protocol at its smallest, and lets a sweep or a benchmark treat it like any other.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from ..reference import BackpropResult, Network, Params
from ..reference.backpropagation import backprop, batch_loss, gradients
from ..reference.backpropagation import forward as _forward
from ..reference.validation import Batch
from .protocol import Capabilities
from .tolerance import model_tolerance

name = "reference"
capabilities = Capabilities()
tolerance = model_tolerance

__all__ = ["backprop", "backprop_checked", "capabilities", "forward", "loss", "name", "tolerance"]

Array = NDArray[np.floating]


def forward(
    net: Network, weights: Sequence[Array], biases: Sequence[Array], x: Array
) -> tuple[list[Array], list[Array]]:
    """``([z_1..z_L], [a_0..a_L])`` for checked ``x`` ``(batch, in)``; ``z = a Wᵀ + b``."""
    return _forward(net, Params(weights, biases), x)


def loss(net: Network, zs: list[Array], activations: list[Array], y: Array) -> float:
    """The batch loss from the forward pass."""
    return batch_loss(net, zs, activations, y)


def backprop_checked(net: Network, params: Params, batch: Batch) -> BackpropResult:
    """``backprop`` on input already checked by ``reference.check_inputs``."""
    return gradients(net, params, batch)
