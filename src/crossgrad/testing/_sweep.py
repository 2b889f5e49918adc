"""The sweep engine: Hypothesis draws cases, candidates are held against the reference.

One engine serves the property suite, ``check_implementation`` (a user's backprop) and
``crossgrad check`` (the adapters).  It records the worst errors while cases pass and, on the
first disagreement, lets Hypothesis shrink the case to the smallest one that still fails.
"""

from __future__ import annotations

import os
import secrets
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.errors import FlakyFailure

from ..adapters.tolerance import ParamComparison, compare_arrays, default_rtol, error_scales
from ..reference import Network, Params, backprop
from ..strategies import Case
from ._compare import (
    Array,
    Backprop,
    Gradients,
    ProtocolError,
    compare_gradients,
    normalise,
)
from ._hints import hints
from ._time_limit import TimeLimitExceededError, call_with_time_limit

Progress = Callable[[int, int], None]
"""``progress(checked, trials)``, called after each case until the first failure."""


@dataclass
class ErrorStats:
    """The worst errors of one candidate on one kind of parameter over the cases checked."""

    cases: int = 0
    max_abs_err: float = 0.0
    max_rel_err: float = 0.0

    def add(self, comparison: ParamComparison) -> None:
        self.max_abs_err = max(self.max_abs_err, comparison.max_abs_err)
        self.max_rel_err = max(self.max_rel_err, comparison.max_rel_err)


@dataclass(frozen=True)
class Failure:
    """The smallest failing case and what went wrong on it.

    ``candidate`` names what disagreed (``"your backprop"`` or backend names); ``comparisons``
    lists every array compared (empty when the candidate raised); ``error`` is the exception
    or protocol problem, if any; ``hints`` are the recognised bug patterns; ``details`` is
    the table of values that ``__str__`` shows.
    """

    candidate: str
    case: Case
    comparisons: tuple[ParamComparison, ...]
    error: str | None
    hints: tuple[str, ...]
    details: str
    shrunk: bool = True
    seed: int | None = None

    @property
    def wrong(self) -> tuple[str, ...]:
        """The names of the arrays that disagree (``W1``, ``b2``, ``loss``, ...)."""
        return tuple(c.name for c in self.comparisons if not c.ok)

    def __str__(self) -> str:
        which = "Smallest failing case Hypothesis found" if self.shrunk else "Failing case"
        seed = f" (seed {self.seed})" if self.seed is not None else ""
        lines = [
            f"{self.candidate} disagrees with the crossgrad reference.",
            "",
            f"{which}{seed}:",
            *("  " + line for line in self.case.describe().splitlines()),
            "",
        ]
        if self.error is not None and self.error.startswith(self.candidate):
            lines.append(self.error)  # a sentence of its own: "... did not return within ..."
        elif self.error is not None:
            lines.append(f"{self.candidate} failed on it: {self.error}")
        else:
            lines.append(f"Wrong: {', '.join(self.wrong)}")
            lines.append(self.details)
        lines.extend(f"Hint: {h}" for h in self.hints)
        return "\n".join(lines)


