"""The network description (``Network``), its parameters (``Params``) and their initialisation.

A network is an immutable description: layer sizes, one activation per layer, a loss and a
batch reduction.  Parameters are plain data: one weight matrix ``W`` of shape ``(out, in)``
and one bias vector ``b`` of shape ``(out,)`` per layer, the layout of the worked example and
of ``torch.nn.Linear``.
"""

from __future__ import annotations

import itertools
import numbers
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from .activations import ACTIVATIONS
from .losses import LOSSES, REDUCTIONS

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


@dataclass(frozen=True, init=False)
class Network:
    """An immutable description of a multilayer perceptron.

    ``Network((4, 3, 2), activation="sigmoid", loss="half_sse", reduction="mean")`` has an
    input layer of 4, a hidden layer of 3 and an output layer of 2 units.

    Parameters
    ----------
    sizes
        Layer widths ``(in, hidden..., out)``: at least two positive integers.
    activation
        One name from ``ACTIVATIONS`` for every layer, or a sequence with one name per layer
        (``len(sizes) - 1`` names; the last one is the output layer's).
    loss
        A name from ``LOSSES``.  ``binary_cross_entropy`` needs a sigmoid output layer.
    reduction
        ``"mean"`` (default) or ``"sum"`` of the per-sample losses over the batch.
    """

    sizes: tuple[int, ...]
    activations: tuple[str, ...]
    loss: str
    reduction: str

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str | Sequence[str] = "sigmoid",
        loss: str = "half_sse",
        reduction: str = "mean",
    ) -> None:
        sizes_ = _check_sizes(sizes)
        activations = _check_activations(activation, len(sizes_) - 1)
        _check_name("loss", loss, LOSSES)
        _check_name("reduction", reduction, REDUCTIONS)
        required = LOSSES[loss].output_activation
        if required is not None and activations[-1] != required:
            raise ValueError(
                f"loss {loss!r} needs a {required!r} output layer, "
                f"got activation {activations[-1]!r} on the last layer"
            )
        object.__setattr__(self, "sizes", sizes_)
        object.__setattr__(self, "activations", activations)
        object.__setattr__(self, "loss", loss)
        object.__setattr__(self, "reduction", reduction)

    @property
    def n_layers(self) -> int:
        """The number of weight layers, ``len(sizes) - 1``."""
        return len(self.sizes) - 1

    def __repr__(self) -> str:
        acts = self.activations
        activation: object = acts[0] if len(set(acts)) == 1 else acts
        return (
            f"Network({self.sizes!r}, activation={activation!r}, "
            f"loss={self.loss!r}, reduction={self.reduction!r})"
        )


def _check_sizes(sizes: object) -> tuple[int, ...]:
    if isinstance(sizes, str | bytes) or not isinstance(sizes, Sequence):
        raise TypeError(f"sizes must be a sequence of layer widths, got {type(sizes).__name__}")
    if len(sizes) < 2:
        raise ValueError(f"sizes needs at least an input and an output width, got {tuple(sizes)!r}")
    for i, n in enumerate(sizes):
        if isinstance(n, bool) or not isinstance(n, numbers.Integral):
            raise TypeError(f"sizes[{i}] must be an integer, got {type(n).__name__} {n!r}")
        if n < 1:
            raise ValueError(f"sizes[{i}] must be a positive width, got {n}")
    return tuple(int(n) for n in sizes)


def _check_name(argument: str, name: object, known: Sequence[str] | dict[str, Any]) -> None:
    if not isinstance(name, str):
        raise TypeError(f"{argument} must be a name (str), got {type(name).__name__} {name!r}")
    if name not in known:
        raise ValueError(f"unknown {argument} {name!r}; expected one of {', '.join(known)}")


def _check_activations(activation: object, n_layers: int) -> tuple[str, ...]:
    if isinstance(activation, str):
        _check_name("activation", activation, ACTIVATIONS)
        return (activation,) * n_layers
    if not isinstance(activation, Sequence):
        raise TypeError(
            f"activation must be a name or a sequence of names, got {type(activation).__name__}"
        )
    if len(activation) != n_layers:
        raise ValueError(
            f"activation has {len(activation)} names, the network has {n_layers} layers "
            "(one name per layer, or a single name for all)"
        )
    for i, name in enumerate(activation):
        _check_name(f"activation[{i}]", name, ACTIVATIONS)
    return tuple(activation)


