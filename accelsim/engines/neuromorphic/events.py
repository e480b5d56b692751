"""Events and synaptic operations of one layer, from its trace or its declared density.

Quantisation (documented choice): a neuromorphic chip sends an activation as an event when its
value, quantised to the layer's event width `act_bits` (the trace's per-layer `act_bits` where the
NPs support it, else the arch's precision: `Config.layer_bits`), is a non-zero code. The scale of
one code step comes from, in this order:

1. the model itself: a trace layer whose `info.act_scale` gives the value of one code step (an
   akida import stores akida's integer codes with `act_scale = 1`; a capture of a quantised
   model can store its activation quantiser's scale) and that runs at its own width or wider:
   x is an event iff `round(x / act_scale) != 0`, rounding half to even as torch's and numpy's
   quantisers do, i.e. `|x| > act_scale / 2` (a zero point shifts every code alike and never
   makes a zero activation an event, so it is not needed);
2. otherwise a per-layer calibration: `scale = P(|x| over non-zeros) / levels`, where P is the
   `act_scale_percentile` of the magnitudes (100: the maximum; numpy's linear interpolation
   between ranks) and `levels = 2**act_bits - 1` for non-negative inputs (ReLU outputs) or
   `2**(act_bits-1) - 1` (at least 1) when the layer has negative inputs, and x is an event iff
   `round(|x| / scale) >= 1` rounding half up, i.e. `|x| >= scale / 2`. Values above the clip
   still send one event. This is also how a layer whose trace width the NPs lack is
   requantised (an 8-bit akida model on Akida 1.0).

A mask-only trace has no values: its events are its non-zeros. Padding is implicit and never
sends events.

Synaptic operations (synops) = events x fan-out. In a conv, the input pixel (h, w) reaches
`fan_rows[h] * fan_cols[w]` kernel positions whose output lies inside the output plane, each
for the K/groups filters of its group; in a linear layer every event reaches the N outputs.
Summed over all events this never exceeds the dense MACs (the difference is the padding taps
and the skipped zeros).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from accelsim.errors import WorkloadError
from accelsim.workload.layer import ConvShape, GemmShape, Layer


def quantisation_levels(act_bits: int, signed: bool) -> int:
    """Non-zero magnitude levels of a `act_bits` code (unsigned, or sign + magnitude)."""
    return max(1, 2 ** (act_bits - 1) - 1) if signed else 2 ** act_bits - 1


def trace_scale(layer: Layer) -> float | None:
    """The value of one code step the trace gives for the layer (`info.act_scale`), or None."""
    scale = layer.extra.get("act_scale")
    if scale is None:
        return None
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or \
            not math.isfinite(scale) or scale <= 0:
        raise WorkloadError(f"layer '{layer.name}': info.act_scale must be a positive number "
                            f"(the value of one activation code step), got {scale!r}. Fix or "
                            "drop the key in the trace's layer info.")
    return float(scale)


def event_mask(layer: Layer, act_bits: int, percentile: float = 100.0) -> np.ndarray | None:
    """Boolean map of events in the layer's natural input layout; None for shapes-only layers.
    `act_bits` is the width the layer runs at (see the module docstring for the scale)."""
    if layer.act is None:
        return None if layer.act_mask is None else layer.act_mask
    mag = np.abs(layer.act.astype(np.float64))      # exact for float16 traces
    scale = trace_scale(layer)
    if scale is not None and act_bits >= layer.act_bits:
        return mag > 0.5 * scale
    nonzero = mag[mag > 0]
    if nonzero.size == 0:
        return np.zeros(mag.shape, dtype=bool)
    top = float(nonzero.max() if percentile >= 100.0 else np.percentile(nonzero, percentile))
    scale = top / quantisation_levels(act_bits, bool((layer.act < 0).any()))
    return mag >= np.float64(0.5 * scale)


@dataclass
class FanOut:
    """Kernel positions each input row / column reaches inside the output plane."""

    rows: np.ndarray
    cols: np.ndarray


def axis_fan_out(size: int, out_size: int, kernel: int, stride: int, pad_before: int,
                 dilation: int, out_lo: int = 0, out_hi: int | None = None) -> np.ndarray:
    """For each input index i in [0, size): #kernel taps t with output o = (i + pad - t*d)/s an
    integer in [out_lo, out_hi) (default the whole output)."""
    hi = out_size if out_hi is None else out_hi
    i = np.arange(size)[:, None]
    num = i + pad_before - dilation * np.arange(kernel)[None, :]
    o = num // stride
    ok = (num >= 0) & (num % stride == 0) & (o >= out_lo) & (o < hi)
    return ok.sum(axis=1).astype(np.int64)


def conv_fan_out(s: ConvShape) -> FanOut:
    return FanOut(
        rows=axis_fan_out(s.H, s.E, s.R, s.stride[0], s.padding[0], s.dilation[0]),
        cols=axis_fan_out(s.W, s.F, s.S, s.stride[1], s.padding[2], s.dilation[1]),
    )


def conv_synops(nz: np.ndarray, s: ConvShape) -> int:
    """Synaptic operations of a conv with event map `nz` [N, C, H, W] (vectorised)."""
    fan = conv_fan_out(s)
    per_pixel = nz.sum(axis=(0, 1), dtype=np.int64)
    return int(fan.rows @ per_pixel @ fan.cols) * (s.K // s.groups)


@dataclass
class LayerEvents:
    """Events of one layer per frame and input pixel, channels summed.

    `pixels[f, h, w]`: events at input pixel (h, w) of frame f (expected values for a
    shapes-only layer); a linear layer has one pixel per frame. `channel_groups` splits the
    channel sum into contiguous channel ranges when a layer is split by channels.
    """

    pixels: np.ndarray
    statistical: bool
    channel_groups: np.ndarray | None = None
    """[G, F, H, W] per channel range, when requested."""

    @property
    def total(self) -> float:
        return float(self.pixels.sum())


def frames_of(layer: Layer) -> int:
    """How many independent inputs (frames) the layer's trace holds."""
    s = layer.shape
    return s.N if isinstance(s, ConvShape) else s.M * s.batch


