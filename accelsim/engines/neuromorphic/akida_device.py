"""A `Config` for any virtual device of BrainChip's `akida` package (AKD1000, AKD1500, the IP v2
devices, `akida.create_device(...)` meshes, `akida.compute_min_device(...)`).

The device object gives the mesh: node positions, the DMA stop, which NPs exist and which of
them run fully connected layers with their weights in their own memory (FNP3) or in external
memory (FNP2), whether an NP runs only fully connected layers, whether there is an input unit
(HRC), and the per-NP SRAM sizes; akida's `MapConstraints` for the device gives the cap on
filters per NP (504 on AKD1000, 512 on AKD1500 and the other devices in akida 2.19.3).
Everything else (throughput, energy, memory allocation rules, supported widths) comes from
`base`, the config of the same IP version (`arch_configs/akd1000.yaml` for v1,
`arch_configs/akida2_scalable.yaml` for v2).
"""

from __future__ import annotations

from typing import Any

from accelsim.engines.neuromorphic.config import Config
from accelsim.errors import ArchError


def _types(np_info: Any) -> set[str]:
    return {str(t).rsplit(".", 1)[-1] for t in np_info.types}


def config_for_device(device: Any, base: Config, name: str | None = None) -> Config:
    """`base` with the mesh, NP roles, input unit and SRAM sizes of the akida `device`."""
    mesh = device.mesh
    entries = [((n.ident.col, n.ident.row), n.ident.id, _types(n)) for n in mesh.nps]
    if not entries:
        raise ArchError(f"akida device {device}: it has no NPs to map layers onto.")
    per_node = base.nps_per_node
    nodes = sorted({pos for pos, _, _ in entries}, key=lambda p: (p[1], p[0]))
    dma = (int(mesh.dma_event.col), int(mesh.dma_event.row))
    ids = {pos: sorted(i for p, i, _ in entries if p == pos) for pos in nodes}
    reserved = 0
    for pos, present in ids.items():
        missing = per_node - len(present)
        if present != list(range(missing, per_node)) or (missing and pos != dma):
            raise ArchError(f"akida device {device}: node {pos} has NPs {present}; a node holds "
                            f"NPs 0..{per_node - 1}, the DMA node only its last ones.")
        reserved = max(reserved, missing)
    fnp = tuple((c, r, i) for (c, r), i, t in entries if "FNP3" in t)
    external = tuple((c, r, i) for (c, r), i, t in entries if "FNP2" in t)
    fc_only = tuple((c, r, i) for (c, r), i, t in entries
                    if ("FNP2" in t or "FNP3" in t) and "CNP1" not in t)
    sram = mesh.np_sram_size
    import akida

    max_filters = int(akida.MapConstraints(device).cnp_max_filters)
    update: dict[str, Any] = {
        "name": name or f"{base.name} on akida {device.desc or device.version}",
        "nodes": len(nodes), "node_positions": tuple(nodes), "mesh_cols": None,
        "dma_node": dma, "dma_reserved_nps": reserved,
        "fnp_slots": fnp, "fnp_external_slots": external, "fc_only_slots": fc_only,
        "input_unit": base.input_unit and mesh.hrc is not None,
        "np_weight_memory_bytes": int(sram.weight_bytes),
        "np_input_memory_bytes": int(sram.input_bytes),
        "max_filters_per_np": max_filters,
    }
    return Config.model_validate({**base.model_dump(), **update})
