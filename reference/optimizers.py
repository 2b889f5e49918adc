"""Optimizers in plain NumPy, with the defaults and semantics of ``torch.optim``.

Functional like the rest of the reference: an optimizer is an immutable description of its
hyperparameters, and its state is data::

    opt = Adam(lr=1e-3)
    state = opt.init(params)
    params, state = opt.step(params, grads, state)   # new params and state; nothing modified

``params`` and ``grads`` are ``Params`` (the result is ``Params``) or sequences of NumPy
arrays of the same shapes (the result is a list), as ``testing.check_optimizer`` uses them.
Each array is updated on its own, by the formulas in each class's docstring, written as they
are computed, for one array ``θ`` with gradient ``g`` at step ``t = 1, 2, …``.

Where torch and optax differ (ε inside or outside the root, Adagrad's accumulator, AdamW's
decay, the first momentum buffer), these follow torch; ``docs/optimizers.md`` tabulates the
differences and what the adapters set so that optax computes the same trajectory.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

import numpy as np
from numpy.typing import NDArray

from .network import Params

Array = NDArray[np.floating]
Arrays = tuple[Array, ...]
P = TypeVar("P", Params, list[Array])


def _number(name: str, value: object, low: float = 0.0, high: float = math.inf) -> float:
    """A real hyperparameter in ``[low, high)`` (``[low, ∞)`` by default)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    v = float(value)
    if not (math.isfinite(v) and low <= v < high):
        bound = f"in [{low:g}, {high:g})" if high < math.inf else f"finite and at least {low:g}"
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return v


def _betas(value: object) -> tuple[float, float]:
    if not isinstance(value, Sequence) or len(value) != 2:
        raise TypeError(f"betas must be a pair (beta1, beta2), got {value!r}")
    return _number("betas[0]", value[0], 0, 1), _number("betas[1]", value[1], 0, 1)


def arrays_of(params: object, name: str = "params") -> Arrays:
    """The arrays of ``params`` in order ``W1, b1, W2, b2, …`` (``Params``) or as given (a
    sequence of floating NumPy arrays, all of one dtype)."""
    if isinstance(params, Params):
        return tuple(a for pair in params for a in pair)
    if isinstance(params, np.ndarray) or not isinstance(params, Sequence):
        raise TypeError(
            f"{name} must be crossgrad Params or a list of NumPy arrays, got "
            f"{type(params).__name__}"
        )
    out = []
    for i, a in enumerate(params):
        if not isinstance(a, np.ndarray) or a.dtype not in (np.float32, np.float64):
            raise TypeError(
                f"{name}[{i}] must be a float32 or float64 NumPy array, got "
                f"{getattr(a, 'dtype', type(a).__name__)}"
            )
        out.append(a)
    if len({a.dtype for a in out}) > 1:
        raise TypeError(f"{name} must share one dtype, got {sorted({str(a.dtype) for a in out})}")
    return tuple(out)


def _like(params: P, arrays: Sequence[Array]) -> P:
    """``arrays`` (in the order of ``arrays_of``) in the container type of ``params``."""
    if isinstance(params, Params):
        return Params(arrays[0::2], arrays[1::2])
    return list(arrays)


def _check_grads(theta: Arrays, grads: object) -> Arrays:
    g = arrays_of(grads, "grads")
    if len(g) != len(theta):
        raise ValueError(f"grads has {len(g)} arrays, params has {len(theta)}")
    for i, (p, d) in enumerate(zip(theta, g, strict=True)):
        if d.shape != p.shape or d.dtype != p.dtype:
            raise ValueError(
                f"grads[{i}] is {d.dtype} {d.shape}, params[{i}] is {p.dtype} {p.shape}; "
                "they must match"
            )
    return g


