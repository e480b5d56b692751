"""LLM decode replayed from a prefill trace (DESIGN.md §5, "LLM decode").

In a causal LM the activation of token t during decode equals its activation in prefill: the
KV cache holds the rest. So the rows of a prefill trace's token-wise layers are decode steps.
The trace must say it is causal and how its rows are laid out (`extra_meta["decode"]`:
`causal`, `sequences` x `sequence_length` rows, `padding_rows`; written by `accelsim.capture`
for attention models and by `accelsim import-llm`). Its non-padding tokens, in row order, form
ceil(T / B) decode steps of B consecutive tokens (`batch`); then

* every token-wise linear layer [T, K] x [K, N] becomes one [B, K] x [K, N] product per step
  holding exactly those tokens' rows, so a kernel that skips the weight rows of zero
  activations reads the rows of their non-zeros (their union, where the kernel serves B rows
  in one pass);
* every attention layer reads a KV cache of `context` positions per step: `attn_qk` as
  [heads / kv_heads, head_dim] x [head_dim, context] and `attn_av` as
  [heads / kv_heads, context] x [context, head_dim], `kv_heads x B` times (one KV head's cache
  is read once for the query heads that share it). These are shapes only (`statistical` rows):
  Q at the layer's measured density, the probabilities and the cache dense.

Results keep one row per trace layer, the sums over its steps, plus `decode_steps`, `tokens`,
`latency_s_per_token`, `energy_pj_per_token`, `tokens_per_s` (tokens / the layer's latency)
and, where the engine reports the weight bytes it reads, `weight_read_bytes_per_token`. A
shapes-only linear layer is one representative step counted for all steps.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from accelsim.errors import WorkloadError
from accelsim.results import ADDITIVE, SUM_COLUMNS
from accelsim.workload.layer import GemmShape, Layer, Workload

KV_LAYERS = ("attn_qk", "attn_av")
"""Name endings of the attention products `accelsim.capture` records (Q K^T and P V)."""


@dataclass(frozen=True)
class Step:
    """One decode-step product standing for `repeat` identical steps of trace layer `of`."""

    of: str
    layer: Layer
    repeat: int = 1


@dataclass(frozen=True)
class DecodePlan:
    """Decode at `batch` tokens per step against a KV cache of `context` positions: `tokens`
    replayed in `steps` steps, and the products of each trace layer."""

    batch: int
    context: int
    tokens: int
    steps: int
    products: dict[str, list[Step]]

    def meta(self) -> dict:
        return {"batch": self.batch, "context": self.context, "tokens": self.tokens,
                "steps": self.steps}


def decode_layout(workload: Workload) -> dict:
    """The workload's decode metadata, checked: it must be a causal LM."""
    info = workload.extra_meta.get("decode")
    if not isinstance(info, dict):
        raise WorkloadError(
            f"workload '{workload.model}' has no decode metadata (`decode` in its __meta__), so "
            "it cannot be replayed as LLM decode. Capture a causal LM with `accelsim capture` "
            "(which records it for attention models) or build one with `accelsim import-llm`; "
            "run without --phase decode otherwise.")
    if not info.get("causal"):
        raise WorkloadError(
            f"workload '{workload.model}' is not a causal LM (its attention sees later tokens, "
            "as a bidirectional encoder's does), so its prefill rows are not decode steps. "
            "Decode replay needs a causal model; run it without --phase decode.")
    try:
        rows = int(info["sequences"]) * int(info["sequence_length"])
        padding = sorted({int(r) for r in info.get("padding_rows", [])})
    except (KeyError, TypeError, ValueError) as exc:
        raise WorkloadError(f"workload '{workload.model}': decode metadata is malformed ({exc}); "
                            "it needs integer `sequences`, `sequence_length` and a list of "
                            "`padding_rows`. Re-capture the trace.") from None
    if rows < 1 or any(not 0 <= r < rows for r in padding) or len(padding) >= rows:
        raise WorkloadError(f"workload '{workload.model}': decode metadata gives {rows} rows and "
                            f"{len(padding)} padding rows, which do not fit. Re-capture the trace.")
    return {**info, "rows": rows, "padding_rows": padding}


