"""Fuzzing every ``crossgrad`` command through ``crossgrad.cli.main(argv)``.

Property: whatever the argument list, the command ends with exit status 0, 1 or 2, a usage
error (2) says ``error:`` on stderr, and nothing escapes as a traceback or a warning.  User
modules for ``--impl`` misbehave in every way (raise on import, have a syntax error, return
the wrong thing, raise, print, hang past ``--timeout``).
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from fuzzing import budget
from hypothesis import given
from hypothesis import strategies as st

from crossgrad.cli import main
from crossgrad.reference import LOSSES

MODULES = {
    "fz_correct": """
        from crossgrad import reference
        def backprop(net, params, x, y):
            return reference.backprop(net, params, x, y)
    """,
    "fz_doubled": """
        from crossgrad import reference
        def backprop(net, params, x, y):
            r = reference.backprop(net, params, x, y)
            return 2 * r.loss, [2 * w for w in r.grads.weights], list(r.grads.biases)
    """,
    "fz_none": "def backprop(net, params, x, y):\n    return None\n",
    "fz_string_loss": """
        from crossgrad import reference
        def backprop(net, params, x, y):
            r = reference.backprop(net, params, x, y)
            return str(r.loss), list(r.grads.weights), list(r.grads.biases)
    """,
    "fz_raises": "def backprop(net, params, x, y):\n    raise KeyError('W1')\n",
    "fz_prints": """
        from crossgrad import reference
        def backprop(net, params, x, y):
            print("hello from the user's code")
            return reference.backprop(net, params, x, y)
    """,
    "fz_hangs": "import time\ndef backprop(net, params, x, y):\n    time.sleep(30)\n",
    "fz_import_error": "raise RuntimeError('broken at import')\n",
    "fz_syntax": "def backprop(:\n",
    "fz_constant": "backprop = 42\n",
}
IMPLS = [f"{m}:backprop" for m in MODULES] + ["fz_missing:backprop", "fz_correct:nope", "x", ":"]
NUMBERS = ["0", "-5", "1", "2", "x", "", "1e309", "nan", "99999999999999999999"]

EXAMPLE = {
    "--format": ["text", "json", "markdown", "latex", "pdf"],
    "--json": None,
    "--sizes": ["2,1", "1,1,1", "11,2", "0,2", "a,b", "3", "2,,1", "-1,2"],
    "--activation": ["tanh", "relu,sigmoid", "nope", "sigmoid,sigmoid,sigmoid", ""],
    "--loss": [*LOSSES, "nope"],
    "--seed": NUMBERS,
    "--lr": ["0.1", "0", "-1", "inf", "nan", "1e300", "x"],
    "--digits": ["1", "4", "17", "18", *NUMBERS],
    "--backends": ["numeric", "torch", "numeric,numeric", "nope", ""],
}
CHECK = {
    "--trials": NUMBERS,
    "--seed": NUMBERS,
    "--depth": ["1", "1-2", "2-1", "0", "x", "1,2", "1-2-3"],
    "--width": ["1", "1-3", "0", "3-1"],
    "--batch": ["1", "1-2", "0"],
    "--activation": ["relu", "nope", "tanh,gelu", ""],
    "--loss": [*LOSSES, "nope"],
    "--reduction": ["mean", "sum", "max"],
    "--dtype": ["float32", "float64", "float16"],
    "--backends": ["numeric", "torch", "nope"],
    "--impl": IMPLS,
    "--timeout": ["0.3", "0", "-1", "x", "inf"],
    "--no-progress": None,
}
BENCH = {"--threads": ["0", "x", "-2"], "--rounds": ["0", "many"], "--grid": ["nope"]}


@st.composite
def argvs(draw: st.DrawFn) -> list[str]:
    command = draw(st.sampled_from(["example", "check", "bench", "nope", "--version", ""]))
    options = {"example": EXAMPLE, "check": CHECK, "bench": BENCH}.get(command, {})
    argv = [command] if command else []
    if command == "example":
        argv += ["--backends", "numeric"]  # jax compiles for every network: too slow here
    if command == "check":
        argv += ["--trials", "2", "--width", "1-3", "--depth", "1-2", "--timeout", "0.3"]
    chosen = draw(st.lists(st.sampled_from(sorted(options)), max_size=4)) if options else []
    if command == "bench":  # a valid bench runs the benchmarks: always give a bad option
        chosen = chosen or ["--grid"]
    for option in chosen:
        values = options[option]
        argv += [option] if values is None else [option, draw(st.sampled_from(values))]
    if command == "check" and "--impl" not in chosen:
        argv[1:1] = ["--backends", "numeric"]  # before the drawn ones, which may override it
    return argv


@pytest.fixture(scope="module")
def user_modules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("fuzz_cli")
    for name, source in MODULES.items():
        (directory / f"{name}.py").write_text(textwrap.dedent(source), "utf-8")
    return directory


@budget(40)
@given(argv=argvs())
def test_every_command_ends_cleanly(
    argv: list[str],
    user_modules: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(user_modules)
    monkeypatch.setattr(sys, "path", list(sys.path))
    status: Any
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse: --help, --version and usage errors
        status = exc.code
    out, err = capsys.readouterr()
    assert status in (0, 1, 2), (argv, status, err)
    assert "Traceback" not in out + err
    if status == 2:
        assert "error:" in err, (argv, err)
    if status == 1 and argv[0] == "check":
        assert "Run it again with --seed" in out
