"""crossgrad.strategies: drawn cases are valid, restrictions hold, edge cases occur, shrinking."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st

from crossgrad import reference, strategies
from crossgrad.reference import ACTIVATIONS, LOSSES, Network, Params
from crossgrad.strategies import Case

N = settings.default.max_examples
NO_SHRINK = settings(
    phases=[Phase.generate], database=None, max_examples=2000
)  # to show that something occurs, or to take the first case that has it: the property
# checked is the strategy's, not the shrinker's (shrinking is tested on its own, below).


@given(strategies.cases())
def test_every_case_is_valid(case: Case) -> None:
    net = case.net
    reference.check_inputs(net, case.params, case.x, case.y)  # raises if anything is off
    assert 1 <= net.n_layers <= 5
    assert all(1 <= w <= 32 for w in net.sizes)
    assert 1 <= case.batch <= 16
    assert case.x.shape == (case.batch, net.sizes[0])
    assert case.y.shape == (case.batch, net.sizes[-1])
    assert {a.dtype for a in (case.x, case.y, *case.params.weights, *case.params.biases)} == {
        case.dtype
    }
    for array in (case.x, case.y, *case.params.weights, *case.params.biases):
        assert np.isfinite(array).all()
        assert np.abs(array).max() <= 2.0**17
        assert array.flags.c_contiguous  # a user's code may assume it


@given(strategies.cases(losses="binary_cross_entropy", activations="relu"))
def test_binary_cross_entropy_gets_a_sigmoid_output_and_targets_in_0_1(case: Case) -> None:
    assert case.net.activations[-1] == "sigmoid"
    assert set(case.net.activations[:-1]) <= {"relu"}
    assert ((case.y >= 0) & (case.y <= 1)).all()


@given(strategies.cases(losses="softmax_cross_entropy"))
def test_softmax_cross_entropy_targets_are_non_negative_weights(case: Case) -> None:
    assert (case.y >= 0).all()


@given(
    st.data(),
    st.lists(st.sampled_from(list(ACTIVATIONS)), min_size=1, unique=True),
    st.sampled_from(["half_sse", "mse"]),
    st.sampled_from(["float32", "float64"]),
    st.integers(1, 4),
    st.integers(1, 8),
)
@settings(max_examples=max(10, N // 2))
def test_restrictions_are_honoured(
    data: st.DataObject, activations: list[str], loss: str, dtype: str, depth: int, width: int
) -> None:
    case = data.draw(
        strategies.cases(
            activations=activations,
            losses=[loss],
            reductions="sum",
            dtype=dtype,
            depth=depth,
            width=(1, width),
            batch=(2, 3),
        )
    )
    assert set(case.net.activations) <= set(activations)
    assert (case.net.loss, case.net.reduction, case.dtype) == (loss, "sum", np.dtype(dtype))
    assert case.net.n_layers == depth
    assert max(case.net.sizes) <= width
    assert case.batch in (2, 3)


@given(strategies.networks(depth=(2, 3), width=4).flatmap(
    lambda net: st.tuples(st.just(net), strategies.params(net, dtype="float32"),
                          strategies.batches(net, dtype="float32", batch=5))
))  # fmt: skip
def test_params_and_batches_fit_the_network(drawn: tuple[Network, Params, tuple]) -> None:
    net, params, (x, y) = drawn
    assert params.sizes == net.sizes == (4,) * len(net.sizes)
    assert params.dtype == x.dtype == y.dtype == np.float32
    assert x.shape == (5, 4)
    reference.check_inputs(net, params, x, y)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_every_activation_occurs(name: str) -> None:
    find(strategies.networks(), lambda net: name in net.activations[:-1], settings=NO_SHRINK)


@pytest.mark.parametrize(("loss", "reduction"), [(l, r) for l in LOSSES for r in ("mean", "sum")])
def test_every_loss_and_reduction_occurs(loss: str, reduction: str) -> None:
    find(
        strategies.networks(),
        lambda net: (net.loss, net.reduction) == (loss, reduction),
        settings=NO_SHRINK,
    )


def test_softmax_cross_entropy_draws_one_hot_and_weighted_targets() -> None:
    softmax = strategies.cases(losses="softmax_cross_entropy", width=(3, 5), batch=(2, 4))

    def one_hot(c: Case) -> bool:
        return bool((c.y.sum(axis=1) == 1).all() and (c.y.max(axis=1) == 1).all())

    find(softmax, one_hot, settings=NO_SHRINK)
    find(softmax, lambda c: bool(((c.y > 0) & (c.y < 1)).any()), settings=NO_SHRINK)


def _preactivations(case: Case) -> list[np.ndarray]:
    return reference.backprop(case.net, case.params, case.x, case.y).preactivations  # type: ignore[return-value]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_kinks_put_preactivations_exactly_on_zero(dtype: str) -> None:
    # A zeroed row of 8 inputs is (almost) never drawn by chance: it comes from kinks=True.
    def zero_units(c: Case, layer: int) -> np.ndarray:
        W, b = c.params.weights[layer], c.params.biases[layer]
        return np.flatnonzero((W == 0).all(axis=1) & (b == 0))

    case = find(
        strategies.cases(activations="relu", dtype=dtype, depth=2, width=(8, 8)),
        lambda c: zero_units(c, 1).size > 0,
        settings=NO_SHRINK,
    )
    z = _preactivations(case)[1]
    assert (z[:, zero_units(case, 1)] == 0).all()


def test_far_out_reaches_large_preactivations_and_stays_finite() -> None:
    case = find(
        strategies.cases(far_out=True),
        lambda c: max(float(np.abs(z).max()) for z in _preactivations(c)) >= 1e5,
        settings=NO_SHRINK,
    )
    result = reference.backprop(case.net, case.params, case.x, case.y)
    assert np.isfinite(result.loss)


def test_without_far_out_preactivations_stay_moderate() -> None:
    @given(strategies.cases(far_out=False, activations=["identity", "relu"]))
    @settings(max_examples=N)
    def check(case: Case) -> None:
        # |z| ≤ Σ|a||W| + |b| with |W|, |b| ≤ 2^-⌊log2(fan_in)/2⌋: bounded by (√32 + 1)^5.
        assert max(float(np.abs(z).max()) for z in _preactivations(case)) <= (32**0.5 + 1) ** 5

    check()


def test_shrinks_to_the_smallest_network() -> None:
    case = find(strategies.cases(), lambda c: c.batch >= 3)
    assert case.net.sizes == (1, 1)
    assert case.net.activations == ("identity",)
    assert (case.net.loss, case.net.reduction, case.dtype) == ("half_sse", "mean", np.float64)
    assert case.batch == 3
    values = np.concatenate([case.x.ravel(), case.y.ravel(), case.params.weights[0].ravel()])
    assert set(values.tolist()) <= {-1.0, -0.5, 0.0, 0.5, 1.0}


def test_float32_and_float64_cases_hold_the_same_numbers() -> None:
    strategy = strategies.cases(dtype="float64")
    case64 = find(strategy, lambda c: c.batch >= 2 and c.net.n_layers >= 2, settings=NO_SHRINK)
    for array in (case64.x, case64.y, *case64.params.weights, *case64.params.biases):
        assert np.array_equal(array.astype(np.float32).astype(np.float64), array)


def test_repr_is_python_and_describe_shows_every_array() -> None:
    case = find(
        strategies.cases(dtype="float32"),
        lambda c: c.net.n_layers == 2 and c.batch == 2,
        settings=NO_SHRINK,
    )
    namespace = {"array": np.array, "float32": np.float32, "Network": Network, "Params": Params,
                 "Case": Case}  # fmt: skip
    again = eval(repr(case), namespace)
    assert again.net == case.net
    assert again.params == case.params
    assert np.array_equal(again.x, case.x)
    assert again.x.dtype == case.x.dtype
    assert np.array_equal(again.y, case.y)
    text = case.describe()
    for name in ("W1", "b1", "W2", "b2", "x ", "y ", "float32", case.net.loss):
        assert name in text


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"depth": 0}, ValueError),
        ({"depth": (3, 2)}, ValueError),
        ({"width": (1, 2, 3)}, TypeError),
        ({"batch": 1.5}, TypeError),
        ({"activations": ["relu", "swish"]}, ValueError),
        ({"activations": []}, ValueError),
        ({"losses": [3]}, TypeError),
        ({"reductions": "max"}, ValueError),
        ({"dtype": "float16"}, TypeError),
        ({"dtype": "int"}, TypeError),
    ],
)
def test_bad_arguments_are_rejected(kwargs: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        strategies.cases(**kwargs)  # type: ignore[arg-type]


def test_params_and_batches_need_a_network() -> None:
    with pytest.raises(TypeError, match="net must be a crossgrad Network"):
        strategies.params((2, 1))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="net must be a crossgrad Network"):
        strategies.batches((2, 1))  # type: ignore[arg-type]


@given(strategies.layer_sizes(depth=(2, 3), width=(4, 6)))
def test_layer_sizes(sizes: tuple[int, ...]) -> None:
    assert len(sizes) in (3, 4)
    assert all(4 <= w <= 6 for w in sizes)


def test_a_deep_failure_shrinks_to_a_shallow_network() -> None:
    # Needs an elu layer somewhere: the smallest such network has one layer, of width 1.
    case = find(strategies.cases(), lambda c: "elu" in c.net.activations)
    assert case.net.sizes == (1, 1)
    assert case.net.activations == ("elu",)


@given(
    st.data(),
    st.lists(st.sampled_from(list(ACTIVATIONS)), min_size=1, max_size=3, unique=True),
    st.lists(st.sampled_from(list(ACTIVATIONS)), min_size=1, max_size=3, unique=True),
)
@settings(max_examples=max(10, N // 2))
def test_hidden_and_output_activations_are_drawn_per_position(
    data: st.DataObject, hidden: list[str], output: list[str]
) -> None:
    case = data.draw(
        strategies.cases(hidden_activations=hidden, output_activation=output, depth=(1, 4))
    )
    assert set(case.net.activations[:-1]) <= set(hidden)
    if case.net.loss == "binary_cross_entropy":  # only drawn when its sigmoid is allowed
        assert "sigmoid" in output
    assert case.net.activations[-1] in output


def test_depth_one_networks_have_only_an_output_layer() -> None:
    positions = strategies.cases(hidden_activations="relu", output_activation="tanh")
    case = find(positions, lambda c: c.net.n_layers == 1, settings=NO_SHRINK)
    assert case.net.activations == ("tanh",)
    deep = find(positions, lambda c: c.net.n_layers == 3, settings=NO_SHRINK)
    assert deep.net.activations == ("relu", "relu", "tanh")


def test_networks_take_the_per_position_restrictions_too() -> None:
    net = find(
        strategies.networks(hidden_activations="sigmoid", output_activation="identity"),
        lambda n: n.n_layers == 2,
        settings=NO_SHRINK,
    )
    assert net.activations == ("sigmoid", "identity")


def _kinked_units(case: Case) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``(z, margin, zeroed)`` of each kinked layer, in float64: its pre-activations, the
    margin ``KINK_MARGIN / 4 · max terms`` per unit (far beyond any rounding error of the
    terms summed) and which units have a zeroed row and bias."""
    net, params = case.net, case.params
    a = case.x.astype(np.float64)
    terms_in = np.abs(a)
    for W, b, name in zip(params.weights, params.biases, net.activations, strict=True):
        W64, b64 = W.astype(np.float64), b.astype(np.float64)
        z = a @ W64.T + b64
        terms = terms_in @ np.abs(W64).T + np.abs(b64)
        if name in strategies.KINKED:
            yield z, strategies.KINK_MARGIN / 4 * terms.max(axis=0), ~(W64.any(axis=1) | (b64 != 0))
        a = ACTIVATIONS[name].forward(z)
        terms_in = np.abs(a) + terms


