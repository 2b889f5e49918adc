"""The cross-check report: its table, and its failure path on planted wrong backends."""

from __future__ import annotations

import dataclasses
import re
from types import SimpleNamespace

import numpy as np
import pytest

from crossgrad import adapters
from crossgrad.reference import Network, Params, backprop, forward, init_params

NET = Network((3, 4, 2), ("tanh", "identity"), "half_sse", "mean")
PARAMS = init_params(NET, seed=5)
X = np.linspace(-1.5, 1.5, 15).reshape(5, 3)
Y = np.linspace(-1, 1, 10).reshape(5, 2)


def _planted(name: str, grads) -> SimpleNamespace:
    """A backend whose forward values are right and whose gradients are ``grads(net, ...)``."""

    def run(net, params, x, y):
        right = backprop(net, params, x, y)
        return dataclasses.replace(right, grads=grads(net, params, x, y, right))

    return SimpleNamespace(name=name, backprop=run)


def _twice(net, params, x, y, right):
    return Params([2 * g for g in right.grads.weights], [2 * g for g in right.grads.biases])


def _no_hidden_derivative(net, params, x, y, right):
    # Backprop of NET with δ1 = δ2 W2: the ∘ tanh'(z1) left out.
    _, (x, a1, a2) = forward(net, params, x)
    delta2 = (a2 - y) / len(x)
    delta1 = delta2 @ params.weights[1]
    return Params([delta1.T @ x, delta2.T @ a1], [delta1.sum(0), delta2.sum(0)])


def test_report_of_agreeing_backends():
    report = adapters.crosscheck(NET, PARAMS, X, Y, backends=["torch", "jax"])
    assert report.ok
    report.raise_for_mismatch()  # returns quietly
    assert report.backends == ("torch", "jax")
    assert set(report.results) == {"reference", "torch", "jax"}
    names = [c.name for c in report.comparisons["torch"]]
    assert names == ["loss", "z1", "a1", "z2", "a2", "W1", "b1", "W2", "b2"]
    text = str(report)
    assert "all backends agree" in text
    header = ("backend", "quantity", "max abs err", "rel err (vs value)", "err / tolerance",
              "worst index")  # fmt: skip
    assert re.search("  +".join(re.escape(h) for h in header), text)
    assert len(re.findall(r"^(torch|jax) +W1 .* ok$", text, re.MULTILINE)) == 2
    assert report.max_err_over_tolerance("jax") <= 1
    assert 0 < report.max_rel_err("jax") < 1e-12  # float64: agreement to a few ulps


def test_default_backends_are_the_frameworks():
    assert adapters.crosscheck(NET, PARAMS, X, Y).backends == ("torch", "jax")


@pytest.mark.parametrize(
    ("planted", "wrong"),
    [(_twice, {"W1", "b1", "W2", "b2"}), (_no_hidden_derivative, {"W1", "b1"})],
    ids=["twice", "no_hidden_derivative"],
)
def test_wrong_gradients_are_reported(planted, wrong):
    adapters.crosscheck(NET, PARAMS, X, Y, backends=[_planted("honest", lambda *a: a[-1].grads)]
                        ).raise_for_mismatch()  # fmt: skip
    report = adapters.crosscheck(NET, PARAMS, X, Y, backends=["torch", _planted("bad", planted)])
    assert not report.ok
    assert all(c.ok for c in report.comparisons["torch"])
    assert {c.name for c in report.comparisons["bad"] if not c.ok} == wrong
    assert report.worst("bad").name in wrong
    with pytest.raises(AssertionError) as raised:
        report.raise_for_mismatch()
    message = str(raised.value)
    assert message == str(report)
    assert "BACKENDS DISAGREE" in message
    for name in wrong:
        assert re.search(rf"^bad +{name} .*MISMATCH$", message, re.MULTILINE)


def test_wrong_shape_and_dtype_are_reported():
    # Params would refuse these (shapes that do not chain, mixed dtypes); a user's own
    # gradient object with weights and biases need not.
    def transposed(net, params, x, y, right):
        return SimpleNamespace(
            weights=[g.T for g in right.grads.weights], biases=right.grads.biases
        )

    def float32(net, params, x, y, right):
        grads = right.grads
        return SimpleNamespace(weights=[g.astype(np.float32) for g in grads.weights],
                               biases=grads.biases)  # fmt: skip

    report = adapters.crosscheck(
        NET, PARAMS, X, Y, backends=[_planted("T", transposed), _planted("f32", float32)]
    )
    assert not report.ok
    assert "MISMATCH: shape (3, 4), expected (4, 3)" in str(report)
    assert "MISMATCH: dtype float32, expected float64" in str(report)


def test_a_failing_backend_is_reported_not_raised():
    def broken(net, params, x, y):
        raise RuntimeError("out of memory")

    report = adapters.crosscheck(
        NET, PARAMS, X, Y, backends=[SimpleNamespace(name="broken", backprop=broken), "torch"]
    )
    assert not report.ok
    assert report.errors == {"broken": "RuntimeError: out of memory"}
    assert report.comparisons["torch"]
    assert re.search(r"^broken +\(failed\) +RuntimeError: out of memory$", str(report), re.M)
    with pytest.raises(AssertionError, match="out of memory"):
        report.raise_for_mismatch()


