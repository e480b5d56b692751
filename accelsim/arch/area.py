"""Silicon area of an architecture from its tech table: MAC units by precision and SRAM by size.

MAC area = peak MACs per cycle x (one multiplier at the operand width + one adder at the
accumulator width), from the table's `area_um2` (Horowitz ISSCC 2014 at 45 nm). SRAM area =
bits x one 6T bit cell (`area_um2.sram_bitcell`, Intel 45 nm, IEDM 2007), cell only: decoders,
sense amplifiers and wiring are not counted, so SRAM-heavy designs come out optimistic. DRAM is
off chip and has no area here. NoC and sparse-format metadata logic are not modelled (no
sourced per-unit figure in the tables); they are reported as absent, not guessed. Everything is
scaled to the arch's node with the table's `area_factor`.
"""

from __future__ import annotations

from accelsim.arch.schema import ArchBase
from accelsim.arch.tech import load_tech_table
from accelsim.errors import ArchError

UM2_PER_MM2 = 1e6


def peak_macs_per_cycle(arch: ArchBase) -> int:
    """MAC units the arch instantiates (its peak MACs per cycle)."""
    peak = getattr(arch, "peak_macs_per_cycle", None)
    if isinstance(peak, (int, float)) and peak > 0:
        return int(peak)
    rows, cols = getattr(arch, "rows", None), getattr(arch, "cols", None)
    if isinstance(rows, int) and isinstance(cols, int):
        return rows * cols
    raise ArchError(
        f"arch '{arch.name}' (kind {arch.kind}): no MAC count for the area model; the kind "
        "needs a `peak_macs_per_cycle` property or rows/cols fields."
    )


def area_um2_by_component(arch: ArchBase) -> dict[str, float]:
    """Area in um^2 at the arch's node: `mac` (all MAC units) and `sram_<level>` per on-chip
    memory level."""
    table = load_tech_table(arch.tech.table)
    scale = table.area_factor(arch.tech.node_nm)
    p = arch.precision
    operand_bits = max(p.act_bits, p.weight_bits)
    mac_um2 = (table.op_area_um2("mult", p.number_format, operand_bits)
               + table.op_area_um2("add", p.number_format, p.acc_bits))
    areas = {"mac": peak_macs_per_cycle(arch) * mac_um2 * scale}
    bitcell_um2 = table.area_um2.get("sram_bitcell")
    on_chip = [level for level in arch.memory if level.kind != "dram"]
    if on_chip and bitcell_um2 is None:
        raise ArchError(f"{table.path}: no area_um2.sram_bitcell; SRAM area cannot be priced.")
    for level in on_chip:
        areas[f"sram_{level.name}"] = 8.0 * float(level.size_bytes) * float(bitcell_um2) * scale
    return areas


def area_mm2(arch: ArchBase) -> float:
    """Total modelled die area in mm^2 (MACs + on-chip SRAM cells)."""
    return sum(area_um2_by_component(arch).values()) / UM2_PER_MM2
