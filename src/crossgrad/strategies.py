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
too many to draw one by one, and every value Hypothesis draws costs tens of microseconds.  So
Hypothesis draws only the structure and one ``seed`` per layer and one per case; NumPy fills
the arrays from ``numpy.random.default_rng(seed)`` with values on the grid
``k / 2**resolution`` (``|k| ≤ 2**resolution``), times a per-layer scale
``2**-⌊log2(fan_in)/2⌋ ≈ 1/√fan_in``.  The case's seed also picks the grid's resolution
(``1 + seed % MAX_RESOLUTION``), the batch's values and the ``far_out`` scaling; a layer's
seed picks its values and, with ``kinks="include"``, how many of its units sit on a kink
(``seed % 3``).  Everything about one layer (width, activation, seed) is one element of a
list, so shrinking removes whole layers; then it moves each layer's seed towards 0 and
simplifies its activation and narrows it, shortens the batch, simplifies the loss, and moves
the case's seed to 0: seed 0 is the coarsest grid (values in ``{-1, -½, 0, ½, 1}`` times the
scale), no kinks and no far-out layer, which reads well in a failure report.  Draws are few,
because each costs: a layer (width, activation and seed) is one choice, and so are the
batch size, loss, reduction and dtype of a case.
Grid values are exact in float32 and float64 alike, products and short sums of them are
exact too, so a float32 case holds exactly the numbers of its float64 twin.

Edge cases, as a policy (``kinks``):

- ``"include"`` (default): some weight rows are zeroed together with their biases, so that
  those units' pre-activations are exactly 0 in every framework, whatever the summation
  order: relu and leaky_relu are then evaluated exactly on their kink.  Every other unit
  with a kinked activation is kept off its kink as ``"avoid"`` keeps it: a pre-activation
  near 0 by chance (a cancellation after an inexact layer) could round to different sides
  of 0 in two frameworks, whose derivatives then differ by a jump, not a rounding error.
- ``"avoid"``: no pre-activation of a kinked activation (relu, leaky_relu) lies within
  ``2**-11`` of its error scale (``Σ|terms|``, the unit's largest over the batch before its
  bias is moved) of 0, on any sample: by construction, the bias of a unit too close is moved
  by a multiple of a power of two.
- ``"only"``: every case has at least one exact kink: one layer (a hidden one when the output
  layer cannot have a kinked activation) is given a kinked activation and a zeroed unit.

``far_out=True`` scales one layer by up to ``2**17``, pushing pre-activations out to about
``|z| = 1e6`` (saturated sigmoids, huge logits).
"""

from __future__ import annotations

import itertools
import math
import numbers
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from hypothesis import strategies as st
from numpy.typing import NDArray

from .reference import ACTIVATIONS, LOSSES, REDUCTIONS, Network, Params

__all__ = [
    "BATCH",
    "DEPTH",
    "DTYPES",
    "KINKED",
    "KINK_POLICIES",
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
KINKED = ("relu", "leaky_relu")
"""Activations whose derivative jumps at 0."""
KINK_POLICIES = ("include", "avoid", "only")
"""``kinks=``: exact kinks by chance and on purpose, none near one, at least one per case."""

MAX_RESOLUTION = 10
"""Finest grid: values are ``k / 2**resolution`` with ``resolution`` in ``1..MAX_RESOLUTION``."""
FAR_OUT_EXPONENTS = (0, 0, 0, 0, 0, 5, 10, 17)
"""``far_out`` scales one layer by ``2**e`` for ``e`` drawn from here (mostly not at all)."""
MAX_KINKS_PER_LAYER = 2
KINK_MARGIN = 2.0**-10
"""With ``kinks="avoid"``, ``|z| > KINK_MARGIN/2 · max Σ|terms of z|`` for every kinked unit
(the largest error scale over the batch, before the bias is moved; see ``_away_from_kinks``)."""

Array = NDArray[np.floating]
Range = int | tuple[int, int]
Kinks = Literal["include", "avoid", "only"]


@dataclass(frozen=True, eq=False)
class Case:
    """One drawn case: a network, its parameters, inputs ``x`` ``(batch, in)``, targets ``y``.

    ``y`` is ``(batch, out)`` and lies in the domain of ``net.loss``; ``x``, ``y`` and the
    parameters share one dtype.  ``repr`` is valid Python (with ``from numpy import array,
    float32``, ``from crossgrad.reference import Network, Params`` and ``from
    crossgrad.strategies import Case``); ``describe()`` is the readable form used in failure
    reports.
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


