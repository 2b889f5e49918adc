"""Run the examples of a Markdown page: every ```python, ```console and ```bash block.

The conventions (the docs follow them; ``tests/test_docs_examples.py`` runs every page):

- ```` ```python ```` blocks of one page run in order, in one shared namespace, with the
  repository root as the working directory.  A block with doctest prompts (``>>> `` and
  ``... ``) is a doctest: the output shown after a prompt is checked, with ``ELLIPSIS`` and
  ``NORMALIZE_WHITESPACE`` on (``...`` stands for volatile parts).  A block without prompts is
  executed as it is and must not raise.
- ```` ```console ```` blocks: each ``$ command`` line is run by bash (the repository root as
  working directory, the running Python's ``bin`` folder first on ``PATH``); the lines after
  it, up to the next ``$ ``, are its expected standard output, checked the same way (``...``
  matches anything).  A command shown without output must exit 0; one shown with its output
  is judged by that output (``crossgrad check`` exits 1 on a mismatch, and a page may show
  one).  A line ending in ``\\`` continues the command on the next line.
- ```` ```bash ```` blocks run as one bash script (``set -euo pipefail``) and must exit 0.
- A block preceded by the line ``<!-- docs-test: skip (reason) -->`` (blank lines between are
  allowed) is not run.  Blocks of any other language are not run.

A failure names the page and the line of the example that failed.
"""

from __future__ import annotations

