"""Cost step: price action counts with per-action energies from the tech table and the arch.

Action names are `<component>.<action>`; the energy of a component is the sum over its
actions, reported as the `energy_<component>_pj` result column.
"""

from __future__ import annotations

from accelsim.arch.schema import ArchBase
from accelsim.arch.tech import load_tech_table
from accelsim.errors import ArchError

MAC_COMPUTE = "mac.compute"
MAC_GATED = "mac.gated"


def mac_energy_pj(arch: ArchBase) -> float:
    """Energy of one full multiply-accumulate at the arch's precision and node."""
    tech = load_tech_table(arch.tech.table)
    p = arch.precision
    mult_bits = max(p.act_bits, p.weight_bits)
    energy = (tech.op_energy_pj("mult", p.number_format, mult_bits)
              + tech.op_energy_pj("add", p.number_format, p.acc_bits))
    return energy * tech.energy_factor(arch.tech.node_nm)


def action_energy_pj(arch: ArchBase) -> dict[str, float]:
    """Energy in pJ of one unit of every action the arch can perform."""
    tech = load_tech_table(arch.tech.table)
    factor = tech.energy_factor(arch.tech.node_nm)
    table = {MAC_COMPUTE: mac_energy_pj(arch)}
    for level in arch.memory:
        if level.kind == "dram":
            default = tech.dram_pj_per_byte(level.dram_type) if level.dram_type else None
        else:
            default = tech.sram_pj_per_byte(level.size_bytes) * factor
        read = level.read_energy_pj_per_byte or default
        table[f"{level.name}.read_bytes"] = read
        table[f"{level.name}.write_bytes"] = level.write_energy_pj_per_byte or read
    table.update(arch.extra_action_energy_pj())
    return table


def price(actions: dict[str, float], arch: ArchBase, latency_s: float) -> dict[str, float]:
    """Energy in pJ per component for the given action counts, plus static power x time."""
    table = action_energy_pj(arch)
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
