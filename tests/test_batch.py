"""The batched evaluation a sweep uses gives the per-point path's numbers: `simulate_totals` on
random design points of every kind (seeded draws over each kind's sweepable fields) equals
`simulate(workload, arch).totals()` key for key (same keys, same order, values within 1e-12
relative), on traced and shapes-only (statistical) layers; each engine's `simulate_batch`
equals its `simulate` point by point; the sweep's chunks give the per-point rows."""

from __future__ import annotations

import copy
import dataclasses
import math
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from accelsim.engines.batch import LayerBatch
from accelsim.kinds import engine_for, load_arch, parse_arch
from accelsim.simulate import count_batch, simulate, simulate_totals
from accelsim.sweep import run_points
from accelsim.workload import load_workload
from accelsim.workload.layer import Workload

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "arch_configs"
DIGITS = ROOT / "workloads" / "digits_cnn.npz"
MINILM = ROOT / "workloads" / "minilm.npz"
REL = 1e-12

pytestmark = pytest.mark.skipif(not (DIGITS.is_file() and MINILM.is_file()),
                                reason="shipped traces absent")


def statistical(workload: Workload) -> Workload:
    """The workload as shapes-only layers at their measured densities."""
    layers = [dataclasses.replace(layer, act=None, act_mask=None, weight=None, weight_mask=None,
                                  declared_act_density=layer.act_density,
                                  declared_weight_density=layer.weight_density)
              for layer in workload.layers]
    return dataclasses.replace(workload, model=workload.model + "-shapes", layers=layers)


@pytest.fixture(scope="module")
def workloads() -> dict[str, Workload]:
    digits = load_workload(DIGITS)
    minilm = load_workload(MINILM)
    head = dataclasses.replace(minilm, layers=minilm.layers[:8], edges=[])
    return {"digits": digits, "minilm": head, "digits-shapes": statistical(digits),
            "minilm-shapes": statistical(head)}


def _systolic(d: dict, rng: random.Random) -> None:
    d["rows"] = rng.choice([1, 3, 8, 16, 32, 128, 256])
    d["cols"] = rng.choice([1, 5, 8, 16, 64, 128, 256])
    d["dataflow"] = rng.choice(["os", "ws", "is"])
    d["timing"] = rng.choice(["scalesim", "double_buffered"])
    d["group_mapping"] = rng.choice(["serial", "packed"])
    d["tiling"] = rng.choice(["search", "scalesim"])
    d["model_memory_stalls"] = rng.random() < 0.8
    d["clock_mhz"] = rng.choice([100.0, 700.0, 1000.0])
    d["pe"] = rng.choice([d.get("pe", {}), {"act": {"words": 2}, "weight": {"words": 4},
                                            "out": {"words": 8}}])
    for level in d["memory"]:
        if level["kind"] != "dram" and rng.random() < 0.5:
            level["size_bytes"] = rng.choice([4096, 65536, 1 << 20, 1 << 24])


def _gpu(d: dict, rng: random.Random) -> None:
    d["num_sms"] = rng.choice([20, 80, 108, 132])
    d["clock_mhz"] = rng.choice([900.0, 1410.0, 1980.0])
    d["split_k_max"] = rng.choice([1, 4, 16])
    d["launch_overhead_s"] = rng.choice([1e-6, 4e-6, 1e-5])
    d["memory"][0]["read_bandwidth_bytes_per_cycle"] = rng.uniform(200.0, 3000.0)


def _sparse_tensor_core(d: dict, rng: random.Random) -> None:
    d["n"], d["m"] = rng.choice([(1, 2), (2, 4), (1, 4), (4, 8)])
    d["sparse_speedup"] = None if rng.random() < 0.5 else d["m"] / d["n"] * rng.uniform(0.5, 1)
    d["policy"] = rng.choice(["dense", "prune", "compress-if-conforming"])
    d["sparse_operand"] = rng.choice(["act", "weight"])
    d["dense_macs_per_cycle"] = rng.choice([256, 4096, 110592])
    d["compute_efficiency"] = rng.uniform(0.3, 1.0)
    d["kernel_launch_cycles"] = rng.choice([0.0, 5640.0])
    d["metadata_bits"] = rng.choice([1, 2, 4])


def _zero_skip(d: dict, rng: random.Random) -> None:
    d["clock_mhz"] = rng.choice([200.0, 606.0])
    if "lanes" in d["array"]:
        d["array"]["lanes"] = rng.choice([2, 4, 16])
    if "fifo_depth" in d["sync"]:
        d["sync"]["fifo_depth"] = rng.choice([1, 2, 8])
    for level in d["memory"]:
        if level["kind"] != "dram" and rng.random() < 0.5:
            level["size_bytes"] = rng.choice([65536, 1 << 20, 1 << 25])


def _neuromorphic(d: dict, rng: random.Random) -> None:
    d["clock_mhz"] = rng.choice([100.0, 300.0])


VARY: dict[str, tuple[list[str], Callable[[dict, random.Random], None], int]] = {
    "systolic": (["tpu_like_128x128_ws", "eyeriss_like"], _systolic, 12),
    "gpu": (["a100", "v100"], _gpu, 4),
    "sparse_tensor_core": (["a100_sparse_tc"], _sparse_tensor_core, 8),
    "zero_skip": (["cnvlutin_like", "eyeriss_gating"], _zero_skip, 3),
    "neuromorphic": (["akd1000"], _neuromorphic, 2),
}
WORKLOADS = {"systolic": ["digits", "minilm", "digits-shapes", "minilm-shapes"],
             "gpu": ["digits", "minilm-shapes"],
             "sparse_tensor_core": ["digits", "minilm", "minilm-shapes"],
             "zero_skip": ["digits", "digits-shapes"],
             "neuromorphic": ["digits"]}


