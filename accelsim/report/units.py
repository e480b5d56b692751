"""Numbers for people: a result column's quantity and unit from its name, SI-prefixed values
(ns/us/ms, pJ/nJ/uJ/mJ, kB/MB), counts as integers, one notation per column and no exponents.

Machine formats (CSV, JSON, Parquet) never pass through here: they keep full precision and the
base unit named in the column (`latency_s` seconds, `energy_pj` picojoules, `*_bytes` bytes).
Terminal tables (`accelsim.display`) and report figures and tables use these functions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

PREFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"),
            (1e-6, "u"), (1e-9, "n"), (1e-12, "p"), (1e-15, "f"))
"""SI prefixes, largest first ('u' for micro, so that every terminal shows it)."""


@dataclass(frozen=True)
class Quantity:
    """What a result column holds: `label` (its name without the unit suffix), `unit` (the SI
    unit cells are shown in, '' for plain numbers), `scale` (multiplies the stored value into
    that unit, e.g. 1e-12 for pJ -> J) and `notation`: 'si' (SI-prefixed per cell), 'count'
    (whole numbers with thousands separators) or 'plain' (fixed point, 3 significant digits)."""

    label: str
    unit: str = ""
    scale: float = 1.0
    notation: str = "plain"


SUFFIXES: tuple[tuple[str, str, float, str], ...] = (
    ("_pj_per_token", "J", 1e-12, "_per_token"), ("_s_per_token", "s", 1.0, "_per_token"),
    ("_bytes_per_token", "B", 1.0, "_per_token"), ("_per_s", "/s", 1.0, "_per_s"),
    ("_pj", "J", 1e-12, ""), ("_js", "J·s", 1.0, ""), ("_j", "J", 1.0, ""), ("_s", "s", 1.0, ""),
    ("_bytes", "B", 1.0, ""), ("_mhz", "Hz", 1e6, ""), ("_hz", "Hz", 1.0, ""),
    ("_mw", "W", 1e-3, ""), ("_w", "W", 1.0, ""),
)
"""Column-name endings that carry a unit: (ending, SI unit shown, factor to that unit, what
stays of the ending in the label). The first ending that matches wins, so the longer ones come
first: `energy_pj` is 'energy' in J, `latency_s_per_token` 'latency_per_token' in s."""

COUNT_NAMES = ("cycles", "events", "synaptic_ops", "nps_used", "layers", "tokens", "steps",
               "rows", "points")
"""Column names (or name endings after '_') that count things: shown as whole numbers."""
COUNT_PREFIXES = ("macs_", "cycles_", "layers_")


def quantity(column: str) -> Quantity:
    """What `column` holds, from its name (`accelsim.results` puts the unit in the name)."""
    for ending, unit, scale, kept in SUFFIXES:
        if column.endswith(ending) and len(column) > len(ending):
            return Quantity(column[: -len(ending)] + kept, unit, scale, "si")
    if column.endswith("_mm2"):
        return Quantity(column[:-4], "mm²", 1.0, "plain")
    last = column.rsplit("_", 1)[-1]
    if (column in COUNT_NAMES or last in COUNT_NAMES or column.startswith(COUNT_PREFIXES)
            or column.endswith("_ops")):
        return Quantity(column, "", 1.0, "count")
    return Quantity(column)


def si(value: float, unit: str = "", digits: int = 3) -> str:
    """`value` (in `unit`) with an SI prefix and `digits` significant digits: 1.25e-5, 's'
    -> '12.5 us'; 0 -> '0 s'; NaN -> '-'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    v = float(value)
    if math.isinf(v):
        return ("-" if v < 0 else "") + "inf"
    if v == 0:
        return f"0 {unit}".rstrip()
    size = abs(v)
    factor, prefix = next(((f, p) for f, p in PREFIXES if size >= f * (1 - 0.5 * 10 ** -digits)),
                          PREFIXES[-1])
    mantissa = float(f"{v / factor:.{digits}g}")
    if abs(mantissa) >= 1000 and factor != PREFIXES[0][0]:  # 999.96 rounds up to the next prefix
        return si(math.copysign(1000 * factor, v), unit, digits)
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(mantissa))))
    text = f"{mantissa:.{decimals}f}"
    return f"{text} {prefix}{unit}".rstrip()


def fixed(value: float, digits: int = 3, most: int = 8) -> str:
    """`value` in fixed-point notation (never an exponent) with `digits` significant digits
    (at most `most` decimals); values of `digits` or more integer digits as whole numbers with
    thousands separators: 1.1834 -> '1.18', 0.0015 -> '0.00150', 294912.4 -> '294,912'."""
    v = float(value)
    if v == 0 or abs(v) >= 10 ** (digits - 1) * 9.995:
        return f"{v:,.0f}"
    rounded = float(f"{v:.{digits}g}")
    decimals = min(most, max(0, digits - 1 - math.floor(math.log10(abs(rounded)))))
    return f"{rounded:,.{decimals}f}"


def is_missing(value: object) -> bool:
    """None or NaN."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def column_text(column: str, values: Sequence[object]) -> list[str]:
    """Every cell of `column` as people read it, in one notation for the whole column: SI
    prefixes for quantities with a unit, whole numbers for counts (and for a column of whole
    numbers only), fixed point with 3
    significant digits for the rest (ratios, densities), never an exponent; text as written,
    '-' for missing values."""
    q = quantity(column)
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)
               and not is_missing(v)]
    if not numbers:
        return ["-" if is_missing(v) else str(v) for v in values]
    whole = all(float(v).is_integer() for v in numbers if not math.isinf(v))
    out = []
    for v in values:
        if is_missing(v):
            out.append("-")
        elif isinstance(v, bool) or not isinstance(v, (int, float)):
            out.append(str(v))
        elif q.notation == "si":
            out.append(si(float(v) * q.scale, q.unit))
        elif q.notation == "count" or isinstance(v, int) or (whole and q.notation == "plain"):
            out.append("inf" if math.isinf(v) else f"{round(v):,}")
        elif math.isinf(v):
            out.append(("-" if v < 0 else "") + "inf")
        else:
            out.append(fixed(v) + (f" {q.unit}" if q.unit else ""))
    return out


def axis_label(column: str, unit_prefix: str = "") -> str:
    """An axis title for `column`: its label in words and its unit in parentheses."""
    q = quantity(column)
    words = q.label.replace("_", " ")
    return f"{words} ({unit_prefix}{q.unit})" if q.unit else words
