"""What is benchmarked: the networks, batch sizes and dtypes, and the FLOPs of one step.

A ``Case`` is one network at one batch size in one dtype with one hidden activation, named by
a readable id such as ``784-1024-1024-10/b256/float32/sigmoid``.  The grids (``quick``,
``full``) hold the headline cases, each with sigmoid, tanh and relu hidden layers: the worked
example's 4-3-2 network at batch 1 (sigmoid output, ½‖ŷ − y‖²), a 64-128-10 classifier at
batch 32 and an MNIST-sized 784-1024-1024-10 classifier at batch 256 (identity output,
softmax cross-entropy on the logits); then a batch sweep and a width sweep of relu
classifiers, each in float32 and float64.  ``parse_case`` reads an id back into a ``Case``,
for ``crossgrad bench --case``.

FLOPs of one SGD step.  For layers ``l = 1..L`` of widths ``n_0 .. n_L`` and batch ``B``::

    forward   z_l = a_{l-1} W_lᵀ + b_l     2·B·n_{l-1}·n_l + B·n_l
    backward  ∂L/∂W_l = δ_lᵀ a_{l-1}       2·B·n_{l-1}·n_l
              ∂L/∂b_l = Σ_batch δ_l        B·n_l
              δ_{l-1} = (δ_l W_l) ∘ …      2·B·n_{l-1}·n_l   (l > 1 only: no δ for the input)
    update    W − lr·∂L/∂W, b − lr·∂L/∂b  2·(n_{l-1}·n_l + n_l)

Activations, their derivatives and the loss are not counted: a transcendental function has no
agreed FLOP count, and they are a vanishing share of the work of every network big enough for
GFLOP/s to mean anything.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

DTYPES = ("float32", "float64")
ACTIVATIONS = ("sigmoid", "tanh", "relu")
"""The hidden activations of the headline cases, and those ``--case`` accepts."""


@dataclass(frozen=True)
class Case:
    """One benchmark point: a network, a batch size and a dtype.

    ``sizes`` are the layer widths ``(in, hidden..., out)``; ``activations`` has one name per
    layer (the last one is the output layer's); ``loss`` is a ``crossgrad.reference`` loss name
    (always with ``mean`` reduction); ``group`` says which part of the grid the case belongs to
    (``headline``, ``batch sweep``, ``width sweep``), for the plot.
    """

    sizes: tuple[int, ...]
    activations: tuple[str, ...]
    loss: str
    batch: int
    dtype: str
    group: str = "headline"

    @property
    def network(self) -> str:
        """The layer widths as the document writes them, e.g. ``4-3-2``."""
        return "-".join(str(n) for n in self.sizes)

    @property
    def activation(self) -> str:
        """The hidden layers' activation (the first layer's; the output layer may differ)."""
        return self.activations[0]

    @property
    def id(self) -> str:
        """A readable id ``network/b<batch>/<dtype>/<activation>``: ``4-3-2/b1/float64/tanh``."""
        return f"{self.network}/b{self.batch}/{self.dtype}/{self.activation}"

    @property
    def flops(self) -> int:
        """The floating-point operations of one SGD step (the formula in the module docstring)."""
        return step_flops(self.sizes, self.batch)


def step_flops(sizes: tuple[int, ...], batch: int) -> int:
    """FLOPs of one forward, backward and SGD update for layer ``sizes`` at ``batch`` samples.

    Counts matrix products (2 per multiply-add), bias additions and sums, and the update; see
    the module docstring for the formula.
    """
    total = 0
    for l, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        matmuls = 3 if l > 0 else 2  # forward, ∂L/∂W, and δ for the layer below when there is one
        total += matmuls * 2 * batch * n_in * n_out
        total += 2 * batch * n_out  # + b in the forward pass, Σ_batch δ in the backward pass
        total += 2 * (n_in * n_out + n_out)  # p − lr·∂L/∂p
    return total


WORKED_EXAMPLE = (4, 3, 2)
"""The document's network: its cases keep its sigmoid output layer and ½‖ŷ − y‖² loss."""


def classifier(
    sizes: tuple[int, ...], batch: int, dtype: str, activation: str = "relu", group: str = "custom"
) -> Case:
    """A classifier: ``activation`` hidden layers, an identity output layer and softmax
    cross-entropy on its logits."""
    activations = (activation,) * (len(sizes) - 2) + ("identity",)
    return Case(sizes, activations, "softmax_cross_entropy", batch, dtype, group)


def worked_example(
    batch: int, dtype: str, activation: str = "sigmoid", group: str = "custom"
) -> Case:
    """The worked example's 4-3-2 network: ``activation`` hidden, sigmoid output, ½‖ŷ − y‖²."""
    return Case(WORKED_EXAMPLE, (activation, "sigmoid"), "half_sse", batch, dtype, group)


