"""A training loop: one optimizer step per batch, every step recorded.

::

    traj = train(net, params, [(x1, y1), (x2, y2)], optimizers.Adam(lr=1e-3))
    traj.losses      # (L(θ₀; batch 1), L(θ₁; batch 2)): the loss before each step
    traj.params[-1]  # θ₂, the params after the last step
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from numpy.typing import ArrayLike

from .backpropagation import backprop
from .network import Network, Params
from .optimizers import SGD, Adagrad, Adam, RMSprop


@dataclass(frozen=True)
class Trajectory:
    """What ``train`` did, step by step (``T`` steps, one per batch).

    ``losses[t]`` is the loss on batch ``t`` *before* step ``t + 1`` (at ``θ_t``);
    ``grads[t]`` its gradient; ``params[t]`` the ``Params`` ``θ_{t+1}`` after the step and
    ``states[t]`` the optimizer's state then.  ``initial`` is ``θ₀``.
    """

    initial: Params
    losses: tuple[float, ...]
    grads: tuple[Params, ...]
    params: tuple[Params, ...]
    states: tuple[Any, ...]

    def __len__(self) -> int:
        return len(self.losses)


def check_batches(batches: object) -> list[tuple[ArrayLike, ArrayLike]]:
    """``batches`` as a list of ``(x, y)`` pairs (each checked later, by ``backprop``)."""
    if isinstance(batches, (str, bytes)) or not isinstance(batches, Sequence):
        raise TypeError(f"batches must be a sequence of (x, y) pairs, got {type(batches).__name__}")
    out = []
    for i, pair in enumerate(batches):
        if not isinstance(pair, Sequence) or len(pair) != 2:
            raise TypeError(f"batches[{i}] must be an (x, y) pair, got {type(pair).__name__}")
        out.append((pair[0], pair[1]))
    if not out:
        raise ValueError("batches is empty; expected at least one (x, y) pair")
    return out


def check_optimizer_object(optimizer: object) -> None:
    """Raise ``TypeError`` unless ``optimizer`` is one of the reference optimizers."""
    if not isinstance(optimizer, (SGD, Adam, RMSprop, Adagrad)):
        raise TypeError(
            "optimizer must be one of crossgrad.reference.optimizers (SGD, Adam, AdamW, "
            f"RMSprop, Adagrad), got {type(optimizer).__name__}"
        )


def train(
    net: Network,
    params: Params,
    batches: Sequence[tuple[ArrayLike, ArrayLike]],
    optimizer: SGD | Adam | RMSprop | Adagrad,
) -> Trajectory:
    """Train ``net`` from ``params``: for each ``(x, y)`` of ``batches`` (``x: (batch, in)``,
    ``y: (batch, out)``), ``backprop`` then ``optimizer.step``.

    Returns the ``Trajectory``; the inputs are not modified.
    """
    pairs = check_batches(batches)
    check_optimizer_object(optimizer)
    state: Any = optimizer.init(params)
    theta = params
    losses, grads, thetas, states = [], [], [], []
    for x, y in pairs:
        result = backprop(net, theta, x, y)
        theta, state = optimizer.step(theta, result.grads, state)
        losses.append(result.loss)
        grads.append(result.grads)
        thetas.append(theta)
        states.append(state)
    return Trajectory(params, tuple(losses), tuple(grads), tuple(thetas), tuple(states))
