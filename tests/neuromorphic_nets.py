"""Small CNN descriptions built two ways: as accelsim workloads and as akida models.

Used by the neuromorphic tests (cross-check with BrainChip's mapper) and by
`benchmarks/neuromorphic_calibration.py` (published clocks/frame and energy per inference).
Shapes follow Keras 'same' padding (TF style: the extra pad row/column goes after). A
separable layer is a depthwise 3x3 conv followed by a 1x1 conv in the workload and one
`SeparableConvolutional` in akida; `gap` puts a global average pool after a layer (fused in
akida, implicit in the workload: the next layer's input is 1x1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from accelsim.workload.layer import ConvShape, GemmShape, Layer, Workload


@dataclass(frozen=True)
class Spec:
    """One akida-style layer: `input` (first layer: InputConvolutional), `conv`, `sep`, `fc`."""

    kind: str
    filters: int
    kernel: int = 3
    stride: int = 1
    gap: bool = False


@dataclass(frozen=True)
class Net:
    name: str
    input_shape: tuple[int, int, int]
    """(H, W, C)"""
    layers: tuple[Spec, ...]


def _same(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """(output size, pad before, pad after) of TF 'same' padding."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return out, total // 2, total - total // 2


def to_workload(net: Net, frames: int = 1, density: float | None = 0.5,
                rng: np.random.Generator | None = None, act_bits: int = 4) -> Workload:
    """The net as a workload: shapes-only at `density`, or with random non-negative integer
    activations (values 0..2**act_bits-1, zero with probability 1-density) when `rng` is
    given."""
    h, w, c = net.input_shape
    layers: list[Layer] = []

    def add(layer: Layer) -> None:
        shape = layer.shape
        if rng is not None:
            hi = 2 ** act_bits - 1
            vals = rng.integers(1, hi + 1, size=shape.act_shape)
            keep = rng.random(shape.act_shape) < (density if density is not None else 1.0)
            layer.act = np.where(keep, vals, 0).astype(np.float16)
        else:
            layer.declared_act_density = density
        layers.append(layer)

    for i, spec in enumerate(net.layers):
        name = f"{spec.kind}{i}"
        if spec.kind in ("input", "conv"):
            e, pt, pb = _same(h, spec.kernel, spec.stride)
            f, pl, pr = _same(w, spec.kernel, spec.stride)
            add(Layer(name=name, op="conv2d", shape=ConvShape(
                N=frames, C=c, H=h, W=w, K=spec.filters, R=spec.kernel, S=spec.kernel,
                stride=(spec.stride, spec.stride), padding=(pt, pb, pl, pr))))
            h, w, c = e, f, spec.filters
        elif spec.kind == "sep":
            e, pt, pb = _same(h, spec.kernel, spec.stride)
            f, pl, pr = _same(w, spec.kernel, spec.stride)
            add(Layer(name=f"{name}_dw", op="conv2d", shape=ConvShape(
                N=frames, C=c, H=h, W=w, K=c, R=spec.kernel, S=spec.kernel,
                stride=(spec.stride, spec.stride), padding=(pt, pb, pl, pr), groups=c)))
            add(Layer(name=f"{name}_pw", op="conv2d", shape=ConvShape(
                N=frames, C=c, H=e, W=f, K=spec.filters, R=1, S=1)))
            h, w, c = e, f, spec.filters
        elif spec.kind == "fc":
            add(Layer(name=name, op="linear", shape=GemmShape(M=frames, K=h * w * c,
                                                              N=spec.filters)))
            h, w, c = 1, 1, spec.filters
        else:
            raise ValueError(spec.kind)
        if spec.gap:
            h = w = 1
    edges = [(a.name, b.name) for a, b in zip(layers, layers[1:])]
    return Workload(model=net.name, layers=layers, edges=edges)


