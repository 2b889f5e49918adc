"""A worked backpropagation example, step by step, as data: the document's, or any small network's.

A ``Walkthrough`` holds one sample's forward pass, loss, backward pass and SGD step as the
worked example presents them (``z₁, a₁, …, ŷ, L, δ_L, ∂L/∂W_L, W_L', ∂L/∂b_L, b_L', δ_{L−1}, …``),
each step's value from the NumPy reference, how every cross-checking backend (torch, jax,
numeric) agrees with it, and, for the document's own example, its printed figures::

    from crossgrad import walkthrough

    w = walkthrough.document(backends=("torch", "jax"))
    print(walkthrough.to_text(w))           # what ``crossgrad example`` prints
    walkthrough.to_json(w)["figures"]       # one record per printed figure

    w = walkthrough.generate(Network((2, 2, 1), "tanh"), seed=3)
    print(walkthrough.to_markdown(w))       # a new worked example, in the document's style

Agreement is ``adapters.crosscheck``'s, under the tolerance model of
``crossgrad.adapters.tolerance``: a backend's value ``v`` of a step agrees with the reference's
``r`` when ``|v − r| ≤ atol + rtol · S`` entry by entry, with each backend's ``(rtol, atol)``
and ``S`` the entry's error scale (the forward pass on absolute values for ``z``, ``a`` and the
loss, ``error_scale`` for the gradients and for δ, which equals ``∂L/∂b`` for one sample, and
``|W| + η·S`` for an update ``W' = W − η ∂L/∂W``).  The *relative difference* reported is
``max |v − r| / S``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _walkthrough_tex as _tex
from ._walkthrough_text import backends_summary, equation, figures_summary, to_json, to_text
from .adapters.tolerance import ParamComparison, compare_arrays, error_scale
from .reference import Network, Params, backprop, init_params, sgd_step, worked_example
from .reference.validation import check_inputs, check_lr
from .reference.worked_example import FigureCheck, PrintedFigure

__all__ = [
    "Step",
    "Walkthrough",
    "backends_summary",
    "document",
    "equation",
    "example_inputs",
    "figures_summary",
    "generate",
    "quantity_names",
    "to_json",
    "to_latex",
    "to_markdown",
    "to_text",
    "walk",
]

Array = NDArray[np.floating]

DOCUMENT_LR_SOURCE = (
    "not printed in the document; inferred from its updates: with η = 0.1 every printed "
    "W' and b' equals W − η·∂L/∂W within its rounding (errata aside), and with 0.05, 0.09, "
    "0.11, 0.2 or 1.0 some do not"
)
GENERATED_LR_SOURCE = "chosen for this example"
START_DECIMALS = 2
"""A generated example's starting weights, biases and inputs are rounded to this many decimals,
so that every number a reader starts from is printed exactly."""


@dataclass(frozen=True)
class Step:
    """One quantity of the example: ``value`` from the reference, how each backend agrees.

    ``quantity`` is its name as in ``worked_example.QUANTITIES`` (``"z1"``, ``"a1"``,
    ``"y_hat"``, ``"loss"``, ``"delta2"``, ``"dL/dW2"``, ``"W2'"``, ``"dL/db2"``, ``"b2'"``);
    ``kind`` is that name without its layer (``"z"``, ``"a"``, ``"y_hat"``, ``"loss"``,
    ``"delta"``, ``"dL/dW"``, ``"W'"``, ``"dL/db"``, ``"b'"``) and ``layer`` the document's
    layer number (1-based; 0 for the loss).  ``value``: ``()`` for the loss, ``(width,)`` for a
    vector, ``(out, in)`` for a weight matrix.  ``figures`` are the printed figures of this
    quantity, beside the value.
    """

    quantity: str
    kind: str
    layer: int
    value: Array
    agreement: Mapping[str, ParamComparison]
    figures: tuple[FigureCheck, ...] = ()

    @property
    def agrees(self) -> bool:
        """Whether every backend agrees with the reference on this step."""
        return all(c.ok for c in self.agreement.values())


@dataclass(frozen=True)
class Walkthrough:
    """A whole worked example: the setting, every step, the backends' agreement.

    ``x`` ``(in,)`` and ``y`` ``(out,)`` are the one sample; ``tolerances`` maps each
    cross-checking backend to its ``(rtol, atol)``: a value agrees when
    ``|v − r| ≤ atol + rtol·S``, ``S`` its error scale.
    """

    title: str
    net: Network
    params: Params
    x: Array
    y: Array
    lr: float
    lr_source: str
    steps: tuple[Step, ...]
    tolerances: Mapping[str, tuple[float, float]]

    @property
    def backends(self) -> tuple[str, ...]:
        """The cross-checking backends, in order."""
        return tuple(self.tolerances)

    @property
    def ok(self) -> bool:
        """Whether every backend agrees with the reference on every step."""
        return all(step.agrees for step in self.steps)

    @property
    def figures(self) -> tuple[FigureCheck, ...]:
        """Every printed figure beside its computed value, in the document's order."""
        return tuple(check for step in self.steps for check in step.figures)

    @property
    def notes(self) -> tuple[str, ...]:
        """Remarks on the setting: choices that are legal but unusual, as the document would
        point them out."""
        return network_notes(self.net)

    def step(self, quantity: str) -> Step:
        """The step named ``quantity`` (``"a1"``, ``"dL/dW2"``, ...)."""
        for step in self.steps:
            if step.quantity == quantity:
                return step
        raise KeyError(quantity)

    def worst(self, backend: str) -> Step:
        """The step on which ``backend`` is furthest from the reference (relative to ``S``)."""
        return max(self.steps, key=lambda step: step.agreement[backend].max_rel_err)


