"""Every example in README.md and docs/ runs, and shows the output it prints (docs_examples.py).

One test per page, then tests of the runner itself on small pages of its own.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from docs_examples import ExampleError, blocks, describe, run_page

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted(
    [ROOT / "README.md"]
    + [p for p in (ROOT / "docs").rglob("*.md") if "hooks" not in p.relative_to(ROOT).parts]
)


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_page_examples_run(page: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    try:
        run_page(page.relative_to(ROOT), ROOT)
    except ExampleError as caught:
        failed: ExampleError | None = caught
    else:
        failed = None
    if failed is not None:  # outside the except block: the report is the page's, not a chain
        pytest.fail(describe(failed), pytrace=False)


# The runner itself.


def run(tmp_path: Path, text: str) -> list[str]:
    """Run ``text`` as a page in ``tmp_path``; the languages of the blocks that ran."""
    page = tmp_path / "page.md"
    page.write_text(text, encoding="utf-8")
    return [b.language for b in run_page(page, tmp_path)]


def failure(tmp_path: Path, text: str) -> ExampleError:
    with pytest.raises(ExampleError) as caught:
        run(tmp_path, text)
    return caught.value


PASSING = """\
# A page

```python
x = 2
```

Some prose.

```python
>>> x * 21
42
>>> print("time: 1.23 s")
time: ... s
```

```console
$ echo hello world
hello ...
$ true
```

```bash
test "$(echo ok)" = ok
```

```text
this is not run
```
"""


def test_a_passing_page_runs_every_block_of_a_run_language(tmp_path: Path) -> None:
    assert run(tmp_path, PASSING) == ["python", "python", "console", "bash"]


def test_a_failing_python_block_names_the_page_and_line(tmp_path: Path) -> None:
    text = "# Page\n\n```python\nx = 1\ny = x / 0\n```\n"
    caught = failure(tmp_path, text)
    assert caught.page == tmp_path / "page.md"
    assert caught.line == 5
    assert "ZeroDivisionError" in caught.message
    assert str(caught).startswith(f"{tmp_path / 'page.md'}:5: ")


def test_a_wrong_doctest_output_fails_at_its_line(tmp_path: Path) -> None:
    text = "# Page\n\n```python\n>>> 1 + 1\n2\n>>> 2 + 2\n5\n```\n"
    caught = failure(tmp_path, text)
    assert caught.line == 6
    assert "differs" in caught.message
    assert caught.details == ["Expected:\n    5\nGot:\n    4\n"]


def test_a_doctest_exception_fails_at_its_line(tmp_path: Path) -> None:
    caught = failure(tmp_path, "```python\n>>> 1\n1\n>>> undefined_name\n```\n")
    assert caught.line == 4
    assert "NameError" in caught.message


def test_python_blocks_of_a_page_share_one_namespace_in_order(tmp_path: Path) -> None:
    run(tmp_path, "```python\nvalue = 7\n```\n\n```python\n>>> value + 1\n8\n```\n")
    run(tmp_path, "```python\n>>> a = 1\n```\n\n```python\n>>> b = a + 1\n```\n\n```python\nb\n```")
    caught = failure(tmp_path, "```python\n>>> later\n1\n```\n\n```python\nlater = 1\n```\n")
    assert "NameError" in caught.message


def test_each_page_starts_with_a_fresh_namespace(tmp_path: Path) -> None:
    run(tmp_path, "```python\nleftover = 1\n```\n")
    assert "NameError" in failure(tmp_path, "```python\nleftover\n```\n").message


def test_a_skip_marker_skips_the_next_block(tmp_path: Path) -> None:
    text = (
        "<!-- docs-test: skip (it would fail) -->\n\n```python\n1 / 0\n```\n\n"
        "<!-- docs-test: skip (minutes long) -->\n```console\n$ false\n```\n\n"
        "```python\nafter = 1\n```\n"
    )
    assert run(tmp_path, text) == ["python"]


def test_a_skip_marker_skips_only_the_next_block(tmp_path: Path) -> None:
    text = "<!-- docs-test: skip (x) -->\n```python\n1\n```\n\n```python\n1 / 0\n```\n"
    assert failure(tmp_path, text).line == 7


def test_a_console_output_mismatch_fails_at_the_command(tmp_path: Path) -> None:
    text = "# Page\n\n```console\n$ echo one\none\n$ echo two\nthree\n```\n"
    caught = failure(tmp_path, text)
    assert caught.line == 6
    assert "echo two" in caught.message


def test_a_console_command_shown_without_output_must_exit_0(tmp_path: Path) -> None:
    caught = failure(tmp_path, "```console\n$ true\n$ exit 3\n```\n")
    assert caught.line == 3
    assert "exited 3" in caught.message


def test_a_console_command_shown_with_output_is_judged_by_it(tmp_path: Path) -> None:
    assert run(tmp_path, "```console\n$ echo mismatch; exit 1\nmismatch\n```\n") == ["console"]


def test_console_commands_run_in_the_root_with_this_python_first_on_path(
    tmp_path: Path,
) -> None:
    (tmp_path / "marker.txt").write_text("here\n")
    bin_dir = Path(sys.executable).parent
    run(
        tmp_path,
        f'```console\n$ cat marker.txt\nhere\n$ dirname "$(command -v python)"\n{bin_dir}\n```',
    )
    assert "python" in failure(tmp_path, "```console\n$ which python\n/nowhere\n```\n").message


def test_a_console_command_continues_after_a_backslash(tmp_path: Path) -> None:
    assert run(tmp_path, "```console\n$ echo a \\\n  b\na b\n```\n") == ["console"]


def test_a_failing_bash_block_fails(tmp_path: Path) -> None:
    caught = failure(tmp_path, "# Page\n\n```bash\ntrue\nfalse\necho unreachable\n```\n")
    assert caught.line == 4
    assert "exited 1" in caught.message


def test_fenced_blocks_inside_lists_are_found_dedented(tmp_path: Path) -> None:
    text = "- an item:\n\n  ```python\n  >>> 3 * 3\n  9\n  ```\n"
    found = blocks(tmp_path / "page.md", text)
    assert [(b.language, b.line, b.text) for b in found] == [("python", 4, ">>> 3 * 3\n9\n")]
    assert run(tmp_path, text) == ["python"]


def test_a_longer_fence_holds_a_shorter_one(tmp_path: Path) -> None:
    text = "````markdown\n```python\n1 / 0\n```\n````\n\n```python\nok = 1\n```\n"
    assert [b.language for b in blocks(tmp_path / "page.md", text)] == ["markdown", "python"]
    assert run(tmp_path, text) == ["python"]


def test_every_page_is_found() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in PAGES}
    assert {"README.md", "docs/index.md", "docs/getting-started.md"} <= names
    assert not any(name.startswith("docs/hooks/") for name in names)


def marked_command(marker: str) -> str:
    """The command between ``<!-- marker -->`` and ``<!-- /marker -->``, as ``.ci/run`` reads it."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split(f"<!-- {marker} -->\n", 1)[1].split(f"<!-- /{marker} -->", 1)[0]
    return "\n".join(b.text for b in blocks(ROOT / "README.md", section)).strip()