class GradientMismatchError(AssertionError):
    """A backprop disagrees with the reference; ``failure`` holds the case and the details."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(str(failure))
        self.failure = failure


@dataclass(frozen=True)
class SweepResult:
    """What a sweep found.

    ``stats[candidate][kind]`` (kind ``"W"``, ``"b"`` or ``"loss"``) holds the worst errors over
    the ``cases`` that agreed, all of them before any failure; ``failure`` is the shrunk
    failing case or ``None``; ``seed`` reproduces the run.  ``cases`` counts the agreeing
    cases only, as every row of ``table()`` does; ``checked`` adds the failing one.
    """

    seed: int
    trials: int
    cases: int
    stats: dict[str, dict[str, ErrorStats]] = field(default_factory=dict)
    failure: Failure | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None

    @property
    def checked(self) -> int:
        """The cases checked: those that agreed, and the first failing one if any."""
        return self.cases + (self.failure is not None)

    def summary(self) -> str:
        """One line: how many cases agreed, and whether one failed after them."""
        agreed = f"{self.cases} case{'' if self.cases == 1 else 's'}"
        if self.failure is None:
            return f"{agreed} checked"
        if self.cases == 0:
            return "the first case checked failed"
        return f"{agreed} agreed, then case {self.cases + 1} failed"

    def table(self) -> str:
        """The summary table: candidate x kind -> cases, worst abs and rel error.

        Empty when no case agreed (the first case failed): there is nothing to summarise.
        """
        if not self.stats:
            return ""
        header = (
            f"{'backend':<14} {'kind':<5} {'cases':>6} {'worst abs err':>14} {'worst rel err':>14}"
        )
        rows = [header, "-" * len(header)]
        for name, kinds in self.stats.items():
            for kind, s in kinds.items():
                errors = f"{s.max_abs_err:>14.3g} {s.max_rel_err:>14.3g}"
                rows.append(f"{name:<14} {kind:<5} {s.cases:>6} {errors}")
        return "\n".join(rows)

    def __str__(self) -> str:
        text = "\n\n".join(t for t in (self.table(), str(self.failure or "")) if t)
        return text or self.summary()


@dataclass(frozen=True)
class _Outcome:
    """One candidate on one case: the raw material of a ``Failure`` (hints come later)."""

    comparisons: dict[str, list[ParamComparison]]
    failure: Callable[[], Failure] | None
    timed_out: float | None = None  # the time limit the candidate exceeded, if it did


class _CaseFailedError(Exception):
    def __init__(self, outcome: _Outcome) -> None:
        super().__init__("case failed")
        self.outcome = outcome


_HERE = os.path.dirname(os.path.abspath(__file__))


def _user_error(exc: BaseException) -> str:
    """``"Type: message (raised at file:line in function)"``, naming the user's own line."""
    frames = [  # the frames below crossgrad's own calls
        f for f in traceback.extract_tb(exc.__traceback__) if os.path.dirname(f.filename) != _HERE
    ]
    own = [f for f in frames if "site-packages" not in f.filename] or frames
    if not own:
        return f"{type(exc).__name__}: {exc}"
    last = own[-1]
    return f"{type(exc).__name__}: {exc} (raised at {last.filename}:{last.lineno} in {last.name})"


def _copy(params: Params) -> Params:
    return Params._trusted(
        tuple(W.copy() for W in params.weights), tuple(b.copy() for b in params.biases)
    )


def value_table(
    comparisons: Sequence[ParamComparison],
    got: dict[str, np.ndarray[Any, Any]],
    ref: dict[str, np.ndarray[Any, Any]],
    rtol: float,
) -> str:
    """Each compared array: errors, worst index and the two values there."""
    lines = [
        f"(tolerance |yours − reference| ≤ {rtol:.2g}·S, S each entry's error scale)",
        f"  {'':<5} {'shape':<9} {'max abs err':>11} {'max rel err':>11} {'worst at':<9} "
        f"{'yours':>17} {'reference':>17}",
    ]
    for c in comparisons:
        g, r = got[c.name], ref[c.name]
        if c.problem is not None and g.shape != r.shape:
            lines.append(f"  {c.name:<5} WRONG: {c.problem}")
            continue
        at = c.worst_index
        lines.append(
            f"  {c.name:<5} {r.shape!s:<9} {c.max_abs_err:>11.3g} {c.max_rel_err:>11.3g} "
            f"{at!s:<9} {float(g[at]):>17.10g} {float(r[at]):>17.10g}  "
            + ("ok" if c.ok else "WRONG" + (f": {c.problem}" if c.problem else ""))
        )
    return "\n".join(lines)


def timed_out(name: str, timeout: float) -> str:
    """The failure message of a candidate that exceeded its time limit."""
    return f"{name} did not return within {timeout:g} s on this case (the time limit)"


def impl_checker(
    fn: Backprop,
    rtol: float | None,
    atol: float,
    name: str = "your backprop",
    timeout: float | None = None,
) -> Callable[[Case], _Outcome]:
    """The check of a user's ``fn`` against the reference on one case; a call that takes
    longer than ``timeout`` seconds (``None``: no limit) is abandoned and fails the case."""

    def call(net: Network, params: Params, x: Array, y: Array) -> Gradients:
        return normalise(fn(net, params, x, y), net.n_layers)

    def check(case: Case) -> _Outcome:
        net = case.net
        reference = backprop(net, case.params, case.x, case.y)
        exceeded = None
        try:
            args = (net, _copy(case.params), case.x.copy(), case.y.copy())
            got = call_with_time_limit(call, args, timeout)
        except ProtocolError as exc:
            error: str | None = f"it returned the wrong thing: {exc}"
        except TimeLimitExceededError as exc:
            exceeded = exc.timeout
            error = timed_out(name, exc.timeout)
        except Exception as exc:  # the user's bug, reported with the case that triggers it
            error = _user_error(exc)
        else:
            error = None
        if error is not None:
            message = error
            return _Outcome({}, lambda: Failure(name, case, (), message, (), ""), exceeded)
        rtol_ = default_rtol(net, case.dtype) if rtol is None else rtol
        # One pass gives the error scales of the loss and of every gradient.
        forward_scale, grad_scale = error_scales(net, case.params, case.x, case.y)
        comparisons = compare_gradients(
            net, case.params, grad_scale, got, reference.grads, rtol_, atol
        )
        if got.loss is not None:
            scale = forward_scale.loss
            comparisons.insert(
                0,
                compare_arrays(
                    "loss",
                    np.asarray(got.loss, np.float64),
                    np.asarray(reference.loss, np.float64),
                    np.asarray(scale),
                    rtol_,
                    atol,
                ),
            )
        if all(c.ok for c in comparisons):
            return _Outcome({name: comparisons}, None)

        def failure() -> Failure:
            got_named = _named(got)
            ref_named = {"loss": np.asarray(reference.loss), **reference.grads.named()}
            return Failure(
                name,
                case,
                tuple(comparisons),
                None,
                tuple(hints(case, got, reference.grads, fn)),
                value_table(comparisons, got_named, ref_named, rtol_),
            )

        return _Outcome({name: comparisons}, failure)

    return check


