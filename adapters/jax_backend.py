"""The network in JAX: the same mathematics as the reference, gradients by ``jax.value_and_grad``.

Nothing on this path is a hand-written derivative.  Where ``jax.nn`` follows another
convention than the reference, this module writes the reference's mathematics instead (each
case is commented).  float64 runs inside ``jax.enable_x64(True)``, a scoped switch: the user's
own JAX configuration is never changed.

Compiling once per bucket, not once per shape.  ``jax.jit`` compiles for every new shape
(about 0.2 s on a small network), so a sweep over random architectures would spend nearly all
its time compiling.  ``backprop`` therefore embeds each network in a padded one of a bucketed
size, compiled once per (depth, width, batch) bucket and dtype:

- every layer is padded to one square width (the next power of two of the widest layer, at
  least 32) with zero weights and biases, so padded units have ``z = 0`` and feed nothing;
- the network is padded in depth, to the next power of two and at least ``DEPTH_FLOOR``
  (8), by identity layers *in front* (``W = I``, ``b = 0``, identity activation), which pass
  ``x`` through exactly (``x·1 + 0 = x`` in floating point);
- the batch is padded with zero samples, to the next power of two and at least 16, whose loss
  is masked out;
- the activation of each layer and the loss are chosen at run time by ``lax.switch`` on an
  integer code, and the output width and batch size enter as masks, so none of them is part
  of the compiled shape.

The padded entries contribute exact zeros to every sum, so the real gradients are those of the
unpadded network; ``tests/test_jax_backend.py`` checks this against an exact-shape run
(``bucketed=False``) and against the reference.  Every network up to width 32, depth 8 and
batch 16 falls in one bucket per dtype, so ``crossgrad check`` with the default ranges
compiles two executables, which ``prepare`` starts before the first case is drawn.  The
trade: a compilation costs seconds (1.6-2.3 s for a bucket on a 2-core AMD EPYC, at
``COMPILER_OPTIONS``' level), and padding costs on every call of a shallow network (there,
interleaved: 626 against 319 µs a call for one layer in the depth-8 bucket and in its own,
577 against 395 µs for two, 656 against 632 µs for five).
"""

from __future__ import annotations

import collections
import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from numpy.typing import ArrayLike

from ..reference import LOSSES as REFERENCE_LOSSES
from ..reference import BackpropResult, Network, Params, init_params
from ..reference.validation import Batch
from . import _common, _jax_cache
from .protocol import Capabilities
from .tolerance import model_tolerance

name = "jax"
capabilities = Capabilities(many=True, asynchronous=True, compiles=True)
"""``start_checked`` dispatches to XLA and returns at once; ``backprop_many_checked`` keeps
``IN_FLIGHT`` cases dispatched ahead of the one it collects; ``prepare`` starts compiling a
bucket."""
tolerance = model_tolerance

Array = jax.Array

ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "identity": lambda z: z,
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,  # custom JVP: relu'(0) = 0, as the reference
    # jax.nn.leaky_relu selects with x >= 0, so its slope at 0 is 1; the reference takes 0.01.
    "leaky_relu": lambda z: jnp.where(z > 0, z, 0.01 * z),
    "softplus": jax.nn.softplus,  # logaddexp(z, 0): exact and stable, no threshold
    # expm1 only sees z ≤ 0: an overflowing discarded branch would give a NaN gradient.  Not
    # jnp.minimum(z, 0): JAX splits its gradient at the tie, which would make elu'(0) = 0.5.
    "elu": lambda z: jnp.where(z > 0, z, jnp.expm1(jnp.where(z > 0, 0.0, z))),
    "gelu": lambda z: jax.nn.gelu(z, approximate=False),  # the default is the tanh approximation
    "silu": jax.nn.silu,
}


def _masked_logits(logits: Array, mask: Array) -> Array:
    # Padded logits become a large finite negative number: exp() of it is 0, and no inf
    # enters a product (0 · inf would be NaN).
    return jnp.where(mask > 0, logits, np.finfo(logits.dtype).min / 4)