def test_the_readme_test_command_tests_an_editable_install_under_the_constraints() -> None:
    command = marked_command("test-command")
    assert command.startswith("python3 -m venv .venv && ")
    assert '.venv/bin/pip install -c constraints.txt -e ".[dev]"' in command
    assert command.endswith(".venv/bin/pytest") or ".venv/bin/pytest " in command


def test_the_readme_main_command_installs_and_runs_the_worked_example() -> None:
    command = marked_command("main-command")
    assert '.venv/bin/pip install -c constraints.txt ".[all]"' in command
    assert command.endswith(".venv/bin/crossgrad example")


def test_the_readme_install_commands_are_not_run_by_the_example_runner() -> None:
    readme = blocks(ROOT / "README.md")
    installs = [b for b in readme if "pip install" in b.text]
    assert installs
    assert all(b.skip for b in installs)


def test_the_readme_stays_short() -> None:
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 250


# What the prose may say.

TIMING = re.compile(r"\d(?:[\d,.]*\d)?\s?(?:ns|µs|us|ms|GFLOP/s|samples/s|networks/s|steps/s)\b")
RESULTS_FILE = re.compile(r"benchmarks/results/[\w.-]+\.json")
LINK = re.compile(r"\]\((?P<target>[^)\s#]+)(?:#[^)\s]*)?\)")


def prose(page: Path) -> list[tuple[int, str]]:
    """``(line number, line)`` of the page outside fenced code blocks."""
    lines = page.read_text(encoding="utf-8").splitlines()
    inside = set()
    for block in blocks(page):
        n = block.text.count("\n")
        inside.update(range(block.line - 1, block.line + n + 1))
    return [(i, line) for i, line in enumerate(lines, 1) if i not in inside]


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_a_timing_figure_in_prose_comes_with_its_results_file(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    timings = [(i, m.group()) for i, line in prose(page) for m in TIMING.finditer(line)]
    if timings and not RESULTS_FILE.search(text):
        shown = ", ".join(f"line {i}: {figure!r}" for i, figure in timings[:5])
        pytest.fail(
            f"{page.relative_to(ROOT)} states timings ({shown}) but names no "
            "benchmarks/results/*.json file they come from",
            pytrace=False,
        )


def test_a_results_file_named_by_a_page_exists() -> None:
    named = {
        (page.relative_to(ROOT).as_posix(), name)
        for page in PAGES
        for name in RESULTS_FILE.findall(page.read_text(encoding="utf-8"))
    }
    assert [(page, name) for page, name in sorted(named) if not (ROOT / name).is_file()] == []


def nav_pages() -> set[str]:
    """The pages that mkdocs.yml's nav lists, as repository paths (``docs/...``)."""
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = text.split("\nnav:\n", 1)[1].split("\n\n", 1)[0]
    return {f"docs/{m}" for m in re.findall(r":\s*([\w./-]+\.md)\s*$", nav, re.MULTILINE)}


def test_the_readmes_links_lead_to_files_or_to_pages_of_the_site() -> None:
    targets = {
        m["target"]
        for _, line in prose(ROOT / "README.md")
        for m in LINK.finditer(line)
        if not re.match(r"^[a-z][a-z0-9+.-]*:", m["target"])
    }
    assert targets
    known = nav_pages()
    missing = sorted(t for t in targets if not (ROOT / t).exists() and t.rstrip("/") not in known)
    assert missing == []


def test_the_nav_lists_the_pages_written_here() -> None:
    assert {"docs/index.md", "docs/getting-started.md", "docs/worked-example.md"} <= nav_pages()
    assert {"docs/api/reference.md", "docs/changelog.md", "docs/checking.md"} <= nav_pages()
