"""Cross-check the systolic traffic model with ZigZag (`zigzag-dse`, a Timeloop-family model):
a TPU-like and an Eyeriss-like array on ResNet-18 and transformer layers, expressed in both.

Both sides get the same hardware and the same energy table: one shared on-chip buffer and DRAM
priced per byte by accelsim's tech table (`memory_level_price`), the MAC by `mac_energy_pj`, PE
registers free (accelsim counts them but does not price them). The TPU-like array is 32 x 32
weight-stationary (C on rows, K on columns in ZigZag), int8 with 32-bit partial sums and a
2 MiB buffer; the Eyeriss-like one is 12 x 14 output-stationary (output columns on rows, K on
columns), 16-bit, with Eyeriss' 108 KB global buffer and 12 32-bit output words per PE. ZigZag
runs in its own venv (`benchmarks/.venv-zigzag`, `pip install zigzag-dse six`) through
`zigzag_runner.py` and searches its temporal mapping (LOMA, energy-optimal); accelsim keeps its
fixed dataflow and searches only the buffer tiling. Compared per layer: elements moved at DRAM
and at the buffer per operand (reads + writes), and energy per MAC. Writes
`benchmarks/results/zigzag_crosscheck.csv` (the table `tests/test_traffic.py` checks against)
and ZigZag's raw output beside it.

    .venv/bin/python benchmarks/zigzag_crosscheck.py [--zigzag-python PATH] [--reuse]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from accelsim.arch.energy import action_energy_pj, mac_energy_pj, memory_level_price  # noqa: E402
from accelsim.engines import systolic, traffic  # noqa: E402
from accelsim.kinds import parse_arch  # noqa: E402
from accelsim.workload import ConvShape, GemmShape, Layer  # noqa: E402

HERE = Path(__file__).resolve().parent
RUNNER = HERE / "zigzag_runner.py"
VENV = HERE / ".venv-zigzag"
OUT_CSV = HERE / "results" / "zigzag_crosscheck.csv"
RAW_JSON = HERE / "results" / "zigzag_raw.json"
"""ZigZag's own output of the last run, per arch (`--reuse` rebuilds the table from it)."""

LAYERS = (
    # name, K, C, E (=F), R, stride, pad  (ResNet-18 at 224 x 224, torchvision)
    ("resnet18.layer1.conv", 64, 64, 56, 3, 1, 1),
    ("resnet18.layer2.0.conv1", 128, 64, 28, 3, 2, 1),
    ("resnet18.layer2.0.downsample", 128, 64, 28, 1, 2, 0),
    ("resnet18.layer3.conv", 256, 256, 14, 3, 1, 1),
)
GEMMS = (
    # name, M (tokens), K, N: a BERT-base-like block at 128 tokens
    ("transformer.qkv", 128, 768, 2304),
    ("transformer.ffn_down", 128, 3072, 768),
)

ARCHS = {
    "tpu_like": {"rows": 32, "cols": 32, "dataflow": "ws", "row_dim": "C", "col_dim": "K",
                 "bits": (8, 8, 32), "buffer_bytes": 2 * 1024 * 1024, "buffer_bw": 1024,
                 "dram_bw": 64, "pe": {}},
    "eyeriss_like": {"rows": 12, "cols": 14, "dataflow": "os", "row_dim": "OX",
                     "col_dim": "K", "bits": (16, 16, 32), "buffer_bytes": 110592,
                     "buffer_bw": 32, "dram_bw": 8, "pe": {"out": {"words": 12}}},
}


def accelsim_arch(name: str, spec: dict) -> systolic.Config:
    act, weight, acc = spec["bits"]
    return parse_arch({
        "name": name, "kind": "systolic", "clock_mhz": 200, "rows": spec["rows"],
        "cols": spec["cols"], "dataflow": spec["dataflow"], "pe": spec["pe"],
        "precision": {"act_bits": act, "weight_bits": weight, "acc_bits": acc},
        "memory": [
            {"name": "dram", "kind": "dram", "dram_type": "lpddr4",
             "read_bandwidth_bytes_per_cycle": spec["dram_bw"]},
            {"name": "buffer", "kind": "sram", "size_bytes": spec["buffer_bytes"],
             "read_bandwidth_bytes_per_cycle": spec["buffer_bw"]},
        ]})


