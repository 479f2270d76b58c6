"""The torch backend against an independent, loop-by-loop NumPy reading of the machine semantics."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from handbuilt_models import (
    LAST_POS, MEAN_POS, MEAN_TOK, PREV, difference_model, integer_dims, random_integer_model,
)
from rasp2d.backends.generate import generate
from rasp2d.backends.model_file import LATEST, CompiledModel
from rasp2d.backends.torch_backend import (
    TorchDecoder, TorchTransformer, check_softmax, export, load_exported,
)

SETTINGS = settings(max_examples=40, deadline=None)
digits = st.lists(st.integers(0, 9), min_size=1, max_size=14)


def numpy_reference(m: CompiledModel, ids: list[int]) -> tuple[np.ndarray, list[np.ndarray]]:
    """The model_file docstring, written as plainly as possible: loops, Python max, exact ties."""
    n, L, H = len(ids), m.n_layers, m.n_heads
    x = np.array([m.embed[t] + (p * m.pos_embed[0] + p * p * m.pos_embed[1])
                  for p, t in enumerate(ids)], dtype=np.float64)
    stages = [x.copy()]
    for l in range(L):
        update = np.zeros_like(x)
        for i in range(n):
            for h in range(H):
                q = m.W_q[l, h] @ x[i]
                keys = [m.W_k[l, h] @ x[j] for j in range(i + 1)]
                scores = [q[0] * k[0] + q[1] * k[1] for k in keys]
                best = max(scores)
                winners = [j for j, s in enumerate(scores) if s == best]
                values = [m.W_v[l, h] @ x[j] for j in winners]
                o = values[-1] if m.tie[l, h] == LATEST else sum(values) / len(values)
                update[i] += m.W_o[l, :, h, :] @ o
        x = x + update
        stages.append(x.copy())
        hidden = np.maximum(x @ m.W_gate[l].T, 0.0) * (x @ m.W_val[l].T)
        x = x + hidden @ m.W_out[l].T
        stages.append(x.copy())
    return x @ m.unembed.T, stages


def torch_forward(net: TorchTransformer, ids: list[int], **kw):
    with torch.no_grad():
        logits, res = net(torch.tensor([ids]), return_residuals=True, **kw)
    return logits[0].numpy(), [r[0].numpy() for r in res]


DIFF = difference_model()
DIFF_NET = TorchTransformer.from_compiled(DIFF)


@SETTINGS
@given(digits)
def test_difference_model_is_exactly_the_reference(ids):
    ref_logits, ref_stages = numpy_reference(DIFF, ids)
    logits, stages = torch_forward(DIFF_NET, ids)
    assert len(stages) == 1 + 2 * DIFF.n_layers
    for s, (a, b) in enumerate(zip(stages, ref_stages)):
        assert np.array_equal(a, b), f"stage {s} differs"
    assert np.array_equal(logits, ref_logits)


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.lists(st.integers(0, 4), min_size=1, max_size=12),
       st.sampled_from([(1, 6, 3), (2, 8, 4), (3, 6, 0)]))
def test_random_integer_models_match_the_reference(seed, ids, shape):
    L, d, F = shape
    m = random_integer_model(np.random.default_rng(seed), n_layers=L, d_model=d, d_ffn=F)
    ref_logits, ref_stages = numpy_reference(m, ids)
    logits, stages = torch_forward(TorchTransformer.from_compiled(m), ids)
    exact = integer_dims(m)
    for a, b in zip(stages, ref_stages):
        assert np.array_equal(a[:, exact], b[:, exact])  # integer dims: bit for bit
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-9)  # averages: rounding only
    np.testing.assert_allclose(logits, ref_logits, rtol=1e-12, atol=1e-9)


def test_latest_and_average_ties_on_a_known_input():
    # tokens 5 2 5 5 2: at position 4 the previous token is 5, held at positions 0, 2, 3.
    _, stages = torch_forward(DIFF_NET, [5, 2, 5, 5, 2])
    after_l0_attn, after_l1_attn = stages[1][4], stages[3][4]
    assert after_l0_attn[PREV] == 5.0
    assert after_l0_attn[MEAN_TOK] == 19 / 5
    assert after_l1_attn[LAST_POS] == 3.0  # latest maximiser
    assert after_l1_attn[MEAN_POS] == (0 + 2 + 3) / 3  # mean of all maximisers
    # position 0: the only key is itself for every head
    assert stages[3][0][LAST_POS] == 0.0 and stages[3][0][MEAN_POS] == 0.0


def test_tie_rule_is_per_head():
    flipped = difference_model()
    flipped.tie[1, 0], flipped.tie[1, 1] = flipped.tie[1, 1], flipped.tie[1, 0]
    _, stages = torch_forward(TorchTransformer.from_compiled(flipped), [5, 2, 5, 5, 2])
    assert stages[3][4][LAST_POS] == 5 / 3 and stages[3][4][MEAN_POS] == 3.0


def _decode_all(decoder: TorchDecoder, ids: list[int]) -> tuple[list[int], np.ndarray]:
    preds, rows = [], []
    for t in ids:
        preds.append(decoder.feed(t))
        rows.append(decoder.last_logits.numpy().copy())
    return preds, np.array(rows)


@SETTINGS
@given(st.lists(st.integers(0, 9), min_size=1, max_size=40))
def test_incremental_decoder_equals_full_forward(ids):
    logits, _ = torch_forward(DIFF_NET, ids)
    preds, rows = _decode_all(TorchDecoder(DIFF_NET), ids)
    assert preds == logits.argmax(-1).tolist()
    assert np.array_equal(rows, logits)


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.lists(st.integers(0, 4), min_size=1, max_size=20))
def test_incremental_decoder_on_random_models(seed, ids):
    m = random_integer_model(np.random.default_rng(seed))
    net = TorchTransformer.from_compiled(m)
    logits, _ = torch_forward(net, ids)
    preds, rows = _decode_all(TorchDecoder(m), ids)
    # these random models average non-integer values (x/7 ...) and later layers multiply them,
    # so the cached and full forwards round differently by a few thousand ulps: compare up to
    # that, and compare the argmax where it is well defined
    np.testing.assert_allclose(rows, logits, rtol=1e-9, atol=1e-9)
    top2 = np.sort(logits, axis=-1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-6  # argmax well defined despite rounding
    assert np.array_equal(np.array(preds)[clear], logits.argmax(-1)[clear])


def test_kv_cache_grows_past_its_initial_capacity():
    ids = [int(x) for x in np.random.default_rng(1).integers(0, 10, size=200)]
    logits, _ = torch_forward(DIFF_NET, ids)
    preds, rows = _decode_all(TorchDecoder(DIFF), ids)
    assert preds == logits.argmax(-1).tolist() and np.array_equal(rows, logits)


def test_generation_through_the_shared_loop():
    out = generate(TorchDecoder(DIFF), [3, 7], max_new_tokens=32, stop_id=DIFF.token_id("0"))
    assert [DIFF.vocab[t] for t in out.output] == "4 3 1 2 1 1 0".split() and out.stopped


def test_batched_forward_equals_single_sequences():
    a, b = [3, 1, 4, 1, 5, 9], [2, 7, 1, 8, 2, 8]
    with torch.no_grad():
        both = DIFF_NET(torch.tensor([a, b]))
    assert np.array_equal(both[0].numpy(), torch_forward(DIFF_NET, a)[0])
    assert np.array_equal(both[1].numpy(), torch_forward(DIFF_NET, b)[0])


def test_softmax_converges_to_hardmax_as_temperature_drops():
    ids = [3, 7, 4, 3, 1, 2, 1, 1, 7, 7, 3, 9]
    checks = [check_softmax(DIFF_NET, ids, t) for t in (10.0, 1.0, 1e-2, 1e-4, 1e-7)]
    assert not checks[0].tokens_agree and checks[0].max_abs_deviation > 0.5
    assert checks[0].first_disagreement is not None
    coldest = checks[-1]
    assert coldest.tokens_agree and coldest.first_disagreement is None
    assert coldest.max_abs_deviation < 1e-9 and coldest.logit_deviation < 1e-9
    assert len(coldest.stage_deviation) == 1 + 2 * DIFF.n_layers
    assert coldest.stage_deviation[0] == 0.0  # the embedding has no attention in it
    devs = [c.max_abs_deviation for c in checks]
    assert devs[-1] < devs[2] < devs[0]


def test_softmax_latest_needs_the_recency_bias():
    # without the bonus, tied `latest` maximisers are averaged however cold the softmax is
    ids = [5, 2, 5, 5, 2]
    no_bias = TorchTransformer.from_compiled(DIFF, latest_bias=0.0)
    assert check_softmax(no_bias, ids, 1e-7).stage_deviation[3] == pytest.approx(3 - 5 / 3)
    assert check_softmax(DIFF_NET, ids, 1e-7).stage_deviation[3] < 1e-12


def test_softmax_mode_is_differentiable():
    net = TorchTransformer.from_compiled(DIFF, attention="softmax", temperature=0.5)
    logits = net(torch.tensor([[3, 7, 4, 3, 1]]))
    loss = torch.nn.functional.cross_entropy(logits[0], torch.tensor([7, 4, 3, 1, 2]))
    loss.backward()
    for block in net.layers:
        grad = block.attn.in_proj_weight.grad
        assert grad is not None and torch.isfinite(grad).all()
    assert net.layers[0].attn.in_proj_weight.grad.abs().sum() > 0


def test_attention_weights_load_into_nn_multihead_attention():
    """Same parameter names and layout: softmax at T = sqrt(head_dim) *is* nn.MultiheadAttention."""
    net = TorchTransformer.from_compiled(DIFF, latest_bias=0.0)
    x = torch.randn(2, 9, DIFF.d_model, dtype=torch.float64)
    causal = torch.triu(torch.ones(9, 9, dtype=torch.bool), diagonal=1)
    for block in net.layers:
        mha = torch.nn.MultiheadAttention(DIFF.d_model, DIFF.n_heads, bias=False,
                                          batch_first=True, dtype=torch.float64)
        state = {k: v for k, v in block.attn.state_dict().items() if k != "latest"}
        mha.load_state_dict(state, strict=True)
        with torch.no_grad():
            ours = block.attn(x, "softmax", math.sqrt(2.0), 0.0)
            theirs, _ = mha(x, x, x, attn_mask=causal, need_weights=False)
        torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)


def test_export_runs_in_plain_pytorch(tmp_path):
    weights = tmp_path / "diff.pt"
    loader = export(DIFF, weights)
    assert loader == tmp_path / "diff_loader.py" and loader.exists()
    spec = importlib.util.spec_from_file_location("exported_diff_loader", loader)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    exported = module.load_exported(weights)
    ids = [3, 7, 4, 3, 1, 2]
    with torch.no_grad():
        assert torch.equal(exported.net(torch.tensor([ids])), DIFF_NET(torch.tensor([ids])))
    assert exported.generation == {"prompt_end": None, "stop": "0", "max_new_tokens": 32}
    assert load_exported(weights).net.vocab == DIFF.vocab
    # The loader as a script, with rasp2d made unimportable: it needs nothing but torch.
    script = ("import runpy, sys; sys.modules['rasp2d'] = None; "
              f"sys.argv = [{str(loader)!r}, {str(weights)!r}, '3', '7']; "
              f"runpy.run_path({str(loader)!r}, run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == "4 3 1 2 1 1 0".split()


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="attention mode"):
        TorchTransformer.from_compiled(DIFF, attention="argmax")
    with pytest.raises(ValueError, match="temperature"):
        DIFF_NET(torch.tensor([[1, 2]]), attention="softmax", temperature=0.0)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        TorchDecoder(DIFF_NET).feed(10)
    with pytest.raises(ValueError, match=r"\[batch, n\]"):
        DIFF_NET(torch.tensor([1, 2]))


SOFT_NETS = {t: TorchTransformer.from_compiled(DIFF, attention="softmax", temperature=t)
             for t in (0.3, 1.0, 5.0)}


@SETTINGS
@given(st.lists(st.integers(0, 9), min_size=1, max_size=20), st.sampled_from(sorted(SOFT_NETS)))
def test_incremental_decoder_follows_the_softmax_mode(ids, temperature):
    net = SOFT_NETS[temperature]
    logits, _ = torch_forward(net, ids)
    _, rows = _decode_all(TorchDecoder(net), ids)
    np.testing.assert_allclose(rows, logits, rtol=1e-12, atol=1e-10)
