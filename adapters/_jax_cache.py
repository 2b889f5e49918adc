"""Compile once per machine: crossgrad's own cache of its compiled JAX executables.

The JAX backend compiles one executable per bucket (depth, width, batch, dtype), a few
seconds each on a small machine, and a new process would compile them all again.  This
module keeps each compiled executable on disk, in crossgrad's cache directory, and loads it
in a few tens of milliseconds in the next process.

It does not use JAX's persistent compilation cache, on purpose: that cache is one global
setting (``jax_compilation_cache_dir``, initialised once per process, with thresholds such as
``jax_persistent_cache_min_compile_time_secs`` that are global too), so turning it on for
crossgrad would turn it on, or redirect it, for the user's own functions.  Instead crossgrad
compiles ahead of time (``jit(...).lower(...).compile()``) and stores the executable with
``jax.experimental.serialize_executable``; the user's JAX configuration is never read or
changed.

Where: ``CROSSGRAD_CACHE_DIR`` if set, else the per-user cache directory of ``platformdirs``
(``~/.cache/crossgrad`` on Linux), in a ``jax`` subfolder.  ``CROSSGRAD_CACHE_DIR=off``
disables the disk cache (executables are then compiled once per process).  An entry's key
names the bucket's shapes and dtypes and a fingerprint of everything its executable depends
on: the versions of JAX, jaxlib and crossgrad, the source of the JAX backend, the device and
the CPU's features, ``XLA_FLAGS``, and the compiler options it was compiled with.  A changed
fingerprint is a new key, so a stale entry is never loaded; ``crossgrad cache clear``
removes them all.

Compiling starts in a background thread the moment a case needs a bucket that is not loaded,
so that the reference and the other backends work on the case meanwhile, or earlier, when
``prepare`` asks for a bucket before any case needs it; up to ``COMPILE_THREADS`` buckets
compile at once.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import hashlib
import os
import pickle
import platform
import tempfile
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

ENV = "CROSSGRAD_CACHE_DIR"
OFF = "off"

COMPILE_THREADS = 2
"""Buckets compiled at once: the two dtypes' buckets that ``prepare`` asks for compile side by
side.  On 2 cores, with torch importing meanwhile, one thread and two gave a sweep's first
100 cases in about the same time (11.8 and 8.5 s against 12.1 and 8.5 s, alternating; the
first case came sooner with one thread, which compiles float64, drawn first, alone)."""

Precision = Callable[[], contextlib.AbstractContextManager[Any]]


_INSTANCES: weakref.WeakSet[Executables] = weakref.WeakSet()


def setting() -> str:
    """``CROSSGRAD_CACHE_DIR`` as ``cache_dir`` reads it: stripped, ``""`` when unset or blank."""
    return os.environ.get(ENV, "").strip()


def cache_dir() -> Path | None:
    """The directory of crossgrad's cached executables, or ``None`` when disabled."""
    root = setting()
    if root.lower() == OFF:
        return None
    if not root:
        import platformdirs

        root = platformdirs.user_cache_dir("crossgrad", appauthor=False)
    return Path(root).expanduser() / "jax"


def entries(directory: Path | None = None) -> list[Path]:
    """The cached executables in ``directory`` (default: ``cache_dir()``)."""
    directory = cache_dir() if directory is None else directory
    if directory is None or not directory.is_dir():
        return []
    return sorted(directory.glob("*.xla"))  # not ".tmp-*": being written by another process


def clear(directory: Path | None = None) -> tuple[int, int]:
    """Remove every cached executable (and any half-written one); returns ``(files, bytes)``."""
    directory = cache_dir() if directory is None else directory
    if directory is None or not directory.is_dir():
        return 0, 0
    files = freed = 0
    for path in [*directory.glob("*.xla"), *directory.glob(".tmp-*")]:
        with contextlib.suppress(FileNotFoundError):  # another process removed it first
            size = path.stat().st_size
            path.unlink()
            files, freed = files + 1, freed + size
    return files, freed


@functools.cache
def fingerprint() -> str:
    """What every executable depends on besides its shapes, hashed (once per process)."""
    from importlib.metadata import version

    import jax

    from crossgrad import __version__

    parts = [jax.__version__, version("jaxlib"), __version__, platform.machine()]
    here = Path(__file__).parent
    for name in ("jax_backend.py", "_jax_cache.py"):
        parts.append(hashlib.sha256((here / name).read_bytes()).hexdigest())
    device = jax.devices()[0]  # the default device, the one jit compiles for
    parts += [device.platform, device.device_kind, device.client.platform_version]
    parts += [os.environ.get("XLA_FLAGS", ""), _cpu_flags()]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _cpu_flags() -> str:
    # XLA compiles for the host CPU's instruction set: an executable from another CPU (a
    # cache directory on a shared home) may not run here.
    try:
        with open("/proc/cpuinfo") as f:
            return next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return platform.processor()


