"""``crossgrad check``: the sweep of the backends and of a user's own backprop, exit codes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from user_code import write_module

from crossgrad import adapters
from crossgrad.cli import main

FRAMEWORKS = [b for b in ("torch", "jax") if b in adapters.available()]

CORRECT = """
from crossgrad import reference

def backprop(net, params, x, y):
    return reference.backprop(net, params, x, y)
"""

SUM_NOT_MEAN = """
from crossgrad import reference

def backprop(net, params, x, y):
    # The planted bug: the gradients of the batch's sum, where the loss takes its mean.
    out = reference.backprop(net, params, x, y)
    n = x.shape[0]
    return out.loss, [n * dW for dW in out.grads.weights], [n * db for db in out.grads.biases]
"""


CLIPPED_BCE = """
import numpy as np
from scipy.special import expit
from crossgrad import reference

def backprop(net, params, x, y):
    # Exact gradients; the loss of probabilities clipped to [1e-7, 1 - 1e-7], as many
    # libraries compute it.
    out = reference.backprop(net, params, x, y)
    p = np.clip(expit(out.preactivations[-1]), 1e-7, 1 - 1e-7)
    loss = -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean(axis=1).mean()
    return loss, out.grads.weights, out.grads.biases
"""


def _check(*argv: str) -> list[str]:
    return ["check", "--trials", "15", "--seed", "1", "--no-progress", *argv]


def test_a_correct_implementation_is_accepted(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = write_module(in_tmp, CORRECT)
    assert main(_check("--impl", f"{name}:backprop")) == 0
    out = capsys.readouterr().out
    assert f"{name}:backprop against the crossgrad reference: 15 cases checked (seed 1)" in out
    assert re.search(r"^your backprop +W +15 ", out, re.MULTILINE)
    assert "All 15 cases agree." in out


def test_a_planted_bug_is_caught_shrunk_and_explained(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = write_module(in_tmp, SUM_NOT_MEAN)
    assert main(_check("--impl", f"{name}:backprop", "--trials", "50")) == 1
    out = capsys.readouterr().out
    assert "Smallest failing case Hypothesis found (seed 1):" in out
    assert "Wrong: W1" in out
    assert "Hint: your gradients are 2 × the reference, the batch size" in out  # batch of 2
    assert "mean over a batch of 2" in out
    assert "--seed 1 to reproduce" in out


def test_a_failure_of_unrestricted_cases_says_how_to_restrict_them(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = write_module(in_tmp, SUM_NOT_MEAN)
    note = "The cases were drawn from every activation, loss and reduction"
    assert main(_check("--impl", f"{name}:backprop")) == 1
    assert note in capsys.readouterr().out
    assert main(_check("--impl", f"{name}:backprop", "--loss", "mse")) == 1
    assert note not in capsys.readouterr().out  # restricted: the user chose the cases


def test_an_exception_in_the_users_code_is_a_failure_not_a_crash(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = write_module(in_tmp, "def backprop(net, params, x, y):\n    raise KeyError('W3')\n")
    assert main(_check("--impl", f"{name}:backprop")) == 1
    out = capsys.readouterr().out
    assert "failed on it: KeyError: 'W3' (raised at" in out
    assert "Traceback" not in out


def test_the_module_is_found_on_pythonpath(tmp_path: Path) -> None:
    name = write_module(tmp_path, CORRECT)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "crossgrad", *_check("--impl", f"{name}:backprop")],
        capture_output=True,
        text=True,
        check=False,
        cwd=elsewhere,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "All 15 cases agree." in done.stdout


@pytest.mark.parametrize(
    ("source", "spec", "message"),
    [
        (CORRECT, "{name}", "--impl must be MODULE:FUNC"),
        (CORRECT, "{name}:", "--impl must be MODULE:FUNC"),
        (CORRECT, "no_such_module_here:backprop", "cannot import 'no_such_module_here'"),
        (CORRECT, "{name}:back_prop", "has no 'back_prop'"),
        ("backprop = 3\n", "{name}:backprop", "is an int, not a function"),
        ("import no_such_dependency\n", "{name}:backprop", "No module named 'no_such_dependency'"),
        ("def backprop(:\n", "{name}:backprop", "SyntaxError"),
        ("raise RuntimeError('at import')\n", "{name}:backprop", "RuntimeError: at import"),
    ],
)
def test_a_bad_impl_is_a_usage_error(
    in_tmp: Path, capsys: pytest.CaptureFixture[str], source: str, spec: str, message: str
) -> None:
    name = write_module(in_tmp, source)
    assert main(_check("--impl", spec.format(name=name))) == 2
    err = capsys.readouterr().err
    assert err.startswith("crossgrad check: error: ")
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["--trials", "0"],
        ["--depth", "3-1"],
        ["--width", "0"],
        ["--batch", "1-2-3"],
        ["--activation", "swish"],
        ["--loss", "hinge"],
        ["--dtype", "float16"],
        ["--backends", "torch", "--impl", "m:f"],
    ],
)
def test_bad_options_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["check", *argv])
    assert exc.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_missing_hypothesis_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for module in [
        m for m in sys.modules if m == "crossgrad.testing" or m.startswith("crossgrad.testing.")
    ]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.delattr("crossgrad.testing", raising=False)
    monkeypatch.setitem(sys.modules, "hypothesis", None)
    assert main(_check("--impl", "crossgrad.reference:backprop")) == 2
    assert "pip install 'crossgrad[test]'" in capsys.readouterr().err


@pytest.mark.skipif(not FRAMEWORKS, reason="neither torch nor jax is installed")
def test_the_backends_agree_on_a_small_sweep(capsys: pytest.CaptureFixture[str]) -> None:
    backends = ",".join(FRAMEWORKS)
    argv = _check("--backends", backends, "--depth", "1-2", "--width", "1-4", "--trials", "10")
    # The property suite covers every activation; here the command line is under test.
    argv += ["--activation", "sigmoid,tanh", "--activation", "relu"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"{', '.join(FRAMEWORKS)} against the crossgrad reference: 10 cases checked" in out
    for backend in FRAMEWORKS:
        assert re.search(rf"^{backend} +W +10 ", out, re.MULTILINE)
    assert "All 10 cases agree." in out


def test_a_missing_framework_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "jax", None)  # `import jax` now fails
    assert main(_check("--backends", "jax")) == 2
    err = capsys.readouterr().err
    assert "pip install 'crossgrad[jax]'" in err
    assert "--backends numeric" in err


def test_a_framework_that_fails_to_import_names_its_backend(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Installed but broken: the sweep imports it, and the usage error says what happened.
    # (JAX imported here, as in a test suite: the sweep runs it in this process.)
    import jax  # noqa: F401

    real = adapters.importlib.import_module

    def broken(module: str, package: str | None = None) -> object:
        if module == ".jax_backend":
            raise ImportError("libjax.so: cannot open shared object file")
        return real(module, package)

    monkeypatch.setattr(adapters, "_LOADED", {})  # as in a process that has not loaded it
    monkeypatch.setattr(adapters.importlib, "import_module", broken)
    assert main(_check("--backends", "jax")) == 2
    err = capsys.readouterr().err
    assert "the 'jax' backend could not be imported: libjax.so: cannot open" in err
    assert "(or leave jax out, e.g. --backends numeric)" in err


def test_a_framework_that_fails_to_import_in_its_own_process_names_its_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A new `crossgrad check` (JAX not imported yet) imports JAX in a process of its own,
    # which takes this one's sys.path: a broken "jax" first on it gives the same usage error.
    (tmp_path / "jax.py").write_text("raise ImportError('libjax.so: cannot open it')\n")
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    monkeypatch.delitem(sys.modules, "jax", raising=False)
    monkeypatch.setattr(adapters, "_LOADED", {})
    assert main(_check("--backends", "jax")) == 2
    err = capsys.readouterr().err
    assert "the 'jax' backend could not be imported: libjax.so: cannot open it" in err
    assert "(or leave jax out, e.g. --backends numeric)" in err


RESTRICTED = """
import numpy as np
from crossgrad import reference

