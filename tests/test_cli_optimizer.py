"""``crossgrad check --optimizer NAME --impl MODULE:FUNC``: a user's optimizer step checked
from the command line."""

from __future__ import annotations

import json
import textwrap

import numpy as np
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


def test_json_is_one_object_for_a_pass_and_for_a_failure(user_module, capsys):
    base = ["check", "--optimizer", "adam", "--init", "user_adam:init", "--seed", "1",
            "--trials", "20", "--json"]  # fmt: skip
    assert main([*base, "--impl", "user_adam:step"]) == 0
    passed = json.loads(capsys.readouterr().out)  # the whole output: one object
    assert passed["ok"] is True
    assert (passed["seed"], passed["cases"]) == (1, 20)
    assert 0 <= passed["max_err_over_tolerance"] <= 1
    assert main([*base, "--impl", "user_adam:no_bias_step"]) == 1
    failed = json.loads(capsys.readouterr().out)
    assert failed["ok"] is False
    failure = failed["failure"]
    assert failure["optimizer"].startswith("Adam(lr=0.001")
    assert failure["seed"] == 1
    assert failure["error"] is None
    assert any(h.startswith("no bias correction") for h in failure["hints"])
    first = failure["comparisons"][0]
    assert first["step"] == 1
    assert first["max_err_over_tolerance"] > 1
    shapes = [np.shape(p) for p in failure["case"]["params"]]
    for step in failure["case"]["grads"]:
        assert [np.shape(g) for g in step] == shapes


@pytest.mark.parametrize(
    ("option", "spec", "message"),
    [
        ("--init", "bad", "--init must be MODULE:FUNC (e.g. my_module:func), got 'bad'"),
        ("--init", "user_adam:np", "--init user_adam:np is a module, not a function FUNC(params)"),
        ("--impl", "user_adam:np", "not a function FUNC(params, grads, state) -> (params, state)"),
    ],
)
def test_a_bad_impl_or_init_is_named_with_the_signature_it_needs(
    user_module, capsys, option, spec, message
):
    specs = {"--impl": "user_adam:step", "--init": "user_adam:init", option: spec}
    argv = ["check", "--optimizer", "adam", *(a for kv in specs.items() for a in kv)]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
