"""The property suite: on random architectures, every witness computes the same gradients.

Witnesses: the NumPy reference, torch autograd, jax (``adapters.available()``), and central
differences (``numeric``) on small cases.  Every comparison uses the tolerance model of
``crossgrad.adapters.tolerance``.  The number of cases follows the Hypothesis profile
(``tests/conftest.py``): ``pytest --hypothesis-profile=thorough`` draws 20 times as many.
"""

from __future__ import annotations

from typing import Any

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossgrad import adapters, reference, strategies
from crossgrad.adapters.tolerance import compare_arrays, default_rtol, error_scale
from crossgrad.reference import worked_example as doc
from crossgrad.strategies import Case

N = settings.default.max_examples
FRAMEWORKS = tuple(name for name in adapters.available() if name not in ("numeric", "reference"))
SMOOTH = [name for name in reference.ACTIVATIONS if name not in ("relu", "leaky_relu")]


@given(strategies.cases())
@settings(max_examples=3 * N)
def test_frameworks_agree_with_the_reference(case: Case) -> None:
    # Forward values too: the report compares the loss, every z and a, then every gradient.
    report = adapters.crosscheck(case.net, case.params, case.x, case.y, backends=FRAMEWORKS)
    assert set(report.backends) == set(FRAMEWORKS)
    n = case.net.n_layers
    for name in FRAMEWORKS:
        assert len(report.comparisons[name]) == 1 + 4 * n
    report.raise_for_mismatch()


@given(
    strategies.cases(
        activations=SMOOTH, depth=(1, 2), width=(1, 4), batch=(1, 3), kinks=False, far_out=False
    )
)
def test_the_reference_agrees_with_central_differences(case: Case) -> None:
    # Smooth activations only: a central difference straddling relu's kink (z = 0 is drawn
    # exactly, and often) averages the two slopes; relu is covered by the frameworks above.
    adapters.crosscheck(
        case.net, case.params, case.x, case.y, backends=["numeric"]
    ).raise_for_mismatch()


@given(strategies.cases(), st.sampled_from(("reference", *FRAMEWORKS)))
def test_shapes_and_dtypes_are_preserved(case: Case, backend: str) -> None:
    fn = reference.backprop if backend == "reference" else adapters.get(backend).backprop
    result = fn(case.net, case.params, case.x, case.y)
    assert isinstance(result.loss, float)
    assert np.isfinite(result.loss)
    for grad, param in zip(
        (*result.grads.weights, *result.grads.biases),
        (*case.params.weights, *case.params.biases),
        strict=True,
    ):
        assert (grad.shape, grad.dtype) == (param.shape, param.dtype)
        assert np.isfinite(grad).all()
    widths = case.net.sizes
    assert [z.shape for z in result.preactivations] == [(case.batch, w) for w in widths[1:]]
    assert [a.shape for a in result.activations] == [(case.batch, w) for w in widths]
    assert {a.dtype for a in (*result.preactivations, *result.activations)} == {case.dtype}


@given(strategies.cases(), st.sampled_from([1e-3, 0.1, 1.0, 3.0]))
def test_an_sgd_step_is_params_minus_lr_times_grads(case: Case, lr: float) -> None:
    before = [a.copy() for a in (*case.params.weights, *case.params.biases, case.x, case.y)]
    grads = reference.backprop(case.net, case.params, case.x, case.y).grads
    new = reference.sgd_step(case.params, grads, lr)
    for p, g, q in zip(
        (*case.params.weights, *case.params.biases),
        (*grads.weights, *grads.biases),
        (*new.weights, *new.biases),
        strict=True,
    ):
        assert q.dtype == p.dtype
        assert np.array_equal(q, p - p.dtype.type(lr) * g)
    loss, stepped = reference.train_step(case.net, case.params, case.x, case.y, lr)
    assert stepped == new
    assert loss == reference.loss(case.net, case.params, case.x, case.y)
    after = (*case.params.weights, *case.params.biases, case.x, case.y)
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))


# The worked example: every backend against an independent 50-digit evaluation.


