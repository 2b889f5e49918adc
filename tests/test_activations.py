"""Each activation's value and derivative, in the middle, at the kinks and far out."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from numdiff import assert_close_to_numeric, central_difference

from crossgrad.reference import ACTIVATIONS

NAMES = sorted(ACTIVATIONS)
SMOOTH_POINTS = np.array([-7.5, -3.0, -1.2, -0.4, -0.05, 0.05, 0.3, 1.0, 2.5, 6.0, 11.0])
EXTREMES = np.array([-1e6, -1e3, -40.0, -0.0, 0.0, 40.0, 1e3, 1e6])


def _sigmoid(t: float) -> float:
    return 1 / (1 + math.exp(-t)) if t >= 0 else math.exp(t) / (1 + math.exp(t))


def _mp_sigmoid(t: mpmath.mpf) -> mpmath.mpf:
    return 1 / (1 + mpmath.exp(-t))


# Independent definitions, evaluated with 40 significant digits.
EXACT = {
    "identity": lambda t: t,
    "sigmoid": _mp_sigmoid,
    "tanh": mpmath.tanh,
    "relu": lambda t: max(t, 0),
    "leaky_relu": lambda t: t if t > 0 else mpmath.mpf("0.01") * t,
    "softplus": lambda t: mpmath.log(1 + mpmath.exp(t)),
    "elu": lambda t: t if t > 0 else mpmath.exp(t) - 1,
    "gelu": lambda t: t * mpmath.ncdf(t),
    "silu": lambda t: t * _mp_sigmoid(t),
}


def test_registry_holds_every_documented_activation() -> None:
    assert set(ACTIVATIONS) == set(EXACT)
    for name, act in ACTIVATIONS.items():
        assert act.name == name
        assert act.formula


@pytest.mark.parametrize("name", NAMES)
def test_value_matches_exact_definition(name: str) -> None:
    # A few ulps: every double-precision erfc (hence gelu's Φ) loses some in the far tail.
    z = np.concatenate([SMOOTH_POINTS, [0.0]])
    with mpmath.workdps(40):
        expected = np.array([float(EXACT[name](mpmath.mpf(float(t)))) for t in z])
    np.testing.assert_allclose(ACTIVATIONS[name].forward(z), expected, rtol=1e-14, atol=1e-300)


@pytest.mark.parametrize("name", NAMES)
def test_derivative_matches_central_differences(name: str) -> None:
    act = ACTIVATIONS[name]
    for t in SMOOTH_POINTS:
        z = np.array([t])
        numeric = central_difference(lambda v: float(act.forward(v)[0]), z)
        assert_close_to_numeric(act.derivative(z, act.forward(z)), numeric)


def test_relu_derivative_at_zero_is_zero() -> None:
    act = ACTIVATIONS["relu"]
    z = np.array([-0.0, 0.0])
    np.testing.assert_array_equal(act.derivative(z, act.forward(z)), [0.0, 0.0])


def test_leaky_relu_derivative_at_zero_is_the_left_slope() -> None:
    act = ACTIVATIONS["leaky_relu"]
    z = np.array([-0.0, 0.0])
    np.testing.assert_array_equal(act.derivative(z, act.forward(z)), [0.01, 0.01])


def test_elu_is_continuously_differentiable_at_zero() -> None:
    act = ACTIVATIONS["elu"]
    z = np.array([-1e-300, 0.0, 1e-300])
    np.testing.assert_array_equal(act.derivative(z, act.forward(z)), [1.0, 1.0, 1.0])


@pytest.mark.parametrize(
    ("name", "z", "exact"),
    [
        # Where σ(z) rounds to 1, σ(1 − σ) would give 0; the exact value is e^-z / (1 + e^-z)².
        ("sigmoid", 30.0, math.exp(-30) / (1 + math.exp(-30)) ** 2),
        ("sigmoid", -30.0, math.exp(-30) / (1 + math.exp(-30)) ** 2),
        ("tanh", 20.0, 1 / math.cosh(20.0) ** 2),
        ("softplus", 40.0, _sigmoid(40.0)),
        ("silu", -30.0, _sigmoid(-30.0) * (1 + -30.0 * (1 - _sigmoid(-30.0)))),
    ],
)
def test_derivative_keeps_relative_precision_in_saturation(
    name: str, z: float, exact: float
) -> None:
    act = ACTIVATIONS[name]
    zz = np.array([z])
    np.testing.assert_allclose(act.derivative(zz, act.forward(zz)), [exact], rtol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", NAMES)
def test_extreme_inputs_stay_finite_and_silent(name: str, dtype: type) -> None:
    # pytest turns any NumPy overflow/invalid warning into an error (filterwarnings = error).
    act = ACTIVATIONS[name]
    z = EXTREMES.astype(dtype)
    a = act.forward(z)
    d = act.derivative(z, a)
    assert a.dtype == dtype
    assert d.dtype == dtype
    assert np.isfinite(a).all()
    assert np.isfinite(d).all()


@pytest.mark.parametrize(
    ("name", "at_minus", "at_plus"),
    [
        ("sigmoid", (0.0, 0.0), (1.0, 0.0)),
        ("tanh", (-1.0, 0.0), (1.0, 0.0)),
        ("relu", (0.0, 0.0), (1e6, 1.0)),
        ("leaky_relu", (-1e4, 0.01), (1e6, 1.0)),
        ("softplus", (0.0, 0.0), (1e6, 1.0)),
        ("elu", (-1.0, 0.0), (1e6, 1.0)),
        ("gelu", (-0.0, 0.0), (1e6, 1.0)),
        ("silu", (-0.0, 0.0), (1e6, 1.0)),
        ("identity", (-1e6, 1.0), (1e6, 1.0)),
    ],
)
def test_limits_at_plus_and_minus_a_million(
    name: str, at_minus: tuple[float, float], at_plus: tuple[float, float]
) -> None:
    act = ACTIVATIONS[name]
    z = np.array([-1e6, 1e6])
    a = act.forward(z)
    np.testing.assert_array_equal(a, [at_minus[0], at_plus[0]])
    np.testing.assert_array_equal(act.derivative(z, a), [at_minus[1], at_plus[1]])


@pytest.mark.parametrize("name", NAMES)
def test_float32_agrees_with_float64(name: str) -> None:
    act = ACTIVATIONS[name]
    z64 = np.linspace(-8, 8, 161)
    z32 = z64.astype(np.float32)
    for f64, f32 in (
        (act.forward(z64), act.forward(z32)),
        (act.derivative(z64, act.forward(z64)), act.derivative(z32, act.forward(z32))),
    ):
        assert f32.dtype == np.float32
        np.testing.assert_allclose(f32, f64, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_input_is_not_modified(name: str) -> None:
    act = ACTIVATIONS[name]
    z = np.linspace(-3, 3, 13)
    z.setflags(write=False)
    act.derivative(z, act.forward(z))
    np.testing.assert_array_equal(z, np.linspace(-3, 3, 13))


def test_every_activation_stands_alone_with_its_formula() -> None:
    # One small object per activation: value and derivative side by side, the formula in its
    # docstring, and nothing else (no speed or tolerance-model attributes).
    for act in ACTIVATIONS.values():
        public = {n for n in dir(act) if not n.startswith("_")}
        assert public == {"name", "formula", "forward", "derivative"}
        assert (type(act).__doc__ or "").strip()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_symmetric_to_the_last_bit(dtype: type) -> None:
    # σ(−z) = 1 − σ(z) exactly in the two-branch form wherever 1 − σ(z) is representable.
    z = np.linspace(-8, 8, 33).astype(dtype)
    s = ACTIVATIONS["sigmoid"].forward(z)
    np.testing.assert_allclose(s + s[::-1], np.ones_like(s), rtol=4 * np.finfo(dtype).eps)
    assert s.dtype == dtype
