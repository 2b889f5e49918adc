"""Check a user's optimizer step against a reference optimizer, on cases Hypothesis shrinks.

The user's ``step(params, grads, state) -> (params, state)`` takes lists of NumPy arrays and
a state of its own (the first call gets ``init(params)``, or ``None``).  Each case is a list
of parameter arrays and a sequence of gradients, one per step; after every step the user's
parameters are compared with the reference optimizer's under
``adapters.trajectory_tolerance.optimizer_bounds``.

A hint names a classic mistake only when that mistake, computed on the very case shown,
reproduces the user's numbers (within the same bounds) at every step; when several do, all
are listed; when none does, nothing is said.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from hypothesis import given
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.errors import FlakyFailure
from hypothesis.extra import numpy as hnp

from ..adapters.training import StepComparison, compare
from ..adapters.trajectory_tolerance import optimizer_bounds
from ..reference import optimizers
from ..reference.optimizers import SGD, Adagrad, Adam, AdamW, RMSprop
from ._sweep import GradientMismatchError, json_number, quiet_settings

Array = np.ndarray
Step = Callable[[list[Array], list[Array], Any], tuple[Sequence[Array], Any]]


@dataclass(frozen=True)
class OptimizerCase:
    """Parameter arrays and the gradients of each step (``grads[t][i]`` for array ``i``)."""

    params: tuple[Array, ...]
    grads: tuple[tuple[Array, ...], ...]

    def describe(self) -> str:
        """The case as failure reports print it: the arrays and every step's gradients."""

        def show(a: Array) -> str:
            return np.array2string(a, precision=17, separator=", ").replace("\n", "")

        lines = [f"{len(self.params)} array(s), {len(self.grads)} step(s)"]
        lines += [f"params[{i}] = {show(p)}" for i, p in enumerate(self.params)]
        for t, g in enumerate(self.grads, start=1):
            lines += [f"grads at step {t}: [{i}] = {show(a)}" for i, a in enumerate(g)]
        return "\n".join(lines)


