"""Import SCALE-Sim topology CSVs as shapes-only workloads.

Conv form (SCALE-Sim `topologies/conv_nets/*.csv`), one layer a row:
    Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,
IFMAP sizes are taken as given (SCALE-Sim expects them already padded), so layers import
with batch 1, groups 1 and no padding except SCALE-Sim's overhanging last window (see
`scalesim_conv_shape`). A topology file has no layer graph, so none is made.

GEMM form (SCALE-Sim `topologies/GEMM_mnk/*.csv`), one layer a row:
    Layer, M, N, K,
SCALE-Sim 3.0.0 reads the columns in that order and runs the product of an M x K operand
and a K x N operand (it builds the conv [M, K, 1, K, 1, N, 1]: IFMAP M x K, a 1 x K filter,
1 channel, N filters, stride 1, in `scalesim/topology_utils.py`, `load_arrays_gemm`). It
imports here as `linear` with M, K, N.
"""

from __future__ import annotations

import csv
from pathlib import Path

from accelsim.errors import WorkloadError
from accelsim.workload.layer import ConvShape, GemmShape, Layer, Workload

CONV_COLUMNS = ("IFMAP Height", "IFMAP Width", "Filter Height", "Filter Width", "Channels",
                "Num Filter", "Strides")
GEMM_COLUMNS = ("M", "N", "K")


def _fields(path: str, line_no: int, row: list[str], count: int, names: tuple[str, ...]) -> list[int]:
    cells = [c.strip() for c in row]
    while cells and cells[-1] == "":
        cells.pop()
    if len(cells) < 1 + count:
        raise WorkloadError(
            f"{path}, line {line_no}: expected a layer name and {count} values "
            f"({', '.join(names)}), got {len(cells)} cell(s). Pass --gemm for GEMM (M, N, K) files."
        )
    values = []
    for name, cell in zip(names, cells[1:1 + count]):
        try:
            v = int(float(cell))
        except ValueError:
            raise WorkloadError(
                f"{path}, line {line_no}: '{name}' must be a positive integer, got {cell!r}."
            ) from None
        if v < 1 or v != float(cell):
            raise WorkloadError(
                f"{path}, line {line_no}: '{name}' must be a positive integer, got {cell!r}."
            )
        values.append(v)
    return values


def scalesim_conv_shape(h: int, w: int, r: int, s: int, c: int, k: int, stride: int) -> ConvShape:
    """The conv SCALE-Sim runs for one topology row.

    SCALE-Sim sizes the output as ceil((H - R + stride) / stride), one more row (column) than
    a framework's floor((H - R) / stride) + 1 whenever the stride does not divide H - R: its
    last window hangs over the edge. That window is expressed here as implicit bottom (right)
    padding, so MACs and cycles equal SCALE-Sim's while no activation is invented.
    """
    pad_bottom = (stride - (h - r) % stride) % stride
    pad_right = (stride - (w - s) % stride) % stride
    return ConvShape(N=1, C=c, H=h, W=w, K=k, R=r, S=s, stride=(stride, stride),
                     padding=(0, pad_bottom, 0, pad_right))


def read_scalesim_topology(
    path: str | Path, gemm: bool = False, act_density: float = 1.0, bits: int = 8
) -> Workload:
    """Read a SCALE-Sim topology CSV into a shapes-only workload at `act_density`."""
    path = str(path)
    if not 0.0 <= act_density <= 1.0:
        raise WorkloadError(f"--act-density must be in [0, 1], got {act_density}.")
    if not Path(path).is_file():
        raise WorkloadError(f"{path}: no such topology file. Check the path.")
    try:
        rows = list(csv.reader(Path(path).read_text().splitlines()))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise WorkloadError(f"{path}: not a readable CSV ({exc}).") from None
    layers: list[Layer] = []
    seen: set[str] = set()
    for line_no, row in enumerate(rows, start=1):
        if not row or not "".join(row).strip():
            continue
        first = row[0].strip()
        if line_no == 1 and not any(c.strip().isdigit() for c in row[1:]):
            continue
        name = first.replace("/", "_") or f"layer{line_no}"
        if name in seen:
            raise WorkloadError(f"{path}, line {line_no}: layer name '{name}' repeats.")
        seen.add(name)
        if gemm:
            m, n, k = _fields(path, line_no, row, 3, GEMM_COLUMNS)
            shape: ConvShape | GemmShape = GemmShape(M=m, K=k, N=n)
            op = "linear"
        else:
            h, w, r, s, c, kf, stride = _fields(path, line_no, row, 7, CONV_COLUMNS)
            if r > h or s > w:
                raise WorkloadError(
                    f"{path}, line {line_no}: filter {r}x{s} is larger than the {h}x{w} IFMAP."
                )
            shape = scalesim_conv_shape(h, w, r, s, c, kf, stride)
            op = "conv2d"
        layers.append(Layer(name=name, op=op, shape=shape, act_bits=bits, weight_bits=bits,
                            declared_act_density=act_density))
    if not layers:
        raise WorkloadError(f"{path}: no layers found; is this a SCALE-Sim topology CSV?")
    return Workload(
        model=Path(path).stem,
        layers=layers,
        edges=[],
        source={"importer": "scalesim-topology", "file": Path(path).name, "gemm": gemm,
                "act_density": act_density},
    )
