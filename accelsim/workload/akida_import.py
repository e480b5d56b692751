"""Import a BrainChip akida model as a workload whose activations are akida's own integer codes.

`import_akida(model, inputs)` runs akida's software forward pass (the `akida` package, PyPI,
numpy only) on the inputs and records, for every layer the NPs compute:

* its geometry in the trace format's terms (DESIGN.md §3): `conv2d` for InputConvolutional,
  Convolutional, InputConv2D, Conv2D and DepthwiseConv2D (groups = C), `linear` for
  FullyConnected and Dense1D (input flattened in akida's H, W, C order); strides and
  TF-"same" padding (the odd pad row / column after, as akida pads: checked against its
  forward pass in tests/test_akida_import.py) or none for "valid";
* a v1 SeparableConvolutional as two layers, `<name>_dw` (the depthwise conv on the layer's
  input) and `<name>_pw` (the 1x1 conv), the pointwise input being the real intermediate: the
  depthwise potentials akida computes inside the NP (a true convolution, kernel flipped, no
  activation between the two), recomputed here in integers from the layer's own weights and
  stored as their non-zero map (`mask/<name>_pw`), which is what sends work to the pointwise
  filters;
* pooling folded honestly: the layer's geometry is its convolution, the pooled output is what
  its consumers read (their input shape and codes are akida's pooled outputs), and the pooling
  is kept in the layer's `info.pool` (`max` with size and stride, or global `average`);
* `act_bits`: the width of the layer's input codes (the producer's `act_bits` / `output_bits`,
  the input layer's 8-bit pixels or InputData's `input_bits`); `weight_bits`: its
  `weights_bits`;
* the input codes themselves, `act/<name>` (float16 holds every code of up to 11 bits
  exactly; wider codes are stored as their non-zero map), with `info.act_scale = 1`: the value
  of one code step, so an event is a non-zero code and the events are akida's by construction;
* `info`: `akida_layer` (the akida layer the row comes from, for cross-checks with akida's
  mapper), `akida_type`, `output_bits`, `activation`, `pool`, and for separable parts
  `akida_part`.

Add and Concatenate (IP v2 skip connections) are merges, not NP layers of their own: a consumer
of a merge reads the merged codes and has every layer feeding the merge as a producer.
InputData and Dequantizer compute nothing and leave no row. Other layer types (transposed and
temporal convolutions, recurrent and post-processing layers) have no trace-format op and are
refused with the layer's name.

Without `inputs`, `frames` inputs are generated: uniform random integers over the input's
code range (0..255 for 8-bit pixels, or InputData's `input_bits`), seed `seed`. Events then
follow akida's own quantisation but of noise, not of real data: pass real inputs to measure a
model's real sparsity.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from accelsim.errors import WorkloadError
from accelsim.workload.layer import ConvShape, GemmShape, Layer, Workload

INSTALL_HINT = ("pip install 'accelsim[akida]' (BrainChip's akida 2.19.3, CPython 3.10-3.12 on "
                "Linux or Windows)")
_CONVS = {"InputConvolutional", "Convolutional", "InputConv2D", "Conv2D", "DepthwiseConv2D",
          "SeparableConvolutional"}
_DENSE = {"FullyConnected", "Dense1D"}
_MERGES = {"Add", "Concatenate"}
_PASSIVE = {"InputData", "Dequantizer"}
_FLOAT16_EXACT = 2048
"""Largest magnitude up to which float16 holds every integer exactly."""


def require_akida() -> Any:
    """The `akida` module, or a WorkloadError saying how to install it."""
    try:
        import akida
    except ImportError:
        raise WorkloadError(
            "importing an akida model needs BrainChip's `akida` package, which is not installed "
            f"here. Install it with: {INSTALL_HINT}.") from None
    return akida


def load_akida_model(path: str | Path) -> Any:
    """An `akida.Model` from a saved `.fbz`, or from a quantized Keras `.h5` converted with
    BrainChip's `cnn2snn` (which needs TensorFlow)."""
    akida = require_akida()
    path = Path(path)
    if not path.is_file():
        raise WorkloadError(f"{path}: no such model file. Pass an akida model saved with "
                            "Model.save (.fbz) or a quantized Keras model (.h5).")
    suffix = path.suffix.lower()
    if suffix == ".fbz":
        try:
            return akida.Model(str(path))
        except (RuntimeError, ValueError) as exc:
            raise WorkloadError(f"{path}: akida could not read this model ({exc}). Save it "
                                "again with akida.Model.save from akida 2.x.") from None
    if suffix == ".h5":
        try:
            from cnn2snn import convert
            from quantizeml.models import load_model
        except ImportError:
            raise WorkloadError(
                f"{path}: a Keras .h5 model is converted with BrainChip's cnn2snn, which is not "
                "installed here. Install it with: pip install cnn2snn==2.19.3 (brings "
                "TensorFlow and quantizeml), or convert the model to .fbz where cnn2snn is "
                "installed (cnn2snn.convert(model).save('model.fbz')).") from None
        try:
            return convert(load_model(str(path)))
        except Exception as exc:          # cnn2snn raises many types for unconvertible models
            raise WorkloadError(f"{path}: cnn2snn could not convert this Keras model ({exc}). "
                                "It must be quantized with quantizeml first.") from None
    raise WorkloadError(f"{path}: unknown model file type '{path.suffix}'. Pass an akida .fbz "
                        "or a quantized Keras .h5.")


