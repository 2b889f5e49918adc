"""Central differences for the reference's unit tests (the adapters have their own oracle).

With step ``h``, a central difference has truncation error ``h²·|f'''|/6`` and rounding error
about ``eps·|f|/h``; at ``h = 1e-5`` in float64 both stay below ``1e-9`` for the smooth,
O(1)-sized functions tested here, so ``assert_close_to_numeric`` allows ``1e-7`` relative to
the size of the values involved: strict enough that a wrong derivative (a missing factor, a
wrong sign, σ instead of σ') fails by orders of magnitude.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

H = 1e-5
TOLERANCE = 1e-7

Array = NDArray[np.float64]


def central_difference(f: Callable[[Array], float], x: Array, h: float = H) -> Array:
    """∂f/∂x entry by entry for a scalar function ``f`` of a float64 array ``x`` (not modified)."""
    grad = np.empty_like(x)
    for i in np.ndindex(x.shape):
        step = h * max(1.0, abs(float(x[i])))
        plus, minus = x.copy(), x.copy()
        plus[i] += step
        minus[i] -= step
        grad[i] = (f(plus) - f(minus)) / (plus[i] - minus[i])
    return grad


def assert_close_to_numeric(analytic: Array, numeric: Array, scale: float = 1.0) -> None:
    """``|analytic − numeric| ≤ TOLERANCE · (scale + |numeric|)`` entry by entry."""
    np.testing.assert_allclose(analytic, numeric, rtol=TOLERANCE, atol=TOLERANCE * scale)
