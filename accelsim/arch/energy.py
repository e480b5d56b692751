"""Cost step: price action counts with per-action energies from the tech table and the arch.

Action names are `<component>.<action>`; the energy of a component is the sum over its
actions, reported as the `energy_<component>_pj` result column.

Memory levels: DRAM per byte from the table's `dram_per_bit` (not node-scaled); on-chip levels
(`sram`, `regfile`) from the table's SRAM curve at their size, scaled to the node, with SRAMs
larger than the largest sourced array priced as banks plus the H-tree that reaches them
(`accelsim.arch.tech`); a level's own `read_energy_pj_per_byte` / `write_energy_pj_per_byte`
win over the table. `memory_level_price` gives a level's price and how it was made up.

PE registers (`accelsim.arch.pe_storage`): the registers an arch declares under `pe:` are
priced per access of one word, `bits` x the table's register price per bit at the node
(`register_action_energy_pj`); their actions `pe_registers.<operand>_reads` / `_writes` make
the one `energy_pe_registers_pj` component.

Prices taken outside a table's sourced range (a node outside its scaling points, an op width it
does not list, an SRAM smaller than its smallest array) are *price notes*; `price_warnings`
returns those of the actions a layer actually performed, and `accelsim.simulate` puts them in
the row's `warnings` column. Values the table cannot give at all (a DRAM type or number format
it lacks) are refused with an `ArchError`.
"""

from __future__ import annotations

from dataclasses import dataclass

from accelsim.arch.pe_storage import REGISTER_COMPONENT, PeStorage, register_action
from accelsim.arch.schema import ArchBase, MemoryLevel
from accelsim.arch.tech import (
    SramPrice,
    TechTable,
    collect_price_notes,
    load_tech_table,
    record_price_note,
)
from accelsim.errors import ArchError

MAC_COMPUTE = "mac.compute"
MAC_GATED = "mac.gated"
MAC_COMPONENT = "mac"


@dataclass(frozen=True)
class LevelPrice:
    """What one byte read from or written to a memory level costs, pJ, and where it came from."""

    level: str
    read_pj_per_byte: float
    write_pj_per_byte: float
    read_from: str                  # 'arch' (the level's own figure), 'table' or 'dram table'
    write_from: str
    sram: SramPrice | None          # the table's SRAM price when it was used, with its make-up
    read_notes: tuple[str, ...] = ()
    write_notes: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line for a config comment."""
        head = f"{self.level}: read {self.read_pj_per_byte:.3g} pJ/B ({self.read_from})"
        if self.write_pj_per_byte != self.read_pj_per_byte or self.write_from != self.read_from:
            head += f", write {self.write_pj_per_byte:.3g} pJ/B ({self.write_from})"
        return head + (f"; table: {self.sram.describe()}" if self.sram is not None else "")


def mac_energy_pj(arch: ArchBase) -> float:
    """Energy of one full multiply-accumulate at the arch's precision and node."""
    tech = load_tech_table(arch.tech.table)
    p = arch.precision
    mult_bits = max(p.act_bits, p.weight_bits)
    key = (id(tech), p.number_format, mult_bits, p.acc_bits, arch.tech.node_nm)
    hit = _MAC_PRICES.get(key)
    if hit is not None and hit[0] is tech:
        for note in hit[2]:
            record_price_note(note)
        return hit[1]
    with collect_price_notes() as notes:
        energy = (tech.op_energy_pj("mult", p.number_format, mult_bits)
                  + tech.op_energy_pj("add", p.number_format, p.acc_bits))
        energy *= tech.energy_factor(arch.tech.node_nm)
    if len(_MAC_PRICES) >= MAX_CACHED_LEVEL_PRICES:
        _MAC_PRICES.clear()
    _MAC_PRICES[key] = (tech, energy, tuple(notes))
    return energy


_MAC_PRICES: dict[tuple, tuple[object, float, tuple[str, ...]]] = {}
"""`mac_energy_pj` by what it depends on (the table object, kept alive by its entry), with the
price notes its lookups raised."""


