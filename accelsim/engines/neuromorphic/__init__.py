"""Event-driven neuromorphic cores (BrainChip Akida-like): cost follows events, not MACs.

Whole network, computed once per (workload, arch) by `prepare` and looked up per layer by
`simulate` (the engine contract is per layer; mapping and pipelining are not):

1. map the workload onto the NPs of the mesh (`mapping`): units, NPs per unit,
   placement near producers, passes when the chip is too small, unmappable layers with why;
2. count each unit's events and synops from the trace (`events`), per frame,
   stripe and packet tile, and its NP cycles (`work`: from synops at a synop rate, or from
   measured cycles per input event per filter by kernel, `cycles_per_event_filter`);
3. run the frames through the event pipeline (`pipeline`, simpy; a unit starts a tile when
   its producers have done the tiles it needs, or with `layer_overlap: frames` only when they
   have done the whole frame, as Akida 1.0 runs a frame's layers), pass after
   pass with each pass's weights reloaded from DRAM (per frame or per batch, `pass_reload`:
   weight bytes / DRAM or DMA bandwidth cycles, and the DRAM read bytes priced);
   the first `max_simulated_frames` frames are simulated, the rest added at the measured
   steady-state interval.

Per-layer results. `cycles` is the layer's share of the network's makespan (all frames, all
passes, per-frame overheads) in proportion to the NP-cycles it keeps busy, so the per-layer
cycles, latencies and static energies add up to the whole pipelined run; `speedup_vs_dense` per
layer is therefore the layer's own work ratio times a factor common to all layers (how well the
network overlaps, sparse vs dense), and where that passes dense MACs / MACs done the row's
`warnings` say so. `np_busy_cycles` (= `compute_cycles`) is the busiest NP stripe's own work on
the layer and `work_speedup_vs_dense` its dense/sparse ratio, the speed-up of the layer itself;
it can pass the bound too where the sparse work is spread over the layer's NPs more evenly than
the dense work (a layer lasts as long as its busiest NP), and the warning then says that as
well. `act_bits` / `weight_bits` are the widths the layer ran at (`Config.layer_bits`: the
trace's per-layer widths where the NPs support them). `events` are the layer's input events,
`synaptic_ops` its event x fan-out operations (macs_done, rounded down where they are expected
values; macs_skipped = the zero and padding taps never scheduled), `events_max_per_np` the most
events one NP (one stripe x filter or channel group) receives, `finished_at_cycle` when the
layer's last packet was done in the pipelined run, `nps_used` the NPs of its unit (0 on the
input unit; both layers of a fused separable unit show the unit's NPs). Energy actions:
`events.process` (an event delivered to an NP), `synops.update`, `noc.hop` (an event over one
link), `np.busy_cycle` (an NP cycle spent on events), `input_unit.mac`, DRAM bytes (weights of
FC layers kept off chip, activations between passes); static power x time comes from the arch
(affine energy). An unmappable layer has `mapping = unmappable`, the reason in `mapping_note`
and, as "unmappable: <reason>", in `warnings`, NaN cycles/latency/energy, and its consumers are
fed by the DMA as if the host computed it. Whole-network figures (frame latency, frames/s, NoC
load, NP utilisation, passes) go to the run metadata through `prepare`.

Modules: `config` (the YAML schema and the action names it prices), `count` (`prepare` and
`simulate`: the whole network once, then per layer), `mapping`, `events`, `work`, `pipeline`,
`akida_device` (a config for any virtual device of BrainChip's `akida` package).
"""

from accelsim.engines.neuromorphic.config import Config
from accelsim.engines.neuromorphic.count import prepare, simulate

__all__ = ["Config", "prepare", "simulate"]
