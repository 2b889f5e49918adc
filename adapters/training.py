"""Training trajectories cross-checked: the reference's optimizers against torch.optim and optax.

::

    from crossgrad import adapters, reference

    report = adapters.crosscheck_training(net, params, batches, reference.optimizers.Adam())
    print(report); report.raise_for_mismatch()

Each backend trains the same network from the same parameters on the same batches, one step
per batch, with its framework's own optimizer (``torch_training``: ``torch.optim``;
``jax_training``: ``optax``).  Every step's loss and every parameter after every step are
compared with the reference's under the bounds of ``trajectory_tolerance``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..reference import Network, Params, Trajectory, train
from ..reference.training import check_batches, check_optimizer_object
from ..reference.validation import check_inputs, check_tolerance
from .trajectory_tolerance import TrajectoryBounds, trajectory_bounds

# name -> (module, the frameworks it needs, the pip extra that installs them)
TRAINING_BACKENDS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "torch": ("torch_training", ("torch",), "torch"),
    "jax": ("jax_training", ("jax", "optax"), "jax"),
}

Batches = list[tuple[NDArray[np.floating], NDArray[np.floating]]]


@dataclass(frozen=True)
class TrajectoryBackend:
    """A backend of one's own: ``trajectory(net, params, batches, optimizer) -> (losses,
    params)``, e.g. ``optax_backend`` for an optax transformation run as it is."""

    name: str
    trajectory: Callable[[Network, Params, Batches, Any], tuple[list[float], list[Params]]]


def optax_backend(transformation: Any, name: str = "optax") -> TrajectoryBackend:
    """A backend running the optax ``transformation`` as given (not configured to the
    reference's convention): how the tests show where optax's own defaults differ."""
    from . import jax_training

    def run(net: Network, params: Params, batches: Batches, _: Any) -> Any:
        return jax_training.trajectory(net, params, batches, transformation)

    return TrajectoryBackend(name, run)


def get_training(name: str) -> Any:
    """The training backend module ``name`` (``"torch"`` or ``"jax"``)."""
    from . import _found

    if name not in TRAINING_BACKENDS:
        raise ValueError(
            f"unknown training backend {name!r}; expected one of {', '.join(TRAINING_BACKENDS)}"
        )
    module, frameworks, extra = TRAINING_BACKENDS[name]
    missing = [fw for fw in frameworks if not _found(fw)]
    if missing:
        raise ImportError(
            f"the {name!r} training backend needs {', '.join(missing)}, not installed here: "
            f"pip install 'crossgrad[{extra}]'"
        )
    return importlib.import_module(f".{module}", __package__)


def available_training() -> tuple[str, ...]:
    """The training backends usable here, in a fixed order."""
    from . import _found

    return tuple(name for name, (_, fws, _) in TRAINING_BACKENDS.items() if all(map(_found, fws)))


@dataclass(frozen=True)
class StepComparison:
    """One value of one step: ``name`` is ``"loss"`` (before the step) or a parameter
    (``"W1"``, ``"b1"``, … after it); ``step`` counts from 1.

    ``max_abs_err`` is ``max |c − r|``; ``max_rel_err`` the true relative error
    ``max |c − r| / |r|`` over entries with ``r ≠ 0``; ``max_err_over_tolerance`` is
    ``max |c − r| / E`` with ``E`` the bound of ``trajectory_tolerance`` (≤ 1 passes), at
    ``worst_index``.
    """

    name: str
    step: int
    max_abs_err: float
    max_rel_err: float
    max_err_over_tolerance: float
    worst_index: tuple[int, ...]
    ok: bool
    problem: str | None = None


def compare(
    name: str, step: int, candidate: ArrayLike, reference: ArrayLike, bound: ArrayLike
) -> StepComparison:
    """Compare ``candidate`` with ``reference`` entry by entry under ``|c − r| ≤ bound``."""
    c, r = np.asarray(candidate), np.asarray(reference)
    E = np.broadcast_to(np.asarray(bound, dtype=np.float64), r.shape)
    if c.shape != r.shape:
        return StepComparison(
            name, step, np.inf, np.inf, np.inf, (), False, f"shape {c.shape}, expected {r.shape}"
        )
    problem = None if np.isfinite(c).all() else "non-finite values"
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        err = np.abs(c.astype(np.float64) - r.astype(np.float64))
        err = np.where(np.isnan(err), np.inf, err)
        ratio = np.where(E > 0, err / np.where(E > 0, E, 1), np.where(err > 0, np.inf, 0.0))
        nonzero = r != 0
        rel = np.abs(err[nonzero] / r[nonzero].astype(np.float64))
    worst = np.unravel_index(int(np.argmax(ratio)), ratio.shape) if ratio.size else ()
    over = float(ratio[worst]) if ratio.size else 0.0
    return StepComparison(
        name, step,
        float(err.max()) if err.size else 0.0,
        (float(rel.max()) if rel.size else 0.0) if np.isfinite(err).all() else np.inf,
        over, tuple(int(i) for i in worst), problem is None and over <= 1, problem,
    )  # fmt: skip


@dataclass
class TrainingReport:
    """The cross-check of every backend's trajectory against the reference's.

    ``comparisons[name][t]`` holds step ``t + 1``'s rows (the loss, then ``W1, b1, …``);
    ``errors`` the backends that raised, ``skipped`` those that cannot compute this
    optimizer (with the reason).  ``ok``: no error and every row within its bound.
    """

    reference: Trajectory
    bounds: TrajectoryBounds
    backends: tuple[str, ...]
    comparisons: dict[str, list[list[StepComparison]]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether every backend ran and every step of every one agreed with the reference."""
        return not self.errors and all(
            row.ok for steps in self.comparisons.values() for rows in steps for row in rows
        )

    def worst(self, name: str) -> StepComparison:
        """Backend ``name``'s row with the largest error over tolerance."""
        rows = [row for rows in self.comparisons[name] for row in rows]
        return max(rows, key=lambda row: row.max_err_over_tolerance)

    def first_failure(self, name: str) -> StepComparison | None:
        """Backend ``name``'s first row out of bounds, by step, or ``None``."""
        for rows in self.comparisons.get(name, []):
            for row in rows:
                if not row.ok:
                    return row
        return None

    def __str__(self) -> str:
        steps = len(self.reference)
        lines = [
            f"{steps}-step trajectory against the crossgrad reference "
            "(error/tolerance ≤ 1 passes):",
            f"{'backend':<16} {'worst err/tol':>13}  {'at':<10} {'max rel err':>11}  result",
        ]
        for name in self.backends:
            if name in self.skipped:
                lines.append(
                    f"{name:<16} {'':>13}  {'':<10} {'':>11}  skipped: {self.skipped[name]}"
                )
                continue
            if name in self.errors:
                lines.append(f"{name:<16} {'':>13}  {'':<10} {'':>11}  error: {self.errors[name]}")
                continue
            worst = self.worst(name)
            rel = max(row.max_rel_err for rows in self.comparisons[name] for row in rows)
            first = self.first_failure(name)
            result = (
                "ok"
                if first is None
                else f"MISMATCH from step {first.step} ({first.name}"
                + (f": {first.problem})" if first.problem else ")")
            )
            at = f"{worst.name} step {worst.step}"
            lines.append(
                f"{name:<16} {worst.max_err_over_tolerance:>13.3g}  {at:<10} {rel:>11.2e}  {result}"
            )
        return "\n".join(lines)

    def raise_for_mismatch(self) -> None:
        """Raise ``AssertionError`` with the report when a backend disagrees or raised."""
        if not self.ok:
            raise AssertionError(str(self))


def crosscheck_training(
    net: Network,
    params: Params,
    batches: Sequence[tuple[ArrayLike, ArrayLike]],
    optimizer: Any,
    backends: Sequence[str | TrajectoryBackend] | None = None,
    rtol: float | None = None,
) -> TrainingReport:
    """Train ``net`` from ``params`` on ``batches`` (``x: (batch, in)``, ``y: (batch, out)``;
    one step each) with ``optimizer`` (a ``reference.optimizers`` instance) in the reference
    and in each backend, and compare every step.

    ``backends``: names (``"torch"``, ``"jax"``) or ``TrajectoryBackend`` objects; ``None``:
    every available one.  ``rtol`` overrides the per-step gradient tolerance.  A backend
    that raises is reported in ``errors``; one that cannot compute this optimizer
    (``NotImplementedError``) in ``skipped``.
    """
    pairs = check_batches(batches)
    check_optimizer_object(optimizer)
    check_tolerance("rtol", rtol)
    checked: Batches = []
    for x, y in pairs:
        batch = check_inputs(net, params, x, y)
        checked.append((batch.x, batch.y))
    reference = train(net, params, checked, optimizer)
    bounds = trajectory_bounds(net, checked, optimizer, reference, rtol)
    chosen = list(available_training() if backends is None else backends)
    modules: list[tuple[str, Any]] = []
    for b in chosen:
        modules.append((b, get_training(b)) if isinstance(b, str) else (b.name, b))
    report = TrainingReport(reference, bounds, tuple(name for name, _ in modules))
    for name, backend in modules:
        try:
            losses, thetas = backend.trajectory(net, params, checked, optimizer)
        except NotImplementedError as exc:
            report.skipped[name] = str(exc)
            continue
        except Exception as exc:
            report.errors[name] = f"{type(exc).__name__}: {exc}"
            continue
        report.comparisons[name] = [
            [compare("loss", t + 1, losses[t], reference.losses[t], bounds.losses[t])]
            + [
                compare(key, t + 1, got, want, bound)
                for (key, got), want, bound in zip(
                    thetas[t].named().items(),
                    reference.params[t].named().values(),
                    bounds.params[t],
                    strict=True,
                )
            ]
            for t in range(len(reference))
        ]
    return report
