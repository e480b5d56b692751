"""Tiling-aware memory traffic of a GEMM-shaped layer on a fixed-dataflow array: reads and
writes per operand between DRAM, the on-chip buffers and the PE array.

The array side is fixed by the dataflow (`accelsim.engines.systolic`): what each fold reads from
the buffers is SCALE-Sim's count (`array_traffic`). Above it, one on-chip level per operand (the
innermost level that holds it, `ArchBase.buffer_for`) keeps a *tile* of the layer's product, and
DRAM traffic follows from the tile sizes and the loop order over tiles. Two rules choose them:

* `tiling: search` (a mapper's view, the default): a small search over the order of the three
  tile loops (pixels p, filters f, window w) and tile sizes (powers of two times the array side
  along each mapped extent, and the whole extent). Tiles of all operands a level holds must fit
  together in the half of the level not being filled (buffers are double-buffered: one half
  feeds the array while the next tiles load into the other), so a shared buffer is allocated by
  the tiling, never split evenly. Per loop order, an operand is fetched once per iteration of
  every loop from the outermost down to the innermost loop it depends on (act: p, w; weight:
  f, w; out: p, f) that has more than one trip, as in Timeloop's reuse analysis; partial sums
  leave for DRAM (at `acc_bits`) and come back only when the reduction loop w runs outside the
  output's innermost loop. The array holds one fold, so a tiled streamed extent (WS: pixels,
  IS: filters, OS: window) re-loads the stationary operand per tile (OS: partial sums go
  through the buffer), unless a tile's stationary part is one fold and the streamed loop is
  innermost. The search keeps the order and sizes with the least DRAM energy plus re-load
  energy at the stationary operand's buffer; compute cycles are not changed by the tiling.
* `tiling: scalesim` (SCALE-Sim 3.0.0's fixed rules, for comparisons with it): column folds
  outermost, row folds inside, the whole streamed extent per fold; each operand gets its own
  buffer (a shared level split evenly) of which SCALE-Sim's read buffer keeps only the last
  half-buffer of fetched addresses (`read_buffer_estimate_bw.py`, active fraction 0.5): an
  operand re-read across column folds is fetched once if it fits that half, once per column
  fold otherwise, and an input larger than the half re-fetches the share of its re-reads that
  fall outside it (`_epoch_misses`); every partial sum the array writes goes on to DRAM and
  none is read back (SCALE-Sim's write buffer drains each OFMAP write), so WS and IS write
  `row_folds` x outputs. Agreement with SCALE-Sim: `tests/test_traffic.py`.

Activation tiles are counted as the input elements they touch: a pixel tile of whole output rows
touches `(rows - 1) * min(stride, kernel) + dilated kernel` input rows (halo rows are fetched
again by the next tile), a window tile is a share of the channels; padding is never fetched.
PE registers (`accelsim.arch.pe_storage`) widen the array the buffers see (`register_split`).
Zero-skipping arrays (`accelsim.engines.zero_skip`) run the same search through
`tiled_fetches`, with each compressed operand's tile at its stored bytes per element (values
and metadata, averaged over the layer's real bitmap) and their own buffer reads by the lanes.

Evaluation: the search costs only the candidates that fit, all six loop orders as rows of one
array, and is remembered by exactly the inputs it reads (`_search`: the product's `Geometry`,
dataflow, word sizes, capacities and prices, then the fold); `points_actions` gives the counts
of many arrays that differ only in rows and cols at once (a sweep's batch), searching all their
new folds as one array. Both give the per-point numbers exactly (`tests/test_traffic.py`).
"""

from __future__ import annotations

import itertools
import math
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache, partial
from typing import Any, Literal

import numpy as np

from accelsim.arch.energy import memory_level_price
from accelsim.arch.pe_storage import PeStorage, register_action
from accelsim.arch.schema import ArchBase, MemoryLevel, Operand
from accelsim.engines.counts import ceil_div
from accelsim.engines.shared_gemm_operand import GemmProblem
from accelsim.workload.layer import ConvShape, GemmShape, Layer

Tiling = Literal["search", "scalesim"]
Dataflow = Literal["os", "ws", "is"]

OPERANDS: tuple[Operand, ...] = ("act", "weight", "out")
SPACES = ("act", "weight", "psum", "out")
"""Data spaces of the access columns: outputs as partial sums and as final outputs."""
DOUBLE_BUFFER_SHARE = 0.5
"""Share of an on-chip level the tiles in use may take: the rest loads the next tiles."""
SCALESIM_ACTIVE_FRACTION = 0.5
"""SCALE-Sim 3.0.0's read-buffer active fraction (`single_layer_sim.py`, `active_buf_frac`)."""
LOOPS = ("p", "f", "w")
DEPENDS: dict[Operand, frozenset[str]] = {
    "act": frozenset({"p", "w"}), "weight": frozenset({"f", "w"}), "out": frozenset({"p", "f"})}
"""Which tile loops index each operand."""


@dataclass(frozen=True)
class Geometry:
    """One group's product and the input it touches (all counts in elements)."""

    pixels: int
    filters: int
    window: int
    repeat: int
    act_elements: int
    """Input elements the product reads (padding excluded; skipped by a stride > kernel)."""
    row_pixels: int
    """Output pixels per output row (F for a conv, 1 for a linear layer)."""
    image_pixels: int
    """Output pixels per image (E * F for a conv, the whole M for a linear layer)."""
    image_in_rows: int
    """Input rows an image's outputs touch (1 per row of M for a linear layer)."""
    row_stride: int
    col_stride: int
    channels: int
    """Input channels of one group (1 for a linear layer)."""
    kernel_rows: int
    """Input rows one output row reads (dilated kernel height; 1 for a linear layer)."""
    images: int

    def act_tile(self, pixel_tile: np.ndarray) -> np.ndarray:
        """Input elements a tile of `pixel_tile` pixels and the whole window touches."""
        per_row = self.act_elements / max(self.images * self.image_in_rows, 1)
        whole_images = pixel_tile / self.image_pixels
        out_rows = np.ceil(pixel_tile / self.row_pixels)
        step = min(self.row_stride, self.kernel_rows)  # a stride past the kernel skips rows
        in_rows = np.minimum(self.image_in_rows, (out_rows - 1) * step + self.kernel_rows)
        rows = np.where(pixel_tile >= self.image_pixels, whole_images * self.image_in_rows,
                        in_rows)
        return np.minimum(self.act_elements, rows * per_row)