@dataclass(frozen=True)
class OptimizerFailure:
    """The smallest failing case, the first wrong step's rows, the error or the hints."""

    optimizer: Any
    case: OptimizerCase
    comparisons: tuple[StepComparison, ...]
    error: str | None
    hints: tuple[str, ...]
    seed: int | None = None

    def __str__(self) -> str:
        seed = f" (seed {self.seed})" if self.seed is not None else ""
        lines = [
            f"your optimizer step disagrees with crossgrad's {self.optimizer}.",
            "",
            f"Smallest failing case Hypothesis found{seed}:",
            *("  " + line for line in self.case.describe().splitlines()),
            "",
        ]
        if self.error is not None:
            lines.append(f"your step failed on it: {self.error}")
        else:
            step = self.comparisons[0].step
            lines.append(f"Wrong after step {step}: " + ", ".join(c.name for c in self.comparisons))
            lines += [
                f"  {c.name}: max abs err {c.max_abs_err:.3g}, max rel err {c.max_rel_err:.3g}, "
                f"err/tolerance {c.max_err_over_tolerance:.3g} at {c.worst_index}"
                + (f" ({c.problem})" if c.problem else "")
                for c in self.comparisons
            ]
        lines += [f"Hint: {h}" for h in self.hints]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The failure as JSON-ready data: ``optimizer``, ``seed``, ``case`` (``params``, and
        ``grads`` per step, as nested lists), ``error`` (or ``None``), ``comparisons`` (the
        first wrong step's rows: ``name``, ``step``, the errors, ``worst_index``, ``problem``)
        and ``hints``.  Non-finite numbers are ``None``."""
        return {
            "optimizer": str(self.optimizer),
            "seed": self.seed,
            "case": {
                "params": [p.tolist() for p in self.case.params],
                "grads": [[g.tolist() for g in step] for step in self.case.grads],
            },
            "error": self.error,
            "comparisons": [
                {
                    "name": c.name,
                    "step": c.step,
                    "max_abs_err": json_number(c.max_abs_err),
                    "max_rel_err": json_number(c.max_rel_err),
                    "max_err_over_tolerance": json_number(c.max_err_over_tolerance),
                    "worst_index": list(c.worst_index),
                    "problem": c.problem,
                }
                for c in self.comparisons
            ],
            "hints": list(self.hints),
        }


@dataclass(frozen=True)
class OptimizerCheckResult:
    """A passing check: the cases checked, the seed, the worst error over tolerance and the
    worst true relative error seen."""

    seed: int
    cases: int
    max_err_over_tolerance: float
    max_rel_err: float

    def to_dict(self) -> dict[str, Any]:
        """``ok`` (true), ``seed``, ``cases``, ``max_err_over_tolerance``, ``max_rel_err``;
        non-finite numbers are ``None``."""
        return {
            "ok": True,
            "seed": self.seed,
            "cases": self.cases,
            "max_err_over_tolerance": json_number(self.max_err_over_tolerance),
            "max_rel_err": json_number(self.max_rel_err),
        }


@st.composite
def optimizer_cases(draw: st.DrawFn) -> OptimizerCase:
    """1-3 arrays of shape ``(k,)`` or ``(k, j)`` (``k, j ≤ 3``) in [−1, 1], 1-5 steps of
    gradients in [−1, 1] times a scale of 1, 1e-2 or 1e-4 (small gradients make ε matter)."""
    shape = st.lists(st.integers(1, 3), min_size=1, max_size=2).map(tuple)
    shapes = draw(st.lists(shape, min_size=1, max_size=3))
    values = st.floats(-1, 1, allow_subnormal=False)
    params = tuple(draw(hnp.arrays(np.float64, s, elements=values)) for s in shapes)
    scale = draw(st.sampled_from([1.0, 1e-2, 1e-4]))
    steps = draw(st.integers(1, 5))
    grads = tuple(
        tuple(scale * draw(hnp.arrays(np.float64, s, elements=values)) for s in shapes)
        for _ in range(steps)
    )
    return OptimizerCase(params, grads)


def _run_user(step: Step, init: Callable[[Any], Any] | None, case: OptimizerCase) -> list[Any]:
    """The user's parameters after each step (on copies of the case)."""
    params = [p.copy() for p in case.params]
    state = init([p.copy() for p in params]) if init is not None else None
    out = []
    for g in case.grads:
        result = step(params, [a.copy() for a in g], state)
        if not isinstance(result, tuple) or len(result) != 2:
            raise TypeError(f"step must return (params, state), got {type(result).__name__}")
        new, state = result
        params = [np.asarray(a) for a in new]
        out.append([p.copy() for p in params])
    return out


def _trajectory(opt: Any, case: OptimizerCase) -> list[list[Array]]:
    params, state = list(case.params), opt.init(list(case.params))
    out = []
    for g in case.grads:
        params, state = opt.step(params, list(g), state)
        out.append(params)
    return out


def _rows(
    got: list[Any], want: list[list[Array]], bounds: list[list[Array]]
) -> list[list[StepComparison]]:
    rows = []
    for t, (g, w, b) in enumerate(zip(got, want, bounds, strict=True), start=1):
        if len(g) != len(w):
            rows.append(
                [StepComparison("params", t, np.inf, np.inf, np.inf, (), False,
                                f"{len(g)} arrays, expected {len(w)}")]
            )  # fmt: skip
            continue
        rows.append(
            [compare(f"params[{i}]", t, *abc) for i, abc in enumerate(zip(g, w, b, strict=True))]
        )
    return rows


# --- the classic mistakes, each a reference optimizer with one formula changed -----------


@dataclass(frozen=True)
class _AdamMistake(Adam):
    bias: str = "right"  # "none", "ahead" (t + 1), "behind" (t − 1), "stuck" (t = 1 always)
    eps_inside: bool = False

    def step(self, params: Any, grads: Any, state: Any) -> Any:
        (beta1, beta2), lr, eps, lam = self.betas, self.lr, self.eps, self.weight_decay
        t = {"right": state.t + 1, "ahead": state.t + 2, "behind": state.t, "stuck": 1}.get(
            self.bias, 0
        )
        new, ms, vs = [], [], []
        for p, g, m, v in zip(params, grads, state.m, state.v, strict=True):
            if self.decoupled:
                p = p - lr * lam * p
            elif lam:
                g = g + lam * p
            m = beta1 * m + (1 - beta1) * g
            v = beta2 * v + (1 - beta2) * g**2
            m_hat, v_hat = (
                (m, v) if self.bias == "none" else (m / (1 - beta1**t), v / (1 - beta2**t))
            )
            root = np.sqrt(v_hat + eps) if self.eps_inside else np.sqrt(v_hat) + eps
            new.append(p - lr * m_hat / root)
            ms.append(m)
            vs.append(v)
        return new, state._replace(t=state.t + 1, m=tuple(ms), v=tuple(vs))


@dataclass(frozen=True)
class _AdamWMistake(_AdamMistake):
    decoupled_decay: bool = True

    @property
    def decoupled(self) -> bool:  # type: ignore[override]
        return self.decoupled_decay


@dataclass(frozen=True)
class _RMSpropEpsInside(RMSprop):
    def step(self, params: Any, grads: Any, state: Any) -> Any:
        lr, alpha, eps, mu, lam = self.lr, self.alpha, self.eps, self.momentum, self.weight_decay
        n = len(params)
        g_avgs, bufs = state.g_avg or (None,) * n, state.buf or (None,) * n
        new, vs, new_avg, new_buf = [], [], [], []
        for p, g, v, g_avg, b in zip(params, grads, state.v, g_avgs, bufs, strict=True):
            if lam:
                g = g + lam * p
            v = alpha * v + (1 - alpha) * g**2
            w = v
            if g_avg is not None:
                g_avg = alpha * g_avg + (1 - alpha) * g
                w = v - g_avg**2
            d = np.sqrt(w + eps)
            if b is not None:
                b = mu * b + g / d
                p = p - lr * b
            else:
                p = p - lr * g / d
            new.append(p)
            vs.append(v)
            new_avg.append(g_avg)
            new_buf.append(b)
        return new, state._replace(
            t=state.t + 1,
            v=tuple(vs),
            g_avg=tuple(new_avg) if state.g_avg else (),
            buf=tuple(new_buf) if state.buf else (),
        )


@dataclass(frozen=True)
class _AdagradEpsInside(Adagrad):
    def step(self, params: Any, grads: Any, state: Any) -> Any:
        new, sums = [], []
        for p, g, s in zip(params, grads, state.s, strict=True):
            if self.weight_decay:
                g = g + self.weight_decay * p
            s = s + g**2
            new.append(p - self.lr * g / np.sqrt(s + self.eps))
            sums.append(s)
        return new, state._replace(t=state.t + 1, s=tuple(sums))


@dataclass(frozen=True)
class _SGDZeroBuffer(SGD):
    def init(self, params: Any) -> Any:
        return optimizers.SGDState(0, tuple(np.zeros_like(p) for p in params))


def _fields(opt: Any) -> dict[str, Any]:
    return {f.name: getattr(opt, f.name) for f in dataclasses.fields(opt)}


def _mistakes(opt: Any) -> list[tuple[str, Any]]:
    """``(hint, the optimizer with that mistake)`` for each classic mistake that applies."""
    out: list[tuple[str, Any]] = []
    if isinstance(opt, Adam) and not opt.amsgrad:
        kw = _fields(opt)
        cls = _AdamWMistake if isinstance(opt, AdamW) else _AdamMistake
        bias = "m̂ = m/(1 − β₁ᵗ) and v̂ = v/(1 − β₂ᵗ) at step t = 1, 2, …"
        out += [
            ("no bias correction: the update uses m and v as they are; the reference divides "
             f"them by 1 − βᵗ ({bias})", cls(**kw, bias="none")),
            ("bias correction with the wrong step count: yours uses t + 1 at step t (is the "
             f"count incremented twice, or started at 1?); the reference uses {bias}",
             cls(**kw, bias="ahead")),
            ("bias correction with the wrong step count: yours uses t − 1 at step t, so the "
             "first step divides by 1 − β⁰ = 0 (is the count incremented after the update?); "
             f"the reference uses {bias}", cls(**kw, bias="behind")),
            ("bias correction with the wrong step count: yours stays at t = 1 (is the step "
             f"count kept in the state and incremented?); the reference uses {bias}",
             cls(**kw, bias="stuck")),
            ("ε inside the square root: yours divides by √(v̂ + ε); the reference (and torch) "
             "by √v̂ + ε", cls(**kw, eps_inside=True)),
        ]  # fmt: skip
        if opt.weight_decay and isinstance(opt, AdamW):
            out.append((
                "weight decay coupled: yours adds λ·θ to the gradient (Adam's L2 form); AdamW "
                "decouples it, θ ← θ − lr·λ·θ, outside the moments",
                _AdamWMistake(**kw, decoupled_decay=False),
            ))  # fmt: skip
        elif opt.weight_decay:
            out.append((
                "weight decay decoupled: yours shrinks θ ← θ − lr·λ·θ (AdamW's form); Adam "
                "couples it, adding λ·θ to the gradient before the moments",
                _AdamWMistake(**kw, decoupled_decay=True),
            ))  # fmt: skip
    elif isinstance(opt, RMSprop):
        out.append((
            "ε inside the square root: yours divides by √(v + ε) (optax's default); the "
            "reference (and torch) by √v + ε", _RMSpropEpsInside(**_fields(opt)),
        ))  # fmt: skip
    elif isinstance(opt, Adagrad):
        out.append((
            "ε inside the square root: yours divides by √(s + ε) (optax's form); the "
            "reference (and torch) by √s + ε", _AdagradEpsInside(**_fields(opt)),
        ))  # fmt: skip
    elif isinstance(opt, SGD) and opt.momentum and opt.dampening:
        out.append((
            "momentum buffer not initialised to the first gradient: yours starts at 0, so "
            "b = (1 − τ)·g at step 1; the reference (and torch) starts b = g, undamped",
            _SGDZeroBuffer(**_fields(opt)),
        ))  # fmt: skip
    return out


def _reproduces(got: list[Any], wrong: list[list[Array]], bounds: list[list[Array]]) -> bool:
    """Whether ``wrong`` gives the user's numbers at every step: the same non-finite entries
    (a division by zero reproduced), every finite one within its bound."""
    for g_step, w_step, b_step in zip(got, wrong, bounds, strict=True):
        if len(g_step) != len(w_step):
            return False
        for g, w, b in zip(g_step, w_step, b_step, strict=True):
            g = np.asarray(g, dtype=np.float64)
            if g.shape != w.shape:
                return False
            finite = np.isfinite(w)
            if not np.array_equal(finite, np.isfinite(g)) or not np.array_equal(
                np.isnan(w), np.isnan(g)
            ):
                return False
            with np.errstate(invalid="ignore"):
                if not np.all(np.abs(g[finite] - w[finite]) <= b[finite]):
                    return False
                if not np.array_equal(g[~finite & ~np.isnan(g)], w[~finite & ~np.isnan(w)]):
                    return False
    return True


def _hints(
    opt: Any, case: OptimizerCase, got: list[Any], bounds: list[list[Array]]
) -> tuple[str, ...]:
    found = []
    for hint, wrong in _mistakes(opt):
        try:
            with np.errstate(all="ignore"):
                reproduced = _reproduces(got, _trajectory(wrong, case), bounds)
        except Exception:
            continue
        if reproduced:
            found.append(hint)
    return tuple(found)


class _CaseFailedError(Exception):
    def __init__(self, failure: OptimizerFailure) -> None:
        self.failure = failure


def check_optimizer(
    step: Step,
    optimizer: Any = None,
    init: Callable[[Any], Any] | None = None,
    seed: int | None = None,
    max_examples: int = 100,
) -> OptimizerCheckResult:
    """Check a user's optimizer ``step(params, grads, state) -> (params, state)`` against
    ``optimizer`` (a ``reference.optimizers`` instance; default ``Adam()``).

    ``params`` and ``grads`` are lists of float64 NumPy arrays (copies: ``step`` may modify
    them); ``state`` is the user's own, ``init(params)`` before the first step (``None``
    when no ``init`` is given).  Hypothesis draws up to ``max_examples`` cases of 1-5 steps
    (see ``optimizer_cases``); with a ``seed`` the run is reproducible.

    Returns an ``OptimizerCheckResult`` when every case agrees; raises
    ``GradientMismatchError`` (an ``AssertionError``) whose ``failure`` is an
    ``OptimizerFailure``: the smallest failing case, the wrong arrays and hints.
    """
    opt = optimizers.Adam() if optimizer is None else optimizer
    if not isinstance(opt, (SGD, Adam, RMSprop, Adagrad)):
        raise TypeError(
            "optimizer must be one of crossgrad.reference.optimizers (SGD, Adam, AdamW, "
            f"RMSprop, Adagrad), got {type(opt).__name__}"
        )
    if not callable(step):
        raise TypeError(f"step must be callable as step(params, grads, state), got {step!r}")
    if init is not None and not callable(init):
        raise TypeError(f"init must be callable as init(params) or None, got {init!r}")
    if isinstance(max_examples, bool) or not isinstance(max_examples, int) or max_examples < 1:
        raise ValueError(f"max_examples must be a positive int, got {max_examples!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ValueError(f"seed must be a non-negative int or None, got {seed!r}")
    seed_ = secrets.randbelow(2**32) if seed is None else seed
    worst = {"ratio": 0.0, "rel": 0.0, "cases": 0}

    def test(case: OptimizerCase) -> None:
        want = _trajectory(opt, case)
        bounds = optimizer_bounds(opt, case.params, case.grads)
        try:
            with np.errstate(all="ignore"):
                got = _run_user(step, init, case)
        except Exception as exc:
            raise _CaseFailedError(
                OptimizerFailure(opt, case, (), f"{type(exc).__name__}: {exc}", ())
            ) from None
        rows = _rows(got, want, bounds)
        for step_rows in rows:
            bad = tuple(r for r in step_rows if not r.ok)
            if bad:
                hints = _hints(opt, case, got, bounds)
                raise _CaseFailedError(OptimizerFailure(opt, case, bad, None, hints))
        worst["cases"] += 1
        for r in (r for step_rows in rows for r in step_rows):
            worst["ratio"] = max(worst["ratio"], r.max_err_over_tolerance)
            worst["rel"] = max(worst["rel"], r.max_rel_err)

    runner = quiet_settings(max_examples)(given(case=optimizer_cases())(test))
    failure: OptimizerFailure | None = None
    try:
        hypothesis_seed(seed_)(runner)()
    except _CaseFailedError as exc:
        failure = exc.failure
    except FlakyFailure as group:
        found = [e for e in group.exceptions if isinstance(e, _CaseFailedError)]
        if not found:
            raise
        failure = found[0].failure
    if failure is not None:
        failure = dataclasses.replace(failure, seed=seed_)
        raise GradientMismatchError(cast(Any, failure))
    return OptimizerCheckResult(seed_, int(worst["cases"]), worst["ratio"], worst["rel"])
