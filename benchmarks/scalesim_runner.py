"""Run the real SCALE-Sim 3.0.0 on a list of layers and print its numbers as JSON.

Run this script with the python of the separate SCALE-Sim env (``bash
benchmarks/scalesim_env.sh`` creates it and prints that python's path); it
imports ``scalesim`` and nothing from ``accelsim``.

Two ways to call it:

* **case list** (one SCALE-Sim run per case)::

      python scalesim_runner.py [--cases FILE] [--out FILE] [--compute-only]

  ``FILE`` (or standard input when ``--cases`` is missing or ``-``) holds a JSON
  list of objects, each with

  - ``name`` (str), ``kind`` ("conv" or "gemm"),
  - conv: ``H``, ``W`` (IFMAP height/width in elements, padding already
    included, as SCALE-Sim expects), ``R``, ``S`` (filter height/width),
    ``C`` (input channels), ``K`` (filters), ``stride`` (same in both dims);
  - gemm: ``M``, ``N``, ``K`` (SCALE-Sim's GEMM topology columns);
  - ``rows``, ``cols`` (PE array height and width), ``dataflow`` ("os", "ws"
    or "is");
  - optional ``ifmap_sram_kb``, ``filter_sram_kb``, ``ofmap_sram_kb`` (SRAM
    sizes in KiB, default 64 each) and ``bandwidth`` (DRAM interface
    bandwidth in words per cycle; given, SCALE-Sim runs in its ``USER``
    bandwidth mode with that bandwidth for all three buffers, missing, in its
    ``CALC`` mode that estimates the bandwidth and never stalls on reads).

  The output is a JSON object ``{"scalesim_version", "numpy_version",
  "compute_only", "results": [...]}`` with one result per case, in order.

* **topology file** (one SCALE-Sim run for the whole file, timed as a whole)::

      python scalesim_runner.py --topology FILE.csv --rows R --cols C --dataflow ws
          [--gemm] [--ifmap-sram-kb N] [--filter-sram-kb N] [--ofmap-sram-kb N]
          [--bandwidth B] [--compute-only] [--out FILE]

  ``FILE.csv`` is a SCALE-Sim topology CSV (conv form, or M,N,K form with
  ``--gemm``). The output is ``{"scalesim_version", "numpy_version",
  "compute_only", "topology", "wall_s", "results": [...]}`` with one result
  per layer.

Each result holds:

- ``total_cycles``: "Total Cycles" of SCALE-Sim's COMPUTE_REPORT.csv, the
  cycle (0-based) at which the last OFMAP line leaves the array, stalls
  included;
- ``total_cycles_incl_prefetch``: "Total Cycles (incl. prefetch)" (DRAM view,
  first DRAM read to last DRAM write), or null in compute-only mode;
- ``stall_cycles``: "Stall Cycles" (memory stalls), null in compute-only mode;
- ``overall_util_pct``, ``mapping_efficiency_pct``, ``compute_util_pct``:
  the three percentages of COMPUTE_REPORT.csv;
- ``sram_ifmap_reads``, ``sram_filter_reads``, ``sram_ofmap_writes``,
  ``dram_ifmap_reads``, ``dram_filter_reads``, ``dram_ofmap_writes``: access
  counts in words from DETAILED_ACCESS_REPORT.csv (the DRAM ones null in
  compute-only mode);
- ``wall_s``: wall-clock seconds SCALE-Sim took (case-list mode: that case's
  whole run, building the simulator included; topology mode: null per layer,
  the whole run is the top-level ``wall_s``).

``--compute-only``: SCALE-Sim 3.0.0 has no switch to skip its memory model
(``single_layer_sim.run`` always builds the prefetch matrices and runs
``double_buffered_scratchpad.service_memory_requests``). This mode therefore
drives SCALE-Sim's own classes (``topologies``, ``operand_matrix`` and
``systolic_compute_{os,ws,is}``, through ``single_layer_sim.set_params``) up to
the demand matrices, and skips the prefetch matrices and the memory system.
The cycle count is the number of OFMAP demand lines minus one, which is what
the full run reports as "Total Cycles" whenever it has no stall.
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import csv
import importlib.metadata
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from scalesim.scale_config import scale_config
from scalesim.scale_sim import scalesim
from scalesim.single_layer_sim import single_layer_sim
from scalesim.topology_utils import topologies

DEFAULT_SRAM_KB = 64
"""Default size of each of the IFMAP, filter and OFMAP SRAMs, in KiB."""

RUN_NAME = "run"
"""SCALE-Sim run name; its reports land in ``<top_path>/run/``."""

CONV_HEADER = (
    "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,"
)
GEMM_HEADER = "Layer, M, N, K,"
LAYOUT_HEADER = "Layer name,"

COMPUTE_COLUMNS = {
    "Total Cycles (incl. prefetch)": "total_cycles_incl_prefetch",
    "Total Cycles": "total_cycles",
    "Stall Cycles": "stall_cycles",
    "Overall Util %": "overall_util_pct",
    "Mapping Efficiency %": "mapping_efficiency_pct",
    "Compute Util %": "compute_util_pct",
}
"""COMPUTE_REPORT.csv column -> result key."""

ACCESS_COLUMNS = {
    "SRAM IFMAP Reads": "sram_ifmap_reads",
    "SRAM Filter Reads": "sram_filter_reads",
    "SRAM OFMAP Writes": "sram_ofmap_writes",
    "DRAM IFMAP Reads": "dram_ifmap_reads",
    "DRAM Filter Reads": "dram_filter_reads",
    "DRAM OFMAP Writes": "dram_ofmap_writes",
}
"""DETAILED_ACCESS_REPORT.csv column -> result key."""

INT_KEYS = {
    "total_cycles_incl_prefetch",
    "total_cycles",
    "stall_cycles",
    *ACCESS_COLUMNS.values(),
}


def write_config(
    path: Path,
    rows: int,
    cols: int,
    dataflow: str,
    ifmap_sram_kb: int = DEFAULT_SRAM_KB,
    filter_sram_kb: int = DEFAULT_SRAM_KB,
    ofmap_sram_kb: int = DEFAULT_SRAM_KB,
    bandwidth: int | None = None,
) -> None:
    """Write a SCALE-Sim 3.0.0 config file.

    ``rows`` x ``cols`` is the PE array (height x width); SRAM sizes are in KiB;
    ``bandwidth`` is the DRAM interface bandwidth in words per cycle (None: the
    ``CALC`` mode, where SCALE-Sim estimates it).
    """
    if dataflow not in ("os", "ws", "is"):
        raise ValueError(f"dataflow must be os, ws or is, not {dataflow!r}")
    bw = 10 if bandwidth is None else int(bandwidth)
    cfg = configparser.ConfigParser()
    cfg.optionxform = str
    cfg["general"] = {"run_name": RUN_NAME}
    cfg["architecture_presets"] = {
        "ArrayHeight": str(rows),
        "ArrayWidth": str(cols),
        "IfmapSramSzkB": str(ifmap_sram_kb),
        "FilterSramSzkB": str(filter_sram_kb),
        "OfmapSramSzkB": str(ofmap_sram_kb),
        "IfmapOffset": "0",
        "FilterOffset": "10000000",
        "OfmapOffset": "20000000",
        "Bandwidth": str(bw),
        "Dataflow": dataflow,
        "MemoryBanks": "1",
        "ReadRequestBuffer": "512",
        "WriteRequestBuffer": "512",
    }
    cfg["layout"] = {
        "IfmapCustomLayout": "False",
        "FilterCustomLayout": "False",
        "IfmapSRAMBankBandwidth": str(bw),
        "IfmapSRAMBankNum": "1",
        "IfmapSRAMBankPort": "2",
        "FilterSRAMBankBandwidth": str(bw),
        "FilterSRAMBankNum": "1",
        "FilterSRAMBankPort": "2",
    }
    cfg["run_presets"] = {
        "InterfaceBandwidth": "CALC" if bandwidth is None else "USER",
        "UseRamulatorTrace": "False",
    }
    cfg["sparsity"] = {"SparsitySupport": "false"}
    with path.open("w") as f:
        cfg.write(f)


def write_case_topology(path: Path, case: dict[str, Any]) -> bool:
    """Write a one-layer SCALE-Sim topology CSV for ``case``; return True if it is GEMM form.

    The layer is called ``L0`` whatever the case name (SCALE-Sim treats any
    name containing "DP" as depthwise).
    """
    kind = case["kind"]
    if kind == "conv":
        fields = [case[k] for k in ("H", "W", "R", "S", "C", "K", "stride")]
        header = CONV_HEADER
    elif kind == "gemm":
        fields = [case[k] for k in ("M", "N", "K")]
        header = GEMM_HEADER
    else:
        raise ValueError(f"kind must be conv or gemm, not {kind!r}")
    line = ",".join(["L0", *(str(int(v)) for v in fields)]) + ","
    path.write_text(header + "\n" + line + "\n")
    return kind == "gemm"


def read_report(path: Path, columns: dict[str, str]) -> list[dict[str, Any]]:
    """Read one SCALE-Sim report CSV; return, per layer, the ``columns`` renamed."""
    out: list[dict[str, Any]] = []
    with path.open() as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader)]
        for row in reader:
            cells = {h: v.strip() for h, v in zip(header, row) if h}
            item: dict[str, Any] = {}
            for col, key in columns.items():
                value = float(cells[col])
                item[key] = int(round(value)) if key in INT_KEYS else value
            out.append(item)
    return out


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send what SCALE-Sim prints to stderr, so stdout carries only our JSON."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def run_full(config: Path, topology: Path, gemm: bool, work: Path) -> tuple[list[dict[str, Any]], float]:
    """Run SCALE-Sim (compute and memory) on a topology; return per-layer results and seconds taken."""
    t0 = time.perf_counter()
    with stdout_to_stderr():
        sim = scalesim(
            save_disk_space=True,
            verbose=False,
            config=str(config),
            topology=str(topology),
            layout=str(work / "layout.csv"),
            input_type_gemm=gemm,
        )
        sim.run_scale(top_path=str(work))
    wall = time.perf_counter() - t0
    report_dir = work / RUN_NAME
    results = read_report(report_dir / "COMPUTE_REPORT.csv", COMPUTE_COLUMNS)
    access = read_report(report_dir / "DETAILED_ACCESS_REPORT.csv", ACCESS_COLUMNS)
    for res, acc in zip(results, access):
        res.update(acc)
    return results, wall


def run_compute_only(config: Path, topology: Path, gemm: bool) -> tuple[list[dict[str, Any]], float]:
    """Run SCALE-Sim's compute model only (no prefetch matrices, no memory system).

    Returns per-layer results and the seconds taken. ``total_cycles`` is the
    OFMAP demand-matrix length minus one; memory-side fields are None.
    """
    t0 = time.perf_counter()
    with stdout_to_stderr():
        conf = scale_config()
        conf.read_conf_file(str(config))
        topo = topologies()
        topo.load_arrays(topofile=str(topology), mnk_inputs=gemm)
        results = []
        for layer_id in range(topo.get_num_layers()):
            layer = single_layer_sim()
            layer.set_params(layer_id=layer_id, config_obj=conf, topology_obj=topo, verbose=False)
            _, ifmap = layer.op_mat_obj.get_ifmap_matrix()
            _, filt = layer.op_mat_obj.get_filter_matrix()
            _, ofmap = layer.op_mat_obj.get_ofmap_matrix()
            comp = layer.compute_system
            comp.set_params(config_obj=conf, ifmap_op_mat=ifmap, filter_op_mat=filt, ofmap_op_mat=ofmap)
            _, _, ofmap_demand = comp.get_demand_matrices()
            cycles = int(ofmap_demand.shape[0]) - 1
            rows, cols = conf.get_array_dims()
            macs = topo.get_layer_num_ofmap_px(layer_id) * topo.get_layer_window_size(layer_id)
            results.append(
                {
                    "total_cycles_incl_prefetch": None,
                    "total_cycles": cycles,
                    "stall_cycles": None,
                    "overall_util_pct": 100.0 * macs / (cycles * rows * cols),
                    "mapping_efficiency_pct": 100.0 * comp.get_avg_mapping_efficiency(),
                    "compute_util_pct": 100.0 * comp.get_avg_compute_utilization(),
                    "sram_ifmap_reads": int(comp.get_ifmap_requests()),
                    "sram_filter_reads": int(comp.get_filter_requests()),
                    "sram_ofmap_writes": int(comp.get_ofmap_requests()),
                    "dram_ifmap_reads": None,
                    "dram_filter_reads": None,
                    "dram_ofmap_writes": None,
                }
            )
    return results, time.perf_counter() - t0


def run_topology(
    config: Path, topology: Path, gemm: bool, compute_only: bool
) -> tuple[list[dict[str, Any]], float]:
    """Run one topology file in a fresh temporary folder; return per-layer results and seconds taken."""
    with tempfile.TemporaryDirectory(prefix="scalesim-") as tmp:
        work = Path(tmp)
        (work / "layout.csv").write_text(LAYOUT_HEADER + "\n")
        if compute_only:
            return run_compute_only(config, topology, gemm)
        return run_full(config, topology, gemm, work)


def run_case(case: dict[str, Any], compute_only: bool) -> dict[str, Any]:
    """Run one case (see the module docstring) and return its result."""
    with tempfile.TemporaryDirectory(prefix="scalesim-case-") as tmp:
        work = Path(tmp)
        config = work / "scale.cfg"
        write_config(
            config,
            rows=int(case["rows"]),
            cols=int(case["cols"]),
            dataflow=str(case["dataflow"]),
            ifmap_sram_kb=int(case.get("ifmap_sram_kb", DEFAULT_SRAM_KB)),
            filter_sram_kb=int(case.get("filter_sram_kb", DEFAULT_SRAM_KB)),
            ofmap_sram_kb=int(case.get("ofmap_sram_kb", DEFAULT_SRAM_KB)),
            bandwidth=case.get("bandwidth"),
        )
        topology = work / "topology.csv"
        gemm = write_case_topology(topology, case)
        results, wall = run_topology(config, topology, gemm, compute_only)
    (result,) = results
    return {"name": case.get("name"), **result, "wall_s": wall}


def versions() -> dict[str, str]:
    """Versions of scalesim and numpy in this interpreter."""
    return {"scalesim_version": importlib.metadata.version("scalesim"), "numpy_version": np.__version__}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--cases", default="-", help="JSON list of cases (file path, or - for stdin)")
    p.add_argument("--out", default="-", help="where to write the JSON result (file path, or - for stdout)")
    p.add_argument("--compute-only", action="store_true", help="skip SCALE-Sim's memory simulation")
    p.add_argument("--topology", help="SCALE-Sim topology CSV; run it whole instead of a case list")
    p.add_argument("--gemm", action="store_true", help="the topology CSV is in M,N,K form")
    p.add_argument("--rows", type=int, help="PE array height (topology mode)")
    p.add_argument("--cols", type=int, help="PE array width (topology mode)")
    p.add_argument("--dataflow", choices=("os", "ws", "is"), help="dataflow (topology mode)")
    p.add_argument("--ifmap-sram-kb", type=int, default=DEFAULT_SRAM_KB, help="IFMAP SRAM size, KiB")
    p.add_argument("--filter-sram-kb", type=int, default=DEFAULT_SRAM_KB, help="filter SRAM size, KiB")
    p.add_argument("--ofmap-sram-kb", type=int, default=DEFAULT_SRAM_KB, help="OFMAP SRAM size, KiB")
    p.add_argument("--bandwidth", type=int, help="DRAM bandwidth, words/cycle (default: CALC mode)")
    args = p.parse_args(argv)
    if args.topology and (args.rows is None or args.cols is None or args.dataflow is None):
        p.error("--topology needs --rows, --cols and --dataflow")
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the cases or the topology and write the JSON."""
    args = parse_args(argv)
    out: dict[str, Any] = {**versions(), "compute_only": args.compute_only}
    if args.topology:
        with tempfile.TemporaryDirectory(prefix="scalesim-cfg-") as tmp:
            config = Path(tmp) / "scale.cfg"
            write_config(
                config,
                rows=args.rows,
                cols=args.cols,
                dataflow=args.dataflow,
                ifmap_sram_kb=args.ifmap_sram_kb,
                filter_sram_kb=args.filter_sram_kb,
                ofmap_sram_kb=args.ofmap_sram_kb,
                bandwidth=args.bandwidth,
            )
            topology = Path(args.topology).resolve()
            results, wall = run_topology(config, topology, args.gemm, args.compute_only)
        out["topology"] = str(topology)
        out["wall_s"] = wall
        out["results"] = [{**r, "wall_s": None} for r in results]
    else:
        text = sys.stdin.read() if args.cases == "-" else Path(args.cases).read_text()
        out["results"] = [run_case(case, args.compute_only) for case in json.loads(text)]
    payload = json.dumps(out, indent=1)
    if args.out == "-":
        sys.stdout.write(payload + "\n")
    else:
        Path(args.out).write_text(payload + "\n")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TQDM_DISABLE", "1")
    sys.exit(main())
