"""What-if activation sparsification of a captured trace: magnitude thresholds, TEAL, CATS,
top-k per token, N:M and per-channel cut-offs.

Each method zeroes input activation values of the selected layers and returns a new workload
whose `extra_meta["transforms"]` list gains one record (saved in the trace's `__meta__`): the
method, its parameters, and per layer the densities and errors of the report (below).
Rows, channels and the reduction axis are those of the 2-D reduction view
(`accelsim.workload.reduction`): tokens or input pixels x the vector a layer reduces over.

* `threshold`, `target=s`: zero the `round(s * n)` smallest |x| of each layer's tensor: one
  magnitude cut-off per tensor, calibrated on the trace itself, the same share s in every
  tensor (the uniform allocation that `teal` improves on).
* `threshold`, `target=s, scope="model"`: a single model-wide cut-off, calibrated over all
  selected layers together so that the share of zeros over all their elements is s, on |x|
  divided by each layer's RMS (`normalize="rms"`, the default, since layer scales differ by
  orders of magnitude) or on raw |x| (`normalize="none"`). Each layer ends at the share its
  normalised magnitudes put under the cut-off, whatever zeroing them costs: this is not TEAL's
  allocation, which is `teal`.
* `threshold`, `threshold=t`: zero every |x| <= t (a fixed threshold, absolute units).
* `teal`, `target=s, step=d`: TEAL (Liu et al., "Training-Free Activation Sparsity in Large
  Language Models", ICLR 2025, arXiv 2408.14690): magnitude thresholds on the input of every
  weight matrix, with the sparsity of each input chosen by a greedy search for a model-level
  target. Here:

  - *Tensors*: the inputs of the selected `linear` and `conv2d` layers; `matmul` layers
    (activation x activation, no weight rows to skip) are left out with a note. An input read
    by several layers (Q/K/V, `alias_of`) is one tensor with one cut-off. TEAL sparsifies the
    projections of the transformer blocks, not the LM head: pick those with `layers` (e.g.
    `model.layers.*`), since a large-vocabulary head can hold most of a small model's MACs.
  - *Target*: MAC-weighted, `sum_t s_t * MACs_t / sum_t MACs_t` over the tensors taking part,
    where `MACs_t` are the dense MACs of the weight layers reading tensor t and `s_t` its share
    of zeros. A zero in a linear layer's input skips one weight row (N MACs per token), so
    where the layers see the same tokens, as every linear layer of a transformer does, this is
    the share of weight rows not read in a decode step: TEAL's parameter-weighted model-wide
    sparsity. For a convolution it weighs an element by the layer's mean fan-out. The plain
    share of zeroed elements is `sparsity_after`, as for every method.
  - *Cost*: `E_t`, the sum over the layers reading tensor t of their squared relative error:
    the output error ||X W - X~ W|| / ||X W|| where the trace holds the layer's weights, else
    the input error ||X - X~|| / ||X|| (the record says which, per layer). TEAL scores a step
    by the error of a whole transformer block's output; a trace holds each layer on its own,
    so each layer's output error stands in for it, squared since independent perturbations of
    the layers add in power.
  - *Greedy step*: every tensor starts at its own zeros. A step zeroes a further
    `max(1, round(d * n_t))` smallest-|x| elements of one tensor (`d` = 0.05 by default, the
    base step of TEAL's search); the step taken is the one whose increase of `E_t` per unit
    of MAC-weighted model sparsity gained is smallest (ties: the earlier tensor). TEAL sizes
    its steps so that each adds the same block sparsity and takes the smallest error; dividing
    by the gain is that rule for steps of unequal gain.
  - *Stop*: the step that would reach the target is cut short to the element count that puts
    the MAC-weighted share nearest the target (within half an element's MAC weight), so the
    target is met within one greedy step. A selection already at or above it is unchanged.

  Within a tensor the zeros are its smallest |x|, as for `threshold`. The record carries
  `allocation` (per tensor: sparsity before and after, MAC share, steps taken and each reading
  layer's error criterion), `greedy_steps`, `mac_weighted_sparsity_before`/`_after` and
  `objective_after` (the sum of `E_t`; None where a layer's output is all zero but its
  change is not, so no relative error exists).
* `cats`, `target=s, glu=(GATE, UP, DOWN)`: CATS (Lee et al., "CATS: Contextually-Aware
  Thresholding for Sparsity in Large Language Models", 2024, arXiv 2404.08763) for gated MLPs
  `down(act(gate(x)) * up(x))`: the down projection's input is zeroed where the gate's
  activation |act(gate(x))| is below a per-MLP cut-off, the s-quantile of |act(gate(x))|, so
  that share s of that input is zero. Here each down projection's `round(s * n)` entries of
  smallest gate magnitude are zeroed.

  - *Blocks by name*: a layer `<P>.down_proj` (optionally with a call suffix `@k`) whose
    siblings `<P>.gate_proj` and `<P>.up_proj` (same prefix and suffix) exist is one GLU MLP
    (Llama, Mistral, Gemma and Qwen naming); `glu` names the three last components otherwise,
    e.g. `("wi_0", "wi_1", "wo")` for T5 v1.1. `layers` patterns pick down projections.
  - *Gate magnitude*: the trace holds the down projection's input d = act(gate(x)) * up(x);
    with the up projection's weights in the trace (`capture --with-weights`), u = up(x) is
    recomputed from the up projection's traced input (no bias, as in those families: the trace
    records none), so |act(gate(x))| = |d| / |u| without knowing act. Where u = 0 the product
    is zero whatever the gate: d is zero there already and counts as a zero. Where u computes
    to 0 but d does not (float16 rounding in the trace) the gate is unknown and the entry is
    kept (noted). d is stored in float16, so the recovered gate is good to about 2^-11
    relative (less where d is subnormal); entries that close to the cut-off may land on
    either side of it.
  - Only the down projection's input changes: CATS' kernel also skips the matching columns of
    the up projection, which is output sparsity, not carried by the trace format.

  The report's `threshold` is the largest |act(gate(x))| zeroed; the record's `glu_blocks`
  gives, per down projection, its gate and up layers, that cut-off and how many u were zero.
* `topk`, `k=K` or `keep_fraction=f`: keep the K (or round(f * row length)) largest |x| of
  every row. For linear and matmul layers a row is one token, so this is the top-k activation
  per token of the Lazy Neuron study and its Top-k Transformer (Li et al., "The Lazy Neuron
  Phenomenon: On Emergence of Activation Sparsity in Transformers", ICLR 2023, arXiv
  2210.06313), which keeps each token's k largest MLP activations (ReLU outputs, so largest
  value and largest magnitude agree; signed activations are ranked by magnitude here). For a
  conv2d a row is one input pixel's C channels.
* `nm`, `n=N, m=M`: keep the N largest |x| of every group of M consecutive row elements
  (groups start at column 0; a trailing partial group keeps its N largest).
* `channel`, `target=s`: per-channel thresholds (CHESS, Zhang et al. 2024): in every
  channel (column) the share s of smallest |x| is zeroed; counts are rounded per channel
  with largest remainders so the layer also holds exactly round(s * n) zeros.

Ties: when equal magnitudes straddle the cut, the element in the lower position (row-major
order of the reduction view) is kept, so counts are exact. Elements already zero count towards
a target: a layer (for `channel`, a channel) already sparser than the target is left
unchanged, so a ReLU layer with unevenly sparse channels ends sparser than the target under
`channel`. Aliased layers (Q/K/V reading one tensor) share one transformed tensor; selecting
any of them transforms the shared tensor, which every alias reads. Layers without values
(mask-only or shapes-only) cannot be ranked by magnitude: they are skipped and listed when no
`layers` patterns are given, and refused when a pattern names them.

The report's `threshold` is the largest |x| zeroed in the layer (the fixed cut-off for a fixed
threshold; for `channel` the largest of the per-channel cut-offs; for `cats` the gate
magnitude; NaN for `topk` and `nm`, whose cut-off differs per row or group).

When the trace holds a layer's weights, the relative output error
||X W - X~ W|| / ||X W|| is reported (`rel_output_error`, see
`accelsim.workload.output_error`), next to the relative input change ||X - X~|| / ||X||
(`rel_act_error`, always reported); without weights `rel_output_error` is NaN.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
import fnmatch
import math
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import pandas as pd

from accelsim import __version__
from accelsim.errors import AccelsimError
from accelsim.workload.kernels import keep_largest_mask
from accelsim.workload.layer import Layer, Workload
from accelsim.workload.output_error import output_norm, relative_output_error
from accelsim.workload.reduction import from_reduction_view, reduction_view

METHODS: tuple[str, ...] = ("threshold", "topk", "nm", "channel", "teal", "cats")
Method = Literal["threshold", "topk", "nm", "channel", "teal", "cats"]
REPORT_COLUMNS = [
    "layer", "op", "alias_of", "density_before", "density_after", "threshold",
    "rel_act_error", "rel_output_error",
]
WEIGHT_OPS: tuple[str, ...] = ("linear", "conv2d")
"""Ops whose second operand is a weight: the layers whose inputs `teal` thresholds."""
TEAL_STEP = 0.05
"""Default greedy step of `teal`: the share of a tensor's elements one step zeroes."""
GLU_NAMES: tuple[str, str, str] = ("gate_proj", "up_proj", "down_proj")
"""Default last name components of a GLU MLP's gate, up and down projections (`cats`)."""


