"""Run one workload on one architecture: count with the engine, then price, per layer."""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from accelsim import __version__, decode
from accelsim.arch.area import UM2_PER_MM2, area_mm2, area_um2_by_component
from accelsim.arch.energy import price, price_warnings, priced_actions
from accelsim.arch.schema import ArchBase
from accelsim.engines.batch import MISSING, LayerBatch, layer_memo, loop
from accelsim.engines.counts import LayerResult
from accelsim.engines.shared_gemm_operand import gemm_dims, in_bounds_elements
from accelsim.engines.traffic import space_energy_pj
from accelsim.errors import AccelsimError
from accelsim.kinds import engine_for
from accelsim.results import (
    ADDITIVE,
    BASE_COLUMNS,
    SUM_COLUMNS,
    RunResult,
    access_columns,
    git_revision,
    total_ratios,
)
from accelsim.workload.layer import Layer, Workload

if TYPE_CHECKING:  # pandas is imported only where an engine returns tables (start-up)
    import pandas as pd


def _count(layer: Layer, arch: ArchBase) -> LayerResult:
    return engine_for(arch.kind).simulate(layer, arch)


def _prepare(workload: Workload, arch: ArchBase) -> dict:
    """Run the engine's optional whole-workload step; its summary goes to the run metadata."""
    prepare = getattr(engine_for(arch.kind), "prepare", None)
    return (prepare(workload, arch) or {}) if prepare is not None else {}


@dataclass(frozen=True)
class Prices:
    """One arch's energy per unit of each action (pJ, `action_energy_pj`) and the price notes
    of its actions (`pricing_notes`): made once per run, used for every layer."""

    arch: ArchBase
    table: dict[str, float]
    notes: dict[str, tuple[str, ...]]

    @classmethod
    def of(cls, arch: ArchBase) -> Prices:
        return cls(arch, *priced_actions(arch))

    def energy_pj(self, actions: dict[str, float], latency_s: float) -> dict[str, float]:
        """`accelsim.arch.energy.price` of `actions` on this arch, pJ per component."""
        return price(actions, self.arch, latency_s, self.table)

    def warnings(self, actions: dict[str, float]) -> list[str]:
        """`accelsim.arch.energy.price_warnings` of `actions` on this arch."""
        return price_warnings(actions, self.arch, self.notes)


def _row(layer: Layer, res: LayerResult, dense: LayerResult, prices: Prices,
         dense_prices: Prices) -> dict:
    arch, dense_arch = prices.arch, dense_prices.arch
    latency_s = res.cycles / arch.clock_hz
    dense_latency_s = dense.cycles / dense_arch.clock_hz
    energy = prices.energy_pj(res.actions, latency_s)
    dense_energy_pj = sum(dense_prices.energy_pj(dense.actions, dense_latency_s).values())
    energy_pj = sum(energy.values())
    has_result = not math.isnan(res.cycles)
    speedup = dense_latency_s / latency_s if latency_s else 1.0
    act_density, weight_density = _densities(layer)
    notes = [n for n in (padding_note(layer, speedup),
                         static_note(energy.get("static", 0.0), energy_pj, arch, latency_s)) if n]
    row = {
        "layer": layer.name,
        "op": layer.op,
        "arch": arch.name,
        "engine": arch.kind,
        "engine_mode": res.engine_mode,
        "macs_dense": res.macs_dense,
        "macs_done": res.macs_done,
        "macs_skipped": res.macs_skipped,
        "macs_gated": res.macs_gated,
        "act_density": act_density,
        "weight_density": weight_density,
        "cycles": res.cycles,
        "compute_cycles": res.compute_cycles,
        "stall_cycles": res.stall_cycles,
        "latency_s": latency_s,
        "energy_pj": energy_pj,
        "energy_pj_per_mac": energy_pj / res.macs_dense if res.macs_dense else math.nan,
        "dram_bytes": res.dram_bytes,
        "utilization": res.utilization if has_result else math.nan,
        "bound": res.bound if has_result else "none",
        "speedup_vs_dense": speedup,
        "energy_saving_vs_dense": dense_energy_pj / energy_pj if energy_pj else float("nan"),
        "dense_cycles": dense.cycles,
        "dense_latency_s": dense_latency_s,
        "dense_energy_pj": dense_energy_pj,
        "covered_macs_fraction": 1.0 if has_result else 0.0,
        "warnings": "; ".join(_warnings(res, speedup, dense, prices, dense_prices) + notes),
    }
    row.update({f"energy_{component}_pj": pj for component, pj in energy.items()})
    row.update(res.columns)
    row.update(space_energy_pj(res.columns, prices.table, [lv.name for lv in arch.memory]))
    row.update(access_columns(res.actions))
    return row


