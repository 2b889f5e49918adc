"""The framework adapters as a whole: what is available, the same answers as the reference on
every activation and loss, the reference's conventions at kinks and extremes, the same errors
on bad input, and nothing the caller passed is modified."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from crossgrad import adapters
from crossgrad.benchmarks.crosscheck_throughput import targets
from crossgrad.reference import ACTIVATIONS, LOSSES, Network, Params, backprop, init_params

FRAMEWORKS = ("torch", "jax")

# (hidden activation, output activation, loss): every activation in both places, every loss.
CASES = [
    (act, act, loss)
    for act in ACTIVATIONS
    for loss in LOSSES
    if LOSSES[loss].output_activation in (None, act)
] + [(act, "sigmoid", "binary_cross_entropy") for act in ACTIVATIONS if act != "sigmoid"]


def _case(hidden: str, output: str, loss: str, reduction: str, dtype: type, single: bool):
    net = Network((3, 4, 2), (hidden, output), loss, reduction)
    rng = np.random.default_rng(list(ACTIVATIONS).index(hidden) + 10 * list(LOSSES).index(loss))
    params = init_params(net, rng, dtype)
    params = Params([3 * W for W in params.weights], params.biases)  # z of order ±3: past kinks
    batch = (1,) if single else (5,)
    x = rng.normal(0, 1, (*batch, 3))
    y = targets(loss, rng, (*batch, 2))
    return net, params, (x[0], y[0]) if single else (x, y)


@pytest.mark.parametrize("single", [False, True], ids=["batch", "single"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("hidden", "output", "loss"), CASES)
def test_every_activation_and_loss_matches_reference(
    hidden, output, loss, dtype, reduction, single
):
    net, params, (x, y) = _case(hidden, output, loss, reduction, dtype, single)
    report = adapters.crosscheck(net, params, x, y, backends=FRAMEWORKS)
    report.raise_for_mismatch()
    ref = report.results["reference"]
    for name in FRAMEWORKS:
        got = report.results[name]
        assert isinstance(got.loss, float)
        for g, r in zip(
            (*got.grads.weights, *got.grads.biases, *got.preactivations, *got.activations),
            (*ref.grads.weights, *ref.grads.biases, *ref.preactivations, *ref.activations),
            strict=True,
        ):
            assert type(g) is np.ndarray
            assert (g.dtype, g.shape) == (np.dtype(dtype), r.shape)


def test_available_lists_installed_backends_in_order():
    available = adapters.available()
    assert {"reference", "torch", "jax", "numeric"} <= set(available)
    assert list(available) == [name for name in adapters.BACKENDS if name in available]
    for name in available:
        assert adapters.get(name).name == name
    assert adapters.defaults() == FRAMEWORKS


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_missing_framework_is_left_out_and_named(monkeypatch, framework):
    monkeypatch.setitem(sys.modules, framework, None)  # `import framework` now fails
    assert framework not in adapters.available()
    assert "numeric" in adapters.available()
    with pytest.raises(adapters.BackendImportError, match=re.escape(f"crossgrad[{framework}]")):
        adapters.get(framework)
    net, params = Network((2, 1)), Params([[[1.0, 2.0]]], [[0.0]])
    report = adapters.crosscheck(net, params, [1.0, 1.0], [0.0])
    assert report.backends == tuple(f for f in FRAMEWORKS if f != framework)


def test_a_framework_that_fails_to_import_names_its_backend(monkeypatch):
    def broken(module, package=None):
        raise ImportError("libtorch_cpu.so: cannot open shared object file")

    monkeypatch.setattr(adapters, "_LOADED", {})  # as in a process that has not loaded it
    monkeypatch.setattr(adapters.importlib, "import_module", broken)
    with pytest.raises(adapters.BackendImportError, match=r"libtorch_cpu\.so") as raised:
        adapters.get("torch")
    assert raised.value.backend == "torch"
    assert str(raised.value).startswith("the 'torch' backend could not be imported: ")


def test_unknown_backend_name():
    with pytest.raises(ValueError, match="unknown backend 'tensorflow'"):
        adapters.get("tensorflow")
    with pytest.raises(TypeError, match="name must be"):
        adapters.get(3)  # type: ignore[arg-type]


def test_importing_adapters_imports_no_framework():
    code = "import sys, crossgrad.adapters; print(sorted({'torch', 'jax'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- the reference's conventions, where frameworks have their own --------------------------


def _kink_case(activation: str, hidden: bool):
    """z exactly 0 in the layer of ``activation``: a zero weight row and a zero bias."""
    if hidden:
        net = Network((2, 2, 1), (activation, "identity"))
        params = Params([[[0.0, 0.0], [0.5, -1.0]], [[2.0, -1.0]]], [[0.0, 0.1], [0.3]])
    else:
        net = Network((2, 1), activation)
        params = Params([[[0.0, 0.0]]], [[0.0]])
    return net, params, np.array([[1.5, -2.0], [0.5, 1.0]]), np.array([[1.0], [2.0]])


@pytest.mark.parametrize("hidden", [False, True], ids=["output", "hidden"])
@pytest.mark.parametrize(("activation", "slope"), [("relu", 0.0), ("leaky_relu", 0.01)])
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_derivative_at_zero_is_the_references(framework, activation, slope, hidden):
    net, params, x, y = _kink_case(activation, hidden)
    got = adapters.get(framework).backprop(net, params, x, y)
    assert got.preactivations[0][:, 0].tolist() == [0.0, 0.0]
    # Output layer: ∂L/∂b = mean (ŷ − y)·f'(0) = mean(−y)·slope.
    # Hidden unit 0: ∂L/∂b1[0] = mean (ŷ − y)·W2[0, 0]·f'(0).
    ref = backprop(net, params, x, y)
    delta = ref.activations[-1][:, 0] - y[:, 0]
    weight = params.weights[1][0, 0] if hidden else 1.0
    np.testing.assert_array_equal(ref.grads.biases[0][0], np.mean(delta * weight * slope))
    adapters.crosscheck(net, params, x, y, backends=[framework]).raise_for_mismatch()
    assert got.grads.biases[0][0] == ref.grads.biases[0][0]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_softplus_has_no_threshold(framework):
    # torch's F.softplus returns z itself above z = 20; log(1 + e^z) differs from z by e^-z,
    # visible in float64 up to z ≈ 35.
    net = Network((1, 1), "softplus", "half_sse", "sum")
    params = Params([[[1.0]]], [[0.0]])
    x = np.linspace(20.5, 40, 40)[:, np.newaxis]
    report = adapters.crosscheck(net, params, x, np.zeros_like(x), backends=[framework])
    report.raise_for_mismatch()
    assert (report.results[framework].activations[1] > x).any()


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_gelu_is_exact_not_tanh(framework):
    net = Network((1, 1), "gelu")
    x = np.linspace(-3, 3, 13)[:, np.newaxis]
    report = adapters.crosscheck(net, Params([[[1.0]]], [[0.2]]), x, x, backends=[framework])
    report.raise_for_mismatch()


@pytest.mark.parametrize(("hidden", "output", "loss"), CASES)
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_extreme_preactivations_stay_finite(framework, hidden, output, loss):
    # |z| up to 1e6 in both layers; any overflow warning is an error under pytest's settings.
    net = Network((2, 2, 2), (hidden, output), loss)
    params = Params([[[1.0, 0.0], [0.0, -1.0]], [[1.0, 1.0], [-1.0, 1.0]]], [[0.0, 0.0]] * 2)
    x = np.array([[1e6, 1e6], [-1e6, -1e6], [1e6, -1e6], [3.0, -2.0]]) / 2
    y = targets(loss, np.random.default_rng(0), (4, 2))
    report = adapters.crosscheck(net, params, x, y, backends=[framework])
    report.raise_for_mismatch()
    got = report.results[framework]
    assert np.isfinite(got.loss)
    assert all(np.isfinite(g).all() for g in (*got.grads.weights, *got.grads.biases))


# --- boundaries ---------------------------------------------------------------------------

NET = Network((3, 2), "sigmoid", "binary_cross_entropy")
PARAMS = init_params(NET, seed=1)
X, Y = np.ones((4, 3)), np.full((4, 2), 0.5)
BAD_INPUTS = {
    "x width": (np.ones((4, 5)), Y),
    "x NaN": (np.where(np.eye(4, 3) > 0, np.nan, X), Y),
    "x 3-D": (np.ones((1, 4, 3)), Y),
    "x strings": (np.array([["a", "b", "c"]]), Y[:1]),
    "x float16": (X.astype(np.float16), Y),
    "y outside [0, 1]": (X, Y + 1),
    "y samples": (X, Y[:3]),
    "y single vs batch": (X, Y[0]),
    "params": (X, Y, init_params(Network((3, 3)), seed=0)),
}


@pytest.mark.parametrize("backend", ["reference", *FRAMEWORKS, "numeric", "crosscheck"])
@pytest.mark.parametrize("bad", BAD_INPUTS.values(), ids=BAD_INPUTS)
def test_bad_input_raises_the_references_error(backend, bad):
    x, y, params = (*bad, PARAMS)[:3]
    with pytest.raises((TypeError, ValueError)) as expected:
        backprop(NET, params, x, y)
    run = adapters.crosscheck if backend == "crosscheck" else adapters.get(backend).backprop
    with pytest.raises(type(expected.value), match=f"^{re.escape(str(expected.value))}$"):
        run(NET, params, x, y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_inputs_are_not_modified(dtype):
    net = Network((3, 4, 2), ("tanh", "identity"), "softmax_cross_entropy")
    params = init_params(net, seed=2, dtype=dtype)
    x, y = np.linspace(-1, 1, 6, dtype=dtype).reshape(2, 3), np.eye(2, dtype=dtype)
    arrays = (*params.weights, *params.biases, x, y)
    copies = [a.copy() for a in arrays]
    for a in arrays:
        a.flags.writeable = False  # any write raises; torch would warn on a read-only view
    report = adapters.crosscheck(net, params, x, y, backends=[*adapters.available()])
    report.raise_for_mismatch()
    for a, c in zip(arrays, copies, strict=True):
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_views_with_any_strides_are_read_correctly(framework):
    # Reversed (negative-stride) and every-other-column views: torch cannot wrap the first
    # without a copy, and neither framework may read past a view's strides.
    net = Network((3, 4, 2), ("tanh", "sigmoid"), "half_sse")
    rng = np.random.default_rng(5)
    W1, W2 = rng.normal(size=(4, 6))[::-1, ::2], rng.normal(size=(2, 4))[:, ::-1]
    b1, b2 = rng.normal(size=8)[::2], rng.normal(size=2)[::-1]
    x, y = rng.normal(size=(5, 3))[::-1], rng.normal(size=(10, 2))[::2]
    params = Params([W1, W2], [b1, b2])
    assert any(a.strides[-1] < 0 for a in (*params.weights, *params.biases, x))
    report = adapters.crosscheck(net, params, x, y, backends=[framework])
    report.raise_for_mismatch()
    contiguous = Params([W.copy() for W in (W1, W2)], [b.copy() for b in (b1, b2)])
    assert report.results["reference"].grads == backprop(net, contiguous, x.copy(), y.copy()).grads


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_worked_example_to_1e_12(framework):
    from crossgrad.reference import worked_example as we

    got = adapters.get(framework).backprop(we.NETWORK, we.PARAMS, we.X, we.Y)
    ref = backprop(we.NETWORK, we.PARAMS, we.X, we.Y)
    assert got.loss == pytest.approx(ref.loss, rel=1e-12, abs=0)
    pairs = [
        *zip(got.grads.weights, ref.grads.weights, strict=True),
        *zip(got.grads.biases, ref.grads.biases, strict=True),
        *zip(got.preactivations, ref.preactivations, strict=True),
        *zip(got.activations, ref.activations, strict=True),
    ]
    assert len(pairs) == 4 + 2 + 3
    for g, r in pairs:
        assert g.ndim == r.ndim
        assert g.dtype == np.float64
        np.testing.assert_allclose(g, r, rtol=1e-12, atol=0)
    assert [a.shape for a in got.activations] == [(4,), (3,), (2,)]