def _type(layer: Any) -> str:
    return str(layer.parameters.layer_type).rsplit(".", 1)[-1]


def _param(layer: Any, name: str, default: Any = None) -> Any:
    """A layer parameter, or `default` when the layer type has none of that name."""
    try:
        return getattr(layer.parameters, name)
    except (AttributeError, ValueError):          # akida raises ValueError for a missing key
        return default


def _input_bits(model: Any) -> tuple[int, bool]:
    """(bits, signed) of the codes the model's first layer reads."""
    first = model.layers[0]
    if _type(first) == "InputData":
        return int(_param(first, "input_bits", 8)), bool(_param(first, "input_signed", 0))
    return 8, False


def _output_bits(layer: Any, source_bits: dict[str, int]) -> int:
    """Width of the codes `layer` outputs."""
    kind = _type(layer)
    if kind == "InputData":
        return int(_param(layer, "input_bits", 8))
    if kind == "Concatenate":
        return max(source_bits[i.name] for i in layer.inbounds)
    bits = _param(layer, "output_bits", None)
    if bits is None:
        bits = _param(layer, "act_bits", 8)
    return int(bits)


def _inputs(model: Any, inputs: np.ndarray | None, frames: int, seed: int) -> np.ndarray:
    shape = tuple(int(d) for d in model.input_shape)
    bits, signed = _input_bits(model)
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)
    dtype = np.int8 if signed else np.uint8
    if inputs is None:
        if frames < 1:
            raise WorkloadError(f"frames must be at least 1, got {frames}.")
        rng = np.random.default_rng(seed)
        return rng.integers(lo, hi + 1, size=(frames, *shape)).astype(dtype)
    x = np.asarray(inputs)
    if x.ndim == len(shape):
        x = x[None]
    if x.shape[1:] != shape:
        raise WorkloadError(f"inputs have shape {list(x.shape)}; the model takes (N, "
                            f"{', '.join(map(str, shape))}) (channels last). Reshape or "
                            "transpose them to that layout.")
    if not np.issubdtype(x.dtype, np.number) or (
            not np.issubdtype(x.dtype, np.integer)
            and not (np.all(np.isfinite(x)) and np.all(x == np.round(x)))):
        raise WorkloadError("inputs must be integer codes (akida reads 8-bit pixels or "
                            f"InputData's {bits}-bit codes), got values of dtype {x.dtype} that "
                            "are not all integers. Quantize them as the model was trained.")
    if x.size and (x.min() < lo or x.max() > hi):
        raise WorkloadError(f"inputs range over [{x.min()}, {x.max()}], the model's input "
                            f"takes {'signed' if signed else 'unsigned'} {bits}-bit codes "
                            f"[{lo}, {hi}]. Rescale them to that range.")
    return x.astype(dtype)


