"""The fast NumPy backend: the reference's backpropagation, written for speed.

The same mathematics and the same contracts as ``crossgrad.reference`` (same input checks
and messages, results within the tolerance model, inputs never modified), cross-checked
against it like torch and jax.  What makes it fast, and would make the reference harder to
read:

- **Workspaces.**  Every intermediate array of a step (pre-activations, activations,
  derivatives, deltas, scratch) is allocated once per network shape, batch and dtype and
  reused, with ``out=`` on every NumPy call (``workspace``).
- **One parameter buffer.**  The gradients, and the parameters ``train_step`` returns, are
  views into one flat buffer laid out ``W1, b1, W2, b2, …``.  ``train_step`` writes
  ``lr·∂L/∂θ`` into the buffer of the new parameters and subtracts it from the old ones in
  place: the update reads two arrays and writes one it has just read, less memory traffic
  than writing a third (on large networks the update is bound by memory, not arithmetic).  For
  parameters this backend made, that update is one array operation for the whole network;
  ``lr`` is folded into δ_L (every gradient is linear in it), so no pass scales the
  gradients.
- **Fused kernels.**  An activation and its derivative are computed together, from one
  exponential where they share it: the sigmoid is ``u/(1 + u)`` with ``u = e^z`` (the
  exponent bounded) and ``σ' = σ/(1 + u)``, NumPy's SIMD ``exp`` instead of SciPy's
  ``expit`` (which only small arrays use, where the number of calls is the cost); tanh's
  derivative is ``1/cosh²z``; each loss computes its value and gradient in one pass
  (``numpy_kernels``).
- **No broadcasting.**  A NumPy operation with a scalar or a broadcast operand costs about
  twice one on same-shape arrays (it leaves the contiguous loop): the kernels' constants
  are full read-only arrays made once per workspace (``numpy_kernels.Scratch``);
  ``Σ_batch δ`` is the product ``1ᵀδ`` (BLAS) rather than ``np.add.reduce(δ, axis=0)``; and
  one sample goes through matrix-vector products, where ``+ b`` adds two vectors.
- **The right product.**  ``np.matmul`` with ``out=`` for every layer product: ``np.dot``
  with ``out=`` runs ``δᵀ·a`` of an MNIST-sized layer six times slower; small networks
  (``SMALL_PRODUCT``) use ``np.dot``, whose call overhead is lower.
- **A fast path for valid input.**  Arrays that already have the params' dtype and the
  network's shapes are checked with a few reductions (``x``, ``y`` and the params finite,
  one ``np.vdot`` each, or one for all the params ``backprop`` gets from ``train_step``;
  ``y`` in the loss's domain); anything else goes through ``reference.check_inputs``,
  which raises the reference's errors.  The check runs on every call: a later NaN in the
  same array is caught.  ``train_step`` on params it made finds a NaN or infinity in them
  in the new params it checks anyway (``p − lr·g`` keeps it), one pass fewer over them.
- **Few Python objects per call.**  On a network of a few units a step is some twenty
  NumPy calls of about a microsecond each, and the Python around them counts as much: the
  params ``train_step`` made last are recognised by a weak reference without a callback
  (their buffer is their arrays' ``base``), a float ``lr`` is checked without
  ``check_lr``'s ``isinstance`` calls, and no ``Batch`` is built on the fast path.  What
  is left, part by part, is measured by ``python -m crossgrad.benchmarks.floor``: on the
  worked example's network the contract (checks, ``Params``' own constructor, a new buffer,
  the results' check) costs about twice the arithmetic.

The reference's rule for results holds too: when a result is not finite (or an entry is
beyond about 1e154, which the one-dot-product check cannot tell from an overflow), the call
is handed to the reference, which returns its own finite result or raises its
``OverflowError`` naming what overflowed, and NumPy's warnings are off while a step runs
(as the reference's are), so such input gives that error and no warning.

What is returned is never overwritten by a later call: ``backprop``'s arrays are fresh on
every call, and ``train_step`` returns new parameters in a new buffer.  The workspaces are
per thread, so concurrent calls from several threads are safe.
"""

from __future__ import annotations

import functools
import itertools
import math
import threading
import weakref
from collections import OrderedDict
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import reference
from ..reference import BackpropResult, Network, Params
from ..reference.validation import Batch, check_inputs, check_lr
from . import numpy_kernels as kernels
from .protocol import Capabilities
from .tolerance import model_tolerance

