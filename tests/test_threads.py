"""Torch on one intra-op thread while crossgrad runs a small case, the user's count restored."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crossgrad.adapters import _threads, torch_backend
from crossgrad.reference import Network, init_params
from crossgrad.reference.validation import check_inputs

SMALL_NET = Network((3, 5, 2), ("tanh", "identity"), "half_sse")
BIG_NET = Network((512, 512, 2), ("tanh", "identity"), "half_sse")


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def _batch(net, n):
    rng = np.random.default_rng(0)
    params = init_params(net, seed=0)
    x, y = rng.normal(size=(n, net.sizes[0])), rng.normal(size=(n, net.sizes[-1]))
    return params, check_inputs(net, params, x, y)


def _threads_seen_by_autograd(monkeypatch):
    seen = []
    grad = torch.autograd.grad

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return grad(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", spy)
    return seen


@pytest.mark.usefixtures("two_threads")
@pytest.mark.parametrize("many", [False, True], ids=["one", "many"])
def test_a_small_case_runs_on_one_thread_and_restores_the_count(monkeypatch, many):
    seen = _threads_seen_by_autograd(monkeypatch)
    params, batch = _batch(SMALL_NET, 4)
    if many:
        torch_backend.backprop_many_checked([(SMALL_NET, params, batch)] * 2)
    else:
        torch_backend.backprop_checked(SMALL_NET, params, batch)
    assert seen == [1]
    assert torch.get_num_threads() == 2


@pytest.mark.usefixtures("two_threads")
def test_a_large_case_keeps_the_users_threads(monkeypatch):
    seen = _threads_seen_by_autograd(monkeypatch)
    params, batch = _batch(BIG_NET, 8)
    assert _threads.work(BIG_NET, 8) > _threads.SMALL
    torch_backend.backprop_checked(BIG_NET, params, batch)
    assert seen == [2]


@pytest.mark.usefixtures("two_threads")
def test_the_count_is_restored_when_torch_raises(monkeypatch):
    def broken(*args, **kwargs):
        assert torch.get_num_threads() == 1
        raise RuntimeError("boom")

    monkeypatch.setattr(torch.autograd, "grad", broken)
    params, batch = _batch(SMALL_NET, 4)
    with pytest.raises(RuntimeError, match="boom"):
        torch_backend.backprop_checked(SMALL_NET, params, batch)
    assert torch.get_num_threads() == 2


def test_work_counts_multiply_adds():
    assert _threads.work(SMALL_NET, 4) == 4 * (3 * 5 + 5 * 2)
