"""Hypothesis strategies that draw whole backprop cases: a network, parameters, a batch.

Built in the style of array-api-tests: every strategy is valid by construction (no ``assume``,
no filtering), the architecture is drawn first and the arrays that fit it second, and every
element is bounded and finite.  ``cases()`` draws everything at once::

    from hypothesis import given
    from crossgrad import reference, strategies

    @given(strategies.cases(losses=["half_sse"], dtype="float64"))
    def test_my_backprop(case):
        mine = my_backprop(case.net, case.params, case.x, case.y)
        ...

Hypothesis is a dependency of this module (and of ``crossgrad.testing``) only.

How the arrays are drawn.  A network of width 32 and depth 5 has thousands of parameters,
too many to draw one by one, so each layer draws a ``seed`` (and each case a ``resolution``)
and fills its arrays from ``numpy.random.default_rng(seed)`` with values on the grid
``k / 2**resolution`` (``|k| ≤ 2**resolution``), times a per-layer scale
``2**-⌊log2(fan_in)/2⌋ ≈ 1/√fan_in``.  Everything about one layer (width, activation, seed,
kinks) is one element of a list, so shrinking removes whole layers, then narrows them,
shortens the batch, simplifies activations and loss, and moves seeds to 0 and the resolution
to 1 (values in ``{-1, -½, 0, ½, 1}`` times the scale), which reads well in a failure report.
Grid values are exact in float32 and float64 alike, products and short sums of them are
exact too, so a float32 case holds exactly the numbers of its float64 twin.

Edge cases.  ``kinks=True`` zeroes some weight rows together with their biases, so that those
units' pre-activations are exactly 0 in every framework, whatever the summation order: relu
and leaky_relu are then evaluated exactly on their kink.  ``far_out=True`` scales one layer by
up to ``2**17``, pushing pre-activations out to about ``|z| = 1e6`` (saturated sigmoids,
huge logits).
"""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st
from numpy.typing import NDArray

from .reference import ACTIVATIONS, LOSSES, REDUCTIONS, Network, Params

__all__ = [
    "BATCH",
    "DEPTH",
    "DTYPES",
    "WIDTH",
    "Case",
    "batches",
    "cases",
    "layer_sizes",
    "networks",
    "params",
]

DEPTH = (1, 5)
"""Default range of the number of weight layers, inclusive."""
WIDTH = (1, 32)
"""Default range of every layer's width (input, hidden and output), inclusive."""
BATCH = (1, 16)
"""Default range of the batch size, inclusive."""
DTYPES = ("float64", "float32")
"""The floating dtypes crossgrad computes in."""

MAX_RESOLUTION = 10
"""Finest grid: values are ``k / 2**resolution`` with ``resolution`` in ``1..MAX_RESOLUTION``."""
FAR_OUT_EXPONENTS = (0, 0, 0, 0, 0, 5, 10, 17)
"""``far_out`` scales one layer by ``2**e`` for ``e`` drawn from here (mostly not at all)."""
MAX_KINKS_PER_LAYER = 2

Array = NDArray[np.floating]
Range = int | tuple[int, int]


@dataclass(frozen=True, eq=False)
class Case:
    """One drawn case: a network, its parameters, inputs ``x`` ``(batch, in)``, targets ``y``.

    ``y`` is ``(batch, out)`` and lies in the domain of ``net.loss``; ``x``, ``y`` and the
    parameters share one dtype.  ``repr`` is valid Python (with ``from numpy import array,
    float32`` and ``from crossgrad.reference import Network, Params``); ``describe()`` is the
    readable form used in failure reports.
    """

    net: Network
    params: Params
    x: Array
    y: Array

    @property
    def dtype(self) -> np.dtype[Any]:
        """The dtype of every array of the case."""
        return self.params.dtype

    @property
    def batch(self) -> int:
        """The number of samples."""
        return int(self.x.shape[0])

    def __repr__(self) -> str:
        with np.printoptions(threshold=sys.maxsize, floatmode="unique"):
            weights = ", ".join(repr(W) for W in self.params.weights)
            biases = ", ".join(repr(b) for b in self.params.biases)
            return (
                f"Case(net={self.net!r}, "
                f"params=Params(weights=[{weights}], biases=[{biases}]), "
                f"x={self.x!r}, y={self.y!r})"
            )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        # Hypothesis (like IPython) pretty-prints dataclasses field by field; keep our repr.
        printer.text(repr(self))

    def describe(self) -> str:
        """A multi-line description: sizes, activations, loss, dtype, then every array."""
        net = self.net
        lines = [
            f"network     {' -> '.join(map(str, net.sizes))} (sizes {net.sizes})",
            f"activations {', '.join(net.activations)}",
            f"loss        {net.loss}, {net.reduction} over a batch of {self.batch}",
            f"dtype       {self.dtype}",
        ]
        arrays = {**self.params.named(), "x": self.x, "y": self.y}
        with np.printoptions(threshold=sys.maxsize, floatmode="unique", linewidth=100):
            for name, value in arrays.items():
                text = np.array2string(value, separator=", ", prefix=f"{name:<3}= ")
                lines.append(f"{name:<3}= {text}")
        return "\n".join(lines)


