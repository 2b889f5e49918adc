"""Hints on code written as third-party code is: each is right on the case shown.

The implementations are in ``realistic.py``.  Every expectation names hint codes, the stable
part of a hint; the texts are checked only where they carry a number the user needs.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import realistic
from scipy import special

from crossgrad import reference, testing
from crossgrad.reference import Network, Params

# relu hidden layers and an identity output: the architecture most real code has.
MLP = {
    "hidden_activations": "relu",
    "output_activation": "identity",
    "losses": "half_sse",
    "reductions": "mean",
    "weights": "in_out",
    "max_examples": 200,
    "seed": 3,
}
GRADIENT_CODES = {
    "sign",
    "transposed",
    "first_sample_only",
    "last_sample_only",
    "missing_activation_derivative",
    "derivative_at_activation",
    "activation_derivative_twice",
    "kink_convention",
    "float32_precision",
    "factor_constant",
    "wrong_layer",
}


def _failure(fn: Any, **kwargs: Any) -> testing.Failure:
    with pytest.raises(testing.GradientMismatchError) as caught:
        testing.check_implementation(fn, **{**MLP, **kwargs})
    return caught.value.failure


def _codes(failure: testing.Failure) -> list[str]:
    return [h.code for h in failure.hints]


def test_a_correct_layer_mlp_passes() -> None:
    result = testing.check_implementation(realistic.wrap_layer_mlp, **MLP)
    assert result.cases == 200


def test_a_loss_averaged_over_outputs_is_named_with_no_gradient_hint() -> None:
    failure = _failure(realistic.wrap_layer_mlp_loss_over_outputs)
    assert failure.wrong == ("loss",)
    assert failure.case.net.sizes[-1] >= 2
    codes = _codes(failure)
    assert codes[0] == "not_own_derivative"  # the code disagrees with itself: said first
    assert "factor_inverse_n_outputs" in codes
    assert not {"factor_half", "factor_inverse_batch"} & set(codes)  # told apart
    assert not GRADIENT_CODES & set(codes)
    assert failure.self_consistent is False


def test_half_mean_is_one_over_n_outputs_for_half_sse_and_a_half_for_mse() -> None:
    failure = _failure(realistic.wrap_layer_mlp_half_mean)
    assert failure.self_consistent is True  # its gradients are those of its own loss
    assert set(_codes(failure)) == {"factor_inverse_n_outputs"}
    assert {"loss", "W1"} <= set(failure.wrong)
    failure = _failure(realistic.wrap_layer_mlp_half_mean, losses="mse")
    # mse averages over outputs already: what is left is the ½.
    assert set(_codes(failure)) == {"factor_half"}


def test_a_mean_over_the_batch_under_reduction_sum_is_told_from_a_half() -> None:
    def mean_for_sum(net: Network, params: Any, x: Any, y: Any) -> Any:
        out = reference.backprop(net, params, x, y)
        n = len(x)
        return out.loss / n, [g / n for g in out.grads.weights], [g / n for g in out.grads.biases]

    failure = _failure(mean_for_sum, reductions="sum", weights="out_in")
    assert failure.case.batch == 2
    assert set(_codes(failure)) == {"factor_inverse_batch"}


def test_a_gradient_of_another_function_is_not_its_own_derivative() -> None:
    failure = _failure(realistic.wrap_layer_mlp_other_function)
    assert _codes(failure) == ["not_own_derivative"]
    assert failure.self_consistent is False
    assert "are NOT the derivative of your own loss" in str(failure)


def test_relu_at_zero_one_half_is_named_as_a_kink_convention() -> None:
    failure = _failure(realistic.wrap_layer_mlp_tie_split)
    assert _codes(failure) == ["kink_convention"]
    text = str(failure.hints[0])
    assert "relu'(0) = 0.5 (the mean of both slopes)" in text
    assert "relu'(0) = 0" in text
    assert "kinks='avoid'" in text  # not set: suggested


def test_with_kinks_avoid_relu_at_zero_one_half_passes_2000_cases() -> None:
    result = testing.check_implementation(
        realistic.wrap_layer_mlp_tie_split,
        **{**MLP, "max_examples": 2000, "seed": 11},
        kinks="avoid",
        depth=(1, 3),
        width=(1, 3),
        batch=(1, 4),
    )
    assert result.cases == 2000


def test_with_kinks_only_the_convention_is_found_at_once() -> None:
    failure = _failure(realistic.wrap_layer_mlp_tie_split, kinks="only")
    assert _codes(failure) == ["kink_convention"]
    assert "kinks='avoid'" in str(failure.hints[0])


def test_leaky_relu_at_zero_zero_is_named() -> None:
    failure = _failure(
        realistic.leaky_relu_zero_at_kink,
        activations="leaky_relu",
        hidden_activations=None,
        output_activation=None,
        weights="out_in",
    )
    assert _codes(failure) == ["kink_convention"]
    assert "leaky_relu'(0) = 0 (zero)" in str(failure.hints[0])
    assert "leaky_relu'(0) = 0.01" in str(failure.hints[0])


COLUMN_SIGMOID = {
    "activations": "sigmoid",
    "hidden_activations": None,
    "output_activation": None,
    "weights": "out_in",
    "samples": "columns",
}
"""The restrictions for ``realistic.column_sigmoid`` and its planted bugs."""


def test_a_derivative_applied_twice_is_named_not_a_constant_factor() -> None:
    failure = _failure(realistic.column_sigmoid_twice, **COLUMN_SIGMOID)
    codes = _codes(failure)
    assert "activation_derivative_twice" in codes
    assert "factor_constant" not in codes
    assert codes[0] == "not_own_derivative"


def test_a_bias_gradient_not_summed_over_the_batch_is_named_when_its_sum_is_right() -> None:
    failure = _failure(realistic.column_sigmoid_bias_per_sample, **COLUMN_SIGMOID)
    batch, layers = failure.case.x.shape[0], failure.case.net.n_layers
    assert batch >= 2  # one sample is summed already: that case passes
    assert _codes(failure) == ["bias_not_summed"]
    assert f"∂L/∂b{layers} has shape ({failure.case.net.sizes[-1]}, {batch}), one column per" in (
        str(failure.hints[0])
    )


def test_a_bias_gradient_of_the_per_sample_shape_but_wrong_values_gets_no_such_hint() -> None:
    def per_sample_but_doubled(net: Network, params: Params, x: np.ndarray, y: np.ndarray) -> Any:
        loss, dWs, dbs = realistic.column_sigmoid_bias_per_sample(net, params, x, y)
        return loss, dWs, [*dbs[:-1], 2 * dbs[-1]]

    failure = _failure(per_sample_but_doubled, **COLUMN_SIGMOID)
    assert "bias_not_summed" not in _codes(failure)  # the sum is not the reference's: silent


def test_a_wrong_hidden_layer_is_named_with_delta_written_in_the_users_layout() -> None:
    def tanh_one_minus_a(net: Network, params: Params, x: np.ndarray, y: np.ndarray) -> Any:
        # Columns, z = W a + b, tanh hidden and identity output, ½‖ŷ − y‖² averaged; the
        # hidden derivative written 1 − a where it is 1 − a².
        a, acts = x, [x]
        for l, (W, b) in enumerate(params):
            z = W @ a + b
            a = np.tanh(z) if l < len(params) - 1 else z
            acts.append(a)
        delta = (a - y) / x.shape[1]
        dWs, dbs = [], []
        for l in reversed(range(len(params))):
            dWs.insert(0, delta @ acts[l].T)
            dbs.insert(0, delta.sum(axis=1, keepdims=True))
            if l:
                delta = (params.weights[l].T @ delta) * (1 - acts[l])
        return 0.5 * float(np.sum((a - y) ** 2)) / x.shape[1], dWs, dbs

    failure = _failure(
        tanh_one_minus_a, hidden_activations="tanh", depth=2, weights="out_in", samples="columns"
    )
    wrong_layer = [str(h) for h in failure.hints if h.code == "wrong_layer"]
    assert wrong_layer == [
        "layer 2 is right and layer 1 is wrong: check how δ is carried back, δ1 = (W2ᵀ δ2) ∘ f'(z1)"
    ]


def test_every_hint_is_a_string_with_a_documented_code() -> None:
    failure = _failure(realistic.wrap_layer_mlp_loss_over_outputs)
    for hint in failure.hints:
        assert isinstance(hint, str)
        assert hint.code in testing.CODES
        assert hint.to_dict() == {"code": hint.code, "text": str(hint)}


def test_a_loss_off_by_an_unusual_constant_reports_the_ratio() -> None:
    def thirds(net: Network, params: Any, x: Any, y: Any) -> Any:
        out = reference.backprop(net, params, x, y)
        return out.loss / 3, out.grads.weights, out.grads.biases

    failure = _failure(thirds, weights="out_in")
    assert "loss_ratio" in _codes(failure)
    assert "0.333333 × the reference's on every case tried" in str(failure)


def test_the_self_consistency_check_passes_a_consistent_scaled_code() -> None:
    def doubled(net: Network, params: Any, x: Any, y: Any) -> Any:
        out = reference.backprop(net, params, x, y)
        return 2 * out.loss, [2 * g for g in out.grads.weights], [2 * g for g in out.grads.biases]

    failure = _failure(doubled, weights="out_in")
    assert failure.self_consistent is True
    assert set(_codes(failure)) == {"factor_2"}


def test_float32_cases_skip_the_self_consistency_check() -> None:
    failure = _failure(realistic.wrap_layer_mlp_loss_over_outputs, dtype="float32")
    assert failure.self_consistent is None
    assert "factor_inverse_n_outputs" in _codes(failure)
    assert np.dtype(failure.case.dtype) == np.float32


def test_right_values_in_the_wrong_dtype_get_only_a_dtype_hint() -> None:
    def promoted(net: Network, params: Any, x: Any, y: Any) -> Any:
        out = reference.backprop(net, params, x, y)
        return out.loss, [g.astype(np.float64) for g in out.grads.weights], out.grads.biases

    failure = _failure(promoted, dtype="float32", weights="out_in")
    assert _codes(failure) == ["wrong_dtype"]
    assert "in float64 instead of the params' float32" in str(failure.hints[0])


def test_half_sse_code_checked_as_mse_is_a_product_of_two_factors() -> None:
    # ½‖ŷ − y‖² where mse is mean_j (ŷ_j − y_j)²: O/2, told apart by the follow-up cases.
    failure = _failure(realistic.wrap_layer_mlp, losses="mse")
    codes = _codes(failure)
    assert codes[:2] == ["factor_half", "factor_n_outputs"]
    assert "the product of two factors" in str(failure.hints[0])
    assert failure.self_consistent is True
    assert not {"factor_inverse_batch", "factor_constant"} & set(codes)


def _clipped_log_loss(kind: str, clip: float | None = None) -> Any:
    """The reference's gradients with a log loss computed as libraries do: the probabilities
    clipped to [ε, 1 − ε] (``clip`` ε, ``None``: machine epsilon), or the logarithms floored
    at −100 (``clip`` 0)."""

    def fn(net: Network, params: Any, x: Any, y: Any) -> Any:
        out = reference.backprop(net, params, x, y)
        z = np.atleast_2d(out.preactivations[-1]).astype(np.float64)
        if kind == "binary_cross_entropy":
            with np.errstate(divide="ignore", over="ignore"):
                p = 1 / (1 + np.exp(-z))
                if clip == 0:
                    log_p = np.maximum(np.log(p), -100.0)
                    log_q = np.maximum(np.log(1 - p), -100.0)
                else:
                    eps = np.finfo(np.float64).eps if clip is None else clip
                    p = np.clip(p, eps, 1 - eps)
                    log_p, log_q = np.log(p), np.log(1 - p)
            per_sample = -(y * log_p + (1 - y) * log_q).mean(axis=1)
        else:
            shifted = z - z.max(axis=1, keepdims=True)
            p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
            eps = np.finfo(np.float64).eps if clip is None else clip
            per_sample = -(y * np.log(np.clip(p, eps, 1 - eps))).sum(axis=1)
        loss = per_sample.mean() if net.reduction == "mean" else per_sample.sum()
        return float(loss), out.grads.weights, out.grads.biases

    return fn


LOG_LOSS = {"weights": "out_in", "far_out": True, "hidden_activations": ["tanh", "relu"]}


@pytest.mark.parametrize(
    ("kind", "output", "clip", "words"),
    [
        ("binary_cross_entropy", "sigmoid", None, "ε = 2.22e-16 (the dtype's machine epsilon)"),
        (
            "binary_cross_entropy",
            "sigmoid",
            0,
            "floors the logarithms at -100: where a probability comes within e^-100 of 0 or 1",
        ),
        # A softmax over one output is 1: clipped at 1 − ε, a loss of 0 becomes ε, which
        # the hint names rather than float32 rounding.
        ("softmax_cross_entropy", "identity", 1e-7, "ε = 1e-07"),
    ],
)
def test_a_log_loss_with_clipped_probabilities_is_named(
    kind: str, output: str, clip: float | None, words: str
) -> None:
    fn = _clipped_log_loss(kind, clip)
    failure = _failure(fn, losses=kind, output_activation=output, **LOG_LOSS)
    assert failure.wrong == ("loss",)
    assert "clipped_log" in _codes(failure)
    assert "float32_precision" not in _codes(failure)
    assert words in str(failure)


def test_clipping_at_machine_epsilon_bites_only_far_out() -> None:
    fn = _clipped_log_loss("binary_cross_entropy")
    bce = {**MLP, "losses": "binary_cross_entropy", "output_activation": "sigmoid", **LOG_LOSS}
    assert testing.check_implementation(fn, **{**bce, "far_out": False}).ok
    assert "clipped_log" in _codes(_failure(fn, **bce))


def test_a_clip_the_hint_does_not_try_is_not_named() -> None:
    # Clipped at 1e-10, which is none of CLIPS: the loss still fails far out, and the hint
    # stays silent rather than name an ε the code does not use.
    fn = _clipped_log_loss("binary_cross_entropy", 1e-10)
    failure = _failure(fn, losses="binary_cross_entropy", output_activation="sigmoid", **LOG_LOSS)
    assert failure.wrong == ("loss",)
    assert "clipped_log" not in _codes(failure)


def _bce_on_probabilities(floor: float) -> Callable[..., Any]:
    """A NumPy MLP (``W`` as ``(out, in)``, tanh hidden layers, a sigmoid output) whose binary
    cross-entropy takes the probabilities and divides ``∂ℓ/∂p = (p − y) / max(p(1 − p),
    floor)``, then multiplies by ``σ'(z) = p(1 − p)``, as a framework's separate sigmoid and
    BCE backward do.  Its loss is exact (on the logits)."""

    def backprop(net: Network, params: Any, x: Any, y: Any) -> Any:
        activations, zs = [x], []
        for l, (W, b) in enumerate(zip(params.weights, params.biases, strict=True)):
            z = activations[-1] @ W.T + b
            zs.append(z)
            activations.append(np.tanh(z) if l < len(params.weights) - 1 else special.expit(z))
        p, z = activations[-1], zs[-1]
        batch, outputs = y.shape
        per_sample = (np.logaddexp(0, z) - y * z).mean(axis=1)  # −y log p − (1 − y) log(1 − p)
        pq = p * (1 - p)
        delta = (p - y) / np.maximum(pq, floor) * pq / (outputs * batch)
        weight_grads, bias_grads = [], []
        for l in reversed(range(len(params.weights))):
            weight_grads.insert(0, delta.T @ activations[l])
            bias_grads.insert(0, delta.sum(axis=0))
            if l > 0:
                delta = (delta @ params.weights[l]) * (1 - activations[l] ** 2)
        return float(per_sample.mean()), weight_grads, bias_grads

    return backprop


def _bce_case(dtype: str, z_far: float) -> tuple[Network, Params, Any, Any]:
    """One sigmoid unit under the binary cross-entropy, two samples: ``z = −8`` (p ≈ 3e-4) and
    ``z = z_far`` for ``W = 16, b = −16``."""
    net = Network((1, 1), activation="sigmoid", loss="binary_cross_entropy", reduction="mean")
    params = Params([np.array([[16.0]], dtype)], [np.array([-16.0], dtype)])
    x = np.array([[0.5], [(z_far + 16) / 16]], dtype)
    y = np.array([[0.0], [0.5]], dtype)
    return net, params, x, y


def _bce_failure(fn: Any, dtype: str = "float64", z_far: float = -32.0) -> testing.Failure:
    with pytest.raises(testing.GradientMismatchError) as caught:
        testing.assert_gradients_match(fn, *_bce_case(dtype, z_far))
    return caught.value.failure


def test_a_bce_backward_with_torchs_floor_is_named() -> None:
    # At z = −32, p(1 − p) ≈ 1.3e-14: floored at torch's 1e-12 (the float, 9.99999996e-13 in
    # float64 too), that sample's part of the gradients is 79 times too small.
    fn = _bce_on_probabilities(float(np.float32(1e-12)))
    testing.assert_gradients_match(fn, *_bce_case("float64", -8.0))  # no floor reached: exact
    failure = _bce_failure(fn)
    assert failure.wrong == ("W1", "b1")
    assert _codes(failure) == ["not_own_derivative", "bce_backward_epsilon"]
    assert "max(p(1 − p), 1e-12)" in str(failure)


def test_a_bce_backward_with_another_floor_is_not_named() -> None:
    # A floor of 1e-10: the gradients are wrong there too, and the hint stays silent rather
    # than name torch's floor, which the code does not use.
    failure = _bce_failure(_bce_on_probabilities(1e-10))
    assert "bce_backward_epsilon" not in _codes(failure)


def test_gradients_left_out_where_a_probability_rounded_are_named() -> None:
    # At z = −1040, p is exactly 0: a floor of 1e-300 gives that sample's part a gradient of
    # 0, and nowhere else differs from the exact one (no p(1 − p) between 0 and 1e-300 in
    # the cases tried), so the hint names the saturation, not torch's floor.
    failure = _bce_failure(_bce_on_probabilities(1e-300), z_far=-1040.0)
    assert failure.wrong == ("W1", "b1")
    assert "saturated_probability" in _codes(failure)
    assert "bce_backward_epsilon" not in _codes(failure)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_torchs_bce_loss_on_probabilities_is_named(dtype: str) -> None:
    pytest.importorskip("torch")
    path = Path(__file__).resolve().parent.parent / "docs" / "examples" / "torch_bce.py"
    spec = importlib.util.spec_from_file_location("torch_bce_example", path)
    assert spec is not None
    assert spec.loader is not None
    torch_bce = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(torch_bce)  # the example module the docs show, as it is

    # The docs' network has a tanh layer; on one sigmoid unit it is the same code.
    failure = _bce_failure(torch_bce.bce, dtype)
    assert "bce_backward_epsilon" in _codes(failure)
    testing.assert_gradients_match(torch_bce.bce_with_logits, *_bce_case(dtype, -32.0))
    # At z = 40, σ(z) rounds to 1: the gradient of that sample is 0 (and the loss clamps its
    # logarithm), where the logits version keeps both.
    failure = _bce_failure(torch_bce.bce, dtype, z_far=40.0)
    assert "saturated_probability" in _codes(failure)
    testing.assert_gradients_match(torch_bce.bce_with_logits, *_bce_case(dtype, 40.0))


def _torch_mlp(hidden: Callable[[Any], Any]) -> Callable[..., Any]:
    """A torch MLP as users write it: ``hidden`` between the layers, an identity output,
    ½‖ŷ − y‖² averaged over the batch; autograd gives the gradients."""
    torch = pytest.importorskip("torch")

    def backprop(net: Network, params: Any, x: Any, y: Any) -> Any:
        weights = [torch.tensor(W, requires_grad=True) for W in params.weights]
        biases = [torch.tensor(b, requires_grad=True) for b in params.biases]
        a = torch.tensor(x)
        for l, (W, b) in enumerate(zip(weights, biases, strict=True)):
            a = a @ W.T + b
            a = a if l == len(weights) - 1 else hidden(a)
        loss = 0.5 * ((a - torch.tensor(y)) ** 2).sum(dim=1).mean()
        loss.backward()
        return loss.item(), [W.grad.numpy() for W in weights], [b.grad.numpy() for b in biases]

    return backprop


VARIANT_RUN = {
    "weights": "out_in",
    "output_activation": "identity",
    "losses": "half_sse",
    "reductions": "mean",
    "depth": (2, 3),
    "max_examples": 100,
    "seed": 0,
    "kinks": "avoid",
}


@pytest.mark.parametrize(
    ("activation", "hidden", "code", "words"),
    [
        ("gelu", lambda F, z: F.gelu(z, approximate="tanh"), "gelu_tanh_approximation",
         "your gelu is the tanh approximation"),
        ("leaky_relu", lambda F, z: F.leaky_relu(z, 0.2), "leaky_relu_slope",
         "your leaky_relu has slope 0.2 below 0 (tf.nn.leaky_relu's default)"),
        ("softplus", lambda F, z: F.softplus(z), "softplus_threshold",
         "your softplus returns z itself where z > 20 (torch's softplus, threshold=20)"),
    ],
)  # fmt: skip
def test_another_librarys_activation_is_named_alone(
    activation: str, hidden: Callable[[Any, Any], Any], code: str, words: str
) -> None:
    # Agreeing to float32 precision, such code was called float32 rounding before.
    functional = pytest.importorskip("torch.nn.functional")
    far = {"far_out": True} if activation == "softplus" else {}  # (z > 20 needs far-out cases)
    fn = _torch_mlp(lambda z: hidden(functional, z))
    failure = _failure(fn, **{**VARIANT_RUN, "hidden_activations": activation, **far})
    assert _codes(failure) == [code]
    assert str(failure.hints[0]).startswith(words)
    assert "yours is the reference computed with it; on every case tried" in failure.hints[0]


def test_the_same_mlp_with_the_references_definitions_agrees() -> None:
    # torch's own gelu and leaky_relu are the reference's; its softplus without the threshold
    # overflows (log1p(exp(z))): a stable exact one is logaddexp(z, 0).
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    for activation, hidden in (
        ("gelu", functional.gelu),
        ("leaky_relu", functional.leaky_relu),
        ("softplus", lambda z: torch.logaddexp(z, torch.zeros_like(z))),
    ):
        run = {**VARIANT_RUN, "hidden_activations": activation, "far_out": True}
        assert testing.check_implementation(_torch_mlp(hidden), **run).ok


def _jax_mlp(net: Network, params: Any, x: Any, y: Any) -> Any:
    """A JAX MLP (relu hidden layers, identity output, ½‖ŷ − y‖² averaged over the batch)."""
    jax = pytest.importorskip("jax")
    jnp = jax.numpy

    def loss(weights: Any, biases: Any) -> Any:
        a = jnp.asarray(x)
        for l, (W, b) in enumerate(zip(weights, biases, strict=True)):
            a = a @ W.T + b
            a = a if l == len(weights) - 1 else jax.nn.relu(a)
        return jnp.mean(0.5 * jnp.sum((a - y) ** 2, axis=1))

    arrays = [[jnp.asarray(a) for a in group] for group in (params.weights, params.biases)]
    value, (weights, biases) = jax.value_and_grad(loss, argnums=(0, 1))(*arrays)
    return value, weights, biases


def test_jax_arrays_in_float32_name_jaxs_64_bit_mode() -> None:
    jax = pytest.importorskip("jax")
    # Small shapes: eager JAX compiles each operation anew for every new shape.
    small = {"width": (1, 2), "depth": (1, 2), "batch": (1, 2)}
    run = {**MLP, **small, "weights": "out_in", "max_examples": 20, "seed": 0}
    was = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", False)  # as JAX ships
    try:
        failure = _failure(_jax_mlp, **run)
    finally:
        jax.config.update("jax_enable_x64", was)
    assert len(failure.hints) == 1
    assert failure.hints[0].code in {"wrong_dtype", "float32_precision"}
    assert "your arrays are JAX's, and JAX makes float32 arrays" in failure.hints[0]
    assert 'jax.config.update("jax_enable_x64", True)' in failure.hints[0]
    jax.config.update("jax_enable_x64", True)
    try:  # the same code, with JAX's 64-bit mode on for the process
        assert testing.check_implementation(_jax_mlp, **run).ok
    finally:
        jax.config.update("jax_enable_x64", was)


def test_jaxs_64_bit_mode_in_a_with_block_does_not_reach_the_worker_thread() -> None:
    # jax.enable_x64(True) is per thread: the user's function, run under the time limit in a
    # worker thread, still makes float32 arrays, and the hint says why; without the time
    # limit it runs in the caller's thread, and agrees.
    jax = pytest.importorskip("jax")
    small = {"width": (1, 2), "depth": (1, 2), "batch": (1, 2)}
    run = {**MLP, **small, "weights": "out_in", "max_examples": 20, "seed": 0}
    was = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", False)
    try:
        with jax.enable_x64(True):
            failure = _failure(_jax_mlp, **run)
            assert testing.check_implementation(_jax_mlp, **run, timeout=None).ok
    finally:
        jax.config.update("jax_enable_x64", was)
    assert len(failure.hints) == 1
    assert "it is on in the thread that called crossgrad, not in the worker thread" in str(
        failure.hints[0]
    )
    assert "timeout=None calls your function in your own thread" in failure.hints[0]


@pytest.mark.parametrize(("dtype", "narrow"), [("float64", "float32"), ("float32", "float16")])
def test_a_narrower_dtype_is_not_called_a_promotion(dtype: str, narrow: str) -> None:
    def demoted(net: Network, params: Any, x: Any, y: Any) -> Any:
        out = reference.backprop(net, params, x, y)
        return out.loss, [g.astype(narrow) for g in out.grads.weights], out.grads.biases

    failure = _failure(demoted, weights="out_in", dtype=dtype)
    assert _codes(failure) == ["wrong_dtype"]
    assert str(failure.hints[0]).startswith(
        f"the values are right, in {narrow} instead of the params' {dtype}: something converts "
        f"them (an array made with dtype=np.{narrow},"
    )


def _forward_differences(net: Network, params: Any, x: Any, y: Any) -> Any:
    """Gradients by forward differences of the loss (step 1e-7), all in float64."""
    base = reference.backprop(net, params, x, y).loss
    arrays = [a.copy() for a in (*params.weights, *params.biases)]
    grads = [np.zeros_like(a) for a in arrays]
    n = net.n_layers
    for a, g in zip(arrays, grads, strict=True):
        for i in np.ndindex(a.shape):
            kept, a[i] = a[i], a[i] + 1e-7
            moved = reference.backprop(net, Params(arrays[:n], arrays[n:]), x, y).loss
            g[i] = (moved - base) / 1e-7
            a[i] = kept
    return base, grads[:n], grads[n:]


def test_float32_is_claimed_only_where_the_values_are_float32_numbers() -> None:
    # Forward differences are right to about float32 precision too, in float64: the hint
    # must not tell that code it computes in float32.
    run = {**MLP, "weights": "out_in", "hidden_activations": "tanh", "seed": 0}
    approximated = _failure(_forward_differences, **run)
    assert _codes(approximated) == ["float32_precision"]
    assert "or the gradients are approximated (finite differences" in approximated.hints[0]
    assert "every value you return is a float32 number" not in approximated.hints[0]

    def in_float32(net: Network, params: Any, x: Any, y: Any) -> Any:
        out = reference.backprop(net, *(
            Params([W.astype(np.float32) for W in params.weights],
                   [b.astype(np.float32) for b in params.biases]),
            x.astype(np.float32), y.astype(np.float32)))  # fmt: skip
        as64 = [g.astype(np.float64) for g in (*out.grads.weights, *out.grads.biases)]
        return out.loss, as64[: net.n_layers], as64[net.n_layers :]

    computed = _failure(in_float32, **run)
    assert set(_codes(computed)) == {"float32_precision"}
    texts = [str(h) for h in computed.hints]  # the loss's hint, then the gradients'
    assert any(
        t.endswith("it is a float32 number: something computes it in float32") for t in texts
    )
    assert any("every value you return is a float32 number: something computes" in t for t in texts)