def backprop(net, params, x, y):
    # Raises (a failure, exit 1) on any case outside what the options ask for.
    if set(net.activations) - {"tanh", "relu"} or net.loss != "mse" or net.reduction != "sum":
        raise ValueError(f"unexpected network {net!r}")
    if not (2 <= net.n_layers <= 3 and max(net.sizes) <= 3 and 4 <= x.shape[0] <= 5):
        raise ValueError(f"unexpected sizes {net.sizes} or batch {x.shape[0]}")
    if params.dtype != np.float32:
        raise ValueError(f"unexpected dtype {params.dtype}")
    return reference.backprop(net, params, x, y)
"""


def test_the_options_restrict_the_cases(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = write_module(in_tmp, RESTRICTED)
    argv = _check("--impl", f"{name}:backprop", "--activation", "tanh", "--activation", "relu")
    argv += ["--loss", "mse", "--reduction", "sum", "--dtype", "float32"]
    argv += ["--depth", "2-3", "--width", "1,3", "--batch", "4-5", "--trials", "20"]
    assert main(argv) == 0, capsys.readouterr().out


def test_the_progress_bar_is_on_stderr(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = write_module(in_tmp, CORRECT)
    argv = ["check", "--trials", "5", "--seed", "0", "--impl", f"{name}:backprop"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert f"checking {name}:backprop" in captured.err
    assert "checking" not in captured.out


BACKEND_OBJECT = """
from crossgrad import reference