name = "numpy"
capabilities = Capabilities()
tolerance = model_tolerance

Array = NDArray[np.floating]

CACHE_SIZE = 8
"""Workspaces kept per thread (least recently used dropped first)."""

SMALL_PRODUCT = 1 << 18
"""Networks whose largest layer product has at most this many multiply-adds use ``np.dot``.

Measured (float32, 64-128-10 at batch 32, the largest product 2^18 multiply-adds): ``np.dot``
took 0.8-9.9 µs per product against 1.3-12.9 µs for ``np.matmul``, except ``δᵀ·a`` of the
first layer, where the two tie (10.2 against 9.7 µs)."""


@functools.cache
def _slices(sizes: tuple[int, ...]) -> tuple[int, tuple[tuple[slice, tuple[int, int], slice], ...]]:
    """The length of a flat buffer for layer widths ``sizes``, and where each layer's ``W``
    (a slice and its shape ``(out, in)``) and ``b`` lie in it: ``W1, b1, W2, b2, …``."""
    layers, start = [], 0
    for fan_in, fan_out in itertools.pairwise(sizes):
        w_end = start + fan_out * fan_in
        layers.append((slice(start, w_end), (fan_out, fan_in), slice(w_end, w_end + fan_out)))
        start = w_end + fan_out
    return start, tuple(layers)


def layout(
    sizes: tuple[int, ...], dtype: np.dtype[Any]
) -> tuple[Array, tuple[Array, ...], tuple[Array, ...]]:
    """A new uninitialised flat buffer for ``sizes`` and its weight and bias views."""
    length, layers = _slices(sizes)
    flat = np.empty(length, dtype)
    weights = tuple([flat[w].reshape(shape) for w, shape, _ in layers])
    biases = tuple([flat[b] for _, _, b in layers])
    return flat, weights, biases


class Workspace:
    """Every array one step of ``net`` at ``batch`` samples in ``dtype`` writes into.

    Per layer ``l`` (widths ``(batch, out_l)``): ``zs[l]``, ``activations[l + 1]`` (``zs[l]``
    itself for the identity; ``activations[0]`` is a placeholder for ``x``), the derivative
    ``derivatives[l]`` (``None`` where ``f' = 1``), ``deltas[l]`` (and ``delta_rows[l]``, its
    first row) and the kernels' scratch and constants ``scratch[l]``; ``ones`` is ``batch``
    ones, for ``Σ_batch δ = 1ᵀδ``.  The gradients are written where the caller says: new
    arrays for ``backprop``, the new parameter buffer for ``train_step``.
    """

    def __init__(self, net: Network, batch: int, dtype: np.dtype[Any]) -> None:
        self.net, self.batch, self.dtype = net, batch, dtype
        self.single = batch == 1
        self.param_shapes = tuple(zip(net.sizes[1:], net.sizes[:-1], strict=True))
        self.kernels = tuple(kernels.ACTIVATIONS[name] for name in net.activations)
        self.loss = kernels.LOSSES[net.loss]
        self.scale = 1 / batch if net.reduction == "mean" else 1.0
        shapes = [(batch, width) for width in net.sizes[1:]]
        self.zs = [np.empty(shape, dtype) for shape in shapes]
        self.activations = [np.empty((0, 0), dtype)]
        for z, kernel in zip(self.zs, self.kernels, strict=True):
            self.activations.append(z if kernel.aliases else np.empty_like(z))
        self.derivatives = [
            np.empty(shape, dtype) if kernel.has_derivative else None
            for shape, kernel in zip(shapes, self.kernels, strict=True)
        ]
        self.scratch = [kernels.Scratch(shape, dtype) for shape in shapes]
        self.ones = np.ones(batch, dtype)
        self.ones.flags.writeable = False
        self.deltas = [np.empty(shape, dtype) for shape in shapes]
        self.delta_rows = [delta[0] for delta in self.deltas]
        # np.dot has less call overhead than np.matmul, which counts on tiny networks; but
        # np.dot(δᵀ, a, out=) of an MNIST-sized layer runs 6× slower than np.matmul's.
        largest = max(batch * n_in * n_out for n_out, n_in in self.param_shapes)
        self.product = np.dot if largest <= SMALL_PRODUCT else np.matmul


