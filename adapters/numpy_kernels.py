"""The per-activation and per-loss kernels of the fast NumPy backend, one table each.

Every kernel writes into arrays it is given (``out=`` everywhere) and allocates nothing on
the common paths, so that one training step runs without a temporary the size of a layer.

No operand is broadcast on small arrays.  A NumPy binary operation with a scalar or a
broadcast operand skips the contiguous SIMD loop: ``np.minimum(t, 86.0)`` on a
``(32, 128)`` float32 array took 4.0 µs, ``np.minimum(t, c)`` with ``c`` a full array of 86
took 1.3 µs (0.6 against 1.7 µs on a ``(1, 3)`` array).  So every constant an operation
needs (1, 0, the sigmoid's exponent bound, …) is a read-only full array of the layer's
shape, made once per workspace (``Scratch.full``), and a scale that changes from call to
call is written into a scratch array with ``fill`` first (``Scratch.filled``).  On large
arrays the memory a full array is read from costs more than the loop it saves, and
constants are scalars (``SCALAR_CONSTANTS``).

Activations.  ``forward(z, a, d, s)`` writes ``a = f(z)`` and, when ``d`` is not ``None``,
``d = f'(z)``, computed together where they share work (the exponential of the sigmoid,
tanh and softplus).  ``s`` is the layer's ``Scratch``: float scratch arrays ``s.t`` and
``s.u``, a boolean one ``s.m``, and the constants, all of ``z``'s shape.  The identity
writes nothing: its ``a`` is ``z`` itself.

Losses.  ``loss(out, y, delta, scale, s) -> total`` returns the batch sum of the per-sample
losses (a NumPy scalar) and writes ``delta = scale · ∂(Σ loss)/∂out``, where ``out`` is the
output ``ŷ``, or the output layer's pre-activation ``z`` for a loss on logits (binary
cross-entropy, fused with its sigmoid).  ``s`` is the output layer's ``Scratch``.

The formulas are the reference's (``crossgrad.reference.activations`` and ``losses``), with
the same stability promises: no overflow and no NumPy warning for ``|z|`` up to ``1e6``, and
saturated derivatives keep their relative precision, down to the smallest normal number
(below it, the large-array sigmoid returns a value under ``1e-307`` (float64) or ``1e-38``
(float32) where the exact one is subnormal or 0; see ``_sigmoid``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.floating]

LEAKY_RELU_SLOPE = 0.01
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
_INV_SQRT_2 = 1 / math.sqrt(2)


SCALAR_CONSTANTS = 1 << 15
"""Layers of at least this many entries take constants as scalars (``Scratch.full``).

