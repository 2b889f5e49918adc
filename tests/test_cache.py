"""The cache of compiled JAX executables: where it lives, that a new process loads instead of
compiling, that a bad entry is compiled anew, and that the user's JAX settings stay theirs."""

from __future__ import annotations

import concurrent.futures

import numpy as np
import pytest

from crossgrad.adapters import _jax_cache
from crossgrad.cli import main
from crossgrad.reference import Network, backprop, init_params

jax = pytest.importorskip("jax")
from crossgrad.adapters import jax_backend  # noqa: E402  (needs jax)

NET = Network((3, 4, 2), ("tanh", "identity"), "half_sse")
PARAMS = init_params(NET, seed=1)
X = np.linspace(-1, 1, 15).reshape(5, 3)
Y = np.linspace(0, 1, 10).reshape(5, 2)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache directory and a JAX backend that has loaded nothing yet."""
    monkeypatch.setenv(_jax_cache.ENV, str(tmp_path))
    monkeypatch.setattr(jax_backend, "_BUCKETS", _fresh())
    return tmp_path / "jax"


def _fresh() -> _jax_cache.Executables:
    return _jax_cache.Executables(jax_backend._padded_value_and_grad, jax_backend.COMPILER_OPTIONS)


def _grads(result):
    return [*result.grads.weights, *result.grads.biases]


def test_the_directory_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(_jax_cache.ENV, str(tmp_path))
    assert _jax_cache.cache_dir() == tmp_path / "jax"
    monkeypatch.setenv(_jax_cache.ENV, "off")
    assert _jax_cache.cache_dir() is None
    monkeypatch.delenv(_jax_cache.ENV)
    assert _jax_cache.cache_dir().parts[-2:] == ("crossgrad", "jax")


def test_a_new_process_loads_the_executable_instead_of_compiling(cache, monkeypatch):
    first = jax_backend.backprop(NET, PARAMS, X, Y)
    assert len(_jax_cache.entries(cache)) == 1

    def no_compiling(*args):
        raise AssertionError("compiled although the executable is cached")

    later = _fresh()  # what a new process starts with
    monkeypatch.setattr(later, "_compile", no_compiling)
    monkeypatch.setattr(jax_backend, "_BUCKETS", later)
    again = jax_backend.backprop(NET, PARAMS, X, Y)
    assert again.loss == first.loss
    for g, h in zip(_grads(again), _grads(first), strict=True):
        np.testing.assert_array_equal(g, h)
    reference = backprop(NET, PARAMS, X, Y)
    for g, r in zip(_grads(again), _grads(reference), strict=True):
        np.testing.assert_allclose(g, r, rtol=1e-12, atol=1e-15)


def test_a_corrupt_entry_is_compiled_again(cache, monkeypatch):
    jax_backend.backprop(NET, PARAMS, X, Y)
    (entry,) = _jax_cache.entries(cache)
    entry.write_bytes(b"not an executable")
    monkeypatch.setattr(jax_backend, "_BUCKETS", _fresh())
    result = jax_backend.backprop(NET, PARAMS, X, Y)
    np.testing.assert_allclose(result.loss, backprop(NET, PARAMS, X, Y).loss, rtol=1e-13)
    assert entry.read_bytes() != b"not an executable"


def test_off_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv(_jax_cache.ENV, "off")
    monkeypatch.setattr(jax_backend, "_BUCKETS", _fresh())
    jax_backend.backprop(NET, PARAMS, X, Y)
    assert not any(tmp_path.iterdir())


def test_the_users_jax_configuration_is_unchanged(cache):
    names = (
        "jax_compilation_cache_dir",
        "jax_enable_compilation_cache",
        "jax_persistent_cache_min_compile_time_secs",
        "jax_persistent_cache_min_entry_size_bytes",
        "jax_enable_x64",
    )
    before = {name: getattr(jax.config, name) for name in names}
    jax_backend.backprop(NET, PARAMS, X, Y)
    assert {name: getattr(jax.config, name) for name in names} == before


def test_cli_cache_info_and_clear(cache, capsys):
    jax_backend.backprop(NET, PARAMS, X, Y)
    assert main(["cache", "info"]) == 0
    out = capsys.readouterr().out
    assert f"cache: {cache} (from CROSSGRAD_CACHE_DIR)" in out
    assert "compiled JAX executables: 1 (" in out
    assert main(["cache", "clear"]) == 0
    assert "removed 1 file (" in capsys.readouterr().out
    assert _jax_cache.entries(cache) == []
    assert main(["cache", "info"]) == 0
    assert "compiled JAX executables: 0 (0 B)" in capsys.readouterr().out


def test_cli_cache_off(monkeypatch, capsys):
    monkeypatch.setenv(_jax_cache.ENV, "off")
    assert main(["cache", "clear"]) == 0
    assert capsys.readouterr().out == "cache: off (CROSSGRAD_CACHE_DIR=off)\n"


def test_a_forked_child_compiles_with_its_own_thread(cache, monkeypatch):
    buckets = jax_backend._BUCKETS
    monkeypatch.setattr(buckets, "_pid", -1)  # as the pool a forked child inherits
    stale = concurrent.futures.ThreadPoolExecutor(1)
    stale.shutdown()
    monkeypatch.setattr(buckets, "_pool", stale)  # a pool that can no longer run anything
    result = jax_backend.backprop(NET, PARAMS, X, Y)
    np.testing.assert_allclose(result.loss, backprop(NET, PARAMS, X, Y).loss, rtol=1e-13)
    assert buckets._pool is not stale


def test_prepare_starts_the_bucket_a_case_then_uses(cache, monkeypatch):
    buckets = jax_backend._BUCKETS
    jax_backend.prepare(NET.sizes, len(X), ["float64"])  # returns at once
    (future,) = buckets._compiling.values()
    future.result()  # compiled in the background thread
    assert len(_jax_cache.entries(cache)) == 1

    def no_compiling(*args):
        raise AssertionError("compiled although prepare had")

    monkeypatch.setattr(buckets, "_compile", no_compiling)
    result = jax_backend.backprop(NET, PARAMS, X, Y)
    np.testing.assert_allclose(result.loss, backprop(NET, PARAMS, X, Y).loss, rtol=1e-13)
    jax_backend.prepare(NET.sizes, len(X), ["float64"])  # loaded already: nothing to start
    assert not buckets._compiling


def test_cli_cache_info_of_a_blank_variable_says_the_default(monkeypatch, capsys):
    monkeypatch.setenv(_jax_cache.ENV, "  ")  # blank: cache_dir() takes the default folder
    assert main(["cache", "info"]) == 0
    assert (
        capsys.readouterr().out.splitlines()[0] == f"cache: {_jax_cache.cache_dir()} (the default)"
    )