def _ancestors(layer: Any, order: dict[str, int]) -> list[Any]:
    seen: dict[str, Any] = {}
    stack = [layer]
    while stack:
        cur = stack.pop()
        if cur.name not in seen:
            seen[cur.name] = cur
            stack.extend(cur.inbounds)
    return sorted(seen.values(), key=lambda lay: order[lay.name])


def _forward_all(akida: Any, model: Any, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every layer's output codes (N, H, W, C), from akida's forward pass of the sub-model
    that ends at that layer."""
    order = {layer.name: i for i, layer in enumerate(model.layers)}
    outputs: dict[str, np.ndarray] = {}
    for layer in model.layers:
        if _type(layer) == "InputData":
            outputs[layer.name] = x
            continue
        sub = akida.Model(layers=_ancestors(layer, order))
        outputs[layer.name] = np.asarray(sub.forward(x))
    return outputs


def _same(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """(output size, pad before, pad after) of TF-style 'same' padding."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return out, total // 2, total - total // 2


def _conv_geometry(layer: Any, kind: str) -> dict[str, Any]:
    """Kernel, stride, padding and pooling of an akida conv layer, along (H, W) = akida's
    (x, y), the first two axes of its channels-last tensors."""
    if kind in ("InputConv2D", "Conv2D", "DepthwiseConv2D"):
        k = int(_param(layer, "kernel_size"))
        kernel, stride = (k, k), (int(_param(layer, "kernel_stride")),) * 2
        size = int(_param(layer, "pool_size", -1))
        pstride = int(_param(layer, "pool_stride", -1))
        pool_size = (size, size)
        pool_stride = (pstride, pstride) if pstride > 0 else pool_size
    else:
        w = layer.get_variable("weights")
        kernel = (int(w.shape[0]), int(w.shape[1]))
        stride = (int(_param(layer, "stride_x", 1)), int(_param(layer, "stride_y", 1)))
        pool_size = (int(_param(layer, "pooling_width", -1)),
                     int(_param(layer, "pooling_height", -1)))
        pool_stride = (int(_param(layer, "pooling_stride_x", -1)),
                       int(_param(layer, "pooling_stride_y", -1)))
    pool_type = int(_param(layer, "pool_type", 0))
    pool: dict[str, Any] | None = None
    if pool_type == 1:
        pool = {"type": "max", "size": list(pool_size), "stride": list(pool_stride)}
    elif pool_type == 2:
        pool = {"type": "average", "size": "global" if pool_size[0] < 1 else list(pool_size)}
    h, w_, _ = (int(d) for d in layer.input_dims)
    if int(_param(layer, "padding", 1)) == 0:                     # Padding.Valid
        padding = (0, 0, 0, 0)
    else:
        _, top, bottom = _same(h, kernel[0], stride[0])
        _, left, right = _same(w_, kernel[1], stride[1])
        padding = (top, bottom, left, right)
    return {"kernel": kernel, "stride": stride, "padding": padding, "pool": pool}


def _nchw(codes: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(codes, (0, 3, 1, 2)))


def _store(layer: Layer, codes: np.ndarray) -> None:
    """Attach the input codes: values where float16 holds them exactly, else the non-zero map."""
    if codes.size and np.abs(codes.astype(np.int64)).max() > _FLOAT16_EXACT:
        layer.act_mask = codes != 0
    else:
        layer.act = codes.astype(np.float16)


def depthwise_potentials(codes: np.ndarray, weights: np.ndarray, stride: tuple[int, int],
                         padding: tuple[int, int, int, int]) -> np.ndarray:
    """Integer depthwise potentials (N, E, F, C) of channels-last `codes` with the v1
    SeparableConvolutional depthwise `weights` (R, S, C, 1): a true convolution (the kernel
    flipped, as akida computes it), zero padding (top, bottom, left, right)."""
    n, h, w, c = codes.shape
    r, s = weights.shape[:2]
    kern = weights[::-1, ::-1, :, 0].astype(np.int64)
    top, bottom, left, right = padding
    xp = np.pad(codes.astype(np.int64), ((0, 0), (top, bottom), (left, right), (0, 0)))
    e = (h + top + bottom - r) // stride[0] + 1
    f = (w + left + right - s) // stride[1] + 1
    out = np.zeros((n, e, f, c), dtype=np.int64)
    for i in range(r):
        for j in range(s):
            out += xp[:, i:i + stride[0] * e:stride[0], j:j + stride[1] * f:stride[1], :] * kern[i, j]
    return out


def _unique(name: str, taken: set[str]) -> str:
    base = name.replace("/", "_") or "layer"
    out, i = base, 1
    while out in taken:
        i += 1
        out = f"{base}_{i}"
    taken.add(out)
    return out


def import_akida(model: Any, inputs: np.ndarray | None = None, *, frames: int = 4,
                 seed: int = 0, name: str | None = None, source: str | None = None) -> Workload:
    """The workload of an `akida.Model` run on `inputs` (N, H, W, C integer codes; None:
    `frames` generated ones, see the module docstring). `source` names where the model came
    from (a file path) in the workload's provenance."""
    akida = require_akida()
    if not isinstance(model, akida.Model):
        raise WorkloadError(f"import_akida takes an akida.Model, got {type(model).__name__}. "
                            "Load a saved model with load_akida_model(path).")
    if not model.layers:
        raise WorkloadError("the akida model has no layers.")
    for layer in model.layers:
        kind = _type(layer)
        if kind not in _CONVS | _DENSE | _MERGES | _PASSIVE:
            raise WorkloadError(
                f"akida layer '{layer.name}' is a {kind}, which has no trace-format op (the "
                "importer takes InputData, InputConvolutional, Convolutional, "
                "SeparableConvolutional, FullyConnected, InputConv2D, Conv2D, DepthwiseConv2D, "
                "Dense1D, Add, Concatenate and Dequantizer). Import the model without it.")
    x = _inputs(model, inputs, frames, seed)
    outputs = _forward_all(akida, model, x)
    in_bits, _ = _input_bits(model)
    bits_out: dict[str, int] = {}
    feeds: dict[str, list[str]] = {}
    """Trace layers whose outputs make up each akida layer's output."""
    layers: list[Layer] = []
    edges: list[tuple[str, str]] = []
    taken: set[str] = set()
    version = str(model.ip_version).rsplit(".", 1)[-1]
    for layer in model.layers:
        kind = _type(layer)
        inbounds = list(layer.inbounds)
        codes = outputs[inbounds[0].name] if inbounds else x
        act_bits = bits_out[inbounds[0].name] if inbounds else in_bits
        producers = [p for i in inbounds for p in feeds[i.name]]
        if kind in _PASSIVE or kind in _MERGES:
            feeds[layer.name] = producers
            bits_out[layer.name] = act_bits if kind == "Dequantizer" else \
                _output_bits(layer, bits_out)
            continue
        bits_out[layer.name] = _output_bits(layer, bits_out)
        info: dict[str, Any] = {
            "akida_layer": layer.name, "akida_type": kind, "ip_version": version,
            "output_bits": bits_out[layer.name], "activation": bool(_param(layer, "activation", 0)),
            "act_scale": 1.0,
        }
        wbits = int(_param(layer, "weights_bits", 8))
        n = x.shape[0]
        if kind in _DENSE:
            k = int(np.prod([int(d) for d in layer.input_dims]))
            row = Layer(name=_unique(layer.name, taken), op="linear",
                        shape=GemmShape(M=n, K=k, N=int(_param(layer, "units"))),
                        act_bits=act_bits, weight_bits=wbits, extra=info)
            _store(row, codes.reshape(n, k))
            rows = [row]
        else:
            g = _conv_geometry(layer, kind)
            if g["pool"] is not None:
                info["pool"] = g["pool"]
            h, w, c = (int(d) for d in layer.input_dims)
            depthwise = kind in ("DepthwiseConv2D", "SeparableConvolutional")
            filters = c if kind == "DepthwiseConv2D" else int(_param(layer, "filters"))
            shape = ConvShape(N=n, C=c, H=h, W=w, K=c if depthwise else filters,
                              R=g["kernel"][0], S=g["kernel"][1], stride=g["stride"],
                              padding=g["padding"], groups=c if depthwise else 1)
            if kind != "SeparableConvolutional":
                row = Layer(name=_unique(layer.name, taken), op="conv2d", shape=shape,
                            act_bits=act_bits, weight_bits=wbits, extra=info)
                _store(row, _nchw(codes))
                rows = [row]
            else:
                dw = Layer(name=_unique(f"{layer.name}_dw", taken), op="conv2d", shape=shape,
                           act_bits=act_bits, weight_bits=wbits,
                           extra={**info, "akida_part": "depthwise"})
                _store(dw, _nchw(codes))
                pot = depthwise_potentials(codes, layer.get_variable("weights"), g["stride"],
                                           g["padding"])
                pw_info = {k: v for k, v in info.items() if k != "act_scale"}
                pw = Layer(name=_unique(f"{layer.name}_pw", taken), op="conv2d",
                           shape=ConvShape(N=n, C=c, H=shape.E, W=shape.F, K=filters, R=1, S=1),
                           act_bits=act_bits, weight_bits=wbits, act_mask=_nchw(pot) != 0,
                           extra={**pw_info, "akida_part": "pointwise"})
                rows = [dw, pw]
        edges.extend((p, rows[0].name) for p in producers)
        edges.extend((a.name, b.name) for a, b in zip(rows, rows[1:]))
        layers.extend(rows)
        feeds[layer.name] = [rows[-1].name]
    if not layers:
        raise WorkloadError("the akida model has no layer that computes (only input, merge or "
                            "dequantizer layers).")
    return Workload(
        model=name or getattr(model.layers[-1], "name", "akida_model"),
        layers=layers, edges=list(dict.fromkeys(edges)),
        source={"package": "akida", "version": getattr(akida, "__version__", "?"),
                "model": source or "akida.Model object", "ip_version": version,
                "inputs": ("given" if inputs is not None else
                           f"generated: {x.shape[0]} uniform random {in_bits}-bit codes, "
                           f"seed {seed}"),
                "frames": int(x.shape[0])})


def read_inputs(path: str | Path) -> np.ndarray:
    """Input codes from a `.npy` file (N, H, W, C), read without pickles."""
    path = Path(path)
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise WorkloadError(f"{path}: no such inputs file. Pass a .npy array of the model's "
                            "inputs, (N, H, W, C) integer codes.") from None
    except (ValueError, OSError) as exc:
        raise WorkloadError(f"{path}: not a readable .npy array ({exc}). Save the inputs with "
                            "numpy.save as an (N, H, W, C) integer array.") from None
    if not isinstance(arr, np.ndarray):
        arr.close()
        raise WorkloadError(f"{path}: holds several arrays (an .npz); pass one .npy array of "
                            "(N, H, W, C) integer codes, saved with numpy.save.")
    return arr


def import_akida_file(model_path: str | Path, inputs_path: str | Path | None = None, *,
                      frames: int = 4, seed: int = 0) -> Workload:
    """`import_akida` of a saved model (`.fbz`, or `.h5` through cnn2snn) on the inputs in
    `inputs_path` (a `.npy`; None: generated)."""
    model = load_akida_model(model_path)
    inputs = read_inputs(inputs_path) if inputs_path is not None else None
    try:
        return import_akida(model, inputs, frames=frames, seed=seed, name=Path(model_path).stem,
                            source=str(model_path))
    except WorkloadError as exc:
        raise WorkloadError(f"{model_path}: {exc}") from None
