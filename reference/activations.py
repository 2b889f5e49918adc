"""Activation functions, each with its derivative written beside it.

Every activation maps a pre-activation array ``z`` elementwise to ``a = f(z)`` and has a
derivative ``f'(z)``.  The derivative receives both ``z`` and ``a = f(z)`` so that it can
reuse the forward value where that is exact and avoid it where reusing it would cancel
(``sigmoid`` near saturation).  All of them stay finite, and raise no NumPy warning, for
``|z|`` up to ``1e6`` in float32 and float64; in saturation each derivative keeps its
relative precision (``σ'(30) ≈ 9.4e-14`` to the last digits, not ``0``).

Kinks.  ``relu`` and ``leaky_relu`` are not differentiable at ``z = 0``; crossgrad uses the
derivative from the left there (``relu'(0) = 0``, ``leaky_relu'(0) = 0.01``), which is also
what ``torch`` computes.  Every adapter follows this convention.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.floating]

LEAKY_RELU_SLOPE = 0.01
ELU_ALPHA = 1.0


class Activation:
    """An elementwise activation: ``forward(z) = f(z)`` and ``derivative(z, a) = f'(z)``.

    Both take arrays of any shape and return new arrays of the same shape and dtype; ``a``
    must be ``forward(z)``.  Each subclass states its formula in ``formula`` and its
    docstring.
    """

    name: str
    formula: str

    def forward(self, z: Array) -> Array:
        """``f(z)``, elementwise."""
        raise NotImplementedError

    def derivative(self, z: Array, a: Array) -> Array:
        """``f'(z)``, elementwise, given ``a = f(z)``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<activation {self.name}: {self.formula}>"


def sigmoid(z: Array) -> Array:
    """``σ(z) = 1 / (1 + e^-z)`` for any ``z``, without overflow."""
    # σ(z) = 1 / (1 + e^{-z}) for z ≥ 0 and e^{z} / (1 + e^{z}) for z < 0: one expression,
    # e^{min(z, 0)} / (1 + e^{-|z|}), the same number written so that no exponent is positive.
    return np.exp(np.minimum(z, 0)) / (1 + np.exp(-np.abs(z)))


def sigmoid_derivative(z: Array) -> Array:
    """``σ'(z) = σ(z)·σ(−z) = e / (1 + e)²`` with ``e = e^{-|z|}``: no cancellation."""
    # σ(1 − σ) would cancel to 0 where σ rounds to 1; this form keeps full relative precision.
    e = np.exp(-np.abs(z))
    return e / ((1 + e) * (1 + e))


class Identity(Activation):
    """``f(z) = z``;  ``f'(z) = 1``."""

    name, formula = "identity", "f(z) = z"

    def forward(self, z: Array) -> Array:
        return z.copy()

    def derivative(self, z: Array, a: Array) -> Array:
        return np.ones_like(z)


class Sigmoid(Activation):
    """``σ(z) = 1 / (1 + e^-z)``;  ``σ'(z) = σ(z)·σ(−z)``."""

    name, formula = "sigmoid", "f(z) = 1 / (1 + e^-z)"

    def forward(self, z: Array) -> Array:
        return sigmoid(z)

    def derivative(self, z: Array, a: Array) -> Array:
        return sigmoid_derivative(z)


class Tanh(Activation):
    """``f(z) = tanh(z)``;  ``f'(z) = 1 − tanh²(z) = 4e / (1 + e)²`` with ``e = e^{-2|z|}``."""

    name, formula = "tanh", "f(z) = tanh(z)"

    def forward(self, z: Array) -> Array:
        return np.tanh(z)

    def derivative(self, z: Array, a: Array) -> Array:
        # Not 1 − a²: that is 0 where tanh(z) rounds to ±1, while the exact form stays precise.
        e = np.exp(-2 * np.abs(z))
        return 4 * e / ((1 + e) * (1 + e))


class ReLU(Activation):
    """``f(z) = max(z, 0)``;  ``f'(z) = 1 for z > 0, else 0`` (``f'(0) = 0``)."""

    name, formula = "relu", "f(z) = max(z, 0); f'(0) = 0"

    def forward(self, z: Array) -> Array:
        return np.maximum(z, 0)

    def derivative(self, z: Array, a: Array) -> Array:
        return (z > 0).astype(z.dtype)


class LeakyReLU(Activation):
    """``f(z) = z for z > 0, else 0.01·z``;  ``f'(z) = 1 for z > 0, else 0.01``."""

    name = "leaky_relu"
    formula = f"f(z) = z if z > 0 else {LEAKY_RELU_SLOPE}·z; f'(0) = {LEAKY_RELU_SLOPE}"

    def forward(self, z: Array) -> Array:
        return np.where(z > 0, z, LEAKY_RELU_SLOPE * z)

    def derivative(self, z: Array, a: Array) -> Array:
        return np.where(z > 0, 1, LEAKY_RELU_SLOPE).astype(z.dtype)


class Softplus(Activation):
    """``f(z) = log(1 + e^z)``;  ``f'(z) = σ(z)``."""

    name, formula = "softplus", "f(z) = log(1 + e^z)"

    def forward(self, z: Array) -> Array:
        # = max(z, 0) + log1p(e^{-|z|}): no overflow, and no loss of the small term.
        return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))

    def derivative(self, z: Array, a: Array) -> Array:
        return sigmoid(z)


class ELU(Activation):
    """``f(z) = z for z > 0, else e^z − 1``;  ``f'(z) = 1 for z > 0, else e^z``."""

    name, formula = "elu", "f(z) = z if z > 0 else e^z − 1"

    def forward(self, z: Array) -> Array:
        # expm1 only sees z ≤ 0, so the branch np.where discards never overflows.
        return np.where(z > 0, z, ELU_ALPHA * np.expm1(np.minimum(z, 0)))

    def derivative(self, z: Array, a: Array) -> Array:
        return np.where(z > 0, 1, ELU_ALPHA * np.exp(np.minimum(z, 0))).astype(z.dtype)


_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


class GELU(Activation):
    """``f(z) = z·Φ(z)``, Φ the normal CDF;  ``f'(z) = Φ(z) + z·φ(z)``, φ the normal density
    ``e^{-z²/2} / √(2π)``."""

    name, formula = "gelu", "f(z) = z·Φ(z), Φ the normal CDF"

    def forward(self, z: Array) -> Array:
        # The exact form; scipy's ndtr evaluates Φ through erfc, accurate in both tails.
        # Imported here so that importing crossgrad does not load scipy.
        from scipy.special import ndtr

        return z * ndtr(z)

    def derivative(self, z: Array, a: Array) -> Array:
        from scipy.special import ndtr

        # z² formed as (z/√2)², which stays below the float32 maximum for |z| up to 1e6.
        half_z2 = np.square(z / math.sqrt(2))
        return ndtr(z) + z * (_INV_SQRT_2PI * np.exp(-half_z2))


class SiLU(Activation):
    """``f(z) = z·σ(z)``;  ``f'(z) = σ(z) + z·σ'(z)``."""

    name, formula = "silu", "f(z) = z·σ(z)"

    def forward(self, z: Array) -> Array:
        return z * sigmoid(z)

    def derivative(self, z: Array, a: Array) -> Array:
        return sigmoid(z) + z * sigmoid_derivative(z)


ACTIVATIONS: dict[str, Activation] = {
    act.name: act
    for act in (
        Identity(),
        Sigmoid(),
        Tanh(),
        ReLU(),
        LeakyReLU(),
        Softplus(),
        ELU(),
        GELU(),
        SiLU(),
    )
}
"""The supported activations by name; adding one is one class and one entry here."""
