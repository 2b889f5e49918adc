"""What the fuzz suites (``tests/test_fuzz_*.py``) share: adversarial values and the property.

``arrays_like(values)`` draws the kinds of thing a user passes where an array of ``shape`` is
expected: the array itself, and the same numbers as another dtype (bool, int8, float16,
float32, complex, object), as nested lists, read-only, non-contiguous, reshaped to 0-d or 3-d,
with huge, tiny, subnormal or non-finite entries, or no array at all.  Every draw also says
how the reference should see it (``Drawn.canonical``): the float64 array it stands for, or
``None`` when it must be refused.

The property every entry point keeps (``outcome``): it raises one of the documented errors
(``TypeError``, ``ValueError``, ``OverflowError``) with a message, or it returns; never a
warning (pytest makes those errors), and the inputs are unchanged either way (``Snapshot``).

Example counts scale with the Hypothesis profile: ``budget(n)`` is ``n`` examples under the
default profile (100 examples) and twenty times that under ``fuzz-long``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

DOCUMENTED = (TypeError, ValueError, OverflowError)
"""The errors a public function may raise for bad input or an overflow."""


def budget(n: int) -> settings:
    """Settings for ``n`` examples under the default profile, scaled with the loaded one.

    Nested ``@given`` is allowed: fuzzing ``crossgrad.testing`` runs its own sweeps.
    """
    scale = max(1, settings.default.max_examples // 100)
    checks = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
    checks += [HealthCheck.nested_given] if hasattr(HealthCheck, "nested_given") else []
    return settings(max_examples=n * scale, deadline=None, suppress_health_check=checks)


@dataclass(frozen=True)
class Drawn:
    """A drawn argument, and the float64 array the reference should read it as (or ``None``)."""

    value: Any
    canonical: np.ndarray[Any, Any] | None
    how: str

    def __repr__(self) -> str:
        return f"Drawn({self.how}: {self.value!r:.300})"


MAGNITUDES = {
    "huge": 1e300,
    "beyond_float32": 1e39,
    "tiny": 1e-300,
    "subnormal": 5e-324,
    "negative_zero": -0.0,
}


@st.composite
def arrays_like(draw: st.DrawFn, values: np.ndarray[Any, Any]) -> Drawn:
    """Something passed where the float64 array ``values`` belongs (see the module docstring)."""
    values = np.asarray(values, np.float64)
    shape, size = values.shape, values.size
    how = draw(
        st.sampled_from(
            [
                "float64", "float32", "int8", "bool", "float16", "complex", "object", "list",
                "readonly", "fortran", "strided", "0-d", "3-d", "nan", "inf", "string", "none",
                "dict", "generator", *MAGNITUDES,
            ]
        )
    )  # fmt: skip
    if how == "float64":
        return Drawn(values.copy(), values, how)
    if how == "float32":
        return Drawn(values.astype(np.float32), values, how)
    if how == "int8":
        ints = np.round(values).astype(np.int8)
        return Drawn(ints, ints.astype(np.float64), how)
    if how == "bool":
        flags = values > 0
        return Drawn(flags, flags.astype(np.float64), how)
    if how == "float16":
        return Drawn(values.astype(np.float16), None, how)
    if how == "complex":
        return Drawn(values.astype(np.complex128), None, how)
    if how == "object":
        return Drawn(values.astype(object), None, how)
    if how == "list":
        return Drawn(values.tolist(), values, how)
    if how == "readonly":
        frozen = values.copy()
        frozen.flags.writeable = False
        return Drawn(frozen, values, how)
    if how == "fortran":
        return Drawn(np.asfortranarray(values), values, how)
    if how == "strided":
        wide = np.zeros((*shape[:-1], 2 * shape[-1]) if shape else (2,))
        view = wide[..., ::2] if shape else wide[0]
        view[...] = values
        return Drawn(view, values, how)
    if how == "0-d":
        return Drawn(np.float64(values.ravel()[0] if size else 0.0), None, how)
    if how == "3-d":
        return Drawn(values.reshape(1, *shape) if len(shape) == 2 else values[None, None], None,
                     how)  # fmt: skip
    if how in ("nan", "inf"):
        bad = values.copy()
        if size:
            bad.ravel()[draw(st.integers(0, size - 1))] = np.nan if how == "nan" else -np.inf
            return Drawn(bad, None, how)
        return Drawn(bad, bad, how)
    if how == "string":
        return Drawn(np.array(values.astype(str)), None, how)
    if how == "none":
        return Drawn(None, None, how)
    if how == "dict":
        return Drawn({"x": values}, None, how)
    if how == "generator":
        return Drawn((v for v in values), None, how)
    big = values.copy()  # one entry of extreme magnitude; the rest as drawn
    if size:
        big.ravel()[draw(st.integers(0, size - 1))] = MAGNITUDES[how]
    return Drawn(big, big, how)


class Snapshot:
    """Deep copies of the arguments, to check afterwards that nothing was modified."""

    def __init__(self, *values: Any) -> None:
        self.values = values
        self.copies = [_copy(v) for v in values]
        self.flags = [_flags(v) for v in values]

    def assert_unchanged(self) -> None:
        for value, before, flags in zip(self.values, self.copies, self.flags, strict=True):
            _assert_same(value, before)
            assert _flags(value) == flags


def _copy(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.copy()
    try:
        return copy.deepcopy(value)
    except TypeError:  # a generator: identity is all there is to compare
        return value


def _flags(value: Any) -> Any:
    return (
        (value.flags.writeable, value.flags.c_contiguous) if isinstance(value, np.ndarray) else None
    )


def _assert_same(value: Any, before: Any) -> None:
    if isinstance(value, np.ndarray):
        assert value.dtype == before.dtype
        assert value.shape == before.shape
        np.testing.assert_array_equal(value, before)
    elif hasattr(value, "weights") and hasattr(value, "biases"):
        for a, b in zip((*value.weights, *value.biases), (*before.weights, *before.biases),
                        strict=True):  # fmt: skip
            _assert_same(a, b)
    elif isinstance(value, list | tuple):
        assert len(value) == len(before)
        for a, b in zip(value, before, strict=True):
            _assert_same(a, b)


def outcome(call: Callable[[], Any]) -> Any | BaseException:
    """``call()``'s result, or the documented error it raised (with a message); any other
    exception fails the test."""
    try:
        return call()
    except DOCUMENTED as exc:
        error = exc
    assert str(error), f"{type(error).__name__} without a message"
    return error


def all_finite(*arrays: Any) -> bool:
    """Whether every entry of every array (or float) is finite."""
    return all(bool(np.isfinite(np.asarray(a, np.float64)).all()) for a in arrays)