def _dtypes(dtype: object) -> list[np.dtype[Any]]:
    """The checked dtypes of ``cases(dtype=...)``: one, a sequence, or ``None`` for both."""
    if dtype is None:
        return [np.dtype(d) for d in DTYPES]
    if isinstance(dtype, str | np.dtype | type):
        return [_dtype(dtype)]
    if isinstance(dtype, Sequence) and dtype:
        return list(dict.fromkeys(_dtype(d) for d in dtype))
    raise TypeError(f"dtype must be float32, float64, a sequence of them or None, got {dtype!r}")


def smallest(
    depth: Range = DEPTH, width: Range = WIDTH, batch: Range = BATCH, dtype: object = None
) -> tuple[tuple[int, ...], int, list[np.dtype[Any]]]:
    """The layer widths and batch size of the smallest case ``cases`` draws with these
    ranges (Hypothesis' first draw, and where shrinking heads), and the dtypes it draws."""
    depth_, width_ = _range("depth", depth, 1)[0], _range("width", width, 1)[0]
    return (width_,) * (depth_ + 1), _range("batch", batch, 1)[0], _dtypes(dtype)


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


def kink_policy(value: object) -> Kinks:
    """``"include"``, ``"avoid"`` or ``"only"``; ``True``/``False`` mean include/avoid."""
    if value is True:
        return "include"
    if value is False:
        return "avoid"
    if not isinstance(value, str):
        raise TypeError(f"kinks must be one of {', '.join(KINK_POLICIES)}, got {value!r}")
    if value not in KINK_POLICIES:
        raise ValueError(f"kinks must be one of {', '.join(KINK_POLICIES)}, got {value!r}")
    return value  # type: ignore[return-value]


@dataclass(frozen=True)
class _Positions:
    """The activations allowed in hidden layers and in the output layer, and the losses."""

    hidden: list[str]
    output: list[str]
    losses: list[str]


def _positions(
    activations: str | Sequence[str] | None,
    hidden_activations: str | Sequence[str] | None,
    output_activation: str | Sequence[str] | None,
    losses: str | Sequence[str] | None,
) -> _Positions:
    known = list(ACTIVATIONS)
    every = _names("activations", activations, known)
    hidden = (
        every
        if hidden_activations is None
        else _names("hidden_activations", hidden_activations, known)
    )
    output = (
        every
        if output_activation is None
        else _names("output_activation", output_activation, known)
    )
    loss_names = _names("losses", losses, list(LOSSES))
    if output_activation is not None:
        # A loss that imposes its own output layer (binary_cross_entropy: sigmoid) cannot be
        # drawn with an output layer the caller ruled out.
        fits = [name for name in loss_names if LOSSES[name].output_activation in (None, *output)]
        if not fits:
            raise ValueError(
                f"output_activation {', '.join(output)} fits none of the losses "
                f"{', '.join(loss_names)} (binary_cross_entropy needs a sigmoid output layer)"
            )
        if losses is None:
            loss_names = fits
        elif len(fits) < len(loss_names):
            bad = [n for n in loss_names if n not in fits]
            raise ValueError(
                f"loss {', '.join(bad)} needs a {LOSSES[bad[0]].output_activation} output "
                f"layer, which output_activation {', '.join(output)} rules out"
            )
    return _Positions(hidden, output, loss_names)


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


Shape = tuple[int, str]
"""A layer's ``(width, activation)``."""


