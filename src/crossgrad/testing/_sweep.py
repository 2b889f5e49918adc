"""The sweep engine: Hypothesis draws cases, candidates are held against the reference.

One engine serves the property suite, ``check_implementation`` (a user's backprop) and
``crossgrad check`` (the adapters).  It records the worst errors while cases pass and, on the
first disagreement, lets Hypothesis shrink the case to the smallest one that still fails.
"""

from __future__ import annotations

import os
import secrets
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
from hypothesis import HealthCheck, Phase, Verbosity, given, reject, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.errors import FlakyFailure, Unsatisfiable

from ..adapters.tolerance import default_rtol, error_scale_arrays
from ..reference.backpropagation import gradients
from ..reference.validation import Batch
from ..strategies import Case
from ._compare import (
    Backprop,
    Comparison,
    Gradients,
    Layout,
    ProtocolError,
    Unsupported,
    agreeing_errors,
    call,
    compare_all,
    gradient_items,
)
from ._hints import Hint, diagnose
from ._time_limit import TimeLimitExceededError, Watch, call_with_time_limit

_HERE = os.path.dirname(os.path.abspath(__file__))
Progress = Callable[[int, int], None]
"""``progress(checked, trials)``, called after each case until the first failure."""


@dataclass
class ErrorStats:
    """The worst errors of one candidate on one kind of array over the cases checked.

    ``max_abs_err``: ``max |yours − ref|``; ``max_rel_err``: ``max |yours − ref| / |ref|``
    over entries with ``ref ≠ 0``; ``max_err_over_tolerance``: ``max |yours − ref| /
    (atol + rtol · S)``, where 1 is the limit (see ``Comparison``).
    """

    cases: int = 0
    max_abs_err: float = 0.0
    max_rel_err: float = 0.0
    max_err_over_tolerance: float = 0.0

    def add(self, comparison: Comparison) -> None:
        """Keep the worst of each error, these or ``comparison``'s (the caller counts cases)."""
        self.max_abs_err = max(self.max_abs_err, comparison.max_abs_err)
        self.max_rel_err = max(self.max_rel_err, comparison.max_rel_err)
        self.max_err_over_tolerance = max(
            self.max_err_over_tolerance, comparison.max_err_over_tolerance
        )


def json_number(value: float) -> float | None:
    """A float for JSON: ``None`` for inf and nan (JSON has neither)."""
    return float(value) if np.isfinite(value) else None


def _case_dict(case: Case) -> dict[str, Any]:
    net = case.net
    return {
        "sizes": list(net.sizes),
        "activations": list(net.activations),
        "loss": net.loss,
        "reduction": net.reduction,
        "dtype": str(case.dtype),
        "weights": [W.tolist() for W in case.params.weights],
        "biases": [b.tolist() for b in case.params.biases],
        "x": case.x.tolist(),
        "y": case.y.tolist(),
    }


@dataclass(frozen=True)
class Failure:
    """The smallest failing case and what went wrong on it.

    ``candidate`` names what disagreed (``"your backprop"`` or backend names); ``comparisons``
    lists every array compared (empty when the candidate raised); ``error`` is the exception
    or protocol problem, if any; ``hints`` are the recognised bug patterns (``Hint``: a
    ``str`` with a stable ``.code``); ``details`` is the table of values that ``__str__``
    shows; ``self_consistent`` says whether the user's gradients are the derivative of the
    user's own loss (``None``: not computed).  The case is shown in crossgrad's layout.
    """

    candidate: str
    case: Case
    comparisons: tuple[Comparison, ...]
    error: str | None
    hints: tuple[Hint, ...]
    details: str
    shrunk: bool = True
    seed: int | None = None
    self_consistent: bool | None = None

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
        if self.self_consistent is not None:
            lines.append(
                "Your gradients "
                + ("are" if self.self_consistent else "are NOT")
                + " the derivative of your own loss (central differences of it)."
            )
        lines.extend(f"Hint: {h}" for h in self.hints)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The failure as JSON-ready data (see ``SweepResult.to_dict``)."""
        return {
            "candidate": self.candidate,
            "case": _case_dict(self.case),
            "wrong": list(self.wrong),
            "comparisons": [
                {
                    "name": c.name,
                    "max_abs_err": json_number(c.max_abs_err),
                    "max_rel_err": json_number(c.max_rel_err),
                    "max_err_over_tolerance": json_number(c.max_err_over_tolerance),
                    "ok": c.ok,
                    "problem": c.problem,
                }
                for c in self.comparisons
            ],
            "hints": [
                h.to_dict() if isinstance(h, Hint) else {"code": None, "text": str(h)}
                for h in self.hints
            ],
            "self_consistent": self.self_consistent,
            "error": self.error,
        }


class GradientMismatchError(AssertionError):
    """A backprop disagrees with the reference; ``failure`` holds the case and the details."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(str(failure))
        self.failure = failure


