"""Give every slot a residual dimension, reusing dimensions of dead values.

The residual stream is additive, so a dimension can only take a new value after the old
one has been cancelled: a *clear* unit (relu(1) * -old) in an FFN sub-layer at or after the
old value's last read.  A slot therefore occupies its dimension from its write stage to the
output stage of that clearing FFN; the next occupant must be written strictly later.  With
intervals sorted by start, first-fit colouring uses the fewest dimensions (interval graphs).
"""

from __future__ import annotations

from dataclasses import dataclass

from rasp2d.compiler.primitives import Lowered
from rasp2d.compiler.schedule import Schedule


@dataclass(frozen=True)
class Clear:
    slot: int
    layer: int  # FFN layer whose units cancel the slot's dimension


@dataclass(frozen=True)
class Allocation:
    dim: tuple[int, ...]  # by slot id
    n_dims: int
    clears: tuple[Clear, ...]


def clear_layer(last_read: int) -> int:
    """The first FFN layer that reads at or after stage `last_read` (it reads stage 2l+1)."""
    return last_read // 2


def allocate(low: Lowered, sch: Schedule) -> Allocation:
    order = sorted((s.id for s in low.slots if s.source != "dead"), key=lambda s: (sch.write_stage[s], s))
    dim = [-1] * len(low.slots)
    occupant: list[int] = []  # per dimension: slot currently holding it
    busy_until: list[int] = []  # per dimension: last stage at which it is not yet clear
    clears: list[Clear] = []
    for s in order:
        w = sch.write_stage[s]
        chosen = -1
        for d, until in enumerate(busy_until):
            if until < w:
                chosen = d
                break
        if chosen < 0:
            occupant.append(-1)
            busy_until.append(0)
            chosen = len(occupant) - 1
        else:
            clears.append(Clear(occupant[chosen], clear_layer(sch.last_read[occupant[chosen]])))
        dim[s] = chosen
        occupant[chosen] = s
        r = sch.last_read[s]
        if r >= sch.final_stage:
            busy_until[chosen] = 10 ** 9
        else:
            busy_until[chosen] = 2 * clear_layer(r) + 2 if clear_layer(r) < sch.n_layers else 10 ** 9
    return Allocation(tuple(dim), len(occupant), tuple(clears))
