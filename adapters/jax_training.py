"""A training run in JAX: the network of ``jax_backend`` stepped by real ``optax`` transformations.

``transformation(opt)`` builds the optax optimizer that computes the reference's (torch's)
trajectory, from optax's own aliases and transformations, with the settings where optax's
defaults differ spelled out (``docs/optimizers.md`` tabulates them):

- ``SGD``: ``optax.sgd`` (its ``trace`` starts at 0, so the first buffer is the first
  gradient, as torch's); dampening τ scales the gradient by ``optax.scale_by_schedule`` with
  1 at the first step and ``1 − τ`` after, because torch leaves the first gradient undamped.
- ``Adam``: ``optax.adam`` (ε outside the root, ``eps_root = 0``); coupled weight decay is
  ``optax.add_decayed_weights`` *before* it.  ``amsgrad``: no optax configuration computes
  torch's AMSGrad (torch takes the maximum of the raw ``v`` and bias-corrects it afterwards;
  ``optax.amsgrad`` takes the maximum of bias-corrected or of raw values, uncorrected).
- ``AdamW``: ``optax.adamw`` with torch's ``weight_decay`` (optax's default is 1e-4, torch's 1e-2).
- ``RMSprop``: ``optax.rmsprop`` with ``decay = α`` (optax: 0.9, torch: 0.99) and
  ``eps_in_sqrt=False`` (optax puts ε inside the root by default).
- ``Adagrad``: ``optax.adagrad`` with torch's initial accumulator (optax: 0.1, torch: 0).
  optax adds ε inside the root and cannot put it outside, so only ``eps = 0`` is computed.

The unsupported cases raise ``NotImplementedError`` saying why; ``crosscheck_training``
reports them as skipped.  float64 runs inside ``jax.enable_x64(True)``, scoped: the user's
JAX configuration is never changed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..reference import Network, Params
from ..reference.optimizers import SGD, Adagrad, Adam, AdamW, RMSprop
from . import jax_backend

name = "jax"


def transformation(opt: SGD | Adam | RMSprop | Adagrad) -> Any:
    """The optax ``GradientTransformation`` computing ``opt``'s steps (see the module
    docstring); ``NotImplementedError`` where optax cannot be configured to."""
    decay = []
    if opt.weight_decay and not isinstance(opt, AdamW):
        decay = [optax.add_decayed_weights(opt.weight_decay)]  # coupled: g ← g + λθ
    if isinstance(opt, SGD):
        if opt.dampening and opt.momentum:
            tau = opt.dampening
            decay.append(optax.scale_by_schedule(lambda count: jnp.where(count == 0, 1, 1 - tau)))
        core = optax.sgd(opt.lr, momentum=opt.momentum or None, nesterov=opt.nesterov)
    elif isinstance(opt, Adam):
        if opt.amsgrad:
            raise NotImplementedError(
                "optax cannot compute torch's AMSGrad: torch bias-corrects the maximum of the "
                "raw second moments, optax.amsgrad takes the maximum of corrected ones"
            )
        b1, b2 = opt.betas
        if isinstance(opt, AdamW):
            core = optax.adamw(opt.lr, b1=b1, b2=b2, eps=opt.eps, weight_decay=opt.weight_decay)
        else:
            core = optax.adam(opt.lr, b1=b1, b2=b2, eps=opt.eps)
    elif isinstance(opt, RMSprop):
        core = optax.rmsprop(
            opt.lr, decay=opt.alpha, eps=opt.eps, eps_in_sqrt=False, centered=opt.centered,
            momentum=opt.momentum or None,
        )  # fmt: skip
    else:
        if opt.eps:
            raise NotImplementedError(
                f"optax's Adagrad adds eps inside the square root, torch's outside; with "
                f"eps={opt.eps:g} they differ (only eps=0 is computed the same way)"
            )
        core = optax.adagrad(opt.lr, initial_accumulator_value=opt.initial_accumulator_value, eps=0)
    return optax.chain(*decay, core) if decay else core


def _loss_function(net: Network) -> Callable[..., Any]:
    """``loss(arrays, x, y)``: the batch loss of ``net`` for its arrays ``W1, b1, W2, …``,
    written with the jax backend's own ``forward`` and ``loss``."""

    def loss(arrays: list[Any], x: Any, y: Any) -> Any:
        zs, activations = jax_backend.forward(net, arrays[0::2], arrays[1::2], x)
        return jax_backend.loss(net, zs, activations, y)

    return loss


def trajectory(
    net: Network,
    params: Params,
    batches: Sequence[tuple[np.ndarray, np.ndarray]],
    opt: SGD | Adam | RMSprop | Adagrad | Any,
) -> tuple[list[float], list[Params]]:
    """``(losses, params)`` of training ``net`` from ``params`` on checked ``batches``, one
    step per batch; ``opt`` is a reference optimizer (see ``transformation``) or any optax
    ``GradientTransformation``, run as given."""
    tx = opt if isinstance(opt, optax.GradientTransformation) else transformation(opt)
    dtype = np.dtype(params.dtype)
    losses, thetas = [], []
    with jax_backend._precision(dtype):
        arrays = [jnp.asarray(a) for pair in params for a in pair]
        state = tx.init(arrays)
        steps: dict[int, Callable[..., Any]] = {}  # one compiled step per batch size
        for x, y in batches:
            n = x.shape[0]
            if n not in steps:
                steps[n] = _compiled_step(net, n, dtype, tx)
            value, arrays, state = steps[n](arrays, state, jnp.asarray(x), jnp.asarray(y))
            losses.append(float(value))
            out = [np.array(a, dtype=dtype) for a in arrays]
            thetas.append(Params(out[0::2], out[1::2]))
    return losses, thetas


def _compiled_step(net: Network, n: int, dtype: Any, tx: Any) -> Callable[..., Any]:
    """One training step, compiled: ``(arrays, state, x, y) -> (loss, arrays, state)``.
    Eager execution would re-trace every ``lax.switch`` of the network at every step."""
    value_and_grad = jax.value_and_grad(_loss_function(net))

    def step(arrays: list[Any], state: Any, x: Any, y: Any) -> tuple[Any, Any, Any]:
        value, grads = value_and_grad(arrays, x, y)
        updates, state = tx.update(grads, state, arrays)
        return value, optax.apply_updates(arrays, updates), state

    return jax.jit(step)
