"""CPU throughput of one SGD training step: the NumPy reference, the fast NumPy backend, PyTorch
and JAX.

Run it as ``crossgrad bench`` (or ``python -m crossgrad.benchmarks``).  The parts:

- ``cases``: the grid (networks, batch sizes, dtypes, activations), ``--case`` ids and the FLOP
  count of one step;
- ``backends``: one idiomatic fast training step per framework, prepared outside the timing;
- ``timing``: equal thread counts, the machine's GEMM rate, interleaved timing rounds;
- ``runner``: ``run_benchmark`` puts them together into a report (a JSON-ready dict);
- ``report``: the terminal table, the issue's goals, results.json, results.csv, results.png.

Beside it: ``floor`` (``python -m crossgrad.benchmarks.floor``), the parts of a small fast
NumPy step; ``check_speed``, how fast checking is; ``crosscheck_throughput``, cross-checks
per second.
"""

from . import report
from .backends import BACKENDS, available, frameworks_configured, make_problem, prepare
from .cases import ACTIVATIONS, GRIDS, Case, grid, parse_case, step_flops
from .runner import RESULT_KEYS, run_benchmark

__all__ = [
    "ACTIVATIONS",
    "BACKENDS",
    "GRIDS",
    "RESULT_KEYS",
    "Case",
    "available",
    "frameworks_configured",
    "grid",
    "make_problem",
    "parse_case",
    "prepare",
    "report",
    "run_benchmark",
    "step_flops",
]
