"""zero_skip on the tiling traffic model: DRAM fills from the shared search with compressed tiles,
the per-level, per-operand access columns, the latency split and PE registers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from accelsim.arch.energy import action_energy_pj
from accelsim.engines import systolic, traffic, zero_skip
from accelsim.engines.zero_skip import count
from accelsim.engines.zero_skip.formats import stored_size
from accelsim.errors import AccelsimError
from accelsim.kinds import load_arch, parse_arch
from accelsim.simulate import simulate
from accelsim.workload import ConvShape, GemmShape, Layer, Workload, load_workload
from tests.test_zero_skip import SETTINGS, conv_layers, gemm_layers

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ["cnvlutin_like", "scnn_like", "eie_like", "eyeriss_gating"]
WITH_DRAM = ["scnn_like", "eyeriss_gating"]
SPLIT = ("cycles_compute", "cycles_fill_drain", "cycles_load", "cycles_stall")


def shipped(name: str) -> zero_skip.Config:
    return load_arch(ROOT / "arch_configs" / f"{name}.yaml")


def real_layers() -> list[Layer]:
    """A few traced layers: convs (strided, depthwise, 1x1) and linear layers."""
    picks = {"digits_cnn": ["conv1", "conv2", "fc1"],
             "efficientnet_lite0": ["_conv_stem", "_blocks.1._depthwise_conv",
                                    "_blocks.1._project_conv"],
             "minilm": None}
    layers = []
    for trace, names in picks.items():
        wl = load_workload(ROOT / "workloads" / f"{trace}.npz")
        chosen = wl.layers[:3] if names is None else [lv for lv in wl.layers if lv.name in names]
        layers += chosen
    return layers


REAL = real_layers()


def word_bytes(arch: zero_skip.Config) -> dict[str, float]:
    p = arch.precision
    return {"act": p.act_bits / 8, "weight": p.weight_bits / 8, "psum": p.acc_bits / 8,
            "out": p.act_bits / 8}


def access_columns(arch: zero_skip.Config, columns: dict) -> list[tuple[str, str, str]]:
    """(column prefix, level name, space) of every per-level access column in `columns`."""
    found = []
    for level in arch.memory:
        for space in traffic.SPACES:
            prefix = f"{level.name}_{space}"
            if f"{prefix}_reads" in columns:
                found.append((prefix, level.name, space))
    return found


def mapping_of(columns: dict) -> traffic.Mapping:
    return traffic.Mapping(tuple(columns["tile_loop_order"]), int(columns["tile_pixels"]),
                           int(columns["tile_filters"]), int(columns["tile_window"]),
                           bool(columns["tile_fits"]), int(columns["tile_array_reloads"]))


def check_columns(arch: zero_skip.Config, r) -> None:
    """reads x word size = bytes in every access column; the latency split adds up to cycles;
    DRAM bytes are its columns' bytes plus its metadata."""
    word = word_bytes(arch)
    found = access_columns(arch, r.columns)
    assert found, "no access columns"
    table = action_energy_pj(arch)
    for prefix, level, space in found:
        c = r.columns
        assert c[f"{prefix}_reads"] * word[space] == pytest.approx(c[f"{prefix}_read_bytes"],
                                                                   rel=1e-12, abs=1e-9)
        assert c[f"{prefix}_writes"] * word[space] == pytest.approx(c[f"{prefix}_write_bytes"],
                                                                    rel=1e-12, abs=1e-9)
        energy = (c[f"{prefix}_read_bytes"] * table[f"{level}.read_bytes"]
                  + c[f"{prefix}_write_bytes"] * table[f"{level}.write_bytes"])
        priced = traffic.space_energy_pj(c, table, [lv.name for lv in arch.memory])
        assert priced[f"energy_{prefix}_pj"] == pytest.approx(energy, rel=1e-12, abs=1e-9)
        assert f"energy_{prefix}_pj" not in c   # the engine counts; the energy model prices
    assert sum(r.columns[k] for k in SPLIT) == pytest.approx(r.cycles, rel=1e-12)
    assert min(r.columns[k] for k in SPLIT) >= 0
    dram = arch.dram()
    if dram is not None:
        data = sum(r.columns[f"{p}_{verb}_bytes"] for p, level, _ in found if level == dram.name
                   for verb in ("read", "write"))
        assert r.dram_bytes == pytest.approx(data + r.columns["dram_metadata_bytes"], rel=1e-12)