def network_notes(net: Network) -> tuple[str, ...]:
    """What a reader of a worked example for ``net`` should be told about its setting."""
    last = net.activations[-1]
    if net.loss == "softmax_cross_entropy" and last != "identity":
        return (
            f"the softmax is taken over the output layer's {last} activations, softmax({last}(z)),"
            " not over its pre-activations z: legal, but unusual (softmax_cross_entropy "
            "usually follows an identity output layer)",
        )
    return ()


def quantity_names(net: Network) -> list[tuple[str, str, int]]:
    """``(quantity, kind, layer)`` of every step for ``net``, in the document's order."""
    n = net.n_layers
    names = []
    for l in range(1, n + 1):
        names.append((f"z{l}", "z", l))
        names.append(("y_hat", "y_hat", l) if l == n else (f"a{l}", "a", l))
    names.append(("loss", "loss", 0))
    for l in range(n, 0, -1):
        for kind in ("delta", "dL/dW", "W'", "dL/db", "b'"):
            quantity = f"{kind}{l}" if not kind.endswith("'") else f"{kind[0]}{l}'"
            names.append((quantity, kind, l))
    return names


def _values(net: Network, result: Any, updated: Params) -> dict[str, Array]:
    """Every step's value from one sample's ``backprop`` result and its SGD step."""
    values: dict[str, Array] = {"loss": np.asarray(result.loss, np.float64)}
    for l in range(1, net.n_layers + 1):
        values[f"z{l}"] = result.preactivations[l - 1]
        values["y_hat" if l == net.n_layers else f"a{l}"] = result.activations[l]
        values[f"delta{l}"] = values[f"dL/db{l}"] = result.grads.biases[l - 1]
        values[f"dL/dW{l}"] = result.grads.weights[l - 1]
        values[f"W{l}'"] = updated.weights[l - 1]
        values[f"b{l}'"] = updated.biases[l - 1]
    return {name: np.asarray(v) for name, v in values.items()}


def _agreement(
    net: Network,
    params: Params,
    x: Array,
    y: Array,
    lr: float,
    values: Mapping[str, Array],
    backends: Sequence[str],
) -> tuple[dict[str, dict[str, ParamComparison]], dict[str, tuple[float, float]]]:
    """Each backend's comparison with the reference on every step, and its ``(rtol, atol)``.

    ``adapters.crosscheck`` compares the loss, ``z``, ``a`` and the gradients (δ_l is
    ``∂L/∂b_l``); the updates ``W' = W − η·g`` are compared here, against the scale
    ``|W| + η·S``: ``W'`` rounds to ``eps·(|W| + η|g|)`` and inherits ``η`` times the error
    of ``g``, so the gradient's tolerance carries over with ``atol`` times ``η``.
    """
    from . import adapters

    report = adapters.crosscheck(net, params, x, y, backends=list(backends))
    S = error_scale(net, params, x, y)
    agreement: dict[str, dict[str, ParamComparison]] = {}
    for name in backends:
        rtol, atol = report.tolerances[name]
        if name in report.errors:
            failed = ParamComparison("all", np.inf, np.inf, np.inf, (), False, report.errors[name])
            agreement[name] = {q: failed for q, _, _ in quantity_names(net)}
            continue
        by_name = {c.name: c for c in report.comparisons[name]}
        grads = report.results[name].grads
        steps: dict[str, ParamComparison] = {}
        for quantity, kind, l in quantity_names(net):
            known = {"z": f"z{l}", "a": f"a{l}", "y_hat": f"a{l}", "loss": "loss"}
            known |= {"delta": f"b{l}", "dL/dW": f"W{l}", "dL/db": f"b{l}"}
            if kind in known:
                steps[quantity] = by_name[known[kind]]
                continue
            grad = by_name[("W" if kind == "W'" else "b") + str(l)]
            if grad.problem is not None:  # no update to compare: a wrong shape or dtype
                steps[quantity] = grad
                continue
            g, p, s = (
                (grads.weights, params.weights, S.weights)
                if kind == "W'"
                else (grads.biases, params.biases, S.biases)
            )
            updated = p[l - 1] - lr * g[l - 1]
            with np.errstate(over="ignore"):  # lr·S beyond the dtype (lr near 1e308): no bound
                scale = np.abs(p[l - 1]) + lr * s[l - 1]
            steps[quantity] = compare_arrays(
                quantity, updated, values[quantity], scale, rtol, lr * atol
            )
        agreement[name] = steps
    return agreement, dict(report.tolerances)