def random_points(kind: str, seed: int) -> list:
    """Seeded random design points of `kind` over its sweepable fields, from its configs."""
    bases, vary, count = VARY[kind]
    rng = random.Random(seed)
    points = []
    for base in bases:
        data = load_arch(CONFIGS / f"{base}.yaml").model_dump(mode="json")
        for i in range(count):
            d = copy.deepcopy(data)
            vary(d, rng)
            d["name"] = f"{base}-{i}"
            points.append(parse_arch(d, f"random {kind} point {i}"))
    return points


def assert_same(expected: dict, got: dict, where: str) -> None:
    assert list(got) == list(expected), f"{where}: keys differ"
    for key, want in expected.items():
        have = got[key]
        if isinstance(want, float) and isinstance(have, float):
            same = (want == have or (math.isnan(want) and math.isnan(have))
                    or abs(have - want) <= REL * abs(want))
            assert same, f"{where}: {key} = {have!r}, per point {want!r}"
        else:
            assert have == want, f"{where}: {key} = {have!r}, per point {want!r}"


@pytest.mark.parametrize("kind", sorted(VARY))
def test_batched_totals_equal_per_point_totals(kind: str, workloads: dict) -> None:
    assert kind in {"systolic", "gpu", "sparse_tensor_core", "zero_skip", "neuromorphic"}
    archs = random_points(kind, seed=len(kind))
    for name in WORKLOADS[kind]:
        workload = workloads[name]
        batched = simulate_totals(workload, archs)
        assert len(batched) == len(archs)
        for arch, got in zip(archs, batched):
            assert_same(simulate(workload, arch).totals(), got, f"{arch.name} on {name}")


def _same_counts(batch: LayerBatch, i: int, res, where: str) -> None:
    point = batch.point(i)
    for field in ("cycles", "compute_cycles", "stall_cycles", "macs_dense", "macs_done",
                  "macs_skipped", "macs_gated", "dram_bytes", "utilization", "bound",
                  "engine_mode", "warnings"):
        want, have = getattr(res, field), getattr(point, field)
        if isinstance(want, str | list):
            assert have == want, f"{where}: {field}"
        else:
            assert have == pytest.approx(want, rel=REL, nan_ok=True), f"{where}: {field}"
    assert list(point.actions) == list(res.actions), f"{where}: action names"
    assert point.actions == pytest.approx(res.actions, rel=REL), f"{where}: actions"
    detail = {c: v for c, v in res.columns.items() if not c.startswith("breakeven_density_")}
    assert list(point.columns) == list(detail), f"{where}: columns"
    for c, want in detail.items():
        have = point.columns[c]
        if isinstance(want, float):
            assert have == pytest.approx(want, rel=REL, nan_ok=True), f"{where}: {c}"
        else:
            assert have == want, f"{where}: {c}"


@pytest.mark.parametrize("kind", ["systolic", "gpu", "sparse_tensor_core"])
def test_engine_batches_equal_simulate_per_layer(kind: str, workloads: dict) -> None:
    """Where an engine has `simulate_batch`, point i of it is its `simulate` (GPU batches leave
    out the per-layer break-even columns and curves, which no total needs)."""
    archs = random_points(kind, seed=7)
    engine = engine_for(kind)
    assert callable(engine.simulate_batch)
    for name in ("digits", "minilm-shapes"):
        for layer in workloads[name].layers:
            batch = count_batch(layer, archs)
            assert len(batch) == len(archs)
            for i, arch in enumerate(archs):
                _same_counts(batch, i, engine.simulate(layer, arch),
                             f"{arch.name}, {name} {layer.name}")


def test_more_zeros_in_the_trace_change_batched_totals_as_per_point(workloads: dict) -> None:
    """The comparison can fail: a workload with other densities gives other batched totals,
    and they still follow the per-point path."""
    archs = random_points("zero_skip", seed=3)[:3]
    shapes = workloads["digits-shapes"]
    sparser = dataclasses.replace(shapes, layers=[
        dataclasses.replace(layer, declared_act_density=layer.act_density / 4)
        for layer in shapes.layers])
    a, b = simulate_totals(shapes, archs), simulate_totals(sparser, archs)
    assert all(y["latency_s"] < x["latency_s"] for x, y in zip(a, b))
    for arch, got in zip(archs, b):
        assert_same(simulate(sparser, arch).totals(), got, arch.name)


def test_sweep_chunks_give_the_per_point_rows() -> None:
    archs = [a.model_dump(mode="json") for a in random_points("systolic", seed=11)[:6]]
    archs += [a.model_dump(mode="json") for a in random_points("sparse_tensor_core", seed=1)[:3]]
    rows = run_points(archs, str(DIGITS))
    singles = [run_points([a], str(DIGITS))[0] for a in archs]
    assert len(rows) == len(archs)
    for got, want, data in zip(rows, singles, archs):
        assert_same(want, got, data["name"])
        assert "workload" not in got and math.isfinite(got["latency_s"])