def check_not_more_on_the_same_tiling(arch: zero_skip.Config, layer: Layer) -> None:
    """On the dense equivalent's tiling (none without DRAM: nothing is fetched), no access
    column of the zero-skip arch moves more data bytes or accesses than the dense one's."""
    dense = arch.dense_equivalent()
    d = count.count_layer(layer, dense)
    if arch.dram() is None:
        assert "tile_fits" not in d.columns
        z = count.count_layer(layer, arch)
    elif not d.columns["tile_fits"]:
        return
    else:
        z = count.count_layer(layer, arch, tiling=mapping_of(d.columns))
    for prefix, _, _ in access_columns(arch, z.columns):
        for name in ("reads", "writes", "read_bytes", "write_bytes"):
            column = f"{prefix}_{name}"
            assert z.columns[column] <= d.columns[column] * (1 + 1e-9) + 1e-9, column


@pytest.mark.parametrize("name", CONFIGS)
def test_access_columns_are_consistent_on_real_layers(name):
    arch = shipped(name)
    for layer in REAL:
        for a in (arch, arch.dense_equivalent()):
            check_columns(a, count.count_layer(layer, a))


@pytest.mark.parametrize("name", CONFIGS)
def test_not_more_traffic_than_dense_on_the_same_tiling_real_layers(name):
    arch = shipped(name)
    for layer in REAL:
        check_not_more_on_the_same_tiling(arch, layer)


@SETTINGS
@given(layer=st.one_of(conv_layers(), gemm_layers()), name=st.sampled_from(CONFIGS))
def test_not_more_traffic_than_dense_on_the_same_tiling_random_layers(layer, name):
    arch = shipped(name)
    check_columns(arch, count.count_layer(layer, arch))
    check_not_more_on_the_same_tiling(arch, layer)


def check_equal_on_the_same_tiling(arch: zero_skip.Config, layer: Layer) -> None:
    d = count.count_layer(layer, arch.dense_equivalent())
    z = count.count_layer(layer, arch, tiling=mapping_of(d.columns) if arch.dram() else None)
    found = access_columns(arch, z.columns)
    assert found
    for prefix, _, _ in found:
        for name in ("reads", "writes", "read_bytes", "write_bytes"):
            column = f"{prefix}_{name}"
            assert z.columns[column] == pytest.approx(d.columns[column], rel=1e-12), column


@pytest.mark.parametrize("name", CONFIGS)
def test_a_dense_trace_moves_what_the_dense_equivalent_moves(name):
    """Without zeros, on the same tiling, every access column equals the dense equivalent's:
    what compression adds is metadata, counted apart."""
    arch = shipped(name)
    for layer in REAL:
        if layer.op != "linear":
            continue
        dense = Layer(layer.name, layer.op, layer.shape,
                      act_mask=np.ones(layer.shape.act_shape, dtype=bool),
                      weight_mask=np.ones(layer.shape.weight_shape, dtype=bool))
        check_equal_on_the_same_tiling(arch, dense)


def test_a_dense_array_moves_what_the_systolic_kind_moves():
    """eyeriss_gating's dense equivalent against the same array as a systolic config: every
    access, PE register and tiling column and the latency split are the same numbers."""
    dense = shipped("eyeriss_gating").dense_equivalent()
    data = dense.model_dump(mode="json")
    a = data.pop("array")
    for key in ("skip", "gate", "sync", "act_format", "weight_format",
                "gated_mac_energy_fraction", "idle_mac_energy_fraction"):
        data.pop(key)
    same = parse_arch({**data, "kind": "systolic", "rows": a["rows"], "cols": a["cols"],
                       "dataflow": a["order"]})
    for layer in REAL:
        z, s = count.count_layer(layer, dense), systolic.simulate(layer, same)
        names = [c for c in s.columns if c.startswith(("dram_", "global_buffer_", "tile_", "pe_",
                                                       "energy_global_buffer_", "energy_dram_"))]
        assert names
        for c in names:
            assert z.columns[c] == (s.columns[c] if isinstance(s.columns[c], str)
                                    else pytest.approx(s.columns[c], rel=1e-12)), (layer.name, c)
        for c in SPLIT[:3]:
            assert z.columns[c] == s.columns[c]