def _range(argument: str, value: object, low: int) -> tuple[int, int]:
    """A checked inclusive range ``(lo, hi)`` from an int or a pair, both at least ``low``."""
    pair: object = (value, value) if isinstance(value, numbers.Integral) else value
    if (
        not isinstance(pair, tuple | list)
        or len(pair) != 2
        or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in pair)
    ):
        raise TypeError(f"{argument} must be an int or a (min, max) pair of ints, got {value!r}")
    lo, hi = int(pair[0]), int(pair[1])
    if not low <= lo <= hi:
        raise ValueError(f"{argument} must satisfy {low} <= min <= max, got {value!r}")
    return lo, hi


def _names(argument: str, value: str | Sequence[str] | None, known: Sequence[str]) -> list[str]:
    """A checked, non-empty list of names from ``known`` (all of them for ``None``)."""
    if value is None:
        return list(known)
    if not isinstance(value, str | Sequence):
        raise TypeError(
            f"{argument} must be a name, a sequence of names or None, got {type(value).__name__}"
        )
    names = [value] if isinstance(value, str) else list(value)
    if not names:
        raise ValueError(f"{argument} must name at least one of {', '.join(known)}, got none")
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"{argument} must hold names (str), got {type(name).__name__}")
        if name not in known:
            raise ValueError(f"unknown {argument} {name!r}; expected one of {', '.join(known)}")
    return list(dict.fromkeys(names))


def _dtype(value: object) -> np.dtype[Any]:
    try:
        dtype = np.dtype(value)  # type: ignore[call-overload]
    except TypeError:
        raise TypeError(f"dtype must be float32 or float64, got {value!r}") from None
    if dtype.name not in DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


def layer_sizes(
    *, depth: Range = DEPTH, width: Range = WIDTH
) -> st.SearchStrategy[tuple[int, ...]]:
    """Layer widths ``(in, hidden..., out)``: ``depth`` weight layers of widths in ``width``."""
    lo_d, hi_d = _range("depth", depth, 1)
    lo_w, hi_w = _range("width", width, 1)
    return st.lists(st.integers(lo_w, hi_w), min_size=lo_d + 1, max_size=hi_d + 1).map(tuple)


def _network(n_in: int, layers: Sequence[tuple[int, str]], loss: str, reduction: str) -> Network:
    """The network of ``(width, activation)`` layers; the loss may impose the last activation."""
    acts = [act for _, act in layers]
    required = LOSSES[loss].output_activation
    if required is not None:
        acts[-1] = required
    sizes = (n_in, *(width for width, _ in layers))
    return Network(sizes, activation=acts, loss=loss, reduction=reduction)


def _layer_lists(
    depth: tuple[int, int], block: st.SearchStrategy[tuple[Any, ...]]
) -> st.SearchStrategy[list[tuple[Any, ...]]]:
    # One list element per layer, holding everything about that layer: deleting an element
    # deletes a whole layer, which is how Hypothesis shrinks a deep network to a shallow one.
    return st.lists(block, min_size=depth[0], max_size=depth[1])


@st.composite
def _networks(
    draw: st.DrawFn,
    width: tuple[int, int],
    depth: tuple[int, int],
    activations: list[str],
    losses: list[str],
    reductions: list[str],
) -> Network:
    n_in = draw(st.integers(*width))
    layers = draw(_layer_lists(depth, st.tuples(st.integers(*width), st.sampled_from(activations))))
    loss = draw(st.sampled_from(losses))
    reduction = draw(st.sampled_from(reductions))
    return _network(n_in, layers, loss, reduction)