def test_rtol_and_atol_override_the_model():
    report = adapters.crosscheck(NET, PARAMS, X, Y, backends=["torch"], rtol=0.0, atol=1.0)
    assert report.tolerances == {"torch": (0.0, 1.0)}
    assert report.ok
    # A tolerance far above the model's lets even twice the gradient through.
    loose = adapters.crosscheck(NET, PARAMS, X, Y, backends=[_planted("2x", _twice)], rtol=10.0)
    assert loose.ok


@pytest.mark.parametrize("argument", ["rtol", "atol"])
@pytest.mark.parametrize("value", [-1e-3, np.nan, np.inf])
def test_bad_tolerances(argument, value):
    with pytest.raises(ValueError, match=f"{argument} must be finite and non-negative"):
        adapters.crosscheck(NET, PARAMS, X, Y, backends=["torch"], **{argument: value})


def _random_cases(n: int, seed: int = 0):
    from crossgrad.benchmarks.crosscheck_throughput import random_case

    rng = np.random.default_rng(seed)
    return [random_case(rng, max_depth=3, max_width=6, max_batch=4) for _ in range(n)]


@pytest.mark.parametrize("chunk", [1, 3, 64])
def test_crosscheck_many_gives_crosschecks_reports(chunk):
    cases = _random_cases(7)
    cases[4] = (*cases[4][:2], cases[4][2][0], cases[4][3][0])  # one sample, given as vectors
    backends = ["torch", "jax", _planted("2x", _twice)]
    many = list(adapters.crosscheck_many(cases, backends, chunk=chunk))
    assert len(many) == len(cases)
    for case, got in zip(cases, many, strict=True):
        want = adapters.crosscheck(*case, backends=backends)
        assert str(got) == str(want)
        assert got.comparisons == want.comparisons
        for name, result in want.results.items():
            assert got.results[name].grads == result.grads
            assert got.results[name].activations[-1].shape == result.activations[-1].shape
        assert all(c.ok for c in (*got.comparisons["torch"], *got.comparisons["jax"]))
    assert sum(not r.ok for r in many) >= 5  # "2x" is caught wherever a gradient is not 0


def test_crosscheck_many_runs_each_backend_over_a_chunk_in_turn():
    calls = []

    def recorder(name):
        def run(net, params, x, y):
            calls.append((name, len(calls)))
            return backprop(net, params, x, y)

        return SimpleNamespace(name=name, backprop=run)

    cases = _random_cases(5)
    calls.clear()
    reports = adapters.crosscheck_many(cases, [recorder("A"), recorder("B")], chunk=2)
    assert all(r.ok for r in reports)
    assert [name for name, _ in calls] == list("AABBAABBAB")


def test_crosscheck_many_reports_a_failure_in_its_own_case():
    def fails_on_one_sample(net, params, x, y):
        if np.ndim(x) == 1:
            raise RuntimeError("no vectors here")
        return backprop(net, params, x, y)

    cases = _random_cases(3)
    cases[1] = (*cases[1][:2], cases[1][2][0], cases[1][3][0])
    picky = SimpleNamespace(name="picky", backprop=fails_on_one_sample)
    reports = list(adapters.crosscheck_many(cases, [picky, "torch"]))
    assert [r.ok for r in reports] == [True, False, True]
    assert reports[1].errors == {"picky": "RuntimeError: no vectors here"}
    assert reports[1].comparisons["torch"]


def test_crosscheck_many_names_the_bad_case_after_yielding_earlier_chunks():
    cases = _random_cases(4)
    net, params, x, y = cases[3]
    cases[3] = (net, params, x[:, :-1] if x.shape[1] > 1 else np.ones((1, 2)), y)
    reports = adapters.crosscheck_many(cases, ["torch"], chunk=2)
    assert [next(reports).ok, next(reports).ok] == [True, True]  # before case 3 is read
    with pytest.raises(ValueError, match=r"^cases\[3\]: x has \d+ features, the network's"):
        next(reports)


@pytest.mark.parametrize("case", [None, (NET, PARAMS, X)], ids=["None", "three items"])
def test_crosscheck_many_rejects_a_case_that_is_not_four_items(case):
    with pytest.raises(TypeError, match=r"^cases\[1\] must be a tuple \(net, params, x, y\)"):
        list(adapters.crosscheck_many([(NET, PARAMS, X, Y), case], ["torch"]))


@pytest.mark.parametrize("chunk", [0, -1, 2.5, True])
def test_crosscheck_many_rejects_a_bad_chunk(chunk):
    with pytest.raises(ValueError, match=r"^chunk must be a positive integer, got"):
        list(adapters.crosscheck_many([(NET, PARAMS, X, Y)], ["torch"], chunk=chunk))


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"backends": ["jx"]}, ValueError),
        ({"rtol": -1.0}, ValueError),
        ({"chunk": 0}, ValueError),
        ({"executor": "pool"}, TypeError),
    ],
)
def test_crosscheck_many_checks_its_arguments_at_the_call(kwargs, error):
    with pytest.raises(error):
        adapters.crosscheck_many([(NET, PARAMS, X, Y)], **kwargs)  # not iterated


