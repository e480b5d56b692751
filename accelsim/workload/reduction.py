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
  pixels), so N:M groups along C line up with conv groups only when M divides C / groups.
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