ERROR_COLUMNS = (
    ("max abs err", "max |yours − ref|"),
    ("max rel err", "max |yours − ref| / |ref| over entries with ref ≠ 0"),
    ("err/tol", "max |yours − ref| / (atol + rtol·S), S each entry's error scale: ≤ 1 passes"),
)
"""The error columns of every table, with what they mean."""


def column_legend() -> str:
    """The meaning of the error columns, on two lines."""
    (a, ma), (r, mr), (t, mt) = ERROR_COLUMNS
    return f"{a} = {ma};  {r} = {mr}\n{t} = {mt}"


@dataclass(frozen=True)
class SweepResult:
    """What a sweep found.

    ``stats[candidate][kind]`` (kind ``"W"``, ``"b"`` or ``"loss"``; ``"z"``, ``"a"`` for
    backends) holds the worst errors over the ``cases`` that agreed, all of them before any
    failure; ``declined`` counts the cases the user's function declined (``Unsupported``), by
    reason; ``failure`` is the shrunk failing case or ``None``; ``seed`` reproduces the run.
    ``cases`` counts the agreeing cases only, as every row of ``table()`` does; ``checked``
    adds the failing one.
    """

    seed: int
    trials: int
    cases: int
    stats: dict[str, dict[str, ErrorStats]] = field(default_factory=dict)
    failure: Failure | None = None
    declined: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """No disagreement, and at least one case checked."""
        return self.failure is None and self.cases > 0

    @property
    def cases_declined(self) -> int:
        """How many drawn cases the function declined (``Unsupported``), for every reason."""
        return sum(self.declined.values())

    def declined_text(self) -> str:
        """``"12 cases declined: no softmax"`` per reason, one per line ('' if none)."""
        return "\n".join(
            f"{n} case{'s' if n != 1 else ''} declined: {why}" for why, n in self.declined.items()
        )

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
        """The summary table: candidate × kind → cases and the three errors.

        Empty when no case agreed (the first case failed): there is nothing to summarise.
        """
        if not self.stats:
            return ""
        header = (
            f"{'candidate':<14} {'kind':<5} {'cases':>6} {'max abs err':>12} "
            f"{'max rel err':>12} {'err/tol':>9}"
        )
        rows = [header, "-" * len(header)]
        for name, kinds in self.stats.items():
            for kind, s in kinds.items():
                rows.append(
                    f"{name:<14} {kind:<5} {s.cases:>6} {s.max_abs_err:>12.3g} "
                    f"{s.max_rel_err:>12.3g} {s.max_err_over_tolerance:>9.3g}"
                )
        rows.extend(column_legend().splitlines())
        return "\n".join(rows)

    def to_dict(self) -> dict[str, Any]:
        """One JSON-ready object: ``ok``, ``seed``, ``trials``, ``cases_checked``,
        ``cases_declined``, ``declined`` (reason → count), ``summary`` (rows of ``candidate``,
        ``kind``, ``cases``, ``max_abs_err``, ``max_rel_err``, ``max_err_over_tolerance``) and
        ``failure`` (``None``, or ``Failure.to_dict()``).  Non-finite numbers are ``None``."""
        return {
            "ok": self.ok,
            "seed": self.seed,
            "trials": self.trials,
            "cases_checked": self.checked,
            "cases_declined": self.cases_declined,
            "declined": dict(self.declined),
            "summary": [
                {
                    "candidate": name,
                    "kind": kind,
                    "cases": s.cases,
                    "max_abs_err": json_number(s.max_abs_err),
                    "max_rel_err": json_number(s.max_rel_err),
                    "max_err_over_tolerance": json_number(s.max_err_over_tolerance),
                }
                for name, kinds in self.stats.items()
                for kind, s in kinds.items()
            ],
            "failure": None if self.failure is None else self.failure.to_dict(),
        }

    def __str__(self) -> str:
        parts = (self.table(), self.declined_text(), str(self.failure or ""))
        text = "\n\n".join(t for t in parts if t)
        return text or self.summary()


