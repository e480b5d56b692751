"""GPU kernel-choice engine: configs, operand statistics, time-model invariants, results, CLI."""

from __future__ import annotations

import functools
import io
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.cli import main
from accelsim.engines import gpu
from accelsim.engines.gpu.breakeven import curve, shape_dims
from accelsim.engines.gpu.config import SIMT_FLOP, TENSOR_FLOP
from accelsim.engines.gpu.count import choice_warnings
from accelsim.engines.gpu.kernels import (
    DTYPE_BITS,
    DenseKernel,
    KernelTime,
    NmKernel,
    available,
    breakeven,
    compressed_fraction,
    crossing,
    dense_time,
    nm_time,
    tiled_gemm,
    time_at,
    times_at,
)
from accelsim.engines.shared_gemm_operand import (
    GemmDims,
    RandomOperand,
    TraceOperand,
    gemm_dims,
    in_bounds_elements,
)
from accelsim.errors import ArchError
from accelsim.kinds import load_arch, parse_arch
from accelsim.simulate import simulate
from accelsim.workload import ConvShape, GemmShape, Layer, Workload, load_workload
from tests.reference import (
    a_stats_reference,
    crossing_reference,
    im2col_mask_reference,
    nm_compressed_bits_reference,
    nm_reference,
    tiled_gemm_reference,
)
from tests.test_format import make_workload

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "arch_configs"
DIGITS = ROOT / "workloads" / "digits_cnn.npz"


def gpu_arch(name: str = "a100") -> gpu.Config:
    arch = load_arch(CONFIGS / f"{name}.yaml")
    assert isinstance(arch, gpu.Config)
    return arch


def linear(M: int, K: int, N: int, density: float = 1.0) -> Layer:
    return Layer("g", "linear", GemmShape(M=M, K=K, N=N), declared_act_density=density)


# --- configs ---------------------------------------------------------------------------------


def test_configs_carry_published_peaks_and_bandwidths():
    a100, h100, v100 = gpu_arch("a100"), gpu_arch("h100"), gpu_arch("v100")
    # NVIDIA A100/H100/V100 whitepapers (sources in the YAML files).
    assert (a100.peak_tflops["fp16"], a100.sparse_peak_tflops["fp16"]) == (312, 624)
    assert (a100.peak_tflops["int8"], a100.sparse_peak_tflops["int8"]) == (624, 1248)
    assert a100.machine().dram_bytes_per_s == pytest.approx(2.039e12, rel=1e-3)
    assert (h100.peak_tflops["fp16"], h100.sparse_peak_tflops["fp16"]) == (989.4, 1978.9)
    assert h100.machine().dram_bytes_per_s == pytest.approx(3.35e12, rel=1e-3)
    assert v100.peak_tflops["fp32"] == 15.7 and not v100.sparse_peak_tflops
    assert v100.machine().dram_bytes_per_s == pytest.approx(0.9e12, rel=1e-3)
    for arch in (a100, h100, v100):
        assert all(k.source for k in arch.kernels.values())
        assert arch.precision.act_bits == DTYPE_BITS[arch.dtype]


def test_dense_equivalent_keeps_only_dense_and_dtype_switch_revalidates():
    a100 = gpu_arch()
    assert list(a100.dense_equivalent().kernels) == ["dense"]
    fp32 = a100.with_dtype("fp32")
    assert fp32.precision.act_bits == 32 and fp32.machine().sparse_flops_per_s is None
    with pytest.raises(ArchError, match="fp8"):
        a100.with_dtype("fp8")  # the A100 has no FP8 peak


def refused(mutate) -> str:
    """The error a mutated copy of the A100 description is refused with."""
    data = json.loads(json.dumps(gpu_arch().model_dump(mode="json")))
    data.pop("precision")
    mutate(data)
    with pytest.raises(ArchError) as err:
        parse_arch(data, "a100-test.yaml")
    return str(err.value)


def test_bad_gpu_descriptions_name_the_key():
    assert "unknown dtype" in refused(lambda d: d["kernels"]["csr"]["compute_efficiency"].update(fp99=0.1))
    assert "(0, 1]" in refused(lambda d: d["kernels"]["csr"]["compute_efficiency"].update(fp16=1.5))
    assert "named 'dense'" in refused(lambda d: d["kernels"].pop("dense"))
    assert "dram" in refused(lambda d: d.update(memory=[]))
    assert "unknown 'type'" in refused(lambda d: d["kernels"]["csr"].update(type="coo"))
    assert "precision" in refused(lambda d: d.update(precision={"act_bits": 8, "weight_bits": 8}))


