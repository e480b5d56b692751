"""Storage inside one processing element: the registers a PE keeps operands in.

`pe:` in an array description gives, per operand, how many words one PE holds and how wide a
word is (at least the operand's width: the accumulator width for outputs). Every register holds
at least one word. The register of the operand a dataflow keeps stationary (the output in OS,
the weight in WS, the input in IS) with n words lets a PE keep n stationary values at once, so
the array reads its buffers as a larger array would: OS accumulates a pixels x b filters per PE
(a * b <= n); WS (IS) holds a window positions x b filters (pixels), sums its a products into
one partial sum before passing it on, and keeps b partial sums in flight, so b is at most the
output register's words (`accelsim.engines.traffic.register_split` picks a and b). Register
reads and writes are counted per MAC (result columns `pe_<operand>_reads`, `_writes`, in
accesses of one word). The registers a config declares under `pe:` are priced: every access of
a `bits`-wide word is an action `pe_registers.<operand>_reads` / `_writes`, priced by
`accelsim.arch.energy` from the tech table's register-file entry and summed into the
`energy_pe_registers_pj` component. An operand left out of `pe:` still gets its one-word
register in the traffic model but is not priced (its latch is taken as part of the MAC price),
so a config without `pe:` is priced as before. Cycles stay those of the array's `timing`.
"""

from __future__ import annotations

from pydantic import Field

from accelsim.arch.schema import BitWidth, Operand, StrictModel

MAX_PE_WORDS = 4096
"""Most words one PE register holds."""
REGISTER_COMPONENT = "pe_registers"
"""Energy component of the priced PE register accesses (`energy_pe_registers_pj`)."""
REGISTER_OPERANDS: tuple[Operand, ...] = ("act", "weight", "out")


def register_action(op: Operand, verb: str) -> str:
    """Action name of one access (`verb` 'reads' or 'writes') of `op`'s PE register."""
    return f"{REGISTER_COMPONENT}.{op}_{verb}"


class PeRegister(StrictModel):
    """One operand's register in a PE: `words` values of `bits` bits each."""

    words: int = Field(default=1, ge=1, le=MAX_PE_WORDS)
    """Values the register holds, 1 to `MAX_PE_WORDS`."""
    bits: BitWidth | None = None
    """Width of one word in bits; the operand's precision (accumulator width for outputs)
    when not given."""


class PeStorage(StrictModel):
    """Registers per PE, by operand; an operand without one (None) gets an unpriced one-word
    register."""

    act: PeRegister | None = None
    weight: PeRegister | None = None
    out: PeRegister | None = None

    def register(self, op: Operand) -> PeRegister:
        """`op`'s register: the declared one, or a one-word register of the operand's width."""
        found: PeRegister | None = getattr(self, op)
        return PeRegister() if found is None else found

    def declared(self) -> tuple[Operand, ...]:
        """The operands whose register the config declares (the priced ones), in
        `REGISTER_OPERANDS` order."""
        return tuple(op for op in REGISTER_OPERANDS if getattr(self, op) is not None)

    def word_bits(self, op: Operand, act_bits: int, weight_bits: int, acc_bits: int) -> int:
        """Width in bits of one word of `op`'s register: its `bits`, else the operand's
        precision (`acc_bits` for outputs)."""
        bits = self.register(op).bits
        if bits is not None:
            return int(bits)
        return {"act": act_bits, "weight": weight_bits, "out": acc_bits}[op]

    def check_widths(self, act_bits: int, weight_bits: int, acc_bits: int) -> None:
        """Raise ValueError naming the first declared register narrower than the values it
        holds (`acc_bits` for outputs)."""
        need = {"act": (act_bits, "precision.act_bits"),
                "weight": (weight_bits, "precision.weight_bits"),
                "out": (acc_bits, "precision.acc_bits")}
        for op in REGISTER_OPERANDS:
            bits = self.register(op).bits
            width, what = need[op]
            if bits is not None and bits < width:
                raise ValueError(
                    f"pe.{op}.bits is {bits}, narrower than the {width}-bit values it holds "
                    f"({what}); widen the register or leave bits out to take {what}")