@dataclass(frozen=True)
class _Outcome:
    """One candidate on one case: the raw material of a ``Failure`` (hints come later)."""

    comparisons: dict[str, list[Comparison]]
    failure: Callable[[], Failure] | None


class _CaseFailedError(Exception):
    def __init__(self, outcome: _Outcome) -> None:
        super().__init__("case failed")
        self.outcome = outcome


class Declined(Exception):  # noqa: N818 - the case, not an error
    """The user's function raised ``Unsupported`` on a case: ``reason`` is its message."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _user_error(exc: BaseException) -> str:
    """``"Type: message (raised at file:line in function)"``, naming the user's own line."""
    # crossgrad's own frames (the call into the user's code) are in this package.
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(_HERE)
    ]
    own = [f for f in frames if "site-packages" not in f.filename] or frames
    if not own:
        return f"{type(exc).__name__}: {exc}"
    last = own[-1]
    return f"{type(exc).__name__}: {exc} (raised at {last.filename}:{last.lineno} in {last.name})"


def value_table(
    comparisons: Sequence[Comparison],
    got: dict[str, np.ndarray[Any, Any]],
    ref: dict[str, np.ndarray[Any, Any]],
    rtol: float,
) -> str:
    """Each compared array: the three errors, the worst index and the two values there."""
    lines = [
        f"tolerance: |yours − ref| ≤ {rtol:.2g}·S",
        *column_legend().splitlines(),
        f"  {'':<5} {'shape':<9} {'max abs err':>11} {'max rel err':>11} {'err/tol':>9} "
        f"{'worst at':<9} {'yours':>17} {'reference':>17}",
    ]
    for c in comparisons:
        g, r = got[c.name], ref[c.name]
        if c.problem is not None and g.shape != r.shape:
            lines.append(f"  {c.name:<5} WRONG: {c.problem}")
            continue
        at = c.worst_index
        lines.append(
            f"  {c.name:<5} {r.shape!s:<9} {c.max_abs_err:>11.3g} {c.max_rel_err:>11.3g} "
            f"{c.max_err_over_tolerance:>9.3g} {at!s:<9} {float(g[at]):>17.10g} "
            f"{float(r[at]):>17.10g}  "
            + ("ok" if c.ok else "WRONG" + (f": {c.problem}" if c.problem else ""))
        )
    return "\n".join(lines)


def timed_out(name: str, timeout: float) -> str:
    """The failure message of a candidate that exceeded its time limit."""
    return f"{name} did not return within {timeout:g} s on this case (the time limit)"


def quiet_settings(max_examples: int) -> settings:
    """Hypothesis' settings for a sweep run as a library call, not as a test: no example
    database, no deadline, random draws (the caller seeds them), quiet, one bug shrunk."""
    return settings(
        max_examples=max_examples,
        database=None,
        deadline=None,
        derandomize=False,
        print_blob=False,
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
        phases=(Phase.explicit, Phase.generate, Phase.shrink),
    )


