"""Autoregressive generation shared by every backend.

A backend only has to provide an incremental decoder: feed it one token id, get back the id
of the token the model predicts next.  The loop here (prompt, stop token, token budget) is
the same for the reference evaluator, torch, hull and brute runtimes, so their outputs can be
compared token for token.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol


class Decoder(Protocol):
    def feed(self, token_id: int) -> int:
        """Append ``token_id`` at the next position; return the argmax next-token id."""
        ...


@dataclass(frozen=True)
class Generated:
    prompt: tuple[int, ...]
    output: tuple[int, ...]
    stopped: bool  # True when the stop token was emitted, False when the budget ran out


def stream(decoder: Decoder, prompt: list[int], max_new_tokens: int,
           stop_id: int | None = None) -> Iterator[int]:
    """Yield generated token ids one by one (the stop token included, if reached)."""
    if not prompt:
        raise ValueError("the prompt must contain at least one token")
    nxt = -1
    for tok in prompt:
        nxt = decoder.feed(tok)
    for i in range(max_new_tokens):
        yield nxt
        if nxt == stop_id or i == max_new_tokens - 1:
            return
        nxt = decoder.feed(nxt)


def generate(decoder: Decoder, prompt: list[int], max_new_tokens: int,
             stop_id: int | None = None,
             on_token: Callable[[int], None] | None = None) -> Generated:
    out: list[int] = []
    for tok in stream(decoder, prompt, max_new_tokens, stop_id):
        out.append(tok)
        if on_token is not None:
            on_token(tok)
    return Generated(tuple(prompt), tuple(out), bool(out) and out[-1] == stop_id)