# Each loss takes the output (the logits z for binary_cross_entropy), the targets and a 0/1
# mask over the output units, all (batch, width); it returns the per-sample loss (batch,).
LOSSES: dict[str, Callable[[Array, Array, Array], Array]] = {
    "half_sse": lambda yhat, y, mask: 0.5 * jnp.sum(mask * (yhat - y) ** 2, axis=1),
    "mse": lambda yhat, y, mask: jnp.sum(mask * (yhat - y) ** 2, axis=1) / jnp.sum(mask, axis=1),
    # −[y log σ(z) + (1 − y) log(1 − σ(z))] = softplus(z) − y·z, for any z.
    "binary_cross_entropy": lambda z, y, mask: (
        jnp.sum(mask * (jax.nn.softplus(z) - y * z), axis=1) / jnp.sum(mask, axis=1)
    ),
    "softmax_cross_entropy": lambda logits, y, mask: (
        -jnp.sum(y * jax.nn.log_softmax(_masked_logits(logits, mask), axis=1), axis=1)
    ),
}


def forward(
    net: Network, weights: Sequence[Array], biases: Sequence[Array], x: Array
) -> tuple[list[Array], list[Array]]:
    """``([z_1..z_L], [a_0..a_L])`` for ``x`` ``(batch, in)``, at the exact shapes; ``z = a Wᵀ
    + b``.  Traceable: usable under ``jax.grad`` and ``jax.jit`` with ``net`` static."""
    zs, activations = [], [x]
    for W, b, act in zip(weights, biases, net.activations, strict=True):
        z = activations[-1] @ W.T + b
        zs.append(z)
        activations.append(ACTIVATIONS[act](z))
    return zs, activations


def loss(net: Network, zs: Sequence[Array], activations: Sequence[Array], y: Array) -> Array:
    """The batch loss (0-d) from the forward pass, at the exact shapes (every unit real)."""
    out = zs[-1] if REFERENCE_LOSSES[net.loss].on_logits else activations[-1]
    per_sample = LOSSES[net.loss](out, y, jnp.ones_like(out))
    return per_sample.mean() if net.reduction == "mean" else per_sample.sum()


def _exact_loss(
    weights: list[Array], biases: list[Array], x: Array, y: Array, net: Network
) -> tuple[Array, tuple[list[Array], list[Array]]]:
    zs, activations = forward(net, weights, biases, x)
    return loss(net, zs, activations, y), (zs, activations)


_exact_value_and_grad = jax.jit(
    jax.value_and_grad(_exact_loss, argnums=(0, 1), has_aux=True), static_argnames=("net",)
)

# The padded path (see the module docstring) picks each layer's activation and the loss at run
# time, by their position in the tables above.
_ACTIVATION_CODES = {act: i for i, act in enumerate(ACTIVATIONS)}
_LOSS_CODES = {loss_name: i for i, loss_name in enumerate(LOSSES)}
_ACTIVATION_BRANCHES = tuple(ACTIVATIONS.values())
_LOSS_BRANCHES = tuple(LOSSES.values())


def _forward_stacked(weights: Array, biases: Array, x: Array, codes: Array) -> tuple[Array, Array]:
    """The forward pass of layers of one square width stacked as ``weights`` ``(depth, w, w)``
    and ``biases`` ``(depth, w)``, layer ``l`` applying the activation numbered ``codes[l]``:
    one ``lax.scan`` step per layer, so it compiles once whatever the depth.  Returns ``z``
    and ``a`` stacked, ``(depth, batch, w)``."""

    def layer(a: Array, layer_params: tuple[Array, Array, Array]) -> tuple[Array, Any]:
        W, b, code = layer_params
        z = a @ W.T + b
        a_next = lax.switch(code, _ACTIVATION_BRANCHES, z)
        return a_next, (z, a_next)

    _, (zs, activations) = lax.scan(layer, x, (weights, biases, codes))
    return zs, activations


def _padded_loss(
    weights: Array,
    biases: Array,
    x: Array,
    y: Array,
    codes: Array,
    loss_code: Array,
    on_logits: Array,
    out_mask: Array,
    sample_weight: Array,
) -> tuple[Array, tuple[Array, Array]]:
    """The batch loss of a padded, stacked network and, as auxiliary output, its forward pass.

    ``out_mask`` ``(width,)`` marks the real output units; ``sample_weight`` ``(batch,)`` is
    ``1/batch`` (mean) or 1 (sum) for real samples and 0 for padding.
    """
    zs, activations = _forward_stacked(weights, biases, x, codes)
    out = jnp.where(on_logits, zs[-1], activations[-1])
    mask = jnp.broadcast_to(out_mask, out.shape)
    per_sample = lax.switch(loss_code, _LOSS_BRANCHES, out, y, mask)
    return jnp.sum(sample_weight * per_sample), (zs, activations)


