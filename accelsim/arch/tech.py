"""Energy/area tables (`arch_configs/tech/*.yaml`), node scaling, and the price of an SRAM.

A table gives per-action energies (pJ) and areas (um^2) at its own node, each number with its
source, plus node-scaling points. Prices are taken only inside the sourced range; outside it a
price is either refused (`ArchError`: an unknown DRAM type or number format) or taken at the
nearest sourced point and said in a *price note*, a short numeric message that
`accelsim.arch.energy.price_warnings` puts into the results:

* **node**: the on-chip energy factor is log-interpolated between the table's scaling points;
  a node outside them is priced at the nearest point (a note).
* **op width**: an add or multiply width not in the table is scaled from the nearest width of
  the same format (multipliers with bits^2, adders with bits; a note).
* **SRAM size**: the 64-bit access energy is interpolated log-log between the sourced array
  sizes. Below the smallest point the smallest array's price is used (an upper bound; a note).
  Above the largest point the SRAM is priced as **banks** (below), which is a model and not an
  extrapolation, so it needs no note; a table without `sram_banking` prices it as its largest
  array instead (a lower bound; a note).

**PE registers**: one access of a w-bit word costs w/16 of `energy_pj.register_access_16bit`
(an access of a 16-bit register-file word), node-scaled like the arithmetic; a table without
the entry refuses archs that declare PE registers (`TechTable.register_pj_per_bit`).

**Banked SRAM model** (first order, the bank + H-tree view CACTI takes of a large array). An
SRAM of S bytes above the largest sourced size is built from ceil(S / B) banks of B =
`sram_banking.bank_bytes` (the largest sourced array, so the price never falls where banks
take over: the bank part stays at the largest array's price and the wire part grows), placed
on a grid of 2^a x 2^b square banks (a = ceil(k/2), b = floor(k/2), 2^k the bank count rounded
up to a power of two) and fed by an H-tree from the macro's centre. Every bank is the same
H-tree distance from the centre, d = s * (2^a + 2^b - 2) / 2, where s is a bank's side:
s = sqrt(8 B * bitcell / array_efficiency) at the table's node, scaled to the arch's node with
the table's area rule. One access costs one bank access (the table's price at B) plus the
access's data bits carried over d at `sram_banking.wire_pj_per_bit_mm`; both are scaled to the
node with the on-chip energy factor. Address and control wires are not counted, and a bank
count that is not a power of two pays the wire of the next power of two.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from accelsim.arch.loader import read_yaml
from accelsim.arch.schema import MAX_BITS, MAX_NODE_NM
from accelsim.errors import ArchError

TECH_DIR = Path(__file__).resolve().parents[2] / "arch_configs" / "tech"
SRAM_KEY = "sram_read_64bit_by_size_bytes"
SRAM_ACCESS_BITS = 64
REGISTER_KEY = "register_access_16bit"
REGISTER_ACCESS_BITS = 16
"""Width of the word whose register-file access `REGISTER_KEY` prices."""
BITS_PER_BYTE = 8
UM_PER_MM = 1000.0

_NOTES: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "accelsim_price_notes", default=None)


@contextlib.contextmanager
def collect_price_notes() -> Iterator[list[str]]:
    """Collect the price notes of every table lookup made inside the block (in order, once each).

    Notes collected in a nested block also reach the enclosing one."""
    notes: list[str] = []
    token = _NOTES.set(notes)
    try:
        yield notes
    finally:
        _NOTES.reset(token)
        for note in notes:
            _record(note)


def _record(note: str | None) -> None:
    sink = _NOTES.get()
    if note and sink is not None and note not in sink:
        sink.append(note)


def record_price_note(note: str) -> None:
    """Give a price note to the enclosing `collect_price_notes` block, as a lookup would (for a
    price taken from a cache instead of the table)."""
    _record(note)


def format_bytes(n: float) -> str:
    """A byte count in binary units: '512 B', '8 KiB', '1.5 MiB'."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.4g} {unit}"
    return f"{n:.4g} B"