def akida_layer_names(net: Net) -> list[tuple[str, tuple[str, ...]]]:
    """(akida layer name, workload layer names it covers) for every layer of the net."""
    out = []
    for i, spec in enumerate(net.layers):
        name = f"{spec.kind}{i}"
        out.append((name, (f"{name}_dw", f"{name}_pw") if spec.kind == "sep" else (name,)))
    return out


def to_akida(net: Net, weight_bits: int = 4, act_bits: int = 4, seed: int = 0):
    """The net as an akida (IP v1) model with random non-zero weights."""
    import akida

    rng = np.random.default_rng(seed)
    model = akida.Model()
    for i, spec in enumerate(net.layers):
        name = f"{spec.kind}{i}"
        pool = dict(pool_type=akida.PoolType.Average) if spec.gap else {}
        ks, st = (spec.kernel, spec.kernel), (spec.stride, spec.stride)
        if spec.kind == "input":
            layer = akida.InputConvolutional(
                input_shape=net.input_shape, kernel_size=ks, filters=spec.filters,
                kernel_stride=st, weights_bits=8, act_bits=act_bits, name=name, **pool)
        elif spec.kind == "conv":
            layer = akida.Convolutional(kernel_size=ks, filters=spec.filters, kernel_stride=st,
                                        weights_bits=weight_bits, act_bits=act_bits, name=name,
                                        **pool)
        elif spec.kind == "sep":
            layer = akida.SeparableConvolutional(
                kernel_size=ks, filters=spec.filters, kernel_stride=st,
                weights_bits=weight_bits, act_bits=act_bits, name=name, **pool)
        else:
            last = i == len(net.layers) - 1
            layer = akida.FullyConnected(units=spec.filters, weights_bits=weight_bits,
                                         act_bits=act_bits, activation=not last, name=name)
        model.add(layer)
    for layer in model.layers:
        for var in layer.get_variable_names():
            if var.startswith("weights"):
                bits = layer.parameters.weights_bits
                arr = layer.get_variable(var)
                hi = 2 ** (bits - 1) - 1 if bits > 1 else 1
                vals = rng.integers(1, hi + 1, size=arr.shape) * rng.choice([-1, 1], arr.shape)
                if bits == 1:
                    vals = np.ones(arr.shape)
                layer.set_variable(var, vals.astype(arr.dtype))
    return model


def to_akida_v2(net: Net, bits: int = 8):
    """The net as an akida IP v2 model (InputConv2D, Conv2D only) with `bits`-bit weights and
    outputs after the input layer (whose weights are 8-bit, as v2 requires)."""
    import akida

    model = akida.Model()
    for i, spec in enumerate(net.layers):
        name = f"{spec.kind}{i}"
        if spec.kind == "input":
            model.add(akida.InputConv2D(input_shape=net.input_shape, kernel_size=spec.kernel,
                                        filters=spec.filters, kernel_stride=spec.stride,
                                        output_bits=bits, name=name))
        elif spec.kind == "conv":
            model.add(akida.Conv2D(filters=spec.filters, kernel_size=spec.kernel,
                                   kernel_stride=spec.stride, weights_bits=bits,
                                   output_bits=bits, name=name))
        else:
            raise ValueError(f"to_akida_v2 builds input and conv layers only, not {spec.kind}")
    return model


def akida_nps(model, device, minimal: bool = True) -> dict[str, int]:
    """NPs per layer after mapping `model` on `device` (HRC-mapped input layer: 0)."""
    import akida

    mode = akida.MapMode.Minimal if minimal else akida.MapMode.AllNps
    model.map(device, hw_only=False, mode=mode)
    out = {}
    for layer in model.layers:
        mapping = layer.mapping
        if mapping is None:
            out[layer.name] = -1
        else:
            out[layer.name] = sum(1 for n in mapping.nps if "HRC" not in str(n.type))
    return out


# --- reference networks (akida_models 1.14.2 definitions) ----------------------------------