COMPILER_OPTIONS = {"xla_backend_optimization_level": 1}
"""XLA's options for the padded path's compilations: LLVM at level 1 instead of 2 (XLA's
default) compiled a bucket in about half the time here (1.6-2.3 s against 3.3-4.5 s on a
2-core AMD EPYC), and its executables ran no slower (251, 231 and 497 µs a call for
buckets of depth 1, 2 and 4, against 253, 443 and 505 µs at level 2; one measurement each).
Level 0 compiled in 1.0-1.4 s but ran 1.8 and 2.5 times slower at depth 2 and 4.  The
user's own functions are not affected."""

_padded_value_and_grad = jax.jit(jax.value_and_grad(_padded_loss, argnums=(0, 1), has_aux=True))
_BUCKETS = _jax_cache.Executables(_padded_value_and_grad, COMPILER_OPTIONS)


def _bucket(n: int, floor: int) -> int:
    """The bucket of a size: the next power of two, at least ``floor``."""
    return max(floor, 1 << (n - 1).bit_length())


@contextlib.contextmanager
def _precision(dtype: np.dtype[Any]) -> Iterator[None]:
    if dtype == np.float64:
        with jax.enable_x64(True):
            yield
    else:
        yield


def backprop(
    net: Network, params: Params, x: ArrayLike, y: ArrayLike, *, bucketed: bool = True
) -> BackpropResult:
    """Like ``reference.backprop``: the loss and its gradients, by ``jax.value_and_grad``.

    With ``bucketed`` (default), the network runs padded to a bucketed size (see the module
    docstring) so that new shapes rarely compile; ``bucketed=False`` compiles for the exact
    shape.
    """
    return backprop_checked(net, params, _common.prepare(net, params, x, y), bucketed=bucketed)


def backprop_checked(
    net: Network, params: Params, batch: Batch, *, bucketed: bool = True
) -> BackpropResult:
    """``backprop`` on input already checked by ``reference.check_inputs``."""
    if not bucketed:
        return _exact(net, params, batch, np.dtype(params.dtype))
    return start_checked(net, params, batch)()


DEPTH_FLOOR = 8
"""Every network of up to this many layers is padded to this depth: one compilation."""

IN_FLIGHT = 4
"""How many cases ``backprop_many_checked`` keeps dispatched ahead of the one it collects."""


def backprop_many_checked(
    cases: Sequence[tuple[Network, Params, Batch]],
) -> list[BackpropResult | Exception]:
    """``backprop_checked`` of every case, each in its own exception's place if it raises.

    JAX runs a compiled call asynchronously: the call returns once the work is queued.  So
    the next cases are padded and dispatched while XLA computes the earlier ones on another
    core, instead of the two waiting for each other in turn.
    """
    # Every slot is filled below: with the case's result, or with the exception it raised.
    outcomes: list[BackpropResult | Exception] = [Exception()] * len(cases)
    pending: collections.deque[tuple[int, Callable[[], BackpropResult]]] = collections.deque()

    def collect() -> None:
        i, finish = pending.popleft()
        try:
            outcomes[i] = finish()
        except Exception as exc:
            outcomes[i] = exc

    for i, case in enumerate(cases):
        try:
            pending.append((i, start_checked(*case)))
        except Exception as exc:
            outcomes[i] = exc
        if len(pending) > IN_FLIGHT:
            collect()
    while pending:
        collect()
    return outcomes


def prepare(sizes: Sequence[int], batch: int, dtypes: Sequence[Any]) -> None:
    """Start loading or compiling, in the background, the bucket of a network of layer
    widths ``sizes`` at ``batch`` samples, in each of ``dtypes``; returns at once.

    A sweep calls it for its smallest case, the one Hypothesis draws first, so that XLA
    compiles while the rest of the run starts (torch's import, the first draws).
    """
    net = Network(tuple(sizes), "identity", "half_sse")
    for dtype in map(np.dtype, dtypes):
        params = init_params(net, seed=0, dtype=dtype)
        x, y = np.zeros((batch, net.sizes[0]), dtype), np.zeros((batch, net.sizes[-1]), dtype)
        args, _ = _padded(net, params, Batch(x, y, single=False))
        _BUCKETS.prepare(args, functools.partial(_precision, dtype))


