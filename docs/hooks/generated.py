"""MkDocs hook: the pages and files that are made when the site is built, not written by hand.

- ``worked-example.md`` is the output of ``crossgrad example --format markdown``, run at build
  time: the project's own words and exact numbers, cross-checked by the frameworks installed,
  with the table of the document's printed figures that disagree.  A backend that disagrees
  with the reference makes the command exit 1, and the build fails.
- ``benchmarks/results/*`` (the committed results: JSON, CSV and plot) are served at the same
  path in the site, so a page can embed ``benchmarks/results/results.png`` and link the JSON
  its figures come from.
- A page may link a file of the repository outside ``docs/`` by its relative path, as it
  would on GitHub (``../benchmarks/results/results.png``, ``../reference/activations.py``):
  a served result becomes its copy in the site, any other file the repository's page for it
  (``repo_url``).  A link to a file that does not exist is left alone, so that
  ``mkdocs build --strict`` reports it.
- ``build/api-src/crossgrad`` is the import package laid out as it is installed (the
  repository's folders map into it, see ``[tool.setuptools] package-dir`` in
  ``pyproject.toml``), as symbolic links, so that mkdocstrings reads the API pages' docstrings
  from the sources without importing anything.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

WORKED_EXAMPLE = "worked-example.md"
RESULTS = Path("benchmarks") / "results"
RESULT_SUFFIXES = (".png", ".json", ".csv")
API_SOURCES = Path("build") / "api-src"  # mkdocs.yml: mkdocstrings' python handler `paths`
LINK = re.compile(r"(?P<head>!?\[[^\]]*\]\()(?P<target>[^)\s#]+)(?P<tail>#[^)\s]*)?(?=[)\s])")
FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
INTRO = (
    "*This page is generated each time the site is built, by "
    "`crossgrad example --format markdown` (checked by {backends}). The numbers are the "
    "float64 NumPy reference's; the table at the end lists the figures printed in the worked "
    "example crossgrad started from (kept in `crossgrad.reference.worked_example`) that "
    "disagree with them. A teacher can write the same page for any small network: "
    "`crossgrad example --format markdown --sizes 2,2,1 --activation tanh`.*"
)


def _backends() -> list[str]:
    """The frameworks that cross-check the page: torch and jax if installed, else ``numeric``."""
    found = [name for name in ("torch", "jax") if importlib.util.find_spec(name) is not None]
    return found or ["numeric"]


def worked_example_markdown(root: Path) -> str:
    """``crossgrad example --format markdown``'s output, with a line saying where it came from."""
    backends = _backends()
    command = [sys.executable, "-m", "crossgrad", "example", "--format", "markdown"]
    command += ["--backends", ",".join(backends)]
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise PluginError(
            f"{' '.join(command[2:])} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    title, _, rest = done.stdout.partition("\n")
    return f"{title}\n\n{INTRO.format(backends=', '.join(backends))}\n{rest}"


def lay_out_package(root: Path, target: Path) -> None:
    """The installed package's layout under ``target``, as links into the repository's folders."""
    with open(root / "pyproject.toml", "rb") as f:
        package_dir: dict[str, str] = tomllib.load(f)["tool"]["setuptools"]["package-dir"]
    shutil.rmtree(target, ignore_errors=True)
    for package, folder in sorted(package_dir.items(), key=lambda item: item[0].count(".")):
        where = target.joinpath(*package.split("."))
        if where.is_symlink():
            where.unlink()  # a parent's link to a folder that the mapping puts elsewhere
        if package.count(".") == 0:
            where.mkdir(parents=True)
            for child in (root / folder).iterdir():
                if child.name != "__pycache__":
                    (where / child.name).symlink_to(child.resolve())
        else:
            where.symlink_to((root / folder).resolve(), target_is_directory=True)


@event_priority(100)  # before mkdocstrings' own on_config, which drops paths that do not exist
def on_config(config: MkDocsConfig, **_: Any) -> MkDocsConfig:
    root = Path(config.config_file_path).parent
    lay_out_package(root, root / API_SOURCES)
    return config


def on_files(files: Files, *, config: MkDocsConfig, **_: Any) -> Files:
    root = Path(config.config_file_path).parent
    files.append(File.generated(config, WORKED_EXAMPLE, content=worked_example_markdown(root)))
    for path in sorted((root / RESULTS).glob("*")):
        if path.suffix in RESULT_SUFFIXES:
            uri = (RESULTS / path.name).as_posix()
            files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files


def repository_link(target: str, page_dir: Path, root: Path, docs_dir: Path, repo_url: str) -> str:
    """``target``, a link of a page in ``page_dir``, rewritten if it leaves ``docs_dir``.

    A link to a served result becomes a link to its copy in the site, a link to another
    existing file or folder of the repository becomes ``repo_url``'s page for it; anything
    else (a URL, a link inside ``docs_dir``, a missing file) is returned unchanged.
    """
    if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("/"):
        return target
    path = Path(os.path.normpath(page_dir / target))
    if path.is_relative_to(docs_dir) or not path.is_relative_to(root) or not path.exists():
        return target
    relative = path.relative_to(root)
    if relative.parent == RESULTS and path.suffix in RESULT_SUFFIXES:
        return Path(os.path.relpath(docs_dir / relative, page_dir)).as_posix()
    if not repo_url:
        return target
    kind = "tree" if path.is_dir() else "blob"
    return f"{repo_url.rstrip('/')}/{kind}/main/{relative.as_posix()}"


def on_page_markdown(markdown: str, *, page: Page, config: MkDocsConfig, **_: Any) -> str:
    root = Path(config.config_file_path).parent
    docs_dir = Path(config.docs_dir)
    page_dir = (docs_dir / page.file.src_uri).parent
    repo_url = config.repo_url or ""

    def rewrite(match: re.Match[str]) -> str:
        target = repository_link(match["target"], page_dir, root, docs_dir, repo_url)
        return f"{match['head']}{target}{match['tail'] or ''}"

    lines, fence = [], None
    for line in markdown.split("\n"):
        opening = FENCE.match(line)
        if opening and (fence is None or opening[1].startswith(fence)):
            fence = opening[1] if fence is None else None
        lines.append(line if fence is not None or opening else LINK.sub(rewrite, line))
    return "\n".join(lines)
