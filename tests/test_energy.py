"""Energy prices: large SRAMs priced as banks + H-tree, nothing extrapolated silently, the
notes of out-of-range prices reach the results' warnings column."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from accelsim.arch.energy import (
    MAC_COMPUTE,
    action_energy_pj,
    memory_level_price,
    price_warnings,
    pricing_notes,
)
from accelsim.arch.tech import load_tech_table
from accelsim.errors import ArchError
from accelsim.kinds import load_arch, parse_arch
from accelsim.simulate import simulate
from accelsim.workload import load_workload
from tests import reference

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "arch_configs"
TABLE_PATH = CONFIGS / "tech" / "horowitz_45nm.yaml"
MIB = 1 << 20


@pytest.fixture(scope="module")
def raw_table() -> dict:
    return yaml.safe_load(TABLE_PATH.read_text())


@pytest.fixture(scope="module")
def tech():
    return load_tech_table("horowitz_45nm")


def tpu(**changes) -> dict:
    data = yaml.safe_load((CONFIGS / "tpu_like_128x128_ws.yaml").read_text())
    for key, value in changes.items():
        data[key] = value
    return data


def with_node(data: dict, node_nm: float) -> dict:
    data["tech"] = {**data.get("tech", {}), "node_nm": node_nm}
    return data


# --- banked SRAMs --------------------------------------------------------------------------

@pytest.mark.parametrize("size", [MIB + 1, 3 * MIB, 4 * MIB, 8 * MIB, 24 * MIB, 32 * MIB,
                                  64 * MIB, 100 * MIB])
@pytest.mark.parametrize("node", [45.0, 28.0, 16.0])
def test_banked_sram_is_one_bank_plus_htree(tech, raw_table, size, node):
    bank = raw_table["sram_banking"]
    expected = reference.banked_sram_pj_per_byte_reference(
        size, raw_table["energy_pj"]["sram_read_64bit_by_size_bytes"], bank["bank_bytes"],
        raw_table["area_um2"]["sram_bitcell"], bank["array_efficiency"],
        bank["wire_pj_per_bit_mm"], energy_factor=tech.energy_factor(node),
        side_scale=math.sqrt(tech.area_factor(node)))
    got = tech.sram_price(size, node)
    assert got.pj_per_byte == pytest.approx(expected, rel=1e-12)
    assert got.banks == -(-size // MIB) and got.bank_bytes == MIB and got.notes == ()
    assert got.bank_pj_per_byte + got.wire_pj_per_byte == pytest.approx(got.pj_per_byte)


def test_32_mib_numbers(tech):
    """32 MiB at 45 nm: 32 banks of 1 MiB (100 pJ / 64 bits, Horowitz) on an 8 x 4 grid; a
    bank is sqrt(8 Mi x 0.346 um^2 / 0.5) = 2.41 mm on a side, the H-tree 5 sides = 12.0 mm,
    64 bits x 0.121 pJ/bit/mm (Keckler et al. 2011) over it = 11.7 pJ per byte's share."""
    p = tech.sram_price(32 * MIB, 45.0)
    assert p.grid == (8, 4)
    assert p.wire_mm == pytest.approx(5 * 2.4093, rel=1e-4)
    assert p.pj_per_byte == pytest.approx(12.5 + 8 * 0.121 * 12.0467, rel=1e-4)
    assert p.pj_per_byte < 25.0 < 62.5  # the old unbanked extrapolation gave 62.5 pJ/B


def test_price_per_byte_never_falls_with_size(tech):
    sizes = sorted({int(8192 * 2 ** (i / 8)) for i in range(8 * 17)}
                   | {MIB - 1, MIB, MIB + 1, 2 * MIB, 2 * MIB + 1})
    for node in (45.0, 28.0, 7.0):
        prices = [tech.sram_price(s, node).pj_per_byte for s in sizes]
        assert all(b >= a for a, b in zip(prices, prices[1:])), node


def test_in_range_prices_unchanged(tech, raw_table):
    points = raw_table["energy_pj"]["sram_read_64bit_by_size_bytes"]
    assert tech.sram_pj_per_byte(8192) == pytest.approx(10 / 8)
    assert tech.sram_pj_per_byte(32768) == pytest.approx(20 / 8)
    assert tech.sram_pj_per_byte(MIB) == pytest.approx(100 / 8)
    for size in (8192, 9000, 16384, 32000, 110592, 262144, 700000, MIB):
        assert tech.sram_pj_per_byte(size) == pytest.approx(
            reference.sram_curve_reference(points, size) / 8, rel=1e-12)
        factor = tech.energy_factor(28.0)
        assert tech.sram_price(size, 28.0).pj_per_byte == pytest.approx(
            reference.sram_curve_reference(points, size) / 8 * factor, rel=1e-12)
    # a shipped in-range level keeps its price: the TPU's 256 KiB weight FIFO at 28 nm
    arch = load_arch(CONFIGS / "tpu_like_128x128_ws.yaml")
    fifo = memory_level_price(arch, "weight_fifo")
    assert fifo.read_pj_per_byte == pytest.approx(
        reference.sram_curve_reference(points, 262144) / 8 * tech.energy_factor(28.0), rel=1e-12)
    assert fifo.sram is not None and fifo.sram.banks == 1


