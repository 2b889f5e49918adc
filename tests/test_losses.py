"""Each loss's per-sample value and gradient, against direct formulas and central differences."""

from __future__ import annotations

import numpy as np
import pytest
from numdiff import assert_close_to_numeric, central_difference

from crossgrad.reference import LOSSES

RNG_SEED = 20261129


def _out_and_target(name: str, batch: int = 3, width: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(RNG_SEED)
    out = rng.normal(scale=2.0, size=(batch, width))
    if name == "binary_cross_entropy":
        y = rng.uniform(0, 1, size=(batch, width))
    elif name == "softmax_cross_entropy":
        y = rng.uniform(0, 1, size=(batch, width))
        y[0] = np.eye(width)[1]  # one one-hot row, one row of weights that do not sum to 1
    else:
        y = rng.normal(size=(batch, width))
    return out, y


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


# Direct transcriptions of the formulas, fine for moderate values.
DIRECT = {
    "half_sse": lambda out, y: 0.5 * ((out - y) ** 2).sum(axis=1),
    "mse": lambda out, y: ((out - y) ** 2).mean(axis=1),
    "binary_cross_entropy": lambda z, y: (
        -(y * np.log(_sigmoid(z)) + (1 - y) * np.log(1 - _sigmoid(z))).mean(axis=1)
    ),
    "softmax_cross_entropy": lambda out, y: (
        -(y * np.log(np.exp(out) / np.exp(out).sum(axis=1, keepdims=True))).sum(axis=1)
    ),
}


def test_registry_holds_every_documented_loss() -> None:
    assert set(LOSSES) == set(DIRECT)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_value_matches_direct_formula(name: str) -> None:
    out, y = _out_and_target(name)
    np.testing.assert_allclose(LOSSES[name].value(out, y), DIRECT[name](out, y), rtol=1e-14)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradient_matches_central_differences(name: str) -> None:
    loss = LOSSES[name]
    out, y = _out_and_target(name)
    numeric = central_difference(lambda o: float(loss.value(o, y).sum()), out)
    assert_close_to_numeric(loss.gradient(out, y), numeric)


def test_mse_is_torch_mse_loss_under_mean_reduction() -> None:
    torch = pytest.importorskip("torch")
    out, y = _out_and_target("mse")
    theirs = torch.nn.functional.mse_loss(
        torch.from_numpy(out), torch.from_numpy(y), reduction="mean"
    ).item()
    assert LOSSES["mse"].value(out, y).mean() == pytest.approx(theirs, rel=1e-15, abs=0)


def test_half_sse_is_the_worked_example_loss() -> None:
    out, y = np.array([[0.548, 0.482]]), np.array([[1.0, 0.0]])
    expected = 0.5 * ((0.548 - 1) ** 2 + 0.482**2)
    assert LOSSES["half_sse"].value(out, y)[0] == pytest.approx(expected, rel=1e-15, abs=0)


def test_binary_cross_entropy_is_fused_with_its_sigmoid() -> None:
    loss = LOSSES["binary_cross_entropy"]
    assert loss.on_logits
    assert loss.output_activation == "sigmoid"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binary_cross_entropy_far_out_logits(dtype: type) -> None:
    loss = LOSSES["binary_cross_entropy"]
    z = np.array([[1e6, -1e6, 1e6, -1e6]], dtype=dtype)
    y = np.array([[1.0, 0.0, 0.0, 1.0]], dtype=dtype)
    # Right answers cost nothing, wrong ones cost |z| (mean over the 4 outputs).
    np.testing.assert_allclose(loss.value(z, y), [2e6 / 4], rtol=1e-7)
    np.testing.assert_allclose(loss.gradient(z, y), [[0, 0, 0.25, -0.25]], atol=0)
    assert loss.value(z, y).dtype == dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_cross_entropy_far_out_logits(dtype: type) -> None:
    loss = LOSSES["softmax_cross_entropy"]
    logits = np.array([[1e6, -1e6, 0.0]], dtype=dtype)
    np.testing.assert_array_equal(loss.value(logits, np.array([[1, 0, 0]], dtype=dtype)), [0.0])
    np.testing.assert_allclose(loss.value(logits, np.array([[0, 0, 1]], dtype=dtype)), [1e6])
    grad = loss.gradient(logits, np.array([[0, 1, 0]], dtype=dtype))
    np.testing.assert_array_equal(grad, [[1.0, -1.0, 0.0]])
    assert grad.dtype == dtype


def test_softmax_cross_entropy_gradient_rows_sum_to_zero_for_one_hot_targets() -> None:
    out, _ = _out_and_target("softmax_cross_entropy")
    y = np.eye(4)[[0, 3, 2]]
    np.testing.assert_allclose(
        LOSSES["softmax_cross_entropy"].gradient(out, y).sum(axis=1), 0, atol=1e-15
    )


@pytest.mark.parametrize(
    ("name", "bad_target", "message"),
    [
        ("binary_cross_entropy", [[0.5, 1.5]], "values in [0, 1]"),
        ("binary_cross_entropy", [[-0.1, 0.5]], "values in [0, 1]"),
        ("softmax_cross_entropy", [[-1.0, 2.0]], "non-negative"),
    ],
)
def test_target_domain_errors_describe_the_domain(
    name: str, bad_target: list[list[float]], message: str
) -> None:
    problem = LOSSES[name].target_error(np.array(bad_target))
    assert problem is not None
    assert message in problem


@pytest.mark.parametrize("name", ["half_sse", "mse"])
def test_regression_losses_accept_any_finite_target(name: str) -> None:
    assert LOSSES[name].target_error(np.array([[-1e6, 1e6]])) is None
