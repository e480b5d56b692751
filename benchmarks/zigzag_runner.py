"""Run ZigZag (`zigzag-dse`) on one array and a list of layers; JSON in on stdin, JSON out.

Runs inside its own venv (`benchmarks/.venv-zigzag`, made by `zigzag_crosscheck.py`), never
imported by accelsim. Input: {"arch": {...}, "layers": [...]} as written by
`benchmarks/zigzag_crosscheck.py`; output per layer: ZigZag's energy (total, MAC), its latency
split and, per operand and memory level, the elements moved in each direction (fills from above,
reads to the level below, partial-sum writes from below, drains to above), from the mapping it
found (LOMA temporal search, energy-optimal).
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
from pathlib import Path

import yaml


def port_list(name: str, kind: str, bw_min: int, bw_max: int, allocation: list[str]) -> dict:
    return {"name": name, "type": kind, "bandwidth_min": bw_min, "bandwidth_max": bw_max,
            "allocation": allocation}


def register(operand: str, bits: int, words: int) -> dict:
    """A PE register (free: accelsim does not price PE registers either)."""
    if operand == "O":
        ports = [port_list("r_port_1", "read", bits, bits, ["O, tl", "O, th"]),
                 port_list("w_port_1", "write", bits, bits, ["O, fh", "O, fl"])]
    else:
        ports = [port_list("r_port_1", "read", bits, bits, [f"{operand}, tl"]),
                 port_list("w_port_1", "write", bits, bits, [f"{operand}, fh"])]
    return {"size": bits * words, "r_cost": 0.0, "w_cost": 0.0, "area": 0, "latency": 1,
            "operands": [operand], "ports": ports, "served_dimensions": []}


def hardware(a: dict) -> dict:
    """ZigZag accelerator description of the array `a` (see zigzag_crosscheck.py). ZigZag
    prices an access of a port's full bandwidth, so the per-byte prices are scaled by it."""
    buf_ports = [
        port_list("r_port_1", "read", 8, int(a["buffer_bw_bytes"] * 8),
                  ["I1, tl", "I2, tl", "O, tl", "O, th"]),
        port_list("w_port_1", "write", 8, int(a["buffer_bw_bytes"] * 8),
                  ["I1, fh", "I2, fh", "O, fh", "O, fl"])]
    dram_ports = [port_list("rw_port_1", "read_write", 8, int(a["dram_bw_bytes"] * 8),
                            ["I1, fh", "I1, tl", "I2, fh", "I2, tl", "O, fh", "O, tl", "O, fl",
                             "O, th"])]
    return {
        "name": a["name"],
        "memories": {
            "reg_w": register("I2", a["weight_bits"], a["reg_words"]["weight"]),
            "reg_i": register("I1", a["act_bits"], a["reg_words"]["act"]),
            "reg_o": register("O", a["acc_bits"], a["reg_words"]["out"]),
            "buffer": {"size": int(a["buffer_bytes"] * 8),
                       "r_cost": a["buffer_read_pj_per_byte"] * a["buffer_bw_bytes"],
                       "w_cost": a["buffer_write_pj_per_byte"] * a["buffer_bw_bytes"],
                       "area": 0, "latency": 1,
                       "operands": ["I1", "I2", "O"], "ports": buf_ports,
                       "served_dimensions": ["D1", "D2"]},
            "dram": {"size": 10**12, "r_cost": a["dram_read_pj_per_byte"] * a["dram_bw_bytes"],
                     "w_cost": a["dram_write_pj_per_byte"] * a["dram_bw_bytes"],
                     "area": 0, "latency": 1,
                     "operands": ["I1", "I2", "O"], "ports": dram_ports,
                     "served_dimensions": ["D1", "D2"]},
        },
        "operational_array": {"unit_energy": a["mac_pj"], "unit_area": 1,
                              "dimensions": ["D1", "D2"], "sizes": [a["rows"], a["cols"]]},
    }


