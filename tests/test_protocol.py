"""The backend protocol: every registered backend declares it and is called through it, the
framework backends share one signature for ``forward`` and ``loss``, and a user's function or
object becomes a backend."""

from __future__ import annotations

import importlib.util
import inspect
from types import SimpleNamespace

import numpy as np
import pytest

from crossgrad import adapters
from crossgrad.adapters import protocol
from crossgrad.reference import Network, backprop, check_inputs, init_params

NET = Network((3, 4, 2), ("tanh", "identity"), "mse", "sum")
PARAMS = init_params(NET, seed=3)
X, Y = np.linspace(-1, 1, 9).reshape(3, 3), np.linspace(0, 1, 6).reshape(3, 2)


@pytest.mark.parametrize("name", adapters.available())
def test_every_backend_satisfies_the_protocol(name):
    backend = adapters.get(name)
    assert isinstance(backend, protocol.Backend)
    assert isinstance(backend.capabilities, protocol.Capabilities)
    if backend.capabilities.many:
        assert callable(backend.backprop_many_checked)
    if backend.capabilities.asynchronous:
        assert callable(backend.start_checked)
    rtol, atol = backend.tolerance(NET, PARAMS.dtype, PARAMS, 1.0)
    assert rtol > 0
    assert atol >= 0
    batch = check_inputs(NET, PARAMS, X, Y)
    got = backend.backprop_checked(NET, PARAMS, batch)
    assert adapters.crosscheck(NET, PARAMS, X, Y, backends=[backend]).ok
    assert got.grads.sizes == PARAMS.sizes


def test_registered_modules_are_importable_or_left_out(monkeypatch):
    # Every module registered here exists: one registered without its module shows the rule.
    monkeypatch.setitem(adapters.BACKENDS, "ghost", adapters.Registered("ghost_backend"))
    missing = []
    for name, entry in adapters.BACKENDS.items():
        found = importlib.util.find_spec(f"crossgrad.adapters.{entry.module}") is not None
        if not found:
            missing.append(name)
            assert name not in adapters.available()
            with pytest.raises(ImportError, match=f"the '{name}' backend's module .* is missing"):
                adapters.get(name)
    assert "ghost" in missing  # the rule was applied, not only stated


def test_the_declared_capabilities():
    assert adapters.get("reference").capabilities == protocol.Capabilities()
    assert adapters.get("numeric").capabilities == protocol.Capabilities()
    assert adapters.get("torch").capabilities == protocol.Capabilities(many=True)
    assert adapters.get("jax").capabilities == protocol.Capabilities(
        many=True, asynchronous=True, compiles=True
    )
    for name, entry in adapters.BACKENDS.items():  # what a sweep imports first
        if name in adapters.available():
            assert entry.compiles == adapters.get(name).capabilities.compiles, name


def test_forward_and_loss_have_one_signature_in_every_backend():
    names = ["reference", "torch", "jax", "numeric"]
    forwards = {n: list(inspect.signature(adapters.get(n).forward).parameters) for n in names}
    losses = {n: list(inspect.signature(adapters.get(n).loss).parameters) for n in names}
    assert all(p == ["net", "weights", "biases", "x"] for p in forwards.values()), forwards
    assert all(p == ["net", "zs", "activations", "y"] for p in losses.values()), losses


@pytest.mark.parametrize("name", ["reference", "torch", "jax", "numeric"])
def test_forward_and_loss_give_the_references_loss(name):
    backend = adapters.get(name)
    to = {"torch": lambda a: __import__("torch").from_numpy(np.array(a))}.get(name, np.asarray)
    if name == "jax":
        import jax

        with jax.enable_x64(True):
            zs, acts = backend.forward(NET, [*PARAMS.weights], [*PARAMS.biases], X)
            value = float(backend.loss(NET, zs, acts, Y))
    else:
        weights, biases = [to(W) for W in PARAMS.weights], [to(b) for b in PARAMS.biases]
        zs, acts = backend.forward(NET, weights, biases, to(X))
        value = float(backend.loss(NET, zs, acts, to(Y)))
    assert len(zs) == NET.n_layers
    assert len(acts) == NET.n_layers + 1
    assert value == pytest.approx(backprop(NET, PARAMS, X, Y).loss, rel=1e-13, abs=0)


def test_a_function_and_an_object_become_implementations():
    def mine(net, params, x, y):
        return backprop(net, params, x, y)

    obj = SimpleNamespace(name="obj", backprop=mine)
    for given, name in ((mine, "mine"), (obj, "obj")):
        backend = protocol.as_backend(given)
        assert isinstance(backend, protocol.Implementation)
        assert backend.name == name
        assert backend.capabilities == protocol.Capabilities()
    report = adapters.crosscheck(NET, PARAMS, X[0], Y[0], backends=[mine, obj])
    assert report.ok
    assert report.backends == ("mine", "obj")
    assert report.results["mine"].activations[0].shape == (3,)  # one sample in, vectors out


@pytest.mark.parametrize("bad", [3, None, "torch"])
def test_what_is_not_a_backend_is_named(bad):
    with pytest.raises(TypeError, match="backend"):
        protocol.as_backend(bad)


def test_backends_must_be_a_sequence():
    with pytest.raises(TypeError, match="backends must be a sequence"):
        adapters.crosscheck(NET, PARAMS, X, Y, backends="torch")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"backends\[1\] must be a backend name"):
        adapters.crosscheck(NET, PARAMS, X, Y, backends=["torch", 3])