def mac_bound(res: LayerResult) -> float:
    """The most skipping work can speed a layer up by: dense MACs / MACs done."""
    return res.macs_dense / res.macs_done if res.macs_done else math.inf


def padding_note(layer: Layer, speedup: float) -> str:
    """Why a conv's speed-up can exceed 1 / (activation density x weight density): the share of
    its dense MACs that read zero padding, which a zero-skipping design skips like any other
    zero, while `act_density` counts stored activations only. '' where the speed-up is within
    that bound or the layer reads no padding."""
    if not _padding_noted(layer, speedup):
        return ""
    return (f"{_padded_fraction(layer):.0%} of the dense MACs read zero padding, skipped here "
            f"like any zero (act_density {_densities(layer)[0]:.3g} counts stored activations "
            "only)")


def _padded_fraction(layer: Layer) -> float:
    """Share of the layer's dense MACs that read zero padding (0 for linear/matmul)."""
    memo = layer_memo(layer)
    if "padded_fraction" not in memo:
        memo["padded_fraction"] = 1.0 - in_bounds_elements(layer) / gemm_dims(layer).a_elements
    return memo["padded_fraction"]


STATIC_SHARE_NOTED = 0.5
"""Share of a row's energy above which static power is said in its warnings."""


def _mostly_static(static_pj: Any, energy_pj: Any) -> Any:
    """Where static power is over `STATIC_SHARE_NOTED` of the energy (numbers or arrays)."""
    return (energy_pj > 0) & (static_pj > STATIC_SHARE_NOTED * energy_pj)


def static_note(static_pj: float, energy_pj: float, arch: ArchBase, latency_s: float) -> str:
    """A note when static power is most of a row's energy (its energy per MAC then reads the
    chip's floor over the row's latency, not its MACs); '' otherwise."""
    if not _mostly_static(static_pj, energy_pj):
        return ""
    return (f"static power is {static_pj / energy_pj:.0%} of this row's energy "
            f"({arch.static_power_mw:g} mW over {latency_s:.3g} s): its energy per MAC is the "
            "chip's floor, not its MACs")


def _padding_noted(layer: Layer, speedup: Any) -> Any:
    """Whether `padding_note` has a note for this layer at this speed-up (a number, or an array
    over points): it reads padding and the speed-up passes 1 / (act x weight density)."""
    act_density, weight_density = _densities(layer)
    density = act_density * weight_density
    if not (density > 0 and _padded_fraction(layer) > 0):
        return np.zeros(np.shape(speedup), dtype=bool)
    return speedup > (1 + 1e-9) / density


def _warnings(res: LayerResult, speedup: float, dense: LayerResult, prices: Prices,
              dense_prices: Prices) -> list[str]:
    """The engine's warnings, a speed-up above `mac_bound` said in numbers, and the prices of
    this row's actions (on the arch and on its dense equivalent) taken outside the tech table's
    sourced range (`accelsim.arch.energy.price_warnings`)."""
    found = list(res.warnings)
    for note in prices.warnings(res.actions) + dense_prices.warnings(dense.actions):
        if note not in found:
            found.append(note)
    bound = mac_bound(res)
    if speedup > bound * (1 + 1e-9):
        if dense.bound == "memory" and dense.cycles:
            found.append(f"memory-bound when dense ({dense.stall_cycles / dense.cycles:.0%} of "
                         "its cycles wait on memory): fewer bytes move here, so time follows "
                         "bytes, not MACs")
        found.append(f"speed-up {speedup:.3g}x is above dense MACs / MACs done = {bound:.3g}x")
    return found


