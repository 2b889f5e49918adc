"""What is benchmarked: the networks, batch sizes and dtypes, and the FLOPs of one step.

A ``Case`` is one network at one batch size in one dtype, named by a readable id such as
``784-1024-1024-10/b256/float32``.  The grids (``QUICK``, ``FULL``) follow the benchmark
issue: the worked example's 4-3-2 sigmoid network at batch 1, a 64-128-10 classifier at batch
32, an MNIST-sized 784-1024-1024-10 classifier at batch 256, a batch sweep and a width sweep,
each in float32 and float64.

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
from dataclasses import dataclass

DTYPES = ("float32", "float64")


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
    def id(self) -> str:
        """A readable id: ``network/b<batch>/<dtype>``."""
        return f"{self.network}/b{self.batch}/{self.dtype}"

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


def _classifier(sizes: tuple[int, ...], batch: int, dtype: str, group: str) -> Case:
    """A relu classifier with softmax cross-entropy on its logits (identity output layer)."""
    activations = ("relu",) * (len(sizes) - 2) + ("identity",)
    return Case(sizes, activations, "softmax_cross_entropy", batch, dtype, group)


def headline(dtype: str) -> list[Case]:
    """The three cases the issue sets goals for."""
    return [
        Case((4, 3, 2), ("sigmoid", "sigmoid"), "half_sse", 1, dtype),  # the worked example
        _classifier((64, 128, 10), 32, dtype, "headline"),
        _classifier((784, 1024, 1024, 10), 256, dtype, "headline"),
    ]


def batch_sweep(dtype: str, batches: tuple[int, ...]) -> list[Case]:
    """The MNIST-sized network 784-256-256-10 at growing batch sizes."""
    return [_classifier((784, 256, 256, 10), b, dtype, "batch sweep") for b in batches]


def width_sweep(dtype: str, widths: tuple[int, ...]) -> list[Case]:
    """784-w-w-10 at batch 128, for growing hidden width ``w``."""
    return [_classifier((784, w, w, 10), 128, dtype, "width sweep") for w in widths]


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
            cases += [headline(dtype)[0], _classifier((6, 5, 3), 4, dtype, "batch sweep")]
        else:
            raise ValueError(f"grid must be 'full', 'quick' or 'tiny', got {kind!r}")
    return cases


GRIDS = ("full", "quick", "tiny")