class SparsifyError(AccelsimError):
    """Bad parameters for a what-if transform, or layers it cannot transform."""


@dataclasses.dataclass
class SparsifyResult:
    """The transformed workload, a per-layer report, and the record added to its metadata."""

    workload: Workload
    report: pd.DataFrame
    record: dict
    notes: list[str]


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def _flag(name: str) -> str:
    """A parameter as the Python keyword and the CLI flag, e.g. keep_fraction (--keep-fraction)."""
    return f"{name} (--{name.replace('_', '-')})"


def _check_fraction(name: str, value: float | None) -> None:
    if value is not None and not (0.0 <= value <= 1.0):
        raise SparsifyError(f"{name} must be a fraction in [0, 1], got {value!r}.")


def _validate(method: str, p: dict) -> dict:
    """Check that the method's parameters are given, in range, and not mixed with others'."""
    if method not in METHODS:
        raise SparsifyError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}.")
    allowed = {
        "threshold": {"target", "threshold", "scope", "normalize"},
        "topk": {"k", "keep_fraction"},
        "nm": {"n", "m"},
        "channel": {"target"},
        "teal": {"target", "step"},
        "cats": {"target", "glu"},
    }[method]
    stray = sorted(k for k, v in p.items() if v is not None and k not in allowed)
    if stray:
        raise SparsifyError(
            f"method '{method}' does not take {', '.join(_flag(k) for k in stray)}; it takes "
            f"{', '.join(_flag(k) for k in sorted(allowed))}."
        )
    _check_fraction("target", p["target"])
    _check_fraction("keep_fraction", p["keep_fraction"])
    if method == "threshold":
        if (p["target"] is None) == (p["threshold"] is None):
            raise SparsifyError(
                "method 'threshold' needs exactly one of target (--target, a sparsity to "
                "calibrate a threshold for, e.g. 0.5) or threshold (--threshold, a fixed |x| "
                "cut-off)."
            )
        if p["threshold"] is not None and not p["threshold"] >= 0:
            raise SparsifyError(f"threshold must be >= 0, got {p['threshold']!r}.")
        if p["scope"] not in (None, "layer", "model"):
            raise SparsifyError(f"scope must be 'layer' or 'model', got {p['scope']!r}.")
        if p["normalize"] not in (None, "rms", "none"):
            raise SparsifyError(f"normalize must be 'rms' or 'none', got {p['normalize']!r}.")
        if p["threshold"] is not None and (p["scope"] or p["normalize"]):
            raise SparsifyError(
                "scope and normalize only apply to a calibrated target; a fixed threshold "
                "is the same cut-off for every selected layer."
            )
        if p["normalize"] and p["scope"] != "model":
            raise SparsifyError("normalize only applies with scope 'model'.")
    elif method == "topk":
        if (p["k"] is None) == (p["keep_fraction"] is None):
            raise SparsifyError(
                "method 'topk' needs exactly one of k (--k, values kept per row) or "
                "keep_fraction (--keep-fraction, share of each row kept)."
            )
        if p["k"] is not None and (isinstance(p["k"], bool) or int(p["k"]) != p["k"] or p["k"] < 0):
            raise SparsifyError(f"k must be an integer >= 0, got {p['k']!r}.")
    elif method == "nm":
        n, m = p["n"], p["m"]
        if n is None or m is None:
            raise SparsifyError("method 'nm' needs both n and m, e.g. --n 2 --m 4 for 2:4.")
        if int(n) != n or int(m) != m or not (1 <= n <= m):
            raise SparsifyError(f"n:m must be integers with 1 <= n <= m, got {n}:{m}.")
    elif p["target"] is None:
        what = {
            "channel": "the share of each channel to zero",
            "teal": "the MAC-weighted share of zeros to reach over the selected layers, e.g. 0.5",
            "cats": "the share of each down projection's input to zero, e.g. 0.5",
        }[method]
        raise SparsifyError(f"method '{method}' needs target (--target), {what}.")
    if method == "teal" and p["step"] is not None and not (0.0 < p["step"] <= 1.0):
        raise SparsifyError(
            f"step (--step) is the share of a tensor's elements one greedy step zeroes and "
            f"must be in (0, 1], got {p['step']!r}; the default is {TEAL_STEP}."
        )
    if method == "cats" and p["glu"] is not None:
        names = list(p["glu"])
        if (len(names) != 3 or len(set(names)) != 3
                or not all(isinstance(s, str) and s for s in names)):
            raise SparsifyError(
                f"glu (--glu) takes three different names, the last components of the gate, "
                f"up and down projections (default {' '.join(GLU_NAMES)}), got {names!r}."
            )
    params = {k: v for k, v in p.items() if v is not None and k != "layers"}
    if method == "threshold" and p["target"] is not None:
        params.setdefault("scope", "layer")
        if params["scope"] == "model":
            params.setdefault("normalize", "rms")
    if method == "teal":
        params.setdefault("step", TEAL_STEP)
    if method == "cats":
        params["glu"] = list(params.get("glu", GLU_NAMES))
    return params


