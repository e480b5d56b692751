"""Storage inside one processing element: the registers a PE keeps operands in.

`pe:` in an array description gives, per operand, how many words one PE holds and how wide a
word is (at least the operand's width: the accumulator width for outputs). Every register holds
at least one word. The register of the operand a dataflow keeps stationary (the output in OS,
the weight in WS, the input in IS) with n words lets a PE keep n stationary values at once, so
the array reads its buffers as a larger array would: OS accumulates a pixels x b filters per PE
(a * b <= n); WS (IS) holds a window positions x b filters (pixels), sums its a products into
one partial sum before passing it on, and keeps b partial sums in flight, so b is at most the
output register's words (`accelsim.engines.traffic.register_split` picks a and b). Register
reads and writes are counted per MAC (result columns `pe_<operand>_reads`, `_writes`), not
priced; cycles stay those of the array's `timing`.
"""

from __future__ import annotations

from pydantic import Field

from accelsim.arch.schema import BitWidth, StrictModel

MAX_PE_WORDS = 4096
"""Most words one PE register holds."""


class PeRegister(StrictModel):
    """One operand's register in a PE: `words` values of `bits` bits each."""

    words: int = Field(default=1, ge=1, le=MAX_PE_WORDS)
    """Values the register holds, 1 to `MAX_PE_WORDS`."""
    bits: BitWidth | None = None
    """Width of one word in bits; the operand's precision (accumulator width for outputs)
    when not given."""


class PeStorage(StrictModel):
    """Registers per PE, by operand; an operand without one gets a one-word register."""

    act: PeRegister = PeRegister()
    weight: PeRegister = PeRegister()
    out: PeRegister = PeRegister()