def plan(workload: Workload, batch: int | None = None, context: int | None = None) -> DecodePlan:
    """How each layer of `workload` runs as decode steps; `batch` and `context` default to the
    workload's decode metadata (`batch`, `context`), then to 1 and the prefill length."""
    info = decode_layout(workload)
    batch = int(batch or info.get("batch") or 1)
    context = int(context or info.get("context") or info["sequence_length"])
    if batch < 1 or context < 1:
        raise WorkloadError(f"decode needs --batch >= 1 and --context >= 1, got {batch} and "
                            f"{context}.")
    padding = set(info["padding_rows"])
    tokens = [r for r in range(info["rows"]) if r not in padding]
    groups = [tokens[i:i + batch] for i in range(0, len(tokens), batch)]
    products = {layer.name: _products(layer, info, groups, batch, context)
                for layer in workload.layers}
    return DecodePlan(batch, context, len(tokens), len(groups), products)


def _products(layer: Layer, info: dict, groups: list[list[int]], batch: int,
              context: int) -> list[Step]:
    s = layer.shape
    if layer.op == "matmul" and layer.name.rsplit(".", 1)[-1] in KV_LAYERS:
        return [Step(layer.name, _attention_step(layer, info, batch, context), len(groups))]
    rows = info["rows"]
    if not isinstance(s, GemmShape) or layer.op != "linear" or s.batch != 1 or rows != s.M:
        raise WorkloadError(
            f"layer '{layer.name}' ({layer.op}) is not a token-wise linear layer with one row "
            f"per token ({rows} rows) nor an attention product ({', '.join(KV_LAYERS)}), "
            "so decode replay cannot place it. Decode covers causal LMs' linear and attention "
            "layers; run other workloads without --phase decode.")
    if not layer.has_trace:
        return [Step(layer.name, _rows_layer(layer, batch, None), len(groups))]
    return [Step(layer.name, _rows_layer(layer, len(rows), rows)) for rows in groups]


def _rows_layer(layer: Layer, rows_count: int, rows: Sequence[int] | None) -> Layer:
    """`layer` on `rows_count` of its rows: the rows `rows` of its trace, or shapes only."""
    s = layer.shape
    shape = GemmShape(M=rows_count, K=s.K, N=s.N)
    if rows is None:
        return Layer(layer.name, "linear", shape, layer.act_bits, layer.weight_bits,
                     weight=layer.weight, weight_mask=layer.weight_mask,
                     declared_act_density=layer.declared_act_density,
                     declared_weight_density=layer.declared_weight_density, extra=layer.extra)
    index = np.asarray(rows)
    act = layer.act[index] if layer.act is not None else None
    mask = layer.act_mask[index] if layer.act is None else None
    return Layer(layer.name, "linear", shape, layer.act_bits, layer.weight_bits, act=act,
                 act_mask=mask, weight=layer.weight, weight_mask=layer.weight_mask,
                 declared_weight_density=layer.declared_weight_density, extra=layer.extra)


