"""The ``crossgrad`` command: ``crossgrad example | check | bench | cache``.

Thin over library functions: one module per subcommand, each with ``add_parser(subparsers)``
(declares its options) and ``run(args) -> int`` (the exit status).  Exit codes: 0 success,
1 gradients disagree, 2 usage error.  A usage error is a message on stderr, never a traceback:
argparse exits 2 on bad options, and a subcommand raises ``UsageError`` for a mistake it
finds later (a missing framework, a module that cannot be imported).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import logging
import os
import sys
from collections.abc import Sequence

from . import bench, cache, check, example
from ._common import UsageError

EXIT_OK, EXIT_MISMATCH, EXIT_USAGE = 0, 1, 2

SUBCOMMANDS = {"example": example, "check": check, "bench": bench, "cache": cache}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crossgrad",
        description="Know that backpropagation is right: the NumPy reference cross-checked "
        "against PyTorch autograd, JAX and finite differences.",
        epilog="Exit status: 0 success, 1 gradients disagree, 2 usage error.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMANDS.values():
        module.add_parser(sub)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("crossgrad")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "(version unknown: not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (argparse raises ``SystemExit(2)`` itself)."""
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 with a usage message on a usage error
    try:
        status: int = SUBCOMMANDS[args.command].run(args)
    except (UsageError, OverflowError) as exc:  # an overflow: options too large for float64
        print(f"crossgrad {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"crossgrad {args.command}: interrupted", file=sys.stderr)
        return 130
    return status


def console_main() -> None:
    """The console-script entry point: ``sys.exit(main())``, without the interpreter's teardown.

    A reader that stops early (``crossgrad example | head``) closes the pipe: that ends the
    command quietly, with the shell's status for it (141), not with a traceback.

    Once every thread has finished and every exit handler registered during the run has
    run, the process ends with ``os._exit``: tearing down the modules of torch and JAX took
    0.7-0.9 s of a ``crossgrad check`` here, for nothing a command leaves behind.
    """
    status = [1]  # what an uncaught exception exits with
    atexit.register(_end, status)  # registered before the run's own handlers: runs after them
    try:
        status[0] = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # Python flushes stdout again at exit; point it at devnull so that finds no pipe.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        status[0] = 128 + 13  # killed by SIGPIPE, as the shell reports it
    except SystemExit as exc:  # argparse: --help and --version (0), a usage error (2)
        status[0] = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        raise
    sys.exit(status[0])


def _end(status: list[int]) -> None:
    """The last exit handler: flush what the command wrote, then end the process at once."""
    logging.shutdown()  # the one exit handler registered before ``console_main``'s
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe, a closed file
            stream.flush()
    os._exit(status[0])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
