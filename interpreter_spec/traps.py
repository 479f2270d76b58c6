"""Ways a run can stop early: WebAssembly traps (spec-named) and the machine's own limits."""

from __future__ import annotations

INTEGER_DIVIDE_BY_ZERO = "integer divide by zero"
INTEGER_OVERFLOW = "integer overflow"
OUT_OF_BOUNDS_MEMORY = "out of bounds memory access"
OUT_OF_BOUNDS_TABLE = "out of bounds table access"
UNREACHABLE = "unreachable"
UNDEFINED_ELEMENT = "undefined element"
UNINITIALIZED_ELEMENT = "uninitialized element"
INDIRECT_CALL_TYPE_MISMATCH = "indirect call type mismatch"
CALL_STACK_EXHAUSTED = "call stack exhausted"

TRAP_MESSAGES = (
    INTEGER_DIVIDE_BY_ZERO, INTEGER_OVERFLOW, OUT_OF_BOUNDS_MEMORY, OUT_OF_BOUNDS_TABLE,
    UNREACHABLE, UNDEFINED_ELEMENT, UNINITIALIZED_ELEMENT, INDIRECT_CALL_TYPE_MISMATCH,
    CALL_STACK_EXHAUSTED,
)


class Trap(Exception):
    """A WebAssembly trap. `message` is the spec's name for it (one of TRAP_MESSAGES); `pc` and
    `func` say where it happened once the machine has caught it (None during instantiation)."""

    def __init__(self, message: str, pc: int | None = None, func: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.pc = pc
        self.func = func

    def __str__(self) -> str:
        if self.pc is None:
            return self.message
        return f"{self.message} (pc {self.pc}, in {self.func})"


class StepLimitExceeded(Exception):
    """The run executed more instructions than the caller allowed (not a trap)."""


class UnsupportedAtRuntime(Exception):
    """Execution reached a function the machine cannot run (a lenient decode's stub, or a host
    import that was not provided)."""