@given(strategies.cases(kinks="avoid", activations=["relu", "leaky_relu", "tanh"]))
def test_kinks_avoid_keeps_every_kinked_preactivation_off_zero(case: Case) -> None:
    for z, margin, _ in _kinked_units(case):
        assert (np.abs(z) >= margin).all()


@given(
    strategies.cases(kinks="only", hidden_activations=["relu", "tanh"], output_activation="tanh")
)
def test_kinks_only_puts_an_exact_kink_in_every_case(case: Case) -> None:
    zs = _preactivations(case)
    assert case.net.n_layers >= 2  # the output layer cannot be kinked: a hidden layer is
    assert any(
        (z == 0).any()
        for name, z in zip(case.net.activations, zs, strict=True)
        if name in strategies.KINKED
    )


@given(strategies.cases(kinks="only", activations="leaky_relu", depth=1))
def test_kinks_only_may_kink_the_output_layer(case: Case) -> None:
    assert (_preactivations(case)[0] == 0).any()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"kinks": "sometimes"}, ValueError, "kinks must be one of"),
        ({"kinks": 1}, TypeError, "kinks must be one of"),
        ({"kinks": "only", "activations": "tanh"}, ValueError, "needs a kinked activation"),
        ({"kinks": "only", "hidden_activations": "relu", "output_activation": "tanh",
          "depth": 1}, ValueError, "needs a kinked activation"),
        ({"output_activation": "identity", "losses": "binary_cross_entropy"}, ValueError,
         "needs a sigmoid output"),
        ({"hidden_activations": "swish"}, ValueError, "unknown hidden_activations"),
        ({"output_activation": []}, ValueError, "output_activation must name"),
    ],
)  # fmt: skip
def test_bad_policies_and_positions_are_rejected(
    kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        strategies.cases(**kwargs)  # type: ignore[arg-type]


def test_a_deep_failure_still_shrinks_layer_by_layer_with_positions() -> None:
    # A tanh hidden layer is needed: the smallest network has exactly one, of width 1.
    case = find(
        strategies.cases(hidden_activations=["relu", "tanh"], output_activation="identity"),
        lambda c: "tanh" in c.net.activations and c.net.n_layers >= 2,
    )
    assert case.net.sizes == (1, 1, 1)
    assert case.net.activations == ("tanh", "identity")


class _Extremes:
    """A stand-in generator whose ``random`` returns 0 and the largest double below 1."""

    def random(self, shape: tuple[int, ...]) -> np.ndarray:
        values = np.zeros(shape)
        values.flat[1::2] = np.nextafter(1.0, 0.0)
        return values


@pytest.mark.parametrize("resolution", range(1, strategies.MAX_RESOLUTION + 1))
@pytest.mark.parametrize("low", [-1, 0])
def test_grid_values_stay_on_the_grid_even_at_the_ends(resolution: int, low: int) -> None:
    steps = 2**resolution
    scale = 0.25
    ends = strategies._grid(_Extremes(), (2, 3), resolution, low, scale)  # type: ignore[arg-type]
    assert set(ends.ravel().tolist()) == {low * scale, scale}  # both ends, never beyond
    drawn = strategies._grid(np.random.default_rng(resolution), (64, 64), resolution, low, scale)
    k = drawn / scale * steps
    assert np.array_equal(k, np.round(k))
    assert k.min() >= low * steps
    assert k.max() <= steps
    assert np.array_equal(drawn.astype(np.float32).astype(np.float64), drawn)


def test_layer_arrays_zero_whole_units() -> None:
    # seed % 3 == 2: up to two units on a kink, weights and bias together.
    W, b = strategies._layer_arrays(5, 8, seed=2, resolution=4, kinks="include")
    assert W.shape == (8, 5)
    assert b.shape == (8,)
    zero_rows = np.flatnonzero(~W.any(axis=1))
    assert zero_rows.size >= 1
    assert (b[zero_rows] == 0).all()


@given(strategies.cases(kinks="include", activations=["relu", "leaky_relu", "tanh", "identity"]))
def test_kinks_include_puts_kinked_units_exactly_on_their_kink_or_clearly_off_it(
    case: Case,
) -> None:
    # On the kink by construction (a zeroed row and bias), or beyond the margin: never near
    # 0 by chance, where frameworks could round to different sides.
    for z, margin, zeroed in _kinked_units(case):
        assert (zeroed | (np.abs(z) >= margin).all(axis=0)).all()