class Planted:
    name = "planted"

    def backprop(self, net, params, x, y):
        return reference.backprop(net, params, x, y)


backend = Planted()
"""


def test_an_object_with_backprop_is_accepted_as_impl(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = write_module(in_tmp, BACKEND_OBJECT)
    assert main(_check("--impl", f"{name}:backend")) == 0
    assert "All 15 cases agree." in capsys.readouterr().out


def test_the_option_names_are_those_of_testing_and_strategies() -> None:
    from crossgrad import strategies, testing
    from crossgrad.cli import check

    assert check.KINK_POLICIES == strategies.KINK_POLICIES
    assert (check.WEIGHT_LAYOUTS, check.SAMPLE_LAYOUTS) == (
        testing.WEIGHT_LAYOUTS,
        testing.SAMPLE_LAYOUTS,
    )


def test_far_out_cases_are_asked_for_with_far_out(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Off for --impl by default: the clipping never bites, every case agrees.
    name = write_module(in_tmp, CLIPPED_BCE)
    bce = ["--impl", f"{name}:backprop", "--loss", "binary_cross_entropy", "--reduction", "mean"]
    assert main(_check(*bce, "--trials", "100")) == 0
    capsys.readouterr()
    assert main(_check(*bce, "--trials", "100", "--far-out", "--json")) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["failure"]["wrong"] == ["loss"]
    assert "clipped_log" in [hint["code"] for hint in report["failure"]["hints"]]
    assert main(_check(*bce, "--trials", "100", "--no-far-out")) == 0


@pytest.mark.parametrize("value", ["-3", "3-", "2--4"])
def test_a_range_with_a_missing_bound_says_the_value_that_came(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["check", "--batch", value])
    assert f"argument --batch: expected N or MIN-MAX of positive integers, got {value!r}" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--kinks", "only", "--activation", "tanh"], "error: --kinks only needs a kinked activ"),
        (
            ["--output-activation", "tanh", "--loss", "binary_cross_entropy"],
            "error: --output-activation tanh fits none of the losses binary_cross_entropy",
        ),
    ],
)
def test_contradicting_restrictions_are_named_as_options(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", *argv, "--no-progress"]) == 2
    assert message in capsys.readouterr().err
