"""One SGD training step per backend, each in its framework's idiomatic fast form.

Every backend is prepared once from the same ``Problem`` (NumPy params, ``x``, ``y``, ``lr``)
and returns a ``Step``: ``run()`` performs one forward pass, backward pass and parameter update
and keeps the updated parameters for the next call, as a training loop does.  Everything else
(conversion of the data, allocation of the parameters, tracing) happens in the factory, outside
the timed call.

- ``reference``: ``crossgrad.reference.train_step``, the textbook, validation included.
- ``numpy``: the fast NumPy backend's ``train_step`` (``crossgrad.adapters.get("numpy")``),
  the same public contract, validation included.
- ``torch``: eager PyTorch on plain tensors (``F.linear``), ``torch.autograd.grad`` for the
  gradients (no ``.grad`` to zero) and an in-place update under ``torch.no_grad``.
- ``torch.compile``: the same step function compiled by ``torch.compile`` (inductor).
- ``jax.jit``: ``jax.value_and_grad`` and the update in one jitted function whose parameter
  buffers are donated, so XLA updates them in place.

torch and jax are optional: ``available()`` says which backends this environment can run.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from crossgrad import reference
from crossgrad.reference import Network, Params, init_params

from .cases import Case

BACKENDS = ("reference", "numpy", "torch", "torch.compile", "jax.jit")
LR = 0.01
"""The learning rate of every benchmarked step: small enough that thousands of steps on one
batch stay far from overflow."""


@dataclass(frozen=True)
class Problem:
    """The network, initial parameters and data of one case, in NumPy (``x``: ``(batch, in)``)."""

    case: Case
    net: Network
    params: Params
    x: NDArray[np.floating]
    y: NDArray[np.floating]
    lr: float = LR


def make_problem(case: Case, seed: int = 0) -> Problem:
    """Reproducible parameters and data for ``case``: inputs ~ N(0, 1); one-hot targets for a
    classifier, U(0, 1) targets otherwise."""
    net = Network(case.sizes, activation=case.activations, loss=case.loss)
    rng = np.random.default_rng(seed)
    params = init_params(net, seed=rng, dtype=case.dtype)
    x = rng.standard_normal((case.batch, case.sizes[0])).astype(case.dtype)
    n_out = case.sizes[-1]
    if case.loss == "softmax_cross_entropy":
        y = np.eye(n_out, dtype=case.dtype)[rng.integers(0, n_out, size=case.batch)]
    else:
        y = rng.uniform(size=(case.batch, n_out)).astype(case.dtype)
    return Problem(case, net, params, x, y)


@dataclass(frozen=True)
class Step:
    """A prepared training step: ``run()`` does one step; ``sync()`` waits for queued work
    (JAX dispatches asynchronously); ``params()`` returns a copy of the current parameters in
    NumPy.  ``first``, when given, replaces ``run`` for the first step, the one that compiles.
    """

    run: Callable[[], object]
    sync: Callable[[], None]
    params: Callable[[], Params]
    first: Callable[[], object] | None = None

    def warm_up(self) -> None:
        """The first step (compilation included), waited for."""
        (self.first or self.run)()
        self.sync()


def available() -> dict[str, str | None]:
    """Each backend's availability: ``None`` if it can run here, else the reason it cannot."""
    reasons: dict[str, str | None] = {"reference": None, "numpy": None}
    for module, names in (("torch", ("torch", "torch.compile")), ("jax", ("jax.jit",))):
        missing = importlib.util.find_spec(module) is None
        for name in names:
            reasons[name] = f"{module} is not installed" if missing else None
    return reasons


@contextlib.contextmanager
def frameworks_configured() -> Iterator[None]:
    """The frameworks' settings every ``Step`` runs under, scoped to the ``with`` block.

    JAX creates float64 arrays only in x64 mode: ``jax.enable_x64(True)`` switches it on for
    this block (and this thread) alone, so the user's configuration is left as it was, and no
    per-call switch lands inside the timed step.  float32 arrays and a Python-float ``lr``
    stay float32 in x64 mode.
    """
    if importlib.util.find_spec("jax") is None:
        yield
        return
    import jax

    with jax.enable_x64(True):
        yield


def prepare(backend: str, problem: Problem) -> Step:
    """The ``Step`` of ``backend`` (one of ``BACKENDS``) for ``problem``; prepare and run it
    inside ``frameworks_configured()``."""
    if backend == "reference":
        return _numpy_step(problem, reference.train_step)
    if backend == "numpy":
        from crossgrad.adapters import numpy_backend

        return _numpy_step(problem, numpy_backend.train_step)
    if backend == "torch":
        return _torch_step(problem, compiled=False)
    if backend == "torch.compile":
        return _torch_step(problem, compiled=True)
    if backend == "jax.jit":
        return _jax_step(problem)
    raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")