def _level(arch: ArchBase, level: MemoryLevel | str) -> MemoryLevel:
    if isinstance(level, MemoryLevel):
        return level
    found = next((m for m in arch.memory if m.name == level), None)
    if found is None:
        raise ArchError(f"arch '{arch.name}': no memory level '{level}'; levels: "
                        f"{[m.name for m in arch.memory]}.")
    return found


def memory_level_price(arch: ArchBase, level: MemoryLevel | str) -> LevelPrice:
    """Energy in pJ per byte read and written at a memory level of `arch` (a level or its
    name), and how it was priced."""
    lv = _level(arch, level)
    tech = load_tech_table(arch.tech.table)
    key = (id(tech), lv.name, lv.kind, lv.size_bytes, lv.dram_type, lv.read_energy_pj_per_byte,
           lv.write_energy_pj_per_byte, arch.tech.node_nm)
    hit = _LEVEL_PRICES.get(key)
    if hit is not None and hit[0] is tech:
        for note in hit[1].read_notes + hit[1].write_notes:
            record_price_note(note)
        return hit[1]
    found = _price_level(arch, lv, tech)
    if len(_LEVEL_PRICES) >= MAX_CACHED_LEVEL_PRICES:
        _LEVEL_PRICES.clear()
    _LEVEL_PRICES[key] = (tech, found)
    return found


_LEVEL_PRICES: dict[tuple, tuple[object, LevelPrice]] = {}
"""`memory_level_price` by what it depends on (the level's priced fields, the node and the
table object, kept alive by its entry): a sweep prices the same levels for every layer."""
MAX_CACHED_LEVEL_PRICES = 4096


def _price_level(arch: ArchBase, lv: MemoryLevel, tech: TechTable) -> LevelPrice:
    sram: SramPrice | None = None
    table_notes: tuple[str, ...] = ()
    if lv.kind == "dram":
        default = tech.dram_pj_per_byte(lv.dram_type) if lv.dram_type else None
        source = "dram table"
    elif lv.read_energy_pj_per_byte:  # writes default to the level's read figure
        default, source = None, "table"
    else:
        with collect_price_notes() as notes:
            sram = tech.sram_price(int(lv.size_bytes or 0), arch.tech.node_nm, label=lv.name)
        default, source, table_notes = sram.pj_per_byte, "table", tuple(notes)
    read = lv.read_energy_pj_per_byte or default
    if read is None:  # the schema requires dram_type or read_energy_pj_per_byte on DRAM
        raise ArchError(f"arch '{arch.name}': memory level '{lv.name}' has no energy; give "
                        "dram_type or read_energy_pj_per_byte.")
    read_from = "arch" if lv.read_energy_pj_per_byte else source
    write = lv.write_energy_pj_per_byte or read
    write_from = "arch" if lv.write_energy_pj_per_byte else read_from
    return LevelPrice(
        level=lv.name, read_pj_per_byte=read, write_pj_per_byte=write,
        read_from=read_from, write_from=write_from,
        sram=sram,
        read_notes=table_notes if read_from == "table" else (),
        write_notes=table_notes if write_from == "table" else (),
    )


def memory_level_pj_per_byte(arch: ArchBase, level: MemoryLevel | str) -> tuple[float, float]:
    """(read, write) energy in pJ per byte at a memory level of `arch`."""
    price_ = memory_level_price(arch, level)
    return price_.read_pj_per_byte, price_.write_pj_per_byte


