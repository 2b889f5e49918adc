"""The reference optimizers: torch.optim's defaults, one and several steps against torch.optim
itself, their input checks, and that nothing they are given is modified."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from crossgrad import reference
from crossgrad.adapters.trajectory_tolerance import optimizer_bounds
from crossgrad.reference import optimizers as O  # noqa: N812  (short, read like a namespace)

torch = pytest.importorskip("torch")

CONFIGS = [
    O.SGD(0.1),
    O.SGD(0.1, momentum=0.9),
    O.SGD(0.1, momentum=0.9, dampening=0.5, weight_decay=0.1),
    O.SGD(0.05, momentum=0.8, nesterov=True),
    O.Adam(),
    O.Adam(lr=0.01, betas=(0.5, 0.9), eps=1e-6, weight_decay=0.1),
    O.Adam(amsgrad=True),
    O.AdamW(),
    O.AdamW(lr=0.1, weight_decay=0.5, amsgrad=True),
    O.RMSprop(),
    O.RMSprop(alpha=0.9, momentum=0.5, centered=True, weight_decay=0.01),
    O.Adagrad(),
    O.Adagrad(lr=0.1, initial_accumulator_value=0.1, eps=0, weight_decay=0.1),
]
TORCH = {
    O.SGD: torch.optim.SGD,
    O.Adam: torch.optim.Adam,
    O.AdamW: torch.optim.AdamW,
    O.RMSprop: torch.optim.RMSprop,
    O.Adagrad: torch.optim.Adagrad,
}


def _torch_steps(opt, params, grads_seq):
    from crossgrad.adapters import torch_training

    tensors = [torch.tensor(p) for p in params]
    optim = torch_training.optimizer(opt, tensors)
    out = []
    for grads in grads_seq:
        for t, g in zip(tensors, grads, strict=True):
            t.grad = torch.tensor(g)
        optim.step()
        out.append([t.numpy().copy() for t in tensors])
    return out


def _case(seed, steps, scale=1e-2):
    rng = np.random.default_rng(seed)
    shapes = [(3, 2), (3,), (1, 3)]
    params = [rng.uniform(-1, 1, s) for s in shapes]
    grads = [[scale * rng.uniform(-1, 1, s) for s in shapes] for _ in range(steps)]
    return params, grads


@pytest.mark.parametrize("cls", list(TORCH), ids=lambda c: c.__name__)
def test_defaults_are_torch_defaults(cls):
    ours = inspect.signature(cls).parameters
    theirs = inspect.signature(TORCH[cls]).parameters
    for name, p in ours.items():
        if p.default is inspect.Parameter.empty:
            continue
        torch_default = theirs[name].default
        assert p.default == (tuple(torch_default) if name == "betas" else torch_default), name


@pytest.mark.parametrize("opt", CONFIGS, ids=repr)
@pytest.mark.parametrize("steps", [1, 6])
def test_steps_agree_with_torch_optim(opt, steps):
    params, grads = _case(steps, steps)
    bounds = optimizer_bounds(opt, params, grads)
    state = opt.init(params)
    theta = params
    for t, (g, expected, bound) in enumerate(
        zip(grads, _torch_steps(opt, params, grads), bounds, strict=True)
    ):
        theta, state = opt.step(theta, g, state)
        assert state.t == t + 1
        for ours, theirs, b in zip(theta, expected, bound, strict=True):
            assert np.all(np.abs(ours - theirs) <= b), (t, np.max(np.abs(ours - theirs) / b))
            assert np.all(b <= 1e-12 * (1 + np.abs(ours))), "the bound is too loose to mean much"


def test_a_wrong_formula_is_outside_the_bounds():
    # The bounds must be tight enough to see a real difference: ε inside the root.
    params, grads = _case(0, 3)
    opt = O.Adam(eps=1e-6)
    bounds = optimizer_bounds(opt, params, grads)
    theta, _ = opt.step(params, grads[0], opt.init(params))
    m = [0.1 * g for g in grads[0]]
    v = [0.001 * g**2 for g in grads[0]]
    wrong = [
        p - 1e-3 * (mi / 0.1) / np.sqrt(vi / 0.001 + 1e-6)
        for p, mi, vi in zip(params, m, v, strict=True)
    ]
    assert any(np.any(np.abs(w - r) > b) for w, r, b in zip(wrong, theta, bounds[0], strict=True))


@pytest.mark.parametrize("opt", CONFIGS, ids=repr)
def test_params_in_params_out_and_nothing_modified(opt):
    net = reference.Network((3, 2, 2))
    params = reference.init_params(net, seed=1)
    grads = reference.init_params(net, seed=2)
    before = [a.copy() for pair in params for a in pair]
    state = opt.init(params)
    new, state2 = opt.step(params, grads, state)
    assert isinstance(new, reference.Params)
    assert new.sizes == params.sizes
    opt.step(new, grads, state2)
    assert all(
        np.array_equal(a, b) for a, b in zip(before, [a for p in params for a in p], strict=True)
    )
    listed, _ = opt.step([a for p in params for a in p], [a for p in grads for a in p], state)
    assert isinstance(listed, list)
    assert all(
        np.array_equal(a, b) for a, b in zip(listed, [a for p in new for a in p], strict=True)
    )


def test_sgd_momentum_buffer_starts_at_the_first_gradient():
    opt = O.SGD(1.0, momentum=0.9, dampening=0.5)
    p, g = [np.zeros(2)], [np.array([1.0, -2.0])]
    state = opt.init(p)
    assert state.buf == (None,)
    new, state = opt.step(p, g, state)
    np.testing.assert_array_equal(state.buf[0], g[0])  # undamped at step 1
    np.testing.assert_array_equal(new[0], -g[0])
    _, state = opt.step(new, g, state)
    np.testing.assert_array_equal(state.buf[0], 0.9 * g[0] + 0.5 * g[0])


def test_adamw_decays_before_the_update_and_adam_couples():
    p, g = [np.array([2.0])], [np.array([0.0])]
    # A zero gradient: Adam's coupled decay makes a gradient λθ; AdamW only shrinks θ.
    adamw, _ = O.AdamW(lr=0.1, weight_decay=0.5).step(p, g, O.AdamW().init(p))
    assert adamw[0][0] == 2.0 - 0.1 * 0.5 * 2.0
    adam, _ = O.Adam(lr=0.1, weight_decay=0.5).step(p, g, O.Adam().init(p))
    assert adam[0][0] == pytest.approx(2.0 - 0.1, rel=1e-6, abs=0)  # a full signed Adam step


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: O.SGD(-1), "lr must be finite and at least 0"),
        (lambda: O.SGD("0.1"), "lr must be a real number"),
        (lambda: O.SGD(0.1, nesterov=True), "nesterov=True needs momentum > 0"),
        (lambda: O.SGD(0.1, momentum=0.9, dampening=0.1, nesterov=True), "dampening = 0"),
        (lambda: O.Adam(betas=(0.9, 1.0)), r"betas\[1\] must be in \[0, 1\)"),
        (lambda: O.Adam(betas=0.9), "betas must be a pair"),
        (lambda: O.Adam(eps=float("nan")), "eps must be finite"),
        (lambda: O.RMSprop(alpha=1.5), r"alpha must be in \[0, 1\)"),
        (lambda: O.Adagrad(eps=0), "would divide 0 by 0"),
        (lambda: O.AdamW(weight_decay=-1), "weight_decay must be finite and at least 0"),
    ],
)
def test_bad_hyperparameters(make, match):
    with pytest.raises((TypeError, ValueError), match=match):
        make()


def test_bad_step_arguments():
    opt = O.Adam()
    p = [np.zeros(2)]
    state = opt.init(p)
    with pytest.raises(ValueError, match=r"grads\[0\] is float64 \(3,\), params\[0\] is"):
        opt.step(p, [np.zeros(3)], state)
    with pytest.raises(ValueError, match="grads has 2 arrays, params has 1"):
        opt.step(p, [np.zeros(2), np.zeros(2)], state)
    with pytest.raises(TypeError, match="state must be the AdamState"):
        opt.step(p, [np.zeros(2)], O.SGD(0.1).init(p))
    with pytest.raises(TypeError, match=r"params\[0\] must be a float32 or float64 NumPy array"):
        opt.step([[0.0, 1.0]], [np.zeros(2)], state)
    with pytest.raises(TypeError, match="params must be crossgrad Params or a list"):
        opt.init(np.zeros(3))


def test_float32_stays_float32():
    p = [np.ones(3, np.float32)]
    for opt in CONFIGS:
        new, _ = opt.step(p, [np.full(3, 0.5, np.float32)], opt.init(p))
        assert new[0].dtype == np.float32, opt
