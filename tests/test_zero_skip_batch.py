"""The zero-skip kind's batched path (`accelsim.engines.zero_skip.batch`) gives `simulate`'s
counts point by point: on seeded random points of the four shipped designs (two without DRAM,
two with), several of which differ only in their memory levels' sizes, every field, action,
column and warning of each point equals the per-point `simulate`, on the digits trace and on
its shapes-only twin, also where a previous batch counted the point's group; whole-workload
totals follow; the energy columns of points counted once
are priced at each point's own pJ per byte, and DRAM points whose sizes change their tiling
are never counted together."""

from __future__ import annotations

import copy
import random

import pytest

from accelsim.engines import zero_skip
from accelsim.engines.zero_skip.batch import clear_counts, group_key, point_groups
from accelsim.kinds import engine_for, load_arch, parse_arch
from accelsim.simulate import count_batch, simulate, simulate_totals
from accelsim.workload import load_workload
from accelsim.workload.layer import Workload
from tests.test_batch import CONFIGS, DIGITS, _same_counts, assert_same, statistical

BASES = ("cnvlutin_like", "eie_like", "eyeriss_gating", "scnn_like")
"""Shipped zero-skip designs: cnvlutin_like and eie_like have no DRAM level, the others do."""
SIZES = (32768, 65536, 1 << 20, 1 << 25)
"""On-chip level sizes (bytes) the random points draw from."""

pytestmark = pytest.mark.skipif(not DIGITS.is_file(), reason="shipped trace absent")


@pytest.fixture(scope="module")
def workloads() -> dict[str, Workload]:
    digits = load_workload(DIGITS)
    return {"digits": digits, "digits-shapes": statistical(digits)}


def _draw_sizes(d: dict, rng: random.Random) -> None:
    for level in d["memory"]:
        if level["kind"] != "dram":
            level["size_bytes"] = rng.choice(SIZES)


def _draw_array(d: dict, rng: random.Random) -> None:
    array = d["array"]
    for field, values in (("lanes", (2, 4, 16, 64)), ("filters_per_pass", (16, 64, 256)),
                          ("brick_size", (4, 8, 16))):
        if field in array:
            array[field] = rng.choice(values)
    d["sync"]["fifo_depth"] = rng.choice([1, 2, 8])


def random_points(seed: int, designs: int = 3, siblings: int = 2) -> list:
    """`designs` random points per base, each with `siblings` more that differ from it only in
    their levels' sizes and names, shuffled (a group's points are not side by side)."""
    rng = random.Random(seed)
    points = []
    for base in BASES:
        data = load_arch(CONFIGS / f"{base}.yaml").model_dump(mode="json")
        for i in range(designs):
            d = copy.deepcopy(data)
            _draw_array(d, rng)
            for j in range(siblings + 1):
                sibling = copy.deepcopy(d)
                _draw_sizes(sibling, rng)
                sibling["name"] = f"{base}-{i}-{j}"
                points.append(parse_arch(sibling, f"random zero-skip point {base} {i} {j}"))
    rng.shuffle(points)
    return points


def _with_sizes(base: str, sizes: dict[str, int], name: str):
    """A shipped design with some of its levels' sizes (bytes, by level name) replaced."""
    data = load_arch(CONFIGS / f"{base}.yaml").model_dump(mode="json")
    for level in data["memory"]:
        level["size_bytes"] = sizes.get(level["name"], level["size_bytes"])
    data["name"] = name
    return parse_arch(data, name)


def test_points_include_groups_across_sizes_of_archs_without_dram() -> None:
    """The random points exercise both rules: without DRAM a group holds points of other
    sizes; with DRAM only points of the same sizes."""
    archs = random_points(seed=14)
    groups = point_groups(archs)

    def sizes(i: int) -> tuple:
        return tuple(level.size_bytes for level in archs[i].memory)

    across = [g for g in groups if len({sizes(i) for i in g}) > 1]
    assert across and all(archs[g[0]].dram() is None for g in across)
    assert any(archs[g[0]].dram() is not None for g in groups)
    assert len(groups) < len(archs)


@pytest.mark.parametrize("name", ["digits", "digits-shapes"])
def test_batch_points_equal_simulate_per_layer(name: str, workloads: dict) -> None:
    archs = tuple(random_points(seed=14))
    dense = tuple(a.dense_equivalent() for a in archs)
    assert engine_for("zero_skip").simulate_batch is zero_skip.simulate_batch
    for layer in workloads[name].layers:
        for points in (archs, dense):  # as `simulate_totals` alternates them
            batch = count_batch(layer, points)
            assert len(batch) == len(points)
            for i, arch in enumerate(points):
                want = zero_skip.simulate(layer, arch)
                where = f"{arch.name}, {name} {layer.name}"
                _same_counts(batch, i, want, where)
                assert batch.point(i).columns == want.columns, f"{where}: columns exactly"


