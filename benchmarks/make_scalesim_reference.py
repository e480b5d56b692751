"""Build ``tests/data/scalesim_reference.csv``: compute cycles from the real SCALE-Sim 3.0.0.

Run with the system python from the repository root::

    python3 benchmarks/make_scalesim_reference.py [--jobs 2] [--scalesim-python PATH]

It builds a fixed case list (seed :data:`SEED`), creates the separate SCALE-Sim
env with ``benchmarks/scalesim_env.sh`` unless ``--scalesim-python`` names one,
runs ``benchmarks/scalesim_runner.py`` inside it on ``--jobs`` worker
processes (full simulation, then once more with ``--compute-only``), and
writes the CSV and ``tests/data/scalesim_reference.md`` (how it was made, what
each column means).

The case groups:

* ``resnet18``: the 20 convolutions and the FC layer (as a 1x1 convolution) of
  torchvision's ResNet-18 at 224x224, with the IFMAP given as the padded extent
  the layer actually reads, ``(E - 1) * stride + R``, so that SCALE-Sim's output
  size ``ceil((H - R + stride) / stride)`` equals torchvision's ``E``; on a
  128x128 array, all three dataflows.
* ``resnet18_scalesim``: the 21 rows of SCALE-Sim's own ResNet-18 topology
  (``topologies/sparsity/Resnet18.csv`` in the scale-sim-v2 repository; the
  scalesim wheel ships no topology), which gives unpadded IFMAP sizes; on a
  128x128 array, all three dataflows.
* ``conv_edge`` / ``gemm_edge``: hand-picked corner shapes (ones, filter as
  large as the input, stride larger than the filter, sizes at array multiples
  and one past them).
* ``conv_rand`` / ``gemm_rand``: random shapes (conv: H, W in 1..40, R, S in
  {1, 3, 5, 7} no larger than the input, C, K in 1..96, stride 1..3; GEMM: M,
  N, K in 1..300) on random small arrays, all three dataflows each. Shapes
  whose estimated cycle count, summed over the three dataflows, exceeds
  :data:`MAX_CYCLES_PER_SHAPE` are redrawn so that SCALE-Sim's runtime stays
  within budget.
* ``memory``: a few runs in SCALE-Sim's USER bandwidth mode with small SRAMs,
  where memory stalls appear (there ``total_cycles - stall_cycles`` is the
  compute time).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
import os
import platform
import random
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RUNNER = HERE / "scalesim_runner.py"
ENV_SCRIPT = HERE / "scalesim_env.sh"
OUT_CSV = ROOT / "tests" / "data" / "scalesim_reference.csv"
OUT_MD = ROOT / "tests" / "data" / "scalesim_reference.md"

SEED = 20250814
"""Seed of the random shape and array draws."""

DATAFLOWS = ("os", "ws", "is")

ARRAY_SHAPES: tuple[tuple[int, int], ...] = (
    (2, 2),
    (4, 4),
    (8, 8),
    (16, 16),
    (32, 32),
    (4, 16),
    (16, 4),
    (8, 32),
    (32, 8),
    (2, 16),
    (16, 2),
    (1, 8),
    (8, 1),
)
"""PE arrays (rows, cols) for the edge and random cases: square, wide, tall, single row/column."""

N_CONV_RAND = 160
N_GEMM_RAND = 70
MAX_CYCLES_PER_SHAPE = 45_000
"""Budget cap: estimated cycles of one random shape summed over its three dataflows."""

RESNET_ARRAY = (128, 128)

CHUNK_SIZE = 8
"""Cases per runner subprocess."""

CONV_FIELDS = ("ifmap_h", "ifmap_w", "filter_h", "filter_w", "channels", "num_filters", "stride")
GEMM_FIELDS = ("gemm_m", "gemm_n", "gemm_k")
INPUT_COLUMNS = (
    "case_id",
    "group",
    "kind",
    *CONV_FIELDS,
    *GEMM_FIELDS,
    "rows",
    "cols",
    "dataflow",
    "ifmap_sram_kb",
    "filter_sram_kb",
    "ofmap_sram_kb",
    "bandwidth",
)
OUTPUT_COLUMNS = (
    "total_cycles",
    "stall_cycles",
    "compute_only_cycles",
    "total_cycles_incl_prefetch",
    "overall_util_pct",
    "mapping_efficiency_pct",
    "compute_util_pct",
    "sram_ifmap_reads",
    "sram_filter_reads",
    "sram_ofmap_writes",
    "dram_ifmap_reads",
    "dram_filter_reads",
    "dram_ofmap_writes",
    "wall_s",
)

Layer = tuple[str, int, int, int, int, int, int, int]
"""(name, ifmap_h, ifmap_w, filter_h, filter_w, channels, num_filters, stride)."""


def _torch_layer(name: str, e: int, r: int, c: int, k: int, stride: int) -> Layer:
    """A conv layer with output size ``e`` x ``e``, given as the padded input extent it reads."""
    h = (e - 1) * stride + r
    return (name, h, h, r, r, c, k, stride)


def resnet18_layers() -> list[Layer]:
    """The 21 layers of torchvision ResNet-18 at 224x224 (20 convs + FC as a 1x1 conv).

    IFMAP sizes are the padded extents each layer reads, ``(E - 1) * stride + R``
    (e.g. 229 for conv1 and 58 for a 3x3 stride-1 conv on 56x56), so SCALE-Sim's
    ``ceil((H - R + stride) / stride)`` gives torchvision's output size.
    """
    layers = [_torch_layer("conv1", 112, 7, 3, 64, 2)]
    widths = (64, 128, 256, 512)
    sizes = (56, 28, 14, 7)
    c_in = 64
    for stage, (k, e) in enumerate(zip(widths, sizes), start=1):
        for block in range(2):
            first = block == 0 and stage > 1
            stride = 2 if first else 1
            layers.append(
                _torch_layer(f"layer{stage}.{block}.conv1", e, 3, c_in if block == 0 else k, k, stride)
            )
            layers.append(_torch_layer(f"layer{stage}.{block}.conv2", e, 3, k, k, 1))
            if first:
                layers.append(_torch_layer(f"layer{stage}.{block}.downsample", e, 1, c_in, k, 2))
        c_in = k
    layers.append(("fc", 1, 1, 1, 1, 512, 1000, 1))
    return layers


def resnet18_scalesim_layers() -> list[Layer]:
    """The rows of SCALE-Sim's own ``topologies/sparsity/Resnet18.csv`` (unpadded IFMAP sizes)."""
    rows = [
        ("Conv1", 224, 7, 3, 64, 2),
        ("Conv2_1a", 56, 3, 64, 64, 1),
        ("Conv2_1b", 56, 3, 64, 64, 1),
        ("Conv2_2a", 56, 3, 64, 64, 1),
        ("Conv2_2b", 56, 3, 64, 64, 1),
        ("Conv3_1a", 56, 3, 64, 128, 2),
        ("Conv3_1b", 28, 3, 128, 128, 1),
        ("Conv3_s", 56, 1, 64, 128, 2),
        ("Conv3_2a", 28, 3, 128, 128, 1),
        ("Conv3_2b", 28, 3, 128, 128, 1),
        ("Conv4_1a", 28, 3, 128, 256, 2),
        ("Conv4_1b", 14, 3, 256, 256, 1),
        ("Conv4_s", 28, 1, 128, 256, 2),
        ("Conv4_2a", 14, 3, 256, 256, 1),
        ("Conv4_2b", 14, 3, 256, 256, 1),
        ("Conv5_1a", 14, 3, 256, 512, 2),
        ("Conv5_1b", 7, 3, 512, 512, 1),
        ("Conv5_s", 14, 1, 256, 512, 2),
        ("Conv5_2a", 7, 3, 512, 512, 1),
        ("Conv5_2b", 7, 3, 512, 512, 1),
        ("FC", 1, 1, 512, 1000, 1),
    ]
    return [(n, h, h, r, r, c, k, s) for n, h, r, c, k, s in rows]


