"""Cross-check with BrainChip's own tools (PyPI `akida`, numpy-only, runs offline).

* NPs per layer: the same CNNs built as akida models and mapped on the virtual AKD1000
  (`Model.map`, MapMode.Minimal and the default AllNps) against our mapping of the same
  shapes (`mapping_mode` minimal / spread): 85 of 86 layers exact in each mode, the miss off
  by one NP. Random models (`random_akida_v1` / `random_akida_v2`, drawn by hypothesis),
  imported with `import_akida` and mapped on every device type akida offers through
  `config_for_device`, both modes: the share of layers exact and within one NP (the full
  measurement is benchmarks/neuromorphic_mapper_agreement.py).
* Events: akida's software forward pass gives each layer's quantised (4-bit) outputs; with
  those as the next layer's input values, our event count equals their non-zeros exactly.
* Akida 2.0 config (arch_configs/akida2_scalable.yaml): its precision is the v2 layers' default
  width (8 bits), its conv strides are the ones the v2 layer constructors accept, and on
  SixNodesIPv2 layers map onto as many NPs as the SDK gives them, at 4 and at 8 bits.
* Input tiles: single-layer probes near the memory limits on AKD1000 are cut in the same row x
  column tiles as akida cuts them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from accelsim.engines.neuromorphic.akida_device import config_for_device
from accelsim.engines.neuromorphic.count import network
from accelsim.engines.neuromorphic.mapping import build_mesh, map_workload, place, plan_units
from accelsim.kinds import load_arch
from accelsim.workload.akida_import import import_akida
from tests import reference
from tests.neuromorphic_nets import (
    Net,
    Spec,
    akida_layer_names,
    akida_nps,
    akidanet,
    ds_cnn_kws,
    mobilenet_v1,
    small_cnns,
    to_akida,
    to_akida_v2,
    to_workload,
)

akida = pytest.importorskip("akida")

from benchmarks.neuromorphic_mapper_agreement import compare  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BASES = {"v1": load_arch(ROOT / "arch_configs/akd1000.yaml"),
         "v2": load_arch(ROOT / "arch_configs/akida2_scalable.yaml")}
NETS = small_cnns() + [ds_cnn_kws(), akidanet(0.5, 224), akidanet(0.25, 96, 2),
                       mobilenet_v1(1.0, 224)]


@pytest.fixture(scope="module")
def akd():
    return load_arch(ROOT / "arch_configs/akd1000.yaml")


def _compare(net: Net, arch, minimal: bool) -> list[tuple[str, int, int]]:
    ours = {u.name: u.np_count for u in map_workload(to_workload(net), arch)}
    theirs = akida_nps(to_akida(net), akida.AKD1000(), minimal=minimal)
    return [(name, theirs[name], ours[covered[0]]) for name, covered in akida_layer_names(net)]


@pytest.fixture(scope="module")
def minimal_pairs(akd):
    return {net.name: _compare(net, akd, True) for net in NETS}


@pytest.fixture(scope="module")
def spread_pairs(akd):
    arch = akd.model_copy(update={"mapping_mode": "spread"})
    return {net.name: _compare(net, arch, False) for net in NETS}


def test_at_least_five_cnns_map_in_hardware(minimal_pairs):
    assert len(minimal_pairs) >= 5
    for pairs in minimal_pairs.values():
        assert all(theirs >= 0 for _, theirs, _ in pairs)   # every layer mapped by akida too


@pytest.mark.parametrize("mode", ["minimal", "spread"])
def test_nps_per_layer_agree_with_the_akida_mapper(minimal_pairs, spread_pairs, mode):
    """The one miss in both modes: MobileNet v1's 1024-filter separable layer on 7x7x1024,
    akida 16 NPs of 64 filters, ours 15 of 69 (akida lays out 65..79 pointwise filters as 80
    here, but 100 as 104 elsewhere: a rule not reproduced)."""
    pairs = [p for net in (minimal_pairs if mode == "minimal" else spread_pairs).values()
             for p in net]
    exact = sum(theirs == ours for _, theirs, ours in pairs)
    assert exact >= len(pairs) - 1, [p for p in pairs if p[1] != p[2]]
    assert max(abs(theirs - ours) for _, theirs, ours in pairs) <= 1


def test_published_np_totals(minimal_pairs):
    """Model zoo: DS-CNN KWS on 5 NPs, AkidaNet 0.5 @ 224 on 32 (counting the dense layer)."""
    totals = {name: sum(ours for _, _, ours in pairs) for name, pairs in minimal_pairs.items()}
    assert totals["ds_cnn_kws"] == 5
    assert totals["akidanet_0.5_224"] == 32


def _akida_inputs(net: Net, images: np.ndarray) -> list[np.ndarray]:
    """Per akida layer, its input as computed by akida's forward pass (NHWC uint8)."""
    model = to_akida(net, seed=3)
    inputs = [images]
    for i in range(1, len(model.layers)):
        inputs.append(akida.Model(layers=model.layers[:i]).forward(images))
    return inputs


