"""Shared by several engines: the matrix product a layer runs as (`gemm_problem`: systolic,
zero-skip dense arrays) and its activation operand as GPU and tensor-core kernels see it, with
the sparsity statistics those kernels depend on (gpu, sparse_tensor_core).

A layer runs as `groups` matrix products A[M, K] x W[K, N] (the mapping of `gemm_problem`):
linear/matmul A is the input itself; conv2d runs as an implicit GEMM whose A is the im2col
matrix, M = N*E*F output pixels, K = R*S*C/groups with the columns ordered (r, s, c), channels
fastest (NHWC, as cuDNN and CUTLASS lay it out), and N = K_out/groups. Padding positions of the
im2col matrix are zeros (never stored, never fetched); a sparse kernel that needs A explicitly
must materialise it first.

Sparse kernels care about different statistics of A, all computed here:

* `density`: non-zeros / elements of A (what CSR-style kernels scale with);
* `nm_conformance(n, m)`: N:M conformance as `accelsim.workload.stats.layer_nm_conformance`
  defines it for `inspect` too: the share of m-groups along the layer's N:M segments that hold
  at most n non-zeros (linear/matmul: A's rows; conv2d: the C/groups channels of one conv
  group at each input pixel that A reads, each pixel once: A's groups of m consecutive
  columns within one (r, s) tap, without padding positions, which always conform, and without
  im2col's repeats). These are exactly the distinct non-padding groups of A, so every group
  of A conforms (an N:M kernel may run losslessly, `nm_all_conform`) exactly when the share
  is 1. NaN where a segment is shorter than m (`GemmDims.nm_applicable` False);
* `block_density(br, bc)`: share of br x bc blocks of A holding any non-zero (BSR);
* `union_density(rows)`: for tiles of `rows` consecutive rows of A, the share of (tile,
  column) pairs where some row of the tile is non-zero: the weight rows a row-skipping GEMV
  kernel that serves `rows` tokens per pass must still read.

`TraceOperand` measures them on a captured trace. `RandomOperand` gives their expectation
when zeros fall independently at a given density (shapes-only layers; `breakeven` curves),
and `StructuredOperand` the best case where zeros come in the unit each kernel skips.
For conv2d a block or an N:M group never straddles two (r, s) positions when its column
extent divides C/groups; otherwise blocks and groups are cut at the (r, s) boundary (each slice
of C/groups columns is padded separately), which is what a kernel tiling the (r, s) loop does.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Protocol

import numpy as np

from accelsim.workload.layer import ConvShape, Layer, Shape
from accelsim.workload.reduction import reduction_view, segment_length
from accelsim.workload.stats import layer_nm_conformance


@dataclass(frozen=True)
class GemmProblem:
    """`repeat` identical matrix products of [pixels, window] x [window, filters]."""

    pixels: int
    filters: int
    window: int
    repeat: int = 1


def gemm_problem(layer: Layer) -> GemmProblem:
    """The matrix product a layer runs as: one GEMM per group for conv2d (output pixels x
    filters, reduced over the window), `batch` products for linear/matmul (see
    `accelsim.engines.systolic` for how an array maps it)."""
    return _shape_problem(layer.shape)


@lru_cache(maxsize=4096)
def _shape_problem(s: Shape) -> GemmProblem:
    """`gemm_problem` of a layer of shape `s` (problems are frozen, so layers of one shape
    share it)."""
    if isinstance(s, ConvShape):
        return GemmProblem(
            pixels=s.N * s.E * s.F,
            filters=s.K // s.groups,
            window=s.R * s.S * (s.C // s.groups),
            repeat=s.groups,
        )
    return GemmProblem(pixels=s.M, filters=s.N, window=s.K, repeat=s.batch)


@dataclass(frozen=True)
class GemmDims:
    """`groups` sequential products A[M, K] x W[K, N]; element counts of the stored tensors."""

    M: int
    K: int
    N: int
    groups: int
    act_elements: int
    """Elements of the stored (unpadded) input tensor, all groups."""
    weight_elements: int
    out_elements: int
    needs_im2col: bool
    """True for conv2d layers whose A differs from the stored input (window > 1 or strided,
    dilated or padded): a kernel that needs A explicitly must materialise it first."""
    slice_cols: int
    """Columns of A at one window position: C/groups for conv2d, K for linear/matmul (the N:M
    segment length, `accelsim.workload.reduction.segment_length`). N:M groups and blocks run
    within it, so N:M needs slice_cols >= m (not a depthwise conv, not a one-channel input)."""

    def nm_applicable(self, m: int) -> bool:
        """Whether m-groups fit in a slice of A's columns (see `slice_cols`): where they do not,
        N:M does not apply and `nm_conformance` is NaN."""
        return self.slice_cols >= m

    @property
    def a_elements(self) -> int:
        """Elements of A over all groups (im2col size for conv2d, padding positions included)."""
        return self.groups * self.M * self.K

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the dense products."""
        return self.groups * self.M * self.K * self.N


