"""A layer's output from its traced input and weights, in plain numpy (no torch needed).

Used to weigh a what-if transform against fidelity: the relative output error
||X W - X~ W|| / ||X W|| (Frobenius norms, bias left out since it cancels in the numerator).

* linear / matmul: `X @ W` with W in the trace layout [K, N] (or [batch, K, N]).
* conv2d: an explicit im2col per chunk of samples: the unpadded input is zero-padded
  (top, bottom, left, right), R x S windows are taken with `sliding_window_view` at the
  layer's stride and dilation, and each group's [pixels, C/groups * R * S] patch matrix is
  multiplied by its [C/groups * R * S, K/groups] filter matrix. Chunks keep the patch matrix
  under `IM2COL_BUDGET_ELEMENTS`, so memory stays bounded on long traces.

Everything is computed in float64 from the stored float16 values.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from accelsim.workload.layer import ConvShape, Shape

IM2COL_BUDGET_ELEMENTS = 8_000_000
"""Largest patch matrix (elements, float64) built at once: 64 MB."""


def conv2d_output(x: np.ndarray, weight: np.ndarray, shape: ConvShape) -> np.ndarray:
    """Convolution output [N, K, E, F] of an unpadded input [N, C, H, W] (no bias)."""
    s = shape
    groups, cg, kg = s.groups, s.C // s.groups, s.K // s.groups
    top, bottom, left, right = s.padding
    (sh, sw), (dh, dw) = s.stride, s.dilation
    span_h, span_w = dh * (s.R - 1) + 1, dw * (s.S - 1) + 1
    w_mat = np.asarray(weight, np.float64).reshape(groups, kg, cg * s.R * s.S).transpose(0, 2, 1)
    per_sample = s.E * s.F * s.C * s.R * s.S
    chunk = max(1, IM2COL_BUDGET_ELEMENTS // per_sample)
    out = np.empty((s.N, s.K, s.E, s.F), dtype=np.float64)
    for n0 in range(0, s.N, chunk):
        xb = np.asarray(x[n0:n0 + chunk], np.float64)
        nb = xb.shape[0]
        xp = np.pad(xb, ((0, 0), (0, 0), (top, bottom), (left, right)))
        win = sliding_window_view(xp, (span_h, span_w), axis=(2, 3))
        win = win[:, :, ::sh, ::sw, ::dh, ::dw][:, :, : s.E, : s.F]
        cols = (win.reshape(nb, groups, cg, s.E, s.F, s.R, s.S)
                .transpose(1, 0, 3, 4, 2, 5, 6)
                .reshape(groups, nb * s.E * s.F, cg * s.R * s.S))
        y = np.matmul(cols, w_mat)
        out[n0:n0 + nb] = (y.reshape(groups, nb, s.E, s.F, kg)
                           .transpose(1, 0, 4, 2, 3)
                           .reshape(nb, s.K, s.E, s.F))
    return out


def layer_output(shape: Shape, act: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """The layer's output (no bias) for input `act` in natural layout, float64."""
    if isinstance(shape, ConvShape):
        return conv2d_output(act, weight, shape)
    return np.matmul(np.asarray(act, np.float64), np.asarray(weight, np.float64))


def output_norm(shape: Shape, act: np.ndarray, weight: np.ndarray) -> float:
    """||f(act)||, the Frobenius norm of the layer's output (no bias) for input `act`."""
    return math.sqrt(float(np.sum(layer_output(shape, act, weight) ** 2)))


def relative_output_error(
    shape: Shape, original: np.ndarray, changed: np.ndarray, weight: np.ndarray,
    reference_norm: float | None = None,
) -> float | None:
    """||f(original) - f(changed)|| / ||f(original)|| for the layer's linear map f.

    Computed as ||f(original - changed)|| / ||f(original)|| (f is linear); 0 when nothing
    changed, None when the reference output is all zero but the change is not.
    `reference_norm` is ||f(original)|| when the caller already has it (a transform that
    evaluates many candidate changes of one input computes it once).
    """
    delta = np.asarray(original, np.float64) - np.asarray(changed, np.float64)
    if not delta.any():
        return 0.0
    num = output_norm(shape, delta, weight)
    den = output_norm(shape, original, weight) if reference_norm is None else reference_norm
    if den == 0.0:
        return None if num > 0.0 else 0.0
    return num / den
