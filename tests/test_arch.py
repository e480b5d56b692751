"""Architecture YAML: shipped configs load; every bad value names the file and key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from accelsim.arch.energy import action_energy_pj, mac_energy_pj, memory_level_price, price
from accelsim.arch.tech import load_tech_table
from accelsim.errors import ArchError
from accelsim.kinds import load_arch

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "arch_configs").glob("*.yaml"))
TPU = ROOT / "arch_configs" / "tpu_like_128x128_ws.yaml"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_load(path):
    arch = load_arch(path)
    assert arch.clock_mhz > 0
    assert arch.dense_equivalent().kind
    action_energy_pj(arch)
    tech = load_tech_table(arch.tech.table)
    largest = max(int(k) for k in tech.energy_pj["sram_read_64bit_by_size_bytes"])
    for level in arch.memory:
        p = memory_level_price(arch, level)
        assert p.read_pj_per_byte > 0 and p.write_pj_per_byte > 0
        if p.sram is not None and level.size_bytes > largest:  # priced as banks, never extrapolated
            assert p.sram.banks > 1 and p.sram.bank_bytes == largest


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "arch.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def tpu_dict() -> dict:
    return yaml.safe_load(TPU.read_text())


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda d: d.update(rowz=4), "unknown key 'rowz'"),
        (lambda d: d["precision"].update(act_bitz=8), "unknown key 'precision.act_bitz'"),
        (lambda d: d.update(rows=-4), "'rows'"),
        (lambda d: d.update(rows=0), "greater than 0"),
        (lambda d: d.update(dataflow="rs"), "'dataflow'"),
        (lambda d: d.update(kind="quantum"), "unknown kind 'quantum'"),
        (lambda d: d.pop("kind"), "missing 'kind'"),
        (lambda d: d.pop("rows"), "missing required key 'rows'"),
        (lambda d: d["memory"][1].update(size_bytes=-1), "memory.1.size_bytes"),
        (lambda d: d["memory"][1].pop("size_bytes"), "needs size_bytes"),
        (lambda d: d["memory"][0].pop("dram_type"), "give dram_type"),
        (lambda d: d["memory"].append(dict(d["memory"][1])), "must be unique"),
        (lambda d: d.update(clock_mhz="fast"), "'clock_mhz'"),
        (lambda d: d.update(static_power_mw=-1.0), "'static_power_mw'"),
    ],
)
def test_bad_values_name_file_and_key(tmp_path, mutate, needle):
    data = tpu_dict()
    mutate(data)
    path = write(tmp_path, data)
    with pytest.raises(ArchError) as err:
        load_arch(path)
    assert needle in str(err.value)
    assert str(path) in str(err.value)


def test_malformed_yaml_and_missing_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nkind: systolic\n  rows: [1,\n")
    with pytest.raises(ArchError, match="not valid YAML"):
        load_arch(path)
    path.write_text("- just\n- a list\n")
    with pytest.raises(ArchError, match="must be a mapping"):
        load_arch(path)
    with pytest.raises(ArchError, match="no such architecture file"):
        load_arch(tmp_path / "nope.yaml")


def test_yaml_loader_is_safe(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("name: !!python/object/apply:os.system ['true']\nkind: systolic\n")
    with pytest.raises(ArchError, match="not valid YAML"):
        load_arch(path)


def test_unknown_tech_table_and_dram_type(tmp_path):
    data = tpu_dict()
    data["tech"]["table"] = "unobtainium_3nm"
    with pytest.raises(ArchError, match="Known tables"):
        load_arch(write(tmp_path, data))
    data = tpu_dict()
    data["memory"][0]["dram_type"] = "ddr9"
    arch = load_arch(write(tmp_path, data))
    with pytest.raises(ArchError, match="no DRAM energy for dram_type 'ddr9'"):
        action_energy_pj(arch)


def test_tech_table_values_and_scaling():
    tech = load_tech_table("horowitz_45nm")
    assert tech.op_energy_pj("mult", "int", 8) == 0.2
    assert tech.op_energy_pj("add", "fp", 32) == 0.9
    assert tech.op_energy_pj("mult", "int", 4) == pytest.approx(0.2 / 4)
    assert tech.sram_pj_per_byte(8192) == pytest.approx(10 / 8)
    assert tech.sram_pj_per_byte(1 << 20) == pytest.approx(100 / 8)
    assert 10 / 8 < tech.sram_pj_per_byte(16384) < 20 / 8
    assert tech.dram_pj_per_byte("hbm2") == pytest.approx(8 * 3.9)
    assert tech.energy_factor(45) == 1.0 and tech.energy_factor(7) == pytest.approx(0.4)
    assert 0.4 < tech.energy_factor(28) < tech.energy_factor(40) < 1.0
    assert tech.area_factor(22.5) == pytest.approx(0.25)


def test_price_is_counts_times_table():
    arch = load_arch(TPU)
    table = action_energy_pj(arch)
    counts = {"mac.compute": 1000, "dram.read_bytes": 64, "unified_buffer.read_bytes": 128}
    energy = price(counts, arch, latency_s=1e-6)
    assert energy["mac"] == pytest.approx(1000 * mac_energy_pj(arch))
    assert energy["dram"] == pytest.approx(64 * table["dram.read_bytes"])
    assert energy["unified_buffer"] == pytest.approx(128 * table["unified_buffer.read_bytes"])
    assert energy["static"] == 0.0
    with pytest.raises(ArchError, match="no energy known"):
        price({"warp.drive": 1}, arch, 1e-6)