def test_level_price_is_what_actions_cost(tech):
    arch = load_arch(CONFIGS / "tpu_like_128x128_ws.yaml")
    table = action_energy_pj(arch)
    ub = memory_level_price(arch, "unified_buffer")
    assert table["unified_buffer.read_bytes"] == ub.read_pj_per_byte
    assert table["unified_buffer.write_bytes"] == ub.write_pj_per_byte
    assert ub.sram is not None and ub.sram.banks == 24 and ub.read_from == "table"
    assert "24 banks of 1 MiB" in ub.describe()
    with pytest.raises(ArchError, match="no memory level 'nope'"):
        memory_level_price(arch, "nope")


def test_arch_figures_win_over_the_table():
    data = tpu()
    data["memory"][1]["read_energy_pj_per_byte"] = 0.5
    arch = parse_arch(data)
    p = memory_level_price(arch, data["memory"][1]["name"])
    assert (p.read_pj_per_byte, p.write_pj_per_byte) == (0.5, 0.5)
    assert p.read_from == p.write_from == "arch" and p.sram is None


# --- tables without or with bad banking data ----------------------------------------------

def write_table(tmp_path: Path, raw: dict) -> str:
    path = tmp_path / "table.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def test_table_without_banking_prices_large_sram_as_largest_with_note(tmp_path, raw_table):
    raw = dict(raw_table)
    raw.pop("sram_banking")
    table = load_tech_table(write_table(tmp_path, raw))
    p = table.sram_price(32 * MIB, 45.0, label="big")
    assert p.pj_per_byte == pytest.approx(100 / 8)
    assert p.notes and "sram 'big' 32 MiB is above" in p.notes[0] and "lower bound" in p.notes[0]


def test_bad_banking_section_is_refused(tmp_path, raw_table):
    raw = dict(raw_table)
    raw["sram_banking"] = {**raw_table["sram_banking"], "bank_bytes": 32768,
                           "array_efficiency": 1.5}
    with pytest.raises(ArchError, match="sram_banking: bank_bytes must be the largest") as err:
        load_tech_table(write_table(tmp_path, raw))
    assert "array_efficiency must be in (0, 1]" in str(err.value)


# --- price notes -----------------------------------------------------------------------------

NODE_NOTE = "outside horowitz_45nm's scaling range 7-45 nm"


@pytest.mark.parametrize(("node", "priced_at"), [(65.0, 45), (4.0, 7), (16.0, None)])
def test_node_outside_scaling_is_a_warning(node, priced_at):
    arch = parse_arch(with_node(tpu(), node))
    notes = price_warnings({MAC_COMPUTE: 1.0}, arch)
    if priced_at is None:
        assert notes == []
    else:
        assert notes == [f"node {node:g} nm is {NODE_NOTE}: priced at {priced_at} nm"]


@pytest.mark.parametrize("node", [65.0, 4.0, 16.0])
def test_node_warning_reaches_the_results(node):
    workload = load_workload(ROOT / "workloads" / "digits_cnn.npz")
    result = simulate(workload, parse_arch(with_node(tpu(), node)))
    warned = result.layers["warnings"].str.contains(NODE_NOTE, regex=False)
    assert warned.all() if node != 16.0 else not warned.any()


def test_small_sram_is_priced_as_smallest_with_warning(tech):
    data = tpu()
    data["memory"][1]["size_bytes"] = 4096
    arch = parse_arch(data)
    name = data["memory"][1]["name"]
    p = memory_level_price(arch, name)
    assert p.read_pj_per_byte == pytest.approx(10 / 8 * tech.energy_factor(28.0))
    note = p.read_notes[0]
    assert note.startswith(f"sram '{name}' 4 KiB is below horowitz_45nm's smallest SRAM (8 KiB)")
    assert price_warnings({f"{name}.read_bytes": 10.0}, arch) == [note]
    assert price_warnings({f"{name}.read_bytes": 0.0, MAC_COMPUTE: 1.0}, arch) == []


