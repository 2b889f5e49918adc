"""A framework backend in a Python process of its own, so that it imports on another core.

A short ``crossgrad check`` spends most of its time importing torch and JAX (2.4-2.9 s each
on a 2-core AMD EPYC) and, the first time, compiling JAX's executables.  In one process the
two imports run one after the other: importing holds the GIL.  ``Spawned("jax")`` starts a
Python process that imports the jax backend while this one imports torch, and then answers
the cases sent to it over a socket: the same module, the same compiled executables (and
the same disk cache), computing while this process runs the reference and torch on the
case.  Only the case's arrays and the result's cross (pickled), so the results are the
backend's own, bit for bit.

``crossgrad check`` runs a compiling backend this way when its framework is not imported
yet (``worth_spawning``); where it is (a test suite, a notebook), a second process would
import it once more for nothing, and the backend runs in process.  A ``Spawned`` backend is
a ``protocol.Backend`` (asynchronous, and compiling when the backend is), under the
backend's own name.
"""

from __future__ import annotations

import os
import pickle
import queue
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any, NoReturn

import numpy as np
from numpy.typing import ArrayLike

from ..reference import BackpropResult, Network, Params
from ..reference.validation import Batch
from . import _common
from .protocol import Capabilities
from .tolerance import model_tolerance

POSIX = os.name == "posix"

CLOSE_TIMEOUT = 120.0
"""Seconds ``close`` waits for the child to finish compiling before it kills it."""


def worth_spawning(name: str) -> bool:
    """Whether ``crossgrad check`` runs the registered backend ``name`` in its own process:
    it compiles (so its first cases wait on its import and compilation) and its framework
    is not imported here yet."""
    from . import BACKENDS

    entry = BACKENDS.get(name)
    return (
        POSIX  # the socket handed to the child (pass_fds) is POSIX's
        and bool(sys.executable)
        and entry is not None
        and entry.compiles
        and entry.framework is not None
        and entry.framework not in sys.modules
    )