@dataclass(frozen=True, init=False, eq=False)
class Params:
    """The parameters of a network: ``weights[l]`` is ``(out, in)``, ``biases[l]`` is ``(out,)``.

    Plain data.  Arrays are converted with ``np.asarray``: integer, boolean and nested-list
    input become float64; float32 and float64 arrays are kept as they are (not copied).  All
    arrays share one dtype, the dtype every computation on these parameters uses.  ``Params``
    never modifies the arrays it is given, and nothing in crossgrad modifies a ``Params``'
    arrays.  The constructor checks structure (dimensions, matching shapes, one dtype);
    whether the values are finite is checked where params enter a computation
    (``reference.validation``), so that gradients can hold whatever the arithmetic gave.
    """

    weights: tuple[NDArray[np.floating], ...]
    biases: tuple[NDArray[np.floating], ...]

    def __init__(self, weights: Sequence[ArrayLike], biases: Sequence[ArrayLike]) -> None:
        ws = _as_float_arrays("weights", weights, ndim=2)
        bs = _as_float_arrays("biases", biases, ndim=1)
        if len(ws) != len(bs):
            raise ValueError(
                f"weights has {len(ws)} layers but biases has {len(bs)}; expected one bias "
                "vector per weight matrix"
            )
        dtypes = {a.dtype for a in (*ws, *bs)}
        if len(dtypes) > 1:
            raise TypeError(
                "weights and biases must share one dtype, got a mix of "
                + " and ".join(sorted(str(d) for d in dtypes))
            )
        for l, (W, b) in enumerate(zip(ws, bs, strict=True)):
            if W.shape[0] != b.shape[0]:
                raise ValueError(
                    f"biases[{l}] has {b.shape[0]} entries, weights[{l}] has {W.shape[0]} "
                    "rows (output units); they must match"
                )
            if l > 0 and W.shape[1] != ws[l - 1].shape[0]:
                raise ValueError(
                    f"weights[{l}] takes {W.shape[1]} inputs but layer {l - 1} has "
                    f"{ws[l - 1].shape[0]} outputs"
                )
        object.__setattr__(self, "weights", ws)
        object.__setattr__(self, "biases", bs)

    @property
    def dtype(self) -> np.dtype[Any]:
        """The floating dtype shared by all arrays."""
        return self.weights[0].dtype

    @property
    def sizes(self) -> tuple[int, ...]:
        """The layer widths these parameters fit, ``(in, hidden..., out)``."""
        return (self.weights[0].shape[1], *(W.shape[0] for W in self.weights))

    def __iter__(self) -> Iterator[tuple[NDArray[np.floating], NDArray[np.floating]]]:
        """Iterate over ``(W, b)`` pairs, layer by layer."""
        return iter(zip(self.weights, self.biases, strict=True))

    def __len__(self) -> int:
        return len(self.weights)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Params):
            return NotImplemented
        return len(self) == len(other) and all(
            a.dtype == b.dtype and np.array_equal(a, b)
            for a, b in zip(
                (*self.weights, *self.biases), (*other.weights, *other.biases), strict=True
            )
        )

    __hash__ = None  # type: ignore[assignment]  # arrays are mutable, so Params is unhashable

    def named(self) -> dict[str, NDArray[np.floating]]:
        """The arrays by name, in layer order: ``{"W1": ..., "b1": ..., "W2": ...}``."""
        out: dict[str, NDArray[np.floating]] = {}
        for l, (W, b) in enumerate(self, start=1):
            out[f"W{l}"] = W
            out[f"b{l}"] = b
        return out


def as_float_array(name: str, value: ArrayLike, dtype: DTypeLike | None = None) -> NDArray[Any]:
    """``value`` as a finite float32 or float64 array, or a clear ``TypeError``/``ValueError``.

    Integers, booleans and nested lists become float64 (or ``dtype`` when given); float16 and
    extended precision are rejected rather than silently changed.  The result may be
    ``value`` itself (never written to), so callers must not modify it.
    """
    if dtype is not None and type(value) is np.ndarray and value.dtype == dtype:
        arr = value  # the common case in a training loop: nothing to convert
    else:
        arr = _as_float(name, value, dtype)
    check_finite(name, arr)
    return arr


