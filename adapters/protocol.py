"""The backend protocol: what a backend declares, and what ``crosscheck`` may then call.

Every backend (``reference``, ``numpy``, ``torch``, ``jax``, ``numeric``) is a module that
satisfies ``Backend``: a ``name``, its ``capabilities``, ``backprop`` with the reference's
signature and result, ``backprop_checked`` on a batch already checked by
``reference.validation.check_inputs`` (``crosscheck`` checks each case once), and its
``tolerance``.  A backend that declares ``Capabilities(many=True)`` also satisfies
``ManyAtOnce``; one that declares ``asynchronous=True`` also satisfies ``Asynchronous``,
and one that declares ``compiles=True`` satisfies ``Compiling``.
``crosscheck`` reads the declaration and calls accordingly; it never probes for methods.

A user's implementation (a function ``fn(net, params, x, y)``, or an object with ``name`` and
``backprop``) becomes a backend through ``Implementation``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike

from ..reference import BackpropResult, Network, Params
from ..reference.validation import Batch
from .tolerance import model_tolerance


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do beyond ``backprop_checked``, one case at a time.

    ``many``: it has ``backprop_many_checked(cases)`` (see ``ManyAtOnce``), faster over a
    list of cases than one call per case; ``crosscheck_many`` calls it once per chunk, unless
    the backend is asynchronous too.
    ``asynchronous``: it has ``start_checked(net, params, batch)`` (see ``Asynchronous``),
    which starts the computation and returns the function that waits for its result;
    ``crosscheck`` starts such a backend before it computes the reference's side, and
    ``crosscheck_many`` starts it on every case of a chunk first, so that it computes while
    the reference's side and the other backends run.
    ``compiles``: it compiles code for the sizes of a case, and has ``prepare(sizes, batch,
    dtypes)`` (see ``Compiling``), which starts that in the background; a sweep calls it for
    its first case before it draws.
    """

    many: bool = False
    asynchronous: bool = False
    compiles: bool = False


@runtime_checkable
class Backend(Protocol):
    """A backend: the same network and gradients, computed some other way."""

    @property
    def name(self) -> str:
        """The backend's name, as in ``adapters.get(name)`` and in reports."""
        ...

    @property
    def capabilities(self) -> Capabilities:
        """What else it offers (``Capabilities()``: nothing)."""
        ...

    def backprop(self, net: Network, params: Params, x: ArrayLike, y: ArrayLike) -> BackpropResult:
        """Like ``reference.backprop``: same checks, same errors, same result type."""
        ...

    def backprop_checked(self, net: Network, params: Params, batch: Batch) -> BackpropResult:
        """``backprop`` on input ``reference.validation.check_inputs`` has checked."""
        ...

    def tolerance(
        self, net: Network, dtype: np.dtype[Any], scale: Params, loss: float
    ) -> tuple[float, float]:
        """Its default ``(rtol, atol)`` under ``|g − r| ≤ atol + rtol·S`` for this case, given
        the gradients' error scales ``scale`` and the reference's ``loss``.  Usually
        ``adapters.tolerance.model_tolerance``."""
        ...


class ManyAtOnce(Backend, Protocol):
    """A backend declaring ``Capabilities(many=True)``."""

    def backprop_many_checked(
        self, cases: Sequence[tuple[Network, Params, Batch]]
    ) -> list[BackpropResult | Exception]:
        """``backprop_checked`` of every case: a result, or the exception it raised, each."""
        ...


class Asynchronous(Backend, Protocol):
    """A backend declaring ``Capabilities(asynchronous=True)``."""

    def start_checked(
        self, net: Network, params: Params, batch: Batch
    ) -> Callable[[], BackpropResult]:
        """Start ``backprop_checked``; the returned function waits for the result."""
        ...


class Compiling(Backend, Protocol):
    """A backend declaring ``Capabilities(compiles=True)``."""

    def prepare(self, sizes: Sequence[int], batch: int, dtypes: Sequence[Any]) -> None:
        """Start compiling, in the background, what a network of layer widths ``sizes`` at
        ``batch`` samples needs in each of ``dtypes``; returns at once."""
        ...


@dataclass(frozen=True)
class Implementation:
    """A user's backprop ``fn(net, params, x, y) -> BackpropResult`` as a ``Backend``.

    ``backprop_checked`` passes ``fn`` the checked arrays (in the params' dtype; one-sample
    input as vectors again).  What ``fn`` returns is not checked here: ``crosscheck`` checks
    every backend's result and reports a wrong one as that backend's failure.
    """

    name: str
    fn: Callable[[Network, Params, ArrayLike, ArrayLike], Any]
    capabilities: Capabilities = Capabilities()

    def backprop(self, net: Network, params: Params, x: ArrayLike, y: ArrayLike) -> BackpropResult:
        """The wrapped function's result, as it returned it."""
        result: BackpropResult = self.fn(net, params, x, y)
        return result

    def backprop_checked(self, net: Network, params: Params, batch: Batch) -> BackpropResult:
        """``backprop`` of the checked batch, one sample given back as vectors."""
        x, y = (batch.x[0], batch.y[0]) if batch.single else (batch.x, batch.y)
        return self.backprop(net, params, x, y)

    def tolerance(
        self, net: Network, dtype: np.dtype[Any], scale: Params, loss: float
    ) -> tuple[float, float]:
        """The tolerance model's ``(rtol, atol)``, as for the built-in backends."""
        return model_tolerance(net, dtype, scale, loss)


def as_backend(backend: object, argument: str = "backend") -> Backend:
    """``backend`` as a ``Backend``: itself if it satisfies the protocol, else an
    ``Implementation`` of an object's ``name`` and ``backprop``, or of a function (named by
    its ``__name__``).  ``TypeError`` naming ``argument`` for anything else."""
    if isinstance(backend, Backend):
        return backend
    if isinstance(backend, str):
        raise TypeError(f"{argument} is a name ({backend!r}): look it up with adapters.get")
    backprop = getattr(backend, "backprop", None)
    if callable(backprop):
        return Implementation(str(getattr(backend, "name", type(backend).__name__)), backprop)
    if callable(backend):
        return Implementation(str(getattr(backend, "__name__", type(backend).__name__)), backend)
    raise TypeError(
        f"{argument} must be a backend name, a Backend, an object with name and backprop, or "
        f"a function fn(net, params, x, y), got {type(backend).__name__}"
    )