def networks(
    *,
    activations: str | Sequence[str] | None = None,
    losses: str | Sequence[str] | None = None,
    reductions: str | Sequence[str] | None = None,
    depth: Range = DEPTH,
    width: Range = WIDTH,
) -> st.SearchStrategy[Network]:
    """Networks of ``depth`` layers (an int or inclusive ``(min, max)``) of widths in ``width``.

    Each layer's activation is drawn from ``activations``, the loss from ``losses`` and the
    reduction from ``reductions`` (default: all supported).  A loss that needs a particular
    output layer (``binary_cross_entropy``: sigmoid) always gets it, whatever
    ``activations`` allows.  Shrinks towards one layer, width 1, ``identity`` and
    ``half_sse``.
    """
    return _networks(
        _range("width", width, 1),
        _range("depth", depth, 1),
        _names("activations", activations, list(ACTIVATIONS)),
        _names("losses", losses, list(LOSSES)),
        _names("reductions", reductions, REDUCTIONS),
    )


def _grid(
    rng: np.random.Generator, shape: tuple[int, ...], resolution: int, low: int = -1
) -> Array:
    """Values ``k / 2**resolution`` in ``[low, 1]``, as float64 (exact in float32 too)."""
    steps = 2**resolution
    return rng.integers(low * steps, steps, size=shape, endpoint=True) / steps