def check_finite(name: str, a: NDArray[np.floating]) -> None:
    """Raise ``ValueError`` naming ``name`` when ``a`` holds a nan or an infinity."""
    # count_nonzero rather than .all(): the same answer at half the fixed cost of a reduction.
    bad = a.size - np.count_nonzero(np.isfinite(a))
    if bad:
        raise ValueError(f"{name} must be finite, got {bad} non-finite value(s) (nan or inf)")


def _as_float(name: str, value: ArrayLike, dtype: DTypeLike | None) -> NDArray[Any]:
    if (
        type(value) is np.ndarray
        and value.dtype in FLOAT_DTYPES
        and (dtype is None or value.dtype == dtype)  # not `in (None, …)`: dtype == None is f8
    ):
        return value  # already what is asked for: nothing to convert
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be an array of real numbers: {exc}") from None
    kind = arr.dtype.kind
    if kind in "biu":
        arr = arr.astype(np.float64 if dtype is None else dtype)
    elif kind == "f":
        if arr.dtype not in FLOAT_DTYPES:
            raise TypeError(f"{name} must be float32 or float64, got {arr.dtype}")
        if dtype is not None and arr.dtype != dtype:
            arr = arr.astype(dtype)
    else:
        raise TypeError(
            f"{name} must be an array of real numbers, got dtype {arr.dtype}"
            + (" (ragged nested sequences?)" if kind == "O" else "")
        )
    return arr


def _as_float_arrays(name: str, arrays: object, ndim: int) -> tuple[NDArray[np.floating], ...]:
    if isinstance(arrays, np.ndarray | str | bytes) or not isinstance(arrays, Sequence):
        raise TypeError(
            f"{name} must be a sequence with one array per layer, got {type(arrays).__name__}"
        )
    if len(arrays) == 0:
        raise ValueError(f"{name} must hold at least one layer, got none")
    out = []
    for l, value in enumerate(arrays):
        arr = _as_float(f"{name}[{l}]", value, None)
        if arr.ndim != ndim:
            raise ValueError(f"{name}[{l}] must be {ndim}-D, got shape {arr.shape}")
        if 0 in arr.shape:
            raise ValueError(f"{name}[{l}] must not be empty, got shape {arr.shape}")
        out.append(arr)
    return tuple(out)


def init_params(
    net: Network, seed: int | np.random.Generator | None = 0, dtype: DTypeLike = np.float64
) -> Params:
    """Random parameters for ``net``, reproducible from ``seed``.

    Uses the default of ``torch.nn.Linear``: ``W`` and ``b`` of a layer with ``fan_in`` inputs
    are drawn from ``U(-1/√fan_in, 1/√fan_in)``.  ``seed`` is an integer, a
    ``numpy.random.Generator`` (advanced by the call) or ``None`` (fresh entropy).
    ``dtype`` is ``float64`` (default) or ``float32``.
    """
    if not isinstance(net, Network):
        raise TypeError(f"net must be a crossgrad Network, got {type(net).__name__}")
    dt = np.dtype(dtype)
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    seed_: object = seed  # checked at run time: callers may pass anything
    if not (seed_ is None or isinstance(seed_, np.random.Generator)) and (
        isinstance(seed_, bool) or not isinstance(seed_, numbers.Integral)
    ):
        raise TypeError(
            f"seed must be an int, a numpy Generator or None, got {type(seed_).__name__} {seed!r}"
        )
    if isinstance(seed_, numbers.Integral) and seed_ < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed_}")
    rng = np.random.default_rng(seed)
    weights, biases = [], []
    for fan_in, fan_out in itertools.pairwise(net.sizes):
        bound = 1 / np.sqrt(fan_in)
        weights.append(rng.uniform(-bound, bound, size=(fan_out, fan_in)).astype(dt))
        biases.append(rng.uniform(-bound, bound, size=fan_out).astype(dt))
    return Params(weights, biases)