def _check_state(state: Any, kind: type[tuple[Any, ...]], theta: Arrays) -> Any:
    if not isinstance(state, kind):
        raise TypeError(
            f"state must be the {kind.__name__} of this optimizer's init(params), got "
            f"{type(state).__name__}"
        )
    n = len(state[1])  # the first per-array field
    if n != len(theta):
        raise ValueError(f"state holds {n} arrays, params has {len(theta)}")
    return state


def _zeros(theta: Arrays) -> Arrays:
    return tuple(np.zeros_like(p) for p in theta)


class SGDState(NamedTuple):
    """``t`` steps taken; ``buf``: the momentum buffers, one per array (``None`` before the
    first step, and on every step without momentum)."""

    t: int
    buf: tuple[Array | None, ...]


@dataclass(frozen=True)
class SGD:
    """Stochastic gradient descent, as ``torch.optim.SGD``::

    g ← g + λ·θ                                   (weight_decay λ, coupled: an L2 term)
    b ← g                                          at t = 1 (the first gradient, undamped)
    b ← μ·b + (1 − τ)·g                            at t > 1 (momentum μ, dampening τ)
    d ← g + μ·b  (nesterov)   or   d ← b           (momentum μ > 0; else d ← g)
    θ ← θ − lr·d
    """

    lr: float = 1e-3
    momentum: float = 0.0
    dampening: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        _number("lr", self.lr)
        _number("momentum", self.momentum)
        _number("dampening", self.dampening)
        _number("weight_decay", self.weight_decay)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("nesterov=True needs momentum > 0 and dampening = 0 (as torch)")

    def init(self, params: Params | Sequence[Array]) -> SGDState:
        """The state before the first step: no momentum buffers yet."""
        return SGDState(0, (None,) * len(arrays_of(params)))

    def step(self, params: P, grads: P, state: SGDState) -> tuple[P, SGDState]:
        """One step by the formulas above: ``(new params, new state)``; ``grads`` has the
        shapes of ``params``, and nothing passed in is modified."""
        theta = arrays_of(params)
        grad = _check_grads(theta, grads)
        state = _check_state(state, SGDState, theta)
        lr, mu, tau, lam = self.lr, self.momentum, self.dampening, self.weight_decay
        new_theta, new_buf = [], []
        for p, g, b in zip(theta, grad, state.buf, strict=True):
            if lam:
                g = g + lam * p
            if mu:
                b = g.copy() if b is None else mu * b + (1 - tau) * g
                d = g + mu * b if self.nesterov else b
            else:
                d = g
            new_theta.append(p - lr * d)
            new_buf.append(b)
        return _like(params, new_theta), SGDState(state.t + 1, tuple(new_buf))


class AdamState(NamedTuple):
    """``t`` steps taken; the moments ``m`` and ``v``; ``v_max`` with amsgrad, else ``()``."""

    t: int
    m: Arrays
    v: Arrays
    v_max: Arrays