def start_checked(net: Network, params: Params, batch: Batch) -> Callable[[], BackpropResult]:
    """Pad one checked case to its bucket and start its compiled computation, which JAX runs
    asynchronously; returns the function that waits for the result and unpads it into a
    ``BackpropResult``."""
    dtype = np.dtype(params.dtype)
    n, L = batch.x.shape[0], net.n_layers
    args, front = _padded(net, params, batch)
    outputs = _BUCKETS.start(args, lambda: _precision(dtype))  # compiled once per machine

    def finish() -> BackpropResult:
        # One device-to-host copy each (np.asarray: jax.device_get costs 7 times as much),
        # then NumPy views of the real (unpadded) entries.
        (value, (zs, activations)), (gW, gb) = outputs()
        value, zs, activations, gW, gb = map(np.asarray, (value, zs, activations, gW, gb))
        sizes = net.sizes
        return _common.result(
            value,
            [gW[front + l, : sizes[l + 1], : sizes[l]] for l in range(L)],
            [gb[front + l, : sizes[l + 1]] for l in range(L)],
            [zs[front + l, :n, : sizes[l + 1]] for l in range(L)],
            [batch.x] + [activations[front + l, :n, : sizes[l + 1]] for l in range(L)],
            dtype,
            batch.single,
        )

    return finish


def _padded(net: Network, params: Params, batch: Batch) -> tuple[tuple[Any, ...], int]:
    """The arguments of the padded function for one case (see the module docstring), and
    the number of identity layers in front."""
    dtype = np.dtype(params.dtype)
    n, L = batch.x.shape[0], net.n_layers
    width, depth, rows = _bucket(max(net.sizes), 32), _bucket(L, DEPTH_FLOOR), _bucket(n, 16)
    front = depth - L  # identity layers in front

    # The padded network, built stacked: zeros, the identity in front, the real layers after.
    weights = np.zeros((depth, width, width), dtype)
    weights.reshape(depth, width * width)[:front, :: width + 1] = 1  # the diagonals, a view
    biases = np.zeros((depth, width), dtype)
    for l, (W, b) in enumerate(params, start=front):
        weights[l, : W.shape[0], : W.shape[1]] = W
        biases[l, : b.shape[0]] = b
    x_pad = np.zeros((rows, width), dtype)
    x_pad[:n, : net.sizes[0]] = batch.x
    y_pad = np.zeros((rows, width), dtype)
    y_pad[:n, : net.sizes[-1]] = batch.y
    codes = np.array(
        [_ACTIVATION_CODES["identity"]] * front + [_ACTIVATION_CODES[a] for a in net.activations],
        dtype=np.int32,
    )
    out_mask = np.zeros(width, dtype)
    out_mask[: net.sizes[-1]] = 1
    sample_weight = np.zeros(rows, dtype)
    sample_weight[:n] = _sample_weight(net, n)
    return (weights, biases, x_pad, y_pad, codes, *_loss_args(net), out_mask, sample_weight), front


def _loss_args(net: Network) -> tuple[np.int32, np.bool_]:
    """The loss's run-time code and whether it takes the output layer's logits."""
    return np.int32(_LOSS_CODES[net.loss]), np.bool_(REFERENCE_LOSSES[net.loss].on_logits)


def _sample_weight(net: Network, n: int) -> float:
    """The weight of each of ``n`` real samples in the batch loss: the reduction."""
    return 1 / n if net.reduction == "mean" else 1.0


def _exact(net: Network, params: Params, batch: Batch, dtype: np.dtype[Any]) -> BackpropResult:
    """``backprop`` compiled for the exact shapes of ``net`` and ``batch``."""
    with _precision(dtype):
        (value, (zs, activations)), (gW, gb) = _exact_value_and_grad(
            list(params.weights), list(params.biases), batch.x, batch.y, net=net
        )
        return _common.result(value, gW, gb, zs, activations, dtype, batch.single)