def wait() -> None:
    """Wait until every executable being loaded or compiled (by any ``Executables``) is ready
    and written to the cache; a compilation that raised is not waited for again."""
    for executables in list(_INSTANCES):
        with executables._lock:
            futures = list(executables._compiling.values())
        concurrent.futures.wait(futures)


class Executables:
    """Compiled executables of one jitted function, by argument shapes: in memory, on disk."""

    def __init__(
        self, jitted: Any, compiler_options: dict[str, Any] | None = None, **static: Any
    ) -> None:
        self.jitted, self.static = jitted, static
        self.compiler_options = compiler_options
        self._loaded: dict[tuple[Any, ...], Any] = {}
        self._compiling: dict[tuple[Any, ...], concurrent.futures.Future[Any]] = {}
        self._lock = threading.Lock()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._pid = os.getpid()
        _INSTANCES.add(self)

    def start(self, args: tuple[Any, ...], precision: Precision) -> Callable[[], Any]:
        """Start the executable for ``args`` on them; returns the function that gives its
        outputs.  JAX runs a loaded executable asynchronously; a bucket not loaded yet is
        loaded from disk or compiled in a background thread meanwhile."""
        key = tuple((a.shape, a.dtype.str) for a in args)
        executable = self._loaded.get(key)
        if executable is not None:
            with precision():
                outputs = executable(*args)
            return lambda: outputs
        future = self._future(key, args, precision)

        def finish() -> Any:
            executable = future.result()
            with precision():
                return executable(*args)

        return finish

    def prepare(self, args: tuple[Any, ...], precision: Precision) -> None:
        """Start loading or compiling the executable for ``args``' shapes in the background,
        unless it is loaded already; returns at once."""
        key = tuple((a.shape, a.dtype.str) for a in args)
        if key not in self._loaded:
            self._future(key, args, precision)

    def _future(
        self, key: tuple[Any, ...], args: tuple[Any, ...], precision: Precision
    ) -> concurrent.futures.Future[Any]:
        """The executable for ``key``, being loaded or compiled in a background thread."""
        with self._lock:
            if self._pid != os.getpid():  # a forked child: the parent's thread did not follow
                self._pool, self._compiling, self._pid = None, {}, os.getpid()
            future = self._compiling.get(key)
            if future is None and key in self._loaded:  # (loaded since the caller looked)
                future = concurrent.futures.Future()
                future.set_result(self._loaded[key])
            elif future is None:
                if self._pool is None:
                    self._pool = concurrent.futures.ThreadPoolExecutor(
                        COMPILE_THREADS, thread_name_prefix="crossgrad-jax-compile"
                    )
                future = self._pool.submit(self._get, key, args, precision)
                self._compiling[key] = future
        return future

    def _get(self, key: tuple[Any, ...], args: tuple[Any, ...], precision: Precision) -> Any:
        try:
            with precision():
                executable = self._load(key) or self._compile(key, args)
            self._loaded[key] = executable
            return executable
        finally:  # a compilation that raised is tried again by the next case
            with self._lock:
                del self._compiling[key]

    def _path(self, key: tuple[Any, ...]) -> Path | None:
        directory = cache_dir()
        if directory is None:
            return None
        name = f"{self.jitted.__name__}-{key!r}-{self.static!r}-{self.compiler_options!r}"
        name += f"-{fingerprint()}"
        return directory / f"{hashlib.sha256(name.encode()).hexdigest()[:32]}.xla"

    def _load(self, key: tuple[Any, ...]) -> Any:
        from jax.experimental import serialize_executable

        path = self._path(key)
        if path is None or not path.exists():
            return None
        try:
            payload, in_tree, out_tree = pickle.loads(path.read_bytes())
            return serialize_executable.deserialize_and_load(payload, in_tree, out_tree)
        except Exception:  # a truncated or foreign entry: compile anew and overwrite it
            return None

    def _compile(self, key: tuple[Any, ...], args: tuple[Any, ...]) -> Any:
        from jax.experimental import serialize_executable

        lowered = self.jitted.lower(*args, **self.static)
        executable = lowered.compile(compiler_options=self.compiler_options)
        path = self._path(key)
        if path is not None:
            with contextlib.suppress(Exception):  # a read-only or full disk costs speed only
                _write(path, pickle.dumps(serialize_executable.serialize(executable)))
        return executable


def _write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a concurrent reader sees all of it or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".xla")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