def layers() -> list[tuple[Layer, dict]]:
    """(accelsim layer, ZigZag layer) pairs."""
    out = []
    for name, k, c, e, r, stride, pad in LAYERS:
        h = (e - 1) * stride + r - 2 * pad
        shape = ConvShape(N=1, C=c, H=h, W=h, K=k, R=r, S=r, stride=(stride, stride),
                          padding=(pad,) * 4)
        assert e == shape.E
        out.append((Layer(name, "conv2d", shape),
                    {"name": name, "K": k, "C": c, "E": e, "F": e, "R": r, "S": r,
                     "stride": stride, "pad": pad}))
    for name, m, k, n in GEMMS:
        out.append((Layer(name, "linear", GemmShape(M=m, K=k, N=n)),
                    {"name": name, "K": n, "C": k, "E": 1, "F": m, "R": 1, "S": 1,
                     "stride": 1, "pad": 0}))
    return out


def zigzag_spec(arch: systolic.Config, spec: dict) -> dict:
    dram, buf = (memory_level_price(arch, lv) for lv in ("dram", "buffer"))
    act, weight, acc = spec["bits"]
    return {"name": arch.name, "rows": spec["rows"], "cols": spec["cols"],
            "row_dim": spec["row_dim"], "col_dim": spec["col_dim"], "act_bits": act,
            "weight_bits": weight, "acc_bits": acc,
            "reg_words": {"act": 1, "weight": 1, "out": spec["pe"].get("out", {}).get("words", 1)},
            "buffer_bytes": spec["buffer_bytes"], "buffer_bw_bytes": spec["buffer_bw"],
            "dram_bw_bytes": spec["dram_bw"], "mac_pj": mac_energy_pj(arch),
            "buffer_read_pj_per_byte": buf.read_pj_per_byte,
            "buffer_write_pj_per_byte": buf.write_pj_per_byte,
            "dram_read_pj_per_byte": dram.read_pj_per_byte,
            "dram_write_pj_per_byte": dram.write_pj_per_byte}


def ours(layer: Layer, arch: systolic.Config) -> dict:
    r = systolic.simulate(layer, arch)
    c = r.columns
    row = {"macs": layer.macs}
    for level in ("dram", "buffer"):
        for op in ("act", "weight", "out"):
            spaces = ("psum", "out") if op == "out" else (op,)
            row[f"{level}_{op}"] = sum(c.get(f"{level}_{sp}_reads", 0.0)
                                       + c.get(f"{level}_{sp}_writes", 0.0) for sp in spaces)
    levels = traffic.space_energy_pj(c, action_energy_pj(arch), [lv.name for lv in arch.memory])
    energy = mac_energy_pj(arch) * layer.macs + sum(levels.values())
    row["pj_per_mac"] = energy / layer.macs
    return row


def theirs(result: dict) -> dict:
    moves = result["moves"]
    row = {"macs": result["macs"]}
    for level in ("dram", "buffer"):
        for op in ("act", "weight", "out"):
            row[f"{level}_{op}"] = sum(v for k, v in moves.items()
                                       if k.startswith(f"{level}|{op}|"))
    row["pj_per_mac"] = result["energy_pj"] / result["macs"]
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zigzag-python", default=str(VENV / "bin" / "python"))
    parser.add_argument("--reuse", action="store_true",
                        help=f"take ZigZag's results from {RAW_JSON.name} instead of running it")
    args = parser.parse_args(argv)
    raw = json.loads(RAW_JSON.read_text()) if args.reuse else {}
    if not args.reuse and not Path(args.zigzag_python).exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "--quiet", "zigzag-dse", "six"],
                       check=True)
    pairs = layers()
    rows = []
    for name, spec in ARCHS.items():
        arch = accelsim_arch(name, spec)
        payload = {"arch": zigzag_spec(arch, spec), "layers": [z for _, z in pairs]}
        if not args.reuse:
            done = subprocess.run([args.zigzag_python, str(RUNNER)], input=json.dumps(payload),
                                  capture_output=True, text=True, check=True)
            raw[name] = json.loads(done.stdout)
        for (layer, _), result in zip(pairs, raw[name], strict=True):
            mine, peer = ours(layer, arch), theirs(result)
            assert mine["macs"] == peer["macs"], (name, layer.name)
            row = {"arch": name, "layer": layer.name, "macs": layer.macs}
            for key in mine:
                if key != "macs":
                    row[f"{key}_accelsim"] = mine[key]
                    row[f"{key}_zigzag"] = peer[key]
            rows.append(row)
    table = pd.DataFrame(rows)
    OUT_CSV.parent.mkdir(exist_ok=True)
    RAW_JSON.write_text(json.dumps(raw, indent=1))
    table.to_csv(OUT_CSV, index=False)
    show = table[["arch", "layer"]].copy()
    for key in ("dram_act", "dram_weight", "dram_out", "buffer_act", "buffer_weight",
                "buffer_out", "pj_per_mac"):
        show[key] = table[f"{key}_accelsim"] / table[f"{key}_zigzag"]
    with pd.option_context("display.width", 200):
        print("accelsim / ZigZag per layer")
        print(show.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"wrote {OUT_CSV.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