def test_kernel_without_an_efficiency_for_the_dtype_is_a_clear_error():
    data = gpu_arch().model_dump(mode="json")
    data.pop("precision")
    data["kernels"]["csr"]["compute_efficiency"] = {"fp16": 0.1}
    arch = parse_arch(data, "t").with_dtype("bf16")
    with pytest.raises(ArchError, match="kernel 'csr' has no compute_efficiency for dtype 'bf16'"):
        gpu.simulate(linear(64, 64, 64, 0.5), arch)


# --- operand statistics against the element-by-element reference ------------------------------


@st.composite
def traced_layers(draw) -> Layer:
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    density = draw(st.floats(0.0, 1.0))
    if draw(st.booleans()):
        batch, M, K = draw(st.integers(1, 2)), draw(st.integers(1, 12)), draw(st.integers(1, 20))
        shape = GemmShape(M=M, K=K, N=3, batch=batch)
        return Layer("l", "matmul" if batch > 1 else "linear", shape,
                     act_mask=rng.random(shape.act_shape) < density)
    groups = draw(st.sampled_from([1, 2]))
    C = groups * draw(st.integers(1, 6))
    R, S = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    H, W = draw(st.integers(R, 7)), draw(st.integers(S, 7))
    pad = tuple(draw(st.integers(0, 2)) for _ in range(4))
    shape = ConvShape(N=draw(st.integers(1, 2)), C=C, H=H, W=W, K=groups * 2, R=R, S=S,
                      stride=(draw(st.integers(1, 2)), draw(st.integers(1, 2))), padding=pad,
                      dilation=(draw(st.integers(1, 2)), 1), groups=groups)
    if shape.E < 1 or shape.F < 1:
        shape = ConvShape(N=1, C=C, H=H, W=W, K=groups * 2, R=R, S=S, groups=groups)
    return Layer("c", "conv2d", shape, act_mask=rng.random(shape.act_shape) < density)


@settings(max_examples=80, deadline=None)
@given(layer=traced_layers(), n=st.integers(1, 3), block=st.integers(1, 5), rows=st.integers(1, 5))
def test_trace_operand_statistics_match_loop_reference(layer, n, block, rows):
    m = n + 2
    s = layer.shape
    chunk = s.C // s.groups if isinstance(s, ConvShape) else s.K
    ref = a_stats_reference(im2col_mask_reference(layer.nonzero(), s), chunk, n, m, block,
                            block + 1, rows)
    op = TraceOperand(layer)
    assert op.dims.a_elements == ref["elements"]
    assert op.nonzeros == ref["nonzeros"]
    conformance, _ = nm_reference(layer.nonzero(), s, n, m)  # N:M segments, as `inspect` has them
    if conformance is None:
        assert math.isnan(op.nm_conformance(n, m))
    else:
        assert op.nm_conformance(n, m) == pytest.approx(conformance)
        assert op.nm_all_conform(n, m) == (conformance == 1.0)
    assert op.block_density(block, block + 1) == pytest.approx(ref["block_density"])
    assert op.union_density(rows) == pytest.approx(ref["union_density"])
    ones = a_stats_reference(im2col_mask_reference(np.ones(s.act_shape, bool), s), chunk, n, m,
                             1, 1, 1)
    assert in_bounds_elements(layer) == ones["nonzeros"]


def test_random_operand_is_the_expectation_of_independent_zeros():
    rng = np.random.default_rng(3)
    density = 0.3
    layer = Layer("l", "linear", GemmShape(M=512, K=1024, N=8),
                  act_mask=rng.random((512, 1024)) < density)
    measured, expected = TraceOperand(layer), RandomOperand.for_layer(layer, density)
    assert measured.density == pytest.approx(expected.density, abs=0.005)
    assert measured.nm_conformance(2, 4) == pytest.approx(expected.nm_conformance(2, 4), abs=0.01)
    assert measured.block_density(2, 2) == pytest.approx(expected.block_density(2, 2), abs=0.01)
    assert measured.union_density(4) == pytest.approx(expected.union_density(4), abs=0.01)
    conv = Layer("c", "conv2d", ConvShape(N=1, C=4, H=5, W=5, K=4, R=3, S=3, padding=(1, 1, 1, 1)))
    inside = in_bounds_elements(conv) / gemm_dims(conv).a_elements
    assert RandomOperand.for_layer(conv, 0.5).density == pytest.approx(0.5 * inside)