@pytest.mark.parametrize("net", [
    small_cnns()[0],
    small_cnns()[4],
    Net("strided", (20, 20, 3), (Spec("input", 16, 3, 2), Spec("conv", 32, 3, 2),
                                 Spec("conv", 48, 5), Spec("conv", 24, 1), Spec("fc", 8))),
], ids=lambda n: n.name)
def test_event_counts_match_akida_forward_outputs(net, akd):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(3,) + net.input_shape, dtype=np.uint8)
    inputs = _akida_inputs(net, images)
    wl = to_workload(net, frames=3)
    for layer, x in zip(wl.layers, inputs):
        values = x.reshape(3, -1) if layer.op == "linear" else np.transpose(x, (0, 3, 1, 2))
        assert values.shape == layer.shape.act_shape
        layer.act = values.astype(np.float16)
        layer.declared_act_density = None
    results = network(wl, akd).results
    for layer, x in zip(wl.layers, inputs):
        assert results[layer.name].columns["events"] == np.count_nonzero(x), layer.name
        if layer.op == "conv2d" and layer is not wl.layers[0]:
            nz = np.transpose(x, (0, 3, 1, 2)) != 0
            assert results[layer.name].columns["synaptic_ops"] == \
                reference.synops_reference(nz, layer.shape)


# --- Akida 2.0 ------------------------------------------------------------------------------

V2_PROBES = [Net(f"v2_{c}_{f}_{h}", (h, h, 3), (Spec("input", c), Spec("conv", f),
                                                 Spec("conv", 16, 1)))
             for c, f, h in ((64, 128, 16), (128, 256, 16), (256, 512, 16), (64, 64, 120))]


@pytest.fixture(scope="module")
def akida2():
    """The Akida 2.0 config on six nodes, as the SDK's SixNodesIPv2 virtual device."""
    return load_arch(ROOT / "arch_configs/akida2_scalable.yaml").model_copy(update={"nodes": 6})


def test_akida2_precision_is_the_v2_layers_default(akida2):
    for layer in (akida.Conv2D(filters=8, kernel_size=3), akida.DepthwiseConv2D(kernel_size=3),
                  akida.Dense1D(units=8)):
        assert layer.parameters.weights_bits == akida2.precision.weight_bits == 8
        assert layer.parameters.output_bits == akida2.precision.act_bits == 8


def _accepts(layer_class, **params) -> bool:
    """Whether the akida layer constructor takes these parameters."""
    try:
        layer_class(**params)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("kernel", [1, 3, 5, 7])
@pytest.mark.parametrize("stride", [1, 2])
def test_akida2_strides_are_the_ones_the_v2_layers_accept(akida2, kernel, stride):
    ours = stride in akida2.conv_kernel_strides.get(kernel, ())
    assert _accepts(akida.Conv2D, filters=8, kernel_size=kernel, kernel_stride=stride) == ours
    if kernel > 1:                     # a 1x1 depthwise conv is no layer anyone maps
        assert _accepts(akida.DepthwiseConv2D, kernel_size=kernel, kernel_stride=stride) == ours


def _v2_pairs(net: Net, arch, bits: int) -> list[tuple[str, int, int]]:
    """(layer, SDK NPs, our NPs) for the non-input layers, the trace stating `bits` bits;
    -1 where a layer is not mapped."""
    wl = to_workload(net)
    for layer in wl.layers:
        layer.act_bits = layer.weight_bits = bits
    ours = {u.name: u.np_count if u.kind != "unmappable" else -1
            for u in map_workload(wl, arch)}
    theirs = akida_nps(to_akida_v2(net, bits), akida.SixNodesIPv2())
    return [(name, theirs[name], ours[covered[0]]) for name, covered in akida_layer_names(net)[1:]]


def test_akida2_maps_4_and_8_bit_layers_as_the_sdk(akida2):
    """The config runs 8-bit models; a trace that states 4 bits per layer is mapped at 4 bits.
    Either way NPs per layer equal the v2 mapper's, the 120x120 probe included (akida cuts it
    in row x column tiles: 8 NPs at 4 bits, 16 at 8), and 8 bits take more NPs than 4."""
    mapped = more = 0
    for net in V2_PROBES:
        four = _v2_pairs(net, akida2, 4)
        eight = _v2_pairs(net, akida2, 8)
        assert [p for p in four + eight if p[1] != p[2]] == [], (net.name, four, eight)
        for (_, _, ours4), (_, _, ours8) in zip(four, eight):
            mapped += ours4 > 0 and ours8 > 0
            more += ours8 > ours4 > 0
    assert mapped >= 6 and more >= 3