@dataclass(frozen=True)
class _LayerDraws:
    """The choices that draw the layers, built once per ``cases()``/``networks()`` call:
    one integer per layer (``_layer_choice``), hidden layers as a list, the output layer on
    its own, and the ``(width, activation)`` shapes each position allows."""

    hidden: st.SearchStrategy[list[int]]
    output: st.SearchStrategy[int]
    hidden_shapes: list[Shape]
    output_shapes: list[Shape]


def _shapes(width: tuple[int, int], activations: list[str]) -> list[Shape]:
    """Every ``(width, activation)``, activation by activation, then width by width: the
    activations are contiguous blocks, each starting with its narrowest width."""
    lo, hi = width
    return [(w, act) for act in activations for w in range(lo, hi + 1)]


LAYER_SEEDS = 2**32
"""Each layer's seed is one of ``0 .. LAYER_SEEDS - 1``."""


def _layer_choice(shapes: list[Shape]) -> st.SearchStrategy[int]:
    """A layer as one integer ``v = seed · n + k``: its seed and the ``k``-th of the ``n``
    ``shapes``.

    One choice instead of a pair of them (a shape, then a seed): every value Hypothesis draws
    has a fixed cost, and a case has up to five layers.
    Shrinking ``v`` moves the seed to the smallest that still fails and then, within it, the
    shape to the first activation that still fails and its narrowest width.  Hypothesis draws
    ``k`` close to uniformly (``v mod n``), and small seeds more often than large ones.
    """
    return st.integers(0, len(shapes) * LAYER_SEEDS - 1)


def _layer(v: int, shapes: list[Shape]) -> tuple[int, str, int]:
    """``(width, activation, seed)`` of the layer choice ``v`` (``_layer_choice``)."""
    seed, k = divmod(v, len(shapes))
    width, activation = shapes[k]
    return width, activation, seed


def _layer_draws(
    width: tuple[int, int], depth: tuple[int, int], positions: _Positions, min_hidden: int = 0
) -> _LayerDraws:
    # One list element per hidden layer, holding everything about that layer: deleting an
    # element deletes a whole layer, which is how Hypothesis shrinks a deep network to a
    # shallow one.  The output layer is drawn on its own, from its own activations.  The
    # strategies are built here once: building them inside every draw cost more than the
    # draw itself.
    hidden, output = _shapes(width, positions.hidden), _shapes(width, positions.output)
    hidden_layers = st.lists(
        _layer_choice(hidden),
        min_size=min(max(depth[0] - 1, min_hidden), depth[1] - 1),
        max_size=depth[1] - 1,
    )
    return _LayerDraws(hidden_layers, _layer_choice(output), hidden, output)


def _layers(draw: st.DrawFn, layers: _LayerDraws) -> list[tuple[int, str, int]]:
    """``(width, activation, seed)`` per layer: the hidden layers, then the output layer."""
    hidden = [_layer(v, layers.hidden_shapes) for v in draw(layers.hidden)]
    return [*hidden, _layer(draw(layers.output), layers.output_shapes)]


@st.composite
def _networks(
    draw: st.DrawFn,
    width: tuple[int, int],
    depth: tuple[int, int],
    positions: _Positions,
    reductions: list[str],
) -> Network:
    n_in = draw(st.integers(*width))
    layers = _layers(draw, _layer_draws(width, depth, positions))
    loss = draw(st.sampled_from(positions.losses))
    reduction = draw(st.sampled_from(reductions))
    return _network(n_in, [(w, act) for w, act, _ in layers], loss, reduction)