@dataclass(frozen=True)
class Adam:
    """Adam, as ``torch.optim.Adam`` (weight decay coupled: added to the gradient)::

    g  ← g + λ·θ                       (weight_decay λ)
    m  ← β₁·m + (1 − β₁)·g
    v  ← β₂·v + (1 − β₂)·g²
    m̂  = m / (1 − β₁ᵗ)
    v̂  = v / (1 − β₂ᵗ)                 (amsgrad: v_max ← max(v_max, v), v̂ = v_max / (1 − β₂ᵗ))
    θ  ← θ − lr·m̂ / (√v̂ + ε)           (ε outside the root)
    """

    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    amsgrad: bool = False

    decoupled = False  # AdamW: θ ← θ − lr·λ·θ before the update, instead of g ← g + λ·θ

    def __post_init__(self) -> None:
        _number("lr", self.lr)
        object.__setattr__(self, "betas", _betas(self.betas))
        _number("eps", self.eps)
        _number("weight_decay", self.weight_decay)

    def init(self, params: Params | Sequence[Array]) -> AdamState:
        """The state before the first step: zero moments, of the params' shapes."""
        theta = arrays_of(params)
        return AdamState(0, _zeros(theta), _zeros(theta), _zeros(theta) if self.amsgrad else ())

    def step(self, params: P, grads: P, state: AdamState) -> tuple[P, AdamState]:
        """One step by the formulas above (see ``SGD.step``)."""
        theta = arrays_of(params)
        grad = _check_grads(theta, grads)
        state = _check_state(state, AdamState, theta)
        (beta1, beta2), lr, eps, lam = self.betas, self.lr, self.eps, self.weight_decay
        t = state.t + 1
        v_maxes = state.v_max or (None,) * len(theta)
        out: list[tuple[Array, Array, Array, Array | None]] = []
        for p, g, m, v, v_max in zip(theta, grad, state.m, state.v, v_maxes, strict=True):
            if self.decoupled:
                p = p - lr * lam * p
            elif lam:
                g = g + lam * p
            m = beta1 * m + (1 - beta1) * g
            v = beta2 * v + (1 - beta2) * g**2
            m_hat = m / (1 - beta1**t)
            if v_max is not None:
                v_max = np.maximum(v_max, v)
                v_hat = v_max / (1 - beta2**t)
            else:
                v_hat = v / (1 - beta2**t)
            out.append((p - lr * m_hat / (np.sqrt(v_hat) + eps), m, v, v_max))
        new_theta, ms, vs, v_max_new = zip(*out, strict=True) if out else ((),) * 4
        new_state = AdamState(t, tuple(ms), tuple(vs), tuple(v_max_new) if state.v_max else ())
        return _like(params, new_theta), new_state


@dataclass(frozen=True)
class AdamW(Adam):
    """AdamW, as ``torch.optim.AdamW``: Adam with decoupled weight decay (default 1e-2)::

    θ  ← θ − lr·λ·θ                    (first, on the parameters; g is left alone)
    m, v, m̂, v̂ as in Adam, then θ ← θ − lr·m̂ / (√v̂ + ε)
    """

    weight_decay: float = 1e-2

    decoupled = True


class RMSpropState(NamedTuple):
    """``t`` steps taken; ``v`` the mean square; ``g_avg`` (centered) and ``buf`` (momentum),
    each ``()`` when unused."""

    t: int
    v: Arrays
    g_avg: Arrays
    buf: Arrays


@dataclass(frozen=True)
class RMSprop:
    """RMSprop, as ``torch.optim.RMSprop``::

    g   ← g + λ·θ                      (weight_decay λ)
    v   ← α·v + (1 − α)·g²
    ḡ   ← α·ḡ + (1 − α)·g              (centered only)
    d   = √(v − ḡ²) + ε  (centered)  or  √v + ε     (ε outside the root)
    b   ← μ·b + g / d,  θ ← θ − lr·b   (momentum μ > 0; b starts at 0)
    θ   ← θ − lr·g / d                 (momentum μ = 0)
    """

    lr: float = 1e-2
    alpha: float = 0.99
    eps: float = 1e-8
    momentum: float = 0.0
    centered: bool = False
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        _number("lr", self.lr)
        _number("alpha", self.alpha, 0, 1)
        _number("eps", self.eps)
        _number("momentum", self.momentum)
        _number("weight_decay", self.weight_decay)

    def init(self, params: Params | Sequence[Array]) -> RMSpropState:
        """The state before the first step: zero averages and buffers of the params' shapes
        (``()`` for those the settings do not use)."""
        theta = arrays_of(params)
        return RMSpropState(
            0,
            _zeros(theta),
            _zeros(theta) if self.centered else (),
            _zeros(theta) if self.momentum else (),
        )

    def step(self, params: P, grads: P, state: RMSpropState) -> tuple[P, RMSpropState]:
        """One step by the formulas above (see ``SGD.step``)."""
        theta = arrays_of(params)
        grad = _check_grads(theta, grads)
        state = _check_state(state, RMSpropState, theta)
        lr, alpha, eps, mu, lam = self.lr, self.alpha, self.eps, self.momentum, self.weight_decay
        n = len(theta)
        g_avgs, bufs = state.g_avg or (None,) * n, state.buf or (None,) * n
        out: list[tuple[Array, Array, Array | None, Array | None]] = []
        for p, g, v, g_avg, b in zip(theta, grad, state.v, g_avgs, bufs, strict=True):
            if lam:
                g = g + lam * p
            v = alpha * v + (1 - alpha) * g**2
            if g_avg is not None:
                g_avg = alpha * g_avg + (1 - alpha) * g
                d = np.sqrt(v - g_avg**2) + eps
            else:
                d = np.sqrt(v) + eps
            if b is not None:
                b = mu * b + g / d
                p = p - lr * b
            else:
                p = p - lr * g / d
            out.append((p, v, g_avg, b))
        new_theta, vs, new_g_avg, new_buf = zip(*out, strict=True) if out else ((),) * 4
        new_state = RMSpropState(
            state.t + 1,
            tuple(vs),
            tuple(new_g_avg) if state.g_avg else (),
            tuple(new_buf) if state.buf else (),
        )
        return _like(params, new_theta), new_state