def mapping(a: dict) -> list[dict]:
    return [{"name": "default",
             "spatial_mapping": {"D1": [f"{a['row_dim']}, {a['rows']}"],
                                 "D2": [f"{a['col_dim']}, {a['cols']}"]},
             "memory_operand_links": {"O": "O", "W": "I2", "I": "I1"}}]


def workload(layer: dict, a: dict) -> list[dict]:
    """One conv layer (a linear layer as a 1 x 1 conv over M pixels) in ZigZag's form."""
    st = layer["stride"]
    return [{
        "id": 0, "name": layer["name"], "operator_type": "Conv",
        "equation": "O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]",
        "dimension_relations": [f"ix={st}*ox+1*fx", f"iy={st}*oy+1*fy"],
        "loop_dims": ["B", "K", "C", "OY", "OX", "FY", "FX"],
        "loop_sizes": [1, layer["K"], layer["C"], layer["E"], layer["F"], layer["R"], layer["S"]],
        "operand_precision": {"W": a["weight_bits"], "I": a["act_bits"], "O": a["acc_bits"],
                              "O_final": a["act_bits"]},
        "operand_source": {"I": 0, "W": 0},
        "pr_loop_dims": ["IX", "IY"],
        "padding": [[layer["pad"], layer["pad"]], [layer["pad"], layer["pad"]]],
    }]


def moves(cme) -> dict:
    """Elements moved per operand, level and direction."""
    from zigzag.mapping.data_movement import DataDirection, DataMoveAttr

    out: dict = {}
    names = {"I": "act", "W": "weight", "O": "out"}
    for layer_op in cme.layer.layer_operands:
        mem_op = cme.memory_operand_links.layer_to_mem_op(layer_op)
        levels = cme.accelerator.memory_hierarchy.get_memory_levels(mem_op=mem_op)
        for lvl in range(cme.mapping.mem_level[layer_op]):
            move = cme.mapping.unit_mem_data_movement[layer_op][lvl]
            amount = move.get_attribute(DataMoveAttr.DATA_TRANS_AMOUNT_PER_PERIOD)
            periods = move.get_attribute(DataMoveAttr.DATA_TRANS_PERIOD_COUNT)
            units = cme.mapping.spatial_mapping.unit_count[layer_op][lvl + 1]
            name = levels[lvl].name
            for d in DataDirection:
                key = f"{name}|{names[str(layer_op)]}|{d.name.lower()}"
                out[key] = float(amount.get(d) * periods.get(d) * units)
    return out


def main() -> int:
    from zigzag.api import get_hardware_performance_zigzag

    logging.disable(logging.CRITICAL)
    spec = json.load(sys.stdin)
    a = spec["arch"]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        hw, mp = Path(tmp) / "hw.yaml", Path(tmp) / "map.yaml"
        hw.write_text(yaml.safe_dump(hardware(a), sort_keys=False))
        mp.write_text(yaml.safe_dump(mapping(a), sort_keys=False))
        for layer in spec["layers"]:
            wl = Path(tmp) / f"{layer['name']}.yaml"
            wl.write_text(yaml.safe_dump(workload(layer, a), sort_keys=False))
            energy, latency, cmes = get_hardware_performance_zigzag(
                str(wl), str(hw), str(mp), opt="energy", dump_folder=f"{tmp}/out",
                loma_show_progress_bar=False)
            cme = cmes[0][1][0][0] if isinstance(cmes[0][1], list) else cmes[0][0]
            results.append({
                "name": layer["name"], "energy_pj": float(energy), "latency_cycles": float(latency),
                "mac_pj": float(cme.mac_energy), "macs": float(cme.layer.total_mac_count),
                "computation_cycles": float(cme.latency_total0),
                "onloading_cycles": float(cme.latency_total1 - cme.latency_total0),
                "offloading_cycles": float(cme.latency_total2 - cme.latency_total1),
                "moves": moves(cme)})
    json.dump(results, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
