"""The 2-D reduction view of an input activation, shared by the statistics and the transforms.

Every layer's input is looked at as a matrix `[rows, row_length]` whose rows are the vectors
a dot product runs along (the reduction axis), so that "per row", "N:M along the reduction
axis", "per channel" and "blocks" mean one thing for every op:

* linear / matmul `[M, K]` or `[batch, M, K]`: rows are the `batch * M` tokens, a row is the
  K-vector of one token, columns are the K input channels.
* conv2d `[N, C, H, W]`: rows are the `N * H * W` input pixels in raster order (n, h, w), a
  row is the C-vector of one pixel (what an input-channel-vectorised array or a 1 x 1 conv
  reduces over), columns are the C input channels (channel c of the view is the whole
  `[N, H, W]` plane of channel c). For a grouped or depthwise conv the view is the same; the
  reduction of one output then spans `C / groups` consecutive columns of a row (and R x S
  pixels), so N:M groups run within each conv group's columns (below), not along all of C.

N:M structure is counted on the layer's *segments* (`nm_segments`): the runs of a row that
one output's dot product takes whole and that an N:M sparse tensor core compresses, m
consecutive elements to a group, groups restarting at each segment.

* linear / matmul: a segment is a token's K-vector (one row of the view).
* conv2d: a segment is the `C / groups` channels of one conv group at one input pixel. The
  implicit GEMM's K axis is (r, s, c) with c fastest, so a group of m consecutive K columns is
  m channels of one pixel (or of one padding position), and a group never crosses into
  another (r, s) tap or conv group. Padding positions are left out: they are not stored, not
  compressed, and always conform (all zero), so counting them would only dilute the share by
  how much padding the geometry adds. Each pixel counts once, however many windows read it:
  the compressed operand is the stored tensor (the im2col repeats are re-reads of the same
  groups), so weighting by reuse would make the share depend on the kernel size rather than
  on the data. Pixels that no window reads (a stride longer than the window, or rows the last
  window does not reach) are left out as well: they never enter the product. The groups
  counted are therefore exactly the distinct non-padding groups of the im2col matrix, so
  "every group conforms" means the same on the segments as on the im2col matrix.
"""

from __future__ import annotations

import numpy as np

from accelsim.workload.layer import ConvShape, Shape

ROW_DEFINITION = {
    "linear": "token (row of [M, K]); row length K; channel = column k",
    "matmul": "token (row of [batch*M, K]); row length K; channel = column k",
    "conv2d": "input pixel (n, h, w); row = its C-vector; channel = plane c of [N, H, W]",
}
"""What one row and one channel of the reduction view are, per op (reported by `inspect`)."""


def reduction_view(array: np.ndarray, shape: Shape) -> np.ndarray:
    """The `[rows, row_length]` view of an input in natural layout (a copy for conv2d)."""
    if isinstance(shape, ConvShape):
        return np.ascontiguousarray(array.transpose(0, 2, 3, 1)).reshape(-1, shape.C)
    return np.ascontiguousarray(array).reshape(-1, shape.K)


def from_reduction_view(view: np.ndarray, shape: Shape) -> np.ndarray:
    """Inverse of `reduction_view`: back to the op's natural layout."""
    if isinstance(shape, ConvShape):
        return np.ascontiguousarray(
            view.reshape(shape.N, shape.H, shape.W, shape.C).transpose(0, 3, 1, 2)
        )
    return view.reshape(shape.act_shape)


def segment_length(shape: Shape) -> int:
    """Elements of one N:M segment (see module docstring): C / groups for conv2d, K for
    linear/matmul. N:M with groups of m applies to the layer only when this is at least m."""
    if isinstance(shape, ConvShape):
        return shape.C // shape.groups
    return shape.K


def _read_positions(size: int, before: int, out: int, window: int, stride: int,
                    dilation: int) -> np.ndarray:
    """Which of `size` input positions along one spatial axis some window tap reads: bool
    [size], for `out` outputs, `before` padding positions ahead of the input."""
    taps = (np.arange(out)[:, None] * stride + np.arange(window)[None, :] * dilation
            - before).ravel()
    read = np.zeros(size, dtype=bool)
    read[taps[(taps >= 0) & (taps < size)]] = True
    return read


def read_pixels(shape: ConvShape) -> np.ndarray:
    """Whether each row of a conv's reduction view, input pixel (n, h, w) in raster order, is
    read by the window of at least one output position: bool [N * H * W]."""
    top, _, left, _ = shape.padding
    rows = _read_positions(shape.H, top, shape.E, shape.R, shape.stride[0], shape.dilation[0])
    cols = _read_positions(shape.W, left, shape.F, shape.S, shape.stride[1], shape.dilation[1])
    return np.broadcast_to(rows[:, None] & cols[None, :], (shape.N, shape.H, shape.W)).ravel()


def nm_segments(view: np.ndarray, shape: Shape) -> np.ndarray:
    """The layer's N:M segments from its reduction view: `[segments, segment_length]`, the rows
    that enter a dot product (all for linear/matmul, `read_pixels` for conv2d) cut into runs of
    `segment_length`; no copy when every row is read."""
    if isinstance(shape, ConvShape):
        read = read_pixels(shape)
        if not read.all():
            view = view[read]
    return view.reshape(-1, segment_length(shape))