# --- closed forms against their twins ----------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(M=st.integers(1, 3000), N=st.integers(1, 3000), K=st.integers(1, 20000),
       groups=st.integers(1, 3), sms=st.integers(1, 132), split_k_max=st.integers(1, 16),
       name=st.sampled_from(["a100", "v100"]))
def test_tiled_gemm_matches_scheduling_reference(M, N, K, groups, sms, split_k_max, name):
    mc = gpu_arch(name).machine()
    mc = type(mc)(**{**mc.__dict__, "num_sms": sms, "split_k_max": split_k_max})
    tiled = tiled_gemm(M, N, K, groups, mc, 3e14, 128.0)
    ref = tiled_gemm_reference(M, N, K, groups, sms, mc.tiles, split_k_max, 3e14, 128.0)
    got = {}
    for i, seconds in enumerate(tiled.compute_s):
        if math.isfinite(seconds):
            tm, tn, split = (int(x) for x in tiled.label(i, mc).replace("/split", "x").split("x"))
            got[(tm, tn, split)] = seconds
    assert got.keys() == ref.keys()
    for key, seconds in ref.items():
        assert got[key] == pytest.approx(seconds, rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(a=st.floats(0.0, 2.0), b=st.floats(0.01, 5.0), p=st.floats(0.2, 3.0), target=st.floats(0.0, 6.0))
def test_crossing_matches_grid_scan(a, b, p, target):
    def time_of(x: float) -> float:
        return a + b * x**p

    got, ref = crossing(time_of, target), crossing_reference(time_of, target)
    if math.isnan(ref):
        assert math.isnan(got) or got < 1 / 20000
    else:
        assert got == pytest.approx(ref, abs=1 / 20000)


@pytest.mark.parametrize(("element_bits", "expected"), [(16, 0.5625), (8, 0.625)])
def test_nm_compressed_bytes_match_the_built_format(element_bits, expected):
    rng = np.random.default_rng(element_bits)
    values = rng.integers(1, 100, size=(64, 32, 4)) * (rng.random((64, 32, 4)) < 0.6)
    values[np.argsort(rng.random((64, 32, 4)), axis=2) >= 2] = 0  # at most 2 of every 4
    rows = values.reshape(64, 128).tolist()
    bits = nm_compressed_bits_reference(rows, 2, 4, 2, element_bits)
    dense_bits = 64 * 128 * element_bits
    assert compressed_fraction(2, 4, 2, element_bits) == pytest.approx(expected)
    assert bits / dense_bits == pytest.approx(expected)


@settings(max_examples=25, deadline=None)
@given(shape=st.tuples(st.integers(1, 4096), st.integers(1, 4096), st.integers(1, 4096)),
       conv=st.booleans(), measure=st.floats(0.0, 1.0),
       gpus=st.lists(st.tuples(st.integers(1, 132), st.floats(300.0, 3000.0),
                               st.integers(1, 16), st.floats(1e-6, 1e-5)), min_size=2, max_size=6),
       name=st.sampled_from(["a100", "v100"]))
def test_kernel_times_on_a_machine_of_arrays_are_each_gpus_own(shape, conv, measure, gpus, name):
    """One formula serves one GPU and a batch: every kernel timed on a `Machine` whose
    numbers are arrays over GPUs gives, GPU by GPU, the one-GPU `time_at` exactly."""
    arch = gpu_arch(name)
    M, K, N = shape
    d = (gemm_dims(Layer("c", "conv2d", ConvShape(N=1, C=16, H=M % 64 + 3, W=N % 64 + 3, K=K % 64 + 1,
                                                  R=3, S=3, padding=(1, 1, 1, 1))))
         if conv else shape_dims(M, K, N))
    one = arch.machine()
    mcs = [replace(one, num_sms=sms, dram_bytes_per_s=gb * 1e9, split_k_max=split, launch_s=launch)
           for sms, gb, split, launch in gpus]
    array = replace(one, **{f: np.array([getattr(m, f) for m in mcs])
                            for f in ("num_sms", "dram_bytes_per_s", "split_k_max", "launch_s",
                                      "tensor_flops_per_s", "simt_flops_per_s")})
    for kname, k in arch.kernels.items():
        if not available(k, one):
            continue
        batch = times_at(kname, k, d, measure, array, arch.dense_kernel)
        for i, mc in enumerate(mcs):
            assert batch.point(i) == time_at(kname, k, d, measure, mc, arch.dense_kernel), kname


# --- time-model invariants ---------------------------------------------------------------------


shapes = st.tuples(st.integers(1, 16384), st.integers(1, 16384), st.integers(1, 16384))


@settings(max_examples=60, deadline=None)
@given(shape=shapes, measures=st.lists(st.floats(0.0, 1.0), min_size=2, max_size=5),
       name=st.sampled_from(["a100", "h100", "v100"]))
def test_sparse_kernel_time_never_falls_as_its_measure_rises(shape, measures, name):
    arch = gpu_arch(name)
    mc, dense = arch.machine(), arch.dense_kernel
    d = gemm_dims(linear(*shape))
    for kname, k in arch.kernels.items():
        if isinstance(k, NmKernel) or kname == "dense":
            continue
        times = [time_at(kname, k, d, x, mc, dense).total_s for x in sorted(measures)]
        assert all(t1 <= t2 * (1 + 1e-12) for t1, t2 in zip(times, times[1:]))


@settings(max_examples=60, deadline=None)
@given(shape=shapes, dtype=st.sampled_from(["fp16", "bf16", "int8", "tf32"]),
       name=st.sampled_from(["a100", "h100"]), static=st.booleans())
def test_n_m_never_beats_dense_by_more_than_m_over_n(shape, dtype, name, static):
    arch = gpu_arch(name).with_dtype(dtype)
    mc, dense = arch.machine(), arch.dense_kernel
    k = arch.kernels["2of4"]
    if static:
        k = k.model_copy(update={"conversion": "none"})
    d = gemm_dims(linear(*shape))
    assert dense_time(d, mc, dense).total_s / nm_time(d, mc, k, dense).total_s <= 2.0


@settings(max_examples=40, deadline=None)
@given(shape=shapes, density=st.floats(0.0, 1.0), name=st.sampled_from(["a100", "h100", "v100"]))
def test_layer_invariants(shape, density, name):
    arch = gpu_arch(name)
    layer = linear(*shape, density=density)
    res = gpu.simulate(layer, arch)
    dense = gpu.simulate(layer, arch.dense_equivalent())
    assert res.macs_done + res.macs_skipped == res.macs_dense == layer.macs
    assert 0 <= res.macs_done <= res.macs_dense
    assert res.cycles <= dense.cycles * (1 + 1e-12)
    assert res.cycles == pytest.approx(res.columns[f"time_{res.columns['best_kernel']}_s"]
                                       * arch.clock_hz)
    assert res.engine_mode == "statistical"
    assert gpu.simulate(layer, arch).columns == res.columns
    for key, value in res.columns.items():
        if key.startswith("breakeven_density_"):
            assert math.isnan(value) or 0.0 < value <= 1.0


# --- physical bounds (DESIGN.md §5): dense time never falls as M, N or K grows; no sparse
# kernel beats dense without zeros. Every shipped GPU at every dtype it has a peak for, with all
# of its kernels. The old model (one 128 x 256 tile, partial tiles costing their share) failed
# both: dense time was flat in N on 64 x 640 x N, and Sputnik beat it 1.93x at density 1. ---


@functools.cache
def gpu_at(name: str, dtype: str) -> gpu.Config:
    """A shipped GPU at `dtype`; `<gpu>-static`: the same with no per-call conversion on any
    sparse kernel and an 8-row GEMV pass, so the bounds must hold without conversion costs."""
    base, _, variant = name.partition("-")
    arch = gpu_arch(base).with_dtype(dtype)
    if variant != "static":
        return arch
    kernels = {n: k if isinstance(k, DenseKernel) else k.model_copy(
        update={"conversion": "none"} if hasattr(k, "conversion") else {"rows_per_pass": 8})
        for n, k in arch.kernels.items()}
    return arch.model_copy(update={"kernels": kernels})


GPU_DTYPES = [(name, dtype) for name in ("a100", "h100", "v100") for dtype in gpu_arch(name).peak_tflops]


def dense_s(name: str, dtype: str, M: int, K: int, N: int) -> float:
    arch = gpu_at(name, dtype)
    return dense_time(shape_dims(M, K, N), arch.machine(), arch.dense_kernel).total_s


GRID_M = [1, 2, 7, 64, 100, 127, 640, 1024, 4097, 8192]
GRID_KN = [64, 65, 256, 640, 1000, 1024, 4096, 11008, 16384]


@pytest.mark.parametrize(("name", "dtype"), GPU_DTYPES)
def test_dense_time_is_monotone_over_a_grid_of_shapes(name, dtype):
    t = {(M, K, N): dense_s(name, dtype, M, K, N)
         for M in GRID_M for K in GRID_KN for N in GRID_KN}
    for (M, K, N), seconds in t.items():
        i_m, i_k, i_n = GRID_M.index(M), GRID_KN.index(K), GRID_KN.index(N)
        if i_m + 1 < len(GRID_M):
            assert t[(GRID_M[i_m + 1], K, N)] >= seconds
        if i_k + 1 < len(GRID_KN):
            assert t[(M, GRID_KN[i_k + 1], N)] >= seconds
        if i_n + 1 < len(GRID_KN):
            assert t[(M, K, GRID_KN[i_n + 1])] >= seconds


@settings(max_examples=150, deadline=None)
@given(M=st.integers(1, 8192), K=st.integers(64, 16384), N=st.integers(64, 16384),
       grow=st.integers(1, 4096))
def test_dense_time_never_falls_when_m_n_or_k_grows(M, K, N, grow):
    for name, dtype in GPU_DTYPES:
        seconds = dense_s(name, dtype, M, K, N)
        assert dense_s(name, dtype, M + grow, K, N) >= seconds
        assert dense_s(name, dtype, M, K + grow, N) >= seconds
        assert dense_s(name, dtype, M, K, N + grow) >= seconds


def _no_sparse_kernel_beats_dense_without_zeros(arch: gpu.Config, d: GemmDims) -> None:
    """Every sparse kernel at its measure 1 is dense or slower (static-pattern kernels too); N:M
    may not run an activation without zeros; the break-even curve picks dense at density 1."""
    mc, dense = arch.machine(), arch.dense_kernel
    dense_total = dense_time(d, mc, dense).total_s
    for name, k in arch.kernels.items():
        if isinstance(k, DenseKernel) or not available(k, mc):
            continue
        if isinstance(k, NmKernel):
            assert k.policy == "exact"
            continue
        assert time_at(name, k, d, 1.0, mc, dense).total_s >= dense_total, name
    row = curve(arch, d, [1.0], "random").iloc[0]
    assert row["best_kernel"] == "dense" and row["best_speedup"] == 1.0


@settings(max_examples=60, deadline=None)
@given(M=st.one_of(st.integers(1, 8192), st.sampled_from([1, 64, 127, 4096])),
       K=st.one_of(st.integers(64, 16384), st.sampled_from([64, 640, 4095])),
       N=st.one_of(st.integers(64, 16384), st.sampled_from([256, 1024, 4096, 11008])))
def test_no_sparse_kernel_beats_dense_at_density_1(M, K, N):
    for name, dtype in GPU_DTYPES + [(f"{n}-static", dt) for n, dt in GPU_DTYPES]:
        _no_sparse_kernel_beats_dense_without_zeros(gpu_at(name, dtype), shape_dims(M, K, N))


@settings(max_examples=40, deadline=None)
@given(batch=st.sampled_from([1, 2, 8]), c=st.sampled_from([1, 3, 16, 64]),
       k=st.sampled_from([1, 8, 64]), groups=st.sampled_from([1, 2, 32]), r=st.sampled_from([1, 3, 5]),
       stride=st.integers(1, 4), hw=st.sampled_from([7, 14, 56, 112]), pad=st.booleans(),
       name=st.sampled_from(["a100", "h100", "v100"]))
def test_no_sparse_kernel_beats_dense_at_density_1_on_convs(batch, c, k, groups, r, stride, hw,
                                                            pad, name):
    """Grouped, depthwise, strided and padded convs: a strided 1x1 conv's A is smaller than its
    stored input, and dense reads only what A uses, as a static-pattern kernel does."""
    p = r // 2 if pad else 0
    shape = ConvShape(N=batch, C=groups * c, H=hw, W=hw, K=groups * k, R=r, S=r,
                      stride=(stride, stride), padding=(p, p, p, p), groups=groups)
    for dtype in gpu_arch(name).peak_tflops:
        _no_sparse_kernel_beats_dense_without_zeros(gpu_at(name, dtype),
                                                    gemm_dims(Layer("c", "conv2d", shape)))


@pytest.mark.parametrize("name", ["a100", "h100", "v100"])
@pytest.mark.parametrize("shape", [(64, 640, 256), (64, 640, 1024), (64, 640, 4096), (1, 4096, 11008),
                                   (128, 8192, 10240), (4096, 4096, 4096), (7, 1000, 65)])
def test_breakeven_densities_are_below_1(name, shape):
    arch = gpu_arch(name)
    mc, dense = arch.machine(), arch.dense_kernel
    d = shape_dims(*shape)
    dense_total = dense_time(d, mc, dense).total_s
    for kname, k in arch.kernels.items():
        if kname != "dense" and available(k, mc):
            value = breakeven(kname, k, d, mc, dense, dense_total)
            assert math.isnan(value) or value < 1.0, kname


def test_v100_dense_time_grows_with_n_on_64_x_640():
    """The reported case: dense was 4.56e-5 s for N = 256, 1024 and 4096, and Sputnik beat it
    1.93x at density 1 (so its break-even was reported as 1)."""
    v100 = gpu_arch("v100")
    times = [dense_s("v100", "fp32", 64, 640, n) for n in (256, 1024, 4096)]
    assert times[0] < times[1] < times[2]
    for n in (256, 1024, 4096):
        res = gpu.simulate(linear(64, 640, n, density=1.0), v100)
        assert res.columns["best_kernel"] == "dense"
        assert res.columns["time_sputnik_s"] > res.columns["time_dense_s"]
        assert math.isnan(res.columns["breakeven_density_sputnik"]) or \
            res.columns["breakeven_density_sputnik"] < 1.0


def test_dense_picks_small_tiles_or_split_k_for_small_grids():
    a100 = gpu_arch()
    mc, dense = a100.machine(), a100.dense_kernel
    assert dense_time(shape_dims(8192, 8192, 8192), mc, dense).algorithm == "128x256/split1"
    small = dense_time(shape_dims(64, 2048, 256), mc, dense).algorithm
    assert small == "simt" or not small.startswith("128x256/split1")
    res = gpu.simulate(linear(4096, 4096, 4096), a100.dense_equivalent())
    assert res.columns["dense_algorithm"] == "128x256/split1"


def test_sparse_kernels_may_not_be_more_efficient_than_dense_on_the_same_unit():
    assert "stream DRAM faster" in refused(
        lambda d: d["kernels"]["act_sparse_gemv"].update(bandwidth_efficiency=0.9))
    assert "CUDA cores better" in refused(
        lambda d: d["kernels"]["csr"]["compute_efficiency"].update(fp16=0.6))
    assert "efficiency 1" in refused(lambda d: d.update(gemm_tiles=[{"m": 64, "n": 64, "efficiency": 0.5}]))


def _kernel_time(seconds: float, unit: str, read: float, write: float, flops: float) -> KernelTime:
    return KernelTime(seconds, seconds, seconds, 0.0, flops, unit, read, write, int(flops // 2))


def test_a_faster_kernel_that_moves_more_bytes_says_so():
    arch = gpu_arch()
    times = {"dense": _kernel_time(1.1e-5, "tensor", 0.5e6, 0.2e6, 4e7),
             "act_sparse_gemv": _kernel_time(1.0e-5, "simt", 3.1e6, 0.2e6, 1e7)}
    (note,) = choice_warnings(arch, times, {"best_kernel": "act_sparse_gemv"})
    assert note.startswith("act_sparse_gemv is 1.1x faster but moves 4.71x dense's DRAM bytes")
    assert "energy saving 0." in note
    times["act_sparse_gemv"] = _kernel_time(1.0e-5, "simt", 0.3e6, 0.2e6, 3e7)
    (note,) = choice_warnings(arch, times, {"best_kernel": "act_sparse_gemv"})
    assert "uses" in note and "dense's energy" in note
    assert choice_warnings(arch, times, {"best_kernel": "dense"}) == []


def test_pruning_n_m_is_reported_as_lossy():
    arch = gpu_arch()
    prune = arch.kernels["2of4"].model_copy(update={"policy": "prune"})
    arch = arch.model_copy(update={"kernels": {**arch.kernels, "2of4": prune}})
    res = gpu.simulate(linear(8192, 8192, 8192, density=1.0), arch)
    assert res.columns["best_kernel"] == "2of4"
    assert any("prunes A to 2:4 (lossy)" in w for w in res.warnings)


def test_exact_n_m_runs_only_a_conforming_activation():
    rng = np.random.default_rng(0)
    M, K, N = 1024, 16384, 16384
    values = rng.random((M, K // 4, 4))
    keep = np.argsort(values, axis=2) >= 2  # the 2 largest of every 4
    mask = keep.reshape(M, K)
    arch = gpu_arch()
    res = gpu.simulate(Layer("l", "linear", GemmShape(M=M, K=K, N=N), act_mask=mask), arch)
    assert res.columns["nm_conformance_2of4"] == 1.0
    assert res.columns["best_kernel"] == "2of4"
    assert res.columns["breakeven_density_2of4"] == 0.5
    assert 1.0 < res.columns["time_dense_s"] / res.columns["time_2of4_s"] <= 2.0
    broken = mask.copy()
    broken[7, :4] = True  # one group of four with four non-zeros
    res2 = gpu.simulate(Layer("l", "linear", GemmShape(M=M, K=K, N=N), act_mask=broken), arch)
    assert res2.columns["nm_conformance_2of4"] < 1.0
    assert res2.columns["best_kernel"] != "2of4"
    assert res2.columns["time_2of4_s"] == res.columns["time_2of4_s"]


def test_static_pattern_kernels_are_reported_but_never_chosen():
    v100 = gpu_arch("v100")
    res = gpu.simulate(linear(2048, 1024, 256, density=0.02), v100)
    assert res.columns["time_sparsert_s"] < res.columns["time_dense_s"]
    assert res.columns["best_kernel"] != "sparsert"


def test_dtypes_without_sparse_tensor_cores_drop_the_n_m_kernel():
    res = gpu.simulate(linear(4096, 4096, 4096, 0.5), gpu_arch().with_dtype("fp32"))
    assert math.isnan(res.columns["time_2of4_s"])
    assert math.isnan(res.columns["breakeven_density_2of4"])


def test_conv_layers_pay_im2col_on_sparse_kernels_only():
    conv = Layer("c", "conv2d", ConvShape(N=8, C=64, H=32, W=32, K=64, R=3, S=3,
                                          padding=(1, 1, 1, 1)), declared_act_density=0.3)
    pointwise = Layer("p", "conv2d", ConvShape(N=8, C=64, H=32, W=32, K=64, R=1, S=1),
                      declared_act_density=0.3)
    assert gemm_dims(conv).needs_im2col and not gemm_dims(pointwise).needs_im2col
    arch = gpu_arch()
    mc = arch.machine()
    csr = arch.kernels["csr"]
    d_conv, d_pw = gemm_dims(conv), gemm_dims(pointwise)
    im2col_bytes = (d_conv.act_elements + d_conv.a_elements) * mc.element_bytes
    t_conv = time_at("csr", csr, d_conv, 0.3, mc, arch.dense_kernel)
    t_pw = time_at("csr", csr, d_pw, 0.3, mc, arch.dense_kernel)
    # same GEMM shape per output pixel count; the 3x3 has 9x the K and an im2col pass
    assert t_conv.read_bytes + t_conv.write_bytes > im2col_bytes
    assert t_conv.overhead_s > t_pw.overhead_s


# --- results on workloads -------------------------------------------------------------------


def test_run_table_columns_on_a_mixed_workload():
    workload = make_workload(np.random.default_rng(7))
    arch = gpu_arch()
    df = simulate(workload, arch).layers
    kernels = list(arch.kernels)
    for name in kernels:
        assert f"time_{name}_s" in df
    for name in kernels[1:]:
        assert f"breakeven_density_{name}" in df
    best_time = [row[f"time_{row['best_kernel']}_s"] for _, row in df.iterrows()]
    assert np.allclose(df["latency_s"], best_time)
    assert np.allclose(df["speedup_vs_dense"], df["time_dense_s"] / df["latency_s"])
    assert (df["speedup_vs_dense"] >= 1.0).all()
    assert (df["energy_pj"] > 0).all()
    assert np.allclose(df["energy_pj"], df.filter(regex=r"^energy_.+_pj$").sum(axis=1))
    assert set(df["engine_mode"]) == {"trace", "statistical"}


def test_energy_prices_flops_at_board_power_over_peak():
    arch = gpu_arch()
    table = arch.extra_action_energy_pj()
    assert table[TENSOR_FLOP] == pytest.approx(400 / 312e12 * 1e12)  # 1.28 pJ per FLOP
    assert table[SIMT_FLOP] == pytest.approx(400 / 78e12 * 1e12)
    res = gpu.simulate(linear(4096, 4096, 4096), arch.dense_equivalent())
    assert res.actions[TENSOR_FLOP] == 2 * 4096**3


@pytest.mark.skipif(not DIGITS.is_file(), reason="workloads/digits_cnn.npz not present")
def test_digits_trace_on_every_gpu():
    workload = load_workload(DIGITS)
    for name in ("a100", "h100", "v100"):
        df = simulate(workload, gpu_arch(name)).layers
        assert (df["engine_mode"] == "trace").all()
        assert (df["latency_s"] <= df["time_dense_s"] * (1 + 1e-12)).all()
        # 64 images of 8x8 are tiny: every kernel is launch-bound, no big win anywhere
        assert (df["speedup_vs_dense"] < 1.5).all()
        assert np.allclose(df["a_density"][df["op"] == "linear"],
                           df["act_density"][df["op"] == "linear"])


@pytest.mark.skipif(not DIGITS.is_file(), reason="workloads/digits_cnn.npz not present")
def test_each_layer_saves_its_breakeven_curve(tmp_path):
    from accelsim.engines.gpu.breakeven import LAYER_CURVE_DENSITIES, curve
    from accelsim.results import RunResult

    workload = load_workload(DIGITS)
    arch = gpu_arch()
    result = simulate(workload, arch)
    table = result.tables["breakeven"]
    assert list(table["layer"].unique()) == [layer.name for layer in workload.layers]
    for layer in workload.layers:
        rows = table[table["layer"] == layer.name]
        line, own = rows[~rows["at_layer_density"]], rows[rows["at_layer_density"]]
        assert list(line["density"]) == list(LAYER_CURVE_DENSITIES)
        a_density = result.layers.set_index("layer").loc[layer.name, "a_density"]
        assert own["density"].tolist() == [a_density]
        expected = curve(arch, gemm_dims(layer), [a_density], "random")
        assert own["best_speedup"].iloc[0] == expected["best_speedup"].iloc[0]
        # no sparse kernel beats dense without zeros
        assert line["best_speedup"].iloc[-1] == 1.0 and line["best_kernel"].iloc[-1] == "dense"
    result.save(tmp_path)
    back = RunResult.load(tmp_path)
    pd.testing.assert_frame_equal(back.tables["breakeven"], table)
    assert (tmp_path / "results_breakeven.csv").is_file()


# --- CLI ---------------------------------------------------------------------------------------


A100 = str(CONFIGS / "a100.yaml")


def test_breakeven_table_and_plot(tmp_path, capsys):
    png = tmp_path / "curve.png"
    assert main(["breakeven", A100, "--shape", "8192,8192,8192", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "break-even with dense" in out and "csr" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_breakeven_csv_and_json(capsys):
    assert main(["breakeven", A100, "--shape", "1,4096,11008", "--format", "csv"]) == 0
    df = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert df["density"].iloc[0] == 1.0 and "speedup_act_sparse_gemv" in df
    assert (df["best_speedup"] >= 1.0).all()
    assert df["best_speedup"].is_monotonic_increasing  # sparser never slower
    assert main(["breakeven", A100, "--shape", "1,4096,11008", "--format", "json",
                 "--pattern", "structured", "--dtype", "bf16"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["dtype"] == "bf16" and payload["pattern"] == "structured"
    gemv = next(r for r in payload["breakeven"] if r["kernel"] == "act_sparse_gemv")
    assert 0.9 < gemv["breakeven_density"] < 1.0


def test_breakeven_errors_exit_2(capsys):
    assert main(["breakeven", str(CONFIGS / "tpu_like_128x128_ws.yaml"), "--shape", "8,8,8"]) == 2
    assert "kind 'gpu'" in capsys.readouterr().err
    assert main(["breakeven", A100, "--shape", "8,8,8", "--dtype", "fp8"]) == 2
    assert "fp8" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["breakeven", A100, "--shape", "8,8"])
    assert exc.value.code == 2


def test_run_prints_the_kernel_choice(tmp_path, capsys):
    path = tmp_path / "w.npz"
    from accelsim.workload import save_workload

    save_workload(Workload(model="m", layers=[linear(1, 4096, 11008, 0.5)]), path)
    assert main(["run", A100, str(path)]) == 0
    out = capsys.readouterr().out
    assert "kernel choice per layer" in out and "act_sparse" in out


def test_depthwise_conv_never_uses_n_m():
    shape = ConvShape(N=8, C=256, H=28, W=28, K=256, R=3, S=3, padding=(1, 1, 1, 1), groups=256)
    layer = Layer("dw", "conv2d", shape, act_mask=np.zeros(shape.act_shape, bool))
    arch = gpu_arch()
    arch = arch.model_copy(update={"kernels": {**arch.kernels, "2of4": arch.kernels["2of4"]
                                               .model_copy(update={"policy": "prune"})}})
    res = gpu.simulate(layer, arch)
    assert math.isnan(res.columns["nm_conformance_2of4"])
    assert math.isnan(res.columns["breakeven_density_2of4"])
    assert res.columns["best_kernel"] != "2of4"
