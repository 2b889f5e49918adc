"""One named test per defect the fuzzing pass found: each failed before its fix.

Messages: one wording per kind of mistake, numbers written as numbers, counts that agree;
outputs that stay usable: LaTeX that compiles for any width, no traceback on a closed pipe.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from user_code import write_module

from crossgrad import adapters, reference, testing, walkthrough
from crossgrad.cli import main
from crossgrad.reference import Network, Params, init_params


def _check(*argv: str) -> list[str]:
    return ["check", "--trials", "10", "--seed", "1", "--no-progress", *argv]


# --- the command line -------------------------------------------------------------------


def test_version_is_an_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("crossgrad 0.")


@pytest.mark.parametrize("value", ["0", "-5"])
def test_out_of_range_integers_get_one_wording(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["check", "--trials", value])
    assert f"argument --trials: expected a positive integer, got {value}" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "-1", "inf", "soon"])
def test_a_bad_timeout_is_a_usage_error(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["check", "--timeout", value])
    assert exc.value.code == 2
    assert "argument --timeout: expected a" in capsys.readouterr().err


def test_impl_that_is_not_a_function_gets_the_right_article(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = write_module(in_tmp, "backprop = 3\n")
    assert main(_check("--impl", f"{name}:backprop")) == 2
    assert f"{name}:backprop is an int, not a function" in capsys.readouterr().err


def test_check_help_example_names_the_reduction(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["check", "--help"])
    assert "--reduction mean" in " ".join(capsys.readouterr().out.split())


SHAPE_BUG = """
from crossgrad import reference

def backprop(net, params, x, y):
    out = reference.backprop(net, params, x, y)
    return out.loss, [dW.T for dW in out.grads.weights], list(out.grads.biases)
"""

RAISES = """
def backprop(net, params, x, y):
    raise RuntimeError("not written yet")
