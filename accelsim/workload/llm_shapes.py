"""Shapes-only workloads of decoder LLMs from their published dimensions (`accelsim import-llm`).

A model file (YAML, `arch_configs/models/`) gives `hidden_size`, `intermediate_size`, `layers`,
`heads`, `kv_heads`, `vocab_size` and the MLP form (`glu`: gate/up/down projections; `plain`:
up/down), with its source. The workload has, per block, the projections `q_proj`, `k_proj`,
`v_proj`, `o_proj`, the attention products `attn_qk` / `attn_av`, the MLP projections, and
`lm_head` at the end, named as Hugging Face Llama-family models name them, for `tokens` tokens of
one sequence (causal, so it replays as decode). Every layer is shapes-only (results are
`statistical`): its activation density is declared per role (`qkv`, `o`, `gate_up`, `down`,
`lm_head`), given directly or *borrowed* from a real trace: the mean density of that trace's
layers of the same role (e.g. Gemma's down-projection inputs after TEAL at 50 %).
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError

from accelsim.errors import WorkloadError
from accelsim.workload.layer import GemmShape, Layer, Workload

ROLES = ("qkv", "o", "gate_up", "down", "lm_head")
"""Layer roles whose inputs share a density: the attention input (Q/K/V), the attention
output projection's input, the MLP input (gate/up), the down projection's input, the head."""
_ROLE_OF = {"q_proj": "qkv", "k_proj": "qkv", "v_proj": "qkv", "o_proj": "o",
            "gate_proj": "gate_up", "up_proj": "gate_up", "down_proj": "down", "lm_head": "lm_head"}


class LLMShape(BaseModel):
    """Published dimensions of a decoder-only transformer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    hidden_size: PositiveInt
    intermediate_size: PositiveInt
    layers: PositiveInt = Field(le=1024)
    heads: PositiveInt
    kv_heads: PositiveInt
    vocab_size: PositiveInt
    head_dim: PositiveInt | None = None
    """Per-head width; hidden_size / heads when left out."""
    mlp: Literal["glu", "plain"] = "glu"
    bits: PositiveInt = 16
    """Activation and weight width in bits (16: FP16/BF16)."""
    source: str


def load_llm_shape(path: str | Path) -> LLMShape:
    """Read a model file (safe YAML loader) and check it."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise WorkloadError(f"{path}: cannot read the model file ({exc}). Give a YAML file such "
                            "as arch_configs/models/llama2_7b.yaml.") from None
    try:
        shape = LLMShape.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"'{'.'.join(map(str, e['loc']))}': {e['msg']}" for e in exc.errors()[:4])
        raise WorkloadError(f"{path}: invalid model file: {problems}. See "
                            "arch_configs/models/llama2_7b.yaml for the fields.") from None
    if shape.heads % shape.kv_heads or (shape.head_dim is None and shape.hidden_size % shape.heads):
        raise WorkloadError(f"{path}: heads ({shape.heads}) must be a multiple of kv_heads "
                            f"({shape.kv_heads}) and divide hidden_size unless head_dim is given.")
    return shape


def role_of(layer_name: str) -> str | None:
    """The role of a layer by its name's last part (`...mlp.down_proj` -> `down`), or None."""
    return _ROLE_OF.get(layer_name.rsplit(".", 1)[-1])


def borrowed_densities(trace: Workload) -> dict[str, float]:
    """Mean activation density of each role's layers in `trace` (roles it has no layer of are
    left out)."""
    found: dict[str, list[float]] = {}
    for layer in trace.layers:
        role = role_of(layer.name)
        if role is not None:
            found.setdefault(role, []).append(layer.act_density)
    return {role: sum(v) / len(v) for role, v in found.items()}


def llm_workload(shape: LLMShape, tokens: int, densities: dict[str, float],
                 source: dict | None = None) -> Workload:
    """The shapes-only workload of `shape` over `tokens` tokens of one sequence, each layer's
    input at its role's density (1.0 for roles not in `densities`)."""
    if tokens < 1:
        raise WorkloadError(f"--tokens must be at least 1, got {tokens}.")
    bad = {r: d for r, d in densities.items() if r not in ROLES or not 0.0 <= d <= 1.0}
    if bad:
        raise WorkloadError(f"densities {bad} are not roles of {ROLES} with a value in [0, 1].")
    d, f = shape.hidden_size, shape.intermediate_size
    hd = shape.head_dim or d // shape.heads
    q, kv = shape.heads * hd, shape.kv_heads * hd
    heads = {"heads": shape.heads, "kv_heads": shape.kv_heads, "head_dim": hd}
    layers: list[Layer] = []

    def linear(name: str, k: int, n: int) -> None:
        layers.append(Layer(name, "linear", GemmShape(M=tokens, K=k, N=n), shape.bits, shape.bits,
                            declared_act_density=densities.get(role_of(name) or "", 1.0)))

    for i in range(shape.layers):
        att, mlp = f"model.layers.{i}.self_attn", f"model.layers.{i}.mlp"
        linear(f"{att}.q_proj", d, q)
        linear(f"{att}.k_proj", d, kv)
        linear(f"{att}.v_proj", d, kv)
        layers.append(Layer(f"{att}.attn_qk", "matmul",
                            GemmShape(M=tokens, K=hd, N=tokens, batch=shape.heads),
                            shape.bits, shape.bits, extra={**heads, "kv_cache": "K", "causal": True}))
        layers.append(Layer(f"{att}.attn_av", "matmul",
                            GemmShape(M=tokens, K=tokens, N=hd, batch=shape.heads),
                            shape.bits, shape.bits, extra={**heads, "kv_cache": "V", "causal": True}))
        linear(f"{att}.o_proj", q, d)
        if shape.mlp == "glu":
            linear(f"{mlp}.gate_proj", d, f)
        linear(f"{mlp}.up_proj", d, f)
        linear(f"{mlp}.down_proj", f, d)
    linear("lm_head", d, shape.vocab_size)
    meta = {"decode": {"causal": True, "sequences": 1, "sequence_length": tokens,
                       "padding_rows": []}}
    return Workload(model=shape.name, layers=layers, source=source or {},
                    created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                    extra_meta=meta)


def import_llm(model_path: str | Path, tokens: int = 128, act_density: float | None = None,
               densities: dict[str, float] | None = None,
               borrow: str | Path | None = None) -> Workload:
    """The shapes-only workload of the model file at `model_path`: densities per role from
    `borrow` (a trace's measured means), then `act_density` for every role not set, then
    `densities` role by role (1.0 for what is left)."""
    from accelsim.workload.format import load_workload

    shape = load_llm_shape(model_path)
    chosen: dict[str, float] = {}
    source: dict = {"importer": "accelsim import-llm", "model_file": str(model_path),
                    "model_source": shape.source, "tokens": tokens}
    if borrow is not None:
        trace = load_workload(borrow)
        chosen = borrowed_densities(trace)
        if not chosen:
            raise WorkloadError(f"{borrow}: no layer of this trace has a role of {ROLES} by its "
                                "name (q_proj, o_proj, gate_proj, down_proj, lm_head, ...), so "
                                "there is nothing to borrow. Give --act-density instead.")
        source["densities_borrowed_from"] = {"trace": str(borrow), "model": trace.model,
                                             "hash": trace.content_hash}
    if act_density is not None:
        chosen = {**{r: act_density for r in ROLES}, **chosen}
    chosen.update(densities or {})
    source["densities"] = dict(chosen)
    return llm_workload(shape, tokens, chosen, source)