@dataclass(frozen=True)
class SramBanking:
    """How an SRAM above the table's largest sourced size is built (see the module docstring)."""

    bank_bytes: int                 # size of one bank, a sourced array size
    array_efficiency: float         # share of a macro's area that is bit cells, in (0, 1]
    wire_pj_per_bit_mm: float       # on-chip wire energy per data bit moved per mm, table node


@dataclass(frozen=True)
class SramPrice:
    """Energy of one SRAM access per byte at a node, and how it was made up."""

    size_bytes: int
    node_nm: float
    pj_per_byte: float              # what a byte read or written costs, pJ, at the node
    bank_bytes: int                 # the array size priced from the table
    banks: int                      # banks the macro is built from (1: priced as one array)
    grid: tuple[int, int]           # bank grid, columns x rows
    wire_mm: float                  # H-tree length from the macro's centre to a bank, mm
    bank_pj_per_byte: float         # the bank access part of pj_per_byte
    wire_pj_per_byte: float         # the H-tree part of pj_per_byte
    notes: tuple[str, ...] = ()     # out-of-range notes (empty when fully in range)

    def describe(self) -> str:
        """One line for a config comment, e.g. '16.6 pJ/B: 32 banks of 1 MiB (8 x 4 grid) +
        7.5 mm H-tree at 28 nm'."""
        head = f"{self.pj_per_byte:.3g} pJ/B"
        if self.banks > 1:
            return (f"{head}: {self.banks} banks of {format_bytes(self.bank_bytes)} "
                    f"({self.grid[0]} x {self.grid[1]} grid, {self.bank_pj_per_byte:.3g} pJ/B) + "
                    f"{self.wire_mm:.2g} mm H-tree ({self.wire_pj_per_byte:.3g} pJ/B) "
                    f"at {self.node_nm:g} nm")
        return f"{head}: one {format_bytes(self.bank_bytes)} array at {self.node_nm:g} nm"


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
    sram_banking: SramBanking | None = None

    # --- node scaling -------------------------------------------------------------------------

    def node_range_nm(self) -> tuple[float, float]:
        """Smallest and largest node of the energy scaling points."""
        nodes = sorted(self.energy_factor_by_node_nm)
        return nodes[0], nodes[-1]

    def node_note(self, node_nm: float) -> str | None:
        """The price note for `node_nm` when it is outside the scaling points, else None."""
        lo, hi = self.node_range_nm()
        if lo <= node_nm <= hi:
            return None
        used = lo if node_nm < lo else hi
        return (f"node {node_nm:g} nm is outside {self.name}'s scaling range {lo:g}-{hi:g} nm: "
                f"priced at {used:g} nm")

    def energy_factor(self, node_nm: float) -> float:
        """On-chip energy at `node_nm` relative to this table's node (log-interpolated between
        the scaling points; outside them the nearest point, with a price note)."""
        _record(self.node_note(node_nm))
        points = sorted(self.energy_factor_by_node_nm.items())
        base = _interp_log(points, self.node_nm)
        return _interp_log(points, node_nm) / base

    def area_factor(self, node_nm: float) -> float:
        """Area at `node_nm` relative to this table's node."""
        return (node_nm / self.node_nm) ** self.area_exponent

    # --- arithmetic ---------------------------------------------------------------------------

    def op_energy_pj(self, op: str, number_format: str, bits: int) -> float:
        """Energy of one `op` ('add' or 'mult') at the table's node (a price note when the width
        is not in the table)."""
        value, note = _op_value(self.energy_pj, op, number_format, bits, self.path, self.name,
                                "pJ")
        _record(note)
        return value

    def op_area_um2(self, op: str, number_format: str, bits: int) -> float:
        """Area of one `op` unit at the table's node."""
        return _op_value(self.area_um2, op, number_format, bits, self.path, self.name, "um^2")[0]

    # --- memories -----------------------------------------------------------------------------

    def sram_points(self) -> list[tuple[float, float]]:
        """The sourced (size in bytes, pJ per 64-bit access) points, by size."""
        return sorted((float(k), float(v)) for k, v in self.energy_pj[SRAM_KEY].items())

    def sram_price(self, size_bytes: int, node_nm: float | None = None,
                   label: str = "") -> SramPrice:
        """Energy per byte of one access to an SRAM of `size_bytes` at `node_nm` (the table's node
        when None), with its make-up: one array inside the sourced sizes, banks above them (see
        the module docstring). `label` names the memory in price notes."""
        node = self.node_nm if node_nm is None else float(node_nm)
        factor = 1.0 if node_nm is None else self.energy_factor(node)
        points = self.sram_points()
        smallest, largest = int(points[0][0]), int(points[-1][0])
        name = f"sram '{label}' " if label else "sram "
        size = int(size_bytes)
        notes: list[str] = []
        if node_nm is not None and self.node_note(node):
            notes.append(self.node_note(node) or "")
        banks, grid, wire_mm, wire_t = 1, (1, 1), 0.0, 0.0
        if size < smallest:
            priced = smallest
            notes.append(f"{name}{format_bytes(size)} is below {self.name}'s smallest SRAM "
                         f"({format_bytes(smallest)}): priced as {format_bytes(smallest)}, "
                         f"{points[0][1] / BITS_PER_BYTE * factor:.3g} pJ/B, an upper bound")
        elif size <= largest:
            priced = size
        elif self.sram_banking is None:
            priced = largest
            notes.append(f"{name}{format_bytes(size)} is above {self.name}'s largest SRAM "
                         f"({format_bytes(largest)}) and the table has no sram_banking: priced "
                         f"as {format_bytes(largest)}, a lower bound")
        else:
            bank = self.sram_banking
            priced = bank.bank_bytes
            banks = -(-size // bank.bank_bytes)
            k = (banks - 1).bit_length()
            grid = (1 << ((k + 1) // 2), 1 << (k // 2))
            wire_mm = self.bank_side_mm(node) * (grid[0] + grid[1] - 2) / 2.0
            wire_t = BITS_PER_BYTE * bank.wire_pj_per_bit_mm * wire_mm
        bank_t = _interp_loglog(points, float(priced)) / BITS_PER_BYTE
        for note in notes:
            _record(note)
        return SramPrice(
            size_bytes=size, node_nm=node, pj_per_byte=(bank_t + wire_t) * factor,
            bank_bytes=priced, banks=banks, grid=grid, wire_mm=wire_mm,
            bank_pj_per_byte=bank_t * factor, wire_pj_per_byte=wire_t * factor,
            notes=tuple(notes),
        )

    def sram_pj_per_byte(self, size_bytes: int, node_nm: float | None = None) -> float:
        """Energy in pJ of reading one byte from an SRAM of `size_bytes` (`sram_price`)."""
        return self.sram_price(size_bytes, node_nm).pj_per_byte

    def bank_side_mm(self, node_nm: float | None = None) -> float:
        """Side of one square SRAM bank in mm at `node_nm`: bit cells / array efficiency."""
        if self.sram_banking is None:
            raise ArchError(f"{self.path}: no sram_banking section; banks have no size.")
        bank = self.sram_banking
        cell = float(self.area_um2["sram_bitcell"])
        area_um2 = BITS_PER_BYTE * bank.bank_bytes * cell / bank.array_efficiency
        scale = 1.0 if node_nm is None else self.area_factor(node_nm)
        return math.sqrt(area_um2 * scale) / UM_PER_MM

    def register_pj_per_bit(self, node_nm: float | None = None) -> float:
        """Energy in pJ per bit of one PE register-file access (read or write) at `node_nm`
        (the table's node when None): `energy_pj.register_access_16bit` / 16, scaled with the
        on-chip energy factor (a price note outside the scaling points)."""
        if REGISTER_KEY not in self.energy_pj:
            raise ArchError(
                f"{self.path}: no register price (energy_pj.{REGISTER_KEY}, pJ per access of a "
                f"{REGISTER_ACCESS_BITS}-bit word) but the arch declares PE registers under "
                "'pe:'; add the sourced figure to the table or leave 'pe:' out.")
        factor = 1.0 if node_nm is None else self.energy_factor(float(node_nm))
        return float(self.energy_pj[REGISTER_KEY]) / REGISTER_ACCESS_BITS * factor

    def dram_pj_per_byte(self, dram_type: str) -> float:
        """Energy of moving one byte to or from DRAM of `dram_type` (not node-scaled)."""
        table = self.energy_pj["dram_per_bit"]
        if dram_type not in table:
            raise ArchError(
                f"{self.path}: no DRAM energy for dram_type '{dram_type}' in "
                f"energy_pj.dram_per_bit (known: {sorted(table)}). Use a known type, add "
                f"'{dram_type}' to the table with its source, or give read_energy_pj_per_byte "
                "(and write_energy_pj_per_byte) on the memory level."
            )
        return 8.0 * float(table[dram_type])


def _op_value(table: dict, op: str, number_format: str, bits: int, path: str, name: str,
              unit: str) -> tuple[float, str | None]:
    """Look up `op` at `bits`; widths not in the table scale from the nearest one of the same
    format (multipliers with bits^2, adders with bits), a first-order rule, said in the note."""
    entries = {int(k[len(number_format):]): float(v) for k, v in table[op].items()
               if k.startswith(number_format) and k[len(number_format):].isdigit()}
    if not entries:
        raise ArchError(
            f"{path}: no '{op}' entries for number format '{number_format}' (keys such as "
            f"'{number_format}8'). Add them with their source, or use a format the table has."
        )
    if bits in entries:
        return entries[bits], None
    nearest = min(entries, key=lambda b: (abs(math.log2(b / bits)), -b))
    exponent = 2.0 if op == "mult" else 1.0
    value = entries[nearest] * (bits / nearest) ** exponent
    known = ", ".join(f"{number_format}{b}" for b in sorted(entries))
    power = "^2" if exponent == 2.0 else ""
    note = (f"{number_format}{bits} {op} is not in {name} ({known}): scaled from "
            f"{number_format}{nearest} by ({bits}/{nearest}){power} to {value:.3g} {unit}")
    return value, note


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
    """Interpolate in log-log space between the points; `x` must lie within them."""
    lx = [math.log(p[0]) for p in points]
    ly = [math.log(p[1]) for p in points]
    t = math.log(x)
    if not lx[0] <= t <= lx[-1]:
        raise AssertionError(f"{x} is outside the points {points}; callers clamp or bank first")
    for j in range(len(lx) - 1):
        if lx[j] <= t <= lx[j + 1]:
            slope = (ly[j + 1] - ly[j]) / (lx[j + 1] - lx[j])
            return math.exp(ly[j] + slope * (t - lx[j]))
    return math.exp(ly[0])  # a single point


def _banking(raw: dict | None, energy_pj: dict, area_um2: dict, path: Path) -> SramBanking | None:
    """The `sram_banking` section, checked: positive numbers and a bank of the largest sourced
    size (which keeps the price non-decreasing where banking takes over)."""
    if raw is None:
        return None
    _keys(path, "sram_banking", raw, {"bank_bytes", "array_efficiency", "wire_pj_per_bit_mm"},
          required=True)
    bank = SramBanking(
        bank_bytes=_size(path, "sram_banking.bank_bytes", raw["bank_bytes"]),
        array_efficiency=_number(path, "sram_banking.array_efficiency", raw["array_efficiency"],
                                 MAX_TABLE_ENERGY_PJ),
        wire_pj_per_bit_mm=_number(path, "sram_banking.wire_pj_per_bit_mm",
                                   raw["wire_pj_per_bit_mm"], MAX_TABLE_ENERGY_PJ, "pJ"))
    largest = max(int(k) for k in energy_pj[SRAM_KEY])
    problems = []
    if bank.bank_bytes != largest:
        problems.append(f"bank_bytes must be the largest sourced SRAM size ({largest}), got "
                        f"{bank.bank_bytes}, so that the price does not fall where banks begin")
    if not 0.0 < bank.array_efficiency <= 1.0:
        problems.append(f"array_efficiency must be in (0, 1], got {bank.array_efficiency}")
    if "sram_bitcell" not in area_um2:
        problems.append("area_um2.sram_bitcell is needed to size the banks")
    if problems:
        raise ArchError(f"{path}: sram_banking: {'; '.join(problems)}.")
    return bank


# --- validation of a table file ----------------------------------------------------------------

MAX_TABLE_ENERGY_PJ = 1e6
"""Largest energy a table may give for one action, pJ (and largest scaling factor)."""
MAX_TABLE_AREA_UM2 = 1e12
"""Largest area a table may give for one unit, um^2 (1 m^2)."""
MAX_TABLE_SRAM_BYTES = 2**50
"""Largest sourced SRAM size, bytes."""
MAX_AREA_EXPONENT = 4.0
"""Largest exponent of the node-scaling rule for area."""
TABLE_KEYS = {"name", "node_nm", "voltage_v", "energy_pj", "area_um2", "node_scaling",
              "sram_banking", "notes", "sources"}
OP_KEY = re.compile(r"^(int|fp)([1-9][0-9]?)$")


def _keys(path: Path, where: str, raw: object, allowed: set[str], required: bool | set[str]) -> None:
    """`raw` is a mapping whose keys are in `allowed` and include `required` (all of `allowed`
    when True)."""
    if not isinstance(raw, dict):
        raise ArchError(f"{path}: '{where}' must be a mapping, got {type(raw).__name__}.")
    unknown = sorted(str(k) for k in raw if k not in allowed)
    if unknown:
        raise ArchError(f"{path}: unknown key(s) {unknown} in '{where}'; allowed: "
                        f"{sorted(allowed)}.")
    needed = allowed if required is True else (required or set())
    missing = sorted(k for k in needed if k not in raw)
    if missing:
        raise ArchError(f"{path}: '{where}' is missing {missing}.")


def _number(path: Path, key: str, value: object, high: float, unit: str = "",
            low: float = 0.0, low_open: bool = True) -> float:
    """`value` as a float: a finite number (not a boolean) above `low` (or at it, when not
    `low_open`) and at most `high`."""
    ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
          and math.isfinite(value) and (value > low if low_open else value >= low)
          and value <= high)
    if not ok:
        bound = f"{'>' if low_open else '>='} {low:g} and <= {high:g}"
        raise ArchError(f"{path}: '{key}' must be a finite number {bound}{f' {unit}' if unit else ''}"
                        f", got {value!r}. Give the sourced figure.")
    return float(value)


def _size(path: Path, key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_TABLE_SRAM_BYTES:
        raise ArchError(f"{path}: '{key}' must be a whole number of bytes in 1..2**50, got "
                        f"{value!r}.")
    return value


def _op_table(path: Path, where: str, raw: object, high: float, unit: str) -> None:
    """An `add` or `mult` table: keys such as 'int8' or 'fp16', positive finite values."""
    if not isinstance(raw, dict) or not raw:
        raise ArchError(f"{path}: '{where}' must be a non-empty mapping such as "
                        f"{{int8: ..., fp16: ...}}, got {raw!r}.")
    for key, value in raw.items():
        match = OP_KEY.match(str(key)) if isinstance(key, str) else None
        if match is None or int(match.group(2)) > MAX_BITS:
            raise ArchError(f"{path}: '{where}' key {key!r} must be a number format and width "
                            f"such as 'int8' or 'fp16' (1 to {MAX_BITS} bits).")
        _number(path, f"{where}.{key}", value, high, unit)


def check_table(raw: object, path: Path) -> None:
    """Refuse a tech table that is not complete, finite and positive where prices are (see
    `MAX_TABLE_*`), naming the file and the key."""
    _keys(path, "top level", raw, TABLE_KEYS,
          required={"name", "node_nm", "energy_pj", "area_um2", "node_scaling"})
    assert isinstance(raw, dict)
    if not isinstance(raw["name"], str) or not raw["name"]:
        raise ArchError(f"{path}: 'name' must be a non-empty string, got {raw['name']!r}.")
    _number(path, "node_nm", raw["node_nm"], MAX_NODE_NM, "nm")
    if "voltage_v" in raw:
        _number(path, "voltage_v", raw["voltage_v"], 1e3, "V")
    energy, area, scaling = raw["energy_pj"], raw["area_um2"], raw["node_scaling"]
    _keys(path, "energy_pj", energy, {"add", "mult", SRAM_KEY, "dram_per_bit", REGISTER_KEY},
          required={"add", "mult", SRAM_KEY, "dram_per_bit"})
    if REGISTER_KEY in energy:
        _number(path, f"energy_pj.{REGISTER_KEY}", energy[REGISTER_KEY], MAX_TABLE_ENERGY_PJ,
                "pJ")
    _keys(path, "area_um2", area, {"add", "mult", "sram_bitcell"}, required={"add", "mult"})
    for op in ("add", "mult"):
        _op_table(path, f"energy_pj.{op}", energy[op], MAX_TABLE_ENERGY_PJ, "pJ")
        _op_table(path, f"area_um2.{op}", area[op], MAX_TABLE_AREA_UM2, "um^2")
    sram = energy[SRAM_KEY]
    if not isinstance(sram, dict) or not sram:
        raise ArchError(f"{path}: 'energy_pj.{SRAM_KEY}' must map SRAM sizes in bytes to the "
                        f"energy of one 64-bit access, with at least one point; got {sram!r}.")
    for size, pj in sram.items():
        _size(path, f"energy_pj.{SRAM_KEY} key {size!r}", size)
        _number(path, f"energy_pj.{SRAM_KEY}.{size}", pj, MAX_TABLE_ENERGY_PJ, "pJ")
    dram = energy["dram_per_bit"]
    if not isinstance(dram, dict):
        raise ArchError(f"{path}: 'energy_pj.dram_per_bit' must map DRAM types to pJ per bit, "
                        f"got {dram!r}.")
    for kind, pj in dram.items():
        _number(path, f"energy_pj.dram_per_bit.{kind}", pj, MAX_TABLE_ENERGY_PJ, "pJ")
    if "sram_bitcell" in area:
        _number(path, "area_um2.sram_bitcell", area["sram_bitcell"], MAX_TABLE_AREA_UM2, "um^2")
    _keys(path, "node_scaling", scaling, {"energy_factor_by_node_nm", "area_exponent"},
          required=True)
    points = scaling["energy_factor_by_node_nm"]
    if not isinstance(points, dict) or not points:
        raise ArchError(f"{path}: 'node_scaling.energy_factor_by_node_nm' must map nodes (nm) to "
                        f"energy factors, with at least one point; got {points!r}.")
    for node, factor in points.items():
        _number(path, f"node_scaling.energy_factor_by_node_nm key {node!r}", node, MAX_NODE_NM,
                "nm")
        _number(path, f"node_scaling.energy_factor_by_node_nm.{node}", factor,
                MAX_TABLE_ENERGY_PJ)
    _number(path, "node_scaling.area_exponent", scaling["area_exponent"], MAX_AREA_EXPONENT,
            low_open=False)


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
    raw = read_yaml(path, ArchError, "tech table")
    check_table(raw, path)
    try:
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
            sram_banking=_banking(raw.get("sram_banking"), raw["energy_pj"], raw["area_um2"],
                                  path),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ArchError(f"{path}: malformed tech table ({type(exc).__name__}: {exc}).") from None