def _named(got: Gradients) -> dict[str, np.ndarray[Any, Any]]:
    out: dict[str, np.ndarray[Any, Any]] = {
        "loss": np.asarray(np.nan if got.loss is None else got.loss)
    }
    for l, (W, b) in enumerate(zip(got.weights, got.biases, strict=True), start=1):
        out[f"W{l}"], out[f"b{l}"] = W, b
    return out


def run(
    strategy: st.SearchStrategy[Case],
    check: Callable[[Case], _Outcome],
    *,
    trials: int,
    seed: int | None,
    progress: Progress | None = None,
) -> SweepResult:
    """Run ``check`` on up to ``trials`` cases drawn from ``strategy``; shrink any failure.

    Only the cases that agree are recorded in the statistics.  When a candidate exceeds its
    time limit, each further call may cost as long again (and leaves a thread running), so
    shrinking gets that much time once more and then stops: later cases are not checked, and
    the smallest case that timed out so far is the one reported.
    """
    seed_ = secrets.randbelow(2**32) if seed is None else seed
    stats: dict[str, dict[str, ErrorStats]] = {}
    state: dict[str, Any] = {"checked": 0, "last": None, "stop_at": None, "known": {}}

    def record(outcome: _Outcome) -> None:
        for name, comparisons in outcome.comparisons.items():
            kinds = stats.setdefault(name, {})
            counted: set[str] = set()
            for c in comparisons:
                kind = c.name.rstrip("0123456789")
                s = kinds.setdefault(kind, ErrorStats())
                s.add(c)
                if kind not in counted:
                    s.cases += 1
                    counted.add(kind)

    def test(case: Case) -> None:
        if state["stop_at"] is not None and time.monotonic() > state["stop_at"]:
            known = state["known"].get(case.describe())
            if known is None:
                return  # out of time: no more calls of a candidate that hangs
            raise _CaseFailedError(known)
        outcome = check(case)
        if state["last"] is None:
            if outcome.failure is None:
                record(outcome)
                state["checked"] += 1
            if progress is not None:
                progress(int(state["checked"]) + (outcome.failure is not None), trials)
        if outcome.failure is not None:
            state["last"] = outcome
            if outcome.timed_out is not None:
                state["known"][case.describe()] = outcome
                if state["stop_at"] is None:
                    state["stop_at"] = time.monotonic() + outcome.timed_out
            raise _CaseFailedError(outcome)

    runner = settings(
        max_examples=trials,
        database=None,
        deadline=None,
        derandomize=False,
        print_blob=False,
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
        phases=(Phase.explicit, Phase.generate, Phase.shrink),
    )(given(case=strategy)(test))
    runner = hypothesis_seed(seed_)(runner)
    outcome: _Outcome | None = None
    try:
        runner()
    except _CaseFailedError as exc:
        outcome = exc.outcome
    except FlakyFailure as group:  # the candidate failed once and passed on replay
        found = [e for e in group.exceptions if isinstance(e, _CaseFailedError)]
        if not found and state["last"] is None:
            raise
        outcome = found[0].outcome if found else state["last"]
    if outcome is None:
        outcome = state["last"]  # shrinking ran out of time (see above)
    failure = None
    if outcome is not None and outcome.failure is not None:
        made = outcome.failure()
        failure = Failure(
            made.candidate, made.case, made.comparisons, made.error, made.hints, made.details,
            shrunk=True, seed=seed_,
        )  # fmt: skip
    return SweepResult(seed_, trials, int(state["checked"]), stats, failure)