def ds_cnn_kws() -> Net:
    """DS-CNN keyword spotting (akida_models.kws.model_ds_cnn): 49x10x1 MFCC, 5x5/2 conv 64,
    four 3x3 separable 64 (the last with global average pooling), dense 33."""
    return Net("ds_cnn_kws", (49, 10, 1), (
        Spec("input", 64, 5, 2), Spec("sep", 64), Spec("sep", 64), Spec("sep", 64),
        Spec("sep", 64, gap=True), Spec("fc", 33)))


def akidanet(alpha: float = 0.5, size: int = 224, classes: int = 1000) -> Net:
    """AkidaNet (akida_models.imagenet.model_akidanet): four 3x3 convs then ten separable."""
    def f(n: int) -> int:
        return int(n * alpha)
    sep = [(256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1), (512, 1), (512, 1),
           (1024, 2)]
    layers = [Spec("input", f(32), 3, 2), Spec("conv", f(64)), Spec("conv", f(128), 3, 2),
              Spec("conv", f(128))]
    layers += [Spec("sep", f(k), 3, s) for k, s in sep]
    layers += [Spec("sep", f(1024), gap=True), Spec("fc", classes)]
    return Net(f"akidanet_{alpha}_{size}", (size, size, 3), tuple(layers))


def mobilenet_v1(alpha: float = 1.0, size: int = 224, classes: int = 1000) -> Net:
    """MobileNet v1 as akida_models builds it (3x3/2 conv 32, thirteen separable)."""
    def f(n: int) -> int:
        return int(n * alpha)
    sep = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1),
           (512, 1), (512, 1), (512, 1), (1024, 2)]
    layers = [Spec("input", f(32), 3, 2)] + [Spec("sep", f(k), 3, s) for k, s in sep]
    layers += [Spec("sep", f(1024), gap=True), Spec("fc", classes)]
    return Net(f"mobilenet_v1_{alpha}_{size}", (size, size, 3), tuple(layers))


def small_cnns() -> list[Net]:
    """Small CNNs for the NP cross-check: stripes, filter splits, separable, dense heads."""
    return [
        Net("tiny", (32, 32, 3), (Spec("input", 16, 3, 2), Spec("conv", 32), Spec("conv", 64, 3, 2),
                                  Spec("conv", 64, gap=True), Spec("fc", 10))),
        Net("wide_rows", (96, 40, 3), (Spec("input", 32, 3, 2), Spec("conv", 64),
                                       Spec("sep", 128), Spec("conv", 128, 3, 2),
                                       Spec("sep", 256, gap=True), Spec("fc", 10))),
        Net("deep_filters", (16, 16, 3), (Spec("input", 64), Spec("conv", 128), Spec("conv", 256),
                                          Spec("conv", 512, 3, 2), Spec("sep", 512, gap=True),
                                          Spec("fc", 100))),
        Net("kernels", (48, 48, 1), (Spec("input", 32, 5, 2), Spec("conv", 48, 5), Spec("conv", 64, 1),
                                     Spec("conv", 64, 7), Spec("sep", 96, 3, 2), Spec("fc", 12))),
        Net("flat_head", (24, 24, 3), (Spec("input", 24, 3), Spec("conv", 48, 3, 2),
                                       Spec("conv", 96, 3, 2), Spec("fc", 64), Spec("fc", 10))),
        Net("sep_stack", (64, 64, 3), (Spec("input", 16, 3, 2), Spec("sep", 32), Spec("sep", 64, 3, 2),
                                       Spec("sep", 128), Spec("sep", 256, 3, 2),
                                       Spec("sep", 512, gap=True), Spec("fc", 20))),
    ]


# --- random akida models (mapper cross-check) -------------------------------------------------

V1_DEVICES = ("AKD1000", "AKD1500", "TwoNodesIPv1")
V2_DEVICES = ("TwoNodesIPv2", "FourNodesIPv2", "SixNodesIPv2", "TwelveNodesIPv2")


