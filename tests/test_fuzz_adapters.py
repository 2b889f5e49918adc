"""Fuzzing ``crossgrad.adapters``: adversarial inputs, tolerances, backend names and backends.

Property: bad input raises the reference's documented error (same type, same message); valid
input gives a report whose reference result is the reference's own, bit for bit, in which
every built-in backend agrees; a misbehaving backend of one's own is reported as that
backend's failure, never raised; nothing is modified and nothing warns.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
from fuzzing import Drawn, Snapshot, arrays_like, budget, outcome
from hypothesis import example, given
from hypothesis import strategies as st

from crossgrad import adapters, reference, strategies
from crossgrad.reference import BackpropResult, Network, Params

# One framework backend keeps the suite fast: JAX compiles anew for every network shape.
FAST = ["torch"] if "torch" in adapters.available() else ["numeric"]
SMALL = {"width": (1, 3), "depth": (1, 2), "batch": (1, 3), "far_out": False}


@budget(60)
@given(case=strategies.cases(**SMALL), data=st.data())
def test_adversarial_x_and_y(case: Any, data: st.DataObject) -> None:
    x: Drawn = data.draw(arrays_like(case.x), label="x")
    y: Drawn = data.draw(arrays_like(case.y), label="y")
    snapshot = Snapshot(case.params, x.value, y.value)
    got = outcome(lambda: adapters.crosscheck(case.net, case.params, x.value, y.value, FAST))
    snapshot.assert_unchanged()
    if x.canonical is None or y.canonical is None:
        assert isinstance(got, TypeError | ValueError), got
        return
    expected = outcome(lambda: reference.backprop(case.net, case.params, x.canonical, y.canonical))
    if isinstance(expected, BaseException):
        assert type(got) is type(expected)
        assert str(got) == str(expected)
        return
    assert isinstance(got, adapters.CrossCheckReport), got
    mine = got.results["reference"]
    assert mine.loss == expected.loss
    assert mine.grads == expected.grads
    assert got.ok, str(got)


TOLERANCES = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["1e-6", -0.0, True, 1e-300, np.float32(1e-3)]),
)


@budget(40)
@given(rtol=TOLERANCES, atol=TOLERANCES)
def test_adversarial_tolerances(rtol: Any, atol: Any) -> None:
    net = Network((2, 2))
    params = reference.init_params(net)
    got = outcome(
        lambda: adapters.crosscheck(net, params, [1.0, 2.0], [0.0, 1.0], FAST, rtol, atol)
    )
    if isinstance(got, BaseException):
        assert "rtol" in str(got) or "atol" in str(got), got
        return
    assert all(np.isfinite(t).all() for t in got.tolerances.values())


@budget(30)
@given(name=st.one_of(st.text(max_size=8), st.sampled_from([None, 3, b"torch", ["jax"]])))
def test_adversarial_backend_names(name: Any) -> None:
    try:
        got: Any = adapters.get(name)
    except (TypeError, ValueError, ImportError) as exc:
        got = exc
    if isinstance(got, Exception):
        assert "backend" in str(got) or "name" in str(got)
    else:
        assert got.name == name


RETURNS = [
    "raises", "none", "string", "dict", "generator", "wrong_shape", "nan", "loss_string",
    "float32", "prints", "mutates",
]  # fmt: skip


class Misbehaving:
    """A backend of one's own that goes wrong in one of the ``RETURNS`` ways."""

    def __init__(self, how: str) -> None:
        self.how = how
        self.name = f"mine-{how}"

    def backprop(self, net: Network, params: Params, x: Any, y: Any) -> Any:
        r = reference.backprop(net, params, x, y)
        how, grads = self.how, r.grads
        if how == "raises":
            raise RuntimeError("my backend broke")
        if how in ("none", "string", "dict", "generator"):
            return {"none": None, "string": "0.5", "dict": {"loss": r.loss}}.get(
                how, (v for v in [r.loss])
            )
        if how == "prints":
            print("a backend that talks")
        if how == "mutates":
            params.weights[0][...] = 7.0  # on its own copy? crosscheck must not care
            return r
        changed = {
            "wrong_shape": lambda a: a[..., :0],
            "nan": lambda a: np.full_like(a, np.nan),
            "float32": lambda a: a.astype(np.float32),
        }.get(how)
        if changed is not None:  # not Params, which would refuse the wrong shapes
            weights, biases = grads.weights, grads.biases
            grads = SimpleNamespace(weights=[changed(W) for W in weights],
                                    biases=[changed(b) for b in biases])  # fmt: skip
        loss: Any = "0.5" if how == "loss_string" else r.loss
        return BackpropResult(loss, grads, r.preactivations, r.activations)


# The draws need not pair a float32 result with a float64 case: this one always does.
FLOAT64_CASE = strategies.Case(
    Network((2, 3, 2)),
    reference.init_params(Network((2, 3, 2)), seed=1),
    np.array([[1.0, 2.0]]),
    np.array([[0.0, 1.0]]),
)


@budget(40)
@given(case=strategies.cases(**SMALL), how=st.sampled_from(RETURNS))
@example(case=FLOAT64_CASE, how="float32")
def test_a_misbehaving_backend_is_reported_not_raised(case: Any, how: str) -> None:
    if how == "mutates":  # the backend gets the caller's arrays: give it copies
        case = strategies.Case(
            case.net,
            Params([W.copy() for W in case.params.weights], [b.copy() for b in case.params.biases]),
            case.x,
            case.y,
        )
    before = Snapshot(case.x, case.y)
    report = adapters.crosscheck(case.net, case.params, case.x, case.y, [Misbehaving(how)])
    before.assert_unchanged()
    assert isinstance(report, adapters.CrossCheckReport)
    text = str(report)
    assert "Traceback" not in text
    if how in ("wrong_shape", "nan", "float32"):  # returned, so compared, not an error
        assert not report.errors, text
    if how in RETURNS[:-3]:  # all but the three that return the right values
        assert not report.ok, text
    elif how == "float32":  # the right values, in float32: wrong on a float64 case only
        assert report.ok is (case.dtype == np.float32), text


@budget(30)
@given(
    cases=st.lists(
        st.one_of(
            strategies.cases(**SMALL).map(lambda c: (c.net, c.params, c.x, c.y)),
            st.sampled_from([None, (), ("net",), "case", 3]),
        ),
        max_size=3,
    )
)
def test_adversarial_case_lists(cases: list[Any]) -> None:
    got = outcome(lambda: list(adapters.crosscheck_many(cases, FAST)))
    if isinstance(got, BaseException):
        assert str(got).startswith("cases["), got
        return
    assert len(got) == len(cases)
    assert all(r.ok for r in got)