def _without_values(name: str, owner: Layer, patterns: Sequence[str] | None, needs: str) -> str:
    """The note for layer `name`, whose input (stored on `owner`) has no values: refused with
    `SparsifyError` when the user named layers (`patterns`), else the 'skipped' note."""
    what = "only a non-zero mask" if owner.act_mask is not None else "no activation array"
    if patterns:
        raise SparsifyError(f"layer '{name}' has {what}; {needs}. Re-capture it with --keep "
                            "values, or leave it out of --layers.")
    return f"skipped '{name}': it has {what}."


def _select(workload: Workload, patterns: Sequence[str] | None,
            ops: tuple[str, ...] | None = None) -> tuple[list[Layer], list[str]]:
    """Owners of the tensors to transform (alias targets), and notes on what was added.

    With `ops`, layers of other ops are left out of the selection (with a note)."""
    names = [layer.name for layer in workload.layers]
    if patterns:
        picked = []
        for pattern in patterns:
            hits = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
            if not hits:
                raise SparsifyError(
                    f"layer pattern {pattern!r} matches no layer. Layers: "
                    f"{', '.join(names[:12])}{' ...' if len(names) > 12 else ''}."
                )
            picked.extend(hits)
        picked_set = set(picked)
    else:
        picked_set = set(names)
    notes = []
    if ops is not None:
        other = [layer.name for layer in workload.layers
                 if layer.name in picked_set and layer.op not in ops]
        picked_set -= set(other)
        if not picked_set:
            raise SparsifyError(
                f"no selected layer is a {' or '.join(ops)} layer; this method thresholds the "
                "inputs of weight layers only. Select some with --layers."
            )
        if other:
            notes.append(f"left out {len(other)} layer(s) of another op (activation x "
                         f"activation, no weight rows to skip): {', '.join(other[:4])}"
                         f"{' ...' if len(other) > 4 else ''}.")
    owners: list[str] = []
    for layer in workload.layers:
        if layer.name not in picked_set:
            continue
        owner = layer.alias_of or layer.name
        if owner not in picked_set:
            notes.append(f"'{layer.name}' reads the same tensor as '{owner}'; the shared tensor "
                         f"is transformed, so '{owner}' changes too.")
        if owner not in owners:
            owners.append(owner)
    order = {n: i for i, n in enumerate(names)}
    owner_layers = [workload.layer(n) for n in sorted(owners, key=order.__getitem__)]
    usable = []
    for layer in owner_layers:
        if layer.act is not None:
            usable.append(layer)
            continue
        notes.append(_without_values(layer.name, layer, patterns,
                                     "magnitude-based transforms need values"))
    if not usable:
        raise SparsifyError(
            "no selected layer holds activation values; capture the trace with --keep values."
        )
    return usable, notes


