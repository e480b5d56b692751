"""Compressed operand formats of the zero-skipping engine and their exact sizes on a real bitmap.

A tensor is stored in C order, cut into segments of `segment_elements` (a brick, a row, a
column; the whole tensor when not given); each segment carries a `pointer_bits` pointer.

* `dense`: every element, no metadata.
* `bitmap`: the non-zero values, plus one presence bit per element.
* `rle`: (run, value) pairs, `run_bits` counting the zeros before each non-zero (Eyeriss v1
  RLE: 5-bit runs; EIE: 4-bit runs). A gap longer than 2**run_bits - 1 zeros costs filler
  pairs holding an explicit zero, one per 2**run_bits zeros. Trailing zeros of a segment need
  no pair (its length or pointer delimits it).
* `csr`: the non-zero values, each with an `index_bits` position within its segment
  (Cnvlutin's ZFNAf: 4-bit offsets within a 16-element brick), plus segment pointers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from accelsim.arch.schema import StrictModel
from accelsim.engines.zero_skip import bitmaps

MAX_FIELD_BITS = 64
"""Widest run, index or pointer field, bits."""
MAX_SEGMENT_ELEMENTS = 2**48
"""Longest segment, elements."""


class Format(StrictModel):
    """How one operand is stored; `levels` names the memory levels that hold it compressed
    (all levels when not given; a level not listed holds it dense)."""

    kind: Literal["dense", "bitmap", "rle", "csr"] = "dense"
    run_bits: int | None = Field(default=None, gt=0, le=MAX_FIELD_BITS)
    index_bits: int | None = Field(default=None, gt=0, le=MAX_FIELD_BITS)
    segment_elements: int | None = Field(default=None, gt=0, le=MAX_SEGMENT_ELEMENTS)
    pointer_bits: int = Field(default=0, ge=0, le=MAX_FIELD_BITS)
    levels: tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _complete(self) -> Format:
        if self.kind == "rle" and self.run_bits is None:
            raise ValueError("format 'rle' needs run_bits (e.g. 5 as in Eyeriss v1, 4 as in EIE)")
        if self.kind == "csr":
            if self.index_bits is None and self.segment_elements is None:
                raise ValueError("format 'csr' needs index_bits or segment_elements")
            if (self.index_bits is not None and self.segment_elements is not None
                    and 2 ** self.index_bits < self.segment_elements):
                raise ValueError(
                    f"format 'csr': index_bits={self.index_bits} cannot address a segment of "
                    f"{self.segment_elements} elements; use index_bits >= "
                    f"{math.ceil(math.log2(self.segment_elements))}"
                )
        if self.kind in ("dense", "bitmap") and (self.run_bits or self.index_bits):
            raise ValueError(f"format '{self.kind}' takes no run_bits or index_bits")
        return self

    @property
    def compressed(self) -> bool:
        return self.kind != "dense"

    def applies_to(self, level_name: str) -> bool:
        """True when memory level `level_name` holds the operand in this format."""
        return self.compressed and (self.levels is None or level_name in self.levels)


@dataclass(frozen=True)
class StoredSize:
    """Bits of one operand in a format: values (including RLE filler zeros) and metadata."""

    value_bits: int
    metadata_bits: int
    elements: int
    nonzeros: int

    @property
    def total_bytes(self) -> float:
        return (self.value_bits + self.metadata_bits) / 8

    @property
    def metadata_bytes(self) -> float:
        return self.metadata_bits / 8


def all_nonzero(nonzero: np.ndarray) -> bool:
    """True for the all-non-zero broadcast views that stand for dense operands (every stride 0,
    the one element True): their counts have closed forms, so they are never scanned."""
    return nonzero.size > 0 and not any(nonzero.strides) and bool(nonzero[(0,) * nonzero.ndim])


def _segments(size: int, fmt: Format) -> int:
    return 1 if fmt.segment_elements is None else -(-size // fmt.segment_elements)


def rle_entries(nonzero: np.ndarray, run_bits: int, segment_elements: int | None) -> int:
    """(run, value) pairs needed to encode the flattened bitmap (C order) with `run_bits`-bit
    runs, in segments of `segment_elements` (None: one segment)."""
    segment = -1 if segment_elements is None else segment_elements
    run_bits = min(run_bits, 62)
    return int(bitmaps.rle_pairs(c_order_bytes(nonzero), run_bits, segment))


def c_order_bytes(nonzero: np.ndarray) -> np.ndarray:
    """A boolean map's 0/1 bytes in its C order, 1-D (a view where it is C-contiguous; a
    transposed 2-D map is copied by `bitmaps.transposed_bytes`)."""
    squeezed = np.squeeze(nonzero)
    if squeezed.ndim == 2 and squeezed.flags.f_contiguous and not squeezed.flags.c_contiguous:
        out = np.empty(squeezed.shape, np.uint8)
        bitmaps.transposed_bytes(squeezed.T.view(np.uint8), out)
        return out.reshape(-1)
    return np.ascontiguousarray(nonzero).reshape(-1).view(np.uint8)


def stored_size(nonzero: np.ndarray, fmt: Format, value_bits: int) -> StoredSize:
    """Exact size of a tensor with non-zero map `nonzero` stored in `fmt`."""
    size = int(nonzero.size)
    dense = all_nonzero(nonzero)
    nnz = size if dense else int(np.count_nonzero(nonzero))
    pointers = _segments(size, fmt) * fmt.pointer_bits
    if fmt.kind == "dense":
        return StoredSize(size * value_bits, 0, size, nnz)
    if fmt.kind == "bitmap":
        return StoredSize(nnz * value_bits, size + pointers, size, nnz)
    if fmt.kind == "rle":
        # without zeros there are no runs to encode: one pair per value
        entries = size if dense else rle_entries(nonzero, fmt.run_bits, fmt.segment_elements)
        return StoredSize(entries * value_bits, entries * fmt.run_bits + pointers, size, nnz)
    index_bits = fmt.index_bits or math.ceil(math.log2(max(fmt.segment_elements, 2)))
    return StoredSize(nnz * value_bits, nnz * index_bits + pointers, size, nnz)
