"""``crossgrad check --optimizer NAME --impl MODULE:FUNC``: a user's optimizer step checked
from the command line."""

from __future__ import annotations

import textwrap

import pytest

from crossgrad.cli import main

ADAM = textwrap.dedent(
    """
    import numpy as np

    def init(params):
        return 0, [0 * p for p in params], [0 * p for p in params]

    def step(params, grads, state, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
        t, ms, vs = state
        t += 1
        ms = [b1 * m + (1 - b1) * g for m, g in zip(ms, grads)]
        vs = [b2 * v + (1 - b2) * g * g for v, g in zip(vs, grads)]
        new = [p - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
               for p, m, v in zip(params, ms, vs)]
        return new, (t, ms, vs)

    def no_bias_step(params, grads, state, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
        t, ms, vs = state
        ms = [b1 * m + (1 - b1) * g for m, g in zip(ms, grads)]
        vs = [b2 * v + (1 - b2) * g * g for v, g in zip(vs, grads)]
        new = [p - lr * m / (np.sqrt(v) + eps) for p, m, v in zip(params, ms, vs)]
        return new, (t + 1, ms, vs)
    """
)


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "user_adam.py").write_text(ADAM)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))


def test_a_correct_adam_passes(user_module, capsys):
    argv = ["check", "--optimizer", "adam", "--impl", "user_adam:step", "--init",
            "user_adam:init", "--seed", "1", "--trials", "30"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "All 30 cases agree (seed 1)" in out
    assert "Adam(lr=0.001" in out


def test_a_planted_mistake_fails_with_its_hint(user_module, capsys):
    argv = ["check", "--optimizer", "adam", "--impl", "user_adam:no_bias_step", "--init",
            "user_adam:init", "--seed", "1", "--trials", "30"]  # fmt: skip
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "Hint: no bias correction" in out
    assert "Run it again with --seed 1" in out


def test_optimizer_needs_impl(capsys):
    assert main(["check", "--optimizer", "adam"]) == 2
    assert "give it with --impl MODULE:FUNC" in capsys.readouterr().err


def test_init_needs_optimizer(user_module, capsys):
    assert main(["check", "--init", "user_adam:init"]) == 2
    assert "--init goes with --optimizer" in capsys.readouterr().err


def test_unknown_optimizer_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["check", "--optimizer", "lion", "--impl", "x:y"])
    assert info.value.code == 2
    assert "invalid choice: 'lion'" in capsys.readouterr().err
