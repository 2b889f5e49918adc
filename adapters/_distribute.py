"""``crosscheck_many(..., executor=ex)``: chunks of cases cross-checked by any executor.

Each chunk of ``chunk`` cases is one task, ``crosscheck_many`` of that chunk, submitted to a
``concurrent.futures.Executor`` (a process pool, a ``dask.distributed`` client's
``get_executor()``); the reports come back in the order of the cases.  At most
``IN_FLIGHT`` chunks are submitted ahead of the one being yielded, so an endless iterable of
cases is fine and memory stays bounded.  Backends given by name pickle; backend objects must
be picklable to travel.
"""

from __future__ import annotations

import collections
import concurrent.futures
import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

IN_FLIGHT = 8
"""Chunks submitted ahead of the one whose reports are being yielded."""


def _chunk(
    offset: int, cases: list[Any], backends: Any, rtol: Any, atol: Any, chunk: int
) -> list[Any]:
    """``crosscheck_many`` of one chunk, in a worker; errors name the case's index overall."""
    from .checking import crosscheck_many

    try:
        return list(crosscheck_many(cases, backends, rtol, atol, chunk=chunk))
    except (TypeError, ValueError) as exc:
        message = re.sub(r"^cases\[(\d+)\]", lambda m: f"cases[{int(m[1]) + offset}]", str(exc))
        raise type(exc)(message) from None


def crosscheck_many(
    executor: concurrent.futures.Executor,
    cases: Iterable[Any],
    backends: Sequence[Any] | None,
    rtol: float | None,
    atol: float | None,
    chunk: int,
) -> Iterator[Any]:
    """The reports of ``cases``, in order, each chunk computed by ``executor``."""
    iterator = iter(cases)
    pending: collections.deque[concurrent.futures.Future[list[Any]]] = collections.deque()
    offset = 0
    try:
        while True:
            while len(pending) < IN_FLIGHT and (group := list(itertools.islice(iterator, chunk))):
                pending.append(executor.submit(_chunk, offset, group, backends, rtol, atol, chunk))
                offset += len(group)
            if not pending:
                return
            yield from pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
