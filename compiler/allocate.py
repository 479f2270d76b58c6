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


def check_allocation(low: Lowered, sch: Schedule, alloc: Allocation) -> None:
    """Raise if two values could ever be in one dimension at once (the allocator's invariant).

    A value holds its dimension from its write stage until the FFN that clears it (or the end);
    two slots sharing a dimension must have disjoint holding intervals, and the later one must
    be written after the earlier one's clear.
    """
    cleared = {c.slot: c.layer for c in alloc.clears}
    by_dim: dict[int, list[tuple[int, int, int]]] = {}
    for slot in low.slots:
        if slot.source == "dead":
            continue
        s = slot.id
        end = 2 * cleared[s] + 2 if s in cleared else 10 ** 9
        if s in cleared and cleared[s] * 2 + 1 < sch.last_read[s]:
            raise AssertionError(f"slot {s} ({slot.label}) cleared in layer {cleared[s]} before its last read")
        by_dim.setdefault(alloc.dim[s], []).append((sch.write_stage[s], end, s))
    for d, spans in by_dim.items():
        spans.sort()
        for (w1, e1, s1), (w2, e2, s2) in zip(spans, spans[1:]):
            if w2 <= e1:
                raise AssertionError(f"dimension {d}: slot {s2} ({low.slots[s2].label}) written at stage {w2} "
                                     f"while slot {s1} ({low.slots[s1].label}) holds it until stage {e1}")
