"""Layouts: a user's function gets the case in its own layout and answers in it.

A correct implementation passes in every layout; one that answers in the other weight layout
fails with ``transposed``, reported as a shape in the expected layout, not as wrong values.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
import realistic

from crossgrad import reference, testing
from crossgrad.reference import Network, Params

LAYOUTS = list(itertools.product(testing.WEIGHT_LAYOUTS, testing.SAMPLE_LAYOUTS))
FAST = {"max_examples": 60, "seed": 5, "activations": ["tanh", "relu", "identity"]}


def in_layout(
    weights: str, samples: str, bias_shape: str = "same", answer: str | None = None
) -> Any:
    """The reference's backprop behind glue for ``(weights, samples)``: it undoes the layout,
    runs ``reference.backprop`` and answers in the same layout (``answer``: in that weight
    layout instead)."""

    def backprop(net: Network, params: Params, x: Any, y: Any) -> Any:
        Ws = [W.T if weights == "in_out" else W for W in params.weights]
        columns = samples == "columns"
        assert all(
            b.shape == ((W.shape[0], 1) if columns else (W.shape[0],))
            for W, b in zip(Ws, params.biases, strict=True)
        )
        bs = [b.reshape(-1) for b in params.biases]
        if columns:
            x, y = x.T, y.T
        out = reference.backprop(net, Params(Ws, bs), x, y)
        dWs = [g.T if (answer or weights) == "in_out" else g for g in out.grads.weights]
        dbs = list(out.grads.biases)
        if bias_shape == "same" and columns:
            dbs = [g[:, None] for g in dbs]
        elif bias_shape == "row":
            dbs = [g[None, :] for g in dbs]
        return out.loss, dWs, dbs

    return backprop


@pytest.mark.parametrize(("weights", "samples"), LAYOUTS)
def test_a_correct_implementation_passes_in_every_layout(weights: str, samples: str) -> None:
    result = testing.check_implementation(
        in_layout(weights, samples), weights=weights, samples=samples, **FAST
    )
    assert result.cases == 60


@pytest.mark.parametrize("samples", testing.SAMPLE_LAYOUTS)
def test_flat_bias_gradients_are_accepted_in_either_sample_layout(samples: str) -> None:
    testing.check_implementation(in_layout("out_in", samples, "flat"), samples=samples, **FAST)


def test_row_bias_gradients_are_accepted_with_rows() -> None:
    testing.check_implementation(in_layout("in_out", "rows", "row"), weights="in_out", **FAST)


@pytest.mark.parametrize(("weights", "samples"), LAYOUTS)
def test_the_other_weight_layout_fails_as_transposed(weights: str, samples: str) -> None:
    other = "out_in" if weights == "in_out" else "in_out"
    with pytest.raises(testing.GradientMismatchError) as caught:
        testing.check_implementation(
            in_layout(weights, samples, answer=other),
            weights=weights,
            samples=samples,
            **FAST,
            width=(2, 4),
        )
    failure = caught.value.failure
    assert failure.error is None  # shapes differ: found by the check, not a crash
    assert "transposed" in [h.code for h in failure.hints]
    assert any(name.startswith("W") for name in failure.wrong)
    if failure.case.net.sizes[0] != failure.case.net.sizes[1]:
        want = "(in, out)" if weights == "in_out" else "(out, in)"
        assert f"expected {want}" in str(failure)


def test_the_layer_mlp_in_its_own_layout_passes_and_in_ours_is_transposed() -> None:
    relu_mlp = {
        "hidden_activations": "relu",
        "output_activation": "identity",
        "losses": "half_sse",
        "reductions": "mean",
        "max_examples": 100,
        "seed": 2,
    }
    testing.check_implementation(realistic.wrap_layer_mlp, weights="in_out", **relu_mlp)
    with pytest.raises(testing.GradientMismatchError) as caught:
        testing.check_implementation(
            realistic.wrap_layer_mlp_transposed, weights="in_out", width=(2, 5), **relu_mlp
        )
    assert "transposed" in [h.code for h in caught.value.failure.hints]


def test_the_textbook_in_columns_passes() -> None:
    testing.check_implementation(
        realistic.column_sigmoid,
        samples="columns",
        activations="sigmoid",
        losses="half_sse",
        reductions="mean",
        max_examples=100,
        seed=4,
    )


def test_the_user_receives_copies_in_its_layout() -> None:
    seen: list[tuple[tuple[int, ...], ...]] = []

    def spy(net: Network, params: Params, x: Any, y: Any) -> Any:
        seen.append((params.weights[0].shape, params.biases[0].shape, x.shape, y.shape))
        params.weights[0][...] = 7.0  # vandalism must not reach the check
        return in_layout("in_out", "columns")(net, params, x, y)

    net = Network((3, 2), activation="tanh", loss="half_sse")
    params = reference.init_params(net, seed=0)
    x, y = np.ones((4, 3)), np.zeros((4, 2))
    with pytest.raises(testing.GradientMismatchError):
        testing.assert_gradients_match(spy, net, params, x, y, weights="in_out", samples="columns")
    assert seen[0] == ((3, 2), (2, 1), (3, 4), (2, 4))
    assert (params.weights[0] != 7.0).all()


def test_assert_gradients_match_takes_a_layout() -> None:
    net = Network((3, 4, 2), activation=["relu", "identity"], loss="half_sse")
    params = reference.init_params(net, seed=1)
    x = np.random.default_rng(0).normal(size=(5, 3))
    y = np.random.default_rng(1).normal(size=(5, 2))
    testing.assert_gradients_match(realistic.wrap_layer_mlp, net, params, x, y, weights="in_out")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"weights": "rows"}, ValueError),
        ({"samples": "in_out"}, ValueError),
        ({"weights": 1}, TypeError),
    ],
)
def test_bad_layouts_are_rejected(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error, match=next(iter(kwargs))):
        testing.check_implementation(reference.backprop, **kwargs)


def test_a_layout_without_impl_is_rejected() -> None:
    with pytest.raises(ValueError, match="impl"):
        testing.sweep(["numeric"], weights="in_out", trials=1)
