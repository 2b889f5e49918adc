"""``testing.check_optimizer``: correct steps pass (including torch.optim wrapped in the user
protocol), each planted classic mistake is caught with its hint, and a hint is given only
when the mistake reproduces the user's numbers."""

from __future__ import annotations

import numpy as np
import pytest

from crossgrad import testing
from crossgrad.reference import optimizers as O  # noqa: N812  (short, read like a namespace)


def adam_step(lr=1e-3, b1=0.9, b2=0.999, eps=1e-8, wd=0.0, *, bias="right", eps_inside=False,
              decay="coupled"):  # fmt: skip
    """A user's Adam, written from the paper, with one of the classic mistakes planted."""

    def init(params):
        return {"t": 0, "m": [0 * p for p in params], "v": [0 * p for p in params]}

    def step(params, grads, state):
        t = state["t"] + 1
        tc = {"right": t, "ahead": t + 1, "behind": t - 1, "stuck": 1, "none": t}[bias]
        new, ms, vs = [], [], []
        for p, g, m, v in zip(params, grads, state["m"], state["v"], strict=True):
            if decay == "decoupled":
                p = p * (1 - lr * wd)
            else:
                g = g + wd * p
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            m_hat, v_hat = (m, v) if bias == "none" else (m / (1 - b1**tc), v / (1 - b2**tc))
            denominator = np.sqrt(v_hat + eps) if eps_inside else np.sqrt(v_hat) + eps
            new.append(p - lr * m_hat / denominator)
            ms.append(m)
            vs.append(v)
        return new, {"t": t, "m": ms, "v": vs}

    return init, step


def check(step, opt, init=None):
    with pytest.raises(testing.GradientMismatchError) as info:
        testing.check_optimizer(step, opt, init=init, seed=0, max_examples=60)
    return info.value.failure


def test_a_correct_adam_passes():
    init, step = adam_step()
    result = testing.check_optimizer(step, O.Adam(), init=init, seed=0, max_examples=60)
    assert result.cases == 60
    assert result.max_err_over_tolerance < 0.5
    assert result.max_rel_err < 1e-13


@pytest.mark.parametrize(
    ("kw", "hint"),
    [
        ({"bias": "none"}, "no bias correction"),
        ({"bias": "ahead"}, "yours uses t + 1"),
        ({"bias": "stuck"}, "yours stays at t = 1"),
        ({"bias": "behind"}, "yours uses t − 1"),
        ({"eps_inside": True}, "ε inside the square root"),
    ],
)
def test_each_adam_mistake_gets_its_hint(kw, hint):
    init, step = adam_step(**kw)
    failure = check(step, O.Adam(), init)
    assert len(failure.hints) == 1, failure.hints
    assert hint in failure.hints[0]
    assert failure.comparisons
    assert "Smallest failing case" in str(failure)


def test_coupled_decay_in_adamw_gets_its_hint():
    init, step = adam_step(lr=0.1, wd=0.5, decay="coupled")
    failure = check(step, O.AdamW(lr=0.1, weight_decay=0.5), init)
    assert failure.hints == (failure.hints[0],)
    assert failure.hints[0].startswith("weight decay coupled")


def test_decoupled_decay_in_adam_gets_its_hint():
    init, step = adam_step(lr=0.1, wd=0.5, decay="decoupled")
    # The same code is a correct AdamW.
    passed = testing.check_optimizer(
        step, O.AdamW(lr=0.1, weight_decay=0.5), init=init, seed=0, max_examples=30
    )
    assert passed.cases == 30
    failure = check(step, O.Adam(lr=0.1, weight_decay=0.5), init)
    assert len(failure.hints) == 1
    assert failure.hints[0].startswith("weight decay decoupled")


def rmsprop_step(lr=1e-2, alpha=0.99, eps=1e-8):
    def step(params, grads, state):
        v = state or [0 * p for p in params]
        v = [alpha * vi + (1 - alpha) * g * g for vi, g in zip(v, grads, strict=True)]
        new = [p - lr * g / np.sqrt(vi + eps) for p, g, vi in zip(params, grads, v, strict=True)]
        return new, v

    return step


