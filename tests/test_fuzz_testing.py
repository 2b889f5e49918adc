"""Fuzzing ``crossgrad.testing`` with misbehaving user code, and ``crossgrad.strategies``.

Property: a user's function that returns the wrong thing, raises, hangs, prints or mutates
its inputs gives a ``GradientMismatchError`` that says so (or passes, when its values are
right); no other exception escapes, the case the user saw is the one reported, and nothing
warns.  Strategies take adversarial arguments with a documented error or draw valid cases.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from fuzzing import Snapshot, arrays_like, budget, outcome
from hypothesis import given
from hypothesis import strategies as st

from crossgrad import adapters, reference, strategies, testing
from crossgrad.reference import Network, Params

# Each behaviour: what the function returns, given the reference's (loss, dWs, dbs); and
# whether the check must pass (True) or fail (False).
BEHAVIOURS: dict[str, tuple[Any, bool]] = {
    "correct": (lambda l, w, b: (l, w, b), True),
    "result_object": (None, True),
    "no_loss": (lambda l, w, b: (None, w, b), True),
    "loss_as_0d_array": (lambda l, w, b: (np.float64(l), w, b), True),
    "lists_of_lists": (lambda l, w, b: (l, [a.tolist() for a in w], [a.tolist() for a in b]), True),
    "prints": (lambda l, w, b: print("debugging", l) or (l, w, b), True),
    "none": (lambda l, w, b: None, False),
    "string": (lambda l, w, b: "done", False),
    "dict": (lambda l, w, b: {"loss": l, "weights": w, "biases": b}, False),
    "two_tuple": (lambda l, w, b: (w, b), False),
    "generator_grads": (lambda l, w, b: (l, (a for a in w), b), False),
    "dict_grads": (lambda l, w, b: (l, dict(enumerate(w)), b), False),
    "string_loss": (lambda l, w, b: (str(l), w, b), False),
    "list_loss": (lambda l, w, b: ([l], w, b), False),
    "nan_loss": (lambda l, w, b: (float("nan"), w, b), False),
    "nan_grads": (lambda l, w, b: (l, [a * np.nan for a in w], b), False),
    "inf_grads": (lambda l, w, b: (l, w, [a + np.inf for a in b]), False),
    "float32_grads": (lambda l, w, b: (l, [a.astype(np.float32) for a in w], b), False),
    "complex_grads": (lambda l, w, b: (l, [a.astype(complex) for a in w], b), False),
    "string_grads": (lambda l, w, b: (l, [a.astype(str) for a in w], b), False),
    "object_grads": (lambda l, w, b: (l, [a.astype(object) for a in w], b), False),
    "transposed": (lambda l, w, b: (l, [a.T for a in w], b), False),
    "flattened": (lambda l, w, b: (l, [a.ravel() for a in w], b), False),
    "missing_layer": (lambda l, w, b: (l, w[:-1], b), False),
    "scalar_grads": (lambda l, w, b: (l, 0.0, b), False),
    "doubled": (lambda l, w, b: (2 * l, [2 * a for a in w], [2 * a for a in b]), False),
}
RAISES = [ValueError("bad shapes"), ZeroDivisionError(), KeyError("W1"), RecursionError(),
          MemoryError("too big"), NotImplementedError("todo")]  # fmt: skip


def _user(
    how: str,
    raises: BaseException | None = None,
    mutate: bool = False,
    seen: list[strategies.Case] | None = None,
) -> Any:
    def backprop(net: Network, params: Params, x: Any, y: Any) -> Any:
        if seen is not None:  # the case as the function is given it, before it does anything
            copies = Params([W.copy() for W in params.weights], [b.copy() for b in params.biases])
            seen.append(strategies.Case(net, copies, x.copy(), y.copy()))
        if raises is not None:
            raise raises
        r = reference.backprop(net, params, x, y)
        if mutate:  # after computing: crossgrad must have passed copies
            x[...] = 0
            y[...] = 0
            params.weights[0][...] = 99.0
        if how == "result_object":
            return r
        make = BEHAVIOURS[how][0]
        return make(r.loss, list(r.grads.weights), list(r.grads.biases))

    return backprop


SMALL = {"width": (1, 3), "depth": (1, 2), "batch": (1, 3), "max_examples": 4}


@pytest.mark.parametrize(("how", "mutate"), [(h, i % 2 == 1) for i, h in enumerate(BEHAVIOURS)])
def test_a_user_function_that_returns_anything(how: str, mutate: bool) -> None:
    seen: list[strategies.Case] = []
    fn, passes = _user(how, mutate=mutate, seen=seen), BEHAVIOURS[how][1]
    try:
        result: Any = testing.check_implementation(fn, seed=0, **SMALL)
    except testing.GradientMismatchError as exc:
        result = exc
    if passes:
        assert isinstance(result, testing.SweepResult), str(result)
        assert result.cases >= 1
        return
    assert isinstance(result, testing.GradientMismatchError), how
    text = str(result)
    assert "Traceback" not in text
    failure = result.failure
    assert failure.error is not None or failure.wrong, text
    # The case reported is one the function was called with, as it was given it: a function
    # that writes into its arguments wrote into copies, not into the case.
    assert any(_same_case(failure.case, case) for case in seen), failure.case
    assert np.isfinite(failure.case.x).all()


def _same_case(a: strategies.Case, b: strategies.Case) -> bool:
    return (a.net, a.params) == (b.net, b.params) and all(
        u.dtype == v.dtype and np.array_equal(u, v) for u, v in ((a.x, b.x), (a.y, b.y))
    )


@budget(4)
@given(raises=st.sampled_from(RAISES), seed=st.integers(0, 99))
def test_a_user_function_that_raises(raises: BaseException, seed: int) -> None:
    with pytest.raises(testing.GradientMismatchError) as info:
        testing.check_implementation(_user("correct", raises=raises), seed=seed, **SMALL)
    assert type(raises).__name__ in str(info.value)
    assert "raised at" in str(info.value)


def test_a_user_function_that_hangs_is_cut_off() -> None:
    def hangs(net: Network, params: Params, x: Any, y: Any) -> Any:
        time.sleep(20)

    start = time.monotonic()
    result = testing.sweep(impl=hangs, trials=3, seed=0, timeout=0.1)
    assert time.monotonic() - start < 2
    assert result.failure is not None
    assert "did not return within 0.1 s" in str(result.failure)


@budget(40)
@given(case=strategies.cases(width=(1, 3), depth=(1, 2), batch=(1, 3)), data=st.data())
def test_assert_gradients_match_on_adversarial_input(case: Any, data: st.DataObject) -> None:
    x = data.draw(arrays_like(case.x), label="x")
    y = data.draw(arrays_like(case.y), label="y")
    snapshot = Snapshot(x.value, y.value)

    def check() -> None:
        testing.assert_gradients_match(reference.backprop, case.net, case.params, x.value, y.value)

    got = outcome(check)
    snapshot.assert_unchanged()
    if x.canonical is None or y.canonical is None:
        assert isinstance(got, TypeError | ValueError), got
    else:  # raises exactly when the reference does, an error of the same type
        canonical = (x.canonical, y.canonical)
        expected = outcome(lambda: reference.backprop(case.net, case.params, *canonical))
        if isinstance(got, BaseException) or isinstance(expected, BaseException):
            assert type(got) is type(expected), (got, expected)


ARGUMENTS = st.fixed_dictionaries(
    {},
    optional={
        "activations": st.one_of(st.sampled_from(["relu", "nope", "", None, 3]),
                                 st.lists(st.sampled_from(["tanh", "gelu", "x"]), max_size=2)),
        "losses": st.sampled_from(["half_sse", "mse", "nope", None, ["mse"], []]),
        "reductions": st.sampled_from(["mean", "sum", "max", None]),
        "dtype": st.sampled_from(["float32", "float64", "float16", np.float64, None, [], 3]),
        "depth": st.one_of(st.integers(-1, 3), st.tuples(st.integers(-1, 3), st.integers(-1, 3)),
                           st.sampled_from([1.5, "2", True, None, (1, 2, 3)])),
        "width": st.one_of(st.integers(-1, 3), st.tuples(st.integers(0, 3), st.integers(0, 3))),
        "batch": st.one_of(st.integers(-1, 3), st.sampled_from([(2, 1), [1, 2]])),
        "kinks": st.booleans(),
        "far_out": st.booleans(),
    },
)  # fmt: skip


@budget(60)
@given(arguments=ARGUMENTS, data=st.data())
def test_strategies_on_adversarial_arguments(arguments: dict[str, Any], data: Any) -> None:
    got = outcome(lambda: data.draw(strategies.cases(**arguments), label="case"))
    if isinstance(got, BaseException):
        assert any(name.rstrip("s") in str(got) for name in arguments), got
        return
    case = got
    out = reference.backprop(case.net, case.params, case.x, case.y)  # valid by construction
    assert np.isfinite(out.loss)


SWEEP_ARGUMENTS = st.fixed_dictionaries(
    {},
    optional={
        "trials": st.sampled_from([0, -1, 1, 2, True, 2.5, "3"]),
        "seed": st.sampled_from([None, 0, -1, 2**40, "1", 1.0]),
        "rtol": st.sampled_from([None, 0.0, -1.0, float("nan"), "1e-3", 1e-3]),
        "atol": st.sampled_from([None, 0.0, float("inf"), 1e-12]),
        "timeout": st.sampled_from([None, 5.0, 0, -2, "60", float("nan")]),
    },
)


@budget(10)
@given(arguments=SWEEP_ARGUMENTS)
def test_sweep_on_adversarial_arguments(arguments: dict[str, Any]) -> None:
    arguments = {"trials": 3, **arguments}
    backends = ["torch"] if "torch" in adapters.available() else ["numeric"]
    got = outcome(lambda: testing.sweep(backends, width=(1, 2), depth=1, **arguments))
    if isinstance(got, BaseException):
        assert any(name in str(got) for name in arguments), got
        return
    assert isinstance(got, testing.SweepResult)
    # A strict override (rtol=0) may fail on rounding: a disagreement, never an error.
    assert got.failure is None or got.failure.error is None, str(got)
    assert got.checked == (got.trials if got.ok else got.cases + 1)