def write_topology_csv(layers: Iterable[Layer], path: Path) -> None:
    """Write ``layers`` as a SCALE-Sim conv topology CSV (every line ends with a comma, as it expects)."""
    lines = [
        "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,"
    ]
    for name, *dims in layers:
        lines.append(",".join([name.replace(",", "_"), *(str(d) for d in dims)]) + ",")
    path.write_text("\n".join(lines) + "\n")


def conv_case(case_id: str, group: str, layer: Layer, rows: int, cols: int, dataflow: str) -> dict[str, Any]:
    """A conv case row (input columns only)."""
    _, h, w, r, s, c, k, stride = layer
    return {
        "case_id": case_id,
        "group": group,
        "kind": "conv",
        **dict(zip(CONV_FIELDS, (h, w, r, s, c, k, stride))),
        "rows": rows,
        "cols": cols,
        "dataflow": dataflow,
    }


def gemm_case(
    case_id: str, group: str, m: int, n: int, k: int, rows: int, cols: int, dataflow: str
) -> dict[str, Any]:
    """A GEMM case row (input columns only); ``m``, ``n``, ``k`` are SCALE-Sim's M, N, K."""
    return {
        "case_id": case_id,
        "group": group,
        "kind": "gemm",
        "gemm_m": m,
        "gemm_n": n,
        "gemm_k": k,
        "rows": rows,
        "cols": cols,
        "dataflow": dataflow,
    }


