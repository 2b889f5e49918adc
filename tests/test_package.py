"""The package as users get it: import name, what it installs, what importing it costs."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path, PurePosixPath

import pytest

import crossgrad


def _modules_loaded_by(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    return set(out.split())


def test_importing_crossgrad_loads_no_framework() -> None:
    loaded = _modules_loaded_by("import crossgrad, crossgrad.reference, crossgrad.adapters")
    for heavy in ("torch", "jax", "hypothesis", "scipy", "matplotlib"):
        assert heavy not in loaded, f"import crossgrad loaded {heavy}"


def test_public_names() -> None:
    from crossgrad import reference

    for name in ("Network", "Params", "init_params", "backprop", "sgd_step", "train_step"):
        assert getattr(crossgrad, name) is getattr(reference, name)
    assert crossgrad.__version__ == metadata.version("crossgrad")


def test_only_the_crossgrad_package_is_installed() -> None:
    # No top-level `adapters` or `reference`: PyPI's `adapters` package owns that name.
    # The import names installed, in any install (an editable one lists no package file).
    top_level = metadata.distribution("crossgrad").read_text("top_level.txt")
    assert top_level is not None
    assert top_level.split() == ["crossgrad"]
    files = [PurePosixPath(str(f)) for f in metadata.files("crossgrad") or []]
    assert files
    for f in files:
        # The package, its metadata, the console script (under ..), an editable finder.
        top = f.parts[0]
        assert (
            top in ("crossgrad", "..") or top.startswith("crossgrad-") or "__editable__" in str(f)
        ), f


def test_the_package_is_typed() -> None:
    files = {str(f) for f in metadata.files("crossgrad") or []}
    if any("__editable__" in f for f in files):  # the package is the source tree itself
        assert (Path(crossgrad.__file__).parent / "py.typed").is_file()
    else:
        assert "crossgrad/py.typed" in files


def _submodules() -> list[str]:
    """Every module of the crossgrad package, walked on disk (not only those imported)."""
    import importlib
    import importlib.util
    import pkgutil

    # The packages pyproject.toml lists; the last three live in top-level folders, mapped below
    # crossgrad (so crossgrad.__path__ alone does not reach them).
    packages = ["crossgrad", "crossgrad.cli", "crossgrad.testing", "crossgrad.reference",
                "crossgrad.adapters", "crossgrad.benchmarks"]  # fmt: skip
    names = []
    for package in packages:
        path = importlib.import_module(package).__path__
        for info in pkgutil.iter_modules(path, f"{package}."):
            short = info.name.rsplit(".", 1)[-1]
            if short == "__main__":  # runs a command when imported
                continue
            framework = {"torch_backend": "torch", "jax_backend": "jax"}.get(short)
            if framework is None or importlib.util.find_spec(framework) is not None:
                names.append(info.name)
    return names


def test_every_submodule_imports_as_a_module() -> None:
    # No package __init__ exports a function (or anything else) under a submodule's name:
    # `crossgrad.reference.backprop` is no module, so importing it fails loudly.
    import importlib

    names = _submodules()
    assert {"crossgrad.reference.backpropagation", "crossgrad.adapters.checking"} <= set(names)
    for name in names:
        module = importlib.import_module(name)
        package, short = name.rsplit(".", 1)
        assert getattr(importlib.import_module(package), short) is module, name


@pytest.mark.parametrize("name", ["crossgrad.reference.backprop", "crossgrad.adapters.crosscheck"])
def test_a_function_is_not_a_module(name: str) -> None:
    import importlib

    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(name)


def test_the_command_runs_without_hypothesis_torch_and_jax() -> None:
    """Hypothesis, torch and jax are extras: without them `crossgrad example` works on the
    numeric backend, and `crossgrad check` says which extra to install (no traceback)."""
    blocked = "import sys; sys.modules.update(hypothesis=None, torch=None, jax=None); "
    run = "from crossgrad.cli import main; sys.exit(main({argv!r}))"
    for argv, status in (
        (["example", "--backends", "numeric"], 0),
        (["example"], 2),  # torch and jax by default: say what to install, or what runs here
        (["check", "--impl", "crossgrad.reference:backprop", "--trials", "2"], 2),
    ):
        done = subprocess.run(
            [sys.executable, "-c", blocked + run.format(argv=argv)],
            capture_output=True,
            text=True,
        )
        assert done.returncode == status, done.stderr
        assert "Traceback" not in done.stderr
        if argv == ["example"]:  # the hint names only a backend that runs here
            assert "pip install 'crossgrad[torch]'" in done.stderr
            assert done.stderr.rstrip().endswith("(or leave torch out, e.g. --backends numeric)")
        elif status == 2:
            assert "pip install 'crossgrad[test]'" in done.stderr