import doctest
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RUN_LANGUAGES = ("python", "console", "bash")
SKIP_MARKER = re.compile(r"^<!--\s*docs-test:\s*skip\b.*-->$")
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`]*)$")
OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
COMMAND_TIMEOUT = 120.0  # seconds; the docs keep each command well under 10 s


@dataclass(frozen=True)
class Block:
    """One fenced code block: its language, its text (dedented) and where it is."""

    page: Path
    line: int  # 1-based line of the first line of code (after the opening fence)
    language: str
    text: str
    skip: bool = False


@dataclass
class ExampleError(Exception):
    """An example that failed: where, and what went wrong."""

    page: Path
    line: int
    message: str
    details: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: {self.message}"


def blocks(page: Path, text: str | None = None) -> list[Block]:
    """Every fenced code block of ``page`` (read from disk unless ``text`` is given)."""
    lines = (page.read_text(encoding="utf-8") if text is None else text).splitlines()
    found = []
    i = 0
    previous = ""  # the last non-blank line outside a code block
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            if lines[i].strip():
                previous = lines[i].strip()
            i += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        language = opening["info"].strip().split(" ")[0].lower() if opening["info"] else ""
        body = []
        j = i + 1
        while j < len(lines):
            closing = FENCE.match(lines[j])
            if closing and closing["fence"].startswith(fence) and not closing["info"].strip():
                break
            line = lines[j]
            body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
            j += 1
        skip = SKIP_MARKER.match(previous) is not None
        found.append(Block(page, i + 2, language, "\n".join(body) + "\n", skip))
        previous = ""
        i = j + 1
    return found


def _checker_diff(example: doctest.Example, got: str) -> str:
    return doctest.OutputChecker().output_difference(example, got, OPTIONS)


def _matches(want: str, got: str) -> bool:
    return doctest.OutputChecker().check_output(want, got, OPTIONS)


class _Runner(doctest.DocTestRunner):
    """A doctest runner that stops at the first failing example and raises it, with its line."""

    def __init__(self, block: Block) -> None:
        super().__init__(optionflags=OPTIONS, verbose=False)
        self.block = block

    def _line(self, example: doctest.Example) -> int:
        return self.block.line + example.lineno

    def report_failure(self, out: Any, test: Any, example: doctest.Example, got: str) -> None:
        raise ExampleError(
            self.block.page,
            self._line(example),
            "the output differs from the page's",
            [_checker_diff(example, got)],
        )

    def report_unexpected_exception(
        self, out: Any, test: Any, example: doctest.Example, exc_info: Any
    ) -> None:
        raise ExampleError(
            self.block.page,
            self._line(example),
            f"raised {exc_info[0].__name__}: {exc_info[1]}",
            [doctest._exception_traceback(exc_info)],  # type: ignore[attr-defined]
        )


def _has_prompts(text: str) -> bool:
    return any(line.lstrip().startswith(">>>") for line in text.splitlines())


def run_python(block: Block, namespace: dict[str, Any]) -> None:
    """Run a python block in ``namespace``: as a doctest if it has prompts, else as a script."""
    if _has_prompts(block.text):
        parser = doctest.DocTestParser()
        name = f"{block.page}:{block.line}"
        test = parser.get_doctest(block.text, namespace, name, str(block.page), block.line)
        test.globs = namespace  # DocTest copies its globals; the page's blocks share one
        _Runner(block).run(test, clear_globs=False)
        return
    try:
        code = compile(block.text, f"{block.page}:{block.line}", "exec")
        exec(code, namespace)
    except Exception as exc:
        tb = exc.__traceback__
        line = block.line
        while tb is not None:  # the deepest frame that belongs to the block gives the line
            if tb.tb_frame.f_code.co_filename == f"{block.page}:{block.line}":
                line = block.line + tb.tb_lineno - 1
            tb = tb.tb_next
        raise ExampleError(block.page, line, f"raised {type(exc).__name__}: {exc}") from exc


def console_commands(block: Block) -> Iterator[tuple[int, str, str]]:
    """``(line, command, expected stdout)`` of each ``$ command`` of a console block."""
    lines = block.text.splitlines()
    i = 0
    while i < len(lines):
        if not lines[i].startswith("$ "):
            raise ExampleError(
                block.page, block.line + i, f"expected a '$ ' command line, got {lines[i]!r}"
            )
        start = i
        command = lines[i][2:]
        while command.endswith("\\") and i + 1 < len(lines):
            i += 1
            command += "\n" + lines[i]  # bash joins the lines itself
        i += 1
        expected = []
        while i < len(lines) and not lines[i].startswith("$ "):
            expected.append(lines[i])
            i += 1
        yield block.line + start, command, "\n".join(expected).strip("\n")


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("COLUMNS", "100")
    return env


def _run_shell(
    block: Block, line: int, script: str, root: Path
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["bash", "-c", script],
            cwd=root,
            env=_environment(),
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ExampleError(
            block.page, line, f"did not finish within {COMMAND_TIMEOUT:g} s"
        ) from None


def run_console(block: Block, root: Path) -> None:
    """Run every ``$ command`` of a console block and check its output."""
    for line, command, expected in console_commands(block):
        done = _run_shell(block, line, command, root)
        if not expected:
            if done.returncode != 0:
                raise ExampleError(
                    block.page,
                    line,
                    f"$ {command} exited {done.returncode}",
                    [done.stdout, done.stderr],
                )
            continue
        if not _matches(expected + "\n", done.stdout):
            example = doctest.Example(command, expected + "\n")
            raise ExampleError(
                block.page,
                line,
                f"$ {command}: the output differs from the page's (exit {done.returncode})",
                [_checker_diff(example, done.stdout), done.stderr],
            )


def run_bash(block: Block, root: Path) -> None:
    """Run a bash block as one script; it must exit 0."""
    done = _run_shell(block, block.line, "set -euo pipefail\n" + block.text, root)
    if done.returncode != 0:
        raise ExampleError(
            block.page,
            block.line,
            f"the bash block exited {done.returncode}",
            [done.stdout, done.stderr],
        )


def run_page(page: Path, root: Path, text: str | None = None) -> list[Block]:
    """Run every example of ``page`` in order; raise ``ExampleError`` at the first failure.

    Returns the blocks that ran.  The caller sets the working directory (the repository root)
    for the python blocks; shell commands run in ``root``.
    """
    namespace: dict[str, Any] = {"__name__": "__docs__"}
    ran = []
    for block in blocks(page, text):
        if block.skip or block.language not in RUN_LANGUAGES:
            continue
        if block.language == "python":
            run_python(block, namespace)
        elif block.language == "console":
            run_console(block, root)
        else:
            run_bash(block, root)
        ran.append(block)
    return ran


def describe(failure: ExampleError) -> str:
    """The failure as pytest should show it: where, what, then the details."""
    extra = [textwrap.indent(d.rstrip(), "    ") for d in failure.details if d and d.strip()]
    return "\n".join([str(failure), *extra])