@pytest.mark.parametrize("name", ["digits", "digits-shapes"])
def test_batched_totals_equal_per_point_totals(name: str, workloads: dict) -> None:
    archs = random_points(seed=15, designs=2)
    workload = workloads[name]
    for arch, got in zip(archs, simulate_totals(workload, archs)):
        assert_same(simulate(workload, arch).totals(), got, f"{arch.name} on {name}")


def test_counts_kept_across_batches_follow_simulate(workloads: dict) -> None:
    """A sweep's next chunk: points whose group a previous batch counted (at other sizes) get
    that count, and still equal their own `simulate`."""
    clear_counts()
    archs = random_points(seed=16)
    first, second = tuple(archs[:len(archs) // 2]), tuple(archs[len(archs) // 2:])
    earlier = {group_key(a): a for a in first}
    assert any(group_key(a) in earlier and a.memory != earlier[group_key(a)].memory
               for a in second)
    for layer in workloads["digits"].layers:
        count_batch(layer, first)
        batch = count_batch(layer, second)
        for i, arch in enumerate(second):
            _same_counts(batch, i, zero_skip.simulate(layer, arch), f"{arch.name} {layer.name}")


def test_points_counted_once_are_priced_at_their_own_sizes(workloads: dict) -> None:
    """Two Cnvlutin points that differ only in the synapse buffer's size are one group with one
    count (the engine prices nothing); their totals' buffer energy columns differ (the tech
    table prices a larger SRAM higher per byte) and each is that point's own `simulate`."""
    small = _with_sizes("cnvlutin_like", {"synapse_buffer": 1 << 17}, "small")
    large = _with_sizes("cnvlutin_like", {"synapse_buffer": 1 << 25}, "large")
    assert len(point_groups([small, large])) == 1
    for layer in workloads["digits"].layers:
        batch = count_batch(layer, [small, large])
        assert batch.point(0).columns == batch.point(1).columns, layer.name
        assert not any(c.startswith("energy_") for c in batch.columns), layer.name
    totals = simulate_totals(workloads["digits"], [small, large])
    energy = [c for c in totals[0] if c.startswith("energy_synapse_buffer_")]
    assert energy and all(totals[0][c] < totals[1][c] for c in energy if totals[1][c])
    for arch, got in zip((small, large), totals):
        assert_same(simulate(workloads["digits"], arch).totals(), got, arch.name)


def test_dram_points_whose_sizes_change_the_tiling_are_counted_apart(workloads: dict) -> None:
    """On an Eyeriss-like array with DRAM, a small global buffer forces other tiles than the
    shipped one (other DRAM bytes): the two points are separate groups and the batch follows
    each point's `simulate`."""
    small = _with_sizes("eyeriss_gating", {"global_buffer": 4096}, "small")
    shipped = _with_sizes("eyeriss_gating", {}, "shipped")
    assert small.dram() is not None and len(point_groups([small, shipped])) == 2
    differs = False
    for layer in workloads["digits"].layers:
        batch = count_batch(layer, [small, shipped])
        results = [zero_skip.simulate(layer, arch) for arch in (small, shipped)]
        differs |= results[0].dram_bytes != results[1].dram_bytes
        for i, (arch, want) in enumerate(zip((small, shipped), results)):
            _same_counts(batch, i, want, f"{arch.name} {layer.name}")
    assert differs


def _with_sync(base: str, barrier: str, fifo_depth: int, name: str):
    """A shipped design with 4 lanes of 4-neuron bricks and its lanes' barrier and FIFO depth
    replaced."""
    data = load_arch(CONFIGS / f"{base}.yaml").model_dump(mode="json")
    data["array"].update(lanes=4, brick_size=4)
    data["sync"].update(barrier=barrier, fifo_depth=fifo_depth)
    data["name"] = name
    return parse_arch(data, name)


def test_fifo_depth_groups_points_only_under_item_barriers(workloads: dict) -> None:
    """With a barrier after every item the FIFO depth is never read: Cnvlutin points that
    differ only in it are one group, and each one's own `simulate` agrees. Under per-pass
    barriers the depth changes the cycles, and the points stay apart."""
    item = [_with_sync("cnvlutin_like", "item", d, f"item-{d}") for d in (1, 2, 8)]
    passes = [_with_sync("cnvlutin_like", "pass", d, f"pass-{d}") for d in (1, 2, 8)]
    assert len(point_groups(item)) == 1 and len(point_groups(passes)) == 3
    cycles = set()
    for layer in workloads["digits"].layers:
        for points in (item, passes):
            batch = count_batch(layer, points)
            for i, arch in enumerate(points):
                _same_counts(batch, i, zero_skip.simulate(layer, arch), f"{arch.name} {layer.name}")
        cycles.add(tuple(zero_skip.simulate(layer, a).cycles for a in passes))
    assert any(len(set(c)) > 1 for c in cycles)