def _largest_remainder_zeros(rows: int, cols: int, target: float) -> np.ndarray:
    """Zeros per channel: round(target * rows * cols) in all, each within one of target * rows."""
    total = _round_half_up(target * rows * cols)
    base = min(rows, int(math.floor(target * rows)))
    zeros = np.full(cols, base, dtype=np.int64)
    extra = min(cols, max(0, total - base * cols))
    zeros[:extra] += 1
    return np.minimum(zeros, rows)


def _keep_all_but_smallest(magnitudes: np.ndarray, zeros: int) -> np.ndarray:
    """Keep mask (same shape) that zeroes the `zeros` smallest of `magnitudes` in row-major
    order, ties keeping the lower position."""
    flat = np.ascontiguousarray(magnitudes).reshape(1, -1)
    n = flat.shape[1]
    return keep_largest_mask(flat, n, np.array([n - zeros], np.int64))[0].reshape(magnitudes.shape)


def _keep_masks(owners: list[Layer], method: str, params: dict) -> tuple[list[np.ndarray], dict]:
    """Keep masks in each owner's reduction view, plus calibration facts for the record."""
    views = [np.abs(reduction_view(layer.act, layer.shape).astype(np.float64)) for layer in owners]
    calibration: dict = {}
    masks = []
    if method == "threshold" and "threshold" in params:
        masks = [a > params["threshold"] for a in views]
    elif method == "threshold" and params["scope"] == "model":
        scales = []
        for a in views:
            rms = math.sqrt(float(np.mean(a * a))) if params["normalize"] == "rms" else 1.0
            scales.append(rms if rms > 0 else 1.0)
        flat = np.concatenate([(a / s).ravel() for a, s in zip(views, scales)])
        keep = _keep_all_but_smallest(flat, _round_half_up(params["target"] * flat.size))
        dropped = flat[~keep]
        calibration["normalized_threshold"] = float(dropped.max()) if dropped.size else 0.0
        start = 0
        for a in views:
            masks.append(keep[start:start + a.size].reshape(a.shape))
            start += a.size
    elif method == "threshold":
        for a in views:
            masks.append(_keep_all_but_smallest(a, _round_half_up(params["target"] * a.size)))
    elif method == "topk":
        for a in views:
            rows, length = a.shape
            k = params["k"] if "k" in params else _round_half_up(params["keep_fraction"] * length)
            masks.append(keep_largest_mask(a, length, np.full(rows, k, np.int64)))
    elif method == "nm":
        for a in views:
            masks.append(keep_largest_mask(a, params["m"], np.full(a.shape[0], params["n"], np.int64)))
    else:
        for a in views:
            rows, cols = a.shape
            zeros = _largest_remainder_zeros(rows, cols, params["target"])
            by_channel = np.ascontiguousarray(a.T)
            masks.append(np.ascontiguousarray(keep_largest_mask(by_channel, rows, rows - zeros).T))
    return masks, calibration


