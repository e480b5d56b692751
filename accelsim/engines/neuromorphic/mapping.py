"""Map a whole workload onto the NPs of a neuromorphic mesh (networkx).

Units: a layer, or a depthwise conv fused with the 1x1 conv it feeds (`separable`, as Akida
1.0 runs them on the same NPs). Each unit needs:

* `input_unit`: the first conv on raw pixels (C <= `input_unit_max_channels`) runs on the
  dense input unit next to the DMA and uses no NP;
* `cnp`: `stripes x groups` NPs. Stripes split the input along its first spatial axis (rows)
  into at most `max_stripe_rows` rows each, more when a stripe's input rows (with the kernel
  halo) x W x C x the layer's stored activation width exceed `np_input_memory_bytes`. Groups
  split the filters so that one NP's weights fit `np_weight_memory_bytes`: per input channel an
  NP holding k filters needs `ceil(k*R*S*w / efficiency)` bits, w the layer's stored weight
  width, rounded up to the allocation unit of that width (a fused separable unit: the depthwise
  kernel at the depthwise layer's width and the k pointwise weights at the pointwise layer's,
  each rounded to `separable_alloc_bits`); the filters are balanced over the fewest groups whose
  share fits (a share that is not a multiple of `filter_align` is laid out as the next
  multiple of twice the alignment), at most `max_filters_per_np` each. A standalone depthwise
  conv (when supported) is split by channels instead.
* `fnp`: a fully connected layer takes one FC-capable NP; its K x N weights at the layer's
  stored weight width stay in DRAM when they exceed `fnp_weight_memory_bytes`.
* `unmappable`: unsupported op (activation x activation matmul, grouped conv, a kernel/stride
  the NPs lack) or too large (one filter exceeds an NP, more NPs than the chip); the reason,
  short and specific, is kept and reported.

Bit widths per layer come from `Config.layer_bits` (the trace's widths where the NPs support
them, else the configured precision); the first layer reads raw input at `input_act_bits`.

Placement walks the units in topological order and gives each the free NPs nearest (in mesh
hops) to its producers' NPs, or to the DMA node for units fed from outside; FC-capable NPs are
used for conv units last. When the free NPs run out, a new pass starts: the chip is
reprogrammed and the next units run on the whole mesh again (Akida multi-pass).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

import networkx as nx

from accelsim.engines.neuromorphic.config import Config, LayerBits
from accelsim.errors import ArchError
from accelsim.workload.layer import ConvShape, GemmShape, Layer, Workload

UnitKind = Literal["input_unit", "cnp", "fnp", "unmappable"]
Slot = tuple[tuple[int, int], int]
"""An NP: ((column, row) of its node, NP id within the node)."""


@dataclass
class Unit:
    """One mapping unit and what it needs; `nps` and `pass_index` are set by placement."""

    name: str
    layers: tuple[str, ...]
    kind: UnitKind
    reason: str = ""
    producers: tuple[str, ...] = ()
    stripes: int = 1
    groups: int = 1
    channel_split: bool = False
    filters_per_np: int = 0
    weight_bytes_per_np: int = 0
    weight_bytes: int = 0
    external_weights: bool = False
    nps: tuple[Slot, ...] = ()
    pass_index: int = 0
    bits: tuple[LayerBits, ...] = ()
    """Widths each of `layers` runs at (in the same order)."""

    @property
    def np_count(self) -> int:
        if self.kind == "cnp":
            return self.stripes * self.groups
        return 1 if self.kind == "fnp" else 0


@dataclass
class Mesh:
    """Nodes, their hop distances, and the NP slots of the chip."""

    graph: nx.Graph
    hops: dict[tuple[int, int], dict[tuple[int, int], int]]
    slots: list[Slot]
    fnp_slots: set[Slot]
    dma: tuple[int, int]
    links: int = field(default=0)


def build_mesh(arch: Config) -> Mesh:
    """The mesh graph (links between nodes one column or row apart) and its NP slots."""
    positions = arch.positions()
    dma = arch.dma_position()
    g = nx.Graph()
    g.add_nodes_from(positions)
    g.add_node(dma)
    present = set(positions) | {dma}
    for c, r in present:
        for nb in ((c + 1, r), (c, r + 1)):
            if nb in present:
                g.add_edge((c, r), nb)
    if not nx.is_connected(g):
        raise ArchError(f"arch '{arch.name}': node_positions and dma_node do not form a "
                        "connected mesh (each needs a neighbour one column or row away).")
    slots: list[Slot] = []
    fnp: set[Slot] = set()
    for pos in positions:
        first = arch.dma_reserved_nps if pos == dma else 0
        for i in range(first, arch.nps_per_node):
            slots.append((pos, i))
            if i < arch.fnp_per_node:
                fnp.add((pos, i))
    hops = {a: dict(d) for a, d in nx.all_pairs_shortest_path_length(g)}
    return Mesh(graph=g, hops=hops, slots=slots, fnp_slots=fnp, dma=dma,
                links=g.number_of_edges())


def producers_of(workload: Workload) -> dict[str, list[str]]:
    """Producer layers of each layer (the previous layer when the trace has no edges)."""
    names = [layer.name for layer in workload.layers]
    if not workload.edges:
        return {n: ([names[i - 1]] if i else []) for i, n in enumerate(names)}
    preds: dict[str, list[str]] = {n: [] for n in names}
    for a, b in workload.edges:
        if a in preds and b in preds:
            preds[b].append(a)
    return preds


def _channels(s: ConvShape) -> int:
    return s.C


def _is_depthwise(s: ConvShape) -> bool:
    return s.groups == s.C and s.groups > 1 and s.K == s.C


def _is_pointwise(s: ConvShape) -> bool:
    return (s.R, s.S, s.stride, s.groups, s.dilation) == (1, 1, (1, 1), 1, (1, 1)) and \
        s.padding == (0, 0, 0, 0)


def stripe_rows(s: ConvShape, stripes: int) -> list[tuple[int, int, int, int]]:
    """Per stripe: (first output row, end output row, first input row, end input row); output
    rows are split evenly and each stripe reads the input rows its outputs need."""
    bounds = [round(i * s.E / stripes) for i in range(stripes + 1)]
    out = []
    for i, (e0, e1) in enumerate(zip(bounds[:-1], bounds[1:])):
        lo = max(0, e0 * s.stride[0] - s.padding[0])
        hi = min(s.H, (e1 - 1) * s.stride[0] - s.padding[0] + (s.R - 1) * s.dilation[0] + 1)
        if i == 0:
            lo = 0
        if i == stripes - 1:
            hi = s.H
        out.append((e0, e1, lo, max(hi, lo)))
    return out


def _roundup(x: float, unit: int) -> int:
    return int(math.ceil(x / unit - 1e-9)) * unit


def conv_weight_bytes(k: int, s: ConvShape, wbits: int, arch: Config, separable: int | None,
                      pointwise_bits: int | None = None) -> int:
    """Bytes of weight memory one NP needs to hold k filters of `s` (or k channels of a
    standalone depthwise) at `wbits` bits per weight; `separable` (not None) fuses the 1x1 conv
    that follows, whose k filters take `pointwise_bits` per weight (default `wbits`)."""
    eff = arch.weight_packing_efficiency.get(wbits, 1.0)
    if separable is not None:
        unit = arch.separable_alloc_bits
        pw_bits = wbits if pointwise_bits is None else pointwise_bits
        pw_eff = arch.weight_packing_efficiency.get(pw_bits, 1.0)
        per_channel = (_roundup(s.R * s.S * wbits / eff, unit)
                       + _roundup(k * pw_bits / pw_eff, unit))
        return math.ceil(s.C * per_channel / 8)
    unit = arch.weight_alloc_bits.get(wbits, 8)
    if _is_depthwise(s):
        return math.ceil(k * _roundup(s.R * s.S * wbits / eff, unit) / 8)
    return math.ceil((s.C // s.groups) * _roundup(k * s.R * s.S * wbits / eff, unit) / 8)


def _stored_filters(k: int, arch: Config) -> int:
    """Filters an NP's weight memory is laid out for: k when aligned, else k rounded up to
    twice the alignment (akida 2.19.3 mapper: 65..79 filters take the memory of 80)."""
    if k % arch.filter_align == 0:
        return k
    return _roundup(k, 2 * arch.filter_align)


def _filter_groups(total: int, fits, arch: Config, cap: int) -> int:
    """Fewest groups whose balanced share ceil(total / groups) of the filters fits one NP
    (weights laid out for `_stored_filters`), at most `max_filters_per_np` and `cap` each;
    0 when not even one filter fits."""
    limit = min(arch.max_filters_per_np, cap)
    for groups in range(max(1, math.ceil(total / limit)), total + 1):
        k = math.ceil(total / groups)
        if k <= limit and fits(_stored_filters(k, arch)):
            return groups
    return 0


def _stripes_needed(s: ConvShape, act_bits: int, channels: int, arch: Config) -> int:
    """Fewest row stripes whose input rows fit the NP input memory; 0 if none does."""
    n = max(1, math.ceil(s.H / arch.max_stripe_rows))
    while n <= s.E:
        worst = max(hi - lo for _, _, lo, hi in stripe_rows(s, n))
        if worst * s.W * channels * act_bits / 8 <= arch.np_input_memory_bytes:
            return n
        n += 1
    return 0


def _unsupported(name: str, producers: tuple[str, ...], layers: tuple[str, ...],
                 reason: str, bits: tuple[LayerBits, ...] = ()) -> Unit:
    return Unit(name=name, layers=layers, kind="unmappable", reason=reason, producers=producers,
                bits=bits)


def _pair(v: tuple[int, int]) -> str:
    return f"{v[0]}x{v[1]}"


def kernel_problem(s: ConvShape, strides: dict[int, tuple[int, ...]], where: str) -> str:
    """Why a conv's kernel, stride or dilation cannot run `where` ("on the NPs", "on the input
    unit"), given the strides each square kernel size supports there; '' when it can. Reasons
    hold no "; " (it separates a row's warnings)."""
    sizes = sorted(strides)
    if s.dilation != (1, 1):
        return f"dilation {_pair(s.dilation)} is not supported {where}"
    if s.R != s.S or s.R not in strides:
        if max(s.R, s.S) > sizes[-1]:
            return (f"{s.R}x{s.S} kernel exceeds the largest kernel {where}, "
                    f"{sizes[-1]}x{sizes[-1]}")
        return (f"{s.R}x{s.S} kernel is not supported {where} (kernels "
                f"{', '.join(f'{k}x{k}' for k in sizes)})")
    if s.stride[0] != s.stride[1] or s.stride[0] not in strides[s.R]:
        only = " only" if len(strides[s.R]) == 1 else ""
        return (f"stride {_pair(s.stride)} is not supported for a {s.R}x{s.S} kernel {where} "
                f"({s.R}x{s.S} takes stride {' or '.join(map(str, strides[s.R]))}{only})")
    return ""


def conv_unit(layer: Layer, producers: tuple[str, ...], arch: Config, bits: LayerBits,
              filters_cap: int, pointwise: Layer | None = None,
              pointwise_bits: LayerBits | None = None) -> Unit:
    """Requirements of a conv layer running at `bits` (or a depthwise + pointwise pair, the
    pointwise at `pointwise_bits`) on the NPs."""
    s = layer.shape
    assert isinstance(s, ConvShape)
    layers = (layer.name,) if pointwise is None else (layer.name, pointwise.name)
    unit_bits = (bits,) if pointwise_bits is None else (bits, pointwise_bits)
    depthwise = _is_depthwise(s)

    def unsupported(reason: str) -> Unit:
        return _unsupported(layer.name, producers, layers, reason, unit_bits)

    if s.groups > 1 and not depthwise:
        return unsupported(f"grouped convolution (groups={s.groups}) is not supported on the "
                           "NPs (only groups=1 or depthwise)")
    if depthwise and pointwise is None and "depthwise" not in arch.supported_ops:
        return unsupported("a depthwise convolution is supported only fused with the 1x1 "
                           "convolution that follows it (separable), and none follows")
    if not depthwise and "conv2d" not in arch.supported_ops:
        return unsupported("conv2d is not in supported_ops")
    problem = kernel_problem(s, arch.conv_kernel_strides, "on the NPs")
    if problem:
        return unsupported(problem)
    if depthwise and pointwise is None:
        total, channel_split, sep = s.C, True, None
    else:
        total = pointwise.shape.K if pointwise is not None else s.K
        channel_split, sep = False, (total if pointwise is not None else None)
    pw_wbits = pointwise_bits.weight if pointwise_bits is not None else None

    def weight_bytes(k: int) -> int:
        return conv_weight_bytes(k, s, bits.weight, arch, sep, pw_wbits)

    groups = _filter_groups(total, lambda k: weight_bytes(k) <= arch.np_weight_memory_bytes,
                            arch, filters_cap)
    if groups == 0:
        channels = s.C // s.groups
        return unsupported(f"too large: one {s.R}x{s.S} filter over {channels} channel"
                           f"{'s' if channels > 1 else ''} at {bits.weight} bits needs "
                           f"{weight_bytes(1):,} B of weights, an NP holds "
                           f"{arch.np_weight_memory_bytes:,} B")
    per_np = math.ceil(total / groups)
    channels_per_np = per_np if channel_split else s.C
    stripes = _stripes_needed(s, bits.act, channels_per_np, arch)
    if stripes == 0:
        return unsupported(f"too large: one input row ({s.W} x {channels_per_np} x {bits.act} "
                           f"bits) does not fit the {arch.np_input_memory_bytes:,} B NP input "
                           "memory")
    wbytes = weight_bytes(_stored_filters(per_np, arch))
    return Unit(name=layer.name, layers=layers, kind="cnp", producers=producers,
                stripes=stripes, groups=groups, channel_split=channel_split,
                filters_per_np=per_np, weight_bytes_per_np=wbytes,
                weight_bytes=wbytes * groups, bits=unit_bits)


def linear_unit(layer: Layer, producers: tuple[str, ...], arch: Config, bits: LayerBits) -> Unit:
    """Requirements of a fully connected layer running at `bits` on one FC-capable NP."""
    s = layer.shape
    assert isinstance(s, GemmShape)
    layers = (layer.name,)
    if "linear" not in arch.supported_ops:
        return _unsupported(layer.name, producers, layers, "linear is not in supported_ops",
                            (bits,))
    if s.batch > 1:
        return _unsupported(layer.name, producers, layers,
                            f"a batched product (batch={s.batch}) has no fixed weights to hold",
                            (bits,))
    inputs = s.K
    if inputs > arch.max_fc_inputs:
        return _unsupported(layer.name, producers, layers,
                            f"too large: {inputs:,} inputs, a fully connected NP takes at most "
                            f"{arch.max_fc_inputs:,}", (bits,))
    wbytes = math.ceil(s.K * s.N * bits.weight / 8)
    return Unit(name=layer.name, layers=layers, kind="fnp", producers=producers,
                filters_per_np=s.N, weight_bytes_per_np=wbytes, weight_bytes=wbytes,
                external_weights=wbytes > arch.fnp_weight_memory_bytes, bits=(bits,))


def plan_units(workload: Workload, arch: Config, filters_cap: int | None = None) -> list[Unit]:
    """Units in topological order with their NP requirements (not yet placed)."""
    preds = producers_of(workload)
    succs: dict[str, list[str]] = {n: [] for n in preds}
    for b, ps in preds.items():
        for a in ps:
            succs[a].append(b)
    layers = {layer.name: layer for layer in workload.layers}
    order = list(nx.topological_sort(_graph(preds)))
    cap = filters_cap or arch.max_filters_per_np
    unit_of: dict[str, str] = {}
    units: list[Unit] = []
    fused: set[str] = set()
    for name in order:
        if name in fused:
            continue
        layer = layers[name]
        producers = tuple(dict.fromkeys(unit_of[p] for p in preds[name]))
        first = not preds[name]
        bits = _layer_bits(layer, arch, first)
        s = layer.shape
        if layer.op == "matmul":
            unit = _unsupported(name, producers, (name,),
                                "activation x activation matmul: no fixed weights to hold in "
                                "NP memory", (bits,))
        elif isinstance(s, GemmShape):
            unit = linear_unit(layer, producers, arch, bits)
        elif first and arch.input_unit and _channels(s) <= arch.input_unit_max_channels:
            problem = _input_unit_problem(s, arch)
            bits = replace(bits, weight=arch.input_weight_bits)
            unit = (Unit(name=name, layers=(name,), kind="input_unit", producers=producers,
                         bits=(bits,), filters_per_np=s.K) if not problem else
                    _unsupported(name, producers, (name,), f"input layer: {problem}", (bits,)))
        else:
            pw = None
            if _is_depthwise(s) and "separable" in arch.supported_ops and len(succs[name]) == 1:
                nxt = layers[succs[name][0]]
                if isinstance(nxt.shape, ConvShape) and nxt.op == "conv2d" \
                        and _is_pointwise(nxt.shape) and preds[nxt.name] == [name]:
                    pw = nxt
            pw_bits = _layer_bits(pw, arch, False) if pw is not None else None
            unit = conv_unit(layer, producers, arch, bits, cap, pointwise=pw,
                             pointwise_bits=pw_bits)
            if pw is not None and pw_bits is not None:
                fused.add(pw.name)
                if unit.kind == "unmappable":
                    # the pair cannot run fused: report the depthwise, map the 1x1 on its own
                    units.append(replace(unit, layers=(name,), bits=(bits,)))
                    unit_of[name] = name
                    unit = conv_unit(pw, (name,), arch, pw_bits, cap)
                    name = pw.name
                else:
                    unit_of[pw.name] = name
        unit_of[name] = name
        units.append(unit)
    return units


def _layer_bits(layer: Layer, arch: Config, first: bool) -> LayerBits:
    """Widths `layer` runs at: the first layer reads raw input at `input_act_bits`."""
    bits = arch.layer_bits(layer.act_bits, layer.weight_bits)
    return replace(bits, events=arch.input_act_bits, act=arch.input_act_bits) if first else bits


def _input_unit_problem(s: ConvShape, arch: Config) -> str:
    """Why the input unit cannot run this first conv ('' when it can)."""
    if s.groups != 1:
        return f"grouped convolution (groups={s.groups}) is not supported on the input unit"
    problem = kernel_problem(s, arch.input_unit_kernel_strides, "on the input unit")
    if problem:
        return problem
    width, filters = s.W, s.K
    if arch.input_unit_max_width is not None and width > arch.input_unit_max_width:
        return f"input width {width} exceeds the input unit's {arch.input_unit_max_width}"
    if arch.input_unit_max_filters is not None:
        limit = arch.input_unit_max_filters.get(s.R)
        if limit is not None:
            limit = limit * arch.input_unit_max_channels // s.C
            if filters > limit:
                return f"{filters} filters exceed the input unit's {limit} for a {s.R}x{s.R} kernel " \
                       f"on {s.C} channel(s)"
    return ""


def _graph(preds: dict[str, list[str]]) -> nx.DiGraph:
    g = nx.DiGraph()
    g.add_nodes_from(preds)
    g.add_edges_from((a, b) for b, ps in preds.items() for a in ps)
    return g


def place(units: list[Unit], arch: Config, mesh: Mesh) -> list[Unit]:
    """Give every NP unit its NPs, nearest its producers, opening passes as the mesh fills."""
    placed: dict[str, Unit] = {}
    out: list[Unit] = []
    pass_index = 0
    free = set(mesh.slots)
    all_cnp, all_fnp = len(mesh.slots), len(mesh.fnp_slots)
    for unit in units:
        if unit.kind == "input_unit":
            unit = replace(unit, pass_index=pass_index)
        elif unit.kind in ("cnp", "fnp"):
            n = unit.np_count
            capacity = all_cnp if unit.kind == "cnp" else all_fnp
            if n > capacity:
                unit = replace(unit, kind="unmappable",
                               reason=f"too large: needs {n} NPs, the chip has {capacity} "
                                      f"{'' if unit.kind == 'cnp' else 'FC-capable '}NPs")
            else:
                pool = [s for s in free if unit.kind == "cnp" or s in mesh.fnp_slots]
                if n > len(pool):
                    pass_index += 1
                    free = set(mesh.slots)
                    pool = [s for s in free if unit.kind == "cnp" or s in mesh.fnp_slots]
                anchors = [slot[0] for p in unit.producers if p in placed
                           and placed[p].pass_index == pass_index for slot in placed[p].nps]
                if not anchors:
                    anchors = [mesh.dma]

                def score(slot: Slot, anchors=anchors, kind=unit.kind) -> tuple:
                    dist = sum(mesh.hops[a][slot[0]] for a in anchors) / len(anchors)
                    spare_fnp = kind == "cnp" and slot in mesh.fnp_slots
                    return (dist, spare_fnp, slot[0][1], slot[0][0], slot[1])

                chosen = tuple(sorted(pool, key=score)[:n])
                free -= set(chosen)
                unit = replace(unit, nps=chosen, pass_index=pass_index)
        placed[unit.name] = unit
        out.append(unit)
    return out


def _criteria(units: list[Unit]) -> tuple[int, int, int]:
    """Lower is better: (unmapped layers, passes, -NPs used), as the akida mapper ranks."""
    mapped = [u for u in units if u.kind != "unmappable"]
    passes = max((u.pass_index for u in mapped), default=0) + 1
    return (sum(len(u.layers) for u in units if u.kind == "unmappable"), passes,
            -sum(u.np_count for u in mapped))


def map_workload(workload: Workload, arch: Config, mesh: Mesh | None = None) -> list[Unit]:
    """Plan and place every unit; `spread` mode searches a cap on filters per NP that uses the
    most NPs without more passes (bisection, as the akida mapper's default mode)."""
    mesh = mesh or build_mesh(arch)
    best = place(plan_units(workload, arch), arch, mesh)
    if arch.mapping_mode == "minimal":
        return best
    best_key = _criteria(best)
    lo, hi = 0, arch.max_filters_per_np
    while lo + 2 <= hi:
        mid = (lo + hi) // 2
        cand = place(plan_units(workload, arch, filters_cap=mid), arch, mesh)
        key = _criteria(cand)
        if key <= best_key:
            best, best_key, hi = cand, key, mid
        else:
            lo = mid
    return best
