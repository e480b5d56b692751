"""Capture a workload trace from any `torch.nn.Module` run on real inputs.

`capture(model, inputs)` runs the model once under a `torch.overrides.TorchFunctionMode` and
records, in execution order, the input activation of every

* `linear` — `F.linear` (every `nn.Linear`), and a `matmul`/`mm`/`addmm`/`baddbmm` whose second
  operand is a constant (a weight: it depends on no model input);
* `conv2d` — `F.conv2d` (every `nn.Conv2d`) and `F.conv1d` (every `nn.Conv1d`), the latter
  mapped to a conv2d with H = 1: input `[N, C, L]` is stored as `[N, C, 1, L]`, kernel `k` as
  R = 1, S = k, stride/dilation/padding act along W only;
* `matmul` — activation x activation products (`torch.matmul`, `@`, `mm`, `bmm`,
  `addmm`, `baddbmm` when both operands depend on model inputs), e.g. attention QK^T and AV, with every
  leading (broadcast) dimension folded into `batch`; `F.scaled_dot_product_attention` becomes
  two layers `<module>.attn_qk` (input Q, second operand K^T) and `<module>.attn_av` (input: the
  attention probabilities softmax(QK^T * scale + mask), computed explicitly in float32 since SDPA
  never materialises them; a query row whose keys are all masked, e.g. a padding token, gets
  probabilities 0; second operand V). The model's own SDPA result is returned unchanged.
  Both layers' `info` carry `heads` (query heads: dimension -3 of a query with at least four
  dimensions, else 1), `kv_heads` (distinct key/value heads, see below), `head_dim` (of queries
  and keys), `kv_cache` (`"K"` for attn_qk's second operand, `"V"` for attn_av's: the tensors a
  decoder keeps in its KV cache) and `causal` (below). `kv_heads` is dimension -3 of the key
  as SDPA received it, or fewer when the model repeated its key/value heads for grouped-query
  attention before the call (as transformers' `repeat_kv` does): the smallest g for which K and V
  are g runs of consecutive heads that are bitwise equal, i.e. what a KV cache has to hold.

Names. A layer made by an `nn.Linear`/`nn.Conv1d`/`nn.Conv2d` (or subclass) takes the module's
qualified name (`encoder.layer.0.attention.self.query`); any other op takes the name of the
innermost module running it plus its kind (`...self.attn_qk`, `...self.attn_av`, `blk.matmul`,
`blk.linear` for `F.linear` outside a Linear module); a name already used gets `@2`, `@3`, ...
(a module called twice: `fc`, `fc@2`). Ops run directly by the root module have no prefix.

Shapes follow the trace format (DESIGN.md §3): linear inputs are `[M, K]` with every leading
dimension flattened into M; conv inputs are `[N, C, H, W]` and *unpadded*. Zero padding applied
before the convolution by `F.pad`/`nn.ZeroPad2d` (constant 0, non-negative, last two dimensions
only; e.g. the TF-style "same" padding of efficientnet-lite's `Conv2dStaticSamePadding`) is
folded into the layer's `padding` as `[top, bottom, left, right]` together with the
convolution's own padding (`'same'` puts the odd extra row/column at the bottom/right, as
PyTorch does). Padding with another mode (reflect, replicate, a non-zero constant) is real data
and stays in the stored activation.

Layer graph. Every tensor produced while the model runs carries its *provenance*: the set of
captured layers whose output it (transitively) depends on through uncaptured operations; model
inputs carry a marker, weights nothing. An operation's outputs inherit the union of its tensor
arguments' provenance, a captured layer's output has provenance {that layer}. A captured layer
gets one edge from every layer in the provenance of its input(s): residual additions, norms,
activations, reshapes and pooling are looked through. Products computed by an op that is not
listed above (`torch.einsum`, `F.multi_head_attention_forward`'s fused fast path
`torch._native_multi_head_attention`, ...) are not recorded as layers; their outputs still
inherit provenance, so the graph stays connected.

Aliasing. Layers that read the very same tensor object (unchanged in place since, as for the
Q, K and V projections of one hidden state) store it once: the first is the owner, the others
carry `alias_of`.

Values. Activations are stored as float16 (`keep="values"`) or as a non-zero bitmap taken at the
model's own precision (`keep="mask"`). Values beyond the float16 range are clamped to ±65504
and values too small for float16 flush to zero; each layer's `info` counts both
(`fp16_clamped`, `fp16_flushed`), so a reader can see whether conversion created zeros.
With `with_weights=True` the second operand is stored as `weight/<layer>` in the format's
layout: linear `[K, N]` (the transpose of `nn.Linear.weight`), conv `[K, C/groups, R, S]`,
matmul `[batch, K, N]` (e.g. K^T of QK^T, V of AV: an activation, not a parameter).

Causality and decode layout. An attention call is *causal* when no query row of a real token
puts non-zero probability on a later key (keys aligned to the end of the queries: query i of
Lq is position i + Lk - Lq of Lk keys), judged on the probabilities computed above, whatever made them
so (`is_causal=True`, a lower-triangular or sliding-window mask, a mask built by a causal model
class); padding tokens' rows are not judged. When the model ran SDPA and the inputs tell the
token layout, the workload's `extra_meta["decode"]` (saved in `__meta__` as `decode`) says
whether the trace replays as LLM decode (DESIGN.md §5):
`{"causal": bool, "sequences": S, "sequence_length": T, "padding_rows": [int, ...]}`.
`causal` is true iff every SDPA call was causal and the model multiplied no other pair of
activations (an attention computed by explicit matmuls cannot be judged, so it counts as not
causal). The S x T token rows are ordered sequence-major, position-minor, as the flattened
`[S, T, hidden]` activations of the token-wise linear layers (whose M is S * T); `padding_rows`
are the indices s * T + t of padding tokens (attention_mask 0), which decode skips. The layout
comes from a 2-D `attention_mask` among the inputs (found by that name in nested mappings, as in
a transformers batch), else from the first linear layer's input when it is `[S, T, features]`
(no padding then); it is kept only when that first linear input has S * T rows and every SDPA
call has T queries and S as its leading batch dimension. Otherwise (a CNN, no SDPA, another
layout) there is no `decode` entry: replaying such a trace as decode is not supported.

Size. The stored arrays are estimated before anything is copied (a first pass records only
shapes) when `max_mb` is given; a trace over the limit raises `CaptureError` with the
estimate. The estimate is the uncompressed array size, an upper bound of the `.npz` written.
"""