def test_rmsprop_with_eps_inside_gets_its_hint_without_init():
    failure = check(rmsprop_step(), O.RMSprop())
    assert len(failure.hints) == 1
    assert "√(v + ε)" in failure.hints[0]


def test_adagrad_with_eps_inside_gets_its_hint():
    def step(params, grads, state):
        s = [si + g * g for si, g in zip(state or [0 * p for p in params], grads, strict=True)]
        new = [
            p - 0.01 * g / np.sqrt(si + 1e-10) for p, g, si in zip(params, grads, s, strict=True)
        ]
        return new, s

    failure = check(step, O.Adagrad())
    assert len(failure.hints) == 1
    assert "√(s + ε)" in failure.hints[0]


def test_a_zero_initialised_momentum_buffer_gets_its_hint():
    opt = O.SGD(0.1, momentum=0.9, dampening=0.5)

    def step(params, grads, buf):
        buf = [0 * p for p in params] if buf is None else buf
        buf = [0.9 * b + 0.5 * g for b, g in zip(buf, grads, strict=True)]
        return [p - 0.1 * b for p, b in zip(params, buf, strict=True)], buf

    failure = check(step, opt)
    assert len(failure.hints) == 1
    assert "momentum buffer not initialised to the first gradient" in failure.hints[0]


def test_no_hint_when_no_classic_mistake_explains_the_numbers():
    # Another decay rate altogether (optax's default 0.9): none of the hints fits.
    failure = check(rmsprop_step(alpha=0.9), O.RMSprop())
    assert failure.hints == ()
    assert "Hint" not in str(failure)


def test_an_exception_in_the_step_is_reported_on_the_smallest_case():
    def step(params, grads, state):
        if len(params) > 1:
            raise RuntimeError("two arrays are too many")
        return params, state

    failure = check(step, O.SGD(0.1))
    assert "RuntimeError: two arrays are too many" in failure.error
    assert len(failure.case.params) == 2


def test_a_wrong_return_value_is_reported():
    failure = check(lambda params, grads, state: params, O.SGD(0.1))
    assert "step must return (params, state)" in failure.error


def test_torch_optim_wrapped_in_the_protocol_passes():
    torch = pytest.importorskip("torch")

    def init(params):
        tensors = [torch.tensor(p) for p in params]
        return tensors, torch.optim.Adam(tensors, lr=1e-3)

    def step(params, grads, state):
        tensors, optim = state
        for t, g in zip(tensors, grads, strict=True):
            t.grad = torch.from_numpy(g)
        optim.step()
        return [t.detach().numpy().copy() for t in tensors], state

    assert testing.check_optimizer(step, O.Adam(), init=init, seed=3, max_examples=15).cases == 15


def test_optax_rmsprop_with_its_default_eps_gets_the_hint():
    optax = pytest.importorskip("optax")
    import jax

    tx = optax.rmsprop(1e-2, decay=0.99)  # optax puts ε inside the root by default

    def step(params, grads, state):
        with jax.enable_x64(True):
            state = tx.init(params) if state is None else state
            updates, state = tx.update(grads, state, params)
            return [np.asarray(p) for p in optax.apply_updates(params, updates)], state

    failure = check(step, O.RMSprop())
    assert len(failure.hints) == 1
    assert "optax's default" in failure.hints[0]


@pytest.mark.parametrize(
    ("kw", "error", "match"),
    [
        ({"optimizer": "adam"}, TypeError, "optimizer must be one of"),
        ({"init": 3}, TypeError, "init must be callable"),
        ({"seed": -1}, ValueError, "seed must be a non-negative int"),
        ({"max_examples": 0}, ValueError, "max_examples must be a positive int"),
    ],
)
def test_bad_arguments(kw, error, match):
    with pytest.raises(error, match=match):
        testing.check_optimizer(lambda p, g, s: (p, s), **kw)