def _touched(length: int, pad_before: int, stride: int, dilation: int, kernel: int,
             outputs: int) -> int:
    """Distinct unpadded positions along one axis that some output's window reads."""
    hit = np.zeros(length, dtype=bool)
    if dilation == 1:  # each window is one run of positions: mark the runs' starts and ends
        start = np.arange(outputs) * stride - pad_before
        end = np.minimum(start + kernel, length)
        start = np.maximum(start, 0)
        runs = start < end
        edges = np.zeros(length + 1, dtype=np.int64)
        np.add.at(edges, start[runs], 1)
        np.add.at(edges, end[runs], -1)
        return int(np.count_nonzero(np.cumsum(edges[:length])))
    for r in range(kernel):
        pos = np.arange(outputs) * stride + r * dilation - pad_before
        hit[pos[(pos >= 0) & (pos < length)]] = True
    return int(hit.sum())


@lru_cache(maxsize=4096)
def geometry(s: ConvShape | GemmShape, problem: GemmProblem) -> Geometry:
    """The `Geometry` of one group of a layer of shape `s` (`problem` is its `gemm_problem`),
    computed once per shape and problem."""
    if isinstance(s, ConvShape):
        top, _, left, _ = s.padding
        rows = _touched(s.H, top, s.stride[0], s.dilation[0], s.R, s.E)
        cols = _touched(s.W, left, s.stride[1], s.dilation[1], s.S, s.F)
        return Geometry(
            pixels=problem.pixels, filters=problem.filters, window=problem.window,
            repeat=problem.repeat, act_elements=s.N * rows * cols * (s.C // s.groups),
            row_pixels=s.F, image_pixels=s.E * s.F, image_in_rows=rows,
            row_stride=s.stride[0], col_stride=s.stride[1], channels=s.C // s.groups,
            kernel_rows=s.dilation[0] * (s.R - 1) + 1, images=s.N)
    return Geometry(
        pixels=problem.pixels, filters=problem.filters, window=problem.window,
        repeat=problem.repeat, act_elements=problem.pixels * problem.window, row_pixels=1,
        image_pixels=problem.pixels, image_in_rows=problem.pixels, row_stride=1, col_stride=1,
        channels=1, kernel_rows=1, images=1)


@dataclass(frozen=True)
class ArrayTraffic:
    """Elements moved between the buffers and the array (SCALE-Sim's SRAM counts), of one
    group's product or, from `systolic.sram_traffic`, of all of them; `*_passes` is how often
    each operand is re-streamed."""

    act_reads: int
    weight_reads: int
    out_writes: int
    out_reads: int
    act_passes: int
    weight_passes: int
    psum_passes: int


def operand_dims(p: GemmProblem, dataflow: Dataflow) -> tuple[int, int, int]:
    """(Sr, Sc, T): extents mapped on rows, on columns, and streamed in time."""
    if dataflow == "os":
        return p.pixels, p.filters, p.window
    if dataflow == "ws":
        return p.window, p.filters, p.pixels
    return p.window, p.pixels, p.filters


def array_traffic(p: GemmProblem, rows: int | np.ndarray, cols: int | np.ndarray,
                  dataflow: Dataflow) -> ArrayTraffic:
    """Buffer reads/writes per operand of one of `p`'s `repeat` products (SCALE-Sim's SRAM
    counts; with integer arrays of `rows` and `cols`, element-wise over them)."""
    sr, sc, t = operand_dims(p, dataflow)
    row_folds, col_folds = ceil_div(sr, rows), ceil_div(sc, cols)
    if dataflow == "os":
        return ArrayTraffic(col_folds * sr * t, row_folds * sc * t, sr * sc, 0,
                            col_folds, row_folds, 1)
    if dataflow == "ws":
        return ArrayTraffic(col_folds * sr * t, sr * sc, row_folds * sc * t,
                            (row_folds - 1) * sc * t, col_folds, 1, row_folds)
    return ArrayTraffic(sr * sc, col_folds * sr * t, row_folds * sc * t,
                        (row_folds - 1) * sc * t, 1, col_folds, row_folds)


@dataclass(frozen=True)
class Mapping:
    """The tiling chosen for the DRAM-to-buffer level (one group's product)."""

    order: tuple[str, ...]
    """Tile loops outermost first ('p' pixels, 'f' filters, 'w' window)."""
    pixel_tile: int
    filter_tile: int
    window_tile: int
    fits: bool
    """False when no tile fits the buffers (the smallest one is taken and overflows)."""
    array_reloads: int = 1
    """How often the array loads each stationary value: the streamed extent's tile count,
    unless a tile's stationary part is one fold and the streamed loop is innermost."""


@dataclass(frozen=True)
class Traffic:
    """Reads and writes per data space at DRAM and at its buffer, whole layer (all groups):
    `reads[(where, space)]` in elements and `read_bytes[(where, space)]` in bytes (the same
    for writes), `where` being 'dram' or 'buffer', `space` one of `SPACES`. Outputs are two
    spaces: `psum`, the partial sums the array writes and reads back (at `acc_bits`, including
    the spills to DRAM), and `out`, the final outputs that leave for DRAM (at `act_bits`), so
    that in every column elements x word size = bytes. Buffer fills from DRAM are buffer writes,
    drains to DRAM buffer reads. An operand with no buffer streams between DRAM and the array.
    `pe[(op, 'reads')]`: accesses of the PE registers, summed over PEs."""

    array: ArrayTraffic
    mapping: Mapping | None
    reads: dict[tuple[str, str], float]
    writes: dict[tuple[str, str], float]
    read_bytes: dict[tuple[str, str], float]
    write_bytes: dict[tuple[str, str], float]
    psum_dram_reads: float
    psum_dram_writes: float
    pe: dict[tuple[Operand, str], float]


def _candidates(extent: int, quantum: int) -> np.ndarray:
    """Tile sizes along one extent: the quantum times powers of two, and the whole extent."""
    sizes = {extent}
    size = max(1, quantum)
    while size < extent:
        sizes.add(size)
        size *= 2
    if quantum > 1:
        sizes.add(1)
    return np.array(sorted(sizes), dtype=float)


STREAMED = {"os": "w", "ws": "p", "is": "f"}
"""The tile loop over each dataflow's streamed extent."""


def _fetches_by_order(orders: list[tuple[str, ...]], trips: dict[str, np.ndarray],
                      op: Operand) -> np.ndarray:
    """How often a tile of `op` is brought in, per loop order (row k: `orders[k]`): the
    product of the trips of every loop from the outermost down to the innermost loop that
    indexes `op` and has more than one trip (a loop of one trip never changes the tile),
    multiplied innermost first."""
    fetches = np.ones((len(orders), len(trips["p"])))
    live = np.zeros(fetches.shape, dtype=bool)
    for position in reversed(range(len(LOOPS))):
        at = np.array([trips[order[position]] for order in orders])
        indexes = np.array([[order[position] in DEPENDS[op]] for order in orders])
        live |= indexes & (at > 1)
        fetches = np.where(live, fetches * at, fetches)
    return fetches


Found = tuple[Mapping, float, float, float, float, float]
"""A search's mapping and its (act, weight, out-final, psum-write, psum-read) DRAM elements."""


@lru_cache(maxsize=1024)
def _searches(geo: Geometry, dataflow: Dataflow, bytes_: tuple[float, float, float, float],
              capacity: tuple[tuple[float, tuple[bool, bool, bool]], ...],
              prices: tuple[float, float]) -> dict[tuple[int, int], Found]:
    """The searches done for one product on one design, by the array's (rows, cols): every
    input of `_find` but the fold, so that the points of a sweep that share them look a fold
    up in one dict."""
    return {}


def _search(geo: Geometry, dataflow: Dataflow, fold: tuple[int, int],
            bytes_: tuple[float, float, float, float],
            capacity: tuple[tuple[float, tuple[bool, bool, bool]], ...],
            prices: tuple[float, float]) -> Found:
    """`_find`, remembered by exactly the inputs it reads."""
    done = _searches(geo, dataflow, bytes_, capacity, prices)
    found = done.get(fold)
    if found is None:
        found = done[fold] = _find(geo, dataflow, fold, bytes_, capacity, prices)
    return found


def _find(geo: Geometry, dataflow: Dataflow, fold: tuple[int, int],
          bytes_: tuple[float, float, float, float],
          capacity: tuple[tuple[float, tuple[bool, bool, bool]], ...],
          prices: tuple[float, float]) -> Found:
    """Best mapping and its (act, weight, out-final, psum-write, psum-read) DRAM elements.

    `fold`: the array's rows and cols; `prices`: pJ per byte at DRAM and at the buffer of the
    stationary operand. Cost: DRAM energy plus the buffer energy of re-loading the array when
    the streamed extent is tiled (`Mapping.array_reloads`)."""
    return _find_many(geo, dataflow, [fold], bytes_, capacity, prices)[0]


def _find_many(geo: Geometry, dataflow: Dataflow, folds: list[tuple[int, int]],
               bytes_: tuple[float, float, float, float],
               capacity: tuple[tuple[float, tuple[bool, bool, bool]], ...],
               prices: tuple[float, float]) -> list[Found]:
    """`_find` for each of `folds` (the arrays' rows and cols): the candidates of every fold
    evaluated as one array, each fold's best taken from its own segment of it with `_find`'s
    tie-break (within a loop order the first candidate of least cost, across orders the first
    order that is strictly cheaper). Only candidates that fit are costed (the others cost
    infinity); a fold where none fits takes `_search_fallback`."""
    act_b, w_b, out_b, acc_b = bytes_
    grids = []
    for rows, cols in folds:
        quanta = {"os": (rows, cols, 1), "ws": (1, cols, rows), "is": (cols, 1, rows)}[dataflow]
        grids.append([g.ravel() for g in np.meshgrid(_candidates(geo.pixels, quanta[0]),
                                                     _candidates(geo.filters, quanta[1]),
                                                     _candidates(geo.window, quanta[2]),
                                                     indexing="ij")])
    sizes = np.array([len(g[0]) for g in grids])
    pt, ft, wt = (np.concatenate([g[k] for g in grids]) for k in range(3))
    wshare = wt / geo.window
    act_tile = geo.act_tile(pt) * wshare
    tiles = (act_tile * act_b, wt * ft * w_b, pt * ft * acc_b)
    fits = np.ones(pt.shape, dtype=bool)
    for cap, held in capacity:
        used = sum(t for t, h in zip(tiles, held, strict=True) if h)
        fits &= used <= cap
    segment = np.repeat(np.arange(len(folds)), sizes)
    fitting = np.bincount(segment[fits], minlength=len(folds))
    found: list[Found | None] = [None] * len(folds)
    start = 0
    for k, size in enumerate(sizes.tolist()):
        if not fitting[k]:  # nothing fits: the smallest tiles
            i = start + int(np.argmin(pt[start:start + size] * ft[start:start + size]
                                      * wt[start:start + size]))
            found[k] = _search_fallback(geo, dataflow, float(pt[i]), float(ft[i]),
                                        float(wt[i]))
        start += size
    live = np.flatnonzero(fitting)
    if len(live):
        fold_rows = np.array([f[0] for f in folds])[segment[fits]]
        fold_cols = np.array([f[1] for f in folds])[segment[fits]]
        best = _best_fitting(geo, dataflow, pt[fits], ft[fits], wt[fits], fold_rows, fold_cols,
                             fitting[live], bytes_, prices)
        for k, one in zip(live.tolist(), best, strict=True):
            found[k] = one
    return found  # type: ignore[return-value]


def _best_fitting(geo: Geometry, dataflow: Dataflow, pt: np.ndarray, ft: np.ndarray,
                  wt: np.ndarray, fold_rows: np.ndarray, fold_cols: np.ndarray,
                  sizes: np.ndarray, bytes_: tuple[float, float, float, float],
                  prices: tuple[float, float],
                  orders: list[tuple[str, ...]] | None = None) -> list[Found]:
    """The best of fitting candidates (tile sizes `pt`, `ft`, `wt` on arrays of `fold_rows` x
    `fold_cols`) in consecutive segments of `sizes` candidates, one segment per fold, over
    `orders` (every loop order when None)."""
    act_b, w_b, out_b, acc_b = bytes_
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    segment = np.repeat(np.arange(len(sizes)), sizes)
    trips = {"p": np.ceil(geo.pixels / pt), "f": np.ceil(geo.filters / ft),
             "w": np.ceil(geo.window / wt)}
    last = geo.pixels - (trips["p"] - 1) * pt
    act_pass = np.maximum(geo.act_elements,
                          (trips["p"] - 1) * geo.act_tile(pt) + geo.act_tile(last))
    weights, outs = geo.window * geo.filters, geo.pixels * geo.filters
    # the stationary part of a buffer tile, and what one more load of it into the array costs
    stationary = {"os": (pt, ft, 2 * outs * acc_b), "ws": (wt, ft, weights * w_b),
                  "is": (wt, pt, geo.pixels * geo.window * act_b)}[dataflow]
    one_fold = (stationary[0] <= fold_rows) & (stationary[1] <= fold_cols)
    streamed = STREAMED[dataflow]
    tiles_walked = 1e-3 * trips["p"] * trips["f"] * trips["w"]
    if orders is None:
        orders = list(itertools.permutations(LOOPS))
    # every loop order at once: row k of each array is order k
    fetches = {op: _fetches_by_order(orders, trips, op) for op in OPERANDS}
    act = act_pass * fetches["act"] / (trips["p"] * trips["w"])
    weight = weights * fetches["weight"] / (trips["f"] * trips["w"])
    visits = fetches["out"] / (trips["p"] * trips["f"])
    psum = (visits - 1) * outs
    # the array holds one fold: a tiled streamed extent re-loads the stationary operand,
    # unless the tile is one fold and the streamed loop is innermost
    innermost = np.array([[order[-1] == streamed] for order in orders])
    reloads = np.where(one_fold & innermost, 1.0, trips[streamed])
    dram = act * act_b + weight * w_b + outs * out_b + 2 * psum * acc_b
    cost = dram * prices[0] + (reloads - 1) * stationary[2] * prices[1]
    # equal cost: the fewest tiles (a share of a byte per tile iteration)
    cost = cost + tiles_walked
    least = np.minimum.reduceat(cost, starts, axis=1)
    at = np.minimum.reduceat(np.where(cost == least[:, segment], np.arange(len(pt)), len(pt)),
                             starts, axis=1)
    best_cost = np.full(len(sizes), np.inf)
    best_order = np.zeros(len(sizes), dtype=int)
    for k in range(len(orders)):
        better = least[k] < best_cost
        best_cost = np.where(better, least[k], best_cost)
        best_order = np.where(better, k, best_order)
    best_at = at[best_order, np.arange(len(sizes))]
    best = np.stack([a[best_order, best_at] for a in (act, weight, psum, reloads)], axis=1)
    found: list[Found] = []
    for k in range(len(sizes)):
        i = int(best_at[k])
        act_k, weight_k, psum_k, reloads_k = best[k]
        mapping = Mapping(orders[best_order[k]], int(pt[i]), int(ft[i]), int(wt[i]), True,
                          int(reloads_k))
        found.append((mapping, float(act_k), float(weight_k), float(outs), float(psum_k),
                      float(psum_k)))
    return found


def _search_fallback(geo: Geometry, dataflow: Dataflow, pt: float, ft: float, wt: float
                     ) -> tuple[Mapping, float, float, float, float, float]:
    """Traffic of the smallest tiles in loop order p, f, w when even they overflow: every
    operand re-fetched per tile of the other loops, the array re-loaded per streamed tile."""
    n_p, n_f = math.ceil(geo.pixels / pt), math.ceil(geo.filters / ft)
    last = geo.pixels - (n_p - 1) * pt
    act_pass = max(geo.act_elements, float(((n_p - 1) * geo.act_tile(np.array([pt]))
                                            + geo.act_tile(np.array([last])))[0]))
    act = act_pass * n_f
    weight = geo.window * geo.filters * n_p
    outs = geo.pixels * geo.filters
    extent = {"p": (geo.pixels, pt), "f": (geo.filters, ft), "w": (geo.window, wt)}
    total, tile = extent[STREAMED[dataflow]]
    return (Mapping(LOOPS, int(pt), int(ft), int(wt), False, math.ceil(total / tile)),
            float(act), float(weight), float(outs), 0.0, 0.0)


def _epoch_misses(share: float, reads_per_element: float, x: float) -> float:
    """Elements SCALE-Sim fetches for `share` input elements, each read `reads_per_element`
    times, when the input exceeds the half-buffer its read buffer keeps.

    That buffer keeps an address only while fewer than `half` newer ones were fetched
    (`read_buffer_estimate_bw.py`). Between two reads of an element the array fetches
    x * half / q elements (x: the requests in between as a share of `half`, at most 1; q: the
    share of requests that miss), so a re-read hits with probability 1 - x q; the first read
    always misses. Over a pass, M = share + (K - 1) share x M / (K share) gives
    M = share / (1 - x + x / K)."""
    k = max(1.0, reads_per_element)
    return share / (1.0 - x + x / k)


def _requests_share(requests: float, half: float) -> float:
    """`requests` fetched between two reads of an element as a share of the `half` elements
    SCALE-Sim's read buffer keeps, at most 1 (an empty buffer keeps nothing: 1)."""
    return min(1.0, requests / half) if half > 0 else 1.0


@lru_cache(maxsize=4096)
def _scalesim(geo: Geometry, out_writes: int, rows: int, cols: int, dataflow: Dataflow,
              half: tuple[float, float]) -> tuple[float, float, float, float]:
    """SCALE-Sim's (act, weight, out-final, psum-write) DRAM elements of one group;
    `out_writes`: the partial sums the array writes (`ArrayTraffic.out_writes`), `half`: the
    act and weight elements SCALE-Sim's read buffers keep (`_scalesim_half`)."""
    p = GemmProblem(geo.pixels, geo.filters, geo.window)
    sr, sc, _ = operand_dims(p, dataflow)
    row_folds, col_folds = ceil_div(sr, rows), ceil_div(sc, cols)
    act_u, weight_u = float(geo.act_elements), float(geo.window * geo.filters)
    outs = float(geo.pixels * geo.filters)
    psum = float(out_writes) - outs
    h = half[0]
    reuse = geo.pixels * geo.window / max(act_u, 1.0)
    gap = geo.col_stride * geo.channels
    if act_u <= h:
        act = act_u
    elif dataflow == "ws":
        # a fold streams every pixel past `rows` window positions: an element is fetched once
        # per row fold that holds one of its positions, `max(rows, C) * pixels` requests apart
        per_fold = max(1.0, rows / geo.channels)
        k = min(row_folds, max(1.0, reuse / per_fold))
        x = _requests_share(geo.pixels * max(rows, geo.channels), h)
        act = col_folds * _epoch_misses(act_u, k, x)
    else:
        # OS (IS) folds hold `rows` (`cols`) pixels; each re-reads an element `gap` cycles later
        side = rows if dataflow == "os" else cols
        blocks = [side] * (geo.pixels // side) + ([geo.pixels % side] if geo.pixels % side else [])
        passes = col_folds if dataflow == "os" else 1
        act = passes * sum(_epoch_misses(act_u * b / geo.pixels, reuse,
                                         _requests_share(b * gap, h)) for b in blocks)
    if dataflow == "os":
        tile = min(cols, geo.filters) * geo.window
        weight = weight_u if min(weight_u, tile) <= half[1] else row_folds * weight_u
        return act, weight, outs, 0.0
    if dataflow == "ws":
        return act, weight_u, outs, psum
    weight = weight_u if weight_u <= half[1] else col_folds * weight_u
    return act, weight, outs, psum


def _scalesim_half(level: MemoryLevel | None, elem_bytes: float) -> float:
    """Elements of an operand SCALE-Sim's read buffer keeps: the active fraction of the
    operand's share of its level (0 without a level)."""
    if level is None:
        return 0.0
    return (level.size_bytes or 0) * SCALESIM_ACTIVE_FRACTION / len(level.holds) / elem_bytes


STATIONARY: dict[str, Operand] = {"os": "out", "ws": "weight", "is": "act"}
"""The operand each dataflow keeps in the PEs."""


def _powers_of_two(limit: int) -> list[int]:
    return [1 << i for i in range(max(1, limit).bit_length()) if 1 << i <= limit]


@lru_cache(maxsize=4096)
def register_split(p: GemmProblem, rows: int, cols: int, dataflow: Dataflow,
                   stationary_words: int, out_words: int,
                   bytes_: tuple[float, float, float]) -> tuple[int, int]:
    """How a PE uses its registers: (a, b) stationary values per PE along the array's row and
    column sides, so that the array reads its buffers as a (rows * a) x (cols * b) array would.

    OS: a pixels x b filters accumulate in the output register (a * b <= its words). WS (IS):
    the weight (input) register holds a window positions x b filters (pixels), a * b <= its
    words; the PE sums its a products into one partial sum before passing it on, and keeps b
    partial sums in flight (b <= the output register's words). Of the powers of two allowed,
    the split reading and writing the fewest buffer bytes (act, weight, partial-sum bytes per
    element in `bytes_`)."""
    limit = out_words if dataflow == "os" else stationary_words
    best: tuple[float, int, int] = (math.inf, 1, 1)
    for a in _powers_of_two(limit):
        for b in _powers_of_two(limit // a):
            if dataflow != "os" and b > out_words:
                continue
            t = array_traffic(p, rows * a, cols * b, dataflow)
            cost = (t.act_reads * bytes_[0] + t.weight_reads * bytes_[1]
                    + (t.out_writes + t.out_reads) * bytes_[2])
            if cost < best[0]:
                best = (cost, a, b)
    return best[1], best[2]


@dataclass(frozen=True)
class Context:
    """What the traffic model reads from an arch besides the array's sides and dataflow: the
    same for every point of a sweep that varies only those (`context`)."""

    buffers: dict[Operand, MemoryLevel | None]
    """The innermost on-chip level of each operand (None: it streams from DRAM)."""
    bytes_: tuple[float, float, float]
    """Bytes per act, weight and partial-sum (accumulator) element."""
    capacity: tuple[tuple[float, tuple[bool, bool, bool]], ...]
    """Per on-chip level: bytes the tiles in use may take, and which of `OPERANDS` it holds."""
    search_prices: dict[str, tuple[float, float]]
    """Per dataflow: pJ per byte read at DRAM and at the stationary operand's buffer."""
    half: tuple[float, float]
    """Act and weight elements SCALE-Sim's read buffers keep (`_scalesim_half`)."""
    slots: tuple[tuple[Any, ...], ...]
    """The (where, space) keys of `Traffic` that a level counts, in column order, each with its
    level's name, its action names (read, write bytes), its column names (reads, writes, read
    bytes, write bytes) and its level's read and write bandwidth (bytes per cycle)."""
    pe_actions: dict[tuple[Operand, str], str]
    """Action name of each priced PE register count (`Traffic.pe` key): the registers the arch
    declares under `pe:` (`accelsim.arch.pe_storage`)."""


def _context(arch: ArchBase) -> Context:
    p = arch.precision
    act_b, w_b, acc_b = p.act_bits / 8, p.weight_bits / 8, p.acc_bits / 8
    buffers: dict[Operand, MemoryLevel | None] = {op: arch.buffer_for(op) for op in OPERANDS}
    levels = sorted({lv.name: lv for lv in buffers.values() if lv is not None}.values(),
                    key=lambda lv: lv.name)
    capacity = tuple(((lv.size_bytes or 0) * DOUBLE_BUFFER_SHARE,
                      tuple(buffers[op] is lv for op in OPERANDS)) for lv in levels)
    dram = arch.dram()
    dram_pj = memory_level_price(arch, dram).read_pj_per_byte if dram else 1.0
    search_prices = {}
    for dataflow, op in STATIONARY.items():
        held = buffers[op]
        search_prices[dataflow] = (dram_pj, memory_level_price(arch, held).read_pj_per_byte
                                   if held else 0.0)
    half = (_scalesim_half(buffers["act"], act_b), _scalesim_half(buffers["weight"], w_b))
    where: dict[tuple[str, str], MemoryLevel | None] = {}
    for space in SPACES:
        where["dram", space] = dram
        where["buffer", space] = buffers["out" if space == "psum" else space]  # type: ignore[index]
    counted = {("dram", "act"), ("dram", "weight"), ("dram", "psum"), ("dram", "out")}
    counted |= {("buffer", op) for op in ("act", "weight") if buffers[op] is not None}
    if buffers["out"] is not None:
        counted |= {("buffer", "psum"), ("buffer", "out")}
    slots = tuple((key, level.name, *_key_names(level.name, key[1]),
                   level.read_bandwidth_bytes_per_cycle, level.write_bandwidth)
                  for key in sorted(counted) if (level := where[key]) is not None)
    pe = getattr(arch, "pe", None)
    declared = pe.declared() if isinstance(pe, PeStorage) else ()
    pe_actions = {(op, verb): register_action(op, verb) for op in declared
                  for verb in ("reads", "writes")}
    return Context(buffers=buffers, bytes_=(act_b, w_b, acc_b), capacity=capacity,
                   search_prices=search_prices, half=half, slots=slots,
                   pe_actions=pe_actions)


@lru_cache(maxsize=1024)
def _key_names(level: str, space: str) -> tuple[str, ...]:
    """A level's action names (read, write bytes) and its columns for one data space (reads,
    writes, read bytes, write bytes), as `Context.names` lists them."""
    return (f"{level}.read_bytes", f"{level}.write_bytes",
            *(f"{level}_{space}_{c}" for c in ("reads", "writes", "read_bytes", "write_bytes")))


_CONTEXTS: dict[int, tuple[weakref.ref, Context]] = {}
MAX_CONTEXTS = 4096
"""Most archs whose `Context` is kept."""


def context(arch: ArchBase) -> Context:
    """`arch`'s `Context`, made once per arch object (archs are immutable) and kept while it
    lives."""
    return per_arch(_CONTEXTS, arch, _context, MAX_CONTEXTS)


def per_arch(cache: dict[int, tuple[weakref.ref, Any]], arch: Any, make: Callable[[Any], Any],
             most: int) -> Any:
    """`make(arch)`, kept in `cache` by arch object (descriptions are frozen) while the arch
    lives, for at most the `most` archs last made."""
    key = id(arch)
    hit = cache.get(key)
    if hit is not None and hit[0]() is arch:
        return hit[1]
    value = make(arch)
    cache[key] = (weakref.ref(arch, partial(_forget, cache, key)), value)
    while len(cache) > most:
        cache.pop(next(iter(cache)))
    return value


def _forget(cache: dict[int, tuple[weakref.ref, Any]], key: int, ref: weakref.ref) -> None:
    """Drop the entry kept under `key` if it is still the one of the arch `ref` was to
    (`cache` is bound when the entry is made, so this runs even while the module is torn
    down)."""
    hit = cache.get(key)
    if hit is not None and hit[0] is ref:
        del cache[key]


def clear_caches() -> None:
    """Forget every search, SCALE-Sim count, register split, geometry and arch `Context` made
    so far (for timing the model from cold)."""
    geometry.cache_clear()
    _searches.cache_clear()
    _scalesim.cache_clear()
    register_split.cache_clear()
    _CONTEXTS.clear()


def layer_geometry(layer: Layer, problem: GemmProblem) -> Geometry:
    """`geometry(layer.shape, problem)`."""
    return geometry(layer.shape, problem)


def reloaded(arr: ArrayTraffic, dataflow: Dataflow, n: int | np.ndarray,
             outputs: float | np.ndarray) -> ArrayTraffic:
    """`arr` with the stationary operand loaded into the array `n` times
    (`Mapping.array_reloads`): WS re-reads the weights, IS the inputs, and OS sends the
    partial sums of its `outputs` output elements through the buffer and back n - 1 more
    times. `arr`, `n` and `outputs` may be numbers (one point) or arrays over points."""
    if np.ndim(n) == 0 and n <= 1:
        return arr
    if dataflow == "ws":
        return replace(arr, weight_reads=arr.weight_reads * n)
    if dataflow == "is":
        return replace(arr, act_reads=arr.act_reads * n)
    return replace(arr, out_writes=arr.out_writes + (n - 1) * outputs,
                   out_reads=arr.out_reads + (n - 1) * outputs)


def tiled_fetches(layer: Layer, arch: ArchBase, problem: GemmProblem, dataflow: Dataflow,
                  fold: tuple[int, int], tile_bytes: tuple[float, float]) -> Found:
    """The `tiling: search` mapping of `layer` (all groups) and its DRAM elements (act, weight,
    out-final, psum-write, psum-read), for an array that holds its act and weight tiles at
    `tile_bytes` bytes per element (a compressed operand at its stored size, metadata
    included; partial sums at `acc_bits`, final outputs at `act_bits`). `fold`: the rows and
    cols of the array the search sees. Remembered like every search (`_search`)."""
    geo = layer_geometry(layer, problem)
    ctx = context(arch)
    act_b, _, acc_b = ctx.bytes_
    mapping, *counts = _search(geo, dataflow, fold, (*tile_bytes, act_b, acc_b), ctx.capacity,
                               ctx.search_prices[dataflow])
    r = geo.repeat
    return (mapping, *(float(c) * r for c in counts))  # type: ignore[return-value]


def fetches_on(layer: Layer, problem: GemmProblem, dataflow: Dataflow, fold: tuple[int, int],
               mapping: Mapping) -> tuple[float, float, float, float, float]:
    """DRAM elements (act, weight, out-final, psum-write, psum-read) of `layer` (all groups)
    on a given fitting `mapping` (its tile sizes and loop order): how another design's
    traffic compares on the same tiling. Element counts do not depend on word sizes."""
    geo = layer_geometry(layer, problem)
    one = (np.array([float(mapping.pixel_tile)]), np.array([float(mapping.filter_tile)]),
           np.array([float(mapping.window_tile)]))
    found = _best_fitting(geo, dataflow, *one, np.array([fold[0]]), np.array([fold[1]]),
                          np.array([1]), (1.0, 1.0, 1.0, 1.0), (1.0, 0.0),
                          orders=[mapping.order])[0]
    return tuple(float(c) * geo.repeat for c in found[1:])  # type: ignore[return-value]


def layer_traffic(layer: Layer, arch: ArchBase, problem: GemmProblem, rows: int, cols: int,
                  dataflow: Dataflow, tiling: Tiling = "search",
                  registers: tuple[int, int] = (1, 1)) -> Traffic:
    """Per-operand traffic of `layer` (all groups) at DRAM, its buffers and the PEs.
    `registers`: words of the stationary operand's and of the output's PE register
    (`accelsim.arch.pe_storage`); more than one lets the array read its buffers as a larger
    array would (`register_split`)."""
    geo = layer_geometry(layer, problem)
    ctx = context(arch)
    act_b, w_b, acc_b = ctx.bytes_
    a, b = register_split(problem, rows, cols, dataflow, registers[0], registers[1],
                          ctx.bytes_)
    arr = array_traffic(problem, rows * a, cols * b, dataflow)
    buffers = ctx.buffers
    mapping: Mapping | None = None
    if tiling == "scalesim":
        act, weight, outs, psum_w = _scalesim(geo, arr.out_writes, rows, cols, dataflow,
                                              ctx.half)
        psum_r = 0.0
    else:
        mapping, act, weight, outs, psum_w, psum_r = _search(
            geo, dataflow, (rows * a, cols * b), (act_b, w_b, act_b, acc_b), ctx.capacity,
            ctx.search_prices[dataflow])
        arr = reloaded(arr, dataflow, mapping.array_reloads, arr.out_writes)
    array_reads = {"act": arr.act_reads, "weight": arr.weight_reads, "out": arr.out_reads}
    reads, writes, rbytes, wbytes, pe, psum_w, psum_r = _space_counts(
        buffers, ctx.bytes_, {"act": act, "weight": weight}, array_reads, arr.out_writes, outs,
        psum_w, psum_r, geo.repeat, float(layer.macs), dataflow, float)
    r = geo.repeat
    return Traffic(array=arr, mapping=mapping, reads=reads, writes=writes, read_bytes=rbytes,
                   write_bytes=wbytes, psum_dram_reads=psum_r * r, psum_dram_writes=psum_w * r,
                   pe=pe)


def _space_counts(buffers: dict[Operand, MemoryLevel | None], bytes_: tuple[float, float, float],
                  fetched: dict[str, Any], array_reads: dict[str, Any], out_writes: Any,
                  outs: Any, psum_w: Any, psum_r: Any, repeat: int, macs: float,
                  dataflow: Dataflow, number: Callable[[Any], Any]) -> tuple:
    """(reads, writes, read bytes, write bytes per ('dram' | 'buffer', space), PE register
    accesses per (operand, verb), DRAM psum writes and reads per group) of one point, with
    `number` = float, or of arrays of points, with `number` making float arrays: DRAM fills
    `fetched` and the array's buffer reads `array_reads` of one group, times `repeat`; an
    operand without a buffer streams from DRAM, partial sums without one spill there."""
    act_b, w_b, acc_b = bytes_
    as_number = {op: number(v) for op, v in array_reads.items()}
    fetched = dict(fetched)
    for op in ("act", "weight"):
        if buffers[op] is None:
            fetched[op] = as_number[op]
    if buffers["out"] is None:
        psum_w, psum_r = number(out_writes) - outs, as_number["out"]
    r = repeat
    reads: dict[tuple[str, str], Any] = {}
    writes: dict[tuple[str, str], Any] = {}
    rbytes: dict[tuple[str, str], Any] = {}
    wbytes: dict[tuple[str, str], Any] = {}
    for op, size in (("act", act_b), ("weight", w_b)):
        reads["dram", op] = fetched[op] * r
        rbytes["dram", op] = fetched[op] * r * size
        if buffers[op] is not None:
            writes["buffer", op] = fetched[op] * r
            wbytes["buffer", op] = fetched[op] * r * size
            reads["buffer", op] = as_number[op] * r
            rbytes["buffer", op] = as_number[op] * r * size
    counts = {("dram", "psum"): (psum_r, psum_w, acc_b), ("dram", "out"): (0.0, outs, act_b)}
    if buffers["out"] is not None:
        counts["buffer", "psum"] = (array_reads["out"] + psum_w, out_writes + psum_r, acc_b)
        counts["buffer", "out"] = (outs, 0.0, act_b)
    for key, (n_read, n_write, size) in counts.items():
        reads[key], writes[key] = n_read * r, n_write * r
        rbytes[key], wbytes[key] = reads[key] * size, writes[key] * size
    stationary = STATIONARY[dataflow]
    pe: dict[tuple[Operand, str], Any] = {}
    for op in OPERANDS:
        pe[op, "reads"] = macs
        pe[op, "writes"] = as_number[op] * r if op == stationary and op != "out" else macs
    return reads, writes, rbytes, wbytes, pe, psum_w, psum_r


def level_actions(arch: ArchBase, t: Traffic
                  ) -> tuple[dict[str, float], dict[str, float], dict[str, object]]:
    """(actions: bytes per `<level>.read_bytes` / `.write_bytes`, cycles each level needs at
    its bandwidth, result columns `<level>_<space>_reads`, `_writes` (elements),
    `_read_bytes`, `_write_bytes` (bytes, `SPACES`; priced by `space_energy_pj`), the PE register
    accesses `pe_<operand>_reads`, `_writes`, also actions `pe_registers.<operand>_reads`,
    `_writes` for the registers the arch declares). Without a DRAM level nothing is counted
    there."""
    return counts_actions(arch, t.reads, t.writes, t.read_bytes, t.write_bytes, t.pe, t.mapping)


def counts_actions(arch: ArchBase, reads: dict[tuple[str, str], float],
                   writes: dict[tuple[str, str], float],
                   read_bytes: dict[tuple[str, str], float],
                   write_bytes: dict[tuple[str, str], float],
                   pe: dict[tuple[Operand, str], float], mapping: Mapping | None
                   ) -> tuple[dict[str, float], dict[str, float], dict[str, object]]:
    """`level_actions` of counts given as `Traffic`'s dicts (elements and bytes per
    ('dram' | 'buffer', space), PE register accesses per (operand, 'reads' | 'writes')), for
    engines that count the array side themselves (`accelsim.engines.zero_skip`)."""
    return _level_actions(context(arch), reads, writes, read_bytes, write_bytes, pe,
                          None if mapping is None else _mapping_columns(mapping))


def space_energy_pj(columns: dict[str, Any], table: dict[str, float],
                    levels: Sequence[str]) -> dict[str, Any]:
    """`energy_<level>_<space>_pj`: what each data space's traffic at each level costs (pJ),
    its `<level>_<space>_read_bytes` and `_write_bytes` columns at the level's pJ per byte read
    and written in `table` (`accelsim.arch.energy.action_energy_pj`: `<level>.read_bytes`,
    `.write_bytes`), for the `levels` named. Byte columns may be numbers (one point) or arrays
    over points, and prices numbers or arrays alike; a level without both prices is left out.
    Summed over the spaces they are the level's `energy_<level>_pj`."""
    out: dict[str, Any] = {}
    for level in levels:
        read_pj, write_pj = table.get(f"{level}.read_bytes"), table.get(f"{level}.write_bytes")
        if read_pj is None or write_pj is None:
            continue
        for space in SPACES:
            read_bytes = columns.get(f"{level}_{space}_read_bytes")
            write_bytes = columns.get(f"{level}_{space}_write_bytes")
            if read_bytes is not None and write_bytes is not None:
                out[f"energy_{level}_{space}_pj"] = read_bytes * read_pj + write_bytes * write_pj
    return out


PE_COLUMNS = {(op, verb): f"pe_{op}_{verb}" for op in OPERANDS for verb in ("reads", "writes")}
"""Result column of each PE register count (`Traffic.pe`)."""


def _mapping_columns(m: Mapping) -> dict[str, object]:
    return {"tile_loop_order": "".join(m.order), "tile_pixels": m.pixel_tile,
            "tile_filters": m.filter_tile, "tile_window": m.window_tile,
            "tile_fits": m.fits, "tile_array_reloads": m.array_reloads}


def _level_actions(ctx: Context, reads: dict, writes: dict, read_bytes: dict,
                   write_bytes: dict, pe: dict, mapping: dict[str, object] | None
                   ) -> tuple[dict, dict, dict[str, object]]:
    """`level_actions` of counts that are numbers (one point) or arrays (many points)."""
    actions: dict = {}
    level_cycles: dict = {}
    columns: dict[str, object] = {}
    for key, level, read_name, write_name, c_reads, c_writes, c_rb, c_wb, read_bw, write_bw in (
            ctx.slots):
        rb, wb = read_bytes.get(key, 0.0), write_bytes.get(key, 0.0)
        actions[read_name] = actions.get(read_name, 0.0) + rb
        actions[write_name] = actions.get(write_name, 0.0) + wb
        level_cycles[level] = level_cycles.get(level, 0.0) + rb / read_bw + wb / write_bw
        columns[c_reads] = reads.get(key, 0.0)
        columns[c_writes] = writes.get(key, 0.0)
        columns[c_rb] = rb
        columns[c_wb] = wb
    for key, count in pe.items():
        columns[PE_COLUMNS[key]] = count
        if key in ctx.pe_actions:
            actions[ctx.pe_actions[key]] = count
    if mapping is not None:
        columns.update(mapping)
    return actions, level_cycles, columns


def points_actions(layer: Layer, arch: ArchBase, problem: GemmProblem, rows: np.ndarray,
                   cols: np.ndarray, dataflow: Dataflow, tiling: Tiling = "search",
                   registers: tuple[int, int] = (1, 1)
                   ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, object]]:
    """`level_actions(arch, layer_traffic(...))` of P arrays at once, the same numbers: `rows`
    and `cols` are integer arrays (one entry per point; every other input the points share).
    Actions, level cycles and columns come as arrays over the points (float; the tiling's
    columns int, bool or str objects)."""
    geo = layer_geometry(layer, problem)
    ctx = context(arch)
    act_b, w_b, acc_b = ctx.bytes_
    n = len(rows)
    limit = registers[1] if dataflow == "os" else registers[0]
    if limit == 1:  # one word: no split to choose
        ra, cb = rows, cols
    else:
        split = np.array([register_split(problem, r, c, dataflow, registers[0], registers[1],
                                         ctx.bytes_)
                          for r, c in zip(rows.tolist(), cols.tolist())], dtype=np.int64)
        ra, cb = rows * split[:, 0], cols * split[:, 1]
    arr = array_traffic(problem, ra, cb, dataflow)
    buffers = ctx.buffers
    mapping: dict[str, object] | None = None
    if tiling == "scalesim":
        ow = np.broadcast_to(arr.out_writes, (n,)).tolist()
        found = np.array([_scalesim(geo, w, r, c, dataflow, ctx.half)
                          for w, r, c in zip(ow, rows.tolist(), cols.tolist())]).reshape(n, 4)
        act, weight, outs, psum_w = found.T
        psum_r: float | np.ndarray = 0.0
    else:
        done = _searches(geo, dataflow, (act_b, w_b, act_b, acc_b), ctx.capacity,
                         ctx.search_prices[dataflow])
        folds = list(zip(ra.tolist(), cb.tolist()))
        missing = list(dict.fromkeys(f for f in folds if f not in done))
        if missing:
            done.update(zip(missing, _find_many(geo, dataflow, missing,
                                                (act_b, w_b, act_b, acc_b), ctx.capacity,
                                                ctx.search_prices[dataflow])))
        found_of = [done[f] for f in folds]
        maps = [f[0] for f in found_of]
        act, weight, outs, psum_w, psum_r = np.array([f[1:] for f in found_of]).reshape(n, 5).T
        reloads = np.array([m.array_reloads for m in maps], dtype=np.int64)
        mapping = {"tile_loop_order": np.array(["".join(m.order) for m in maps], dtype=object),
                   "tile_pixels": np.array([m.pixel_tile for m in maps], dtype=np.int64),
                   "tile_filters": np.array([m.filter_tile for m in maps], dtype=np.int64),
                   "tile_window": np.array([m.window_tile for m in maps], dtype=np.int64),
                   "tile_fits": np.array([m.fits for m in maps], dtype=bool),
                   "tile_array_reloads": reloads}
        arr = reloaded(arr, dataflow, reloads, arr.out_writes)
    array_reads = {"act": arr.act_reads, "weight": arr.weight_reads, "out": arr.out_reads}
    reads, writes, rbytes, wbytes, pe, _, _ = _space_counts(
        buffers, ctx.bytes_, {"act": act, "weight": weight}, array_reads, arr.out_writes, outs,
        psum_w, psum_r, geo.repeat, float(layer.macs), dataflow,
        lambda v: np.asarray(v, dtype=float))
    counted = [{k: _spread(v, n) for k, v in d.items()}
               for d in (reads, writes, rbytes, wbytes, pe)]
    zero = np.zeros(n)
    for d in counted[:4]:  # a key a point does not count is a count of 0, as `level_actions`
        for key, *_ in ctx.slots:
            d.setdefault(key, zero)
    return _level_actions(ctx, *counted, mapping)


def _spread(value: float | np.ndarray, n: int) -> np.ndarray:
    """`value` as a float array of the n points (a number is the same at every point)."""
    if isinstance(value, np.ndarray) and value.shape == (n,):
        return value.astype(float, copy=False)
    return np.full(n, float(value))
