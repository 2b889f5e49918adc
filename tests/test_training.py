"""Training trajectories: ``reference.train``, the cross-check against torch.optim and optax
over 20 steps, the pinned differences of optax's own defaults, and a property suite over
random networks, optimizers and hyperparameters."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossgrad import adapters, reference
from crossgrad.adapters import training
from crossgrad.reference import optimizers as O  # noqa: N812  (short, read like a namespace)

optax = pytest.importorskip("optax")
pytest.importorskip("torch")


def _problem(seed=0, steps=20, sizes=(3, 5, 4, 2), activation="tanh", loss="half_sse", batch=6):
    net = reference.Network(sizes, activation=activation, loss=loss)
    params = reference.init_params(net, seed=seed)
    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(steps):
        x = rng.normal(size=(batch, sizes[0]))
        if loss == "softmax_cross_entropy":
            y = rng.dirichlet(np.ones(sizes[-1]), size=batch)
        else:
            y = rng.normal(size=(batch, sizes[-1]))
        batches.append((x, y))
    return net, params, batches


def test_train_is_backprop_then_step():
    net, params, batches = _problem(steps=3)
    opt = O.Adam(lr=0.01)
    traj = reference.train(net, params, batches, opt)
    theta, state = params, opt.init(params)
    for t, (x, y) in enumerate(batches):
        out = reference.backprop(net, theta, x, y)
        theta, state = opt.step(theta, out.grads, state)
        assert traj.losses[t] == out.loss
        assert traj.grads[t] == out.grads
        assert traj.params[t] == theta
    assert len(traj) == 3
    assert traj.initial is params


def test_train_checks_its_arguments():
    net, params, batches = _problem(steps=1)
    with pytest.raises(ValueError, match="batches is empty"):
        reference.train(net, params, [], O.SGD(0.1))
    with pytest.raises(TypeError, match=r"batches\[0\] must be an \(x, y\) pair"):
        reference.train(net, params, [batches[0][0]], O.SGD(0.1))
    with pytest.raises(TypeError, match="optimizer must be one of"):
        reference.train(net, params, batches, "adam")


@pytest.mark.parametrize(
    ("rtol", "error", "message"),
    [
        (-1.0, ValueError, "rtol must be finite and non-negative, got -1.0"),
        ("1e-9", TypeError, "rtol must be a real number or None, got str '1e-9'"),
    ],
)
def test_crosscheck_training_checks_its_rtol(rtol, error, message):
    net, params, batches = _problem(steps=1)
    with pytest.raises(error, match=re.escape(message)):
        adapters.crosscheck_training(net, params, batches, O.SGD(0.1), backends=[], rtol=rtol)


ALL = [
    O.SGD(0.1),
    O.SGD(0.1, momentum=0.9, dampening=0.3, weight_decay=0.01),
    O.SGD(0.05, momentum=0.9, nesterov=True),
    O.Adam(lr=0.01),
    O.Adam(lr=0.01, weight_decay=0.1),
    O.AdamW(lr=0.01),
    O.RMSprop(lr=0.001),
    O.RMSprop(lr=0.001, momentum=0.5, centered=True, weight_decay=0.01),
    O.Adagrad(lr=0.05, initial_accumulator_value=0.1, eps=0),
]


@pytest.mark.parametrize("opt", ALL, ids=repr)
def test_twenty_float64_steps_agree_with_torch_optim_and_optax(opt):
    net, params, batches = _problem(loss="softmax_cross_entropy")
    report = adapters.crosscheck_training(net, params, batches, opt)
    assert report.backends == ("torch", "jax")
    assert not report.skipped
    report.raise_for_mismatch()
    for name in report.backends:
        assert len(report.comparisons[name]) == 20
        assert report.worst(name).max_err_over_tolerance < 0.5  # the calibration's margin


@pytest.mark.parametrize(
    ("opt", "reason"),
    [(O.Adam(amsgrad=True), "AMSGrad"), (O.Adagrad(), "inside the square root")],
    ids=["amsgrad", "adagrad-eps"],
)
def test_optax_cannot_compute_these_and_says_so(opt, reason):
    net, params, batches = _problem(steps=5)
    report = adapters.crosscheck_training(net, params, batches, opt)
    assert reason in report.skipped["jax"]
    assert report.ok  # torch agrees; a skip is reported, not a failure
    assert "skipped" in str(report)


def test_float32_trajectories_agree():
    net, params64, batches = _problem(steps=10)
    params = reference.Params(
        [W.astype(np.float32) for W in params64.weights],
        [b.astype(np.float32) for b in params64.biases],
    )
    batches32 = [(x.astype(np.float32), y.astype(np.float32)) for x, y in batches]
    report = adapters.crosscheck_training(net, params, batches32, O.Adam(lr=0.01))
    report.raise_for_mismatch()
    assert report.reference.params[-1].dtype == np.float32


# --- optax with its own defaults computes another trajectory: each difference pinned -------

LR = 0.01


def _optax_run(opt, transformation, *, steps=5, scale=1.0):
    net, params, batches = _problem(steps=steps)
    batches = [(x, y * scale) for x, y in batches]
    backends = ["jax", training.optax_backend(transformation, "optax as given")]
    return adapters.crosscheck_training(net, params, batches, opt, backends=backends)


PINS = [
    # (reference optimizer, optax with its own default, what differs)
    (O.RMSprop(LR), lambda: optax.rmsprop(LR), "decay 0.9 vs alpha 0.99, eps inside the root"),
    (O.RMSprop(LR), lambda: optax.rmsprop(LR, decay=0.99), "eps inside the root"),
    (O.RMSprop(LR, centered=True), lambda: optax.rmsprop(LR, decay=0.99, centered=True),
     "centered: eps inside the root"),
    (O.Adagrad(LR), lambda: optax.adagrad(LR), "initial accumulator 0.1 and eps 1e-7 inside"),
    (O.Adagrad(LR), lambda: optax.adagrad(LR, initial_accumulator_value=0.0, eps=1e-10),
     "eps inside the root"),
    (O.Adagrad(LR, initial_accumulator_value=0.1, eps=0),
     lambda: optax.adagrad(LR, eps=0.0, initial_accumulator_value=0.0),
     "initial accumulator"),
    (O.AdamW(LR), lambda: optax.adamw(LR), "weight decay 1e-4 vs 1e-2"),
    (O.Adam(LR, weight_decay=0.1), lambda: optax.adamw(LR, weight_decay=0.1),
     "decoupled decay where Adam couples it"),
    (O.AdamW(LR, weight_decay=0.1),
     lambda: optax.chain(optax.add_decayed_weights(0.1), optax.adam(LR)),
     "coupled decay where AdamW decouples it"),
    (O.SGD(LR, momentum=0.9, dampening=0.5), lambda: optax.sgd(LR, momentum=0.9),
     "no dampening in optax.sgd"),
    (O.SGD(LR, momentum=0.9, dampening=0.5),
     lambda: optax.chain(optax.scale(0.5), optax.sgd(LR, momentum=0.9)),
     "a damped first buffer: (1 - dampening) g instead of g"),
    (O.Adam(LR, amsgrad=True), lambda: optax.amsgrad(LR), "maximum of bias-corrected v"),
    (O.Adam(LR, amsgrad=True), lambda: optax.amsgrad(LR, bias_correction_nu=False),
     "maximum of raw v, not bias-corrected"),
    (O.Adam(LR), lambda: optax.adam(LR, eps_root=1e-8), "eps_root inside the root"),
]  # fmt: skip


@pytest.mark.parametrize(("opt", "make", "what"), PINS, ids=[p[2] for p in PINS])
def test_optax_defaults_fail_where_they_differ(opt, make, what):
    report = _optax_run(opt, make(), scale=1e-3)
    assert not report.ok, what
    assert "optax as given" not in report.errors
    assert report.first_failure("optax as given") is not None
    if "jax" not in report.skipped:  # the adapter's configuration passes on the same case
        assert report.first_failure("jax") is None


@pytest.mark.parametrize(
    ("opt", "make"),
    [
        (O.SGD(LR, momentum=0.9), lambda: optax.sgd(LR, momentum=0.9)),
        (O.SGD(LR, momentum=0.9, nesterov=True), lambda: optax.sgd(LR, 0.9, nesterov=True)),
        (O.Adam(LR), lambda: optax.adam(LR)),
        (O.RMSprop(LR), lambda: optax.rmsprop(LR, decay=0.99, eps_in_sqrt=False)),
    ],
    ids=["sgd-momentum", "nesterov", "adam", "rmsprop-configured"],
)
def test_optax_agrees_where_the_conventions_meet(opt, make):
    _optax_run(opt, make()).raise_for_mismatch()


def test_a_report_names_the_first_wrong_step():
    report = _optax_run(O.AdamW(LR), optax.adamw(LR))
    first = report.first_failure("optax as given")
    assert first is not None
    assert first.step == 1  # the decay acts from the first step
    assert "MISMATCH from step 1" in str(report)


# --- property suite: random networks × optimizers × hyperparameters × 1-20 steps ------------


@st.composite
def optimizers_(draw):
    lr = draw(st.sampled_from([1e-3, 1e-2, 0.1]))
    kind = draw(st.sampled_from(["sgd", "adam", "adamw", "rmsprop", "adagrad"]))
    decay = draw(st.sampled_from([0.0, 0.01]))
    if kind == "sgd":
        momentum = draw(st.sampled_from([0.0, 0.5, 0.9]))
        nesterov = momentum > 0 and draw(st.booleans())
        dampening = 0.0 if nesterov or not momentum else draw(st.sampled_from([0.0, 0.3]))
        return O.SGD(lr, momentum, dampening, nesterov, decay)
    if kind in ("adam", "adamw"):
        betas = draw(st.sampled_from([(0.9, 0.999), (0.5, 0.9)]))
        eps = draw(st.sampled_from([1e-8, 1e-6]))
        cls = O.AdamW if kind == "adamw" else O.Adam
        return cls(lr, betas, eps, decay, amsgrad=draw(st.booleans()))
    if kind == "rmsprop":
        return O.RMSprop(
            lr, draw(st.sampled_from([0.9, 0.99])), 1e-8,
            draw(st.sampled_from([0.0, 0.5])), draw(st.booleans()), decay,
        )  # fmt: skip
    return O.Adagrad(lr, draw(st.sampled_from([0.0, 1e-10])), 0.1, decay)


@st.composite
def training_cases(draw):
    depth = draw(st.integers(1, 3))
    sizes = tuple(draw(st.lists(st.integers(1, 5), min_size=depth + 1, max_size=depth + 1)))
    activation = draw(st.sampled_from(["tanh", "sigmoid", "relu", "softplus", "gelu"]))
    loss = draw(st.sampled_from(["half_sse", "mse"]))
    steps, batch = draw(st.integers(1, 20)), draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**16))
    net, params, batches = _problem(seed, steps, sizes, activation, loss, batch)
    return net, params, batches, draw(optimizers_())


@settings(max_examples=6, deadline=None)
@given(case=training_cases())
def test_property_reference_torch_and_jax_agree(case):
    net, params, batches, opt = case
    report = adapters.crosscheck_training(net, params, batches, opt)
    report.raise_for_mismatch()
    assert set(report.comparisons) | set(report.skipped) == {"torch", "jax"}