def _filters(rng: np.random.Generator, most: int = 640) -> int:
    """Mostly multiples of 8 (as trained models use), sometimes any count."""
    if rng.random() < 0.7:
        return int(rng.integers(1, most // 8 + 1)) * 8
    return int(rng.integers(1, most + 1))


def set_random_variables(model, rng: np.random.Generator) -> None:
    """Non-zero random weights in each layer's range, and thresholds, steps, biases and shifts
    that give outputs neither all zero nor saturated (akida refuses all-zero input weights)."""
    for layer in model.layers:
        for var in layer.get_variable_names():
            arr = layer.get_variable(var)
            if var.startswith("weights"):
                bits = layer.parameters.weights_bits
                if bits == 1:
                    vals = np.ones(arr.shape)
                else:
                    hi = 2 ** (bits - 1) - 1
                    vals = rng.integers(1, hi + 1, size=arr.shape) * rng.choice([-1, 1], arr.shape)
            elif var == "threshold":
                vals = rng.integers(0, 40, size=arr.shape)
            elif var == "act_step":
                vals = rng.uniform(4.0, 40.0, size=arr.shape)
            elif var == "bias":
                vals = rng.integers(-20, 6, size=arr.shape)
            elif var == "output_shift":
                # akida refuses a shift on a layer without activation
                active = "activation" in dir(layer.parameters) and layer.parameters.activation
                vals = np.full(arr.shape, 5 if active else 0)
            else:
                continue
            layer.set_variable(var, vals.astype(arr.dtype))


def random_akida_v1(rng: np.random.Generator):
    """A random Akida 1.0 model: InputConvolutional, 1-6 Convolutional / SeparableConvolutional
    layers (kernels 1-7, stride 2 on 3x3, 1/2/4-bit, max pooling before another conv, a global
    average pool at the end where akida takes one), 0-2 FullyConnected layers; within the layer
    limits akida states, so that most models map."""
    import akida

    ab = lambda: int(rng.choice([1, 2, 4]))  # noqa: E731
    h, w, c = int(rng.integers(8, 81)), int(rng.integers(8, 81)), int(rng.choice([1, 3]))
    k = int(rng.choice([3, 5, 7]))
    most = {3: 192, 5: 64, 7: 32}[k] * (3 // c)
    model = akida.Model()
    pool = dict(pool_type=akida.PoolType.Max, pool_size=(2, 2)) if rng.random() < 0.3 else {}
    model.add(akida.InputConvolutional(
        input_shape=(h, w, c), kernel_size=(k, k), filters=_filters(rng, min(most, 64)),
        kernel_stride=(int(rng.integers(1, 3)),) * 2, weights_bits=8, act_bits=ab(), name="in",
        **pool))
    n = int(rng.integers(1, 7))
    for i in range(n):
        last = i == n - 1
        h, w = (int(d) for d in model.layers[-1].output_dims[:2])
        pool = {}
        if not last and rng.random() < 0.2:
            pool = dict(pool_type=akida.PoolType.Max, pool_size=(2, 2))
        elif last and min(h, w) >= 3 and max(h, w) <= 32 and rng.random() < 0.5:
            pool = dict(pool_type=akida.PoolType.Average)
        if rng.random() < 0.6:
            k = int(rng.choice([1, 3, 5, 7]))
            s = 2 if k == 3 and rng.random() < 0.3 else 1
            model.add(akida.Convolutional(kernel_size=(k, k), filters=_filters(rng, 512),
                                          kernel_stride=(s, s), weights_bits=ab(),
                                          act_bits=ab(), name=f"conv{i}", **pool))
        else:
            s = 2 if rng.random() < 0.3 else 1
            model.add(akida.SeparableConvolutional(
                kernel_size=(3, 3), filters=_filters(rng, 512), kernel_stride=(s, s),
                weights_bits=int(rng.choice([2, 4])), act_bits=ab(), name=f"sep{i}", **pool))
    dense = int(rng.integers(0, 3))
    if np.prod(model.layers[-1].output_dims) > 57334:
        dense = 0
    for j in range(dense):
        model.add(akida.FullyConnected(units=int(rng.integers(2, 400)), weights_bits=ab(),
                                       act_bits=ab(), activation=j < dense - 1, name=f"fc{j}"))
    set_random_variables(model, rng)
    return model


def random_akida_v2(rng: np.random.Generator):
    """A random Akida 2.0 model: InputConv2D, 1-6 Conv2D / DepthwiseConv2D layers (kernels
    1-7, stride 2 on 3x3 and 1x1 convs, 4/8-bit, max pooling without stride), 0-2 Dense1D layers
    where their inputs fit; weights never wider than their input codes and no 4-bit depthwise
    weights with 8-bit outputs, as the v2 layers require."""
    import akida

    model = akida.Model()
    h, w, c = int(rng.integers(8, 81)), int(rng.integers(8, 81)), int(rng.choice([1, 3]))
    bits = int(rng.choice([4, 8]))
    model.add(akida.InputConv2D(input_shape=(h, w, c), kernel_size=int(rng.choice([3, 5, 7])),
                                filters=_filters(rng, 64), kernel_stride=int(rng.integers(1, 3)),
                                output_bits=bits, name="in"))
    n = int(rng.integers(1, 7))
    for i in range(n):
        last = i == n - 1
        out = int(rng.choice([4, 8]))
        if rng.random() < 0.65:
            k = int(rng.choice([1, 3, 5, 7]))
            s = 2 if k in (1, 3) and rng.random() < 0.3 else 1
            pool = {}
            if s == 1 and not last and rng.random() < 0.2:
                pool = dict(pool_type=akida.PoolType.Max, pool_size=2)
            wbits = int(rng.choice([4, 8])) if bits == 8 else 4
            model.add(akida.Conv2D(filters=_filters(rng, 512), kernel_size=k, kernel_stride=s,
                                   weights_bits=wbits, output_bits=out, name=f"conv{i}", **pool))
        else:
            k = int(rng.choice([3, 3, 5, 7]))
            s = 2 if k == 3 and rng.random() < 0.3 else 1
            wbits = bits if out == 4 else 8
            if wbits > bits:
                out, wbits = 4, bits
            model.add(akida.DepthwiseConv2D(kernel_size=k,
                                            kernel_stride=s, weights_bits=wbits,
                                            output_bits=out, name=f"dw{i}"))
        bits = out
    dense = int(rng.integers(0, 3))
    if np.prod(model.layers[-1].output_dims) > 2048:
        dense = 0
    for j in range(dense):
        wbits = 4 if bits == 4 else int(rng.choice([4, 8]))
        hidden = j < dense - 1
        out = (4 if wbits == 4 else 8) if hidden else (32 if wbits == 4 else 8)
        model.add(akida.Dense1D(
            units=int(rng.integers(2, 400)), weights_bits=wbits, output_bits=out,
            activation=akida.ActivationType.ReLU if hidden else akida.ActivationType.NoActivation,
            name=f"fc{j}"))
        bits = out
    set_random_variables(model, rng)
    return model


def akida_device(name: str, model=None):
    """An akida virtual device by name; `create:<cnps>:<fnps>` makes `akida.create_device`'s
    mesh and `min` the smallest v2 device for `model` (`akida.compute_min_device`)."""
    import akida

    if name.startswith("create:"):
        _, cnps, fnps = name.split(":")
        return akida.create_device(int(cnps), int(fnps))
    if name == "min":
        return akida.compute_min_device(model)
    return getattr(akida, name)()


def akida_layer_nps(model, device, minimal: bool) -> dict[str, int] | None:
    """NPs per akida layer mapped in hardware (0 on the input unit); None when akida cannot map
    the whole model in hardware on `device`."""
    import akida

    mode = akida.MapMode.Minimal if minimal else akida.MapMode.AllNps
    try:
        model.map(device, hw_only=True, mode=mode)
    except Exception:               # akida raises RuntimeError / ValueError with its reason
        return None
    return {layer.name: sum(1 for n in layer.mapping.nps if "HRC" not in str(n.type))
            for layer in model.layers if layer.mapping is not None}
