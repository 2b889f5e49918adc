"""A sweep over many processes (or a cluster): chunks of trials, each with its own seed.

``sweep(..., executor=ex)`` cuts the trials into chunks of ``CHUNK`` and submits each chunk
to ``ex`` as a sweep of its own, with a seed derived from the run's seed and the chunk's
number (``numpy.random.SeedSequence``).  The chunks do not depend on how many workers there
are, so a run with a given seed draws the same cases on 2 processes as on 16 or on a Dask
cluster.  Results are merged as chunks complete (worst errors, cases counted), and progress is
reported per chunk.  The first chunk that fails has already shrunk its failure in its own
process; the chunks not yet started are cancelled, and of the failures found the one of the
lowest-numbered chunk is reported, so the report does not depend on timing either.

``executor`` is any ``concurrent.futures.Executor``: a ``ProcessPoolExecutor`` (what
``crossgrad check --workers N`` uses) or a ``dask.distributed`` client's ``get_executor()``.
What it runs must pickle: backend names and module-level functions do.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import multiprocessing
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from ._sweep import ErrorStats, Progress, SweepResult

CHUNK = 25
"""Trials per submitted chunk: small enough for a live progress bar and a quick stop after
a failure, large enough that a chunk's start (a few milliseconds) costs little."""


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def process_pool(workers: int) -> Iterator[concurrent.futures.Executor | None]:
    """``workers`` processes, started fresh (``spawn``: JAX and torch do not survive a
    ``fork`` of a process that runs their threads); ``None`` for one worker: no pool."""
    if workers <= 1:
        yield None
        return
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        try:
            yield pool
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def chunk_seeds(seed: int, trials: int) -> list[tuple[int, int]]:
    """``(trials, seed)`` of every chunk of a run: the same for any number of workers."""
    sizes = [CHUNK] * (trials // CHUNK) + ([trials % CHUNK] if trials % CHUNK else [])
    children = np.random.SeedSequence(seed).spawn(len(sizes))
    return [(n, int(c.generate_state(1)[0])) for n, c in zip(sizes, children, strict=True)]


def _chunk(kwargs: dict[str, Any], trials: int, seed: int) -> SweepResult:
    """One chunk, in a worker: a sweep of its own."""
    from . import sweep

    return sweep(**kwargs, trials=trials, seed=seed)


def sweep(
    executor: concurrent.futures.Executor,
    kwargs: dict[str, Any],
    *,
    trials: int,
    seed: int,
    progress: Progress | None,
) -> SweepResult:
    """``testing.sweep(**kwargs, trials=trials, seed=seed)`` spread over ``executor``."""
    chunks = chunk_seeds(seed, trials)
    futures = {
        executor.submit(_chunk, kwargs, n, chunk_seed): i
        for i, (n, chunk_seed) in enumerate(chunks)
    }
    done: dict[int, SweepResult] = {}
    checked = 0
    try:
        for future in concurrent.futures.as_completed(futures):
            result = future.result()
            done[futures[future]] = result
            checked += result.cases
            if result.failure is not None:
                for other in futures:
                    other.cancel()
                break
            if progress is not None:
                progress(checked, trials)
        if any(r.failure is not None for r in done.values()):  # let started chunks finish
            for future in futures:
                if not future.cancelled():
                    with contextlib.suppress(concurrent.futures.CancelledError):
                        done[futures[future]] = future.result()
    finally:
        for future in futures:
            future.cancel()
    return merge(seed, trials, [done[i] for i in sorted(done)])


def merge(seed: int, trials: int, results: list[SweepResult]) -> SweepResult:
    """One ``SweepResult`` of chunks in order: cases and declined cases summed, worst errors
    kept, and the failure of the first failing chunk (the chunks after it are left out)."""
    stats: dict[str, dict[str, ErrorStats]] = {}
    declined: dict[str, int] = {}
    cases, failure = 0, None
    for result in results:
        cases += result.cases
        for reason, count in result.declined.items():
            declined[reason] = declined.get(reason, 0) + count
        for name, kinds in result.stats.items():
            merged = stats.setdefault(name, {})
            for kind, s in kinds.items():
                m = merged.setdefault(kind, ErrorStats())
                m.cases += s.cases
                m.max_abs_err = max(m.max_abs_err, s.max_abs_err)
                m.max_rel_err = max(m.max_rel_err, s.max_rel_err)
                m.max_err_over_tolerance = max(m.max_err_over_tolerance, s.max_err_over_tolerance)
        if result.failure is not None:  # reproduced by the run's seed, not the chunk's
            failure = dataclasses.replace(result.failure, seed=seed)
            break
    return SweepResult(seed, trials, cases, stats, failure, declined)