from __future__ import annotations

import datetime as _dt
import math
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from accelsim.errors import AccelsimError
from accelsim.workload.layer import ConvShape, GemmShape, Layer, Workload

try:
    import torch
    import torch.nn.functional as F
    from torch.overrides import TorchFunctionMode
    from torch.utils._pytree import tree_flatten
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError(
        "accelsim.capture needs PyTorch: pip install 'accelsim[capture]' (torch==2.13.0)."
    ) from exc

Keep = Literal["values", "mask"]
FP16_MAX = 65504.0
INPUT = "<input>"
"""Provenance marker of tensors derived from the model's inputs (never a layer name)."""


class CaptureError(AccelsimError):
    """A capture cannot be done as asked (too large, unsupported input, missing package)."""


class TraceTooLarge(CaptureError):
    """The estimated trace exceeds `max_mb`; carries the estimate and the limit in bytes."""

    def __init__(self, message: str, estimate_bytes: int, limit_bytes: float) -> None:
        super().__init__(message)
        self.estimate_bytes = estimate_bytes
        self.limit_bytes = limit_bytes


@dataclass
class _Record:
    """One captured layer: its input as float16 values or a bool non-zero map (None for an
    alias or a shapes-only dry run) and its second operand as float16 (or None)."""

    name: str
    op: str
    shape: GemmShape | ConvShape
    act: np.ndarray | None
    second: np.ndarray | None
    alias_of: str | None
    info: dict = field(default_factory=dict)


@dataclass
class _Attention:
    """One `F.scaled_dot_product_attention` call: its two layer records and the evidence for
    judging it causal."""

    qk: _Record
    av: _Record
    batch_dims: tuple[int, ...]
    """Leading (broadcast) dimensions of the call, e.g. (sequences, heads)."""
    queries: int
    """Query rows per batch entry (L)."""
    peeks: np.ndarray
    """bool [batch, queries]: the query row gives non-zero probability to a later key."""


def _is_tensor(x: Any) -> bool:
    return isinstance(x, torch.Tensor)


_MATMUL_FUNCS = {
    torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.mm, torch.Tensor.mm,
    torch.bmm, torch.Tensor.bmm,
}
_RMATMUL_FUNCS = {torch.Tensor.__rmatmul__}
_ADDMM_FUNCS = {torch.addmm, torch.Tensor.addmm, torch.baddbmm, torch.Tensor.baddbmm}
_LAYER_TYPES = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d)