def _attention_step(layer: Layer, info: dict, batch: int, context: int) -> Layer:
    """One decode step of an attention product against `context` cached positions."""
    s = layer.shape
    sequences = max(1, int(info["sequences"]))
    heads = int(layer.extra.get("heads") or max(1, s.batch // sequences))
    kv_heads = int(layer.extra.get("kv_heads") or heads)
    head_dim = int(layer.extra.get("head_dim") or (s.K if layer.name.endswith("attn_qk") else s.N))
    group = max(1, heads // kv_heads)
    if layer.name.endswith("attn_qk"):
        shape = GemmShape(M=group, K=head_dim, N=context, batch=kv_heads * batch)
        density = layer.act_density
    else:
        shape = GemmShape(M=group, K=context, N=head_dim, batch=kv_heads * batch)
        density = 1.0
    return Layer(layer.name, "matmul", shape, layer.act_bits, layer.weight_bits,
                 declared_act_density=density, extra=layer.extra)


def aggregate(name: str, steps: Sequence[tuple[dict, int]], tokens: int) -> dict:
    """One result row for trace layer `name` from the rows of its decode steps (each counted
    `repeat` times): sums of what adds up, MAC-weighted densities, cycle-weighted
    utilisation, ratios recomputed from the sums, and the per-token columns."""
    weights = [r for _, r in steps]
    columns = dict.fromkeys(c for s, _ in steps for c in s)
    row: dict = {"layer": name}
    for col in columns:
        if col == "layer":
            continue
        value = next(s[col] for s, _ in steps if col in s)
        blank = 0.0 if col.startswith("energy_") and col.endswith("_pj") else math.nan
        values = [s.get(col, blank) for s, _ in steps]
        if col == "warnings":
            notes = [w for v in values for w in str(v).split("; ") if w]
            row[col] = "; ".join(dict.fromkeys(notes))
        elif col == "engine_mode":
            modes = set(values)
            row[col] = modes.pop() if len(modes) == 1 else "mixed"
        elif col == "bound":
            row[col] = _bound(steps)
        elif isinstance(value, (bool, np.bool_)):
            row[col] = _mode(values, weights)
        elif isinstance(value, (int, float, np.integer, np.floating)):
            row[col] = _numeric(col, values, weights, steps)
        else:
            row[col] = _mode(values, [r * s["latency_s"] for s, r in steps])
    latency, dense_latency = row["latency_s"], row["dense_latency_s"]
    row["speedup_vs_dense"] = dense_latency / latency if latency else 1.0
    row["energy_saving_vs_dense"] = (row["dense_energy_pj"] / row["energy_pj"]
                                     if row["energy_pj"] else math.nan)
    row["decode_steps"] = sum(weights)
    row["tokens"] = tokens
    row["latency_s_per_token"] = latency / tokens
    row["energy_pj_per_token"] = row["energy_pj"] / tokens
    row["tokens_per_s"] = tokens / latency if latency else math.nan
    if "weight_read_bytes" in row:
        row["weight_read_bytes_per_token"] = row["weight_read_bytes"] / tokens
    return row


def _numeric(col: str, values: list, weights: list[int], steps: Sequence[tuple[dict, int]]) -> float:
    if col in SUM_COLUMNS or ADDITIVE.search(col) or col.startswith("energy_"):
        return float(sum(v * r for v, r in zip(values, weights)))
    if col in ("act_density", "weight_density", "covered_macs_fraction"):
        macs = [s["macs_dense"] * r for s, r in steps]
        return float(np.dot(values, macs) / sum(macs)) if sum(macs) else float(values[0])
    if col == "utilization":
        cycles = [s["cycles"] * r for s, r in steps]
        return float(np.dot(values, cycles) / sum(cycles)) if sum(cycles) else float(values[0])
    finite = [(v, r) for v, r in zip(values, weights) if v == v]
    return float(sum(v * r for v, r in finite) / sum(r for _, r in finite)) if finite else math.nan


def _bound(steps: Sequence[tuple[dict, int]]) -> str:
    if any(s["bound"] == "none" for s, _ in steps):
        return "none"
    memory = sum(s["latency_s"] * r for s, r in steps if s["bound"] == "memory")
    total = sum(s["latency_s"] * r for s, r in steps)
    return "memory" if total and memory / total > 0.5 else "compute"


def _mode(values: list, weights: list[float]) -> object:
    tally: Counter = Counter()
    for v, w in zip(values, weights):
        tally[v] += w
    return tally.most_common(1)[0][0]