def estimated_cycles(ofmap_px: int, window: int, filters: int, rows: int, cols: int, dataflow: str) -> int:
    """Rough cycle count, used only to keep SCALE-Sim's runtime in budget (not a reference)."""
    sr, sc, t = {
        "os": (ofmap_px, filters, window),
        "ws": (window, filters, ofmap_px),
        "is": (window, ofmap_px, filters),
    }[dataflow]
    return math.ceil(sr / rows) * math.ceil(sc / cols) * (t + 2 * rows + cols)


def conv_work(h: int, w: int, r: int, s: int, c: int, k: int, stride: int) -> tuple[int, int, int]:
    """(output pixels, window size, filters) of a conv, for :func:`estimated_cycles`."""
    e = math.ceil((h - r + stride) / stride)
    f = math.ceil((w - s + stride) / stride)
    return e * f, r * s * c, k


def shape_cost(work: tuple[int, int, int], rows: int, cols: int) -> int:
    """Estimated cycles of one shape summed over the three dataflows."""
    return sum(estimated_cycles(*work, rows, cols, df) for df in DATAFLOWS)


def _size(rng: random.Random, hi: int) -> int:
    """A size in 1..hi: half the time uniform, half log-uniform (so small sizes are common)."""
    if rng.random() < 0.5:
        return rng.randint(1, hi)
    return min(hi, int(math.exp(rng.uniform(0.0, math.log(hi + 1)))))


def _arrays(rng: random.Random, n: int) -> list[tuple[int, int]]:
    """``n`` arrays cycling through :data:`ARRAY_SHAPES` in a shuffled order, so each appears evenly."""
    out: list[tuple[int, int]] = []
    while len(out) < n:
        batch = list(ARRAY_SHAPES)
        rng.shuffle(batch)
        out.extend(batch)
    return out[:n]


def random_conv_layers(rng: random.Random, n: int) -> list[tuple[Layer, tuple[int, int]]]:
    """``n`` random conv layers, each with its array, redrawn while over the runtime budget."""
    out = []
    for i, (rows, cols) in enumerate(_arrays(rng, n)):
        while True:
            h, w = _size(rng, 40), _size(rng, 40)
            r = rng.choice([x for x in (1, 3, 5, 7) if x <= h])
            s = rng.choice([x for x in (1, 3, 5, 7) if x <= w])
            c, k, stride = _size(rng, 96), _size(rng, 96), rng.randint(1, 3)
            if shape_cost(conv_work(h, w, r, s, c, k, stride), rows, cols) <= MAX_CYCLES_PER_SHAPE:
                break
        out.append(((f"conv_rand_{i:03d}", h, w, r, s, c, k, stride), (rows, cols)))
    return out