def _arg(args: Sequence[Any], kwargs: Mapping[str, Any], index: int, name: str, default: Any) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        return (int(value[0]), int(value[-1]))
    return (int(value), int(value))


def _conv_padding(
    padding: Any, kernel: tuple[int, int], dilation: tuple[int, int]
) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of a conv's own padding argument (int, pair or 'same'/'valid')."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        total_h = dilation[0] * (kernel[0] - 1)
        total_w = dilation[1] * (kernel[1] - 1)
        return (total_h // 2, total_h - total_h // 2, total_w // 2, total_w - total_w // 2)
    ph, pw = _pair(padding)
    return (ph, ph, pw, pw)


class _Recorder(TorchFunctionMode):
    """Follows provenance through every torch call and records the layers it sees."""

    def __init__(self, model: torch.nn.Module, dry_run: bool, keep: Keep, keep_second: bool) -> None:
        super().__init__()
        self.dry_run = dry_run
        self.keep = keep
        self.keep_second = keep_second
        self.records: list[_Record] = []
        self.attention: list[_Attention] = []
        self.first_linear_input: tuple[int, ...] | None = None
        """Shape of the first linear layer's input before flattening, e.g. [S, T, features]."""
        self.edges: list[tuple[str, str]] = []
        self.skipped: dict[str, int] = {}
        self._prov: dict[int, tuple[weakref.ref, frozenset[str]]] = {}
        self._pads: dict[int, tuple[weakref.ref, weakref.ref, tuple[int, int, int, int], int,
                                    int]] = {}
        """id(padded) -> (padded, unpadded, (top, bottom, left, right), versions of both)."""
        self._readers: dict[int, tuple[weakref.ref, int, str]] = {}
        self._stack: list[tuple[str, torch.nn.Module]] = []
        self._used_names: set[str] = set()
        self._paused = 0
        self._handles = []
        for qualname, module in model.named_modules():
            self._handles.append(module.register_forward_pre_hook(self._enter(qualname)))
            self._handles.append(module.register_forward_hook(self._leave, always_call=True))

    # --- module stack (names only) ---------------------------------------------------------
    def _enter(self, qualname: str) -> Callable:
        def hook(module: torch.nn.Module, _args: Any) -> None:
            self._stack.append((qualname, module))
        return hook

    def _leave(self, _module: torch.nn.Module, _args: Any, _out: Any) -> None:
        if self._stack:
            self._stack.pop()

    def remove_hooks(self) -> None:
        for h in self._handles:
            h.remove()

    def _name(self, kind: str) -> str:
        qualname, module = self._stack[-1] if self._stack else ("", None)
        leaf = isinstance(module, _LAYER_TYPES) and kind in ("linear", "conv")
        base = (qualname or kind) if leaf else (f"{qualname}.{kind}" if qualname else kind)
        name, i = base, 1
        while name in self._used_names:
            i += 1
            name = f"{base}@{i}"
        self._used_names.add(name)
        return name

    # --- provenance -------------------------------------------------------------------------
    def prov(self, t: torch.Tensor) -> frozenset[str]:
        entry = self._prov.get(id(t))
        if entry is not None and entry[0]() is t:
            return entry[1]
        return frozenset()

    def set_prov(self, t: torch.Tensor, value: frozenset[str]) -> None:
        self._prov[id(t)] = (weakref.ref(t), value)

    def mark_input(self, t: torch.Tensor) -> None:
        self.set_prov(t, frozenset({INPUT}))

    def _link(self, name: str, *tensors: torch.Tensor) -> None:
        producers: set[str] = set()
        for t in tensors:
            producers |= self.prov(t)
        producers.discard(INPUT)
        self.edges.extend((p, name) for p in sorted(producers))

    # --- aliasing ---------------------------------------------------------------------------
    def _owner(self, t: torch.Tensor, name: str) -> str | None:
        """The layer that already stored this very tensor, or None (then `name` owns it)."""
        entry = self._readers.get(id(t))
        if entry is not None and entry[0]() is t and entry[1] == t._version:
            return entry[2]
        self._readers[id(t)] = (weakref.ref(t), t._version, name)
        return None

    # --- padding folding --------------------------------------------------------------------
    def _note_pad(self, args: Sequence[Any], kwargs: Mapping[str, Any], out: Any) -> None:
        x = _arg(args, kwargs, 0, "input", None)
        pad = _arg(args, kwargs, 1, "pad", None)
        mode = _arg(args, kwargs, 2, "mode", "constant")
        value = _arg(args, kwargs, 3, "value", None)
        if not (_is_tensor(x) and _is_tensor(out) and mode == "constant" and not value):
            return
        if pad is None or len(pad) not in (2, 4) or any(int(p) < 0 for p in pad):
            return
        left, right = int(pad[0]), int(pad[1])
        top, bottom = (int(pad[2]), int(pad[3])) if len(pad) == 4 else (0, 0)
        pads = (top, bottom, left, right)
        inner = self._pads.get(id(x))
        if inner is not None and inner[0]() is x and inner[3] == x._version:
            # Padding a padded tensor: one entry back to the innermost unpadded tensor.
            pads = tuple(a + b for a, b in zip(pads, inner[2]))  # type: ignore[assignment]
            self._pads[id(out)] = (weakref.ref(out), inner[1], pads, out._version, inner[4])
            return
        self._pads[id(out)] = (weakref.ref(out), weakref.ref(x), pads, out._version, x._version)

    def _unpad(self, t: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
        """The tensor before zero padding that is folded into the conv, and that padding.

        That is the very tensor that was padded when it is alive and unchanged since (aliasing
        then sees the tensor other layers read), else the interior sliced out of `t`.
        """
        entry = self._pads.get(id(t))
        if entry is None or entry[0]() is not t or entry[3] != t._version:
            return t, (0, 0, 0, 0)
        pads, original = entry[2], entry[1]()
        if original is not None and original._version == entry[4]:
            return original, pads
        top, bottom, left, right = pads
        return t[..., top:t.shape[-2] - bottom, left:t.shape[-1] - right], pads

    # --- the mode ---------------------------------------------------------------------------
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self._paused:
            return func(*args, **kwargs)
        handler = self._handler(func)
        if handler is not None:
            self._paused += 1
            try:
                out, producer = handler(func, args, kwargs)
            finally:
                self._paused -= 1
            if producer is not None:
                for t in tree_flatten(out)[0]:
                    if _is_tensor(t):
                        self.set_prov(t, frozenset({producer}))
                return out
        else:
            out = func(*args, **kwargs)
        if func is F.pad:
            self._note_pad(args, kwargs, out)
        merged: frozenset[str] = frozenset()
        for t in tree_flatten((args, kwargs))[0]:
            if _is_tensor(t):
                merged = merged | self.prov(t)
        if merged:
            for t in tree_flatten(out)[0]:
                if _is_tensor(t):
                    self.set_prov(t, merged)
        return out

    def _handler(self, func: Any) -> Callable | None:
        if func is F.linear:
            return self._linear
        if func is F.conv2d or func is F.conv1d:
            return self._conv
        if func is F.scaled_dot_product_attention:
            return self._sdpa
        if func in _MATMUL_FUNCS or func in _RMATMUL_FUNCS or func in _ADDMM_FUNCS:
            return self._matmul
        return None

    # --- layers -----------------------------------------------------------------------------
    def _add(self, name: str, op: str, shape: GemmShape | ConvShape, act: torch.Tensor,
             read: torch.Tensor, second: torch.Tensor | None, info: dict) -> None:
        alias = self._owner(read, name)
        record = _Record(name=name, op=op, shape=shape, act=None, second=None, alias_of=alias,
                         info=info)
        if not self.dry_run:
            # Copied now: the model may later change these tensors in place.
            if alias is None and self.keep == "values":
                record.act, clamped, flushed = _to_numpy_f16(act)
                if clamped:
                    info["fp16_clamped"] = clamped
                if flushed:
                    info["fp16_flushed"] = flushed
            elif alias is None:
                record.act = (act != 0).cpu().numpy()
            if self.keep_second and second is not None:
                record.second, clamped, _ = _to_numpy_f16(second)
                if clamped:
                    info["weight_fp16_clamped"] = clamped
        self.records.append(record)

    def _note_linear_input(self, x: torch.Tensor) -> None:
        if self.first_linear_input is None:
            self.first_linear_input = tuple(int(d) for d in x.shape)

    def _linear(self, func, args, kwargs):
        x = _arg(args, kwargs, 0, "input", None)
        w = _arg(args, kwargs, 1, "weight", None)
        out = func(*args, **kwargs)
        name = self._name("linear")
        k = int(x.shape[-1])
        act = x.reshape(-1, k)
        shape = GemmShape(M=int(act.shape[0]), K=k, N=int(w.shape[0]))
        self._note_linear_input(x)
        self._link(name, x)
        self._add(name, "linear", shape, act, x, w.t(), {"torch_op": "linear"})
        return out, name

    def _conv(self, func, args, kwargs):
        x = _arg(args, kwargs, 0, "input", None)
        w = _arg(args, kwargs, 1, "weight", None)
        out = func(*args, **kwargs)
        one_d = func is F.conv1d
        stride = _arg(args, kwargs, 3, "stride", 1)
        padding = _arg(args, kwargs, 4, "padding", 0)
        dilation = _arg(args, kwargs, 5, "dilation", 1)
        groups = int(_arg(args, kwargs, 6, "groups", 1))
        read, folded = self._unpad(x)
        if one_d and (folded[0] or folded[1]):
            read, folded = x, (0, 0, 0, 0)      # padded along channels: data, not conv padding
        src = read
        if one_d:
            src = src.unsqueeze(-2)
            w = w.unsqueeze(-2)
            stride, dilation = (1, _pair(stride)[0]), (1, _pair(dilation)[0])
            if isinstance(padding, str):
                own = _conv_padding(padding, (1, int(w.shape[-1])), dilation)
            else:
                p = _pair(padding)[0]
                own = (0, 0, p, p)
        else:
            stride, dilation = _pair(stride), _pair(dilation)
            own = _conv_padding(padding, (int(w.shape[-2]), int(w.shape[-1])), dilation)
        if src.dim() == 3:
            src = src.unsqueeze(0)
        n, c, h, wd = (int(v) for v in src.shape)
        pad = tuple(a + b for a, b in zip(own, folded))
        shape = ConvShape(N=n, C=c, H=h, W=wd, K=int(w.shape[0]), R=int(w.shape[-2]),
                          S=int(w.shape[-1]), stride=stride, padding=pad, dilation=dilation,
                          groups=groups)
        name = self._name("conv")
        info = {"torch_op": "conv1d" if one_d else "conv2d"}
        if any(folded):
            info["folded_zero_padding"] = list(folded)
        self._link(name, x)
        self._add(name, "conv2d", shape, src, read, w, info)
        return out, name

    def _matmul(self, func, args, kwargs):
        out = func(*args, **kwargs)
        if func in _ADDMM_FUNCS:
            a = _arg(args, kwargs, 1, "mat1", kwargs.get("batch1"))
            b = _arg(args, kwargs, 2, "mat2", kwargs.get("batch2"))
        elif func in _RMATMUL_FUNCS:
            b, a = args[0], args[1]
        else:
            a = args[0] if args else kwargs.get("input")
            b = args[1] if len(args) > 1 else kwargs.get("other", kwargs.get("mat2"))
        if not (_is_tensor(a) and _is_tensor(b)) or not self.prov(a):
            label = getattr(func, "__name__", str(func))
            self.skipped[label] = self.skipped.get(label, 0) + 1
            return out, None
        a2 = a.unsqueeze(0) if a.dim() == 1 else a
        b2 = b.unsqueeze(-1) if b.dim() == 1 else b
        both = bool(self.prov(b))
        if not both and b2.dim() == 2:
            k = int(a2.shape[-1])
            act = a2.reshape(-1, k)
            name = self._name("linear")
            self._note_linear_input(a2)
            self._link(name, a)
            self._add(name, "linear", GemmShape(M=int(act.shape[0]), K=k, N=int(b2.shape[-1])),
                      act, a, b2, {"torch_op": getattr(func, "__name__", "matmul")})
            return out, name
        batch_dims = torch.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
        m, k, n = int(a2.shape[-2]), int(a2.shape[-1]), int(b2.shape[-1])
        batch = math.prod(batch_dims)
        act = a2.expand(*batch_dims, m, k).reshape(batch, m, k)
        second = b2.expand(*batch_dims, k, n).reshape(batch, k, n)
        if batch == 1:
            act, second = act[0], second[0]
        name = self._name("matmul")
        self._link(name, a, b)
        op = "matmul" if both else "linear"
        self._add(name, op, GemmShape(M=m, K=k, N=n, batch=batch), act, a, second,
                  {"torch_op": getattr(func, "__name__", "matmul"),
                   "batch_dims": [int(d) for d in batch_dims]})
        return out, name

    def _sdpa(self, func, args, kwargs):
        out = func(*args, **kwargs)
        q = _arg(args, kwargs, 0, "query", None)
        k = _arg(args, kwargs, 1, "key", None)
        v = _arg(args, kwargs, 2, "value", None)
        mask = _arg(args, kwargs, 3, "attn_mask", None)
        is_causal = bool(_arg(args, kwargs, 5, "is_causal", False))
        scale = _arg(args, kwargs, 6, "scale", None)
        kk, vv = k, v
        if q.dim() >= 3 and k.shape[-3] != q.shape[-3]:
            rep = q.shape[-3] // k.shape[-3]
            kk = k.repeat_interleave(rep, dim=-3)
            vv = v.repeat_interleave(rep, dim=-3)
        batch_dims = torch.broadcast_shapes(q.shape[:-2], kk.shape[:-2])
        batch = math.prod(batch_dims)
        lq, e, s, ev = int(q.shape[-2]), int(q.shape[-1]), int(kk.shape[-2]), int(vv.shape[-1])
        scale = 1.0 / math.sqrt(e) if scale is None else float(scale)
        kt = kk.transpose(-2, -1).expand(*batch_dims, e, s).reshape(batch, e, s)
        qf = q.expand(*batch_dims, lq, e).reshape(batch, lq, e)
        scores = torch.matmul(qf.float(), kt.float()) * scale
        if is_causal:
            causal = torch.ones(lq, s, dtype=torch.bool, device=q.device).tril()
            scores = scores.masked_fill(~causal, float("-inf"))
        if mask is not None:
            m = mask.expand(*batch_dims, lq, s).reshape(batch, lq, s)
            scores = scores.masked_fill(~m, float("-inf")) if m.dtype == torch.bool \
                else scores + m.float()
        dead_rows = torch.isneginf(scores).all(dim=-1, keepdim=True)
        probs = torch.softmax(scores, dim=-1).masked_fill(dead_rows, 0.0)
        visible = torch.ones(lq, s, dtype=torch.bool, device=q.device).tril(diagonal=s - lq)
        peeks = ((probs != 0) & ~visible).any(dim=-1).cpu().numpy()
        vf = vv.expand(*batch_dims, s, ev).reshape(batch, s, ev)
        per_head = q.dim() >= 4 and min(k.dim(), v.dim()) >= 3
        heads = {"heads": int(q.shape[-3]) if q.dim() >= 4 else 1,
                 "kv_heads": _distinct_kv_heads(k, v) if per_head else 1, "head_dim": e}
        qk_name = self._name("attn_qk")
        self._link(qk_name, q, k)
        self._add(qk_name, "matmul", GemmShape(M=lq, K=e, N=s, batch=batch), qf, q, kt,
                  {"torch_op": "scaled_dot_product_attention", "part": "QK^T",
                   "batch_dims": [int(d) for d in batch_dims], **heads, "kv_cache": "K"})
        av_name = self._name("attn_av")
        self.edges.append((qk_name, av_name))
        self._link(av_name, v)
        self._add(av_name, "matmul", GemmShape(M=lq, K=s, N=ev, batch=batch), probs, probs, vf,
                  {"torch_op": "scaled_dot_product_attention",
                   "part": "softmax(QK^T*scale+mask) V", "scale": scale, "is_causal": is_causal,
                   "fully_masked_rows": int(dead_rows.sum()), **heads, "kv_cache": "V"})
        self.attention.append(_Attention(qk=self.records[-2], av=self.records[-1],
                                         batch_dims=tuple(int(d) for d in batch_dims),
                                         queries=lq, peeks=peeks))
        return out, av_name


def _distinct_kv_heads(k: torch.Tensor, v: torch.Tensor) -> int:
    """Distinct key/value heads (dimension -3): the smallest g dividing the head count for which
    K and V are both g runs of consecutive, bitwise equal heads (heads repeated for GQA)."""
    n = int(k.shape[-3])
    for g in range(1, n):
        if n % g == 0 and all(_runs_of_equal_heads(t, g) for t in (k, v)):
            return g
    return n


def _runs_of_equal_heads(t: torch.Tensor, groups: int) -> bool:
    runs = t.unflatten(-3, (groups, t.shape[-3] // groups))
    return torch.equal(runs, runs[..., :1, :, :].expand_as(runs))


def _find_tensor(obj: Any, key: str, depth: int = 0) -> torch.Tensor | None:
    """The tensor stored under `key` in the nested mappings, lists and tuples of `obj`, if any."""
    if depth > 8:
        return None
    if isinstance(obj, Mapping):
        if _is_tensor(obj.get(key)):
            return obj[key]
        items = list(obj.values())
    elif isinstance(obj, (list, tuple)):
        items = list(obj)
    else:
        return None
    for item in items:
        found = _find_tensor(item, key, depth + 1)
        if found is not None:
            return found
    return None


def _token_padding(inputs: Any, recorder: _Recorder) -> np.ndarray | None:
    """bool [S, T]: which tokens are padding, when the inputs and the attention calls tell the
    token layout (module doc, "Causality and decode layout"); None when they do not."""
    mask = _find_tensor(inputs, "attention_mask")
    first = recorder.first_linear_input
    if mask is not None and mask.dim() == 2:
        padding = (mask == 0).cpu().numpy()
    elif first is not None and len(first) == 3:
        padding = np.zeros(first[:2], dtype=bool)
    else:
        return None
    sequences, length = padding.shape
    if first is not None and math.prod(first[:-1]) != sequences * length:
        return None
    for a in recorder.attention:
        if a.queries != length or not a.batch_dims or a.batch_dims[0] != sequences:
            return None
    return padding


def _judge_causality(inputs: Any, recorder: _Recorder) -> dict | None:
    """Write each attention layer's `causal` and return the workload's `decode` metadata (None
    when there is no SDPA call or no known token layout)."""
    if not recorder.attention:
        return None
    padding = _token_padding(inputs, recorder)
    all_causal = True
    for a in recorder.attention:
        peeks = a.peeks
        if padding is not None:
            peeks = peeks.reshape(padding.shape[0], -1, a.queries) & ~padding[:, None, :]
        causal = not peeks.any()
        a.qk.info["causal"] = a.av.info["causal"] = causal
        all_causal = all_causal and causal
    if padding is None:
        return None
    explicit = any(r.op == "matmul" and r.info.get("torch_op") != "scaled_dot_product_attention"
                   for r in recorder.records)
    return {"causal": all_causal and not explicit, "sequences": int(padding.shape[0]),
            "sequence_length": int(padding.shape[1]),
            "padding_rows": [int(i) for i in np.flatnonzero(padding)]}


def _estimate_bytes(records: list[_Record], keep: Keep, with_weights: bool) -> int:
    """Uncompressed bytes of the arrays a trace of these records stores."""
    total = 0
    for r in records:
        if r.alias_of is None:
            n = math.prod(r.shape.act_shape)
            total += 2 * n if keep == "values" else (n + 7) // 8
        if with_weights:
            total += 2 * math.prod(r.shape.weight_shape)
    return total


def _to_numpy_f16(t: torch.Tensor) -> tuple[np.ndarray, int, int]:
    """float16 copy of `t`, the number of values clamped to ±65504, and of non-zeros flushed."""
    x = t.detach().to("cpu", torch.float32).numpy()
    big = np.abs(x) > FP16_MAX
    clamped = int(np.count_nonzero(big))
    if clamped:
        x = np.clip(x, -FP16_MAX, FP16_MAX)
    with np.errstate(over="ignore", under="ignore"):
        h = x.astype(np.float16)
    flushed = int(np.count_nonzero(x)) - int(np.count_nonzero(h))
    return h, clamped, flushed


def _tensors_in(obj: Any, depth: int = 0) -> list[torch.Tensor]:
    """Tensors inside nested mappings (dicts, HF BatchEncoding), lists and tuples."""
    if _is_tensor(obj):
        return [obj]
    if depth > 8:
        return []
    items = obj.values() if isinstance(obj, Mapping) else obj if isinstance(obj, (list, tuple)) \
        else ()
    return [t for item in items for t in _tensors_in(item, depth + 1)]


def _call(model: torch.nn.Module, inputs: Any) -> Any:
    if isinstance(inputs, Mapping):
        return model(**inputs)
    if isinstance(inputs, (tuple, list)):
        return model(*inputs)
    return model(inputs)


def _run(model: torch.nn.Module, inputs: Any, dry_run: bool, keep: Keep,
         keep_second: bool) -> _Recorder:
    recorder = _Recorder(model, dry_run=dry_run, keep=keep, keep_second=keep_second)
    try:
        with torch.no_grad():
            for t in _tensors_in(inputs):
                recorder.mark_input(t)
            with recorder:
                _call(model, inputs)
    finally:
        recorder.remove_hooks()
    if not recorder.records:
        raise CaptureError(
            f"capturing {type(model).__name__} recorded no layer: the model ran no F.linear, "
            "F.conv1d/conv2d, matmul or scaled_dot_product_attention on data derived from the "
            "inputs. Check that the inputs reach the model (tensors, a tuple of positional "
            "arguments, or a dict of keyword arguments)."
        )
    return recorder


def capture(
    model: torch.nn.Module,
    inputs: Any,
    *,
    name: str | None = None,
    keep: Keep = "values",
    with_weights: bool = False,
    max_mb: float | None = None,
    source: Mapping[str, Any] | None = None,
    act_bits: int = 16,
    weight_bits: int = 16,
    eval_mode: bool = True,
) -> Workload:
    """Run `model` once on `inputs` and return its trace as a `Workload` (see module doc).

    `inputs` is a tensor, a tuple/list of positional arguments or a dict of keyword arguments.
    `keep` stores float16 values or non-zero bitmaps; `with_weights` adds each layer's second
    operand. `max_mb` refuses a trace whose uncompressed arrays exceed that many MiB (estimated
    by a shapes-only pass before copying anything). `source` is merged into the provenance
    record. `eval_mode` runs the model in eval mode (dropout off), restoring its mode after.
    A model that ran SDPA on a known token layout gets `extra_meta["decode"]`: whether the trace
    replays as LLM decode and how its rows map to tokens (module doc, "Causality and decode
    layout"); any other model gets none.
    """
    if keep not in ("values", "mask"):
        raise CaptureError(f"keep must be 'values' or 'mask', got {keep!r}.")
    if not isinstance(model, torch.nn.Module):
        raise CaptureError(f"capture needs a torch.nn.Module, got {type(model).__name__}.")
    was_training = model.training
    if eval_mode:
        model.eval()
    try:
        if max_mb is not None:
            dry = _run(model, inputs, dry_run=True, keep=keep, keep_second=False)
            estimate = _estimate_bytes(dry.records, keep, with_weights)
            if estimate > max_mb * 2**20:
                raise TraceTooLarge(_too_big_message(type(model).__name__, dry.records, keep,
                                                     with_weights, estimate, max_mb),
                                    estimate, max_mb * 2**20)
        recorder = _run(model, inputs, dry_run=False, keep=keep, keep_second=with_weights)
    finally:
        model.train(was_training)
    decode = _judge_causality(inputs, recorder)
    layers = [_to_layer(r, act_bits, weight_bits) for r in recorder.records]
    owners = {layer.name: layer for layer in layers if layer.alias_of is None}
    for layer in layers:
        if layer.alias_of is not None:
            layer.act, layer.act_mask = owners[layer.alias_of].act, owners[layer.alias_of].act_mask
    src: dict[str, Any] = {
        "captured_by": "accelsim.capture",
        "torch": torch.__version__,
        "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
        "keep": keep,
        "with_weights": with_weights,
        "estimated_bytes": _estimate_bytes(recorder.records, keep, with_weights),
    }
    if recorder.skipped:
        src["unrecorded_constant_matmuls"] = recorder.skipped
    src.update(source or {})
    edges = list(dict.fromkeys(recorder.edges))
    return Workload(model=name or type(model).__name__, layers=layers, edges=edges, source=src,
                    created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                    extra_meta={} if decode is None else {"decode": decode})


def _too_big_message(model: str, records: list[_Record], keep: Keep, with_weights: bool,
                     estimate: int, max_mb: float) -> str:
    mask_estimate = _estimate_bytes(records, "mask", with_weights)
    acts_only = _estimate_bytes(records, keep, False)
    hint = (f"with --keep mask it would be about {mask_estimate / 2**20:.3g} MiB; "
            if keep == "values" else "")
    return (
        f"capturing {model} would store about {estimate / 2**20:.3g} MiB of uncompressed arrays "
        f"({len(records)} layers; activations {acts_only / 2**20:.3g} MiB"
        f"{', weights included' if with_weights else ''}), over the limit of {max_mb:g} MiB. "
        f"Use fewer or smaller inputs (a smaller batch or shorter sequences), {hint}"
        f"{'drop --with-weights, ' if with_weights else ''}or raise --max-mb."
    )


def _to_layer(r: _Record, act_bits: int, weight_bits: int) -> Layer:
    layer = Layer(name=r.name, op=r.op, shape=r.shape, act_bits=act_bits,  # type: ignore[arg-type]
                  weight_bits=weight_bits, alias_of=r.alias_of, extra=dict(r.info))
    if r.act is not None:
        arr = r.act.reshape(r.shape.act_shape)
        if arr.dtype == np.bool_:
            layer.act_mask = arr
        else:
            layer.act = arr
    if r.second is not None:
        layer.weight = r.second.reshape(r.shape.weight_shape)
    return layer
