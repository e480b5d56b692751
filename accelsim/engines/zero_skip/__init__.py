"""MAC arrays that skip or gate zero operands (Cnvlutin, SCNN, EIE, Eyeriss gating), driven by
the real non-zero bitmaps of each layer.

One engine, four published designs as parameter points:

* `array.dataflow` says how a layer's work is dealt to lanes:
  - `channel_lanes` (Cnvlutin): each output window's bricks (`brick_size` channels at one
    pixel) go round-robin to `lanes` lanes; a lane does one activation per cycle against
    `filters_per_pass` filters; more filters take more passes;
  - `planar_cartesian` (SCNN, PT-IS-CP-sparse): the input plane is tiled over a
    `pe_rows` x `pe_cols` grid of PEs (the halo of partial sums goes to neighbours); per input
    channel a PE multiplies every F-vector of non-zero weights of an output-channel group with
    every I-vector of its non-zero activations (F x I multipliers), ceil(nW/F) * ceil(nA/I)
    cycles; the group size Kc is the most filters whose partial sums fit the accumulator;
    strided layers are split by stride phase so every product is a useful one;
  - `row_broadcast` (EIE): each non-zero activation of an output pixel's input vector is
    broadcast to `lanes` PEs; PE l owns filters k = l mod lanes and spends one cycle per
    non-zero weight it holds for that activation;
  - `dense_array` (Eyeriss gating): a systolic array timed exactly as the `systolic` engine.
* `skip` / `gate`: operands whose zeros are skipped (cost neither cycles nor energy) or gated
  (cost cycles and `gated_mac_energy_fraction` of a MAC's energy).
* `sync`: where lanes wait for each other (`barrier`: every `item`, every `pass` = window /
  output-channel group / output pixel, or once per `layer`), the FIFO depth between the
  dispatcher and each lane, and the dispatcher's issue interval (see `kernels`).
* `act_format` / `weight_format`: compressed storage (bitmap, RLE, CSR) with its metadata, per
  memory level; metadata bytes are their own actions, `<level>.metadata_read_bytes`.

Counting, per layer: cycles from the kernels, MACs done / gated / skipped exactly from the
bitmaps (`macs_done + macs_skipped == macs_dense`), products wasted (SCNN products landing
outside the output plane), buffer and DRAM traffic with metadata: the lanes' buffer reads
as the dataflow counts them, DRAM fills from the tiling search shared with the systolic kind
(`accelsim.engines.traffic`, tiles at each operand's stored bytes per element where a level
holds it compressed), per-level, per-operand access columns and `pe:` registers as in the
systolic kind. Shapes-only layers run on an
i.i.d. bitmap at their declared density (fixed seed: `work.iid_mask`; a layer too large for one
is counted on a `work.Sample` and extrapolated, said in its warnings), and trace
layers also report `cycles_if_uniform`, the same layer on an i.i.d. bitmap with the same
number of non-zeros, which is what a density-only model assumes.

Modules: `config` (the YAML schema), `count` (the count step: `simulate`), `work` (bitmaps to
work per lane and exact MAC counts), `bitmaps` (numba passes over the maps: non-zero maps,
i.i.d. maps, tap, brick, tile and weight counts, RLE sizes), `kernels` (numba lane timing:
FIFOs and barriers, and their closed forms where the lanes never wait), `formats` (compressed
storage sizes and metadata). `batch` counts many design points on one layer at once
(`simulate_batch`, what a sweep uses), once per group of points that differ only in their
names and, without a DRAM level, their memory levels' sizes.

Each layer's maps (and its i.i.d. maps) are made once and kept while the layer lives, with
what the count derives from them without reading the arch (views, tap and MAC counts per
skip / gate choice, stored sizes per format, brick work per brick size), so the trace pass,
the i.i.d. rerun, the dense equivalent and every other arch counted on the same layer (a
sweep's points) read them; `cycles_if_uniform` is the i.i.d. rerun's cycles alone
(`count.uniform_cycles`). Counts on an arch that neither skips, gates nor compresses depend on
the layer's shape only and are kept by shape, as are a `dense_array`'s compute cycles, buffer
counts and latency split on any arch. The energy of every action, per-level and
per-space splits included, is priced after counting (`accelsim.simulate`).
"""

from accelsim.engines.zero_skip.batch import simulate_batch
from accelsim.engines.zero_skip.config import Config
from accelsim.engines.zero_skip.count import simulate

__all__ = ["Config", "simulate", "simulate_batch"]
