"""How close two training trajectories must be: rounding errors propagated through the steps.

Two correct implementations of a training run differ only by rounding, but a difference made
at step 1 is carried into every later step: through the parameters (the next gradient is
taken at slightly different parameters, and the network's curvature scales the change), and
through the optimizer's state (momentum, moments, sums of squares) and its update (Adam's and
RMSprop's ``1/(√v + ε)`` multiply a gradient's error by up to ``1/ε`` where ``v`` is tiny, and
an entry whose gradient is smaller than its rounding error can flip the sign of its step).
No closed-form bound follows all of that without exploding: a worst case taken entry by entry
and step by step compounds into a bound that grows by orders of magnitude per step (we
tried), while the real differences stay near the rounding level.

So the bound is computed by **propagating the per-step error sources through the reference's
own trajectory** (a Monte Carlo error analysis, in the manner of Monte Carlo arithmetic):

1. Each step's sources are the gradient tolerance of ``crossgrad.adapters.tolerance``,
   ``rtol_g · S`` (``S`` the gradient's error scale at the reference's ``θ_{t-1}``), one
   rounding of every value the optimizer stores, ``u · |value|`` with ``u = UNIT · eps``
   (``u · (|θ| + |step|)`` for the parameters, rounded in ``θ ← θ − step``), and one
   rounding of each hyperparameter.
2. ``RUNS`` perturbed copies of the reference trajectory are run: at every step each gradient
   entry is moved by ``rtol_g · S · ξ``, every parameter by ``u · (|θ| + |step|) · ξ``, every
   value of the optimizer's state and every hyperparameter (``lr``, ``β``, ``ε``, …)
   multiplied by ``1 + u · ξ``, with ``ξ`` uniform in ``[−1, 1]`` (a fixed seed: the bounds
   are reproducible).  Everything after the perturbation is the reference's exact
   arithmetic, so the spread of the copies is the response of *this* trajectory to errors
   of the sources' size: through the curvature, the optimizer's amplification, sign flips.
3. The bound of a parameter entry after step ``t`` is
   ``E = FACTOR · (D + B) + u · (|θ| + |step|)``, ``D`` the largest deviation of the copies
   from the reference and ``B = Σ_{s≤t} κ_s·|step_s|`` what Adam's bias corrections add: a
   framework may compute ``1 − βᵗ`` from ``β`` rounded to the params' dtype while the
   moments use ``1 − β`` in double precision (optax in float32 does), a relative error
   ``κ_t = Σ t·βᵗ·u/(1 − βᵗ)`` of the step (half of it for ``β₂``, under the root; 1e-4
   for β₂ = 0.999 in float32).  The loss before step ``t`` gets
   ``FACTOR · D_L + rtol_g · (its forward error scale)``.

A candidate's value ``c`` matches the reference's ``r`` when ``|c − r| ≤ E`` in every entry.
``FACTOR`` covers that a candidate's own errors need not line up with any sampled copy; the
sources are already the gradient tolerance, itself about 20 times the gradient errors torch
and jax make.  Calibrated by ``tests/calibrate_trajectories.py`` (see ``docs/optimizers.md``):
over 300 random cases the worst error/tolerance was 0.14, a margin of 7.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..reference import Network, Params, Trajectory, backprop
from ..reference.optimizers import SGD, Adagrad, Adam, RMSprop
from ..reference.validation import check_inputs
from . import tolerance

Array = NDArray[np.float64]

UNIT = 4.0
"""Rounding allowance of one stored value, in units of ``eps(dtype)``."""

RUNS = 3
"""Perturbed copies of the reference trajectory."""

FACTOR = 4.0
"""The bound in units of the copies' largest deviation (see the module docstring)."""

SEED = 20_240_214
"""The perturbations' seed: the same case always gets the same bounds."""


@dataclass(frozen=True)
class TrajectoryBounds:
    """Per step ``t`` (0-based, like ``Trajectory``): ``losses[t]`` bounds the error of the
    loss before step ``t + 1``; ``params[t]`` holds, in the order ``W1, b1, W2, …``, the
    bounds of every parameter entry after it."""

    losses: tuple[float, ...]
    params: tuple[tuple[Array, ...], ...]