def random_gemm_shapes(rng: random.Random, n: int) -> list[tuple[tuple[int, int, int], tuple[int, int]]]:
    """``n`` random (M, N, K) GEMMs, each with its array, redrawn while over the runtime budget."""
    out = []
    for rows, cols in _arrays(rng, n):
        while True:
            m, nn, k = _size(rng, 300), _size(rng, 300), _size(rng, 300)
            if shape_cost((m, k, nn), rows, cols) <= MAX_CYCLES_PER_SHAPE:
                break
        out.append(((m, nn, k), (rows, cols)))
    return out


EDGE_CONV: tuple[tuple[Layer, tuple[int, int]], ...] = (
    (("conv_edge_ones", 1, 1, 1, 1, 1, 1, 1), (2, 2)),
    (("conv_edge_ones_s3", 1, 1, 1, 1, 1, 1, 3), (4, 4)),
    (("conv_edge_filter_eq_input", 7, 7, 7, 7, 4, 5, 1), (8, 8)),
    (("conv_edge_filter_eq_input_wide", 5, 7, 5, 7, 3, 9, 2), (4, 16)),
    (("conv_edge_stride_gt_filter", 13, 11, 1, 1, 6, 10, 3), (16, 4)),
    (("conv_edge_stride3_ragged", 10, 10, 3, 3, 8, 8, 3), (8, 8)),
    (("conv_edge_nonsquare_filter", 9, 12, 3, 5, 7, 11, 1), (8, 32)),
    (("conv_edge_px_eq_rows", 4, 4, 1, 1, 8, 8, 1), (16, 16)),
    (("conv_edge_px_rows_plus1", 17, 1, 1, 1, 8, 8, 1), (16, 16)),
    (("conv_edge_k_eq_cols", 6, 6, 3, 3, 4, 32, 1), (32, 8)),
    (("conv_edge_k_cols_plus1", 6, 6, 3, 3, 4, 33, 1), (8, 32)),
    (("conv_edge_c1_k1", 20, 20, 5, 5, 1, 1, 1), (2, 16)),
    (("conv_edge_single_row", 8, 8, 3, 3, 5, 7, 1), (1, 8)),
    (("conv_edge_single_col", 8, 8, 3, 3, 5, 7, 2), (8, 1)),
    (("conv_edge_tall_array", 12, 12, 3, 3, 16, 20, 2), (16, 2)),
)
"""Hand-picked conv corner cases and their arrays."""

EDGE_GEMM: tuple[tuple[str, tuple[int, int, int], tuple[int, int]], ...] = (
    ("gemm_edge_ones", (1, 1, 1), (2, 2)),
    ("gemm_edge_m1", (1, 64, 64), (8, 8)),
    ("gemm_edge_n1", (64, 1, 64), (8, 8)),
    ("gemm_edge_k1", (64, 64, 1), (8, 8)),
    ("gemm_edge_exact_fit", (32, 32, 32), (32, 32)),
    ("gemm_edge_plus1", (33, 33, 33), (32, 32)),
    ("gemm_edge_wide", (16, 100, 20), (4, 16)),
    ("gemm_edge_tall", (100, 16, 20), (16, 4)),
    ("gemm_edge_single_row", (9, 17, 5), (1, 8)),
    ("gemm_edge_single_col", (17, 9, 5), (8, 1)),
)
"""Hand-picked GEMM corner cases (name, (M, N, K), array)."""

MEMORY_LAYER: Layer = ("memory", 12, 12, 3, 3, 8, 12, 1)
MEMORY_BANDWIDTHS = (1, 4, 16)
MEMORY_SRAM_KB = 2