@pytest.mark.parametrize("name", WITH_DRAM)
def test_own_tiling_moves_no_more_dram_data_than_dense(name):
    """Each on its own tiling, the zero-skip arch's DRAM data bytes (metadata apart) stay at or
    under its dense equivalent's."""
    arch = shipped(name)
    dense = arch.dense_equivalent()
    for layer in REAL:
        z, d = count.count_layer(layer, arch), count.count_layer(layer, dense)
        assert z.dram_bytes - z.columns["dram_metadata_bytes"] <= d.dram_bytes * (1 + 1e-9)


def compressed_weights_arch(buffer_bytes: int) -> zero_skip.Config:
    """A 16 x 16 OS dense array with bitmap-compressed weights, one shared buffer."""
    return parse_arch({
        "name": "t", "kind": "zero_skip", "clock_mhz": 100,
        "precision": {"act_bits": 16, "weight_bits": 16, "acc_bits": 32},
        "array": {"dataflow": "dense_array", "rows": 16, "cols": 16, "order": "os"},
        "weight_format": {"kind": "bitmap"},
        "memory": [{"name": "dram", "kind": "dram", "dram_type": "lpddr4",
                    "read_bandwidth_bytes_per_cycle": 64},
                   {"name": "buf", "kind": "sram", "size_bytes": buffer_bytes,
                    "read_bandwidth_bytes_per_cycle": 64, "holds": ["act", "weight", "out"]}]})


def test_weights_that_fit_only_compressed_are_fetched_once():
    """512 x 512 16-bit weights at 25 % density: 512 KiB dense, 160 KiB as a bitmap. Half of a
    448 KiB buffer holds them compressed with a pixel tile, never dense."""
    rng = np.random.default_rng(3)
    shape = GemmShape(M=256, K=512, N=512)
    weight = rng.random(shape.weight_shape) < 0.25
    layer = Layer("g", "linear", shape, act_mask=np.ones(shape.act_shape, dtype=bool),
                  weight_mask=weight)
    arch = compressed_weights_arch(448 * 1024)
    z = count.count_layer(layer, arch)
    d = count.count_layer(layer, arch.dense_equivalent())
    size = stored_size(weight, arch.weight_format, 16)
    assert z.columns["tile_fits"] and z.columns["tile_window"] == 512
    assert z.columns["tile_filters"] == 512  # the whole weight tensor stays on chip
    assert z.columns["dram_weight_read_bytes"] == pytest.approx(size.value_bits / 8)
    assert z.columns["dram_metadata_bytes"] == pytest.approx(size.metadata_bytes)
    assert z.columns["dram_act_reads"] == shape.M * shape.K  # every operand once
    assert z.columns["dram_psum_writes"] == 0
    dense_elements = (d.columns["dram_act_reads"] + d.columns["dram_weight_reads"]
                      + d.columns["dram_psum_writes"])
    assert dense_elements > shape.M * shape.K + shape.K * shape.N  # dense re-fetches
    assert d.columns["tile_window"] * d.columns["tile_filters"] < shape.K * shape.N


def test_shared_buffer_is_allocated_by_the_tiling():
    """The issue's case on a zero-skip dense array: a 3x3 56x56x64->64 conv, 32 x 32 int8 WS, one
    shared 2 MiB buffer. The even split spilled 32-bit partial sums on every pass (63x
    compulsory); the tiling keeps DRAM traffic at compulsory."""
    shape = ConvShape(N=1, C=64, H=56, W=56, K=64, R=3, S=3, padding=(1, 1, 1, 1))
    layer = Layer("c", "conv2d", shape, declared_act_density=0.5)
    arch = parse_arch({
        "name": "t", "kind": "zero_skip", "clock_mhz": 100,
        "precision": {"act_bits": 8, "weight_bits": 8, "acc_bits": 32},
        "array": {"dataflow": "dense_array", "rows": 32, "cols": 32, "order": "ws"},
        "gate": ["act"],
        "memory": [{"name": "dram", "kind": "dram", "dram_type": "lpddr4",
                    "read_bandwidth_bytes_per_cycle": 64},
                   {"name": "buf", "kind": "sram", "size_bytes": 2 * 1024 * 1024,
                    "read_bandwidth_bytes_per_cycle": 256, "holds": ["act", "weight", "out"]}]})
    r = count.count_layer(layer, arch)
    compulsory = 56 * 56 * 64 + 3 * 3 * 64 * 64 + 56 * 56 * 64
    assert r.dram_bytes == compulsory
    assert r.columns["dram_psum_writes"] == 0