def networks(
    *,
    activations: str | Sequence[str] | None = None,
    hidden_activations: str | Sequence[str] | None = None,
    output_activation: str | Sequence[str] | None = None,
    losses: str | Sequence[str] | None = None,
    reductions: str | Sequence[str] | None = None,
    depth: Range = DEPTH,
    width: Range = WIDTH,
) -> st.SearchStrategy[Network]:
    """Networks of ``depth`` layers (an int or inclusive ``(min, max)``) of widths in ``width``.

    Each layer's activation is drawn from ``activations`` (every layer), or per position:
    ``hidden_activations`` for every hidden layer (drawn layer by layer) and
    ``output_activation`` for the last layer; a depth-1 network has only an output layer.
    The loss is drawn from ``losses`` and the reduction from ``reductions`` (default: all
    supported).  A loss that needs a particular output layer (``binary_cross_entropy``:
    sigmoid) always gets it; with ``output_activation`` given, such a loss is left out of the
    default ``losses`` when its output layer is not allowed (and named in a ``ValueError``
    when ``losses`` asks for it).  Shrinks towards one layer, width 1, the first activation
    named (``identity`` by default) and ``half_sse``.
    """
    return _networks(
        _range("width", width, 1),
        _range("depth", depth, 1),
        _positions(activations, hidden_activations, output_activation, losses),
        _names("reductions", reductions, REDUCTIONS),
    )


def _grid(
    rng: np.random.Generator,
    shape: tuple[int, ...],
    resolution: int,
    low: int = -1,
    scale: float = 1.0,
) -> Array:
    """Values ``scale · k / 2**resolution`` in ``scale · [low, 1]``, as float64.

    ``k`` is uniform over the ``n = (1 − low)·2**resolution + 1`` grid points, as
    ``⌊u·n⌋ + low·2**resolution`` for ``u`` uniform in ``[0, 1)``: ``u·n`` rounds below ``n``
    for every ``u < 1`` (``n`` is odd), and the grid values, times ``scale`` (a power of two),
    are exact in float32 and float64 alike.  ``rng.random`` and four in-place passes took
    5 µs on an ``(8, 9)`` grid, where ``rng.integers`` and its scaling took 20 µs.
    """
    steps = 2**resolution
    values = rng.random(shape)
    np.multiply(values, (1 - low) * steps + 1, out=values)
    np.floor(values, out=values)
    np.add(values, low * steps, out=values)
    np.multiply(values, scale / steps, out=values)
    return values


def _indices(rng: np.random.Generator, n: int, size: int) -> NDArray[np.intp]:
    """``size`` indices uniform in ``0..n-1`` (``⌊u·n⌋ < n`` for every ``u < 1``)."""
    return (rng.random(size) * n).astype(np.intp)