def build_cases(seed: int = SEED) -> list[dict[str, Any]]:
    """The full, deterministic case list (input columns of the CSV)."""
    rng = random.Random(seed)
    cases: list[dict[str, Any]] = []
    for group, layers in (("resnet18", resnet18_layers()), ("resnet18_scalesim", resnet18_scalesim_layers())):
        for df in DATAFLOWS:
            for layer in layers:
                cases.append(conv_case(f"{group}.{layer[0]}.{df}", group, layer, *RESNET_ARRAY, df))
    for layer, (rows, cols) in EDGE_CONV:
        for df in DATAFLOWS:
            cases.append(conv_case(f"{layer[0]}.{df}", "conv_edge", layer, rows, cols, df))
    for name, (m, n, k), (rows, cols) in EDGE_GEMM:
        for df in DATAFLOWS:
            cases.append(gemm_case(f"{name}.{df}", "gemm_edge", m, n, k, rows, cols, df))
    for layer, (rows, cols) in random_conv_layers(rng, N_CONV_RAND):
        for df in DATAFLOWS:
            cases.append(conv_case(f"{layer[0]}.{df}", "conv_rand", layer, rows, cols, df))
    for i, ((m, n, k), (rows, cols)) in enumerate(random_gemm_shapes(rng, N_GEMM_RAND)):
        for df in DATAFLOWS:
            cases.append(gemm_case(f"gemm_rand_{i:03d}.{df}", "gemm_rand", m, n, k, rows, cols, df))
    for bw in MEMORY_BANDWIDTHS:
        for df in DATAFLOWS:
            case = conv_case(f"memory_bw{bw}.{df}", "memory", MEMORY_LAYER, 8, 8, df)
            case.update(
                ifmap_sram_kb=MEMORY_SRAM_KB, filter_sram_kb=MEMORY_SRAM_KB, ofmap_sram_kb=MEMORY_SRAM_KB
            )
            case["bandwidth"] = bw
            cases.append(case)
    for case in cases:
        for col in ("ifmap_sram_kb", "filter_sram_kb", "ofmap_sram_kb"):
            case.setdefault(col, 64)
        case.setdefault("bandwidth", None)
    return cases


def runner_case(case: dict[str, Any]) -> dict[str, Any]:
    """Translate a CSV case row into the runner's JSON case form."""
    out: dict[str, Any] = {"name": case["case_id"], "kind": case["kind"]}
    if case["kind"] == "conv":
        out.update(zip(("H", "W", "R", "S", "C", "K", "stride"), (case[f] for f in CONV_FIELDS)))
    else:
        out.update(M=case["gemm_m"], N=case["gemm_n"], K=case["gemm_k"])
    for key in ("rows", "cols", "dataflow", "ifmap_sram_kb", "filter_sram_kb", "ofmap_sram_kb"):
        out[key] = case[key]
    if case["bandwidth"] is not None:
        out["bandwidth"] = case["bandwidth"]
    return out


def case_cost(case: dict[str, Any]) -> int:
    """Estimated cycles of one case, for scheduling the biggest first."""
    if case["kind"] == "conv":
        work = conv_work(*(case[f] for f in CONV_FIELDS))
    else:
        work = (case["gemm_m"], case["gemm_k"], case["gemm_n"])
    return estimated_cycles(*work, case["rows"], case["cols"], case["dataflow"])


def run_chunk(python: str, cases: list[dict[str, Any]], compute_only: bool) -> dict[str, Any]:
    """Run one chunk of cases through the runner in a subprocess; return its JSON output."""
    with tempfile.TemporaryDirectory(prefix="scalesim-ref-") as tmp:
        cases_path = Path(tmp) / "cases.json"
        out_path = Path(tmp) / "out.json"
        cases_path.write_text(json.dumps([runner_case(c) for c in cases]))
        cmd = [python, str(RUNNER), "--cases", str(cases_path), "--out", str(out_path)]
        if compute_only:
            cmd.append("--compute-only")
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        return json.loads(out_path.read_text())


