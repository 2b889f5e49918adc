"""``crossgrad cache info|clear``: where crossgrad keeps its compiled JAX executables.

The JAX backend compiles one executable per bucket of network sizes and keeps it on disk, so
the next process loads it instead of compiling it again (``crossgrad.adapters._jax_cache``).
``info`` shows the directory, whether the cache is on and what it holds; ``clear`` empties
it (the next run compiles again).  ``CROSSGRAD_CACHE_DIR`` moves the cache, and
``CROSSGRAD_CACHE_DIR=off`` turns it off.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from ..adapters import _jax_cache


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "cache",
        help="show or clear the cache of compiled JAX executables",
        description="crossgrad compiles its JAX functions once per machine and keeps them "
        "in a per-user cache directory.  'info' shows where and how much; 'clear' empties it.",
        epilog=f"{_jax_cache.ENV}=DIR moves the cache, {_jax_cache.ENV}=off disables it.",
    )
    parser.add_argument(
        "action", nargs="?", default="info", choices=("info", "clear"), help="default: info"
    )


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB"):
        if value < 1000:
            return f"{value:.3g} {unit}"
        value /= 1000
    return f"{value:.3g} GB"


def run(args: argparse.Namespace) -> int:
    directory = _jax_cache.cache_dir()
    if directory is None:
        print(f"cache: off ({_jax_cache.ENV}={os.environ[_jax_cache.ENV]})")
        return 0
    if args.action == "clear":
        files, freed = _jax_cache.clear(directory)
        print(f"cache: {directory}: removed {files} file{'s' * (files != 1)} ({_size(freed)})")
        return 0
    entries = _jax_cache.entries(directory)
    total = sum(path.stat().st_size for path in entries)
    source = f"from {_jax_cache.ENV}" if _jax_cache.setting() else "the default"
    print(f"cache: {directory} ({source})")
    print(f"compiled JAX executables: {len(entries)} ({_size(total)})")
    return 0
