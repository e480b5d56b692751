"""Storage inside one processing element: the registers a PE keeps operands in.

`pe:` in an array description gives, per operand, how many words one PE holds and how wide a
word is. The register of the operand a dataflow keeps stationary (the output in OS, the weight
in WS, the input in IS) must hold at least one word; holding n words lets the PE keep n
stationary values at once, so the array keeps n stationary tiles and each streamed element it
reads serves up to n of them (`accelsim.engines.traffic`). The other operands pass through
their PE registers one word at a time. Register reads and writes are counted per MAC and priced
as a storage of `words * bits` at the tech table.
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