def run_all(
    python: str, cases: list[dict[str, Any]], jobs: int, compute_only: bool
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Run every case on ``jobs`` parallel runner processes; return results by case id and run info."""
    ordered = sorted(cases, key=case_cost, reverse=True)
    chunks = [ordered[i : i + CHUNK_SIZE] for i in range(0, len(ordered), CHUNK_SIZE)]
    results: dict[str, dict[str, Any]] = {}
    info: dict[str, Any] = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for out in pool.map(lambda ch: run_chunk(python, ch, compute_only), chunks):
            info = {k: v for k, v in out.items() if k != "results"}
            for res in out["results"]:
                results[res["name"]] = res
    return results, info


def scalesim_python(explicit: str | None) -> str:
    """Path of the SCALE-Sim env's python: ``explicit``, or what ``scalesim_env.sh`` prints."""
    if explicit:
        return explicit
    out = subprocess.run(["bash", str(ENV_SCRIPT)], check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def fmt(value: Any) -> str:
    """CSV text of one value: empty for None, floats to 6 significant digits."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write the reference table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow([*INPUT_COLUMNS, *OUTPUT_COLUMNS])
        for row in rows:
            writer.writerow([fmt(row.get(col)) for col in (*INPUT_COLUMNS, *OUTPUT_COLUMNS)])


def group_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Number of rows per group, in first-seen order."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["group"]] = counts.get(row["group"], 0) + 1
    return counts


def write_md(path: Path, rows: list[dict[str, Any]], info: dict[str, Any], meta: dict[str, Any]) -> None:
    """Write the provenance and column notes beside the CSV."""
    counts = group_counts(rows)
    count_lines = "\n".join(f"| `{g}` | {n} |" for g, n in counts.items())
    arrays = ", ".join(f"{r}x{c}" for r, c in ARRAY_SHAPES)
    text = f"""# SCALE-Sim 3.0.0 reference cycles

`scalesim_reference.csv` holds, for {len(rows)} cases, what the real SCALE-Sim
reports, so the dense `systolic` model can be tested against it without
SCALE-Sim installed. Do not edit it by hand: regenerate it.

## How it was produced

* SCALE-Sim: PyPI `scalesim=={info["scalesim_version"]}` with numpy
  {info["numpy_version"]}, in its own virtual env (`benchmarks/scalesim_env.sh`
  creates `benchmarks/.venv-scalesim`), python {meta["scalesim_python_version"]}.
* Command, from the repository root, with the system python:
  `{meta["command"]}`
* Date (UTC): {meta["date"]}; host: {meta["host"]}, {meta["jobs"]} worker processes.
* Seed of the random draws: {SEED} (`SEED` in `benchmarks/make_scalesim_reference.py`);
  the case list is deterministic, only `wall_s` changes between runs.
* Each case is one SCALE-Sim run (`benchmarks/scalesim_runner.py`): a config
  file and a one-layer topology CSV written to a temporary folder, then
  `scalesim.scale_sim.scalesim(config=..., topology=..., input_type_gemm=...)`
  and `run_scale()`, traces not saved; the numbers are read back from its
  `COMPUTE_REPORT.csv` and `DETAILED_ACCESS_REPORT.csv`. A second pass with
  `--compute-only` fills `compute_only_cycles`.
* Config: ArrayHeight = `rows`, ArrayWidth = `cols`, Dataflow = `dataflow`,
  SRAMs of `ifmap_sram_kb`/`filter_sram_kb`/`ofmap_sram_kb` KiB (64 unless
  stated), InterfaceBandwidth = CALC (SCALE-Sim estimates the DRAM bandwidth)
  unless `bandwidth` is set, then USER with that many words per cycle for the
  IFMAP, filter and OFMAP interfaces; no sparsity, no custom
  layout, no Ramulator; word size 1 byte (SCALE-Sim's fixed value).
* SCALE-Sim time: {meta["scalesim_s"]:.0f} s of SCALE-Sim work (sum of `wall_s`),
  {meta["elapsed_s"]:.0f} s wall clock for the whole generation.

## Cases

| group | rows |
| --- | --- |
{count_lines}

* `resnet18`: torchvision ResNet-18 at 224x224, 20 convolutions (3x3 and 7x7
  convs and the three 1x1 stride-2 downsample convs) plus the FC layer as a
  1x1 conv on a 1x1x512 input, on a {RESNET_ARRAY[0]}x{RESNET_ARRAY[1]} array, all three
  dataflows. `ifmap_h`/`ifmap_w` are the padded extents the layer reads,
  (E - 1) * stride + R (229 for conv1, 58 for the stride-1 3x3 convs on 56x56,
  57 for the stride-2 3x3 conv on 56x56, 55 for the stride-2 1x1 on 56x56), so
  that SCALE-Sim's output size ceil((H - R + stride) / stride) is torchvision's
  (112, 56, 28, 14, 7). Giving the full padded size instead (230, 58, ...) would
  make SCALE-Sim count one extra output row and column on every stride-2 layer,
  because it rounds partial windows up.
* `resnet18_scalesim`: the 21 rows of SCALE-Sim's own ResNet-18 topology
  (`topologies/sparsity/Resnet18.csv` in the scale-sim-v2 repository; the PyPI
  wheel ships no topologies, and there is no `topologies/conv_nets/resnet18.csv`
  upstream). It gives unpadded sizes (224 for conv1, 56 for the first stage),
  so its output sizes are not torchvision's (110 for conv1, 54 for stage 1).
  Same array and dataflows as `resnet18`.
* `conv_edge`, `gemm_edge`: hand-picked corner shapes (all ones, filter as large
  as the input, stride larger than the filter, sizes at an array multiple and
  one past it, single-row and single-column arrays).
* `conv_rand`: {N_CONV_RAND} random shapes x 3 dataflows. H, W in 1..40, R, S in
  {{1, 3, 5, 7}} with R <= H and S <= W, C, K in 1..96, stride in 1..3; each size
  half the time uniform, half log-uniform. `gemm_rand`: {N_GEMM_RAND} random
  (M, N, K) in 1..300 x 3 dataflows, drawn the same way. Each shape gets one
  array, cycling through {arrays} in shuffled order, and runs on all three
  dataflows. A shape whose rough cycle estimate summed over the dataflows
  exceeds {MAX_CYCLES_PER_SHAPE} is redrawn (runtime budget), which biases the
  draws towards smaller shapes on the smallest arrays.
* `memory`: one small conv on an 8x8 array with {MEMORY_SRAM_KB} KiB SRAMs in USER
  bandwidth mode ({", ".join(str(b) for b in MEMORY_BANDWIDTHS)} words/cycle),
  all three dataflows: the only group run in USER mode, and the only rows
  with stalls ({meta["stalled_rows"]} of them).

## Columns

Inputs:

* `case_id`: unique name, `<shape>.<dataflow>`; `group`: see above.
* `kind`: `conv` or `gemm`.
* conv rows: `ifmap_h`, `ifmap_w` (IFMAP height and width in elements as given
  to SCALE-Sim, padding included), `filter_h`, `filter_w` (R, S), `channels`
  (C), `num_filters` (K), `stride` (same in both directions). Empty for GEMM.
* GEMM rows: `gemm_m`, `gemm_n`, `gemm_k`: SCALE-Sim's GEMM topology columns
  M, N, K (header `Layer, M, N, K,`). SCALE-Sim turns them into the conv form
  IFMAP H = M, IFMAP W = K, filter 1 x K, channels 1, filters N, stride 1
  (`scalesim/topology_utils.py`, `load_arrays_gemm`, line 110), i.e. M output
  pixels, a window of K and N filters. Empty for conv.
* `rows`, `cols`: PE array height (ArrayHeight) and width (ArrayWidth).
* `dataflow`: `os`, `ws` or `is`.
* `ifmap_sram_kb`, `filter_sram_kb`, `ofmap_sram_kb`: SRAM sizes in KiB.
* `bandwidth`: DRAM interface bandwidth in words per cycle (USER mode); empty
  means CALC mode.

Outputs (from SCALE-Sim):

* `total_cycles`: "Total Cycles" of COMPUTE_REPORT.csv: the cycle (counted from
  0) at which the last OFMAP line is written, memory stalls included.
* `stall_cycles`: "Stall Cycles" of COMPUTE_REPORT.csv: zero on every CALC row
  here; `total_cycles - stall_cycles` is the compute time.
* `compute_only_cycles`: the runner's `--compute-only` mode (SCALE-Sim's
  operand and systolic-compute classes only, no memory model): the OFMAP demand
  matrix length minus one. Equal to `total_cycles - stall_cycles` on
  {meta["compute_only_agree"]} of the {len(rows)} rows.
* `total_cycles_incl_prefetch`: "Total Cycles (incl. prefetch)": from the first
  DRAM read to the last DRAM write, in cycles.
* `overall_util_pct`: "Overall Util %" = 100 * MACs / (total_cycles * rows * cols).
* `mapping_efficiency_pct`: "Mapping Efficiency %": mean over folds of the share
  of PEs that hold a mapped operand.
* `compute_util_pct`: "Compute Util %": mean over folds of MACs / (PEs * fold cycles).
* `sram_ifmap_reads`, `sram_filter_reads`, `sram_ofmap_writes`: SRAM accesses
  in words ("SRAM IFMAP Reads", "SRAM Filter Reads", "SRAM OFMAP Writes" of
  DETAILED_ACCESS_REPORT.csv). Note: for the `os` dataflow SCALE-Sim 3.0.0
  adds, on top of the outputs, rows + cols more OFMAP writes per fold
  (`systolic_compute_os.py`, `create_ofmap_demand_mat`, lines 385 and 403), so
  `sram_ofmap_writes` there is outputs + folds * (rows + cols).
* `dram_ifmap_reads`, `dram_filter_reads`, `dram_ofmap_writes`: DRAM accesses in
  words, same report.
* `wall_s`: seconds SCALE-Sim took for the case (building the simulator, the
  compute and memory simulation, writing its reports), measured with
  {meta["jobs"]} cases running at once on this host; informative only.
"""
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    """Entry point: build the cases, run SCALE-Sim, write the CSV and its notes."""
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--jobs", type=int, default=2, help="parallel SCALE-Sim processes")
    p.add_argument(
        "--scalesim-python", help="python of an env with scalesim 3.0.0 (default: what scalesim_env.sh makes)"
    )
    p.add_argument("--csv", type=Path, default=OUT_CSV, help="output CSV path")
    p.add_argument("--md", type=Path, default=OUT_MD, help="output notes path")
    args = p.parse_args(argv)

    t0 = time.perf_counter()
    python = scalesim_python(args.scalesim_python)
    cases = build_cases()
    print(f"{len(cases)} cases; running SCALE-Sim with {python}", file=sys.stderr)
    full, info = run_all(python, cases, args.jobs, compute_only=False)
    print(f"full runs done after {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    light, _ = run_all(python, cases, args.jobs, compute_only=True)
    rows = []
    for case in cases:
        res = full[case["case_id"]]
        rows.append({**case, **res, "compute_only_cycles": light[case["case_id"]]["total_cycles"]})
    elapsed = time.perf_counter() - t0

    py_version = subprocess.run(
        [python, "-c", "import platform; print(platform.python_version())"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    rel = os.path.relpath(Path(sys.argv[0]).resolve(), ROOT) if sys.argv and sys.argv[0] else str(RUNNER)
    meta = {
        "command": shlex.join(["python3", rel, *(argv if argv is not None else sys.argv[1:])]),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "host": f"{platform.machine()}, {os.cpu_count()} cores",
        "jobs": args.jobs,
        "scalesim_python_version": py_version,
        "scalesim_s": sum(r["wall_s"] for r in rows),
        "elapsed_s": elapsed,
        "stalled_rows": sum(1 for r in rows if r["stall_cycles"]),
        "compute_only_agree": sum(
            1 for r in rows if r["compute_only_cycles"] == r["total_cycles"] - r["stall_cycles"]
        ),
    }
    write_csv(args.csv, rows)
    write_md(args.md, rows, info, meta)
    print(f"wrote {args.csv} and {args.md} ({len(rows)} rows, {elapsed:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
