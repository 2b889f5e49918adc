"""Small problems do not pay for thread pools: torch's intra-op threads, lowered around them.

On a network of a few dozen units torch's intra-op parallelism has nothing to split, and
each operation pays to wake and synchronise its threads; when the cores are busy with other
work that wait grows to milliseconds.  Measured on a shared 2-core machine
(``crosscheck`` of 300 random small float64 networks, reference vs torch vs jax, warm):
torch alone ran 3800-3900 networks per second at its default of 2 threads and 3950-4200 at
1, but in a busy spell 144-280 at 2 threads against a steady 3950-4050 at 1, and the whole
crosscheck 215-750 against 780-820.  Setting and restoring the count costs about 0.25 µs.

So while crossgrad runs torch on a small case it sets one intra-op thread, and restores the
user's setting when the call returns, even on an exception.  Inter-op threads (which torch
fixes once) and the user's own torch code outside these calls are not touched; a user's
torch code running at the same moment in another thread of the same process would see one
thread for the duration of the call.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterable, Iterator

import torch

from ..reference import Network

SMALL = 1 << 18
"""Multiply-adds of one forward pass (batch × Σ fan_in·fan_out) up to which a case is small."""


def work(net: Network, batch: int) -> int:
    """The multiply-adds of one forward pass of ``net`` on ``batch`` samples."""
    return batch * sum(n_in * n_out for n_in, n_out in itertools.pairwise(net.sizes))


@contextlib.contextmanager
def single_threaded_if_small(cases: Iterable[tuple[Network, int]]) -> Iterator[None]:
    """One intra-op thread inside the block when every ``(net, batch)`` is small (and
    torch uses more than one); the user's thread count is restored on the way out."""
    before = torch.get_num_threads()
    if before == 1 or any(work(net, batch) > SMALL for net, batch in cases):
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
