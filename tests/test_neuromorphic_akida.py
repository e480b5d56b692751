"""Cross-check with BrainChip's own tools (PyPI `akida`, numpy-only, runs offline).

* NPs per layer: the same CNNs built as akida models and mapped on the virtual AKD1000
  (`Model.map`, MapMode.Minimal and the default AllNps) against our mapping of the same
  shapes (`mapping_mode` minimal / spread). Agreement reached with akida 2.19.3: minimal
  85 of 86 layers exact (the miss: MobileNet v1's 1024-filter separable layer on 14x14x512,
  akida 14 NPs, ours 16, one filter-split rule we do not reproduce), spread 86 of 86.
* Events: akida's software forward pass gives each layer's quantised (4-bit) outputs; with
  those as the next layer's input values, our event count equals their non-zeros exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from accelsim.engines.neuromorphic.count import network
from accelsim.engines.neuromorphic.mapping import map_workload
from accelsim.kinds import load_arch
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
    to_workload,
)

akida = pytest.importorskip("akida")

ROOT = Path(__file__).resolve().parents[1]
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


def test_nps_per_layer_agree_with_the_akida_mapper_minimal(minimal_pairs):
    pairs = [p for net in minimal_pairs.values() for p in net]
    exact = sum(theirs == ours for _, theirs, ours in pairs)
    assert exact >= len(pairs) - 1, [p for p in pairs if p[1] != p[2]]
    assert max(abs(theirs - ours) for _, theirs, ours in pairs) <= 2


def test_nps_per_layer_agree_with_the_akida_mapper_spread(spread_pairs):
    pairs = [p for net in spread_pairs.values() for p in net]
    assert all(theirs == ours for _, theirs, ours in pairs), \
        [p for p in pairs if p[1] != p[2]]


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