"""


def test_summary_counts_match_the_rows_and_failing_cases_are_left_out(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = write_module(in_tmp, SHAPE_BUG)  # a (1, 1) W passes, the first wider one fails
    assert main(_check("--impl", f"{name}:backprop")) == 1
    out = capsys.readouterr().out
    lines = out.split("\n\n")[0].splitlines()
    legend = next(i for i, line in enumerate(lines) if line.startswith("max abs err ="))
    head, table = lines[0], lines[3:legend]
    agreed = int(head.split(": ")[1].split(" case")[0])
    assert (
        f"{agreed} case{'s' if agreed != 1 else ''} agreed, then case {agreed + 1} failed" in head
    )
    assert table, out
    assert all(int(row.split()[3]) == agreed for row in table)
    assert " inf " not in out  # the shape mismatch is described, not measured


def test_no_empty_table_when_the_first_case_fails(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = write_module(in_tmp, RAISES)
    assert main(_check("--impl", f"{name}:backprop")) == 1
    out = capsys.readouterr().out
    assert "the first case checked failed" in out
    assert "worst abs err" not in out
    assert "RuntimeError: not written yet" in out


def test_a_shape_mismatch_is_not_shown_as_inf_in_a_crosscheck_report() -> None:
    class Transposed:
        name = "mine"

        def backprop(self, net: Network, params: Params, x: Any, y: Any) -> Any:
            r = reference.backprop(net, params, x, y)
            # Not Params (which holds only crossgrad's layout): any weights and biases.
            grads = SimpleNamespace(
                weights=tuple(W.T for W in r.grads.weights), biases=r.grads.biases
            )
            return reference.BackpropResult(r.loss, grads, r.preactivations, r.activations)

    net = Network((3, 2))
    report = adapters.crosscheck(net, init_params(net), np.ones(3), np.zeros(2), [Transposed()])
    row = next(line for line in str(report).splitlines() if line.startswith("mine     W1"))
    assert "inf" not in row
    assert "MISMATCH: shape (3, 2), expected (2, 3)" in row


def test_softmax_over_a_non_identity_output_gets_a_note(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["example", "--sizes", "3,5,2", "--activation", "relu,sigmoid"]
    argv += ["--loss", "softmax_cross_entropy", "--backends", "numeric"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "note      the softmax is taken over the output layer's sigmoid activations" in out
    identity = Network((3, 2), activation="identity", loss="softmax_cross_entropy")
    assert walkthrough.network_notes(identity) == ()


def test_a_closed_pipe_ends_the_command_without_a_traceback() -> None:
    command = [sys.executable, "-c", "from crossgrad.cli import console_main; console_main()"]
    command += ["example", "--backends", "numeric"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        proc.stdout.read(10)
        proc.stdout.close()  # the reader goes away, as `| head -c 10` would
        err = proc.stderr.read().decode()
    assert "Traceback" not in err, err
    assert proc.returncode in (0, 141)


# --- the library --------------------------------------------------------------------------


def test_init_params_names_a_negative_seed() -> None:
    with pytest.raises(ValueError, match=r"^seed must be a non-negative integer, got -1$"):
        init_params(Network((2, 1)), seed=-1)


def test_target_domain_messages_show_plain_numbers() -> None:
    net = Network((2, 1), loss="binary_cross_entropy")
    with pytest.raises(ValueError, match=r"got values from 2 to 2$"):
        reference.backprop(net, init_params(net), [0.0, 0.0], [2.0])


def _wrong_loss(loss: object) -> Any:
    def backprop(net: Network, params: Params, x: Any, y: Any) -> Any:
        out = reference.backprop(net, params, x, y)
        return loss, list(out.grads.weights), list(out.grads.biases)

    return backprop


@pytest.mark.parametrize(
    ("loss", "words"),
    [
        ("0.5", "the loss must be a number, got str '0.5'"),
        (b"0.5", "the loss must be a number, got bytes"),
        (True, "the loss must be a number, got bool"),
        (np.array([0.5]), "got an array of shape (1,)"),
        (1 + 0j, "got complex"),
        ({"loss": 0.5}, "got dict"),
    ],
)
def test_a_loss_that_is_not_a_real_number_is_refused(loss: object, words: str) -> None:
    with pytest.raises(testing.GradientMismatchError) as info:
        testing.check_implementation(_wrong_loss(loss), max_examples=3, seed=0)
    assert "returned the wrong thing" in str(info.value)
    assert words in str(info.value)


def test_layer_counts_are_singular_and_plural() -> None:
    with pytest.raises(testing.GradientMismatchError, match="hold 1 array; the network has 2"):
        testing.check_implementation(
            lambda net, p, x, y: (0.0, [p.weights[0]], [p.biases[0]]),
            depth=2, max_examples=3, seed=0,
        )  # fmt: skip


def test_a_backprop_that_hangs_fails_its_case_within_the_time_limit() -> None:
    def hangs(net: Network, params: Params, x: Any, y: Any) -> Any:
        time.sleep(30)

    start = time.monotonic()
    with pytest.raises(testing.GradientMismatchError) as info:
        testing.check_implementation(hangs, max_examples=5, seed=0, timeout=0.2)
    # The first case ends the run, one time limit after its call started (and a little slack).
    assert time.monotonic() - start < 3
    assert "your backprop did not return within 0.2 s on this case" in str(info.value)
    assert "Failing case" in str(info.value)  # as it came: shrinking costs a limit per step
    assert not info.value.failure.shrunk


def test_a_slow_case_is_reported_as_it_came() -> None:
    def slow_when_wide(net: Network, params: Params, x: Any, y: Any) -> Any:
        if max(net.sizes) >= 3:
            time.sleep(30)
        return reference.backprop(net, params, x, y)

    with pytest.raises(testing.GradientMismatchError) as info:
        testing.check_implementation(slow_when_wide, max_examples=50, seed=0, timeout=0.1)
    assert max(info.value.failure.case.net.sizes) >= 3
    assert "did not return within 0.1 s" in str(info.value)


def test_a_failure_being_shrunk_when_a_call_hangs_is_the_one_reported() -> None:
    # Right on the narrowest networks, wrong from width 3, hangs at width 2: shrinking the
    # wrong gradients reaches a hanging call, which ends the run; the gradients found wrong
    # are reported, as far as they were shrunk.
    def wrong_or_hangs(net: Network, params: Params, x: Any, y: Any) -> Any:
        if max(net.sizes) == 2:
            time.sleep(30)
        got = reference.backprop(net, params, x, y)
        if max(net.sizes) == 1:
            return got
        return got.loss, [2 * W for W in got.grads.weights], got.grads.biases

    start = time.monotonic()
    result = testing.sweep(impl=wrong_or_hangs, trials=100, seed=0, timeout=0.2)
    assert time.monotonic() - start < 10
    assert result.failure is not None
    assert result.failure.error is None  # wrong gradients, not a time-out
    assert result.failure.shrunk
    assert max(result.failure.case.net.sizes) > 2


@pytest.mark.parametrize(
    ("timeout", "error"), [(0, ValueError), ("60", TypeError), (-1.0, ValueError)]
)
def test_a_bad_timeout_argument_is_refused(timeout: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="timeout must be"):
        testing.check_implementation(reference.backprop, timeout=timeout)  # type: ignore[arg-type]


def test_the_time_limit_covers_a_backend_of_ones_own() -> None:
    class Hangs:
        name = "hangs"

        def backprop(self, net: Network, params: Params, x: Any, y: Any) -> Any:
            time.sleep(30)

    result = testing.sweep([Hangs()], trials=3, seed=0, timeout=0.2)
    assert result.failure is not None
    assert "hangs did not return within 0.2 s" in str(result.failure)


def test_named_backends_beside_a_plain_function_run_without_the_time_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Only the user's own code runs under the limit: torch (a name) does not, even beside a
    # plain function of the user's (checked as an impl, under its own name and limit).
    limits: dict[str, set[float | None]] = {}
    real = testing.call_with_time_limit

    def spy(fn: Any, args: tuple[Any, ...], timeout: float | None, *if_hung: Any) -> Any:
        limits.setdefault(getattr(fn, "__name__", "?"), set()).add(timeout)
        return real(fn, args, timeout, *if_hung)

    monkeypatch.setattr(testing, "call_with_time_limit", spy)
    monkeypatch.setattr(testing._sweep, "call_with_time_limit", spy)

    def mine(net: Network, params: Params, x: Any, y: Any) -> Any:
        return reference.backprop(net, params, x, y)

    result = testing.sweep(["torch", mine], trials=3, seed=0, timeout=30.0)
    assert result.ok
    assert limits["_crosscheck"] == {None}
    assert limits["call"] == {30.0}


# --- LaTeX --------------------------------------------------------------------------------

WIDE = Network((11, 3, 2))


def test_latex_allows_as_many_matrix_columns_as_the_widest_layer() -> None:
    w = walkthrough.generate(WIDE, 0, 0.1, backends=())
    tex = walkthrough.to_latex(w)
    assert r"\setcounter{MaxMatrixCols}{11}" in tex
    widest = max(
        row.count("&") + 1
        for matrix in tex.split(r"\begin{bmatrix}")[1:]
        for row in matrix.split(r"\end{bmatrix}")[0].split(r"\\")
    )
    assert widest == 11


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
@pytest.mark.parametrize("sizes", [(2, 2, 1), (11, 3, 2), (24, 2)])
def test_latex_compiles_with_pdflatex(sizes: tuple[int, ...], tmp_path: Path) -> None:
    w = walkthrough.generate(Network(sizes), 0, 0.1, backends=())
    (tmp_path / "w.tex").write_text(walkthrough.to_latex(w), "utf-8")
    done = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "w.tex"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:]
    assert (tmp_path / "w.pdf").exists()


def test_an_overflowing_example_is_an_error_message_not_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["example", "--sizes", "4,4,4", "--activation", "identity", "--lr", "1.7e308"]
    assert main([*argv, "--backends", "numeric"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("crossgrad example: error: sgd_step overflows float64 in the new W2")
    assert "use a smaller lr" in err


# --- found by the fuzz suites ------------------------------------------------------------


def test_a_tolerance_of_the_wrong_type_is_a_type_error_naming_it() -> None:
    net = Network((2, 1))
    with pytest.raises(TypeError, match=r"^rtol must be a real number or None, got str '1e-6'$"):
        adapters.crosscheck(net, init_params(net), [1.0, 2.0], [0.5], ["numeric"], rtol="1e-6")  # type: ignore[arg-type]


def test_a_backend_returning_none_is_that_backends_failure() -> None:
    class ReturnsNone:
        name = "mine"

        def backprop(self, net: Network, params: Params, x: Any, y: Any) -> Any:
            return None

    net = Network((2, 1))
    report = adapters.crosscheck(net, init_params(net), [1.0, 2.0], [0.5], [ReturnsNone()])
    assert not report.ok
    assert report.errors["mine"] == "returned NoneType, expected a BackpropResult"


def test_strategies_refuse_a_number_for_names() -> None:
    from crossgrad import strategies

    with pytest.raises(TypeError, match="activations must be a name, a sequence of names or None"):
        strategies.cases(activations=3)  # type: ignore[arg-type]


def test_a_learning_rate_beyond_float64_is_a_value_error_naming_lr() -> None:
    net = Network((2, 1))
    params = init_params(net)
    grads = reference.backprop(net, params, [1.0, 2.0], [0.5]).grads
    with pytest.raises(ValueError, match=r"^lr must be finite and positive, got an integer beyond"):
        reference.sgd_step(params, grads, 10**400)