def impl_checker(
    fn: Backprop,
    rtol: float | None,
    atol: float,
    name: str = "your backprop",
    layout: Layout | None = None,
    kinks: str = "include",
    timeout: float | None = None,
) -> Check:
    """The check of a user's ``fn`` against the reference on one case; a call that takes
    longer than ``timeout`` seconds (``None``: no limit) is abandoned and fails the case
    (in the run of ``run(..., timeout=)``, the run ends with that failure).

    Raises ``Declined`` when ``fn`` raises ``Unsupported``.
    """
    layout_ = Layout() if layout is None else layout
    candidate = name if layout_.default else f"{name} ({layout_.describe()})"

    def out_of_time(case: Case, seconds: float | None) -> _Outcome:
        message = timed_out(name, seconds or 0.0)
        return _Outcome({}, lambda: Failure(candidate, case, (), message, (), ""))

    def user_call(case: Case) -> Gradients:
        # (Under a watched run, a call out of time ends the run with out_of_time's outcome.)
        return call_with_time_limit(
            call, (fn, case, layout_), timeout, lambda: out_of_time(case, timeout)
        )

    def quiet_call(other: Case) -> Gradients | None:
        try:
            return call_with_time_limit(call, (fn, other, layout_), timeout)
        except Exception:  # a probe is optional: a failure there only loses that probe
            return None

    def check(case: Case) -> _Outcome:
        net = case.net
        try:
            got = user_call(case)
        except Unsupported as exc:
            raise Declined(str(exc) or "Unsupported raised without a reason") from None
        except ProtocolError as exc:
            error: str | None = f"it returned the wrong thing: {exc}"
        except TimeLimitExceededError as exc:
            return out_of_time(case, exc.timeout)
        except Exception as exc:  # the user's bug, reported with the case that triggers it
            error = _user_error(exc)
        else:
            error = None
        if error is not None:
            message = error
            return _Outcome({}, lambda: Failure(candidate, case, (), message, (), ""))
        # The reference's backprop without its input checks: a case holds checked input
        # (drawn by the strategies, or checked by assert_gradients_match).
        reference = gradients(net, case.params, Batch(case.x, case.y, single=False))
        rtol_ = default_rtol(net, case.dtype) if rtol is None else rtol
        # One pass gives the error scales of the loss and of every gradient, on the forward
        # values the reference has just computed (the case is a batch: they are 2-d).
        forward_values = (list(reference.preactivations), list(reference.activations))
        forward_scale, weight_scales, bias_scales = error_scale_arrays(
            net, case.params, case.x, case.y, forward_values
        )
        items = gradient_items(net, weight_scales, bias_scales, got, reference.grads)
        if got.loss is not None:
            loss_item = (
                "loss",
                np.asarray(got.loss, np.float64),
                np.asarray(reference.loss, np.float64),
                np.asarray(forward_scale.loss),
                None,
            )
            items.insert(0, loss_item)
        worst = agreeing_errors(items, rtol_, atol)
        if worst is not None:  # what the statistics record: the worst errors of each kind
            agreed = [Comparison(kind, *errors, (), True) for kind, errors in worst.items()]
            return _Outcome({name: agreed}, None)
        comparisons = compare_all(items, rtol_, atol)
        if all(c.ok for c in comparisons):
            return _Outcome({name: comparisons}, None)

        def failure() -> Failure:
            got_named = _named(got)
            ref_named = {"loss": np.asarray(reference.loss), **reference.grads.named()}
            wrong = {c.name for c in comparisons if not c.ok}
            diagnosis = diagnose(
                case,
                got,
                reference,
                loss_wrong="loss" in wrong,
                grads_wrong=bool(wrong - {"loss"}),
                call=quiet_call,
                kinks=kinks,
                layout=layout_,
                in_worker=timeout is not None,
            )
            return Failure(
                candidate,
                case,
                tuple(comparisons),
                None,
                diagnosis.hints,
                value_table(comparisons, got_named, ref_named, rtol_),
                self_consistent=diagnosis.self_consistent,
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


CASES_PER_EXAMPLE = 10
"""The most cases one Hypothesis example of a sweep holds: each example is a list of 1 to 10
cases.  Hypothesis spends a fixed time on every example (its engine, its record of what it
has drawn), besides the draws themselves; a list shares it among its cases (the check-speed
benchmark's ``draw_milliseconds``: ``case`` against ``case_in_a_sweep``).  Shrinking deletes
the other cases of a failing list first, so a failure still comes down to one smallest
case."""


class _Enough(BaseException):
    """Raised in a sweep's test once ``trials`` cases are checked.  Hypothesis passes a
    ``BaseException`` that is not ``Exception`` straight through, as it does
    ``KeyboardInterrupt``: the run ends there, with nothing to shrink."""


Check = Callable[[Case], _Outcome]
"""The check of one case against the reference."""
CheckMany = Callable[[Sequence[Case]], list[_Outcome]]
"""The check of several cases at once, each outcome as ``Check`` gives it, in order."""


def run(
    strategy: st.SearchStrategy[Case],
    check: Check,
    *,
    check_many: CheckMany | None = None,
    trials: int,
    seed: int | None,
    progress: Progress | None = None,
    timeout: float | None = None,
) -> SweepResult:
    """Run ``check`` on up to ``trials`` cases drawn from ``strategy``; shrink any failure.

    Hypothesis draws lists of up to ``CASES_PER_EXAMPLE`` cases, checked in order until
    ``trials`` have been checked or one fails (``check_many`` checks a list at once);
    shrinking a failing list leaves the one case that fails, as small as Hypothesis can make
    it.  A case ``check`` declines (``Declined``) is skipped and counted by reason (an example
    whose every case is declined is rejected: Hypothesis draws another); the counts cover the
    cases drawn before the first failure.  Only the cases that agree are recorded in the
    statistics.

    With a ``timeout``, the user's code that ``check`` calls under that time limit is watched
    from this thread while the run goes on in a thread of its own (``_time_limit.Watch``).
    The first call that does not return in time ends the run: it is abandoned, still
    running, and the case it was called on is reported, as it came (shrinking it would cost
    a time limit per step), unless a failure found earlier was being shrunk: then that
    failure, as small as it got.
    """
    seed_ = secrets.randbelow(2**32) if seed is None else seed
    stats: dict[str, dict[str, ErrorStats]] = {}
    declined: dict[str, int] = {}
    state: dict[str, Any] = {"checked": 0, "last": None}

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

    def test_one(case: Case, check: Check) -> bool:
        """Check one case; ``False`` if it was declined."""
        try:
            outcome = check(case)
        except Declined as exc:
            if state["last"] is None:
                declined[exc.reason] = declined.get(exc.reason, 0) + 1
            return False
        if state["last"] is None:
            if outcome.failure is None:
                record(outcome)
                state["checked"] += 1
            if progress is not None:
                progress(int(state["checked"]) + (outcome.failure is not None), trials)
        if outcome.failure is not None:
            state["last"] = outcome
            raise _CaseFailedError(outcome)
        if state["last"] is None and state["checked"] >= trials:
            raise _Enough
        return True

    def test(cases: list[Case]) -> None:
        if state["last"] is None:
            cases = cases[: trials - int(state["checked"])]  # no more than the trials
        each = check
        if check_many is not None and len(cases) > 1:
            outcomes = iter(check_many(cases))

            def each(case: Case) -> _Outcome:  # the outcomes of check_many, in order
                return next(outcomes)

        checked = [test_one(case, each) for case in cases]  # every case, in order
        if not any(checked):
            reject()  # nothing checked in this example: Hypothesis draws another

    examples = st.lists(strategy, min_size=1, max_size=CASES_PER_EXAMPLE)
    runner = quiet_settings(trials)(given(cases=examples)(test))
    runner = hypothesis_seed(seed_)(runner)

    def explore() -> _Outcome | None:
        """The Hypothesis run: the failure it ends with, if any."""
        try:
            runner()
        except _Enough:
            pass
        except _CaseFailedError as exc:
            return exc.outcome
        except Unsatisfiable:  # every case drawn was declined: nothing checked
            pass
        except FlakyFailure as group:  # the candidate failed once and passed on replay
            found = [e for e in group.exceptions if isinstance(e, _CaseFailedError)]
            if not found and state["last"] is None:
                raise
            return found[0].outcome if found else cast(_Outcome, state["last"])
        return None

    shrunk = True
    if timeout is None:
        outcome = explore()
    else:
        finished, value = Watch(timeout).run(explore)
        # A call that hung: the failure being shrunk, if one was, else the case it hung on,
        # not shrunk.  (The abandoned thread changes nothing more: it ends when the call
        # returns, with the exception ``Abandoned``.)
        if not finished:
            shrunk = state["last"] is not None
            value = state["last"] or value
        outcome = value
    failure = None
    if outcome is not None and outcome.failure is not None:
        made = outcome.failure()
        failure = Failure(
            made.candidate, made.case, made.comparisons, made.error, made.hints, made.details,
            shrunk=shrunk, seed=seed_, self_consistent=made.self_consistent,
        )  # fmt: skip
    return SweepResult(seed_, trials, int(state["checked"]), stats, failure, declined)