class AdagradState(NamedTuple):
    """``t`` steps taken; ``s``: the sums of squared gradients."""

    t: int
    s: Arrays


@dataclass(frozen=True)
class Adagrad:
    """Adagrad, as ``torch.optim.Adagrad`` (no learning-rate decay)::

        g ← g + λ·θ                        (weight_decay λ)
        s ← s + g²                         (s starts at initial_accumulator_value)
        θ ← θ − lr·g / (√s + ε)            (ε outside the root)

    ``eps = 0`` with ``initial_accumulator_value = 0`` is refused: a first gradient entry of
    0 would give 0/0.
    """

    lr: float = 1e-2
    eps: float = 1e-10
    initial_accumulator_value: float = 0.0
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        _number("lr", self.lr)
        _number("eps", self.eps)
        _number("initial_accumulator_value", self.initial_accumulator_value)
        _number("weight_decay", self.weight_decay)
        if self.eps == 0 and self.initial_accumulator_value == 0:
            raise ValueError(
                "eps and initial_accumulator_value are both 0: a zero gradient entry at the "
                "first step would divide 0 by 0; make one of them positive"
            )

    def init(self, params: Params | Sequence[Array]) -> AdagradState:
        """The state before the first step: the accumulators at their initial value."""
        theta = arrays_of(params)
        return AdagradState(
            0, tuple(np.full_like(p, self.initial_accumulator_value) for p in theta)
        )

    def step(self, params: P, grads: P, state: AdagradState) -> tuple[P, AdagradState]:
        """One step by the formulas above (see ``SGD.step``)."""
        theta = arrays_of(params)
        grad = _check_grads(theta, grads)
        state = _check_state(state, AdagradState, theta)
        lr, eps, lam = self.lr, self.eps, self.weight_decay
        new_theta, new_s = [], []
        for p, g, s in zip(theta, grad, state.s, strict=True):
            if lam:
                g = g + lam * p
            s = s + g**2
            new_theta.append(p - lr * g / (np.sqrt(s) + eps))
            new_s.append(s)
        return _like(params, new_theta), AdagradState(state.t + 1, tuple(new_s))


Optimizer = SGD | Adam | AdamW | RMSprop | Adagrad
"""Any of the reference optimizers."""

OPTIMIZERS: dict[str, type[SGD] | type[Adam] | type[RMSprop] | type[Adagrad]] = {
    "sgd": SGD,
    "adam": Adam,
    "adamw": AdamW,
    "rmsprop": RMSprop,
    "adagrad": Adagrad,
}
"""The optimizers by name, as the command line takes them."""