def _layer_scale(fan_in: int) -> float:
    """``2**-⌊log2(fan_in)/2⌋``: about ``1/√fan_in`` and a power of two (so exact)."""
    return 2.0 ** -(int(math.log2(fan_in)) // 2)


_SEEDS = st.integers(0, 2**32 - 1)


def _seeds() -> st.SearchStrategy[int]:
    return _SEEDS


def _resolution(seed: int) -> int:
    """The grid's resolution for a case's ``seed``: 1 (the coarsest) for seed 0."""
    return 1 + seed % MAX_RESOLUTION


def _far(seed: int, n_layers: int) -> tuple[int, int]:
    """``(exponent, layer)`` of the ``far_out`` scaling for a case's ``seed`` (none for 0)."""
    return FAR_OUT_EXPONENTS[(seed >> 4) % len(FAR_OUT_EXPONENTS)], (seed >> 8) % n_layers


def _layer_arrays(
    fan_in: int, fan_out: int, seed: int, resolution: int, kinks: Kinks
) -> tuple[Array, Array]:
    """``W`` ``(out, in)`` and ``b`` ``(out,)`` of one layer from its ``seed``, in float64.

    One grid ``[W | b]`` of shape ``(out, in + 1)``: a zeroed row zeroes a unit's weights and
    its bias together.
    """
    rng = np.random.default_rng(seed)
    Wb = _grid(rng, (fan_out, fan_in + 1), resolution, scale=_layer_scale(fan_in))
    if kinks == "include":
        # z of such a unit is Σ 0·a + 0 = 0 exactly, in any order.
        Wb[_indices(rng, fan_out, seed % (MAX_KINKS_PER_LAYER + 1))] = 0.0
    return Wb[:, :-1], Wb[:, -1]


def _targets(
    rng: np.random.Generator, loss: str, n: int, n_out: int, resolution: int, one_hot: bool
) -> Array:
    """Targets ``(n, n_out)`` in the domain of ``loss``, as float64."""
    if loss == "binary_cross_entropy":
        return _grid(rng, (n, n_out), resolution, low=0)
    if loss == "softmax_cross_entropy":
        if one_hot:
            return np.eye(n_out)[_indices(rng, n_out, n)]
        return _grid(rng, (n, n_out), resolution, low=0)  # rows of non-negative weights
    return _grid(rng, (n, n_out), resolution)


def _away_from_kinks(z: Array, terms: Array, keep: NDArray[np.bool_]) -> Array:
    """The shift ``δ`` per unit that puts every ``|z + δ|`` at least a margin away from 0,
    except the units ``keep`` marks (``δ = 0``: on a kink by construction).

    ``z`` and ``terms`` (``Σ|terms of z|``) are ``(batch, width)``.  The margin ``m`` is a
    power of two near ``KINK_MARGIN · max terms``; ``δ = k·m`` for the smallest ``|k|`` (0 if
    none is needed) such that ``|z + δ| ≥ m/2`` on every sample: each sample rules out at
    most two values of ``k``, so ``|k| ≤ batch + 1`` always finds one.
    """
    top = terms.max(axis=0)
    exponent = np.floor(np.log2(np.where(top > 0, top, 1.0)))
    margin = 2.0 ** (exponent + np.log2(KINK_MARGIN) + 1)
    shift = np.zeros(z.shape[1])
    units = np.flatnonzero((np.abs(z) < margin / 2).any(axis=0) & ~keep)
    if units.size:
        # Every k to try, smallest |k| first (0, -1, 1, -2, 2, ...), against every unit at
        # once: clear[i, j] when k_i·m moves all samples of unit j far enough from 0.
        ks = np.array([0.0, *(sign * i for i in range(1, z.shape[0] + 3) for sign in (-1, 1))])
        m = margin[units]
        moved = z[:, units] + (ks[:, None] * m)[:, None, :]  # (k, batch, unit)
        clear = (np.abs(moved) >= m / 2).all(axis=1)
        shift[units] = ks[clear.argmax(axis=0)] * m  # the first k that clears, for each unit
    return shift


def _build_case(
    net: Network,
    dtype: np.dtype[Any],
    layer_seeds: Sequence[int],
    seed: int,
    batch: int,
    kinks: Kinks,
    far_out: bool,
    kink_layer: int | None = None,
) -> Case:
    """The case of ``net`` from one seed per layer and one for the case (see the module)."""
    resolution = _resolution(seed)
    weights, biases = [], []
    for l, (fan_in, fan_out) in enumerate(zip(net.sizes[:-1], net.sizes[1:], strict=True)):
        W, b = _layer_arrays(fan_in, fan_out, layer_seeds[l], resolution, kinks)
        if l == kink_layer:  # "only": this layer's activation is kinked; put a unit on 0
            row = layer_seeds[l] % fan_out
            W[row] = 0.0
            b[row] = 0.0
        weights.append(W)
        biases.append(b)
    if far_out:
        exponent, layer = _far(seed, net.n_layers)
        weights[layer] *= 2.0**exponent
        biases[layer] *= 2.0**exponent
    rng = np.random.default_rng(seed)
    x = _grid(rng, (batch, net.sizes[0]), resolution)
    y = _targets(rng, net.loss, batch, net.sizes[-1], resolution, bool((seed >> 12) % 2))
    if any(name in KINKED for name in net.activations):
        # Every kinked unit is exactly on its kink or clearly off it, never near it by chance:
        # there, two frameworks' roundings may put z on different sides, and f' jumps.  The
        # units on a kink by construction (a zeroed row and bias: z = 0 in any framework)
        # stay, under "include" and "only"; every other is moved off.
        a, s = x, np.abs(x)
        for l, name in enumerate(net.activations):
            z = a @ weights[l].T + biases[l]
            if name in KINKED:
                terms = s @ np.abs(weights[l]).T + np.abs(biases[l])
                on_kink = (
                    np.zeros(z.shape[1], np.bool_)
                    if kinks == "avoid"
                    else ~(weights[l].any(axis=1) | (biases[l] != 0))
                )
                biases[l] = biases[l] + _away_from_kinks(z, terms, on_kink)
                z = a @ weights[l].T + biases[l]
            a = ACTIVATIONS[name].forward(z)
            s = np.abs(a) + s @ np.abs(weights[l]).T + np.abs(biases[l])
    params_ = Params(
        tuple(W.astype(dtype) for W in weights), tuple(b.astype(dtype) for b in biases)
    )
    return Case(net, params_, x.astype(dtype), y.astype(dtype))


@st.composite
def _params(
    draw: st.DrawFn, net: Network, dtype: np.dtype[Any], kinks: bool, far_out: bool
) -> Params:
    n = net.n_layers
    seeds = draw(st.lists(_seeds(), min_size=n, max_size=n))
    seed = draw(_seeds())
    policy: Kinks = "include" if kinks else "avoid"
    resolution = _resolution(seed)
    weights, biases = [], []
    for l, (fan_in, fan_out) in enumerate(zip(net.sizes[:-1], net.sizes[1:], strict=True)):
        W, b = _layer_arrays(fan_in, fan_out, seeds[l], resolution, policy)
        weights.append(W)
        biases.append(b)
    if far_out:
        exponent, layer = _far(seed, n)
        weights[layer] *= 2.0**exponent
        biases[layer] *= 2.0**exponent
    return Params(tuple(W.astype(dtype) for W in weights), tuple(b.astype(dtype) for b in biases))


def params(
    net: Network, *, dtype: object = "float64", kinks: bool = True, far_out: bool = False
) -> st.SearchStrategy[Params]:
    """Parameters that fit ``net``, in ``dtype`` (``"float64"`` or ``"float32"``).

    Weights and biases of a layer with ``fan_in`` inputs lie in ``[-s, s]``,
    ``s ≈ 1/√fan_in`` (see the module docstring for the grid).  ``kinks`` zeroes up to two
    weight rows and biases per layer (pre-activations exactly 0); ``far_out`` may scale one
    layer by up to ``2**17`` (pre-activations out to about ``1e6``).  Keeping pre-activations
    away from kinks needs the batch too: see ``cases(kinks="avoid")``.
    """
    if not isinstance(net, Network):
        raise TypeError(f"net must be a crossgrad Network, got {type(net).__name__}")
    return _params(net, _dtype(dtype), bool(kinks), bool(far_out))


@st.composite
def _batches(
    draw: st.DrawFn, net: Network, dtype: np.dtype[Any], batch: tuple[int, int]
) -> tuple[Array, Array]:
    n = draw(st.integers(*batch))
    seed = draw(_seeds())
    resolution = _resolution(seed)
    rng = np.random.default_rng(seed)
    x = _grid(rng, (n, net.sizes[0]), resolution)
    y = _targets(rng, net.loss, n, net.sizes[-1], resolution, bool((seed >> 12) % 2))
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


@dataclass(frozen=True)
class _CaseDraws:
    """Everything ``_cases`` draws from, built once per ``cases()`` call."""

    n_in: st.SearchStrategy[int]
    layers: _LayerDraws
    kinds: st.SearchStrategy[tuple[int, str, str, np.dtype[Any]]]
    positions: _Positions
    kinks: Kinks
    far_out: bool


def _kinds(
    batch: tuple[int, int], losses: list[str], reductions: list[str], dtypes: list[np.dtype[Any]]
) -> st.SearchStrategy[tuple[int, str, str, np.dtype[Any]]]:
    """``(batch, loss, reduction, dtype)`` as one choice among every combination, in that
    order.

    One draw instead of four: every value Hypothesis draws has a fixed cost, and shrinking
    the combination's index goes to the same place as shrinking the four one by one, the
    smallest batch, then the first loss, reduction and dtype that still fail.
    """
    sizes = range(batch[0], batch[1] + 1)
    return st.sampled_from(list(itertools.product(sizes, losses, reductions, dtypes)))


@st.composite
def _cases(draw: st.DrawFn, d: _CaseDraws) -> Case:
    n_in = draw(d.n_in)
    layers = _layers(draw, d.layers)
    n, loss, reduction, dtype = draw(d.kinds)
    seed = draw(_SEEDS)
    kink_layer = None
    if d.kinks == "only":
        # By construction: one layer that may be kinked gets a kinked activation (the first
        # one allowed there, if it has none) and, in _build_case, a unit exactly on 0.
        positions, last = d.positions, len(layers) - 1
        open_ = [
            l
            for l in range(len(layers))
            if any(a in KINKED for a in (positions.output if l == last else positions.hidden))
            and (l < last or LOSSES[loss].output_activation is None)
        ]
        kink_layer = open_[seed % len(open_)]
        w, act, s = layers[kink_layer]
        allowed = positions.output if kink_layer == last else positions.hidden
        if act not in KINKED:
            layers[kink_layer] = (w, next(a for a in allowed if a in KINKED), s)
    net = _network(n_in, [(w, act) for w, act, _ in layers], loss, reduction)
    return _build_case(net, dtype, [s for *_, s in layers], seed, n, d.kinks, d.far_out, kink_layer)


def cases(
    *,
    activations: str | Sequence[str] | None = None,
    hidden_activations: str | Sequence[str] | None = None,
    output_activation: str | Sequence[str] | None = None,
    losses: str | Sequence[str] | None = None,
    reductions: str | Sequence[str] | None = None,
    dtype: object | Sequence[object] | None = None,
    depth: Range = DEPTH,
    width: Range = WIDTH,
    batch: Range = BATCH,
    kinks: Kinks | bool = "include",
    far_out: bool = True,
) -> st.SearchStrategy[Case]:
    """Whole cases: a network as ``networks(...)`` draws it, then parameters and a batch.

    ``dtype`` is ``"float64"``, ``"float32"``, a sequence of them, or ``None`` for both.
    ``kinks`` is the kink policy ``"include"``, ``"avoid"`` or ``"only"`` (see the module
    docstring; ``True``/``False`` mean include/avoid).  ``far_out`` (on by default here, off
    in ``params``) lets one layer push pre-activations out to about ``|z| = 1e6``.  The other
    arguments are those of ``networks``, ``params`` and ``batches``; ranges are an int or an
    inclusive ``(min, max)``.  ``kinks="only"`` needs relu or leaky_relu among the
    activations.
    """
    dtypes = _dtypes(dtype)
    positions = _positions(activations, hidden_activations, output_activation, losses)
    policy = kink_policy(kinks)
    width_, depth_ = _range("width", width, 1), _range("depth", depth, 1)
    min_hidden = 0
    if policy == "only":
        output_ok = any(a in KINKED for a in positions.output) and any(
            LOSSES[n].output_activation is None for n in positions.losses
        )
        hidden_ok = any(a in KINKED for a in positions.hidden) and depth_[1] > 1
        if not (output_ok or hidden_ok):
            raise ValueError(
                "kinks='only' needs a kinked activation (relu or leaky_relu) that some layer "
                f"may have; the hidden layers allow {', '.join(positions.hidden)}, the output "
                f"layer {', '.join(positions.output)}"
            )
        # Every loss may impose its own output layer: without a kinkable output, a hidden one.
        min_hidden = (
            0
            if output_ok and all(LOSSES[n].output_activation is None for n in positions.losses)
            else 1
        )
        if not hidden_ok:
            min_hidden = 0
            positions = _Positions(
                positions.hidden,
                positions.output,
                [n for n in positions.losses if LOSSES[n].output_activation is None],
            )
    return _cases(
        _CaseDraws(
            st.integers(*width_),
            _layer_draws(width_, depth_, positions, min_hidden),
            _kinds(
                _range("batch", batch, 1),
                positions.losses,
                _names("reductions", reductions, REDUCTIONS),
                dtypes,
            ),
            positions,
            policy,
            bool(far_out),
        )
    )
