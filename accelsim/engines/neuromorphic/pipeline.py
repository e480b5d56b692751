"""Event pipeline of one pass of a mapped network (simpy discrete-event simulation).

Granularity: a packet carries the events of one tile of a unit's input, `packet_rows` rows x
`packet_cols` columns of the feature map (a whole frame for fully connected layers). Each NP
stripe of a unit runs two processes:

* transfer: waits until every producer has finished the input tiles this tile depends on (in
  raster order: the producer's prefix of done tiles reaches the one that completes the needed
  output rows) or until the DMA has injected it, then moves the tile's events into the
  stripe's node through its ejection port (`bytes / link_bandwidth` cycles, one packet at a
  time per port) and after `hops x hop_latency` cycles the packet has arrived;
* compute: takes arrived packets in order and spends the tile's NP cycles on each.

A tile is done when every stripe that reads it is done; frames follow each other through the
same processes (pipelined), or the DMA waits for a frame to leave before injecting the next;
the DMA spends a fixed `frame_overhead_cycles` on each frame before injecting it.

Granularity: a packet waits for its whole tile, so the fill of each layer is about one packet
longer than event by event. Row packets keep EfficientNet-Lite0 under a second; single-pixel
packets there give a 22 % shorter frame latency at 20x the run time, on a small 3-layer
network 3 % (benchmarks/bench_neuromorphic.py, tests/test_neuromorphic.py).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

import numpy as np
import simpy


@dataclass
class StripeWork:
    """What one stripe (a set of NPs working on the same rows) does with each tile it reads."""

    tiles: np.ndarray
    """Indices (raster order) of the tiles the stripe reads."""
    cycles: np.ndarray
    """[frames, len(tiles)] NP cycles spent on each tile (the slowest NP of the stripe)."""
    rx_bytes: np.ndarray
    """[frames, len(tiles)] bytes of events arriving at the stripe for each tile."""
    hops: float
    """Mean mesh hops the arriving events travel."""
    port: Hashable
    """Ejection port (node) the events enter through."""


@dataclass
class PipeUnit:
    """A mapped unit as the pipeline sees it."""

    name: str
    n_tiles: int
    stripes: list[StripeWork]
    deps: list[tuple[str, np.ndarray]] = field(default_factory=list)
    """(producer unit, producer tile index each of this unit's tiles needs done)."""
    dma_bytes: np.ndarray | None = None
    """[frames, n_tiles] bytes the DMA injects for each tile (units fed from outside)."""


@dataclass
class PipelineResult:
    """Times in cycles since the pass started."""

    frame_done: np.ndarray
    unit_done: dict[str, float]
    """When each unit finished its last tile of the last frame."""
    end: float
    port_busy: dict[Hashable, float]
    """Cycles each ejection port spent moving bytes."""


class _Progress:
    """Done tiles of one (unit, frame): the prefix of consecutive done tiles and its waiters."""

    __slots__ = ("remaining", "prefix", "waiters")

    def __init__(self, remaining: np.ndarray) -> None:
        self.remaining = remaining.copy()
        self.prefix = -1
        self.waiters: dict[int, simpy.Event] = {}


def run_pipeline(units: list[PipeUnit], frames: int, link_bandwidth_bytes_per_cycle: float,
                 hop_latency_cycles: float, dma_bandwidth_bytes_per_cycle: float,
                 pipelined: bool = True, frame_overhead_cycles: float = 0.0) -> PipelineResult:
    """Simulate `frames` frames through `units` (topological order) and time them."""
    env = simpy.Environment()
    names = {u.name for u in units}
    consumers = {d for u in units for d, _ in u.deps}
    sinks = [u for u in units if u.name not in consumers]
    progress: dict[str, list[_Progress]] = {}
    for u in units:
        counts = np.zeros(u.n_tiles, dtype=np.int64)
        for s in u.stripes:
            counts[s.tiles] += 1
        if (counts == 0).any():
            raise ValueError(f"unit {u.name}: tiles {np.flatnonzero(counts == 0)[:5]} are read "
                             "by no stripe")
        progress[u.name] = [_Progress(counts) for _ in range(frames)]
    injected: dict[str, list[_Progress]] = {
        u.name: [_Progress(np.ones(u.n_tiles, dtype=np.int64)) for _ in range(frames)]
        for u in units if u.dma_bytes is not None}
    ports: dict[Hashable, simpy.Resource] = {}
    port_busy: dict[Hashable, float] = {}
    unit_done: dict[str, float] = {}
    frame_done = np.zeros(frames)
    frame_events = [env.event() for _ in range(frames)]
    sink_left = [len(sinks)] * frames

    def advance(prog: _Progress, tile: int) -> bool:
        """Mark one reader of `tile` done; True when the prefix reached the last tile."""
        prog.remaining[tile] -= 1
        n = len(prog.remaining)
        while prog.prefix + 1 < n and prog.remaining[prog.prefix + 1] == 0:
            prog.prefix += 1
            ev = prog.waiters.pop(prog.prefix, None)
            if ev is not None:
                ev.succeed()
        return prog.prefix == n - 1

    def wait_for(prog: _Progress, tile: int) -> simpy.Event | None:
        if prog.prefix >= tile:
            return None
        ev = prog.waiters.get(tile)
        if ev is None:
            ev = prog.waiters[tile] = env.event()
        return ev

    def tile_done(u: PipeUnit, f: int, tile: int) -> None:
        if advance(progress[u.name][f], tile):
            if f == frames - 1:
                unit_done[u.name] = env.now
            if u in sinks:
                sink_left[f] -= 1
                if sink_left[f] == 0:
                    frame_done[f] = env.now
                    frame_events[f].succeed()

    def transfer(u: PipeUnit, s: StripeWork, inbox: simpy.Store):
        port = ports.setdefault(s.port, simpy.Resource(env, capacity=1))
        port_busy.setdefault(s.port, 0.0)
        deps = [(progress[d], idx) for d, idx in u.deps if d in names]
        for f in range(frames):
            for j, t in enumerate(s.tiles):
                for prog, idx in deps:
                    ev = wait_for(prog[f], int(idx[t]))
                    if ev is not None:
                        yield ev
                if u.dma_bytes is not None:
                    ev = wait_for(injected[u.name][f], int(t))
                    if ev is not None:
                        yield ev
                nbytes = float(s.rx_bytes[f, j])
                if nbytes > 0:
                    with port.request() as req:
                        yield req
                        hold = nbytes / link_bandwidth_bytes_per_cycle
                        port_busy[s.port] += hold
                        yield env.timeout(hold)
                inbox.put(env.timeout(s.hops * hop_latency_cycles))

    def compute(u: PipeUnit, s: StripeWork, inbox: simpy.Store):
        for f in range(frames):
            for j, t in enumerate(s.tiles):
                arrival = yield inbox.get()
                yield arrival
                cycles = float(s.cycles[f, j])
                if cycles > 0:
                    yield env.timeout(cycles)
                tile_done(u, f, int(t))

    def dma():
        sources = [u for u in units if u.dma_bytes is not None]
        for f in range(frames):
            if not pipelined and f > 0:
                yield frame_events[f - 1]
            if frame_overhead_cycles > 0:
                yield env.timeout(frame_overhead_cycles)
            for u in sources:
                prog = injected[u.name][f]
                for t in range(u.n_tiles):
                    nbytes = float(u.dma_bytes[f, t])
                    if nbytes > 0:
                        yield env.timeout(nbytes / dma_bandwidth_bytes_per_cycle)
                    advance(prog, t)

    for u in units:
        for s in u.stripes:
            inbox = simpy.Store(env)
            env.process(transfer(u, s, inbox))
            env.process(compute(u, s, inbox))
    env.process(dma())
    env.run()
    if not all(ev.triggered for ev in frame_events):
        raise RuntimeError("event pipeline deadlocked: some frames never completed")
    return PipelineResult(frame_done=frame_done, unit_done=unit_done, end=float(env.now),
                          port_busy=port_busy)