def layer_events(layer: Layer, frames: int, act_bits: int, percentile: float,
                 skip_zeros: bool, channel_splits: int = 1) -> LayerEvents:
    """Events of `layer` grouped into `frames` frames (which must divide its leading dims)."""
    s = layer.shape
    mask = event_mask(layer, act_bits, percentile) if skip_zeros else None
    statistical = skip_zeros and mask is None
    if isinstance(s, ConvShape):
        per = s.N // frames
        bounds = np.linspace(0, s.C, channel_splits + 1).round().astype(int)
        if mask is None:
            density = layer.act_density if skip_zeros else 1.0
            widths = np.diff(bounds).astype(np.float64) * density * per
            groups = widths[:, None, None, None] * np.ones((1, frames, s.H, s.W))
        else:
            groups = np.stack([
                mask[:, lo:hi].sum(axis=1, dtype=np.float64).reshape(frames, per, s.H, s.W)
                .sum(axis=1) for lo, hi in zip(bounds[:-1], bounds[1:])])
        return LayerEvents(pixels=groups.sum(axis=0), statistical=statistical,
                           channel_groups=groups if channel_splits > 1 else None)
    assert isinstance(s, GemmShape)
    rows = s.M * s.batch
    if mask is None:
        density = layer.act_density if skip_zeros else 1.0
        per_row = np.full(rows, density * s.K, dtype=np.float64)
    else:
        per_row = mask.reshape(rows, s.K).sum(axis=1, dtype=np.float64)
    pixels = per_row.reshape(frames, rows // frames).sum(axis=1)[:, None, None]
    return LayerEvents(pixels=pixels, statistical=statistical)