# --- random models on every device type -----------------------------------------------------


@given(st.lists(st.integers(0, 2**31 - 1), min_size=4, max_size=4, unique=True))
@settings(max_examples=2, deadline=None, derandomize=True, phases=(Phase.generate,))
def test_random_models_map_like_akida_on_every_device_type(seeds):
    """Four random v1 and four random v2 models on AKD1000, AKD1500, TwoNodesIPv1 / the four
    v2 devices, an `akida.create_device` mesh and the model's `compute_min_device`, both
    modes: at least 98 % of layers exact and none off by more than one NP (measured over
    seeds 0-59: 2522 of 2522 layers exact)."""
    rows = [r for version in ("v1", "v2") for seed in seeds
            for r in compare(version, seed, BASES) if r["akida"] is not None]
    assert len(rows) >= 40
    exact = sum(r["akida"] == r["ours"] for r in rows)
    near = sum(r["ours"] >= 0 and abs(r["akida"] - r["ours"]) <= 1 for r in rows)
    assert exact >= 0.98 * len(rows), [r for r in rows if r["akida"] != r["ours"]]
    assert near == len(rows), [r for r in rows if r["akida"] != r["ours"]]


def test_a_device_config_has_the_devices_nps_and_roles():
    """`config_for_device` reads the mesh of an akida device: AKD1000's 78 NPs with FNP3 on NP 0
    of most nodes and four FNP2 at (4, 1); a `create_device` mesh with one FC NP that runs
    nothing else; a dense head takes an FC NP and convs take the others first."""
    arch = config_for_device(akida.AKD1000(), BASES["v1"])
    mesh = build_mesh(arch)
    assert len(mesh.slots) == 78
    assert mesh.external_slots == {((4, 1), i) for i in range(4)}
    assert len(mesh.fnp_slots) == 18 + 4
    small = config_for_device(akida.create_device(7, 1), BASES["v2"])
    m = build_mesh(small)
    assert len(m.slots) == 8 and len(m.fc_only) == 1 and m.fc_only <= m.fnp_slots
    assert m.rank(next(iter(m.fc_only)), "fnp") == 1          # an FNP2: streams from DRAM


def test_a_device_config_takes_akidas_filter_cap():
    """Filters per NP are capped as akida's `MapConstraints` caps them: 504 on AKD1000, 512 on
    AKD1500 and TwoNodesIPv1 (the spread search bisects from there)."""
    for device, version, cap in ((akida.AKD1000(), "v1", 504), (akida.AKD1500(), "v1", 512),
                                 (akida.TwoNodesIPv1(), "v1", 512),
                                 (akida.SixNodesIPv2(), "v2", 512)):
        assert config_for_device(device, BASES[version]).max_filters_per_np == cap


# --- multi-pass: a new pass and its producer's NPs ------------------------------------------


def _three_pointwise():
    """InputConv2D -> three 256-filter 1x1 Conv2D layers (4-bit), small enough that only the
    filter cap sets their NPs: ceil(256 / cap) each."""
    from tests.neuromorphic_nets import set_random_variables

    model = akida.Model()
    model.add(akida.InputConv2D(input_shape=(8, 8, 3), kernel_size=3, filters=32,
                                output_bits=4, name="in"))
    for name in "abc":
        model.add(akida.Conv2D(filters=256, kernel_size=1, weights_bits=4, output_bits=4,
                               name=name))
    set_random_variables(model, np.random.default_rng(0))
    return model


