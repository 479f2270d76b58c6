"""The machine's primitives, between lowering and scheduling.

After lowering, a program is a set of *slots* (values that occupy a residual dimension), and
the operations that write them: 2D attention heads and FFN blocks made of ReGLU units.
Everything else is affine and costs nothing: a `Lin` is an integer combination of slots
plus a constant (the constant reads the always-one slot), and weight matrices apply it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SlotSource = Literal["one", "pos", "pos_sq", "token", "head", "ffn", "dead"]
ONE = 0  # slot id of the constant-one feature


@dataclass(frozen=True)
class Slot:
    id: int
    label: str
    source: SlotSource
    lo: int
    hi: int
    token_values: tuple[int, ...] | None = None  # token slots: value for each vocabulary id
    exact: bool = True  # False for internal float intermediates (means) consumed only by snapping


@dataclass(frozen=True)
class Lin:
    """sum(coef * slot) + const; coefficients are integers so results stay exact."""

    terms: tuple[tuple[int, int], ...] = ()
    const: int = 0

    @staticmethod
    def of(slot: int, coef: int = 1) -> "Lin":
        return Lin(((slot, coef),), 0) if coef else Lin()

    def __add__(self, other: "Lin | int") -> "Lin":
        if isinstance(other, int):
            return Lin(self.terms, self.const + other)
        acc = dict(self.terms)
        for s, c in other.terms:
            acc[s] = acc.get(s, 0) + c
        return Lin(tuple(sorted((s, c) for s, c in acc.items() if c)), self.const + other.const)

    def __sub__(self, other: "Lin | int") -> "Lin":
        return self + (other * -1 if isinstance(other, Lin) else -other)

    def __mul__(self, k: int) -> "Lin":
        if k == 0:
            return Lin()
        return Lin(tuple((s, c * k) for s, c in self.terms), self.const * k)

    def slots(self) -> set[int]:
        """Slots read, including the one-slot when there is a constant."""
        out = {s for s, _ in self.terms}
        if self.const:
            out.add(ONE)
        return out

    @property
    def is_const(self) -> bool:
        return not self.terms


@dataclass(frozen=True)
class Unit:
    """One ReGLU unit: coef * relu(gate) * value, added to its block's output slot."""

    gate: Lin
    value: Lin
    coef: int


@dataclass(frozen=True)
class FfnBlock:
    id: int
    label: str
    units: tuple[Unit, ...]
    output: int

    def inputs(self) -> set[int]:
        out: set[int] = set()
        for u in self.units:
            out |= u.gate.slots() | u.value.slots()
        return out


@dataclass(frozen=True)
class Head:
    id: int
    label: str
    q: tuple[Lin, Lin]
    k: tuple[Lin, Lin]
    v: tuple[Lin, ...]  # one or two value channels
    tie: Literal["latest", "average"]
    outputs: tuple[int, ...]  # one slot per value channel

    def inputs(self) -> set[int]:
        out: set[int] = set()
        for lin in (*self.q, *self.k, *self.v):
            out |= lin.slots()
        return out


@dataclass(frozen=True)
class Lowered:
    slots: tuple[Slot, ...]
    heads: tuple[Head, ...]
    ffns: tuple[FfnBlock, ...]
    output: Lin
    vocab: tuple[str, ...]