# --- teal: greedy per-tensor allocation to a MAC-weighted model target --------------------

def greedy_allocation(
    sizes: Sequence[int], zeros: Sequence[int], macs: Sequence[float],
    cost: Callable[[int, int], float], target: float, step: float,
) -> tuple[list[int], list[int], list[float]]:
    """TEAL's greedy search (module docstring) on abstract tensors: zeros per tensor, greedy
    steps taken per tensor and the cost of each tensor at its final zeros.

    Tensor i has `sizes[i]` elements, starts at `zeros[i]` zeros and weighs `macs[i]` in the
    MAC-weighted sparsity `sum_i zeros_i / sizes_i * macs_i / sum_i macs_i`; `cost(i, z)` is
    its cost E_i with its z smallest-magnitude elements zeroed. A step adds
    `max(1, round(step * sizes[i]))` zeros to the tensor whose cost rises least per unit of
    MAC-weighted zeros added (ties: the lower index); the step that reaches `target` is cut to
    the count that puts the sparsity nearest it, and the search stops there (or when every
    tensor is all zero).
    """
    count = len(sizes)
    z = list(zeros)
    taken = [0] * count
    costs = [cost(i, z[i]) for i in range(count)]
    per_element = [macs[i] / sizes[i] for i in range(count)]
    total = float(sum(macs))
    goal, slack = target * total, 1e-12 * total

    def reached() -> float:
        return sum(z[i] * per_element[i] for i in range(count))

    def candidate(i: int) -> tuple[int, float]:
        more = min(sizes[i], z[i] + max(1, _round_half_up(step * sizes[i])))
        return more, cost(i, more)

    def rate(i: int) -> float:
        """Rise of tensor i's cost per unit of MAC-weighted zeros its next step adds."""
        more, new_cost = next_step[i]
        if math.isinf(new_cost):
            return math.inf
        return (new_cost - costs[i]) / ((more - z[i]) * per_element[i])

    next_step = {i: candidate(i) for i in range(count) if z[i] < sizes[i]}
    while next_step and reached() < goal - slack:
        best = min(next_step, key=lambda i: (rate(i), i))
        more, new_cost = next_step.pop(best)
        need = goal - reached()
        last = (more - z[best]) * per_element[best] >= need - slack
        if last:
            more = z[best] + min(more - z[best], _round_half_up(need / per_element[best]))
            new_cost = cost(best, more)
        if more > z[best]:
            taken[best] += 1
        z[best], costs[best] = more, new_cost
        if last:
            break
        if z[best] < sizes[best]:
            next_step[best] = candidate(best)
    return z, taken, costs


@dataclasses.dataclass
class _TealTensor:
    """One tensor taking part in `teal`: its values and the weight layers reading it."""

    owner: Layer
    view: np.ndarray
    """Values in the owner's reduction view, float64."""
    readers: list[Layer]
    """The weight layers (linear, conv2d) that read this tensor: the owner and its aliases."""
    reference_norms: list[float | None]
    """Per reader, ||f(X)|| of its output (the output error's denominator), or None where the
    reader has no weights in the trace and the input error ||X - X~|| / ||X|| is used."""

    @property
    def macs(self) -> int:
        """Dense MACs of the readers: the tensor's weight in the MAC-weighted sparsity."""
        return sum(r.macs for r in self.readers)

    def cost(self, zeros: int) -> float:
        """E_t with the `zeros` smallest |x| zeroed: the sum over readers of the squared
        relative error (inf where a reader's reference output is all zero but its change
        is not)."""
        keep = _keep_all_but_smallest(np.abs(self.view), zeros)
        dropped = np.where(keep, 0.0, self.view)
        if not dropped.any():
            return 0.0
        delta = from_reduction_view(dropped, self.owner.shape)
        total = 0.0
        for reader, ref in zip(self.readers, self.reference_norms):
            if ref is None:
                num, den = _norm(dropped), _norm(self.view)
            else:
                num, den = output_norm(reader.shape, delta, reader.weight), ref
            if num == 0.0:
                continue
            if den == 0.0:
                return math.inf
            total += (num / den) ** 2
        return total


