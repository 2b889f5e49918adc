"""Fair timing: one thread count for every library, the machine's GEMM rate, interleaved repeats.

- ``limit_threads(n)`` gives NumPy's BLAS (threadpoolctl), torch and XLA the same ``n``
  threads, and restores the previous settings on exit.
- ``gemm_rates(dtype)`` is the dense matrix-product rate of the machine: the best of NumPy's
  BLAS and, when installed, torch's and XLA's, for one square product (``gemm_product``).
- ``measure(steps, ...)`` times backends in interleaved rounds, so that a slow spell of a
  shared machine hits every backend alike, and reports per-step medians and spreads.  A
  ``Product`` wraps a ``gemm_product`` so that it can take its turn in those rounds.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

GEMM_SIZE = 1024
"""The side of the square matrices of the GEMM rate measurement."""


@dataclass
class ThreadSettings:
    """The thread count in force and what each library was told, for the report."""

    threads: int
    libraries: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def default_threads() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@contextlib.contextmanager
def limit_threads(threads: int) -> Iterator[ThreadSettings]:
    """Run NumPy's BLAS, torch and XLA on ``threads`` threads; restore the settings on exit.

    BLAS is limited through threadpoolctl and torch through ``torch.set_num_threads``.  XLA
    has no thread-count setting: it sizes its pool from the CPU affinity of the process when
    JAX starts, so with fewer threads than cores the process is pinned to ``threads`` cores.
    """
    from threadpoolctl import threadpool_info, threadpool_limits

    settings = ThreadSettings(threads)
    if threads > default_threads():
        settings.notes.append(f"{threads} threads on {default_threads()} cores: oversubscribed")
    old_affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if old_affinity is not None and threads < len(old_affinity):
        os.sched_setaffinity(0, sorted(old_affinity)[:threads])
        settings.libraries["cpu_affinity"] = sorted(os.sched_getaffinity(0))
        if "jax" in sys.modules:
            settings.notes.append("jax was imported before the threads were set: XLA may use more")
    torch = sys.modules.get("torch")
    if torch is None and installed("torch"):
        import torch
    old_torch = torch.get_num_threads() if torch is not None else None
    try:
        with threadpool_limits(limits=threads):
            settings.libraries["blas"] = [
                {key: info.get(key) for key in ("internal_api", "version", "architecture")}
                | {"num_threads": info["num_threads"]}
                for info in threadpool_info()
            ]
            if torch is not None:
                torch.set_num_threads(threads)
                settings.libraries["torch"] = torch.get_num_threads()
            yield settings
    finally:
        if torch is not None and old_torch is not None:
            torch.set_num_threads(old_torch)
        if old_affinity is not None:
            os.sched_setaffinity(0, old_affinity)


def installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _best_rate(flops: int, fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: first-touch of the output, kernel selection, JIT compilation
    best = min(seconds(fn) for _ in range(repeats))
    return flops / best / 1e9


def seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def gemm_libraries() -> list[str]:
    """The libraries whose matrix product ``gemm_rates`` measures: NumPy, torch and jax if
    installed."""
    return ["numpy"] + [module for module in ("torch", "jax") if installed(module)]


def gemm_product(library: str, dtype: str, size: int = GEMM_SIZE) -> Callable[[], object]:
    """One ``size``×``size`` product in ``dtype`` by ``library``, finished when it returns.

    The operands are made here, once; the product runs at every call.
    """
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size)).astype(dtype)
    b = rng.standard_normal((size, size)).astype(dtype)
    if library == "numpy":
        return lambda: a @ b
    if library == "torch":
        import torch

        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        return lambda: ta @ tb
    if library == "jax":
        import jax
        import jax.numpy as jnp

        with jax.enable_x64(True):  # scoped: float64 arrays without touching the user's config
            ja, jb = jnp.asarray(a), jnp.asarray(b)
        matmul = jax.jit(jnp.matmul)

        def product() -> object:
            with jax.enable_x64(True):  # traced and run in the operands' dtype
                return matmul(ja, jb).block_until_ready()

        return product
    raise ValueError(f"library must be one of numpy, torch, jax, got {library!r}")


def gemm_rates(dtype: str, size: int = GEMM_SIZE, repeats: int = 5) -> dict[str, float]:
    """GFLOP/s of an ``size``×``size`` product in ``dtype``, per library (best of ``repeats``)."""
    flops = 2 * size**3
    return {
        library: _best_rate(flops, gemm_product(library, dtype, size), repeats)
        for library in gemm_libraries()
    }


class Timed(Protocol):
    """What ``measure`` times: ``run()`` once per step, then ``sync()`` to wait for queued work
    (a ``backends.Step``, or a ``Product``)."""

    @property
    def run(self) -> Callable[[], object]: ...

    @property
    def sync(self) -> Callable[[], None]: ...


@dataclass(frozen=True)
class Product:
    """A matrix product (``gemm_product``) timed like a step, among the steps of a case."""

    run: Callable[[], object]
    sync: Callable[[], None] = lambda: None  # each product waits for itself


@dataclass(frozen=True)
class Timing:
    """Seconds per step of one backend: every round's value, their median and spread (IQR)."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return float(np.median(self.samples))

    @property
    def spread(self) -> float:
        """The interquartile range of the per-round values."""
        q1, q3 = np.percentile(self.samples, [25, 75])
        return float(q3 - q1)


def calibrate(step: Timed, min_seconds: float) -> int:
    """How many consecutive steps make one timed sample last at least ``min_seconds``."""
    number = 1
    while True:
        elapsed = _run(step, number)
        if elapsed >= min_seconds or number >= 1_000_000:
            return number
        number = max(number * 2, int(number * 1.2 * min_seconds / max(elapsed, 1e-9)))


def _run(step: Timed, number: int) -> float:
    run = step.run
    start = time.perf_counter()
    for _ in range(number):
        run()
    step.sync()
    return time.perf_counter() - start


def measure(
    steps: Mapping[str, Timed],
    numbers: Mapping[str, int],
    rounds: int,
    pause_s: float = 0.0,
    tick: Callable[[], None] = lambda: None,
) -> dict[str, Timing]:
    """Time every step in ``rounds`` interleaved rounds; ``tick()`` after each sample.

    In each round every backend runs ``numbers[name]`` consecutive steps once; the starting
    backend rotates from round to round so that none always follows the same neighbour.  Each
    sample starts ``pause_s`` seconds after the previous one ended: idle BLAS, OpenMP and
    Eigen worker threads keep spinning for a while after their last task (OpenBLAS for about
    2²⁸ cycles, 0.1 s), and on a machine with few cores that spinning would slow whichever
    backend runs next.
    """
    names = list(steps)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds if names else 0):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            time.sleep(pause_s)
            samples[name].append(_run(steps[name], numbers[name]) / numbers[name])
            tick()
    return {name: Timing(tuple(values)) for name, values in samples.items()}
