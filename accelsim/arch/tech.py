"""Energy/area tables (`arch_configs/tech/*.yaml`) and node scaling."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import yaml

from accelsim.errors import ArchError

TECH_DIR = Path(__file__).resolve().parents[2] / "arch_configs" / "tech"


@dataclass(frozen=True)
class TechTable:
    """Per-action energies (pJ) and areas (um^2) at the table's own node, plus scaling rules."""

    name: str
    node_nm: float
    energy_pj: dict
    area_um2: dict
    energy_factor_by_node_nm: dict[float, float]
    area_exponent: float
    path: str

    def energy_factor(self, node_nm: float) -> float:
        """On-chip energy at `node_nm` relative to this table's node (log-interpolated)."""
        points = sorted(self.energy_factor_by_node_nm.items())
        base = _interp_log(points, self.node_nm)
        return _interp_log(points, node_nm) / base

    def area_factor(self, node_nm: float) -> float:
        """Area at `node_nm` relative to this table's node."""
        return (node_nm / self.node_nm) ** self.area_exponent

    def op_energy_pj(self, op: str, number_format: str, bits: int) -> float:
        """Energy of one `op` ('add' or 'mult') at the table's node."""
        return _op_value(self.energy_pj, op, number_format, bits, self.path)

    def op_area_um2(self, op: str, number_format: str, bits: int) -> float:
        """Area of one `op` unit at the table's node."""
        return _op_value(self.area_um2, op, number_format, bits, self.path)

    def sram_pj_per_byte(self, size_bytes: int) -> float:
        """Energy of reading one byte from an SRAM of `size_bytes`, at the table's node."""
        points = sorted((float(k), float(v))
                        for k, v in self.energy_pj["sram_read_64bit_by_size_bytes"].items())
        return _interp_loglog(points, float(size_bytes)) / 8.0

    def dram_pj_per_byte(self, dram_type: str) -> float:
        """Energy of moving one byte to or from DRAM of `dram_type` (not node-scaled)."""
        table = self.energy_pj["dram_per_bit"]
        if dram_type not in table:
            raise ArchError(
                f"{self.path}: no DRAM energy for dram_type '{dram_type}'. Known: "
                f"{sorted(table)}; or give read_energy_pj_per_byte on the memory level."
            )
        return 8.0 * float(table[dram_type])


def _op_value(table: dict, op: str, number_format: str, bits: int, path: str) -> float:
    """Look up `op` at `bits`; widths not in the table scale from the nearest one of the same
    format (multipliers with bits^2, adders with bits), a first-order rule."""
    entries = {int(k[len(number_format):]): float(v) for k, v in table[op].items()
               if k.startswith(number_format) and k[len(number_format):].isdigit()}
    if not entries:
        raise ArchError(f"{path}: no '{op}' entries for number format '{number_format}'.")
    if bits in entries:
        return entries[bits]
    nearest = min(entries, key=lambda b: (abs(math.log2(b / bits)), -b))
    exponent = 2.0 if op == "mult" else 1.0
    return entries[nearest] * (bits / nearest) ** exponent


def _interp_log(points: list[tuple[float, float]], x: float) -> float:
    """Piecewise-linear interpolation of y over log(x), clamped at the ends."""
    xs = [math.log(float(p[0])) for p in points]
    ys = [float(p[1]) for p in points]
    lx = math.log(x)
    if lx <= xs[0]:
        return ys[0]
    if lx >= xs[-1]:
        return ys[-1]
    for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        if x0 <= lx <= x1:
            return y0 + (y1 - y0) * (lx - x0) / (x1 - x0)
    raise AssertionError("unreachable")


def _interp_loglog(points: list[tuple[float, float]], x: float) -> float:
    """Interpolate in log-log space, extrapolating along the end segments."""
    lx = [math.log(p[0]) for p in points]
    ly = [math.log(p[1]) for p in points]
    t = math.log(x)
    i = 0 if t < lx[0] else len(lx) - 2
    for j in range(len(lx) - 1):
        if lx[j] <= t <= lx[j + 1]:
            i = j
            break
    slope = (ly[i + 1] - ly[i]) / (lx[i + 1] - lx[i])
    return math.exp(ly[i] + slope * (t - lx[i]))


@functools.lru_cache(maxsize=32)
def load_tech_table(name_or_path: str) -> TechTable:
    """Load a tech table by name (from arch_configs/tech/) or by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = TECH_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in TECH_DIR.glob("*.yaml"))
        raise ArchError(
            f"tech table '{name_or_path}' not found (looked for {path}). Known tables: {known}."
        )
    try:
        raw = yaml.safe_load(path.read_text())
        scaling = raw["node_scaling"]
        return TechTable(
            name=str(raw["name"]),
            node_nm=float(raw["node_nm"]),
            energy_pj=raw["energy_pj"],
            area_um2=raw["area_um2"],
            energy_factor_by_node_nm={float(k): float(v)
                                      for k, v in scaling["energy_factor_by_node_nm"].items()},
            area_exponent=float(scaling["area_exponent"]),
            path=str(path),
        )
    except (yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise ArchError(f"{path}: malformed tech table ({type(exc).__name__}: {exc}).") from None