def _layer_scale(fan_in: int) -> float:
    """``2**-⌊log2(fan_in)/2⌋``: about ``1/√fan_in`` and a power of two (so exact)."""
    return 2.0 ** -(int(math.log2(fan_in)) // 2)


def _seeds() -> st.SearchStrategy[int]:
    return st.integers(0, 2**32 - 1)


def _kink_rows(kinks: bool) -> st.SearchStrategy[frozenset[int]]:
    """Rows to zero, as indices taken modulo the layer's width (valid for any width)."""
    if not kinks:
        return st.just(frozenset())
    return st.frozensets(st.integers(0, WIDTH[1] - 1), max_size=MAX_KINKS_PER_LAYER)


def _far_out(far_out: bool, n_layers: int) -> st.SearchStrategy[tuple[int, int]]:
    """``(exponent, layer)``: scale that layer by ``2**exponent``."""
    if not far_out:
        return st.just((0, 0))
    return st.tuples(st.sampled_from(FAR_OUT_EXPONENTS), st.integers(0, n_layers - 1))


def _build_params(
    net: Network,
    dtype: np.dtype[Any],
    layers: Sequence[tuple[int, frozenset[int]]],
    resolution: int,
    far: tuple[int, int],
) -> Params:
    """Parameters from one ``(seed, kink rows)`` per layer, on the grid of ``resolution``."""
    weights, biases = [], []
    for (fan_in, fan_out), (seed, rows) in zip(
        zip(net.sizes[:-1], net.sizes[1:], strict=True), layers, strict=True
    ):
        rng = np.random.default_rng(seed)
        scale = _layer_scale(fan_in)
        W = scale * _grid(rng, (fan_out, fan_in), resolution)
        b = scale * _grid(rng, (fan_out,), resolution)
        for row in rows:  # z of this unit is Σ 0·a + 0 = 0 exactly, in any order
            W[row % fan_out] = 0.0
            b[row % fan_out] = 0.0
        weights.append(W)
        biases.append(b)
    exponent, layer = far
    weights[layer] *= 2.0**exponent
    biases[layer] *= 2.0**exponent
    return Params(
        weights=[W.astype(dtype) for W in weights], biases=[b.astype(dtype) for b in biases]
    )


@st.composite
def _params(
    draw: st.DrawFn, net: Network, dtype: np.dtype[Any], kinks: bool, far_out: bool
) -> Params:
    n = net.n_layers
    layers = draw(st.lists(st.tuples(_seeds(), _kink_rows(kinks)), min_size=n, max_size=n))
    resolution = draw(st.integers(1, MAX_RESOLUTION))
    far = draw(_far_out(far_out, n))
    return _build_params(net, dtype, layers, resolution, far)


def params(
    net: Network, *, dtype: object = "float64", kinks: bool = True, far_out: bool = False
) -> st.SearchStrategy[Params]:
    """Parameters that fit ``net``, in ``dtype`` (``"float64"`` or ``"float32"``).

    Weights and biases of a layer with ``fan_in`` inputs lie in ``[-s, s]``,
    ``s ≈ 1/√fan_in`` (see the module docstring for the grid).  ``kinks`` zeroes up to two
    weight rows and biases per layer (pre-activations exactly 0); ``far_out`` may scale one
    layer by up to ``2**17`` (pre-activations out to about ``1e6``).
    """
    if not isinstance(net, Network):
        raise TypeError(f"net must be a crossgrad Network, got {type(net).__name__}")
    return _params(net, _dtype(dtype), bool(kinks), bool(far_out))


@st.composite
def _batches(
    draw: st.DrawFn, net: Network, dtype: np.dtype[Any], batch: tuple[int, int]
) -> tuple[Array, Array]:
    n = draw(st.integers(*batch))
    seed = draw(st.integers(0, 2**32 - 1))
    resolution = draw(st.integers(1, MAX_RESOLUTION))
    rng = np.random.default_rng(seed)
    n_in, n_out = net.sizes[0], net.sizes[-1]
    x = _grid(rng, (n, n_in), resolution)
    if net.loss == "binary_cross_entropy":
        y = _grid(rng, (n, n_out), resolution, low=0)
    elif net.loss == "softmax_cross_entropy":
        if draw(st.booleans()):  # rows of non-negative weights, else one-hot rows
            y = _grid(rng, (n, n_out), resolution, low=0)
        else:
            y = np.eye(n_out)[rng.integers(0, n_out, size=n)]
    else:
        y = _grid(rng, (n, n_out), resolution)
    return x.astype(dtype), y.astype(dtype)


def batches(
    net: Network, *, dtype: object = "float64", batch: Range = BATCH
) -> st.SearchStrategy[tuple[Array, Array]]:
    """``(x, y)`` for ``net``: ``x`` ``(batch, in)`` in ``[-1, 1]``, ``y`` ``(batch, out)``.

    The targets lie in the loss's domain: in ``[-1, 1]`` for ``half_sse`` and ``mse``, in
    ``[0, 1]`` for ``binary_cross_entropy``, and one-hot rows or rows of weights in ``[0, 1]``
    for ``softmax_cross_entropy``.  ``batch`` is an int or an inclusive ``(min, max)``.
    """
    if not isinstance(net, Network):
        raise TypeError(f"net must be a crossgrad Network, got {type(net).__name__}")
    return _batches(net, _dtype(dtype), _range("batch", batch, 1))


@st.composite
def _cases(
    draw: st.DrawFn,
    width: tuple[int, int],
    depth: tuple[int, int],
    activations: list[str],
    losses: list[str],
    reductions: list[str],
    dtypes: list[np.dtype[Any]],
    batch: tuple[int, int],
    kinks: bool,
    far_out: bool,
) -> Case:
    n_in = draw(st.integers(*width))
    block = st.tuples(
        st.integers(*width), st.sampled_from(activations), _seeds(), _kink_rows(kinks)
    )
    layers = draw(_layer_lists(depth, block))
    net = _network(n_in, [(w, act) for w, act, _, _ in layers], draw(st.sampled_from(losses)),
                   draw(st.sampled_from(reductions)))  # fmt: skip
    dtype = draw(st.sampled_from(dtypes))
    resolution = draw(st.integers(1, MAX_RESOLUTION))
    far = draw(_far_out(far_out, net.n_layers))
    params_ = _build_params(
        net, dtype, [(seed, rows) for *_, seed, rows in layers], resolution, far
    )
    x, y = draw(_batches(net, dtype, batch))
    return Case(net, params_, x, y)


def cases(
    *,
    activations: str | Sequence[str] | None = None,
    losses: str | Sequence[str] | None = None,
    reductions: str | Sequence[str] | None = None,
    dtype: object | Sequence[object] | None = None,
    depth: Range = DEPTH,
    width: Range = WIDTH,
    batch: Range = BATCH,
    kinks: bool = True,
    far_out: bool = True,
) -> st.SearchStrategy[Case]:
    """Whole cases: ``networks(...)``, then ``params`` and ``batches`` that fit the network.

    ``dtype`` is ``"float64"``, ``"float32"``, a sequence of them, or ``None`` for both.  The
    other arguments are those of ``networks``, ``params`` and ``batches``; ranges are an int
    or an inclusive ``(min, max)``.
    """
    if dtype is None:
        dtypes = [np.dtype(d) for d in DTYPES]
    elif isinstance(dtype, str | np.dtype | type):
        dtypes = [_dtype(dtype)]
    elif isinstance(dtype, Sequence) and dtype:
        dtypes = list(dict.fromkeys(_dtype(d) for d in dtype))
    else:
        raise TypeError(
            f"dtype must be float32, float64, a sequence of them or None, got {dtype!r}"
        )
    return _cases(
        _range("width", width, 1),
        _range("depth", depth, 1),
        _names("activations", activations, list(ACTIVATIONS)),
        _names("losses", losses, list(LOSSES)),
        _names("reductions", reductions, REDUCTIONS),
        dtypes,
        _range("batch", batch, 1),
        bool(kinks),
        bool(far_out),
    )
