"""The worked example: the reference against an independent 40-digit computation, and the
document's printed figures against the exact values."""

from __future__ import annotations

from decimal import Decimal, localcontext

import numpy as np
import pytest

from crossgrad.reference import backprop, sgd_step, worked_example
from crossgrad.reference.worked_example import LR, NETWORK, PARAMS, PRINTED, QUANTITIES, X, Y

# The printed figures that are more than one unit in their last place away from the exact
# value (the README lists them too).  Everything else the document prints is right.
ERRATA = {
    ("a1", (0,), "0.482"),  # σ(−0.05) = 0.48750; the document prints 0.487 a few lines later
    ("dL/dW1", (0, 0), "-0.204"),  # −0.0204: a slipped decimal point
    ("dL/dW1", (2, 3), "0.007"),  # 0.0056
    ("W1'", (0, 2), "0.400"),  # 0.39796
    ("W1'", (1, 0), "-0.304"),  # −0.30079
}


def _exact_quantities() -> dict[str, np.ndarray]:
    """The example computed with scalar loops in 40-digit decimal arithmetic: a witness that
    shares no code (and no floating point) with the reference."""
    with localcontext() as ctx:
        ctx.prec = 40
        one = Decimal(1)

        def sigmoid(t: Decimal) -> Decimal:
            return one / (one + (-t).exp())

        def dec(values: np.ndarray) -> list:
            return [dec(v) for v in values] if np.ndim(values) else Decimal(repr(float(values)))

        W1, W2 = (dec(W) for W in PARAMS.weights)
        b1, b2 = (dec(b) for b in PARAMS.biases)
        x, y, lr = dec(X), dec(Y), Decimal(repr(LR))
        z1 = [sum(W1[i][j] * x[j] for j in range(4)) + b1[i] for i in range(3)]
        a1 = [sigmoid(t) for t in z1]
        z2 = [sum(W2[i][j] * a1[j] for j in range(3)) + b2[i] for i in range(2)]
        y_hat = [sigmoid(t) for t in z2]
        loss = sum((y_hat[i] - y[i]) ** 2 for i in range(2)) / 2
        delta2 = [(y_hat[i] - y[i]) * y_hat[i] * (one - y_hat[i]) for i in range(2)]
        dW2 = [[delta2[i] * a1[j] for j in range(3)] for i in range(2)]
        delta1 = [
            sum(W2[k][i] * delta2[k] for k in range(2)) * a1[i] * (one - a1[i]) for i in range(3)
        ]
        dW1 = [[delta1[i] * x[j] for j in range(4)] for i in range(3)]
        values = {
            "z1": z1, "a1": a1, "z2": z2, "y_hat": y_hat, "loss": loss,
            "delta2": delta2, "dL/dW2": dW2, "dL/db2": delta2,
            "W2'": [[W2[i][j] - lr * dW2[i][j] for j in range(3)] for i in range(2)],
            "b2'": [b2[i] - lr * delta2[i] for i in range(2)],
            "delta1": delta1, "dL/dW1": dW1, "dL/db1": delta1,
            "W1'": [[W1[i][j] - lr * dW1[i][j] for j in range(4)] for i in range(3)],
            "b1'": [b1[i] - lr * delta1[i] for i in range(3)],
        }  # fmt: skip
    return {name: np.array(value, dtype=float) for name, value in values.items()}


EXACT = _exact_quantities()


def _reference_quantities(lr: float = LR) -> dict[str, np.ndarray]:
    out = backprop(NETWORK, PARAMS, X, Y)
    return worked_example.quantities(out, sgd_step(PARAMS, out.grads, lr))


def test_the_example_is_the_documents_network() -> None:
    assert NETWORK.sizes == (4, 3, 2)
    assert NETWORK.activations == ("sigmoid", "sigmoid")
    assert NETWORK.loss == "half_sse"
    assert PARAMS.dtype == np.float64
    assert X.shape == (4,)
    assert Y.shape == (2,)
    assert LR == 0.1


@pytest.mark.parametrize("quantity", QUANTITIES)
def test_reference_reproduces_the_exact_values(quantity: str) -> None:
    computed = _reference_quantities()[quantity]
    assert computed.shape == EXACT[quantity].shape
    np.testing.assert_allclose(computed, EXACT[quantity], rtol=1e-12, atol=0)


def test_every_printed_figure_is_recorded_with_its_precision() -> None:
    assert len(PRINTED) == 62
    assert {figure.quantity for figure in PRINTED} == set(QUANTITIES) - {"delta1"}
    loss = next(figure for figure in PRINTED if figure.quantity == "loss")
    assert (loss.printed, loss.index, loss.unit) == ("0.21803", (), pytest.approx(1e-5))
    assert next(f for f in PRINTED if f.printed == "-0.0737").unit == pytest.approx(1e-4)


def test_exactly_the_known_errata_disagree_with_the_exact_values() -> None:
    checks = worked_example.compare_printed(EXACT)
    wrong = {(c.figure.quantity, c.figure.index, c.figure.printed) for c in checks if not c.agrees}
    assert wrong == ERRATA
    assert all(c.error_in_units <= 1 for c in checks if c.agrees)


def test_the_reference_finds_the_same_errata() -> None:
    checks = worked_example.compare_printed(_reference_quantities())
    wrong = {(c.figure.quantity, c.figure.index, c.figure.printed) for c in checks if not c.agrees}
    assert wrong == ERRATA


@pytest.mark.parametrize("lr", [0.05, 0.09, 0.11, 0.2, 1.0])
def test_only_lr_of_one_tenth_fits_the_printed_updates(lr: float) -> None:
    # With η = 0.1 every printed update outside the errata agrees; other rates break some.
    def updates_that_disagree(rate: float) -> int:
        checks = worked_example.compare_printed(_reference_quantities(rate))
        return sum(
            not c.agrees
            for c in checks
            if c.figure.quantity.endswith("'")
            and (c.figure.quantity, c.figure.index, c.figure.printed) not in ERRATA
        )

    assert updates_that_disagree(LR) == 0
    assert updates_that_disagree(lr) > 0


def test_compare_printed_rejects_non_finite_values() -> None:
    values = dict(EXACT)
    values["loss"] = np.array(np.nan)
    with pytest.raises(ValueError, match="not finite"):
        worked_example.compare_printed(values)
