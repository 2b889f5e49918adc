"""Activation functions, each with its derivative written beside it.

Every activation maps a pre-activation array ``z`` elementwise to ``a = f(z)`` and has a
derivative ``f'(z)``.  The derivative receives both ``z`` and ``a`` so that it can reuse the
forward value where that is exact (``relu``) and avoid it where reusing it would cancel
(``sigmoid`` near saturation).  All of them stay finite, and raise no NumPy warning, for
``|z|`` up to ``1e6`` in float32 and float64.

Kinks.  ``relu`` and ``leaky_relu`` are not differentiable at ``z = 0``; crossgrad uses the
derivative from the left there (``relu'(0) = 0``, ``leaky_relu'(0) = 0.01``), which is also
what ``torch`` computes.  Every adapter follows this convention.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.floating]

LEAKY_RELU_SLOPE = 0.01
ELU_ALPHA = 1.0


@dataclass(frozen=True)
class Activation:
    """An elementwise activation ``a = f(z)`` and its derivative ``f'(z)``.

    ``forward(z)`` and ``derivative(z, a)`` take arrays of any shape and return arrays of
    the same shape and dtype; ``a`` must be ``forward(z)``.  ``curvature`` bounds ``|f''|``
    (0 for piecewise-linear activations); the tolerance model uses it to bound how far a
    rounding error in ``z`` moves ``f'(z)``.  ``fused_backward``, when given, does what
    ``backward`` does without forming ``f'(z)`` as an array of its own.
    """

    name: str
    formula: str
    forward: Callable[[Array], Array]
    derivative: Callable[[Array, Array], Array]
    curvature: float = 0.0
    fused_backward: Callable[[Array, Array, Array], None] | None = None

    def backward(self, delta: Array, z: Array, a: Array) -> None:
        """``δ ← δ ∘ f'(z)``, in place: the step of backpropagation through this activation.

        The same numbers as ``delta *= derivative(z, a)``.
        """
        if self.fused_backward is not None:
            self.fused_backward(delta, z, a)
        else:
            delta *= self.derivative(z, a)


@functools.cache
def _expit() -> Callable[[Array], Array]:
    # Imported on first use, not at the top, so that importing crossgrad does not load scipy.
    from scipy.special import expit

    return expit


def _sigmoid(z: Array) -> Array:
    # σ(z) = 1 / (1 + e^{-z}) in one call: scipy's expit is stable for any z, raises no
    # overflow warning and is as accurate as the two-branch form (within 2 ulp).
    return _expit()(z)


def _sigmoid_derivative(z: Array, a: Array) -> Array:
    # σ'(z) = σ(z)(1 − σ(z)) = σ(z)·σ(−z): the second form does not cancel where σ(z)
    # rounds to 1 (σ(−z) is computed, not 1 − σ), so it keeps full relative precision;
    # a = σ(z) is reused from the forward pass.
    return a * _expit()(-z)


def _identity(z: Array) -> Array:
    return z.copy()


def _identity_derivative(z: Array, a: Array) -> Array:
    return np.ones_like(z)


def _identity_backward(delta: Array, z: Array, a: Array) -> None:
    pass  # δ ∘ 1 = δ: nothing to multiply


def _tanh(z: Array) -> Array:
    return np.tanh(z)


def _tanh_derivative(z: Array, a: Array) -> Array:
    # 1 − tanh²(z) = 4e / (1 + e)² with e = e^{-2|z|}: exact where tanh(z) rounds to ±1.
    e = np.exp(-2 * np.abs(z))
    return 4 * e / ((1 + e) * (1 + e))


def _relu(z: Array) -> Array:
    return np.maximum(z, 0)


def _relu_derivative(z: Array, a: Array) -> Array:
    # A float copy of the mask: δ *= it is faster than multiplying δ by the boolean mask
    # itself, which NumPy casts through a buffer.
    return (z > 0).astype(z.dtype)


def _leaky_relu(z: Array) -> Array:
    return np.where(z > 0, z, LEAKY_RELU_SLOPE * z)


def _leaky_relu_derivative(z: Array, a: Array) -> Array:
    return np.where(z > 0, 1, LEAKY_RELU_SLOPE).astype(z.dtype)


def _softplus(z: Array) -> Array:
    # log(1 + e^z) = max(z, 0) + log1p(e^{-|z|}): no overflow, and no loss of the small term.
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


def _softplus_derivative(z: Array, a: Array) -> Array:
    return _sigmoid(z)


def _elu(z: Array) -> Array:
    # expm1 only sees z ≤ 0, so the branch np.where discards never overflows.
    return np.where(z > 0, z, ELU_ALPHA * np.expm1(np.minimum(z, 0)))


def _elu_derivative(z: Array, a: Array) -> Array:
    return np.where(z > 0, 1, ELU_ALPHA * np.exp(np.minimum(z, 0))).astype(z.dtype)


def _gelu(z: Array) -> Array:
    # The exact form z·Φ(z); scipy's ndtr evaluates Φ through erfc, accurate in both tails.
    from scipy.special import ndtr

    return z * ndtr(z)


_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


def _gelu_derivative(z: Array, a: Array) -> Array:
    # d/dz z·Φ(z) = Φ(z) + z·φ(z), φ(z) = e^{-z²/2} / √(2π).  z² is formed as (z/√2)², which
    # stays below the float32 maximum for |z| up to 1e6.
    from scipy.special import ndtr

    half_z2 = np.square(z / math.sqrt(2))
    return ndtr(z) + z * (_INV_SQRT_2PI * np.exp(-half_z2))


def _silu(z: Array) -> Array:
    return z * _sigmoid(z)


def _silu_derivative(z: Array, a: Array) -> Array:
    # d/dz z·σ(z) = σ(z) + z·σ(z)(1 − σ(z)), with σ' in its non-cancelling form.
    s = _sigmoid(z)
    return s + z * _sigmoid_derivative(z, s)


ACTIVATIONS: dict[str, Activation] = {
    act.name: act
    for act in (
        Activation(
            "identity",
            "f(z) = z",
            _identity,
            _identity_derivative,
            fused_backward=_identity_backward,
        ),
        Activation("sigmoid", "f(z) = 1 / (1 + e^-z)", _sigmoid, _sigmoid_derivative, 0.1),
        Activation("tanh", "f(z) = tanh(z)", _tanh, _tanh_derivative, 0.77),
        Activation("relu", "f(z) = max(z, 0); f'(0) = 0", _relu, _relu_derivative),
        Activation(
            "leaky_relu",
            f"f(z) = z if z > 0 else {LEAKY_RELU_SLOPE}·z; f'(0) = {LEAKY_RELU_SLOPE}",
            _leaky_relu,
            _leaky_relu_derivative,
        ),
        Activation("softplus", "f(z) = log(1 + e^z)", _softplus, _softplus_derivative, 0.25),
        Activation("elu", "f(z) = z if z > 0 else e^z − 1", _elu, _elu_derivative, 1.0),
        Activation("gelu", "f(z) = z·Φ(z), Φ the normal CDF", _gelu, _gelu_derivative, 0.8),
        Activation("silu", "f(z) = z·σ(z)", _silu, _silu_derivative, 0.5),
    )
}
"""The supported activations by name; adding one is one entry here."""