_local = threading.local()


def workspace(net: Network, batch: int, dtype: np.dtype[Any]) -> Workspace:
    """The cached workspace of ``net`` at ``batch`` samples in ``dtype`` (this thread's)."""
    last: Workspace | None = getattr(_local, "last", None)
    if last is not None and last.net is net and last.batch == batch and last.dtype == dtype:
        return last  # a training loop: the same network again, without hashing it
    cache: OrderedDict[tuple[Network, int, np.dtype[Any]], Workspace] | None = getattr(
        _local, "cache", None
    )
    if cache is None:
        cache = _local.cache = OrderedDict()
    key = (net, batch, dtype)
    ws = cache.get(key)
    if ws is None:
        ws = cache[key] = Workspace(net, batch, dtype)
        if len(cache) > CACHE_SIZE:
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    _local.last = ws
    return ws


Prepared = tuple[Array, Array, bool, Workspace, Array | None]


def _prepare(
    net: Network, params: Params, x: ArrayLike, y: ArrayLike, step: bool = False
) -> Prepared:
    """``check_inputs(net, params, x, y)`` with a fast path for input that is plainly valid:
    ``(x, y, single, workspace, flat)``, with ``x``, ``y`` as ``(batch, width)`` arrays,
    ``single`` when one sample came as vectors, and ``flat`` the buffer of params that
    ``train_step`` made (``None`` for other params).

    The fast path accepts only what ``check_inputs`` accepts: arrays already in the params'
    dtype and the network's shapes, finite (``x``, ``y`` and the params, on every call), and
    in the loss's domain.  Whatever it is unsure of, it leaves to ``check_inputs``, which
    raises the reference's errors.  For a ``step`` (``train_step``) on params it made, their
    finiteness is checked in the new params instead (see ``train_step``).
    """
    if (
        type(x) is np.ndarray
        and type(y) is np.ndarray
        and x.ndim == 2
        and isinstance(net, Network)
        and isinstance(params, Params)
        and x.shape[0] > 0
        and params.weights[0].dtype == x.dtype == y.dtype
    ):
        ws = workspace(net, x.shape[0], x.dtype)
        sizes = net.sizes
        flat = _buffer_of(params, sizes)
        if (
            y.shape == (x.shape[0], sizes[-1])
            and x.shape[1] == sizes[0]
            and (flat is not None or _shapes(params) == ws.param_shapes)
            and _finite(x, y, params, flat, step)
            and not kernels.target_problem(net.loss, y, ws.scratch[-1])
        ):
            return x, y, False, ws, flat
    batch = check_inputs(net, params, x, y)
    ws = workspace(net, batch.x.shape[0], batch.x.dtype)
    return batch.x, batch.y, batch.single, ws, _buffer_of(params, net.sizes)


def _finite(x: Array, y: Array, params: Params, flat: Array | None, step: bool) -> bool:
    """Whether ``x``, ``y`` and ``params`` (``flat``, when given, holds them) are surely
    finite (``_surely_finite``); when not, the full check decides.  The params ``flat``
    holds are not looked at for a ``step``: ``train_step`` finds them in its new params."""
    if flat is None:
        held: tuple[Array, ...] = (*params.weights, *params.biases)
    else:
        held = () if step else (flat,)
    return _surely_finite(0.0, x, y, *held)


def _shapes(params: Params) -> tuple[tuple[int, ...], ...] | None:
    """The weights' shapes, or ``None`` when the biases do not have one entry per row."""
    if len(params.weights) != len(params.biases):
        return None
    shapes = tuple(W.shape for W in params.weights)
    if any(b.shape != (shape[0],) for b, shape in zip(params.biases, shapes, strict=True)):
        return None
    return shapes


