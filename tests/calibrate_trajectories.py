"""Calibrate the trajectory tolerance: the worst error/tolerance of torch and jax over random
training cases (the property suite's generator, a fixed seed).  Not collected by pytest: run
``python tests/calibrate_trajectories.py 300`` (a few minutes per hundred cases)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed

sys.path.insert(0, str(Path(__file__).parent))
from test_training import training_cases

from crossgrad import adapters


def main(n: int) -> None:
    worst = {"torch": (0.0, ""), "jax": (0.0, "")}
    rel = {"torch": 0.0, "jax": 0.0}
    seen = {"cases": 0, "steps": 0}
    start = time.time()

    @hypothesis_seed(12345)
    @settings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=training_cases())
    def run(case):
        net, params, batches, opt = case
        report = adapters.crosscheck_training(net, params, batches, opt)
        report.raise_for_mismatch()
        seen["cases"] += 1
        seen["steps"] += len(batches)
        for name in report.comparisons:
            w = report.worst(name)
            if w.max_err_over_tolerance > worst[name][0]:
                where = f"{opt} {net.sizes} {net.activations[0]}, {w.name} step {w.step}"
                worst[name] = (w.max_err_over_tolerance, where)
            rows = [r for rows in report.comparisons[name] for r in rows if r.name != "loss"]
            rel[name] = max(rel[name], *(r.max_rel_err for r in rows))
        if seen["cases"] % 20 == 0:
            print(f"{seen['cases']} cases, {time.time() - start:.0f} s", flush=True)

    run()
    print(f"{seen['cases']} cases, {seen['steps']} steps")
    for name, (ratio, where) in worst.items():
        print(
            f"{name}: worst error/tolerance {ratio:.3g} ({where}); worst relative {rel[name]:.3g}"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