@pytest.mark.parametrize("cap", [128, 86, 64, 52, 43])
@pytest.mark.parametrize("hw_only", [True, False])
def test_a_new_pass_leaves_its_producers_nps(cap, hw_only):
    """On TwoNodesIPv2 (8 NPs) with at most `cap` filters per NP: 2 + 2 + 2 NPs run in one
    pass; 3 + 3 and 4 + 4 fill the first pass, and the third layer's new pass takes NPs the
    second layer does not hold (the first layer's, as ours). With 5 + 5 and 6 + 6 the second
    layer's new pass would have only 3 or 2 NPs its producer does not hold: akida refuses the
    map in hardware only and otherwise starts a second sequence on the whole mesh, as ours.
    Our NPs are akida's, one by one."""
    model = _three_pointwise()
    device = akida.TwoNodesIPv2()
    constraints = akida.MapConstraints(device)
    constraints.cnp_max_filters = cap
    arch = config_for_device(device, BASES["v2"])
    ours = {u.name: u for u in place(plan_units(import_akida(model, frames=1), arch,
                                                filters_cap=cap), arch, build_mesh(arch))}
    try:
        model._map(device, hw_only=hw_only, constraints=constraints)
    except RuntimeError:
        assert hw_only and ours["b"].sequence_index == 1
        return
    passes = [(si, p) for si, q in enumerate(model.sequences) for p in q.passes]
    where = {layer.name: (si, i) for i, (si, p) in enumerate(passes) for layer in p.layers}
    for layer in model.layers[1:]:
        theirs = sorted(((n.ident.col, n.ident.row), n.ident.id) for n in layer.mapping.nps)
        assert sorted(ours[layer.name].nps) == theirs
        assert (ours[layer.name].sequence_index, ours[layer.name].pass_index) == \
            where[layer.name]
    assert len(passes) == (1 if cap >= 128 else 2 if cap > 52 else 3)
    if ours["c"].sequence_index == ours["b"].sequence_index:
        assert not set(ours["c"].nps) & set(ours["b"].nps)


@pytest.mark.parametrize("version, seed, device", [
    ("v2", 10, "TwoNodesIPv2"), ("v2", 39, "SixNodesIPv2"), ("v1", 53, "TwoNodesIPv1")])
def test_multi_pass_models_spread_as_akida(version, seed, device):
    """Random multi-pass models where a spread search that reopens the whole mesh for a new
    pass settles on a lower filter cap than akida's (3 vs 6, 8 vs 12 and 4 vs 6 NPs on a
    layer): akida refuses those caps, as its new pass leaves the producer's NPs out."""
    rows = [r for r in compare(version, seed, BASES)
            if r["device"] == device and r["mode"] == "spread"]
    assert rows and all(r["akida"] is not None for r in rows)
    assert [r["ours"] for r in rows] == [r["akida"] for r in rows]


# --- input tiles, probed one layer at a time ------------------------------------------------

V1_TILE_PROBES = [   # (H, W, C, kernel, input bits, max pooling): chosen to sit near the limits
    (9, 34, 448, 3, 4, False), (62, 69, 304, 3, 4, False), (49, 69, 304, 3, 4, False),
    (56, 69, 304, 3, 4, False), (31, 20, 256, 3, 4, False), (10, 66, 256, 3, 4, False),
    (9, 20, 256, 3, 1, False), (33, 8, 8, 1, 4, False), (30, 20, 256, 3, 4, True),
    (10, 34, 256, 3, 4, True), (62, 69, 304, 3, 4, True), (17, 20, 256, 3, 4, True),
]


def _tile_probe(h: int, w: int, c: int, kernel: int, bits: int, pool: bool):
    """InputConvolutional -> the probed Convolutional -> a 1x1 Convolutional (akida maps no max
    pooling on a model's last layer), random variables."""
    from tests.neuromorphic_nets import set_random_variables

    model = akida.Model()
    model.add(akida.InputConvolutional(input_shape=(h, w, 1), kernel_size=(3, 3), filters=c,
                                       weights_bits=8, act_bits=bits, name="in"))
    extra = dict(pool_type=akida.PoolType.Max, pool_size=(2, 2)) if pool else {}
    model.add(akida.Convolutional(kernel_size=(kernel, kernel), filters=8, weights_bits=4,
                                  act_bits=4, name="x", **extra))
    model.add(akida.Convolutional(kernel_size=(1, 1), filters=8, weights_bits=4, act_bits=4,
                                  name="y"))
    set_random_variables(model, np.random.default_rng(0))
    return model


@pytest.mark.parametrize("probe", V1_TILE_PROBES, ids=str)
def test_v1_input_tiles_are_akidas(probe):
    """AKD1000 cuts a layer's input in row x column tiles as our rule does: rows packed in bytes
    per column and channel (4-bit: rows in pairs; 1-bit: in eights), the kernel's halo on the
    sides with a neighbour, cut axes aligned to a following 2x2 max pooling."""
    model = _tile_probe(*probe)
    device = akida.AKD1000()
    model.map(device, hw_only=True, mode=akida.MapMode.Minimal)
    parts = [n.spatial_partition for n in model.layers[1].mapping.nps]
    theirs = (len({p.x for p in parts}), len({p.y for p in parts}))
    arch = config_for_device(device, BASES["v1"])
    unit = next(u for u in map_workload(import_akida(model, frames=1), arch) if "x" in u.name)
    assert (unit.stripes, unit.col_stripes) == theirs
    assert unit.np_count == len(parts)