def _exact_worked_example() -> dict[str, np.ndarray]:
    """The document's quantities in 50-digit arithmetic, straight from its formulas."""
    mpmath.mp.dps = 50
    mpf = mpmath.mpf
    W1, W2 = ([[mpf(float(v)) for v in row] for row in W] for W in doc.PARAMS.weights)
    b1, b2 = ([mpf(float(v)) for v in b] for b in doc.PARAMS.biases)
    x, y = [mpf(float(v)) for v in doc.X], [mpf(float(v)) for v in doc.Y]
    lr = mpf(doc.LR)

    def sigmoid(z: Any) -> Any:
        return 1 / (1 + mpmath.exp(-z))

    z1 = [
        sum(w * xi for w, xi in zip(row, x, strict=True)) + b for row, b in zip(W1, b1, strict=True)
    ]
    a1 = [sigmoid(z) for z in z1]
    z2 = [
        sum(w * a for w, a in zip(row, a1, strict=True)) + b for row, b in zip(W2, b2, strict=True)
    ]
    y_hat = [sigmoid(z) for z in z2]
    loss = sum((p - t) ** 2 for p, t in zip(y_hat, y, strict=True)) / 2
    delta2 = [(p - t) * p * (1 - p) for p, t in zip(y_hat, y, strict=True)]
    dW2 = [[d * a for a in a1] for d in delta2]
    back = [sum(W2[k][j] * delta2[k] for k in range(2)) for j in range(3)]
    delta1 = [s * a * (1 - a) for s, a in zip(back, a1, strict=True)]
    dW1 = [[d * xi for xi in x] for d in delta1]

    def step(W: list[list[Any]], dW: list[list[Any]]) -> list[list[Any]]:
        return [
            [w - lr * g for w, g in zip(*rows, strict=True)] for rows in zip(W, dW, strict=True)
        ]

    values = {
        "z1": z1, "a1": a1, "z2": z2, "y_hat": y_hat, "loss": loss, "delta2": delta2,
        "dL/dW2": dW2, "dL/db2": delta2, "delta1": delta1, "dL/dW1": dW1, "dL/db1": delta1,
        "W2'": step(W2, dW2),
        "b2'": [b - lr * g for b, g in zip(b2, delta2, strict=True)],
        "W1'": step(W1, dW1),
        "b1'": [b - lr * g for b, g in zip(b1, delta1, strict=True)],
    }  # fmt: skip
    return {k: np.array(v, dtype=object).astype(float) for k, v in values.items()}


@pytest.mark.parametrize("backend", ["reference", *FRAMEWORKS])
def test_the_worked_example_through_every_backend(backend: str) -> None:
    fn = reference.backprop if backend == "reference" else adapters.get(backend).backprop
    result = fn(doc.NETWORK, doc.PARAMS, doc.X, doc.Y)
    exact = _exact_worked_example()
    scale = error_scale(doc.NETWORK, doc.PARAMS, doc.X[np.newaxis], doc.Y[np.newaxis])
    rtol = default_rtol(doc.NETWORK, np.float64)
    for name, got, s in zip(
        ("dL/dW1", "dL/dW2", "dL/db1", "dL/db2"),
        (*result.grads.weights, *result.grads.biases),
        (*scale.weights, *scale.biases),
        strict=True,
    ):
        comparison = compare_arrays(name, got, exact[name], s, rtol)
        assert comparison.ok, comparison
    values = doc.quantities(result, reference.sgd_step(doc.PARAMS, result.grads, doc.LR))
    for name in ("loss", "z1", "a1", "z2", "y_hat", "W1'", "W2'", "b1'", "b2'"):
        np.testing.assert_allclose(values[name], exact[name], rtol=0, atol=1e-12, err_msg=name)
    # The document's errata are the same whichever backend computed the exact values.
    disagree = {(c.figure.quantity, c.figure.index) for c in doc.compare_printed(values)
                if not c.agrees}  # fmt: skip
    expected = {(c.figure.quantity, c.figure.index) for c in doc.compare_printed(exact)
                if not c.agrees}  # fmt: skip
    assert disagree == expected


def test_the_worked_example_agrees_with_central_differences() -> None:
    adapters.crosscheck(
        doc.NETWORK, doc.PARAMS, doc.X, doc.Y, backends=["numeric"]
    ).raise_for_mismatch()
