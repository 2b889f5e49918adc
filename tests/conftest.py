"""Hypothesis profiles for the whole suite.

- ``default`` (loaded unless told otherwise): 100 examples per property (some properties
  scale it, see ``tests/test_properties.py``), enough for well over 1000 drawn cases over the
  suite while the whole run stays within a few minutes on 2 cores.
- ``thorough``: 20 times as many, ``pytest --hypothesis-profile=thorough``.
- ``fuzz-long``: the same count, meant for the fuzz suites alone, whose budgets scale with
  it (``tests/fuzzing.py``): ``pytest tests/test_fuzz_*.py --hypothesis-profile=fuzz-long``.

Neither has a deadline: the first call of a JAX function compiles it, which takes far longer
than any later call.  Profiles are registered here, once, at import, before any test module
is imported; the Hypothesis pytest plugin then loads the one named on the command line.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

for name, examples in (("default", 100), ("thorough", 2000), ("fuzz-long", 2000)):
    settings.register_profile(
        name,
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
