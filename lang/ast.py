"""Abstract syntax of .rasp2d, produced by `parser.py` and consumed by the elaborator.

Every node keeps its `Span` so that errors found much later (range analysis, lowering)
still point at the source text that caused them.
"""

from __future__ import annotations

from dataclasses import dataclass

from rasp2d.lang.errors import Span


@dataclass(frozen=True)
class Expr:
    span: Span


@dataclass(frozen=True)
class IntLit(Expr):
    value: int


@dataclass(frozen=True)
class StrLit(Expr):
    value: str


@dataclass(frozen=True)
class BoolLit(Expr):
    value: bool


@dataclass(frozen=True)
class Name(Expr):
    parts: tuple[str, ...]  # ("x",) or ("module", "x")

    @property
    def text(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True)
class Call(Expr):
    func: Name
    args: tuple[Expr, ...]
    kwargs: tuple[tuple[str, Expr], ...]


@dataclass(frozen=True)
class DictLit(Expr):
    entries: tuple[tuple[int | str, Expr], ...]


@dataclass(frozen=True)
class BinOp(Expr):
    op: str  # + - * // % == != < <= > >= and or
    left: Expr
    right: Expr


@dataclass(frozen=True)
class UnaryOp(Expr):
    op: str  # - not
    operand: Expr


@dataclass(frozen=True)
class IfExpr(Expr):
    cond: Expr
    then: Expr
    other: Expr


@dataclass(frozen=True)
class TupleLit(Expr):
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Index(Expr):
    base: Expr
    index: Expr  # must evaluate to a compile-time constant


@dataclass(frozen=True)
class TypeAnn:
    span: Span
    kind: str  # int | bool | token
    lo: int = 0
    hi: int = 0


@dataclass(frozen=True)
class Let:
    span: Span
    name: str
    ann: TypeAnn | None
    value: Expr


@dataclass(frozen=True)
class LetTuple:
    """let (a, b, c) = expr: destructures a tuple value."""

    span: Span
    names: tuple[str, ...]
    value: Expr


@dataclass(frozen=True)
class Def:
    span: Span
    name: str
    params: tuple[str, ...]
    body: tuple["Let | LetTuple", ...]
    result: Expr


@dataclass(frozen=True)
class Import:
    span: Span
    module: tuple[str, ...]
    alias: str


@dataclass(frozen=True)
class Vocab:
    span: Span
    symbols: tuple[str, ...]


@dataclass(frozen=True)
class VocabFile:
    """`vocab file "tokens.txt"`: one token per line, relative to the program's folder."""

    span: Span
    path: str


@dataclass(frozen=True)
class Setting:
    span: Span
    name: str
    value: int | str


@dataclass(frozen=True)
class Emit:
    span: Span
    value: Expr


Item = Vocab | VocabFile | Setting | Import | Def | Let | LetTuple | Emit


@dataclass(frozen=True)
class Module:
    path: str
    source: str
    items: tuple[Item, ...]
