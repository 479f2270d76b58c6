"""One error type for everything a user can get wrong in a .rasp2d program.

Every error carries a source location so the CLI can print exactly one line,
``file:line:col: error: what is wrong (what to do)``, instead of a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


UNKNOWN = Span("<unknown>", 0, 0)


class Rasp2dError(Exception):
    """A user-facing error in a program (syntax, name, type/range, unsupported construct)."""

    def __init__(self, span: Span, message: str):
        super().__init__(f"{span}: error: {message}")
        self.span = span
        self.message = message
