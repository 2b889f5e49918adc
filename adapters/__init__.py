"""The same network in other frameworks, behind one backend protocol, and the cross-check.

Each backend is a module that satisfies ``protocol.Backend`` (``name``, ``capabilities``,
``backprop``, ``backprop_checked``, ``tolerance``); the framework backends also expose
``forward(net, weights, biases, x)`` and ``loss(net, zs, activations, y)`` written in their
framework's own idiom::

    from crossgrad import adapters

    adapters.available()          # e.g. ("reference", "numpy", "torch", "jax", "numeric")
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
from dataclasses import dataclass

from . import checking, protocol, tolerance
from .checking import CrossCheckReport, crosscheck, crosscheck_many
from .protocol import Backend, Capabilities
from .training import TrainingReport, crosscheck_training


@dataclass(frozen=True)
class Registered:
    """A backend in the registry: its module in this package, the framework it imports (and
    the pip extra that installs it), whether ``crosscheck`` runs it by default, and whether
    it compiles (``Capabilities(compiles=True)``: a sweep imports it before the others, so
    that it compiles while they import)."""

    module: str
    framework: str | None = None
    extra: str | None = None
    default: bool = False
    compiles: bool = False


BACKENDS: dict[str, Registered] = {
    "reference": Registered("reference_backend"),
    "numpy": Registered("numpy_backend"),
    # The default witnesses: independent autodiff, sharing no derivative with the reference.
    "torch": Registered("torch_backend", "torch", "torch", default=True),
    "jax": Registered("jax_backend", "jax", "jax", default=True, compiles=True),
    "numeric": Registered("numeric_backend"),  # slow: only when named
}


def _found(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # e.g. sys.modules[module] is None
        return False


def available() -> tuple[str, ...]:
    """The backends usable here (their module and framework importable), in a fixed order."""
    return tuple(
        name
        for name, entry in BACKENDS.items()
        if _found(f"{__name__}.{entry.module}")
        and (entry.framework is None or _found(entry.framework))
    )


def defaults() -> tuple[str, ...]:
    """The backends ``crosscheck`` runs when none are named: the available frameworks."""
    return tuple(name for name in available() if BACKENDS[name].default)


class BackendImportError(ImportError):
    """A registered backend that cannot be used here: its framework is not installed, or
    importing its module failed.  ``backend`` is its name in the registry."""

    def __init__(self, backend: str, message: str) -> None:
        super().__init__(message)
        self.backend = backend


def _entry(name: str) -> Registered:
    """The registry's entry of backend ``name``, after the checks ``get`` makes before it
    imports anything: ``TypeError``/``ValueError`` for a bad or unknown name,
    ``BackendImportError`` when its framework is not installed."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a backend name (str), got {type(name).__name__}")
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; expected one of {', '.join(BACKENDS)}")
    entry = BACKENDS[name]
    if entry.framework is not None and not _found(entry.framework):
        raise BackendImportError(
            name,
            f"the {name!r} backend needs {entry.framework}, which is not installed here: "
            f"pip install 'crossgrad[{entry.extra}]'",
        )
    return entry


def get(name: str) -> Backend:
    """The backend called ``name``: a module satisfying ``protocol.Backend``.

    Raises ``TypeError`` for a name that is not a string, ``ValueError`` for an unknown one,
    ``TypeError`` for a registered module that lacks part of the protocol, and
    ``BackendImportError`` (an ``ImportError``) naming the extra to install when its
    framework is missing, or saying why its module could not be imported.
    """
    entry = _entry(name)
    if name in _LOADED:
        return _LOADED[name]
    if not _found(f"{__name__}.{entry.module}"):
        raise BackendImportError(
            name, f"the {name!r} backend's module {__name__}.{entry.module} is missing"
        )
    try:
        module = importlib.import_module(f".{entry.module}", __name__)
    except ImportError as exc:  # e.g. a broken install of its framework
        message = f"the {name!r} backend could not be imported: {exc}"
        raise BackendImportError(name, message) from exc
    if not isinstance(module, Backend):  # checked once: a registered module must declare it all
        missing = [m for m in _PROTOCOL if not hasattr(module, m)]
        raise TypeError(
            f"the {name!r} backend's module does not satisfy adapters.protocol.Backend: "
            f"it lacks {', '.join(missing)}"
        )
    _LOADED[name] = module
    return module


_LOADED: dict[str, Backend] = {}
"""The registered backends imported so far, each checked against the protocol once."""
_PROTOCOL = ("name", "capabilities", "backprop", "backprop_checked", "tolerance")


__all__ = [
    "BACKENDS",
    "Backend",
    "BackendImportError",
    "Capabilities",
    "CrossCheckReport",
    "Registered",
    "TrainingReport",
    "available",
    "checking",
    "crosscheck",
    "crosscheck_many",
    "crosscheck_training",
    "defaults",
    "get",
    "protocol",
    "tolerance",
]
