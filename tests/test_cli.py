"""The ``crossgrad`` command line: subcommands, ``--help``, exit codes, ``python -m crossgrad``."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest
from user_code import write_module

from crossgrad import cli
from crossgrad.cli import EXIT_USAGE, build_parser, main
from crossgrad.cli._common import UsageError, backend_list, names, positive_int


def test_python_dash_m_crossgrad_lists_the_subcommands() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "crossgrad", "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    for command in ("example", "check", "bench"):
        assert command in done.stdout


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("example", ["--json", "--format", "--sizes", "--activation", "--loss", "--seed", "--lr"]),
        ("check", ["--trials", "--seed", "--depth", "--width", "--batch", "--impl", "--dtype"]),
        ("bench", ["--quick"]),
    ],
)
def test_every_subcommand_has_help(
    command: str, options: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for option in options:
        assert option in text


@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["example", "--no-such-option"]])
def test_argparse_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == EXIT_USAGE
    assert "usage: crossgrad" in capsys.readouterr().err


def test_a_usage_error_found_later_is_a_message_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def run(args: argparse.Namespace) -> int:
        raise UsageError("that will not do")

    monkeypatch.setattr(cli.example, "run", run)
    assert main(["example"]) == EXIT_USAGE
    captured = capsys.readouterr()
    assert captured.err == "crossgrad example: error: that will not do\n"
    assert captured.out == ""


def test_console_script_usage_error_has_no_traceback() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "crossgrad", "example", "--sizes", "2,0,1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == EXIT_USAGE
    assert "Traceback" not in done.stderr
    assert "expected a positive integer, got 0" in done.stderr


def test_option_types() -> None:
    assert positive_int("3") == 3
    assert backend_list("jax, torch,jax") == ("jax", "torch")
    assert names("relu,tanh", ("relu", "tanh"), "activation") == ("relu", "tanh")
    for bad in ("0", "-1", "x"):
        with pytest.raises(argparse.ArgumentTypeError):
            positive_int(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="unknown backend 'tensorflow'"):
        backend_list("torch,tensorflow")
    with pytest.raises(argparse.ArgumentTypeError, match="none given"):
        backend_list(",")


def test_parser_knows_every_subcommand() -> None:
    parser = build_parser()
    for command in cli.SUBCOMMANDS:
        assert parser.parse_args([command]).command == command


def test_the_console_script_ends_after_the_runs_own_exit_handlers(tmp_path: Path) -> None:
    # console_main ends the process with os._exit: after the handlers registered during the
    # run (here by the user's module), with the command's status and all of its output.
    name = write_module(
        tmp_path,
        """
        import atexit, sys

        from crossgrad import reference

        def backprop(net, params, x, y):
            return reference.backprop(net, params, x, y)

        atexit.register(lambda: print("the user's exit handler ran", file=sys.stderr))
        """,
    )
    done = subprocess.run(
        [sys.executable, "-m", "crossgrad", "check", "--impl", f"{name}:backprop",
         "--trials", "3", "--seed", "0", "--no-progress"],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith("All 3 cases agree.")
    assert done.stderr == "the user's exit handler ran\n"