def headline(dtype: str) -> list[Case]:
    """The cases the goals are set for, each with sigmoid, tanh and relu hidden layers."""
    cases = []
    for activation in ACTIVATIONS:
        cases += [
            worked_example(1, dtype, activation, "headline"),
            classifier((64, 128, 10), 32, dtype, activation, "headline"),
            classifier((784, 1024, 1024, 10), 256, dtype, activation, "headline"),
        ]
    return cases


def batch_sweep(dtype: str, batches: tuple[int, ...]) -> list[Case]:
    """The MNIST-sized relu network 784-256-256-10 at growing batch sizes."""
    return [classifier((784, 256, 256, 10), b, dtype, "relu", "batch sweep") for b in batches]


def width_sweep(dtype: str, widths: tuple[int, ...]) -> list[Case]:
    """784-w-w-10 relu at batch 128, for growing hidden width ``w``."""
    return [classifier((784, w, w, 10), 128, dtype, "relu", "width sweep") for w in widths]


def grid(kind: str) -> list[Case]:
    """The cases of a named grid: ``full``, ``quick`` or ``tiny`` (for tests: seconds).

    ``full`` is the headline cases, the batch sweep (1 to 1024) and the width sweep (64 to
    2048), in float32 and float64.  ``quick`` is the headline cases and a short batch sweep in
    both dtypes.  ``tiny`` is two small networks in both dtypes.
    """
    cases: list[Case] = []
    for dtype in DTYPES:
        if kind == "full":
            cases += headline(dtype)
            cases += batch_sweep(dtype, (1, 4, 16, 64, 256, 1024))
            cases += width_sweep(dtype, (64, 128, 256, 512, 1024, 2048))
        elif kind == "quick":
            cases += headline(dtype)
            cases += batch_sweep(dtype, (1, 16, 256))
        elif kind == "tiny":
            cases += [
                worked_example(1, dtype, "sigmoid", "headline"),
                classifier((6, 5, 3), 4, dtype, "tanh", "batch sweep"),
            ]
        else:
            raise ValueError(f"grid must be 'full', 'quick' or 'tiny', got {kind!r}")
    return cases


GRIDS = ("full", "quick", "tiny")


CASE_FORMAT = "SIZES/bBATCH/DTYPE/ACTIVATION"
CASE_EXAMPLE = "784-1024-1024-10/b256/float32/sigmoid"


def parse_case(text: str) -> Case:
    """The ``Case`` named by an id ``SIZES/bBATCH/DTYPE/ACTIVATION`` (``8-4-2/b1/float64/relu``).

    ``SIZES`` are at least two positive layer widths joined by ``-``; ``BATCH`` a positive
    integer; ``DTYPE`` one of ``DTYPES``; ``ACTIVATION`` one of ``ACTIVATIONS``, for the hidden
    layers (a network of two widths has none: its ACTIVATION is ``identity``, its output
    layer's, so that its id reads back).  The network is a classifier (identity output layer,
    softmax cross-entropy), as in every headline case but the worked example; ``4-3-2`` is
    the worked example's network and keeps its sigmoid output layer and ½‖ŷ − y‖² loss, so
    that an id of the grid names the grid's case.  Raises ``ValueError`` saying what is wrong.
    """
    usage = f"expected {CASE_FORMAT}, e.g. {CASE_EXAMPLE}"
    parts = text.strip().split("/")
    if len(parts) != 4:
        raise ValueError(f"{usage}; got {text!r} ({len(parts)} part(s) separated by '/')")
    sizes_text, batch_text, dtype, activation = parts
    widths = sizes_text.split("-")
    if len(widths) < 2 or not all(re.fullmatch(r"[0-9]+", w) and int(w) > 0 for w in widths):
        raise ValueError(
            f"{usage}; SIZES must be two or more positive layer widths joined by '-', "
            f"got {sizes_text!r}"
        )
    if not (re.fullmatch(r"b[0-9]+", batch_text) and int(batch_text[1:]) > 0):
        raise ValueError(
            f"{usage}; the batch must be 'b' and a positive integer, e.g. b256, got {batch_text!r}"
        )
    if dtype not in DTYPES:
        raise ValueError(f"{usage}; DTYPE must be one of {', '.join(DTYPES)}, got {dtype!r}")
    sizes, batch = tuple(int(w) for w in widths), int(batch_text[1:])
    if len(sizes) == 2 and activation != "identity":
        raise ValueError(
            f"{usage}; {sizes_text} has no hidden layer for ACTIVATION {activation!r}: its "
            f"only layer is the identity output ({sizes_text}/{batch_text}/{dtype}/identity), "
            "or give three or more widths"
        )
    if len(sizes) > 2 and activation not in ACTIVATIONS:
        raise ValueError(
            f"{usage}; ACTIVATION must be one of {', '.join(ACTIVATIONS)}, got {activation!r}"
        )
    if sizes == WORKED_EXAMPLE:
        return worked_example(batch, dtype, activation)
    return classifier(sizes, batch, dtype, activation)