def _gradients(
    ws: Workspace,
    params: Params,
    x: Array,
    y: Array,
    zs: list[Array],
    activations: list[Array],
    weight_grads: tuple[Array, ...],
    bias_grads: tuple[Array, ...],
    lr: float = 1.0,
) -> float:
    """The forward and backward pass: writes ``z_l``, ``a_l`` and ``lr`` times the gradients
    into the given arrays (``activations[0]`` is not used: ``x`` is ``a_0``), returns the batch
    loss.

    ``lr`` multiplies δ_L, and so, every step being linear in δ, every gradient: ``train_step``
    gets ``lr·∂L/∂θ`` without a pass over all the parameters to scale them.  ``Σ_batch δ`` is
    the product ``1ᵀδ`` (BLAS, half the time of ``np.add.reduce(δ, axis=0)``); one sample
    (``ws.single``) goes through matrix-vector products, so that ``+ b`` and ``Σ δ`` need no
    broadcasting (a broadcast operation costs twice a same-shape one).
    """
    product, single = ws.product, ws.single
    weights, biases = params.weights, params.biases
    derivatives, scratch = ws.derivatives, ws.scratch
    # Forward: z_l = a_{l-1} W_lᵀ + b_l, a_l = f_l(z_l), and f_l'(z_l) in the same pass.
    a = x
    for l, kernel in enumerate(ws.kernels):
        z = zs[l]
        if single:
            row = z[0]
            product(weights[l], a[0], out=row)  # W a, one sample
            np.add(row, biases[l], out=row)
        else:
            product(a, weights[l].T, out=z)
            np.add(z, biases[l], out=z)
        a = activations[l + 1]
        kernel.forward(z, a, derivatives[l], scratch[l])
    # The loss and δ_L = ∂L/∂z_L, the reduction's 1/batch folded in.
    L = len(zs) - 1
    delta = ws.deltas[L]
    loss = ws.loss
    total = loss.loss(zs[L] if loss.on_logits else a, y, delta, lr * ws.scale, scratch[L])
    if ws.scale != 1 and ws.batch > 1:  # (a mean of one sample is that sample: exact)
        total = total / ws.batch
    d = derivatives[L]
    if d is not None and not loss.on_logits:
        np.multiply(delta, d, out=delta)  # ∘ f'(z_L)
    # Backward: ∂L/∂W_l = δ_lᵀ a_{l-1}, ∂L/∂b_l = Σ δ_l, δ_{l-1} = (δ_l W_l) ∘ f'(z_{l-1}).
    for l in range(L, -1, -1):
        product(delta.T, activations[l] if l else x, out=weight_grads[l])
        if single:
            np.copyto(bias_grads[l], ws.delta_rows[l])  # one sample's Σ δ is δ
        else:
            product(ws.ones, delta, out=bias_grads[l])
        if l:
            below = ws.deltas[l - 1]
            if single:
                product(ws.delta_rows[l], weights[l], out=ws.delta_rows[l - 1])
            else:
                product(delta, weights[l], out=below)
            d = derivatives[l - 1]
            if d is not None:
                np.multiply(below, d, out=below)
            delta = below
    return float(total)


def backprop_checked(net: Network, params: Params, batch: Batch) -> BackpropResult:
    """``backprop`` on input already checked by ``reference.check_inputs``."""
    ws = workspace(net, batch.x.shape[0], batch.x.dtype)
    return _backprop(ws, params, batch.x, batch.y, batch.single)


def _backprop(ws: Workspace, params: Params, x: Array, y: Array, single: bool) -> BackpropResult:
    n, dtype = ws.batch, ws.dtype
    # Fresh arrays for everything returned, so that a later call cannot overwrite them.
    zs = [np.empty((n, width), dtype) for width in ws.net.sizes[1:]]
    activations = [x]
    for z, kernel in zip(zs, ws.kernels, strict=True):
        activations.append(z if kernel.aliases else np.empty_like(z))
    _, weights, biases = layout(ws.net.sizes, dtype)
    loss = _gradients(ws, params, x, y, zs, activations, weights, biases)
    for l, kernel in enumerate(ws.kernels):
        if kernel.aliases:  # the identity's a is its z: a copy of its own, as the reference's
            activations[l + 1] = zs[l].copy()
    if single:
        zs = [z[0] for z in zs]
        activations = [a[0] for a in activations]
    return BackpropResult(
        loss=loss,
        grads=Params(weights, biases),
        preactivations=tuple(zs),
        activations=tuple(activations),
    )


