"""Users' code for the command-line tests: modules written to a folder, imported by name.

``crossgrad check --impl MODULE:FUNC`` imports ``MODULE`` from the current folder; each test
writes its module under a fresh name (Python caches imported modules by name, so reusing one
would run an earlier test's code).  ``in_tmp``, the fixture that makes a test's own folder the
current one, is in ``conftest.py``.
"""

from __future__ import annotations

import itertools
import os
import textwrap
from pathlib import Path

_names = itertools.count()


def write_module(directory: Path, source: str) -> str:
    """Write ``source`` to a module of a fresh name in ``directory``; return that name."""
    name = f"user_backprop_{os.getpid()}_{next(_names)}"
    (directory / f"{name}.py").write_text(textwrap.dedent(source), "utf-8")
    return name
