"""Hypothesis profiles for the whole suite.

- ``default`` (loaded unless told otherwise): 100 examples per property (some properties
  scale it, see ``tests/test_properties.py``), enough for well over 1000 drawn cases over the
  suite.  Derandomized: each test draws from a seed derived from the test itself, so a run
  is the same whichever ``pytest-xdist`` worker runs which test, and in whatever order (the
  suite runs with ``-n auto``, see ``pyproject.toml``).  No example database either: what a
  test draws does not depend on what an earlier run found.
- ``thorough``: 20 times as many, ``pytest --hypothesis-profile=thorough``, also derandomized.
- ``explore``: as ``default`` but random, with the example database, to look for new
  failures (``pytest --hypothesis-profile=explore``; a failure prints the
  ``@reproduce_failure`` blob and the seed to rerun it with ``--hypothesis-seed``).
- ``fuzz-long``: as ``thorough`` but random, meant for the fuzz suites alone, whose budgets
  scale with it (``tests/fuzzing.py``):
  ``pytest tests/test_fuzz_*.py --hypothesis-profile=fuzz-long``.

None has a deadline: the first call of a JAX function loads or compiles it, which takes far
longer than any later call.  Profiles are registered here, once, at import, before any test
module is imported; the Hypothesis pytest plugin then loads the one named on the command line.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

for name, examples, derandomize in (
    ("default", 100, True),
    ("thorough", 2000, True),
    ("explore", 100, False),
    ("fuzz-long", 2000, False),  # random: each long run explores new inputs
):
    settings.register_profile(
        name,
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        derandomize=derandomize,
        **({"database": None, "print_blob": False} if derandomize else {}),
    )


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test's own folder as the current one, where ``--impl`` finds users' modules
    (``user_code.write_module``); ``sys.path`` is restored after the test."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # --impl may put the cwd on it
    return tmp_path