def _arrays(params: Params | Sequence[NDArray[np.floating]]) -> list[NDArray[np.floating]]:
    if isinstance(params, Params):
        return [a for pair in params for a in pair]
    return list(params)


def _jitter(value: Any, u: float, rng: np.random.Generator) -> Any:
    """``value`` with every floating array multiplied by ``1 + u·ξ`` (``ξ`` in ``[−1, 1]``),
    inside tuples and NamedTuples too; anything else as it is."""
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return value * (1 + u * rng.uniform(-1, 1, value.shape))
    if isinstance(value, Params):
        arrays = [_jitter(a, u, rng) for a in _arrays(value)]
        return Params(arrays[0::2], arrays[1::2])
    if isinstance(value, tuple):
        items = [_jitter(v, u, rng) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    return value


def _perturbed(optimizer: Any, u: float, rng: np.random.Generator) -> Any:
    """``optimizer`` with every real hyperparameter multiplied by ``1 + u·ξ``: a framework
    may hold them in the params' dtype, and ``1 − β`` or ``1 − βᵗ`` then carry the rounding
    of ``β`` relative to a small difference (``eps/(1 − β₂)``: 1e-4 in float32)."""
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(optimizer):
        value = getattr(optimizer, f.name)
        if isinstance(value, float) and value:
            changes[f.name] = value * (1 + u * rng.uniform(-1, 1))
        elif f.name == "betas":
            changes[f.name] = tuple(
                min(b * (1 + u * rng.uniform(-1, 1)), _BELOW_ONE) for b in value
            )
    if "alpha" in changes:
        changes["alpha"] = min(changes["alpha"], _BELOW_ONE)
    return dataclasses.replace(optimizer, **changes)


_BELOW_ONE = float(np.nextafter(1.0, 0.0))


def _update_scale(before: NDArray[np.floating], after: NDArray[np.floating]) -> Array:
    """The size of the values rounded in ``θ ← θ − step``: ``|θ_new| + |step|``."""
    new = after.astype(np.float64)
    return np.abs(new) + np.abs(new - before)


def _rounded(before: Any, after: Any, u: float, rng: np.random.Generator) -> Any:
    """``after`` (``Params`` or a list of arrays) with one rounding error of its update:
    ``± u·(|θ_new| + |step|)``."""
    pairs = zip(_arrays(before), _arrays(after), strict=True)
    arrays = [
        a + (u * _update_scale(b, a) * rng.uniform(-1, 1, a.shape)).astype(a.dtype)
        for b, a in pairs
    ]
    return Params(arrays[0::2], arrays[1::2]) if isinstance(after, Params) else arrays


def optimizer_bounds(
    optimizer: SGD | Adam | RMSprop | Adagrad,
    params: Sequence[NDArray[np.floating]],
    grads: Sequence[Sequence[NDArray[np.floating]]],
) -> list[list[Array]]:
    """The error bounds of the optimizer alone: ``bounds[t][i]`` for array ``i`` of
    ``params`` after step ``t + 1`` with the exact gradients ``grads[t]``.

    The same model as ``trajectory_bounds`` without the gradient's sources (the gradients
    are given): ``RUNS`` copies with every stored value rounded once, ``FACTOR · D + u ·
    (|θ| + |step|)``.
    """
    dtype = np.dtype(params[0].dtype) if len(params) else np.dtype(np.float64)
    u = UNIT * float(np.finfo(dtype).eps)
    exact = list(params)
    state: Any = optimizer.init(exact)
    reference = []
    for g in grads:
        exact, state = optimizer.step(exact, list(g), state)
        reference.append(exact)
    rng = np.random.default_rng(SEED)
    D = [[np.zeros(a.shape) for a in params] for _ in grads]
    for _ in range(RUNS):
        copy = _perturbed(optimizer, u, rng)
        theta = list(params)
        state = copy.init(theta)
        for t, g in enumerate(grads):
            before = theta
            theta, state = copy.step(theta, list(g), state)
            theta, state = _rounded(before, theta, u, rng), _jitter(state, u, rng)
            for i, (a, r) in enumerate(zip(theta, reference[t], strict=True)):
                np.maximum(D[t][i], np.abs(a.astype(np.float64) - r), out=D[t][i])
    return _bounds(optimizer, u, D, [list(params), *reference[:-1]], reference)


def trajectory_bounds(
    net: Network,
    batches: Sequence[tuple[Any, Any]],
    optimizer: SGD | Adam | RMSprop | Adagrad,
    reference: Trajectory,
    rtol: float | None = None,
) -> TrajectoryBounds:
    """The error bounds of every loss and parameter of ``reference`` (``reference.train`` of
    ``net`` on ``batches`` with ``optimizer``); ``rtol`` overrides the gradient tolerance
    (``tolerance.default_rtol``)."""
    dtype = np.dtype(reference.initial.dtype)
    rtol_g = tolerance.default_rtol(net, dtype) if rtol is None else rtol
    u = UNIT * float(np.finfo(dtype).eps)
    steps = len(reference)
    sources, loss_scales = [], []
    for t, (x, y) in enumerate(batches):
        theta = reference.initial if t == 0 else reference.params[t - 1]
        batch = check_inputs(net, theta, x, y)
        sources.append([rtol_g * S for S in _arrays(tolerance.error_scale(net, theta, x, y))])
        loss_scales.append(tolerance.forward_scales(net, theta, batch.x, batch.y).loss)

    rng = np.random.default_rng(SEED)
    D = [[np.zeros(a.shape) for a in _arrays(reference.initial)] for _ in range(steps)]
    D_loss = [0.0] * steps
    for _ in range(RUNS):
        copy = _perturbed(optimizer, u, rng)
        state: Any = copy.init(reference.initial)
        theta = reference.initial
        for t, (x, y) in enumerate(batches):
            result = backprop(net, theta, x, y)
            grads = [
                g + (s * rng.uniform(-1, 1, g.shape)).astype(dtype)
                for g, s in zip(_arrays(result.grads), sources[t], strict=True)
            ]
            before = theta
            theta, state = copy.step(theta, Params(grads[0::2], grads[1::2]), state)
            theta, state = _rounded(before, theta, u, rng), _jitter(state, u, rng)
            D_loss[t] = max(D_loss[t], abs(result.loss - reference.losses[t]))
            for i, (a, r) in enumerate(
                zip(_arrays(theta), _arrays(reference.params[t]), strict=True)
            ):
                np.maximum(D[t][i], np.abs(a.astype(np.float64) - r), out=D[t][i])
    thetas = [_arrays(reference.initial), *(_arrays(p) for p in reference.params)]
    return TrajectoryBounds(
        tuple(FACTOR * d + rtol_g * s for d, s in zip(D_loss, loss_scales, strict=True)),
        tuple(tuple(b) for b in _bounds(optimizer, u, D, thetas[:-1], thetas[1:])),
    )


def _bias_correction_error(optimizer: Any, t: int, u: float) -> float:
    """The relative error of Adam's step ``t`` from ``1 − βᵗ`` computed with a rounded ``β``
    (``t·βᵗ·u / (1 − βᵗ)`` for each; half of it for ``v``, under the root), 0 for the others.
    The perturbed copies cannot show it: they round ``β`` once for the moments and the
    correction alike, and at ``t = 1`` the two cancel exactly."""
    if not isinstance(optimizer, Adam):
        return 0.0
    error = 0.0
    for beta, weight in zip(optimizer.betas, (1.0, 0.5), strict=True):
        if beta:
            error += weight * t * beta**t * u / (1 - beta**t)
    return error


def _bounds(
    optimizer: Any,
    u: float,
    D: list[list[Array]],
    before: Sequence[Sequence[NDArray[np.floating]]],
    after: Sequence[Sequence[NDArray[np.floating]]],
) -> list[list[Array]]:
    """``FACTOR · D + u·(|θ| + |step|)`` per step and array, ``D`` grown by the bias
    corrections' errors, which stay in the parameters once made."""
    carried = [np.zeros(d.shape) for d in D[0]] if D else []
    out = []
    for t, (deviations, b, a) in enumerate(zip(D, before, after, strict=True), start=1):
        kappa = _bias_correction_error(optimizer, t, u)
        row = []
        for i, (d, prev, new) in enumerate(zip(deviations, b, a, strict=True)):
            step = np.abs(new.astype(np.float64) - prev)
            carried[i] = carried[i] + kappa * step
            row.append(FACTOR * (d + carried[i]) + u * _update_scale(prev, new))
        out.append(row)
    return out
