"""`rasp2d run` in-process on a hand-built model: output, budget, logits, backend registry."""

from __future__ import annotations

import sys
import types

import pytest

from handbuilt_models import difference_model
from rasp2d.backends.torch_backend import TorchDecoder
from rasp2d.cli import run_cmd
from rasp2d.cli.main import main


@pytest.fixture()
def model_path(tmp_path):
    path = tmp_path / "diff.npz"
    difference_model(max_new_tokens=32).save(path)
    return str(path)


def run(capsys, *argv) -> tuple[int, str, str]:
    rc = main(["run", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_generates_until_the_stop_token(model_path, capsys):
    rc, out, err = run(capsys, model_path, "--input", "3 7", "--backend", "torch")
    assert rc == 0
    assert out == "4 3 1 2 1 1 0\n"
    assert "7 tokens generated after a 2-token prompt" in err and "stopped at '0'" in err
    assert "tok/s" in err and "backend torch" in err


def test_max_new_overrides_the_model_budget(model_path, capsys):
    rc, out, err = run(capsys, model_path, "--input", "3 7", "--backend", "torch", "--max-new", "3")
    assert (rc, out) == (0, "4 3 1\n") and "token budget of 3 reached" in err
    rc, out, err = run(capsys, model_path, "--input", "3 7", "--backend", "torch", "--max-new", "0")
    assert (rc, out) == (0, "\n") and "0 tokens generated" in err


def test_model_budget_applies_without_max_new(tmp_path, capsys):
    path = tmp_path / "short.npz"
    difference_model(max_new_tokens=2).save(path)
    rc, out, _ = run(capsys, str(path), "--input", "3 7", "--backend", "torch")
    assert (rc, out) == (0, "4 3\n")


def test_show_logits_prints_token_runner_up_and_margin(model_path, capsys):
    rc, out, err = run(capsys, model_path, "--input", "9 2", "--backend", "torch", "--show-logits")
    assert rc == 0 and out.split() == ["7", "5", "2", "3", "1", "2", "1", "1", "0"]
    rows = [line.split() for line in err.splitlines() if line.strip()[:1].isdigit()]
    assert len(rows) == 9
    step, position, token, logit, runner, runner_logit, margin = rows[0]
    # logits_t = -(t - 7)^2 + 49 for the first prediction
    assert (step, position, token, float(logit)) == ("0", "2", "'7'", 49.0)
    assert runner in ("'6'", "'8'") and float(runner_logit) == 48.0 and float(margin) == 1.0


def test_user_errors_are_named(model_path, capsys, tmp_path):
    rc, _, err = run(capsys, model_path, "--input", "3 x", "--backend", "torch")
    assert rc == 2 and "'x' is not in the model's vocabulary" in err and "0 1 2" in err
    rc, _, err = run(capsys, str(tmp_path / "nope.npz"), "--input", "3")
    assert rc == 2 and "not found" in err
    rc, _, err = run(capsys, model_path, "--input", "  ", "--backend", "torch")
    assert rc == 2 and "input is empty" in err


def test_missing_hull_runtime_is_a_clear_error(model_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "rasp2d.backends.hull_runtime", None)  # import fails
    assert run_cmd.default_backend() == "torch"
    rc, _, err = run(capsys, model_path, "--input", "3 7", "--backend", "brute")
    assert rc == 2 and "backend 'brute'" in err and "rasp2d.backends.hull_runtime" in err
    rc, out, err = run(capsys, model_path, "--input", "3 7")  # default falls back to torch
    assert rc == 0 and out == "4 3 1 2 1 1 0\n" and "backend torch" in err


def _fake_backend_module(monkeypatch, name: str, **attrs) -> None:
    module = types.ModuleType(name)
    for key, value in attrs.items():
        setattr(module, key, value)
    monkeypatch.setitem(sys.modules, name, module)


def test_hull_and_brute_get_their_cache_kind(model_path, capsys, monkeypatch):
    built = []

    class FakeHull(TorchDecoder):
        def __init__(self, model, cache):
            built.append(cache)
            super().__init__(model)

    _fake_backend_module(monkeypatch, "rasp2d.backends.hull_runtime", HullDecoder=FakeHull)
    assert run_cmd.default_backend() == "hull"
    for backend in ("hull", "brute"):
        rc, out, err = run(capsys, model_path, "--input", "3 7", "--backend", backend)
        assert rc == 0 and out == "4 3 1 2 1 1 0\n" and f"backend {backend}" in err
    assert built == ["hull", "brute"]


def test_reference_backend_is_built_from_the_model(model_path, capsys, monkeypatch):
    seen = []

    class FakeReference(TorchDecoder):
        @staticmethod
        def from_model(model):
            seen.append(model.vocab)
            return TorchDecoder(model)

    _fake_backend_module(monkeypatch, "rasp2d.backends.reference", ReferenceDecoder=FakeReference)
    rc, out, _ = run(capsys, model_path, "--input", "3 7", "--backend", "reference")
    assert rc == 0 and out == "4 3 1 2 1 1 0\n" and len(seen) == 1


def test_show_logits_refuses_a_backend_without_logits(model_path, capsys, monkeypatch):
    class Opaque:
        def __init__(self, model, cache):
            self.inner = TorchDecoder(model)

        def feed(self, token_id):
            return self.inner.feed(token_id)

    _fake_backend_module(monkeypatch, "rasp2d.backends.hull_runtime", HullDecoder=Opaque)
    rc, _, err = run(capsys, model_path, "--input", "3 7", "--backend", "hull", "--show-logits")
    assert rc == 2 and "--show-logits" in err and "'hull'" in err
