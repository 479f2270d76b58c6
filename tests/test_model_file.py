"""Model files: format 2 (non-zeros only) round-trips every array bit for bit, format 1 files
still load, the content digest names the weights, and the sparse form of a loaded model is
cached by that digest."""

from __future__ import annotations

import json
from dataclasses import fields, replace

import numpy as np
import pytest
from handbuilt_models import difference_model, random_integer_model
from hypothesis import given, settings
from hypothesis import strategies as st

from rasp2d.backends.model_file import WEIGHT_ARRAYS, CompiledModel
from rasp2d.backends.sparse_program import SparseProgram, build_sparse_program, sparse_program


def _assert_same_weights(a: CompiledModel, b: CompiledModel) -> None:
    for name in WEIGHT_ARRAYS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        assert np.array_equal(x, y), name
        assert np.array_equal(np.signbit(x), np.signbit(y)), name  # -0.0 survives too
    assert a.vocab == b.vocab and a.generation == b.generation and a.manifest == b.manifest


def _with_special_values(model: CompiledModel, rng: np.random.Generator) -> CompiledModel:
    """Weights a sparse store could get wrong: a huge, a tiny and a non-integer value."""
    W = model.W_gate.copy()
    flat = W.reshape(-1)
    spots = rng.choice(flat.size, size=3, replace=False)
    flat[spots] = (2.0 ** 60, 2.0 ** -40, -1.0 / 3.0)
    return replace(model, W_gate=W)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), layers=st.integers(1, 3), half=st.integers(2, 6))
def test_save_load_round_trips_every_array(tmp_path_factory, seed, layers, half):
    rng = np.random.default_rng(seed)
    model = _with_special_values(random_integer_model(rng, n_layers=layers, d_model=2 * half), rng)
    path = tmp_path_factory.mktemp("m") / "model.npz"
    model.save(path)
    back = CompiledModel.load(path)
    _assert_same_weights(model, back)
    # the digest is a function of the content: saving the loaded model again keeps it
    back.save(path)
    assert CompiledModel.load(path).digest == back.digest


def test_digest_changes_with_any_weight(tmp_path):
    model = difference_model()
    model.save(tmp_path / "a.npz")
    W_out = model.W_out.copy()
    W_out[0, 7, 0] += 1.0
    replace(model, W_out=W_out).save(tmp_path / "b.npz")
    replace(model, vocab=model.vocab[::-1]).save(tmp_path / "c.npz")
    digests = {CompiledModel.load(tmp_path / f"{n}.npz").digest for n in "abc"}
    assert len(digests) == 3 and None not in digests


def test_format_1_files_still_load(tmp_path):
    """A dense (format 1) file, as rasp2d wrote it before format 2: same model, same digest."""
    model = difference_model()
    path1, path2 = tmp_path / "dense.npz", tmp_path / "sparse.npz"
    meta = {"format": 1, "vocab": list(model.vocab),
            "generation": {"prompt_end": model.generation.prompt_end,
                           "stop": model.generation.stop,
                           "max_new_tokens": model.generation.max_new_tokens}}
    with open(path1, "wb") as fh:
        np.savez_compressed(fh, **{n: getattr(model, n) for n in WEIGHT_ARRAYS},
                            meta=np.array(json.dumps(meta)),
                            manifest=np.array(model.manifest.to_json()))
    model.save(path2)
    old, new = CompiledModel.load(path1), CompiledModel.load(path2)
    _assert_same_weights(model, old)
    assert old.digest == new.digest
    from rasp2d.backends.model_file import file_digest
    assert file_digest(path1) is None and file_digest(path2) == new.digest  # (None: load it)


def test_unknown_format_is_refused_with_what_to_do(tmp_path):
    path = tmp_path / "future.npz"
    np.savez(path, meta=np.array(json.dumps({"format": 99, "vocab": [], "generation": {}})))
    with pytest.raises(ValueError, match=r"format 99.*recompile"):
        CompiledModel.load(path)


def _same_program(a: SparseProgram, b: SparseProgram) -> None:
    for f in fields(SparseProgram):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and np.array_equal(x, y), f.name
    for f in fields(type(a.ffn)):
        x, y = getattr(a.ffn, f.name), getattr(b.ffn, f.name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and np.array_equal(x, y), f.name


def test_sparse_program_of_a_loaded_model_is_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("RASP2D_CACHE_DIR", str(tmp_path / "cache"))
    difference_model().save(tmp_path / "m.npz")
    model = CompiledModel.load(tmp_path / "m.npz")
    fresh = build_sparse_program(model)
    first = sparse_program(model)
    entries = list((tmp_path / "cache").glob("sparse-*.pkl"))
    assert len(entries) == 1 and entries[0].name.startswith(f"sparse-{model.digest[:20]}-")
    second = sparse_program(model)  # from the file
    assert second is not first
    _same_program(fresh, first)
    _same_program(fresh, second)
    # an unreadable entry is rebuilt, not trusted
    entries[0].write_bytes(b"not a pickle")
    _same_program(fresh, sparse_program(model))
    # a model built in memory has no digest and is never cached
    assert difference_model().digest is None
    sparse_program(difference_model())
    assert len(list((tmp_path / "cache").glob("sparse-*.pkl"))) == 1


def test_sparse_program_of_a_file_skips_the_dense_weights_when_cached(tmp_path, monkeypatch):
    from rasp2d.backends import sparse_program as sp_module
    from rasp2d.backends.model_file import file_digest
    from rasp2d.backends.sparse_program import sparse_program_of_file

    monkeypatch.setenv("RASP2D_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "m.npz"
    difference_model().save(path)
    assert file_digest(path) == CompiledModel.load(path).digest
    fresh = build_sparse_program(CompiledModel.load(path))
    _same_program(fresh, sparse_program_of_file(path))  # a miss: loads, builds, caches

    def no_dense_load(p):
        raise AssertionError("the dense weights were loaded")
    monkeypatch.setattr(sp_module.CompiledModel, "load", staticmethod(no_dense_load))
    _same_program(fresh, sparse_program_of_file(path))  # a hit: from the digest alone
