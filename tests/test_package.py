"""The package as users get it: import name, what it installs, what importing it costs."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import PurePosixPath

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
    editable = any("__editable__" in f for f in files)
    assert editable or "crossgrad/py.typed" in files