def with_pe(base: str, pe: dict | None) -> zero_skip.Config:
    """A shipped config with registers `pe` (none when None)."""
    data = shipped(base).model_dump(mode="json")
    data["pe"] = {} if pe is None else pe
    return parse_arch(data)


def test_output_register_keeps_partial_sums_in_the_pe():
    """eyeriss_gating (12 x 14 OS) with its 12 output words per PE: the array reads its buffer
    as a larger array would, fewer buffer bytes, the same cycles; declared registers are
    priced."""
    plain = with_pe("eyeriss_gating", None)
    wide = shipped("eyeriss_gating")
    assert wide.pe.register("out").words == 12
    wl = load_workload(ROOT / "workloads" / "digits_cnn.npz")
    one, two = simulate(wl, plain).layers, simulate(wl, wide).layers
    assert (two["cycles_compute"] == one["cycles_compute"]).all()
    moved = [c for c in one.columns if c.startswith("global_buffer_") and c.endswith("_bytes")]
    assert (two[moved].sum(axis=1) <= one[moved].sum(axis=1) + 1e-9).all()
    assert (two[moved].sum(axis=1) < one[moved].sum(axis=1)).any()
    assert "energy_pe_registers_pj" not in one.columns
    table = action_energy_pj(wide)
    for _, row in two.iterrows():
        expected = sum(row[f"pe_out_{v}"] * table[f"pe_registers.out_{v}"]
                       for v in ("reads", "writes"))
        assert row["energy_pe_registers_pj"] == pytest.approx(expected, rel=1e-12)
        assert expected > 0


def test_pe_registers_priced_on_lane_dataflows_and_checked():
    arch = with_pe("cnvlutin_like", {"act": {"words": 1}, "out": {"words": 1, "bits": 32}})
    wl = Workload("w", [REAL[1]])
    df = simulate(wl, arch).layers
    table = action_energy_pj(arch)
    row = df.iloc[0]
    expected = sum(row[f"pe_{op}_{v}"] * table[f"pe_registers.{op}_{v}"]
                   for op in ("act", "out") for v in ("reads", "writes"))
    assert row["energy_pe_registers_pj"] == pytest.approx(expected, rel=1e-12) and expected > 0
    assert row["pe_act_reads"] == row["macs_done"]
    with pytest.raises(AccelsimError, match="pe.out.bits"):
        with_pe("cnvlutin_like", {"out": {"bits": 16}})


def test_compression_that_inflates_bytes_is_said_in_the_row():
    """Eyeriss' RLE (5-bit runs) on a dense input takes (16 + 5) / 16 of its plain bytes in DRAM:
    the row says so, and the design is slower than its dense equivalent; at 30 % density the
    same layer compresses, moves fewer bytes and has no such note."""
    arch = shipped("eyeriss_gating")
    rng = np.random.default_rng(3)
    act = rng.standard_normal((64, 1024)).astype(np.float16) + np.float16(8)
    dense_layer = Layer("fc", "linear", GemmShape(M=64, K=1024, N=1024), act=act)
    run = simulate(Workload("w", [dense_layer]), arch).layers.iloc[0]
    assert "act stored as rle takes 1.31x its plain bytes at density 1" in run["warnings"]
    assert run["speedup_vs_dense"] < 1 and run["dram_bytes"] > run["dram_metadata_bytes"] > 0
    sparse = act.copy()
    sparse[rng.random(act.shape) < 0.7] = 0
    sparse_layer = Layer("fc", "linear", GemmShape(M=64, K=1024, N=1024), act=sparse)
    row = simulate(Workload("w", [sparse_layer]), arch).layers.iloc[0]
    assert "plain bytes" not in row["warnings"]
    assert row["dram_bytes"] < run["dram_bytes"]
