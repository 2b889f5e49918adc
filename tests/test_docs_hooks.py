"""The MkDocs hook that makes the generated parts of the site (docs/hooks/generated.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

pytest.importorskip("mkdocs", reason="the docs extra is not installed")

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
REPO = "https://example.org/crossgrad"


def load_hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generated_hook", DOCS / "hooks" / "generated.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hook = load_hook()


def link(target: str, page_dir: Path = DOCS) -> str:
    return str(hook.repository_link(target, page_dir, ROOT, DOCS, REPO))


def test_a_committed_result_is_linked_to_its_copy_in_the_site() -> None:
    assert link("../benchmarks/results/results.png") == "benchmarks/results/results.png"
    assert link("../../benchmarks/results/results.json", DOCS / "api") == (
        "../benchmarks/results/results.json"
    )


def test_another_repository_file_is_linked_to_its_page_in_the_repository() -> None:
    assert link("../reference/__init__.py") == f"{REPO}/blob/main/reference/__init__.py"
    assert link("../reference") == f"{REPO}/tree/main/reference"
    assert link("../pyproject.toml") == f"{REPO}/blob/main/pyproject.toml"


@pytest.mark.parametrize(
    "target",
    [
        "getting-started.md",  # a page: mkdocs checks it
        "../nowhere.py",  # missing: left for mkdocs --strict to report
        "https://numpy.org/",
        "mailto:someone@example.org",
        "/absolute/path",
        "../../outside-the-repository.txt",
    ],
)
def test_other_links_are_left_alone(target: str) -> None:
    assert link(target) == target


def test_links_in_code_blocks_are_left_alone() -> None:
    page = SimpleNamespace(file=SimpleNamespace(src_uri="benchmark.md"))
    config = SimpleNamespace(config_file_path=str(ROOT / "mkdocs.yml"), docs_dir=str(DOCS))
    config.repo_url = REPO
    markdown = (
        "![plot](../benchmarks/results/results.png) and [code](../reference/__init__.py#L1)\n"
        "```markdown\n[in code](../reference/__init__.py)\n```\n"
    )
    out = hook.on_page_markdown(markdown, page=page, config=config)
    assert out.splitlines() == [
        "![plot](benchmarks/results/results.png) and "
        f"[code]({REPO}/blob/main/reference/__init__.py#L1)",
        "```markdown",
        "[in code](../reference/__init__.py)",
        "```",
    ]


def test_the_package_is_laid_out_as_installed(tmp_path: Path) -> None:
    hook.lay_out_package(ROOT, tmp_path)
    package = tmp_path / "crossgrad"
    assert (package / "__init__.py").resolve() == ROOT / "src" / "crossgrad" / "__init__.py"
    for folder in ("reference", "adapters", "benchmarks"):
        assert (package / folder).resolve() == ROOT / folder
        assert (package / folder / "__init__.py").is_file()
    assert (package / "testing" / "__init__.py").is_file()
    hook.lay_out_package(ROOT, tmp_path)  # again, over the old layout
    assert (package / "reference").resolve() == ROOT / "reference"


def test_the_worked_example_page_is_the_commands_output_with_its_errata(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(hook, "_backends", lambda: ["numeric"])  # no framework start-up
    page = hook.worked_example_markdown(ROOT)
    title, blank, intro = page.splitlines()[:3]
    assert title.startswith("# The worked example")
    assert blank == ""
    assert "`crossgrad example --format markdown` (checked by numeric)" in intro
    assert "## Back propagation" in page
    assert "## The document's printed figures" in page
    assert "| $a_{1}$ | [0] | 0.482 |" in page
