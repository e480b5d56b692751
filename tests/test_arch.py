"""Architecture YAML: shipped configs load; every bad value names the file and key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

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
    with pytest.raises(ArchError, match=r"'memory\.0\.dram_type' 'ddr9' has no energy") as err:
        load_arch(write(tmp_path, data))
    assert str(tmp_path / "arch.yaml") in str(err.value)


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


# --- hostile numbers: finite only, no booleans, bounded ----------------------------------------

CNVLUTIN = ROOT / "arch_configs" / "cnvlutin_like.yaml"
A100 = ROOT / "arch_configs" / "a100.yaml"
AKD1000 = ROOT / "arch_configs" / "akd1000.yaml"


def _set(data: dict, path: str, value: object) -> dict:
    node = data
    parts = [int(p) if p.isdigit() else p for p in path.split(".")]
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value
    return data


@pytest.mark.parametrize(("config", "path", "value", "needle"), [
    (TPU, "clock_mhz", float("inf"), "'clock_mhz': Input should be a finite number"),
    (TPU, "static_power_mw", float("nan"), "'static_power_mw': Input should be a finite number"),
    (TPU, "memory.0.read_bandwidth_bytes_per_cycle", float("inf"), "finite number"),
    (TPU, "tech.node_nm", float("inf"), "'tech.node_nm'"),
    (TPU, "rows", True, "'rows' is a boolean where a number is expected"),
    (TPU, "clock_mhz", False, "'clock_mhz' is a boolean"),
    (TPU, "precision.act_bits", True, "'precision.act_bits' is a boolean"),
    (TPU, "rows", 2**16 + 1, "'rows': Input should be less than or equal to 65536"),
    (TPU, "clock_mhz", 2e6, "'clock_mhz': Input should be less than or equal to 1000000"),
    (TPU, "memory.1.size_bytes", 2**51, "'memory.1.size_bytes'"),
    (CNVLUTIN, "array.lanes", 4097, "'array.lanes': Input should be less than or equal to 4096"),
    (CNVLUTIN, "array.brick_size", 10**30, "'array.brick_size'"),
    (CNVLUTIN, "sync.fifo_depth", 10**9, "'sync.fifo_depth'"),
    (CNVLUTIN, "act_format.index_bits", 10**9, "'act_format.index_bits'"),
    (A100, "split_k_max", 10**6, "'split_k_max'"),
    (A100, "peak_tflops.fp16", float("inf"), "'peak_tflops.fp16'"),
    (A100, "kernels.dense.k_half", True, "'kernels.dense.k_half' is a boolean"),
    (AKD1000, "nodes", 10**6, "'nodes': Input should be less than or equal to 1024"),
    (AKD1000, "max_simulated_frames", 10**6, "'max_simulated_frames'"),
    (AKD1000, "energy_per_event_pj", float("inf"), "'energy_per_event_pj'"),
])
def test_hostile_numbers_are_refused_with_the_key(tmp_path, config, path, value, needle):
    data = _set(yaml.safe_load(Path(config).read_text()), path, value)
    file = write(tmp_path, data)
    with pytest.raises(ArchError) as err:
        load_arch(file)
    assert needle in str(err.value) and str(file) in str(err.value)


def test_bounds_are_inclusive(tmp_path):
    data = _set(yaml.safe_load(CNVLUTIN.read_text()), "array.lanes", 4096)
    assert load_arch(write(tmp_path, data)).array.lanes == 4096


def test_utf16_and_bad_bytes(tmp_path):
    text = TPU.read_text()
    (tmp_path / "u16.yaml").write_bytes(text.encode("utf-16"))
    assert load_arch(tmp_path / "u16.yaml") == load_arch(TPU)
    (tmp_path / "bad.yaml").write_bytes(text.encode()[:50] + b"\xff\x80" + text.encode()[50:])
    with pytest.raises(ArchError, match="not valid YAML"):
        load_arch(tmp_path / "bad.yaml")
    (tmp_path / "deep.yaml").write_text(text + "notes: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ArchError, match="nested too deeply"):
        load_arch(tmp_path / "deep.yaml")
    (tmp_path / "digits.yaml").write_text(text + "static_power_mw: " + "9" * 5000 + "\n")
    with pytest.raises(ArchError, match="Shorten the number"):
        load_arch(tmp_path / "digits.yaml")


def _tech_table(tmp_path: Path, change) -> Path:
    raw = yaml.safe_load((ROOT / "arch_configs" / "tech" / "horowitz_45nm.yaml").read_text())
    change(raw)
    path = tmp_path / "table.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(("change", "needle"), [
    (lambda t: t["energy_pj"]["add"].update(int32=[0.1]), "'energy_pj.add.int32' must be a finite"),
    (lambda t: t["energy_pj"]["mult"].update(int16="0.8"), "'energy_pj.mult.int16'"),
    (lambda t: t["energy_pj"]["add"].update(int8=0), "'energy_pj.add.int8' must be a finite "
                                                     "number > 0"),
    (lambda t: t["energy_pj"]["dram_per_bit"].update(lpddr4=-8), "dram_per_bit.lpddr4"),
    (lambda t: t["area_um2"]["mult"].update(int8=float("inf")), "'area_um2.mult.int8'"),
    (lambda t: t["node_scaling"].update(energy_factor_by_node_nm={}), "at least one point"),
    (lambda t: t.update(node_nm=0), "'node_nm' must be a finite number > 0"),
    (lambda t: t["energy_pj"]["sram_read_64bit_by_size_bytes"].update({"8KB": 1.0}),
     "whole number of bytes"),
    (lambda t: t["energy_pj"].update(regfile=1.0), "unknown key(s) ['regfile'] in 'energy_pj'"),
    (lambda t: t.pop("area_um2"), "'top level' is missing ['area_um2']"),
    (lambda t: t["energy_pj"]["add"].update(int99=1.0), "key 'int99' must be a number format"),
    (lambda t: t["sram_banking"].update(wire_pj_per_bit_mm=True), "wire_pj_per_bit_mm"),
])
def test_bad_tech_tables_are_refused(tmp_path, change, needle):
    path = _tech_table(tmp_path, change)
    with pytest.raises(ArchError) as err:
        load_tech_table(str(path))
    assert needle in str(err.value) and str(path) in str(err.value)


def test_tech_table_with_one_sram_point_prices_every_size(tmp_path):
    path = _tech_table(tmp_path, lambda t: t["energy_pj"].update(
        sram_read_64bit_by_size_bytes={1048576: 100.0}))
    table = load_tech_table(str(path))
    assert table.sram_pj_per_byte(1 << 20) == pytest.approx(100 / 8)
    assert table.sram_pj_per_byte(4096) == pytest.approx(100 / 8)
    assert table.sram_price(1 << 25).banks == 32


def test_error_paths_leave_out_union_tags(tmp_path):
    data = _set(yaml.safe_load((ROOT / "arch_configs" / "scnn_like.yaml").read_text()),
                "array.pe_rows", 10**9)
    with pytest.raises(ArchError, match=r"'array\.pe_rows': Input should be less"):
        load_arch(write(tmp_path, data))


@pytest.mark.parametrize("config", ["tpu_like_128x128_ws", "eyeriss_gating"])
@pytest.mark.parametrize(("op", "bits", "what"), [("out", 16, "precision.acc_bits"),
                                                   ("weight", 4, "precision.weight_bits")])
def test_pe_registers_narrower_than_their_values_are_refused(tmp_path, config, op, bits, what):
    """Systolic and zero-skip configs share the PE register schema and its width check."""
    data = yaml.safe_load((ROOT / "arch_configs" / f"{config}.yaml").read_text())
    data.setdefault("pe", {})[op] = {"words": 2, "bits": bits}
    path = write(tmp_path, data)
    with pytest.raises(ArchError) as err:
        load_arch(path)
    assert f"pe.{op}.bits is {bits}, narrower than" in str(err.value)
    assert what in str(err.value) and str(path) in str(err.value)
    data["pe"][op]["bits"] = 32
    assert load_arch(write(tmp_path, data)).pe.register(op).words == 2


def _models(cls: type) -> list[type]:
    return [cls, *(m for sub in cls.__subclasses__() for m in _models(sub))]


_JSON_LIKE = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False) | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner,
                                                                max_size=3),
    max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(value=_JSON_LIKE, pick=st.integers(0, 10**6))
def test_values_the_bool_check_skips_hold_no_bool_it_would_flag(value, pick: int) -> None:
    """Every field of every arch model: a value the fast test lets through (not a boolean, and
    no boolean inside where the annotation is read item by item) is one the full check passes."""
    from accelsim.arch import schema

    fields = [f for model in _models(schema.StrictModel) for f in schema._checked_fields(model)]
    _, annotation, descends = fields[pick % len(fields)]
    if not (isinstance(value, bool) or (descends and schema._holds_bool(value))):
        assert schema._bool_for_number(annotation, value) is None