def gemm_dims(layer: Layer) -> GemmDims:
    """The implicit-GEMM view of a layer (see module docstring)."""
    p = gemm_problem(layer)
    s = layer.shape
    if isinstance(s, ConvShape):
        act = s.N * s.C * s.H * s.W
        weight = s.K * (s.C // s.groups) * s.R * s.S
        out = s.N * s.K * s.E * s.F
        trivial = (s.R == 1 and s.S == 1 and s.stride == (1, 1) and s.padding == (0, 0, 0, 0))
        needs = not trivial
    else:
        act, weight, out = s.batch * s.M * s.K, s.batch * s.K * s.N, s.batch * s.M * s.N
        needs = False
    return GemmDims(M=p.pixels, K=p.window, N=p.filters, groups=p.repeat, act_elements=act,
                    weight_elements=weight, out_elements=out, needs_im2col=needs,
                    slice_cols=segment_length(s))


def in_bounds_elements(layer: Layer) -> int:
    """Elements of A that are not padding positions (all of A for linear/matmul)."""
    s = layer.shape
    if not isinstance(s, ConvShape):
        return gemm_dims(layer).a_elements
    top, _, left, _ = s.padding

    def valid(size: int, pad: int, out: int, window: int, stride: int, dilation: int) -> int:
        count = 0
        for r in range(window):
            for e in range(out):
                if 0 <= e * stride + r * dilation - pad < size:
                    count += 1
        return count

    rows = valid(s.H, top, s.E, s.R, s.stride[0], s.dilation[0])
    cols = valid(s.W, left, s.F, s.S, s.stride[1], s.dilation[1])
    return s.N * s.C * rows * cols


def a_slices(layer: Layer, nonzero: np.ndarray) -> Iterator[np.ndarray]:
    """A's non-zero map as boolean slices [groups, rows, cols] that together tile A.

    linear/matmul: one slice [batch, M, K]. conv2d: one slice per (r, s) window position,
    [groups, N*E*F, C/groups]: the columns of A at that position, rows in (n, e, f) order.
    """
    s = layer.shape
    if not isinstance(s, ConvShape):
        yield nonzero.reshape(-1, s.M, s.K)
        return
    top, bottom, left, right = s.padding
    (sh, sw), (dh, dw) = s.stride, s.dilation
    padded = np.pad(nonzero, ((0, 0), (0, 0), (top, bottom), (left, right)))
    cg = s.C // s.groups
    for r in range(s.R):
        for c in range(s.S):
            h0, w0 = r * dh, c * dw
            window = padded[:, :, h0:h0 + (s.E - 1) * sh + 1:sh, w0:w0 + (s.F - 1) * sw + 1:sw]
            # [N, C, E, F] -> [groups, N*E*F, C/groups]
            yield (window.reshape(s.N, s.groups, cg, s.E, s.F)
                   .transpose(1, 0, 3, 4, 2)
                   .reshape(s.groups, s.N * s.E * s.F, cg))


def _pad_axis(a: np.ndarray, axis: int, multiple: int) -> np.ndarray:
    """`a` zero-padded at the end of `axis` to a multiple of `multiple` (no copy if it is)."""
    extra = (-a.shape[axis]) % multiple
    if not extra:
        return a
    shape = list(a.shape)
    shape[axis] += extra
    out = np.zeros(shape, dtype=a.dtype)
    out[tuple(slice(0, n) for n in a.shape)] = a
    return out


class Operand(Protocol):
    """Statistics of A that kernel time models need (see module docstring)."""

    dims: GemmDims

    @property
    def density(self) -> float: ...

    def nm_conformance(self, n: int, m: int) -> float:
        """Share of conforming m-groups (see module docstring); NaN where N:M does not apply."""
        ...

    def nm_all_conform(self, n: int, m: int) -> bool:
        """Whether every m-group of A holds at most n non-zeros (an exact N:M kernel may run);
        False where N:M does not apply."""
        ...

    def block_density(self, block_rows: int, block_cols: int) -> float: ...

    def union_density(self, rows: int) -> float: ...


@dataclass
class TraceOperand:
    """Statistics measured on a layer's captured non-zero map."""

    layer: Layer
    dims: GemmDims = field(init=False)
    _cache: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.dims = gemm_dims(self.layer)

    @cached_property
    def _slices(self) -> list[np.ndarray]:
        return list(a_slices(self.layer, self.layer.nonzero()))

    @cached_property
    def nonzeros(self) -> int:
        """Non-zeros of A (im2col for conv2d: an input element counts once per window use)."""
        return int(sum(np.count_nonzero(sl) for sl in self._slices))

    @property
    def density(self) -> float:
        return self.nonzeros / self.dims.a_elements if self.dims.a_elements else 0.0

    def nm_conformance(self, n: int, m: int) -> float:
        key = ("nm", n, m)
        if key not in self._cache:
            view = reduction_view(self.layer.nonzero(), self.layer.shape)
            share = layer_nm_conformance(view, self.layer.shape, n, m)
            self._cache[key] = math.nan if share is None else share
        return self._cache[key]

    def nm_all_conform(self, n: int, m: int) -> bool:
        return self.nm_conformance(n, m) == 1.0

    def block_density(self, block_rows: int, block_cols: int) -> float:
        key = ("block", block_rows, block_cols)
        if key not in self._cache:
            busy = total = 0
            for sl in self._slices:
                b = _pad_axis(_pad_axis(sl, 1, block_rows), 2, block_cols)
                g, rows, cols = b.shape
                blocks = b.reshape(g, rows // block_rows, block_rows, cols // block_cols,
                                   block_cols).any(axis=(2, 4))
                busy += int(np.count_nonzero(blocks))
                total += blocks.size
            self._cache[key] = busy / total if total else 0.0
        return self._cache[key]

    def union_density(self, rows: int) -> float:
        key = ("union", rows)
        if key not in self._cache:
            busy = total = 0
            for sl in self._slices:
                t = _pad_axis(sl, 1, rows)
                g, r, cols = t.shape
                union = t.reshape(g, r // rows, rows, cols).any(axis=2)
                busy += int(np.count_nonzero(union))
                total += union.size
            self._cache[key] = busy / total if total else 0.0
        return self._cache[key]


def binomial_at_most(n: int, m: int, density: float) -> float:
    """P(at most n of m independent elements are non-zero) at non-zero probability `density`."""
    return 1.0 - binomial_more_than(n, m, density)


def binomial_more_than(n: int, m: int, density: float) -> float:
    """P(more than n of m independent elements are non-zero), accurate for tiny densities."""
    return float(sum(math.comb(m, j) * density**j * (1.0 - density) ** (m - j)
                     for j in range(n + 1, m + 1)))


@dataclass(frozen=True)
class RandomOperand:
    """Expected statistics when each element of A is non-zero independently with probability
    `density` (padding positions of a conv's A are zeros on top of that when `layer` is given)."""

    dims: GemmDims
    element_density: float
    in_bounds_fraction: float = 1.0

    @classmethod
    def for_layer(cls, layer: Layer, element_density: float) -> RandomOperand:
        dims = gemm_dims(layer)
        frac = in_bounds_elements(layer) / dims.a_elements if dims.a_elements else 1.0
        return cls(dims, element_density, frac)

    @property
    def density(self) -> float:
        return self.element_density * self.in_bounds_fraction

    def nm_conformance(self, n: int, m: int) -> float:
        """Expected share of conforming groups of a segment at the element density (padding is
        not counted, so it does not dilute it); a trailing partial group of w < m elements
        conforms with probability P(at most n of w)."""
        if not self.dims.nm_applicable(m):
            return math.nan
        full, rest = divmod(self.dims.slice_cols, m)
        ok = full * binomial_at_most(n, m, self.element_density)
        if rest:
            ok += binomial_at_most(n, rest, self.element_density)
        return ok / (full + (rest > 0))

    def nm_all_conform(self, n: int, m: int) -> bool:
        """True when fewer than half a group is expected to break the pattern in all of A
        (im2col groups, at the density padding dilutes: a heuristic of the statistical mode)."""
        if not self.dims.nm_applicable(m):
            return False
        groups = self.dims.groups * self.dims.M * math.ceil(self.dims.K / m)
        return groups * binomial_more_than(n, m, self.density) < 0.5

    def block_density(self, block_rows: int, block_cols: int) -> float:
        return 1.0 - (1.0 - self.density) ** (block_rows * block_cols)

    def union_density(self, rows: int) -> float:
        return 1.0 - (1.0 - self.density) ** rows


@dataclass(frozen=True)
class StructuredOperand:
    """Best case: zeros come in whole blocks, whole columns and N:M-conforming groups, so every
    kernel sees the element density itself (and N:M conforms whenever density <= n/m)."""

    dims: GemmDims
    element_density: float

    @property
    def density(self) -> float:
        return self.element_density

    def nm_conformance(self, n: int, m: int) -> float:
        if not self.dims.nm_applicable(m):
            return math.nan
        return 1.0 if self.element_density <= n / m else 0.0

    def nm_all_conform(self, n: int, m: int) -> bool:
        return self.dims.nm_applicable(m) and self.element_density <= n / m

    def block_density(self, block_rows: int, block_cols: int) -> float:
        return self.element_density

    def union_density(self, rows: int) -> float:
        return self.element_density


def operand_for(layer: Layer) -> Operand:
    """Measured statistics for a traced layer, else the independent-zeros expectation at the
    layer's declared density (the statistical mode)."""
    if layer.has_trace:
        return TraceOperand(layer)
    return RandomOperand.for_layer(layer, layer.act_density)


def compressed_fraction(n: int, m: int, metadata_bits: int, element_bits: int) -> float:
    """Bytes of an N:M-compressed operand relative to its dense bytes: n/m of the values plus
    `metadata_bits` per kept value (2:4 FP16: 0.5625, INT8: 0.625)."""
    return n / m * (1.0 + metadata_bits / element_bits)
