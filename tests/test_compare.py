"""testing._compare: the one-pass comparison of a case's arrays is ``compare``, array by array."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossgrad import reference, strategies
from crossgrad.adapters import tolerance
from crossgrad.reference import Network, Params
from crossgrad.strategies import Case
from crossgrad.testing import _compare
from crossgrad.testing._compare import agreeing_errors, compare, compare_all
from crossgrad.testing._sweep import impl_checker

Array = np.ndarray[Any, Any]


def _one_by_one(items: list[_compare.CompareItem], rtol: float, atol: float) -> list[Any]:
    return [compare(n, g, r, s, rtol, atol, p) for n, g, r, s, p in items]


def _same(got: list[Any], want: list[Any]) -> None:
    # repr tells -0.0 from 0.0 and shows NaN as itself; a float's repr round-trips exactly.
    assert repr(got) == repr(want)


def _random_items(rng: np.random.Generator, special: bool) -> list[_compare.CompareItem]:
    """Arrays as a case has them (0-d loss, (out, in) weights, (out,) biases), with zeros in
    the reference and the scale, errors from none to large, ties, and with ``special`` some
    NaN, inf, huge and subnormal values, wrong shapes and dtypes, layout problems, empties."""
    shapes: list[tuple[int, ...]] = [(), (3, 2), (3,), (1, 3), (1,), (2, 2, 2)]
    items: list[_compare.CompareItem] = []
    for i, shape in enumerate(shapes):
        ref = rng.normal(size=shape) * rng.integers(0, 2, size=shape)  # some exact zeros
        scale = np.abs(rng.normal(size=shape)) * rng.integers(0, 3, size=shape)  # zeros
        kind = rng.integers(0, 4)
        err = [0.0, 1e-16, 1e-13, 1.0][kind] * rng.integers(-1, 2, size=shape)  # ties of 0
        cand = ref + err
        if rng.random() < 0.3:
            cand, ref = cand.astype(np.float32), ref.astype(np.float32)
        items.append((f"q{i}", cand, ref, scale, None))
    if special:
        pick = rng.integers(0, 9)
        g = np.array([1.0, -2.0, 0.0])
        r = np.array([1.0, 0.0, 5e-324])
        s = np.array([1.0, 0.0, np.inf])
        if pick == 0:
            g[rng.integers(0, 3)] = np.nan
        elif pick == 1:
            g[rng.integers(0, 3)] = rng.choice([np.inf, -np.inf])
        elif pick == 2:
            r[rng.integers(0, 3)] = rng.choice([np.nan, np.inf])
        elif pick == 3:  # |g − r| overflows to inf, over an infinite allowance: a NaN ratio
            g, r = np.array([1.0, 0.0, 1.7e308]), np.array([1.0, 0.0, -1.7e308])
        elif pick == 4:
            g = g.astype(np.float32)
        elif pick == 5:
            g = g[:2]
        elif pick == 6:
            g, r, s = np.zeros(0), np.zeros(0), np.zeros(0)
        elif pick == 7:
            g = g.astype(np.int64)
        items.insert(
            int(rng.integers(0, len(items) + 1)),
            ("odd", g, r, s, "shape (3,), expected (4,)" if pick == 8 else None),
        )
    return items


@pytest.mark.parametrize("seed", range(300))
def test_compare_all_equals_compare_array_by_array(seed: int) -> None:
    rng = np.random.default_rng(seed)
    items = _random_items(rng, special=seed % 2 == 1)
    rtol = [0.0, 1e-15, 1e-3][seed % 3]
    atol = [0.0, 0.0, 1e-14][seed % 5 % 3]
    _same(compare_all(items, rtol, atol), _one_by_one(items, rtol, atol))


@pytest.mark.parametrize("seed", range(300))
def test_agreeing_errors_are_the_worst_of_compare_all_kind_by_kind(seed: int) -> None:
    # What a sweep records of a case that agrees: the same numbers as compare_all's, reduced
    # over the arrays of each kind; and nothing (None) where compare_all fails an array.
    rng = np.random.default_rng(seed)
    special = seed % 2 == 1
    items = _random_items(rng, special=special)
    rtol = [0.0, 1e-15, 1e-3][seed % 3]
    atol = [0.0, 0.0, 1e-14][seed % 5 % 3]
    full = compare_all(items, rtol, atol)
    worst = agreeing_errors(items, rtol, atol)
    if worst is None:
        # Every array of the plain items is in the one pass: None means a failure there.
        assert special or not all(c.ok for c in full)
        return
    assert all(c.ok for c in full)
    kinds: dict[str, list[Any]] = {}
    for c in full:
        kinds.setdefault(c.name.rstrip("0123456789"), []).append(c)
    want = {
        kind: (
            max(c.max_abs_err for c in cs),
            max(c.max_rel_err for c in cs),
            max(c.max_err_over_tolerance for c in cs),
        )
        for kind, cs in kinds.items()
    }
    assert repr(worst) == repr(want)


def test_agreeing_errors_are_taken_when_every_candidate_is_its_reference() -> None:
    for seed in range(20):
        items = [
            (name, r.copy(), r, s, None)
            for name, _, r, s, _ in _random_items(np.random.default_rng(seed), special=False)
        ]
        assert agreeing_errors(items, 1e-15) == {"q": (0.0, 0.0, 0.0)}


def test_the_one_pass_is_taken_when_every_value_is_finite(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(0)
    items = _random_items(rng, special=False)
    want = _one_by_one(items, 1e-15, 0.0)

    def not_called(*args: Any) -> Any:
        raise AssertionError("compare called: the one pass was not taken")

    monkeypatch.setattr(_compare, "compare", not_called)
    _same(compare_all(items, 1e-15, 0.0), want)


@pytest.mark.parametrize("value", [np.nan, np.inf], ids=["nan", "inf"])
def test_a_non_finite_candidate_is_still_named(value: float) -> None:
    r = np.ones(3)
    items: list[_compare.CompareItem] = [
        ("W1", np.array([1.0, value, 1.0]), r, r, None),
        ("b1", r.copy(), r, r, None),
    ]
    got = compare_all(items, 1e-15)
    assert [(c.ok, c.problem) for c in got] == [(False, "non-finite values"), (True, None)]
    assert got[0].worst_index == (1,)


def test_a_zero_scale_allows_only_an_exact_match() -> None:
    zero = np.zeros(2)
    items: list[_compare.CompareItem] = [
        ("b1", zero, zero, zero, None),
        ("b2", np.array([0.0, 1e-300]), zero, zero, None),
    ]
    first, second = compare_all(items, 1e-3)
    assert first.ok
    assert first.max_err_over_tolerance == 0.0
    assert not second.ok
    assert second.max_err_over_tolerance == np.inf
    assert second.worst_index == (1,)


@settings(max_examples=80, deadline=None, database=None, derandomize=True)
@given(case=strategies.cases(), noise=st.sampled_from([0.0, 1e-15, 1e-9, 1e-3]))
def test_a_check_reports_what_compare_computes_on_a_fresh_forward_pass(
    case: Case, noise: float
) -> None:
    """``impl_checker`` (its error scales on the reference's forward values, ``compare_all``)
    reports exactly what ``compare`` gives on scales that run a forward pass of their own."""

    def perturbed(net: Network, params: Params, x: Array, y: Array) -> Any:
        r = reference.backprop(net, params, x, y)
        weights = [W * (1 + noise) for W in r.grads.weights]
        return r.loss * (1 + noise), weights, [b + noise for b in r.grads.biases]

    outcome = impl_checker(perturbed, None, 0.0, timeout=60.0)(case)
    net = case.net
    ref = reference.backprop(net, case.params, case.x, case.y)
    forward, scale = tolerance.error_scales(net, case.params, case.x, case.y)
    rtol = tolerance.default_rtol(net, case.dtype)
    loss, weights, biases = perturbed(net, case.params, case.x, case.y)
    want = [compare("loss", np.asarray(loss, np.float64), np.asarray(ref.loss, np.float64),
                    np.asarray(forward.loss), rtol)]  # fmt: skip
    for l in range(net.n_layers):
        want.append(compare(f"W{l + 1}", weights[l], ref.grads.weights[l], scale.weights[l], rtol))
        want.append(compare(f"b{l + 1}", biases[l], ref.grads.biases[l], scale.biases[l], rtol))
    assert (outcome.failure is None) == all(c.ok for c in want)
    got = outcome.comparisons["your backprop"]
    if outcome.failure is None:  # what a sweep records: the worst of each kind
        kinds: dict[str, list[Any]] = {}
        for c in want:
            kinds.setdefault(c.name.rstrip("0123456789"), []).append(c)
        want = [
            _compare.Comparison(
                kind,
                max(c.max_abs_err for c in cs),
                max(c.max_rel_err for c in cs),
                max(c.max_err_over_tolerance for c in cs),
                (),
                True,
            )
            for kind, cs in kinds.items()
        ]
    _same(got, want)