class Spawned:
    """The registered framework backend ``name`` (``"jax"``, ``"torch"``), run in a child
    process; close it (or use it as a context manager) to end the process.

    Raises what ``adapters.get`` raises for a name it does not know or a framework that is
    not installed, before starting anything; an import that fails in the child is raised as
    ``adapters.BackendImportError`` by the first call that needs the backend.
    """

    def __init__(self, name: str) -> None:
        from . import _entry

        entry = _entry(name)
        if entry.framework is None:
            raise ValueError(f"only a framework backend runs in its own process, not {name!r}")
        self.name = name
        self.capabilities = Capabilities(asynchronous=True, compiles=entry.compiles)
        ours, theirs = socket.socketpair()
        # Ctrl-C reaches the child too (one process group): it ignores it, and ends when
        # the parent, which reports the interruption, closes the socket or exits.
        code = (
            "import signal; signal.signal(signal.SIGINT, signal.SIG_IGN); "
            f"import sys; sys.path[:0] = {sys.path!r}; "
            f"from crossgrad.adapters._process import serve; serve({theirs.fileno()}, {name!r})"
        )
        self._process = subprocess.Popen(
            [sys.executable, "-c", code],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # the answers come over the socket; stderr is shared
        )
        theirs.close()
        self._connection = Connection(ours.detach())
        self._send_lock, self._receive_lock = threading.Lock(), threading.Lock()
        self._sent = self._received = 0  # the answers come in the order of the questions
        self._answers: dict[int, tuple[bool, Any]] = {}
        self._ready: bool | None = None  # None: the child has not said yet
        self._broken: Exception | None = None

    tolerance = staticmethod(model_tolerance)  # every framework backend's

    def prepare(self, sizes: Sequence[int], batch: int, dtypes: Sequence[Any]) -> None:
        """The backend's ``prepare`` (see ``protocol.Compiling``), in the child; at once."""
        self._send(("prepare", tuple(sizes), batch, [np.dtype(d).str for d in dtypes]), False)

    def start_checked(
        self, net: Network, params: Params, batch: Batch
    ) -> Callable[[], BackpropResult]:
        """Send the case to the child, which computes it meanwhile; the returned function
        waits for its result (or raises the exception the backend raised)."""
        number = self._send(("backprop", net, params, batch), True)

        def finish() -> BackpropResult:
            ok, value = self._answer(number)
            if not ok:
                raise value
            result: BackpropResult = value
            return result

        return finish

    def backprop_checked(self, net: Network, params: Params, batch: Batch) -> BackpropResult:
        return self.start_checked(net, params, batch)()

    def backprop(self, net: Network, params: Params, x: ArrayLike, y: ArrayLike) -> BackpropResult:
        return self.backprop_checked(net, params, _common.prepare(net, params, x, y))

    def close(self) -> None:
        """End the child and wait for it: it finishes what it is compiling (so that the disk
        cache keeps it), then exits."""
        self._connection.close()
        try:
            self._process.wait(CLOSE_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def __enter__(self) -> Spawned:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _send(self, message: tuple[Any, ...], answered: bool) -> int:
        with self._send_lock:
            self._check()
            try:
                self._connection.send_bytes(pickle.dumps(message))
            except OSError as exc:
                self._fail(exc)
            if not answered:
                return 0
            self._sent += 1
            return self._sent

    def wait_imported(self) -> None:
        """Wait until the child has imported the backend; raise ``BackendImportError`` if
        that failed (what ``adapters.get`` would have raised here)."""
        with self._receive_lock:
            if self._ready is None:
                self._receive()
            self._check()

    def _answer(self, number: int) -> tuple[bool, Any]:
        with self._receive_lock:
            while number not in self._answers:
                self._check()
                self._receive()
            return self._answers.pop(number)

    def _receive(self) -> None:
        try:
            answer = pickle.loads(self._connection.recv_bytes())
        except (EOFError, OSError) as exc:
            self._fail(exc)
        if self._ready is None:  # the child's first word: whether the import worked
            self._ready = answer[0]
            if not self._ready:
                from . import BackendImportError

                self._broken = BackendImportError(self.name, answer[1])
            return
        self._received += 1
        self._answers[self._received] = answer

    def _check(self) -> None:
        if self._broken is not None:
            raise self._broken

    def _fail(self, exc: BaseException) -> NoReturn:
        status = self._process.poll()
        ended = "ended" if status is None else f"ended with status {status}"
        self._broken = RuntimeError(f"the {self.name} backend's process {ended}")
        raise self._broken from exc


def serve(fd: int, name: str) -> None:
    """The child: import the backend ``name`` and answer the parent's messages on socket
    ``fd`` until it closes: ``("prepare", sizes, batch, dtypes)`` (no answer) and
    ``("backprop", net, params, batch)``, answered ``(True, result)`` or ``(False,
    exception)``.  The first answer says whether the import worked: ``(True,)`` or
    ``(False, why)``."""
    connection = Connection(fd)

    def answer(message: tuple[Any, ...]) -> None:
        try:
            data = pickle.dumps(message)
        except Exception:  # an exception that does not pickle: its type and text do
            raised = message[1]
            data = pickle.dumps((False, RuntimeError(f"{type(raised).__name__}: {raised}")))
        connection.send_bytes(data)

    try:
        from . import get

        backend: Any = get(name)
    except Exception as exc:
        answer((False, str(exc)))
        return
    answer((True,))
    # The questions are read as they come, in a thread of their own: the parent may send
    # many cases before it reads the first answer (``crosscheck_many``), and a child that
    # stopped reading while an answer larger than the socket's buffer waited to be read
    # would leave the two processes waiting on each other.
    questions: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()

    def read() -> None:
        try:
            while True:
                questions.put(pickle.loads(connection.recv_bytes()))
        except (EOFError, OSError):  # the parent closed it, or ended
            questions.put(None)

    threading.Thread(target=read, name="crossgrad-questions", daemon=True).start()
    while (message := questions.get()) is not None:
        if message[0] == "prepare":
            backend.prepare(*message[1:])
            continue
        try:
            outcome: tuple[bool, Any] = (True, backend.backprop_checked(*message[1:]))
        except Exception as exc:
            outcome = (False, exc)
        try:
            answer(outcome)
        except OSError:  # the parent has gone (Ctrl-C): the cases still queued are void
            break
    # What is compiling goes to the disk cache; then the process ends without tearing JAX
    # down (0.7-0.9 s that the parent would wait for).
    from . import _jax_cache

    _jax_cache.wait()
    sys.stderr.flush()
    os._exit(0)
