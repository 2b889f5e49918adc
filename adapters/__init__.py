"""The same network in other frameworks, and the cross-check against the reference.

Each backend is a module with the same functions (``forward``, ``loss``, ``backprop``), written
in its framework's own idiom; ``backprop`` has the signature and result type of
``crossgrad.reference.backprop``::

    from crossgrad import adapters

    adapters.available()                        # e.g. ("torch", "jax", "numeric")
    adapters.get("torch").backprop(net, params, x, y)
    report = adapters.crosscheck(net, params, x, y)
    print(report); report.raise_for_mismatch()
    for report in adapters.crosscheck_many(cases): ...   # a sweep: the same reports, faster
    adapters.crosscheck_training(net, params, batches, optimizer)   # a training run, per step

Frameworks load on first use: importing ``crossgrad.adapters`` imports neither torch nor jax.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from . import tolerance
from .crosscheck import Backend, CrossCheckReport, crosscheck, crosscheck_many
from .training import TrainingReport, crosscheck_training

# name -> (module, the framework it needs, the pip extra that installs it)
BACKENDS: dict[str, tuple[str, str | None, str | None]] = {
    "torch": ("torch_backend", "torch", "torch"),
    "jax": ("jax_backend", "jax", "jax"),
    "numeric": ("numeric_backend", None, None),
}


def _installed(framework: str | None) -> bool:
    if framework is None:
        return True
    try:
        return importlib.util.find_spec(framework) is not None
    except (ImportError, ValueError):  # e.g. sys.modules[framework] is None
        return False


def available() -> tuple[str, ...]:
    """The backends usable here: those whose framework is installed, in a fixed order."""
    return tuple(name for name, (_, fw, _) in BACKENDS.items() if _installed(fw))


def get(name: str) -> ModuleType:
    """The backend called ``name``: a module with ``name`` and ``backprop``.

    Raises ``ValueError`` for an unknown name and ``ImportError`` naming the extra to install
    when its framework is missing.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a backend name (str), got {type(name).__name__}")
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; expected one of {', '.join(BACKENDS)}")
    module, framework, extra = BACKENDS[name]
    if not _installed(framework):
        raise ImportError(
            f"the {name!r} backend needs {framework}, which is not installed here: "
            f"pip install 'crossgrad[{extra}]'"
        )
    return importlib.import_module(f".{module}", __name__)


__all__ = [
    "BACKENDS",
    "Backend",
    "CrossCheckReport",
    "TrainingReport",
    "available",
    "crosscheck",
    "crosscheck_many",
    "crosscheck_training",
    "get",
    "tolerance",
]