def test_crosscheck_many_of_nothing_is_nothing():
    assert list(adapters.crosscheck_many([], ["torch"])) == []


@pytest.mark.parametrize(
    ("garbage", "error"),
    [
        (
            lambda r: (r.loss, r.grads.weights, r.grads.biases),
            "returned tuple, expected a Backprop",
        ),
        (lambda r: dataclasses.replace(r, loss="0.5"), "returned a loss of type str, expected a"),
        (lambda r: dataclasses.replace(r, grads=None), "returned grads of type NoneType, expec"),
        (lambda r: dataclasses.replace(r, activations=r.activations[1:]), "returned activations"),
        (lambda r: dataclasses.replace(r, preactivations=(["a", [1]], [2])), "do not compare"),
        (lambda r: None, "returned NoneType, expected a BackpropResult"),
    ],
    ids=["tuple", "string-loss", "no-grads", "short", "ragged", "none"],
)
def test_a_backend_returning_garbage_is_reported_not_raised(garbage, error):
    def mine(net, params, x, y):  # a plain function is a backend too
        return garbage(backprop(net, params, x, y))

    for run in (
        adapters.crosscheck,
        lambda *case, **kw: next(adapters.crosscheck_many([case], **kw)),
    ):
        report = run(NET, PARAMS, X, Y, backends=[mine, "torch"])
        assert not report.ok
        assert set(report.errors) == {"mine"}
        assert error in report.errors["mine"]
        assert all(c.ok for c in report.comparisons["torch"])
        assert re.search(r"^mine +\(failed\) +", str(report), re.MULTILINE)


def test_the_figures_of_a_failed_or_unknown_backend_are_a_clear_error():
    def mine(net, params, x, y):
        raise RuntimeError("boom")

    report = adapters.crosscheck(NET, PARAMS, X, Y, backends=[mine, "numpy"])
    assert report.max_rel_err("numpy") < 1e-12
    for figure in (report.worst, report.max_rel_err, report.max_err_over_tolerance):
        with pytest.raises(
            ValueError, match=r"backend 'mine' has no comparisons: it failed \(.*boom"
        ):
            figure("mine")
        with pytest.raises(
            ValueError, match=r"one of the backends compared \(mine, numpy\), got 'jx'"
        ):
            figure("jx")


def test_a_shape_mismatch_row_says_the_shapes():
    def transposed(net, params, x, y, right):
        return SimpleNamespace(
            weights=[g.T for g in right.grads.weights], biases=right.grads.biases
        )

    text = str(adapters.crosscheck(NET, PARAMS, X, Y, backends=[_planted("T", transposed)]))
    row = re.search(r"^T +W1 .*$", text, re.MULTILINE)
    assert row is not None
    assert "inf" not in row.group(0)
    assert row.group(0).split()[2:7] == ["-", "-", "-", "-", "MISMATCH:"]


def test_backends_are_used_through_their_declared_capabilities(monkeypatch):
    # torch declares many=True: a sweep gives it each chunk in one call, never one by one.
    torch_backend = adapters.get("torch")
    calls = []
    many = torch_backend.backprop_many_checked

    def recording(cases):
        calls.append(len(cases))
        return many(cases)

    def unused(*args):
        raise AssertionError("backprop_checked called although many=True is declared")

    monkeypatch.setattr(torch_backend, "backprop_many_checked", recording)
    monkeypatch.setattr(torch_backend, "backprop_checked", unused)
    reports = list(adapters.crosscheck_many(_random_cases(5), ["torch"], chunk=3))
    assert calls == [3, 2]
    assert all(r.ok for r in reports)


def test_crosscheck_many_starts_an_asynchronous_backend_on_the_whole_chunk_first(monkeypatch):
    # JAX computes on another core while the reference (and any other backend) works
    # through the chunk: every case of the chunk is started before the reference's first.
    from crossgrad.adapters import reference_backend

    jax_backend = adapters.get("jax")
    assert jax_backend.capabilities.asynchronous
    events = []
    start, reference = jax_backend.start_checked, reference_backend.backprop_checked

    def recording_start(net, params, batch):
        events.append("start")
        finish = start(net, params, batch)

        def recording_finish():
            events.append("finish")
            return finish()

        return recording_finish

    def recording_reference(net, params, batch):
        events.append("reference")
        return reference(net, params, batch)

    monkeypatch.setattr(jax_backend, "start_checked", recording_start)
    monkeypatch.setattr(reference_backend, "backprop_checked", recording_reference)
    cases = _random_cases(5)
    reports = list(adapters.crosscheck_many(cases, ["jax"], chunk=3))
    assert all(r.ok for r in reports)
    chunk = ["start"] * 3 + ["reference"] * 3 + ["finish"] * 3
    assert events == chunk + ["start"] * 2 + ["reference"] * 2 + ["finish"] * 2
    monkeypatch.undo()
    for case, report in zip(cases, reports, strict=True):
        assert report.comparisons == adapters.crosscheck(*case, backends=["jax"]).comparisons