def test_op_width_not_in_table_is_a_warning():
    arch = parse_arch(tpu(precision={"act_bits": 4, "weight_bits": 4, "acc_bits": 24,
                                     "number_format": "int"}))
    notes = pricing_notes(arch)[MAC_COMPUTE]
    assert any(n.startswith("int4 mult is not in horowitz_45nm (int8, int16, int32): scaled from "
                            "int8 by (4/8)^2 to 0.05 pJ") for n in notes)
    assert any(n.startswith("int24 add is not in horowitz_45nm") for n in notes)
    # warnings are only for actions performed: a row with no MACs has none of them
    assert price_warnings({"dram.read_bytes": 64.0}, arch) == []


def test_in_range_arch_has_no_price_notes():
    arch = load_arch(CONFIGS / "tpu_like_128x128_ws.yaml")
    assert pricing_notes(arch) == {}


# --- the shipped Cnvlutin-like config --------------------------------------------------------

@pytest.fixture(scope="module")
def cnvlutin():
    return load_arch(CONFIGS / "cnvlutin_like.yaml")


def test_cnvlutin_synapse_buffer_priced_as_banks(cnvlutin, tech):
    size = next(m.size_bytes for m in cnvlutin.memory if m.name == "synapse_buffer")
    p = memory_level_price(cnvlutin, "synapse_buffer")
    assert p.sram is not None and p.sram.banks == -(-size // MIB)
    assert p.read_pj_per_byte == pytest.approx(
        tech.sram_price(size, cnvlutin.tech.node_nm).pj_per_byte)
    assert p.read_pj_per_byte < 20.0  # was 52.9 pJ/B extrapolated unbanked at 28 nm


def test_cnvlutin_energy_with_the_banked_synapse_buffer(cnvlutin):
    """The unbanked 32 MiB price (52.9 pJ/B at 28 nm) gave Cnvlutin ~107 pJ/MAC on MiniLM and
    digits conv1 a 2.02x energy saving at 1.00x speed. Banked, the buffer costs 16.7 pJ/B and
    MiniLM ~34 pJ/MAC. Weight reads (2 B per MAC done) still dominate, so conv1 still saves
    ~1.9x: skipping a zero activation skips its synapse reads even where the issue slot, not
    the work, sets conv1's cycles (one input channel per 16-neuron brick)."""
    llm = simulate(load_workload(ROOT / "workloads" / "minilm.npz"), cnvlutin).layers
    assert llm["energy_pj"].sum() / llm["macs_dense"].sum() < 40.0
    cnn = simulate(load_workload(ROOT / "workloads" / "digits_cnn.npz"), cnvlutin).layers
    conv1 = cnn.set_index("layer").loc["conv1"]
    assert conv1["speedup_vs_dense"] == pytest.approx(1.0)
    assert conv1["energy_saving_vs_dense"] < 2.0


# --- PE registers ----------------------------------------------------------------------------

def eyeriss(**changes) -> dict:
    data = yaml.safe_load((CONFIGS / "eyeriss_like.yaml").read_text())
    data.update(changes)
    return data


def component_sum(row) -> float:
    """energy_pj's components: the action components and static power, once each (the
    per-level, per-space splits `energy_<level>_<space>_pj` are not components)."""
    names = ["energy_mac_pj", "energy_pe_registers_pj", "energy_global_buffer_pj",
             "energy_dram_pj", "energy_static_pj"]
    return sum(float(row[c]) for c in names if c in row.index and not math.isnan(row[c]))


def test_register_price_is_word_bits_times_the_table_price(tech, raw_table):
    per_bit = raw_table["energy_pj"]["register_access_16bit"] / 16
    a = parse_arch(eyeriss())
    table = action_energy_pj(a)
    factor = tech.energy_factor(a.tech.node_nm)
    assert table["pe_registers.out_reads"] == pytest.approx(32 * per_bit * factor)
    assert table["pe_registers.out_writes"] == table["pe_registers.out_reads"]
    assert not any(k.startswith("pe_registers.act") or k.startswith("pe_registers.weight")
                   for k in table)  # not declared, not priced
    wide = action_energy_pj(parse_arch(eyeriss(pe={"act": {}, "weight": {"bits": 24}})))
    assert wide["pe_registers.act_reads"] == pytest.approx(16 * per_bit * factor)  # act_bits
    assert wide["pe_registers.weight_writes"] == pytest.approx(24 * per_bit * factor)
    assert "pe_registers.out_reads" not in wide
    # 65 nm is outside the table's scaling range: the register price says so too
    assert pricing_notes(a)["pe_registers.out_reads"]


def test_declared_registers_survive_a_reparse():
    a = parse_arch(eyeriss())
    assert a.pe.declared() == ("out",)
    again = parse_arch(a.model_dump(mode="json"))
    assert again.pe.declared() == ("out",)
    assert action_energy_pj(again) == action_energy_pj(a)


@pytest.fixture(scope="module")
def digits():
    return load_workload(ROOT / "workloads" / "digits_cnn.npz")


def test_register_energy_is_price_times_counts_and_counted_once(digits):
    a = parse_arch(eyeriss())
    table = action_energy_pj(a)
    df = simulate(digits, a).layers
    assert (df["energy_pe_registers_pj"] > 0).all()
    for _, row in df.iterrows():
        expected = sum(row[f"pe_out_{v}"] * table[f"pe_registers.out_{v}"]
                       for v in ("reads", "writes"))
        assert row["energy_pe_registers_pj"] == pytest.approx(expected, rel=1e-12)
        assert row["pe_out_reads"] == row["macs_dense"]  # one read and one write per MAC
        assert row["energy_pj"] == pytest.approx(component_sum(row), rel=1e-12)


def test_config_without_pe_registers_prices_none(digits):
    data = eyeriss()
    del data["pe"]
    a = parse_arch(data)
    assert a.pe.declared() == ()
    assert not any(k.startswith("pe_registers.") for k in action_energy_pj(a))
    df = simulate(digits, a).layers
    assert "energy_pe_registers_pj" not in df.columns
    assert (df["pe_out_reads"] == df["macs_dense"]).all()  # still counted, not priced
    for _, row in df.iterrows():
        assert row["energy_pj"] == pytest.approx(component_sum(row), rel=1e-12)


def test_eyeriss_energy_rises_by_exactly_its_register_energy(tmp_path, raw_table, digits):
    """Doubling the register price adds the register energy once more and nothing else: the
    energy is the unpriced one plus the priced register accesses."""
    raw = {**raw_table, "energy_pj": {**raw_table["energy_pj"]}}
    raw["energy_pj"]["register_access_16bit"] *= 2
    doubled = write_table(tmp_path, raw)
    one = simulate(digits, parse_arch(eyeriss())).layers
    two = simulate(digits, parse_arch(eyeriss(tech={"table": doubled, "node_nm": 65}))).layers
    assert (two["energy_pe_registers_pj"].to_numpy()
            == pytest.approx(2 * one["energy_pe_registers_pj"].to_numpy(), rel=1e-12))
    rise = (two["energy_pj"] - one["energy_pj"]).to_numpy()
    assert rise == pytest.approx(one["energy_pe_registers_pj"].to_numpy(), rel=1e-9)
    for col in ("energy_mac_pj", "energy_global_buffer_pj", "energy_dram_pj"):
        assert (two[col].to_numpy() == pytest.approx(one[col].to_numpy(), rel=1e-12))


def test_register_price_schema(tmp_path, raw_table):
    bad = {**raw_table, "energy_pj": {**raw_table["energy_pj"], "register_access_16bit": -1}}
    with pytest.raises(ArchError, match="register_access_16bit"):
        load_tech_table(write_table(tmp_path, bad))
    missing = {**raw_table, "energy_pj": {k: v for k, v in raw_table["energy_pj"].items()
                                          if k != "register_access_16bit"}}
    path = tmp_path / "no_registers.yaml"
    path.write_text(yaml.safe_dump(missing))
    plain = action_energy_pj(parse_arch(tpu(tech={"table": str(path), "node_nm": 45})))
    assert not any(k.startswith("pe_registers.") for k in plain)  # no registers: no price asked
    with pytest.raises(ArchError, match="register_access_16bit"):
        action_energy_pj(parse_arch(eyeriss(tech={"table": str(path), "node_nm": 65})))


def test_sweep_path_prices_registers_as_one_run(digits):
    """`simulate_totals` (points counted at once, archs re-parsed from their dump) gives each
    point the register energy and total of its own `simulate` run."""
    from accelsim.simulate import simulate_totals

    a = parse_arch(eyeriss())
    b = parse_arch({**a.model_dump(mode="json"), "name": "taller", "rows": 16})
    for arch, got in zip((a, b), simulate_totals(digits, [a, b])):
        want = simulate(digits, arch).totals()
        assert got["energy_pe_registers_pj"] == pytest.approx(want["energy_pe_registers_pj"])
        assert got["energy_pe_registers_pj"] > 0
        assert got["energy_pj"] == pytest.approx(want["energy_pj"], rel=1e-12)
