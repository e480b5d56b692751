"""In-memory workload: layers with shapes, optional activation/weight arrays, and the layer graph."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from accelsim.errors import WorkloadError

if TYPE_CHECKING:  # networkx is imported where a graph is made (start-up)
    import networkx as nx

Op = Literal["linear", "conv2d", "matmul"]
OPS: tuple[str, ...] = ("linear", "conv2d", "matmul")

MAX_DIM = 2**31 - 1
"""Largest size of any one dimension of a layer (M, K, N, batch; N, C, H, W, K, an output
height or width), so that every index fits a 32-bit integer."""
MAX_KERNEL_TAPS = 2**16
"""Most taps R x S of one convolution kernel (the largest real kernels are 1-D ones of a few
hundred taps and 2-D ones of about 51 x 51)."""
MAX_STRIDE = 2**16
"""Largest stride or dilation of a convolution."""
MAX_TAPS_PER_INPUT = 2**16
"""Most window taps E x F x R x S per input position H x W of a convolution: a real layer
reads each input position about R x S / stride^2 times; far more means padding or dilation that
is mostly padding (each window tap costs work in the trace-driven engines)."""
MAX_MACS = 2**62
"""Most dense MACs of one layer, so that every count fits a signed 64-bit integer."""


@dataclass(frozen=True)
class GemmShape:
    """A (batched) matrix product: `batch` independent products of [M, K] x [K, N]."""

    M: int
    K: int
    N: int
    batch: int = 1

    @property
    def act_shape(self) -> tuple[int, ...]:
        """Layout of the input activation: [M, K], or [batch, M, K] when batch > 1."""
        return (self.M, self.K) if self.batch == 1 else (self.batch, self.M, self.K)

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """Layout of the second operand: [K, N], or [batch, K, N] when batch > 1."""
        return (self.K, self.N) if self.batch == 1 else (self.batch, self.K, self.N)

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the dense product."""
        return self.batch * self.M * self.K * self.N


@dataclass(frozen=True)
class ConvShape:
    """A 2-D convolution on an unpadded [N, C, H, W] input with K filters of C/groups x R x S.

    Padding is (top, bottom, left, right); its zeros are implicit and never stored.
    """

    N: int
    C: int
    H: int
    W: int
    K: int
    R: int
    S: int
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    @property
    def E(self) -> int:
        """Output height."""
        top, bottom, _, _ = self.padding
        span = self.dilation[0] * (self.R - 1) + 1
        return (self.H + top + bottom - span) // self.stride[0] + 1

    @property
    def F(self) -> int:
        """Output width."""
        _, _, left, right = self.padding
        span = self.dilation[1] * (self.S - 1) + 1
        return (self.W + left + right - span) // self.stride[1] + 1

    @property
    def act_shape(self) -> tuple[int, int, int, int]:
        return (self.N, self.C, self.H, self.W)

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        return (self.K, self.C // self.groups, self.R, self.S)

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the dense convolution (padding positions included)."""
        return self.N * self.K * self.E * self.F * (self.C // self.groups) * self.R * self.S


Shape = GemmShape | ConvShape


@dataclass
class Layer:
    """One layer of a workload.

    `act` holds float16 input activation values in the op's natural layout, or `act_mask`
    a boolean non-zero map of the same shape when values were not kept; a layer with
    neither is shapes-only and carries `declared_act_density` instead.
    """

    name: str
    op: Op
    shape: Shape
    act_bits: int = 16
    weight_bits: int = 16
    alias_of: str | None = None
    act: np.ndarray | None = None
    act_mask: np.ndarray | None = None
    weight: np.ndarray | None = None
    weight_mask: np.ndarray | None = None
    declared_act_density: float | None = None
    declared_weight_density: float | None = None
    extra: dict = field(default_factory=dict)

    @property
    def has_trace(self) -> bool:
        """True when the activation's non-zero pattern is known element by element."""
        return self.act is not None or self.act_mask is not None

    def nonzero(self) -> np.ndarray:
        """Boolean map of non-zero input activations, in the op's natural layout."""
        if self.act_mask is not None:
            return self.act_mask
        if self.act is not None:
            return self.act != 0
        raise WorkloadError(
            f"Layer '{self.name}' is shapes-only: it has no activation array, so its non-zero "
            "pattern is unknown. Use its declared act_density, or capture a trace with values."
        )

    def weight_nonzero(self) -> np.ndarray | None:
        """Boolean map of non-zero weights, or None when weights were not kept."""
        if self.weight_mask is not None:
            return self.weight_mask
        if self.weight is not None:
            return self.weight != 0
        return None

    @property
    def act_density(self) -> float:
        """Fraction of input activations that are non-zero (padding excluded)."""
        if self.has_trace:
            nz = self.nonzero()
            return float(np.count_nonzero(nz)) / nz.size
        return 1.0 if self.declared_act_density is None else self.declared_act_density

    @property
    def weight_density(self) -> float:
        """Fraction of weights that are non-zero (1.0 when unknown)."""
        wnz = self.weight_nonzero()
        if wnz is not None:
            return float(np.count_nonzero(wnz)) / wnz.size
        return 1.0 if self.declared_weight_density is None else self.declared_weight_density

    @property
    def macs(self) -> int:
        return self.shape.macs


@dataclass
class Workload:
    """An ordered list of layers from one model run, with the producer -> consumer graph."""

    model: str
    layers: list[Layer]
    edges: list[tuple[str, str]] = field(default_factory=list)
    source: dict = field(default_factory=dict)
    created: str = ""
    extra_meta: dict = field(default_factory=dict)
    content_hash: str = ""
    """SHA-256 (first 16 hex digits) of the file the workload was loaded from."""

    @property
    def graph(self) -> nx.DiGraph:
        import networkx as nx

        g = nx.DiGraph()
        for layer in self.layers:
            g.add_node(layer.name, op=layer.op)
        g.add_edges_from(self.edges)
        return g

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