def _teal_masks(workload: Workload, owners: list[Layer],
                params: dict) -> tuple[list[np.ndarray], dict, list[str]]:
    """Greedy allocation (module docstring) and the resulting keep masks per owner."""
    tensors = []
    for owner in owners:
        readers = [layer for layer in workload.layers if layer.op in WEIGHT_OPS
                   and (layer.alias_of or layer.name) == owner.name]
        act = np.asarray(owner.act, np.float64)
        tensors.append(_TealTensor(
            owner=owner, view=reduction_view(act, owner.shape), readers=readers,
            reference_norms=[None if r.weight is None else output_norm(r.shape, act, r.weight)
                             for r in readers],
        ))
    sizes = [t.view.size for t in tensors]
    before = [t.view.size - int(np.count_nonzero(t.view)) for t in tensors]
    macs = [float(t.macs) for t in tensors]
    zeros, taken, costs = greedy_allocation(
        sizes, before, macs, lambda i, z: tensors[i].cost(z), params["target"], params["step"])
    total = sum(macs)

    def weighted(counts: list[int]) -> float:
        return sum(c / size * w for c, size, w in zip(counts, sizes, macs)) / total

    notes = []
    if zeros == before:
        notes.append(f"the selection is already {weighted(before):.4f} sparse (MAC-weighted), "
                     f"at the target {params['target']} or above it; nothing was zeroed.")
    masks = [_keep_all_but_smallest(np.abs(t.view), z) for t, z in zip(tensors, zeros)]
    calibration = {
        "mac_weighted_sparsity_before": weighted(before),
        "mac_weighted_sparsity_after": weighted(zeros),
        "greedy_steps": sum(taken),
        "objective_after": _json_number(float(sum(costs))),
        "allocation": {
            t.owner.name: {
                "sparsity_before": b / size, "sparsity": z / size, "mac_share": w / total,
                "steps": s,
                "criterion": {r.name: "rel_act_error" if ref is None else "rel_output_error"
                              for r, ref in zip(t.readers, t.reference_norms)},
            }
            for t, b, z, size, w, s in zip(tensors, before, zeros, sizes, macs, taken)
        },
    }
    return masks, calibration, notes


# --- cats: gate-activation thresholds for the down projections of GLU MLPs -----------------

def _split_call(name: str) -> tuple[str, str]:
    """A layer name and its call suffix: 'mlp.down_proj@2' -> ('mlp.down_proj', '@2')."""
    base, at, call = name.rpartition("@")
    if at and base and call.isdigit():
        return base, at + call
    return name, ""


@dataclasses.dataclass
class _GluBlock:
    """One GLU MLP taking part in `cats`."""

    gate: Layer
    up: Layer
    up_input: np.ndarray
    """The up projection's input x (its own or, for an alias, the shared tensor's values)."""
    down: Layer
    """The owner of the down projection's input tensor (the down projection unless aliased)."""