Phase = Literal["prefill", "decode"]


def simulate(
    workload: Workload,
    arch: ArchBase,
    on_layer: Callable[[Layer], None] | None = None,
    phase: Phase = "prefill",
    batch: int | None = None,
    context: int | None = None,
) -> RunResult:
    """Simulate every layer on `arch` and on `arch.dense_equivalent()`; `on_layer` is
    called after each layer (for progress). `phase="decode"` replays a causal LM's prefill
    trace as decode steps of `batch` tokens against a KV cache of `context` positions (see
    `accelsim.decode`; both default to the workload's decode metadata)."""
    dense_arch = arch.dense_equivalent()
    plan = None
    if phase == "decode":
        plan = decode.plan(workload, batch, context)
        if getattr(engine_for(arch.kind), "prepare", None) is not None:
            raise AccelsimError(
                f"{arch.name}: decode replay runs each layer as separate steps, which kind "
                f"'{arch.kind}' cannot map as one network. Run it without --phase decode.")
    summaries = {"arch": _prepare(workload, arch)} if plan is None else {"arch": {}}
    if plan is None and dense_arch != arch:
        summaries["dense"] = _prepare(workload, dense_arch)
    prices = Prices.of(arch)
    dense_prices = prices if dense_arch == arch else Prices.of(dense_arch)
    rows, tables = [], {}
    for layer in workload.layers:
        steps = [decode.Step(layer.name, layer)] if plan is None else plan.products[layer.name]
        step_rows = []
        for step in steps:
            res = _count(step.layer, arch)
            dense = res if dense_arch == arch else _count(step.layer, dense_arch)
            step_rows.append((_row(step.layer, res, dense, prices, dense_prices), step.repeat))
            if step is steps[0]:
                for name, table in res.tables.items():
                    tables.setdefault(name, []).append(table.assign(layer=layer.name))
        rows.append(step_rows[0][0] if plan is None
                    else decode.aggregate(layer.name, step_rows, plan.tokens))
        if on_layer is not None:
            on_layer(layer)
    names = [*dict.fromkeys(c for row in rows for c in row), "workload"]
    energy_cols = sorted(c for c in names if c.startswith("energy_") and c.endswith("_pj")
                         and c not in BASE_COLUMNS)
    extra_cols = [c for c in names if c not in BASE_COLUMNS and c not in energy_cols]
    meta = {
        "tool": "accelsim",
        "tool_version": __version__,
        "git_revision": git_revision(),
        "arch": arch.name,
        "arch_kind": arch.kind,
        "arch_hash": arch.config_hash(),
        "arch_config": arch.model_dump(mode="json"),
        "area_mm2": _area_mm2(arch),
        "area_mm2_by_component": _area_by_component(arch),
        "workload": workload.model,
        "workload_hash": workload.content_hash,
        "workload_source": workload.source,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if plan is not None:
        meta["phase"] = "decode"
        meta["decode"] = plan.meta()
    if any(summaries.values()):
        meta["engine_summary"] = summaries
    stacked = {}
    if tables:
        import pandas as pd

        stacked = {name: _layer_first(pd.concat(parts, ignore_index=True))
                   for name, parts in tables.items()}
    return RunResult.from_rows(rows, BASE_COLUMNS + energy_cols + extra_cols, workload.model,
                               meta, stacked)


def _layer_first(table: pd.DataFrame) -> pd.DataFrame:
    return table[["layer", *(c for c in table.columns if c != "layer")]]


def _area_mm2(arch: ArchBase) -> float | None:
    """Modelled die area (`accelsim.arch.area`), None where the model does not cover the kind."""
    try:
        return area_mm2(arch)
    except AccelsimError:
        return None


def _area_by_component(arch: ArchBase) -> dict[str, float] | None:
    """Modelled area per component in mm² (`mac`, `sram_<level>`), None where the model does
    not cover the kind."""
    try:
        return {k: v / UM2_PER_MM2 for k, v in area_um2_by_component(arch).items()}
    except AccelsimError:
        return None


def count_batch(layer: Layer, archs: Sequence[ArchBase]) -> LayerBatch:
    """One layer counted on many design points of one kind: the engine's `simulate_batch`
    where it has one, else its `simulate` point by point (`accelsim.engines.batch.loop`)."""
    engine = engine_for(archs[0].kind)
    batched = getattr(engine, "simulate_batch", None)
    return batched(layer, archs) if batched is not None else loop(engine.simulate, layer, archs)


@dataclass
class _PointPrices:
    """`Prices` of P design points as arrays over the points, one per action, built as the
    layers ask for them."""

    prices: list[Prices]
    static_mw: np.ndarray = field(init=False)
    _unit: dict[str, np.ndarray] = field(default_factory=dict)
    _unit_or_0: dict[str, np.ndarray] = field(default_factory=dict)
    _noted: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.static_mw = np.array([p.arch.static_power_mw for p in self.prices], dtype=float)

    def unit_pj(self, action: str) -> np.ndarray:
        """pJ per unit of `action` at each point (NaN where the point has no price for it)."""
        if action not in self._unit:
            self._unit[action] = np.array([p.table.get(action, np.nan) for p in self.prices])
        return self._unit[action]

    def noted(self, action: str) -> np.ndarray:
        """Where pricing `action` raises a price note (`Prices.warnings`)."""
        if action not in self._noted:
            self._noted[action] = np.array([bool(p.notes.get(action)) for p in self.prices])
        return self._noted[action]

    def energy_pj(self, b: LayerBatch, latency_s: np.ndarray
                  ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray]:
        """`Prices.energy_pj` of every point of `b`: (pJ per component, where each component
        has a priced action, the points' total pJ)."""
        energy: dict[str, np.ndarray] = {}
        has: dict[str, np.ndarray] = {}
        for action, count in b.actions.items():
            done = count != 0
            if not done.any():
                continue
            unit = self.unit_pj(action)
            unpriced = done & np.isnan(unit)
            if unpriced.any():  # the error `price` gives, for the first such point
                i = int(np.argmax(unpriced))
                self.prices[i].energy_pj(b.point(i).actions, 0.0)
            if action not in self._unit_or_0:
                self._unit_or_0[action] = np.nan_to_num(unit)
            component = action.split(".", 1)[0]
            part = np.where(done, count * self._unit_or_0[action], 0.0)
            energy[component] = energy[component] + part if component in energy else part
            has[component] = has[component] | done if component in has else done
        energy["static"] = self.static_mw * 1e-3 * latency_s * 1e12
        has["static"] = np.ones(len(latency_s), dtype=bool)
        total = np.zeros(len(latency_s))
        for part in energy.values():
            total = total + part
        return energy, has, total

    def space_energy_pj(self, b: LayerBatch, levels: list[str]
                        ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """`accelsim.engines.traffic.space_energy_pj` of every point of `b` at its own prices:
        per column, (pJ, where the point's row has the column)."""
        table = {f"{level}.{verb}_bytes": self.unit_pj(f"{level}.{verb}_bytes")
                 for level in levels for verb in ("read", "write")}
        moved = {c: _numbers(v) for c, v in b.columns.items()
                 if c.endswith(("_read_bytes", "_write_bytes"))}
        return {c: (pj, ~np.isnan(pj)) for c, pj in space_energy_pj(moved, table, levels).items()}

    def any_note(self, b: LayerBatch) -> np.ndarray:
        """Where some action a point performs has a price note."""
        found = np.zeros(len(b), dtype=bool)
        for action, count in b.actions.items():
            found |= (count != 0) & self.noted(action)
        return found


_NUMBER_TYPES = {int, float, np.int64, np.int32, np.float64, np.float32}
"""Types of values a numeric result column holds (not bool)."""


def _numbers(values: list | np.ndarray) -> np.ndarray:
    """A batch column as floats over its points (NaN where a point has no number)."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiu":
        return values.astype(float)
    return np.array([float(v) if type(v) in _NUMBER_TYPES else np.nan for v in values])


@dataclass
class _Column:
    """An additive result column of P points over the layers that have it: per such layer
    (`layers`), each point's value (NaN where it has none or it is not a number), whether the
    point's row lists the column, whether the value is a number (booleans are not) and
    whether it is a value at all (not None)."""

    layers: list[int] = field(default_factory=list)
    values: list[np.ndarray] = field(default_factory=list)
    listed: list[np.ndarray] = field(default_factory=list)
    numeric: list[np.ndarray] = field(default_factory=list)
    filled: list[np.ndarray] = field(default_factory=list)

    def add(self, j: int, values: np.ndarray, listed: np.ndarray,
            numeric: np.ndarray | None = None, filled: np.ndarray | None = None) -> None:
        self.layers.append(j)
        self.values.append(values)
        self.listed.append(listed)
        self.numeric.append(listed if numeric is None else numeric)
        self.filled.append(listed if filled is None else filled)

    def add_objects(self, j: int, values: list | np.ndarray) -> None:
        """Add a layer's engine column: one Python value (or `MISSING`) per point, or a number
        array."""
        if isinstance(values, np.ndarray) and values.dtype.kind in "fiu":
            self.add(j, values.astype(float), np.ones(len(values), dtype=bool))
            return
        if set(map(type, values)) <= _NUMBER_TYPES:
            every = np.ones(len(values), dtype=bool)
            self.add(j, np.array(values, dtype=float), every)
            return
        listed = np.array([v is not MISSING for v in values])
        filled = listed & np.array([v is not None for v in values])
        numeric = np.array([isinstance(v, int | float | np.integer | np.floating)
                            and not isinstance(v, bool | np.bool_) for v in values])
        self.add(j, np.array([float(v) if ok else np.nan for v, ok in zip(values, numeric)]),
                 listed, numeric | (listed & ~filled), filled)

    def totals(self, has: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(where the column is in a point's totals, its sum over the layers with a result):
        as a table's numeric column sums, NaN counted as nothing; a column with a boolean or
        other non-number value, or no value at all, is not summed."""
        values, listed = np.array(self.values), np.array(self.listed)
        numeric, filled = np.array(self.numeric), np.array(self.filled)
        summed = listed.any(axis=0) & ~(listed & ~numeric).any(axis=0) & (listed & filled).any(
            axis=0)
        keep = has[:, self.layers].T & listed & ~np.isnan(values)
        return summed, np.where(keep, values, 0.0).sum(axis=0)


def _prices_of(archs: Sequence[ArchBase]) -> list[Prices]:
    """`Prices.of` each arch, made once for points that differ only in fields the engine names
    as pricing nothing (its optional `UNPRICED_FIELDS`: array sides, dataflow, clocks; never
    memories, precision or the fields its own action energies read)."""
    unpriced = {"name", *getattr(engine_for(archs[0].kind), "UNPRICED_FIELDS", ())}
    made: dict[str, Prices] = {}
    out = []
    for arch in archs:
        key = arch.model_dump_json(exclude=unpriced)
        if key not in made:
            made[key] = Prices.of(arch)
        out.append(Prices(arch, made[key].table, made[key].notes))
    return out


def simulate_totals(workload: Workload, archs: Sequence[ArchBase]) -> list[dict]:
    """`simulate(workload, arch).totals()` for every arch of one kind (a sweep's design points),
    in one pass over the layers: each layer counted on all points at once (`count_batch`),
    priced with each point's `Prices`, and the totals summed over arrays of points instead of
    a table per point (the same figures, to rounding). Kinds with a whole-workload `prepare`
    step run point by point through `simulate`."""
    archs = tuple(archs)
    if not archs:
        return []
    if getattr(engine_for(archs[0].kind), "prepare", None) is not None:
        return [simulate(workload, arch).totals() for arch in archs]
    n = len(archs)
    dense_archs = tuple(a.dense_equivalent() for a in archs)
    same = all(d is a for d, a in zip(dense_archs, archs))
    prices = _PointPrices(_prices_of(archs))
    dense_prices = prices if same else _PointPrices(_prices_of(dense_archs))
    clock_hz = np.array([a.clock_hz for a in archs])
    dense_clock_hz = np.array([a.clock_hz for a in dense_archs])
    per_layer: dict[str, list[np.ndarray]] = {c: [] for c in (*SUM_COLUMNS, "has", "warned",
                                                             "util", "memory")}
    energy: dict[str, _Column] = {}
    extras: dict[str, _Column] = {}
    modes: list[list[str]] = []
    orders: list[tuple[list[tuple[str, ...]], list[tuple[str, ...]]]] = []
    access_of: dict[str, tuple[str, ...]] = {}
    levels = list(dict.fromkeys(lv.name for arch in archs for lv in arch.memory))
    every = np.ones(n, dtype=bool)
    every.flags.writeable = False
    for j, layer in enumerate(workload.layers):
        b = count_batch(layer, archs)
        dense = b if same else count_batch(layer, dense_archs)
        latency_s = b.cycles / clock_hz
        dense_latency_s = dense.cycles / dense_clock_hz
        parts, has_part, energy_pj = prices.energy_pj(b, latency_s)
        dense_energy_pj = dense_prices.energy_pj(dense, dense_latency_s)[2]
        with np.errstate(divide="ignore", invalid="ignore"):
            speedup = np.where(latency_s != 0, dense_latency_s / latency_s, 1.0)
            bound = np.where(b.macs_done != 0,
                             b.macs_dense / np.where(b.macs_done != 0, b.macs_done, 1), np.inf)
        warned = (np.array([bool(w) for w in b.warnings]) | prices.any_note(b)
                  | dense_prices.any_note(dense) | (speedup > bound * (1 + 1e-9))
                  | _padding_noted(layer, speedup)
                  | _mostly_static(parts["static"], energy_pj))
        has = ~np.isnan(b.cycles)
        values = {"macs_dense": b.macs_dense, "macs_done": b.macs_done,
                  "macs_skipped": b.macs_skipped, "macs_gated": b.macs_gated,
                  "cycles": b.cycles, "compute_cycles": b.compute_cycles,
                  "stall_cycles": b.stall_cycles, "latency_s": latency_s, "energy_pj": energy_pj,
                  "dram_bytes": b.dram_bytes, "dense_cycles": dense.cycles,
                  "dense_latency_s": dense_latency_s, "dense_energy_pj": dense_energy_pj,
                  "has": has, "warned": warned, "util": np.where(has, b.utilization, np.nan),
                  "memory": b.memory_bound & has}
        for c, column in per_layer.items():
            column.append(np.asarray(values[c], dtype=bool if c in ("has", "warned", "memory")
                                     else float))
        for component, part in parts.items():
            energy.setdefault(f"energy_{component}_pj", _Column()).add(j, part,
                                                                        has_part[component])
        for c, (pj, listed) in prices.space_energy_pj(b, levels).items():
            energy.setdefault(c, _Column()).add(j, pj, listed)
        for c, v in b.columns.items():
            if ADDITIVE.search(c) and c not in BASE_COLUMNS:
                extras.setdefault(c, _Column()).add_objects(j, v)
        for action, count in b.actions.items():
            if action not in access_of:
                access_of[action] = tuple(access_columns({action: 0.0}))
            for c in access_of[action]:
                absent = b.absent.get(action)
                listed = every if absent is None else ~absent
                extras.setdefault(c, _Column()).add(j, np.where(listed, count, np.nan), listed)
        modes.append(b.engine_mode)
        orders.append((b.column_order or [tuple(b.columns)] * n,
                       b.action_order or [tuple(b.actions)] * n))
    stacked = {c: np.stack(v, axis=1) for c, v in per_layer.items()}
    has = stacked["has"]
    sums = {c: np.where(has & ~np.isnan(stacked[c]), stacked[c], 0.0).sum(axis=1)
            for c in SUM_COLUMNS}
    priced = {c: col for c, col in extras.items() if c.startswith("energy_") and c.endswith("_pj")}
    energy.update(priced)  # a table sorts every energy_*_pj column together
    columns = {c: col.totals(has) for c, col in {**energy, **extras}.items()}
    first = sorted(energy)
    named: dict[tuple[int, ...], list[str]] = {}
    densities = np.array([_densities(layer) for layer in workload.layers], dtype=float)
    out = []
    keys = zip(*(zip(map(id, order), map(id, acts)) for order, acts in orders))
    for i, key in enumerate(keys):
        if key not in named:  # the point's columns in a per-layer table's order
            seen = dict.fromkeys(first)
            for order, acts in orders:
                access = (c for a in acts[i] for c in access_of.get(a, ()))
                seen.update(dict.fromkeys(c for c in (*order[i], *access)
                                          if c in extras and c not in priced))
            named[key] = list(seen)
        out.append(_point_totals(i, archs[i], stacked, sums, columns, named[key], modes,
                                 densities))
    return out


def _densities(layer: Layer) -> tuple[float, float]:
    """The layer's (act_density, weight_density), measured once per workload."""
    memo = layer_memo(layer)
    if "densities" not in memo:
        memo["densities"] = (layer.act_density, layer.weight_density)
    return memo["densities"]


def _point_totals(i: int, arch: ArchBase, stacked: dict[str, np.ndarray],
                  sums: dict[str, np.ndarray], columns: dict[str, tuple[np.ndarray, np.ndarray]],
                  names: list[str], modes: list[list[str]], densities: np.ndarray) -> dict:
    """Point i's `RunResult.totals()` from the arrays of `simulate_totals`, keys in its order
    (the same rules as `RunResult.totals`, which `tests/test_batch.py` holds them to)."""
    has = stacked["has"][i]
    macs = stacked["macs_dense"][i]
    total_macs = macs.sum()
    tot: dict = {"layer": "TOTAL", "op": "", "arch": arch.name,
                 "layers_without_result": int(len(has) - has.sum()),
                 "covered_macs_fraction": float(macs[has].sum() / total_macs) if total_macs
                 else 1.0,
                 "layers_with_warnings": int(stacked["warned"][i].sum())}
    for c in BASE_COLUMNS:
        if c in SUM_COLUMNS:
            tot[c] = float(sums[c][i])
    for c in names:
        summed, total = columns[c]
        if summed[i] and c not in tot:
            tot[c] = float(total[i])
    weights = macs[has]
    wsum = weights.sum()
    for k, column in enumerate(("act_density", "weight_density")):
        tot[column] = float(np.dot(densities[has, k], weights) / wsum) if wsum else float("nan")
    kinds = {modes[j][i] for j in np.flatnonzero(has)}
    tot["engine_mode"] = kinds.pop() if len(kinds) == 1 else "mixed"
    tot["engine"] = arch.kind
    tot.update(total_ratios(tot))
    cycles = stacked["cycles"][i][has]
    tot["utilization"] = (float(np.dot(stacked["util"][i][has], cycles) / cycles.sum())
                          if cycles.sum() else 0.0)
    memory = stacked["memory"][i][has]
    tot["bound"] = "memory" if memory.size and memory.mean() > 0.5 else "compute"
    return tot