def walk(
    net: Network,
    params: Params,
    x: ArrayLike,
    y: ArrayLike,
    lr: float,
    *,
    backends: Sequence[str] = (),
    printed: Sequence[PrintedFigure] = (),
    title: str = "A worked backpropagation example",
    lr_source: str = GENERATED_LR_SOURCE,
) -> Walkthrough:
    """One sample through ``net``: every step from the reference, cross-checked by ``backends``.

    ``params`` must be float64; ``x`` is one sample ``(in,)`` and ``y`` its target ``(out,)``.
    ``backends`` are adapter names (``adapters.get`` raises ``ImportError`` naming the extra to
    install when one is missing).  ``printed`` figures (``worked_example.PRINTED``) are set
    beside the quantities they name.
    """
    lr = check_lr(lr)
    batch = check_inputs(net, params, x, y)
    if not batch.single:
        raise ValueError(f"x must be one sample (in,), got shape {np.shape(x)}")
    if params.dtype != np.float64:
        raise TypeError(f"params must be float64 for a worked example, got {params.dtype}")
    if isinstance(backends, str):
        raise TypeError(f"backends must be a sequence of names, got the string {backends!r}")
    x_, y_ = batch.x[0], batch.y[0]
    reference = backprop(net, params, x_, y_)
    values = _values(net, reference, sgd_step(params, reference.grads, lr))
    for figure in printed:
        shape = values[figure.quantity].shape if figure.quantity in values else ()
        index = figure.index
        fits = len(shape) == len(index) and all(i < n for i, n in zip(index, shape, strict=True))
        if figure.quantity not in values or not fits:
            raise ValueError(f"printed figure {figure} names no entry of this network's steps")

    agreement, tolerances = (
        _agreement(net, params, x_, y_, lr, values, backends) if backends else ({}, {})
    )
    checks = [FigureCheck(f, float(values[f.quantity][f.index])) for f in printed]
    steps = tuple(
        Step(
            quantity,
            kind,
            layer,
            values[quantity],
            {name: agreement[name][quantity] for name in backends},
            tuple(c for c in checks if c.figure.quantity == quantity),
        )
        for quantity, kind, layer in quantity_names(net)
    )
    return Walkthrough(title, net, params, x_, y_, lr, lr_source, steps, tolerances)


def document(backends: Sequence[str] = ("torch", "jax")) -> Walkthrough:
    """The document's worked example (``reference.worked_example``) beside its printed figures."""
    we = worked_example
    return walk(
        we.NETWORK, we.PARAMS, we.X, we.Y, we.LR,
        backends=backends,
        printed=we.PRINTED,
        title="The worked example: a 4-3-2 sigmoid network, one SGD step",
        lr_source=DOCUMENT_LR_SOURCE,
    )  # fmt: skip


def example_inputs(net: Network, seed: int) -> tuple[Params, Array, Array]:
    """Starting parameters, one input and its target for ``net``, reproducible from ``seed``.

    The parameters are ``init_params(net, seed)`` and ``x`` is drawn from ``U(−2, 2)``, both
    rounded to ``START_DECIMALS`` decimals.  The target ``y`` is one-hot for
    ``softmax_cross_entropy`` and drawn from ``{0, 1}`` otherwise, like the document's.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    drawn = init_params(net, seed)
    params = Params(
        [np.round(W, START_DECIMALS) for W in drawn.weights],
        [np.round(b, START_DECIMALS) for b in drawn.biases],
    )
    rng = np.random.default_rng([seed, 1])  # a stream of its own, apart from init_params'
    x = np.round(rng.uniform(-2, 2, size=net.sizes[0]), START_DECIMALS)
    out = net.sizes[-1]
    if net.loss == "softmax_cross_entropy":
        y = np.eye(out)[rng.integers(out)]
    else:
        y = rng.integers(0, 2, size=out).astype(np.float64)
    return params, x, y


def generate(
    net: Network, seed: int, lr: float = 0.1, backends: Sequence[str] = ("torch", "jax")
) -> Walkthrough:
    """A new worked example for ``net``: starting values from ``example_inputs(net, seed)``."""
    params, x, y = example_inputs(net, seed)
    title = (
        f"A worked backpropagation example: a {'-'.join(map(str, net.sizes))} network (seed {seed})"
    )
    return walk(net, params, x, y, lr, backends=backends, title=title)


def to_markdown(w: Walkthrough, digits: int = 4) -> str:
    """The walk-through as a worked example in Markdown, in the document's style.

    Display equations are ``$$…$$`` blocks; numbers are rounded to ``digits`` significant
    digits.
    """
    return _tex.to_markdown(w, _check_digits(digits))


def to_latex(w: Walkthrough, digits: int = 4) -> str:
    """The walk-through as a standalone LaTeX document (``article`` with ``amsmath``)."""
    return _tex.to_latex(w, _check_digits(digits))


def _check_digits(digits: object) -> int:
    if isinstance(digits, bool) or not isinstance(digits, int):
        raise TypeError(f"digits must be an int, got {type(digits).__name__}")
    if not 1 <= digits <= 17:
        raise ValueError(f"digits must be between 1 and 17, got {digits}")
    return digits