TrainStep = Callable[[Network, Params, Any, Any, float], tuple[float, Params]]


def _numpy_step(problem: Problem, train_step: TrainStep) -> Step:
    net, x, y, lr = problem.net, problem.x, problem.y, problem.lr
    state = [problem.params]

    def run() -> float:
        loss, state[0] = train_step(net, state[0], x, y, lr)
        return loss

    def params_now() -> Params:
        return Params([W.copy() for W in state[0].weights], [b.copy() for b in state[0].biases])

    return Step(run, lambda: None, params_now)


def _torch_step(problem: Problem, compiled: bool) -> Step:
    import torch
    import torch.nn.functional as F  # noqa: N812 - torch's own convention

    act: dict[str, Callable[[Any], Any]] = {
        "identity": lambda z: z,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "relu": torch.relu,
    }
    activations = [act[name] for name in problem.case.activations]
    losses: dict[str, Callable[[Any, Any], Any]] = {
        "half_sse": lambda yhat, y: 0.5 * (yhat - y).square().sum(dim=1).mean(),
        "softmax_cross_entropy": F.cross_entropy,  # probability targets, mean over the batch
    }
    loss_fn = losses[problem.case.loss]
    # Copies: the NumPy arrays stay untouched by the in-place updates below.
    params = [torch.tensor(p, requires_grad=True) for p in _flat(problem.params)]
    x, y, lr = torch.from_numpy(problem.x), torch.from_numpy(problem.y), problem.lr

    def step() -> Any:
        a = x
        for l, f in enumerate(activations):
            a = f(F.linear(a, params[2 * l], params[2 * l + 1]))
        loss = loss_fn(a, y)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, grads, strict=True):
                p.sub_(g, alpha=lr)
        return loss.detach()

    def params_now() -> Params:
        return _unflat([p.detach().numpy().copy() for p in params])

    if not compiled:
        return Step(step, lambda: None, params_now)
    # Every case's `step` shares one code object, so dynamo would count each new case as a
    # recompilation and fall back to eager past its recompile limit: start each case afresh.
    torch._dynamo.reset()
    compiled_step = torch.compile(step)

    def first() -> Any:
        # Dynamo splits the step at torch.autograd.grad unless told to trace it; traced, the
        # forward, backward and update become one graph (it compiles on this first call).
        config = torch._dynamo.config
        if not hasattr(config, "trace_autograd_ops"):
            return compiled_step()
        with config.patch(trace_autograd_ops=True):
            return compiled_step()

    return Step(compiled_step, lambda: None, params_now, first)


def _jax_step(problem: Problem) -> Step:
    import jax
    import jax.numpy as jnp

    act: dict[str, Callable[[Any], Any]] = {
        "identity": lambda z: z,
        "sigmoid": jax.nn.sigmoid,
        "tanh": jax.numpy.tanh,
        "relu": jax.nn.relu,
    }
    activations = [act[name] for name in problem.case.activations]
    losses: dict[str, Callable[[Any, Any], Any]] = {
        "half_sse": lambda yhat, y: 0.5 * jnp.mean(jnp.sum(jnp.square(yhat - y), axis=1)),
        "softmax_cross_entropy": lambda z, y: (
            -jnp.mean(jnp.sum(y * jax.nn.log_softmax(z, axis=1), axis=1))
        ),
    }
    loss_of_output = losses[problem.case.loss]
    lr = problem.lr

    def loss_fn(params: list[Any], x: Any, y: Any) -> Any:
        a = x
        for l, f in enumerate(activations):
            a = f(a @ params[2 * l].T + params[2 * l + 1])
        return loss_of_output(a, y)

    def step(params: list[Any], x: Any, y: Any) -> tuple[Any, list[Any]]:
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        return loss, [p - lr * g for p, g in zip(params, grads, strict=True)]

    jitted = jax.jit(step, donate_argnums=0)  # donated: XLA may update the params in place
    state = [[jnp.array(p) for p in _flat(problem.params)]]  # copies: the buffers are donated
    x, y = jnp.asarray(problem.x), jnp.asarray(problem.y)

    def run() -> Any:
        loss, state[0] = jitted(state[0], x, y)
        return loss

    def sync() -> None:
        jax.block_until_ready(state[0])  # type: ignore[no-untyped-call, unused-ignore]

    return Step(run, sync, lambda: _unflat([np.array(p) for p in state[0]]))


def _flat(params: Params) -> list[NDArray[np.floating]]:
    """``[W1, b1, W2, b2, ...]``."""
    return [a for pair in params for a in pair]


def _unflat(arrays: list[Any]) -> Params:
    return Params(arrays[0::2], arrays[1::2])
