"""The hull runtime against the torch backend: same tokens, same logits, same residuals."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from exact_models import exact_trace, random_exact_model
from handbuilt_models import difference_model
from rasp2d.backends.dense_forward import dense_forward
from rasp2d.backends.hull_runtime import HullDecoder
from rasp2d.backends.torch_backend import TorchDecoder, TorchTransformer

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def torch_stages(model, ids):
    with torch.no_grad():
        logits, res = TorchTransformer.from_compiled(model)(torch.tensor([ids]),
                                                             return_residuals=True)
    return logits[0].numpy(), np.stack([r[0].numpy() for r in res])


@FAST
@given(st.integers(0, 2**32 - 1), st.lists(st.integers(0, 5), min_size=1, max_size=12),
       st.sampled_from([(1, 6, 4), (2, 6, 4), (3, 8, 6)]))
def test_hull_decoder_equals_torch_forward_exactly(seed, ids, shape):
    model = random_exact_model(np.random.default_rng(seed), *shape, vocab_size=6, max_len=12)
    assume(exact_trace(model, dense_forward(model, ids)))
    logits, stages = torch_stages(model, ids)
    dec = HullDecoder(model, "hull", record=True)
    for i, tok in enumerate(ids):
        assert dec.feed(tok) == int(np.argmax(logits[i]))
        assert np.array_equal(dec.logits, logits[i])
        assert np.array_equal(dec.stages, stages[:, i])


def test_hull_and_torch_decoders_agree_on_a_long_trace():
    diff = difference_model()
    hull, ref = HullDecoder(diff, "hull"), TorchDecoder(diff)
    for tok in np.random.default_rng(2).integers(0, 10, size=400):
        assert hull.feed(int(tok)) == ref.feed(int(tok))
        assert np.array_equal(hull.logits, ref.last_logits.numpy())