def register_action_energy_pj(arch: ArchBase) -> dict[str, float]:
    """Energy in pJ of one access (read or write) of one word of each PE register the arch
    declares under `pe:`, by action name (`accelsim.arch.pe_storage.register_action`): the
    word's bits x the tech table's register price per bit at the arch's node. Empty for an
    arch without `pe:` registers."""
    pe = getattr(arch, "pe", None)
    if not isinstance(pe, PeStorage) or not pe.declared():
        return {}
    tech = load_tech_table(arch.tech.table)
    per_bit = tech.register_pj_per_bit(arch.tech.node_nm)
    p = arch.precision
    table: dict[str, float] = {}
    for op in pe.declared():
        word = pe.word_bits(op, p.act_bits, p.weight_bits, p.acc_bits) * per_bit
        for verb in ("reads", "writes"):
            table[register_action(op, verb)] = word
    return table


def action_energy_pj(arch: ArchBase) -> dict[str, float]:
    """Energy in pJ of one unit of every action the arch can perform."""
    return priced_actions(arch)[0]


def pricing_notes(arch: ArchBase) -> dict[str, tuple[str, ...]]:
    """Price notes per action of `arch`: `mac.*` actions carry the notes of the MAC price,
    `<level>.*` those of the level's read (or, for actions named `*write*`, write) price,
    `pe_registers.*` those of the register price, and
    any other action the arch defines carries the notes raised while the arch priced its own
    actions (`extra_action_energy_pj`). Actions with no note are left out."""
    return priced_actions(arch)[1]


def priced_actions(arch: ArchBase) -> tuple[dict[str, float], dict[str, tuple[str, ...]]]:
    """(`action_energy_pj(arch)`, `pricing_notes(arch)`), each price made once."""
    with collect_price_notes() as mac_notes:
        table = {MAC_COMPUTE: mac_energy_pj(arch)}
    with collect_price_notes() as register_notes:
        registers = register_action_energy_pj(arch)
    table.update(registers)
    levels = {lv.name: memory_level_price(arch, lv) for lv in arch.memory}
    for name, lp in levels.items():
        table[f"{name}.read_bytes"] = lp.read_pj_per_byte
        table[f"{name}.write_bytes"] = lp.write_pj_per_byte
    with collect_price_notes() as extra_notes:
        extra = arch.extra_action_energy_pj()
    table.update(extra)
    notes: dict[str, tuple[str, ...]] = {}
    for action in table:
        component, _, verb = action.partition(".")
        if component == MAC_COMPONENT:
            found: tuple[str, ...] = tuple(mac_notes)
        elif component == REGISTER_COMPONENT:
            found = tuple(register_notes)
        elif component in levels:
            lp = levels[component]
            found = lp.write_notes if "write" in verb else lp.read_notes
        else:
            found = tuple(extra_notes)
        if found:
            notes[action] = found
    return table, notes


def price_warnings(actions: dict[str, float], arch: ArchBase,
                   notes: dict[str, tuple[str, ...]] | None = None) -> list[str]:
    """The price notes of the actions performed (non-zero counts), once each, in a stable order:
    what in this row's energy was priced outside the tech table's sourced range. `notes` is
    `pricing_notes(arch)` when the caller already has it (one arch, many layers)."""
    notes = pricing_notes(arch) if notes is None else notes
    found: list[str] = []
    for action in sorted(a for a, n in actions.items() if n):
        for note in notes.get(action, ()):
            if note not in found:
                found.append(note)
    return found


def price(actions: dict[str, float], arch: ArchBase, latency_s: float,
          table: dict[str, float] | None = None) -> dict[str, float]:
    """Energy in pJ per component for the given action counts, plus static power x time.
    `table` is `action_energy_pj(arch)` when the caller already has it (one arch, many
    layers)."""
    table = action_energy_pj(arch) if table is None else table
    unpriced = sorted(a for a, n in actions.items() if n and a not in table)
    if unpriced:
        raise ArchError(
            f"arch '{arch.name}': no energy known for action(s) {unpriced}; add them to the "
            "tech table or the arch description."
        )
    energy: dict[str, float] = {}
    for action, count in actions.items():
        if count:
            component = action.split(".", 1)[0]
            energy[component] = energy.get(component, 0.0) + count * table[action]
    energy["static"] = arch.static_power_mw * 1e-3 * latency_s * 1e12
    return energy