def _glu_blocks(workload: Workload, names: Sequence[str], patterns: Sequence[str] | None
                ) -> tuple[list[_GluBlock], list[str]]:
    """The GLU MLPs taking part (module docstring), and notes."""
    gate_name, up_name, down_name = names
    by_name = {layer.name: layer for layer in workload.layers}
    found, notes = [], []
    for layer in workload.layers:
        base, call = _split_call(layer.name)
        if base != down_name and not base.endswith("." + down_name):
            continue
        stem = base[: len(base) - len(down_name)]
        gate, up = by_name.get(stem + gate_name + call), by_name.get(stem + up_name + call)
        if gate is None or up is None:
            notes.append(f"'{layer.name}' has no '{stem + gate_name + call}' and "
                         f"'{stem + up_name + call}' beside it; left unchanged.")
            continue
        found.append((gate, up, layer))
    if not found:
        shown = ", ".join(layer.name for layer in workload.layers[:6])
        raise SparsifyError(
            f"method 'cats' found no GLU MLP: it looks for layers named <prefix>.{down_name} "
            f"with <prefix>.{gate_name} and <prefix>.{up_name} beside them (the Llama, Gemma "
            f"and Mistral naming). Name yours with --glu GATE UP DOWN, e.g. --glu wi_0 wi_1 wo "
            f"for T5. Layers: {shown}{' ...' if len(workload.layers) > 6 else ''}."
        )
    if patterns:
        downs = ", ".join(down.name for _, _, down in found[:6])
        for pattern in patterns:
            if not any(fnmatch.fnmatchcase(down.name, pattern) for _, _, down in found):
                raise SparsifyError(
                    f"layer pattern {pattern!r} matches no GLU down projection; 'cats' "
                    f"transforms down projections only. Down projections: {downs}"
                    f"{' ...' if len(found) > 6 else ''}."
                )
        found = [b for b in found if any(fnmatch.fnmatchcase(b[2].name, p) for p in patterns)]
    blocks = []
    for gate, up, down in found:
        for layer in (gate, up, down):
            if layer.op != "linear":
                raise SparsifyError(
                    f"layer '{layer.name}' is a {layer.op}, but a GLU MLP's projections are "
                    "linear layers; name the right ones with --glu GATE UP DOWN."
                )
        if (down.shape.M, down.shape.K) != (up.shape.M, up.shape.N):
            raise SparsifyError(
                f"'{down.name}' reads [{down.shape.M}, {down.shape.K}] but '{up.name}' makes "
                f"[{up.shape.M}, {up.shape.N}]: they are not one GLU MLP's up and down "
                "projections; name the right ones with --glu GATE UP DOWN."
            )
        owner = workload.layer(down.alias_of or down.name)
        if owner.act is None:
            notes.append(_without_values(down.name, owner, patterns,
                                         "'cats' needs its input values"))
            continue
        up_input = workload.layer(up.alias_of or up.name).act
        if up.weight is None or up_input is None:
            missing = "weights" if up.weight is None else "input values"
            raise SparsifyError(
                f"'cats' recovers |act(gate(x))| of '{down.name}' as |input| / |up(x)|, which "
                f"needs the {missing} of '{up.name}', and the trace has none: re-capture it with "
                f"{'--with-weights' if up.weight is None else '--keep values'} (`accelsim "
                f"capture <recipe> --with-weights`, or `accelsim.capture(model, inputs, "
                f"with_weights=True)`)."
            )
        blocks.append(_GluBlock(gate=gate, up=up, up_input=up_input, down=owner))
    if not blocks:
        raise SparsifyError(
            "no GLU down projection holds activation values; capture the trace with --keep values."
        )
    return blocks, notes


def _gate_magnitude(down_input: np.ndarray, up_output: np.ndarray) -> np.ndarray:
    """|act(gate(x))| recovered as |d| / |u| from the down projection's input d and the up
    projection's output u (same shape): 0 where d = 0, inf where u = 0 but d != 0 (unknown)."""
    d = np.abs(np.asarray(down_input, np.float64))
    u = np.abs(np.asarray(up_output, np.float64))
    gate = np.full(d.shape, np.inf)
    np.divide(d, u, out=gate, where=u != 0)
    gate[d == 0] = 0.0
    return gate


def _cats_masks(blocks: list[_GluBlock], params: dict
                ) -> tuple[list[np.ndarray], dict, dict[str, float], list[str]]:
    """Keep masks per down projection, the record's `glu_blocks`, the gate cut-off per owner
    and notes."""
    masks, record, cuts, notes = [], {}, {}, []
    for block in blocks:
        up, owner = block.up, block.down
        up_out = np.asarray(block.up_input, np.float64).reshape(-1, up.shape.K) @ np.asarray(
            up.weight, np.float64)
        d = reduction_view(owner.act, owner.shape)
        g = _gate_magnitude(d, up_out.reshape(d.shape))
        zeros = max(d.size - int(np.count_nonzero(d)), _round_half_up(params["target"] * d.size))
        keep = _keep_all_but_smallest(g, zeros)
        dropped = g[(d != 0) & ~keep]
        cuts[owner.name] = float(dropped.max()) if dropped.size else 0.0
        unknown = int(np.count_nonzero((up_out.reshape(d.shape) == 0) & (d != 0)))
        if unknown:
            notes.append(f"'{owner.name}': {unknown} entries have up(x) = 0 but a non-zero input "
                         "(float16 rounding); their gate is unknown, so they were kept.")
        record[owner.name] = {
            "gate": block.gate.name, "up": up.name,
            "gate_threshold": _json_number(cuts[owner.name]),
            "up_zero": int(np.count_nonzero(up_out == 0)),
        }
        masks.append(keep)
    return masks, {"glu_blocks": record}, cuts, notes


def _norm(a: np.ndarray) -> float:
    """Frobenius norm in float64."""
    a = np.asarray(a, np.float64)
    return math.sqrt(float(np.sum(a * a)))


def _norm_ratio(delta: np.ndarray, ref: np.ndarray) -> float | None:
    den, num = _norm(ref), _norm(delta)
    if den == 0.0:
        return None if num > 0.0 else 0.0
    return num / den