A full constant array keeps a small operation on NumPy's contiguous loop (see the module
docstring), but on a large one it is one more array to read from memory: ``t + 1`` on a
``(256, 1024)`` float32 array took 35 µs with the scalar, 108 µs with a full array of ones
(on ``(32, 128)``, 1.4 against 0.9 µs).  The whole sigmoid and its derivative on the
``(256, 1024)`` float32 array: 381-396 µs against 531-552 µs for the full arrays and the
two passes the sigmoid had more (one run, old and new code side by side)."""


class Scratch:
    """The scratch arrays of one layer (``shape``, ``dtype``) and its constant arrays.

    ``t`` and ``u`` are float scratch, ``m`` boolean scratch, ``rows`` two float vectors of
    one value per row, ``across`` a row of ones (``t @ across`` sums each row of ``t``, a
    BLAS product at a third of ``np.add.reduce(t, axis=1)``'s cost on ``(32, 10)``).
    ``full(value)`` is a read-only array of ``value`` in the layer's shape, made on first use
    and kept: a constant operand of the same shape keeps NumPy on its contiguous loop, where
    a scalar would not (see the module docstring); from ``SCALAR_CONSTANTS`` entries on, it
    is the scalar.  ``filled(value)`` is a scratch array
    (``v``) filled with ``value``, for a factor that changes from call to call; it is
    overwritten by the next ``filled``.
    """

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype[Any]) -> None:
        self.shape, self.dtype = shape, np.dtype(dtype)
        self.size = math.prod(shape)
        self.t = np.empty(shape, dtype)
        self.u = np.empty(shape, dtype)
        self.m = np.empty(shape, np.bool_)
        self.v = np.empty(shape, dtype)
        self.rows = np.empty(shape[0], dtype), np.empty(shape[0], dtype)  # one value per row
        self.across = np.ones(shape[1], dtype)  # row sums as products: Σ_j t_ij = (t·1)_i
        self.across.flags.writeable = False
        self._constants: dict[float, Array] = {}

    def full(self, value: float) -> Array | np.floating[Any]:
        """A read-only array of ``value`` (in ``dtype``) of the layer's shape; from
        ``SCALAR_CONSTANTS`` entries on, the scalar ``value`` in ``dtype`` instead."""
        if self.size >= SCALAR_CONSTANTS:
            return self.dtype.type(value)
        constant = self._constants.get(value)
        if constant is None:
            constant = np.full(self.shape, value, self.dtype)
            constant.flags.writeable = False
            self._constants[value] = constant
        return constant

    def filled(self, value: float) -> Array:
        """The scratch array ``v``, every entry set to ``value``."""
        self.v.fill(value)
        return self.v


@dataclass(frozen=True)
class Kernel:
    """One activation: ``forward(z, a, d, s)`` (see the module docstring).

    ``aliases`` says that ``a`` is ``z`` itself (the identity); ``has_derivative`` that
    ``f'`` is not the constant 1, so that backpropagation multiplies by it.
    """

    forward: Callable[[Array, Array, Array | None, Scratch], None]
    aliases: bool = False
    has_derivative: bool = True


def _identity(z: Array, a: Array, d: Array | None, s: Scratch) -> None:
    pass  # a is z, f' = 1


def _exp_bound(dtype: np.dtype[Any]) -> float:
    """The largest whole ``H`` with ``e^H`` finite in ``dtype``."""
    return float(math.floor(math.log(float(np.finfo(dtype).max))))


_EXP_BOUND = {np.dtype(t): _exp_bound(np.dtype(t)) for t in (np.float32, np.float64)}
"""709 for float64, 88 for float32: ``e^{-H}`` is below the smallest normal number
(``e^{-709} ≈ 1.2e-308``, ``e^{-88} ≈ 6.1e-39``)."""


def _clip(z: Array, bound: float, out: Array, s: Scratch) -> None:
    """``out = z`` clipped to ``[−bound, bound]``: one pass of ``np.clip`` on large arrays,
    ``np.maximum`` and ``np.minimum`` with full constants on small ones, where ``np.clip``'s
    Python wrapper costs more than the second pass (4.2 against 1.4 µs on ``(32, 128)``)."""
    if z.size >= SCALAR_CONSTANTS:
        np.clip(z, s.full(-bound), s.full(bound), out=out)  # (scalars at this size)
    else:
        np.maximum(z, s.full(-bound), out=out)
        np.minimum(out, s.full(bound), out=out)


SMALL = 1024
"""Arrays of at most this many entries take the sigmoid's short path (see ``_sigmoid``)."""


def _sigmoid(z: Array, a: Array, d: Array | None, s: Scratch) -> None:
    t = s.t
    if z.size <= SMALL:
        # On small arrays the cost is the number of NumPy calls, not their speed: scipy's
        # expit (stable for any z, within 2 ulp) in one call, and σ'(z) = σ(z)·σ(−z) in three.
        expit = _expit()
        expit(z, out=a)
        if d is not None:
            np.negative(z, out=t)
            expit(t, out=t)
            np.multiply(a, t, out=d)
        return
    # σ(z) = u/(1 + u) with u = e^z, and σ'(z) = σ(z)σ(−z) = σ/(1 + u): each a few ulp from
    # exact, with no 1 − σ to cancel, so saturated derivatives keep their relative precision.
    # z is clipped to [−H, H] (``_EXP_BOUND``), where u and 1 + u are finite.  Clipping only
    # changes results that are below the smallest normal number: σ(z) for z < −H and σ'(z)
    # for |z| > H are then the values at ±H (under 1e-307 in float64, 1e-38 in float32),
    # never an overflow or a warning.  On large arrays four passes of NumPy's SIMD loops for σ
    # (clip, exp, add, divide), five with σ' (scipy's expit is ten times slower than np.exp
    # on float32); small arrays clip in two.
    _clip(z, _EXP_BOUND[z.dtype], t, s)
    np.exp(t, out=t)  # u
    v = s.u if d is None else d
    np.add(t, s.full(1.0), out=v)  # 1 + u
    np.divide(t, v, out=a)  # σ
    if d is not None:
        np.divide(a, v, out=d)  # σ/(1 + u) = σ(z)σ(−z), computed, not 1 − σ


@functools.cache
def _expit() -> Any:
    from scipy.special import expit  # imported on first use: importing crossgrad loads no scipy

    return expit


def _tanh(z: Array, a: Array, d: Array | None, s: Scratch) -> None:
    np.tanh(z, out=a)
    if d is not None:
        # 1 − tanh²(z) = 1/cosh²(z): no 1 − tanh² to cancel where tanh(z) rounds to ±1.  z is
        # clipped to |z| ≤ (H + 1)/2 (``_EXP_BOUND``: 44.5 in float32, 355 in float64), where
        # cosh² is finite; beyond it the exact value is below the smallest normal number, and
        # so is the result, the value at the bound (8.9e-39 / 1.8e-308).  On large arrays four
        # passes (clip, NumPy's SIMD cosh, square, divide) against seven for 4e/(1 + e)²,
        # e = e^{-2|z|}.
        t = s.t
        _clip(z, (_EXP_BOUND[z.dtype] + 1) / 2, t, s)
        np.cosh(t, out=t)
        np.multiply(t, t, out=t)
        np.divide(s.full(1.0), t, out=d)


SMALL_MASK = 256
"""Arrays of at most this many entries take the relu derivative's one-call path."""


def _relu(z: Array, a: Array, d: Array | None, s: Scratch) -> None:
    zero = s.full(0.0)
    np.maximum(z, zero, out=a)
    if d is None:
        return
    if z.size <= SMALL_MASK:
        # One call: heaviside(z, 0) is 1 for z > 0 and 0 for z ≤ 0 (relu'(0) = 0, the
        # reference's convention); 0.5 µs against 1.2 µs for the two below on (1, 3), but
        # it has no SIMD loop (12 µs against 2.2 µs on (32, 128) float32).
        np.heaviside(z, zero, out=d)
        return
    np.greater(z, zero, out=s.m)  # relu'(0) = 0, the reference's convention
    np.copyto(d, s.m)  # a float mask: δ·d is faster than δ times a boolean array


def _leaky_relu(z: Array, a: Array, d: Array | None, s: Scratch) -> None:
    np.multiply(z, s.full(LEAKY_RELU_SLOPE), out=s.t)
    np.maximum(z, s.t, out=a)  # z for z > 0, 0.01·z for z ≤ 0
    if d is not None:
        np.greater(z, s.full(0.0), out=s.m)
        d.fill(LEAKY_RELU_SLOPE)  # leaky_relu'(0) = 0.01, the reference's convention
        np.copyto(d, s.full(1.0), where=s.m)


def _softplus(z: Array, a: Array, d: Array | None, s: Scratch) -> None:
    # log(1 + e^z) = max(z, 0) + log1p(e^{-|z|}): no overflow, and no loss of the small term;
    # its derivative is σ(z).
    if d is not None:
        _sigmoid(z, d, None, s)
    t = s.t
    np.abs(z, out=t)
    np.negative(t, out=t)
    np.exp(t, out=t)
    np.log1p(t, out=t)
    np.maximum(z, s.full(0.0), out=a)
    np.add(a, t, out=a)


def _elu(z: Array, a: Array, d: Array | None, s: Scratch) -> None:
    t, m = s.t, s.m
    zero = s.full(0.0)
    np.minimum(z, zero, out=t)  # expm1 and exp only see z ≤ 0: nothing overflows
    np.greater(z, zero, out=m)
    np.expm1(t, out=a)
    np.copyto(a, z, where=m)
    if d is not None:
        np.exp(t, out=d)
        np.copyto(d, s.full(1.0), where=m)


def _gelu(z: Array, a: Array, d: Array | None, s: Scratch) -> None:
    from scipy.special import ndtr  # Φ through erfc, accurate in both tails; gelu is rare

    t, u = s.t, s.u
    ndtr(z, out=t)  # Φ(z)
    np.multiply(z, t, out=a)
    if d is not None:
        # Φ(z) + z·φ(z), φ(z) = e^{-z²/2}/√(2π), with z² formed as (z/√2)²: no float32 overflow.
        np.multiply(z, s.full(_INV_SQRT_2), out=u)
        np.square(u, out=u)
        np.negative(u, out=u)
        np.exp(u, out=u)
        np.multiply(u, s.full(_INV_SQRT_2PI), out=u)
        np.multiply(u, z, out=u)
        np.add(t, u, out=d)


def _silu(z: Array, a: Array, d: Array | None, s: Scratch) -> None:
    if d is None:
        _sigmoid(z, a, None, s)
    else:
        # z·σ(z), and its derivative σ(z) + z·σ'(z) with σ' in its non-cancelling form.
        _sigmoid(z, a, d, s)
        np.multiply(d, z, out=d)
        np.add(d, a, out=d)
    np.multiply(a, z, out=a)


ACTIVATIONS: dict[str, Kernel] = {
    "identity": Kernel(_identity, aliases=True, has_derivative=False),
    "sigmoid": Kernel(_sigmoid),
    "tanh": Kernel(_tanh),
    "relu": Kernel(_relu),
    "leaky_relu": Kernel(_leaky_relu),
    "softplus": Kernel(_softplus),
    "elu": Kernel(_elu),
    "gelu": Kernel(_gelu),
    "silu": Kernel(_silu),
}
"""Every activation of ``crossgrad.reference.ACTIVATIONS``, by the same name."""


Scalar = Any  # a NumPy floating scalar


def _half_sse(out: Array, y: Array, delta: Array, scale: float, s: Scratch) -> Scalar:
    np.subtract(out, y, out=delta)  # the residual r is the gradient
    total = 0.5 * np.vdot(delta, delta)  # Σ_batch ½‖r_i‖²: one dot product
    if scale != 1:
        np.multiply(delta, s.filled(scale), out=delta)
    return total


def _mse(out: Array, y: Array, delta: Array, scale: float, s: Scratch) -> Scalar:
    np.subtract(out, y, out=delta)
    n = out.shape[1]
    total = np.vdot(delta, delta) / n
    np.multiply(delta, s.filled((2 / n) * scale), out=delta)
    return total


def _binary_cross_entropy(out: Array, y: Array, delta: Array, scale: float, s: Scratch) -> Scalar:
    # On the logits z: max(z, 0) − y·z + log1p(e^{-|z|}) per output, exact for any z; its
    # gradient σ(z) − y (the sigmoid's derivative cancels the log's), σ(z) from the same e.
    n = out.shape[1]
    t = s.t
    np.abs(out, out=t)
    np.negative(t, out=t)
    np.exp(t, out=t)
    np.log1p(t, out=delta)
    np.maximum(out, s.full(0.0), out=t)
    np.add(delta, t, out=delta)
    np.multiply(y, out, out=t)
    np.subtract(delta, t, out=delta)  # term by term, as the reference: no cancellation
    total = np.add.reduce(delta, axis=None) / n
    _sigmoid(out, delta, None, s)  # σ(z), as the output layer computed it
    np.subtract(delta, y, out=delta)
    np.multiply(delta, s.filled(scale / n), out=delta)
    return total


def _softmax_cross_entropy(out: Array, y: Array, delta: Array, scale: float, s: Scratch) -> Scalar:
    # −Σ_ij y_ij (s_ij − log t_i) with s = ŷ − max ŷ ≤ 0 and t_i = Σ_j e^{s_ij} ≥ 1: the
    # value's log-sum-exp and the gradient's softmax share the exponentials; the gradient is
    # (Σ_j y_ij)·softmax(ŷ)_i − y_i.  Row sums are products with a row of ones (BLAS).
    t = s.t
    row_max, row_sums = s.rows
    np.maximum.reduce(out, axis=1, out=row_max)
    shifted = np.subtract(out, row_max[:, np.newaxis], out=delta)
    np.exp(shifted, out=t)
    np.dot(t, s.across, out=row_sums)
    weights = np.dot(y, s.across, out=row_max)  # Σ_j y_ij, 1 for one-hot rows
    total = np.vdot(weights, np.log(row_sums)) - np.vdot(y, shifted)
    np.divide(weights, row_sums, out=row_sums)
    np.multiply(t, row_sums[:, np.newaxis], out=delta)
    np.subtract(delta, y, out=delta)
    if scale != 1:
        np.multiply(delta, s.filled(scale), out=delta)
    return total


@dataclass(frozen=True)
class LossKernel:
    """One loss: ``loss(out, y, delta, scale, s) -> total`` (see the module docstring)."""

    loss: Callable[[Array, Array, Array, float, Scratch], Scalar]
    on_logits: bool = False


LOSSES: dict[str, LossKernel] = {
    "half_sse": LossKernel(_half_sse),
    "mse": LossKernel(_mse),
    "binary_cross_entropy": LossKernel(_binary_cross_entropy, on_logits=True),
    "softmax_cross_entropy": LossKernel(_softmax_cross_entropy),
}
"""Every loss of ``crossgrad.reference.LOSSES``, by the same name."""


def target_problem(loss: str, y: Array, s: Scratch) -> bool:
    """Whether ``y`` (finite, of the output layer's shape, whose ``Scratch`` is ``s``) lies
    outside ``loss``'s target domain.  Counting the entries below 0 (above 1) is exact, and
    with same-shape operands cheaper than ``np.minimum.reduce``."""
    if loss == "binary_cross_entropy":
        return bool(
            np.count_nonzero(np.less(y, s.full(0.0), out=s.m))
            or np.count_nonzero(np.greater(y, s.full(1.0), out=s.m))
        )
    if loss == "softmax_cross_entropy":
        return bool(np.count_nonzero(np.less(y, s.full(0.0), out=s.m)))
    return False