def backprop(net: Network, params: Params, x: ArrayLike, y: ArrayLike) -> BackpropResult:
    """Like ``reference.backprop``: the loss, its gradients and the forward pass's values.

    ``x``: ``(batch, in)`` or one sample ``(in,)``; ``y``: ``(batch, out)`` or ``(out,)``.
    Same checks and errors as the reference; nothing passed in is modified, and every array
    returned is new (not shared with the workspace).
    """
    x_, y_, single, ws, _ = _prepare(net, params, x, y)
    with _quiet():  # an overflow is found in the results, as the reference finds it
        result = _backprop(ws, params, x_, y_, single)
    base = result.grads.weights[0].base  # the one buffer of every gradient (``layout``)
    grads = (base,) if base is not None else (*result.grads.weights, *result.grads.biases)
    if not _surely_finite(result.loss, *grads, *result.preactivations):
        return reference.backprop(net, params, x, y)  # raises the reference's OverflowError
    return result


def train_step(
    net: Network, params: Params, x: ArrayLike, y: ArrayLike, lr: float
) -> tuple[float, Params]:
    """Like ``reference.train_step``: ``(loss before the step, new params)``.

    The new params (``W − lr·∂L/∂W``, ``b − lr·∂L/∂b``) are a new buffer, safe to keep;
    ``params`` is not modified.  Params this function made are not checked for NaN and
    infinity on the way in, but in the new params: ``p − lr·g`` is not finite wherever ``p``
    is not, so such params hand the call to the reference, which raises its error, as for
    any other input it rejects; this saves one pass over every parameter.  ``lr`` is folded
    into δ_L, so ``lr·∂L/∂W`` is rounded differently from the reference's (within the
    tolerance model).  Feeding the new params back in, as a training loop does, makes the
    update one array operation for the network.
    """
    # check_lr's answer for a finite positive float, without its isinstance checks.
    lr_ = lr if type(lr) is float and 0.0 < lr < math.inf else check_lr(lr)
    x_, y_, _, ws, source = _prepare(net, params, x, y, step=True)
    with _quiet():  # an overflow is found in the results, as the reference finds it
        # lr·∂L/∂θ goes straight into the new buffer, and p − lr·g is then computed in place.
        flat, weights, biases = layout(net.sizes, ws.dtype)
        loss = _gradients(ws, params, x_, y_, ws.zs, ws.activations, weights, biases, lr_)
        if source is not None:
            np.subtract(source, flat, out=flat)  # one pass over the whole network
        else:
            for p, o in zip((*params.weights, *params.biases), (*weights, *biases), strict=True):
                np.subtract(p, o, out=o)
    if not _surely_finite(loss, flat):
        return reference.train_step(net, params, x, y, lr)  # raises the reference's OverflowError
    # The public constructor: it checks structure only (dimensions, shapes, one dtype).
    new = Params(weights, biases)
    if new.weights[0] is weights[0]:  # (Params keeps float arrays as they are, not copies)
        _local.made = (weakref.ref(new), net.sizes)
    return loss, new


def _quiet() -> np.errstate:
    """NumPy's floating-point warnings off while a step runs (about 2 µs a call): a result
    that overflows is found by ``_surely_finite`` and explained by the reference's error."""
    return np.errstate(over="ignore", invalid="ignore", divide="ignore")


def _surely_finite(loss: float, *arrays: NDArray[Any]) -> bool:
    """Whether ``loss`` and every entry of ``arrays`` are surely finite: ``loss + Σ a·a`` is.

    One dot product per array, the cheapest reduction on small arrays.  ``False`` also when
    an entry is merely beyond about 1e154 (its square overflows): the caller then takes the
    full path, ``check_inputs`` for input, and for results the reference, which applies its
    rule (``reference.validation.finite_results``): its own result where it is finite, else
    its ``OverflowError`` naming what overflowed.
    """
    total = loss
    for a in arrays:
        total += float(np.vdot(a, a))
    return math.isfinite(total)


def _buffer_of(params: Params, sizes: tuple[int, ...]) -> Array | None:
    """The flat buffer of ``params`` if they are the last params ``train_step`` made in this
    thread, for layer widths ``sizes``; else ``None``.

    A training loop feeds each step's params to the next, so the last ones made are the
    ones that come back.  A weak reference (without a callback: nothing to clean up) names
    them; their arrays are views into the one buffer ``layout`` made (their ``base``), which
    nothing else keeps alive.  Other params are updated array by array.
    """
    made: tuple[weakref.ref[Params], tuple[int, ...]] | None = getattr(_local, "made", None)
    if made is None or made[0]() is not params or made[1] != sizes:
        return None
    flat = params.weights[0].base
    return flat if isinstance(flat, np.ndarray) else None