def sparsify(
    workload: Workload,
    method: Method,
    *,
    target: float | None = None,
    threshold: float | None = None,
    scope: Literal["layer", "model"] | None = None,
    normalize: Literal["rms", "none"] | None = None,
    k: int | None = None,
    keep_fraction: float | None = None,
    n: int | None = None,
    m: int | None = None,
    step: float | None = None,
    glu: Sequence[str] | None = None,
    layers: Sequence[str] | None = None,
    output_error: bool = True,
    on_layer: Callable[[str], None] | None = None,
) -> SparsifyResult:
    """Apply one what-if transform (see module docstring) and return the new workload.

    `layers` are glob patterns on layer names (all layers when None; for `cats`, on down
    projection names). `step` is `teal`'s greedy step, `glu` the (gate, up, down) name
    components of `cats`. `output_error=False` skips the ||XW - X~W|| / ||XW|| computation of
    the report (`teal` still computes the errors its allocation needs). The input workload is
    not modified.
    """
    params = _validate(method, {
        "target": target, "threshold": threshold, "scope": scope, "normalize": normalize,
        "k": k, "keep_fraction": keep_fraction, "n": n, "m": m, "step": step, "glu": glu,
    })
    cuts: dict[str, float] = {}
    if method == "cats":
        blocks, notes = _glu_blocks(workload, params["glu"], layers)
        owners = [block.down for block in blocks]
        masks, calibration, cuts, more = _cats_masks(blocks, params)
        notes += more
    elif method == "teal":
        owners, notes = _select(workload, layers, WEIGHT_OPS)
        masks, calibration, more = _teal_masks(workload, owners, params)
        notes += more
    else:
        owners, notes = _select(workload, layers)
        masks, calibration = _keep_masks(owners, method, params)
    new_act: dict[str, np.ndarray] = {}
    for layer, keep in zip(owners, masks):
        view = reduction_view(layer.act, layer.shape)
        new_act[layer.name] = from_reduction_view(np.where(keep, view, np.float16(0)), layer.shape)

    new_layers = []
    rows = []
    for layer in workload.layers:
        owner = layer.alias_of or layer.name
        if owner not in new_act:
            new_layers.append(dataclasses.replace(layer, extra=copy.deepcopy(layer.extra)))
            continue
        before, after = workload.layer(owner).act, new_act[owner]
        changed = dataclasses.replace(layer, act=after, act_mask=None,
                                      extra=copy.deepcopy(layer.extra))
        new_layers.append(changed)
        dropped = np.abs(before[(before != 0) & (after == 0)].astype(np.float64))
        if method == "threshold" and "threshold" in params:
            cut: float | None = params["threshold"]
        elif method == "cats":
            cut = cuts[owner]
        elif method in ("threshold", "channel", "teal"):
            cut = float(dropped.max()) if dropped.size else 0.0
        else:
            cut = None
        err = None
        if output_error and layer.weight is not None:
            err = relative_output_error(layer.shape, before, after, layer.weight)
        rows.append({
            "layer": layer.name, "op": layer.op, "alias_of": layer.alias_of or "",
            "density_before": float(np.count_nonzero(before)) / before.size,
            "density_after": float(np.count_nonzero(after)) / after.size,
            "threshold": np.nan if cut is None else cut,
            "rel_act_error": _nan_if_none(_norm_ratio(before.astype(np.float64) - after, before)),
            "rel_output_error": _nan_if_none(err),
        })
        if on_layer is not None:
            on_layer(layer.name)

    report = pd.DataFrame(rows, columns=REPORT_COLUMNS)
    elements = sum(new_act[o.name].size for o in owners)
    zeros_before = sum(o.act.size - int(np.count_nonzero(o.act)) for o in owners)
    zeros_after = sum(a.size - int(np.count_nonzero(a)) for a in new_act.values())
    record = {
        "method": method,
        "params": params,
        "layers": [o.name for o in owners],
        "tool": f"accelsim {__version__}",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "input_hash": workload.content_hash,
        "sparsity_before": zeros_before / elements,
        "sparsity_after": zeros_after / elements,
        **calibration,
        "per_layer": {
            r["layer"]: {k: _json_number(r[k]) for k in REPORT_COLUMNS[3:]} for r in rows
        },
        "notes": notes,
    }
    extra_meta = copy.deepcopy(workload.extra_meta)
    extra_meta["transforms"] = [*extra_meta.get("transforms", []), record]
    out = Workload(
        model=workload.model, layers=new_layers, edges=list(workload.edges),
        source=copy.deepcopy(workload.source), created=workload.created, extra_meta=extra_meta,
    )
    by_name = {layer.name: layer for layer in new_layers}
    for layer in new_layers:
        if layer.alias_of is not None:
            layer.act = by_name[layer.alias_of].act
    return SparsifyResult(workload=out, report=report, record=record, notes=notes)


def _nan_if_none(value: float | None) -> float:
    return np.nan if value is None else value


def _json_number(value: float | None) -> float | None:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return float(value)
