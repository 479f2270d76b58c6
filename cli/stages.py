"""Names for residual-stream stages: 0 = embedding, ``2l+1`` = attn{l}, ``2l+2`` = ffn{l}."""

from __future__ import annotations


def stage_name(stage: int) -> str:
    if stage == 0:
        return "embedding"
    layer, sub = divmod(stage - 1, 2)
    return f"{'attn' if sub == 0 else 'ffn'}{layer}"


def parse_stage(text: str, n_layers: int) -> int:
    """A stage given as a number or a name (``embedding``, ``attn3``, ``ffn0``)."""
    n_stages = 1 + 2 * n_layers
    names = {stage_name(s): s for s in range(n_stages)}
    stage = int(text) if text.strip().lstrip("-").isdigit() else names.get(text.strip())
    if stage is None or not 0 <= stage < n_stages:
        raise ValueError(f"stage {text!r} does not exist: this model has stages 0..{n_stages - 1} "
                         f"({', '.join(names)})")
    return stage
