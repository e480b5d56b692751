"""zero_skip bitmap passes (`engines/zero_skip/bitmaps.py`) and the closed-form timing paths
against their slow twins in tests/reference.py, on random (hypothesis) and real bitmaps."""

from __future__ import annotations

import itertools
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from accelsim.engines import zero_skip
from accelsim.engines.zero_skip import bitmaps, work
from accelsim.engines.zero_skip import kernels as kern
from accelsim.engines.zero_skip.config import ChannelLanes
from accelsim.engines.zero_skip.count import _lockstep_channel_lanes, count_layer
from accelsim.engines.zero_skip.formats import rle_entries
from accelsim.kinds import load_arch
from accelsim.workload import ConvShape, GemmShape, Layer, load_workload
from tests.reference import (
    brick_counts_reference,
    channel_counts_reference,
    iid_mask_reference,
    lockstep_pixel_cycles_reference,
    planar_counts_reference,
    rle_entries_reference,
    tap_nonzero_reference,
    transposed_bytes_reference,
    weight_counts_reference,
)
from tests.test_zero_skip import SETTINGS, conv_layers, gemm_layers

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "workloads" / "digits_cnn.npz"


def views(layer) -> list[work.ConvView]:
    """The layer as the dataflows see it: plain and planar (transposed for linear layers)."""
    maps = work.operand_masks(layer)
    return [work.conv_view(layer, *maps), work.conv_view(layer, *maps, planar=True)]


@SETTINGS
@given(size=st.integers(0, 3000), density=st.floats(0.0, 1.0), key=st.text(max_size=8))
def test_iid_mask_matches_its_twin(size, density, key):
    count = int(round(density * size))
    got = work.iid_mask((size,), density, key)
    assert int(got.sum()) == count
    if 0 < count < size:
        assert got.tolist() == iid_mask_reference(size, count, zlib.crc32(key.encode()))


@pytest.mark.parametrize("size, count", [(20003, 1), (20003, 20002), (4097, 2048),
                                         (999, 998), (3, 1)])
def test_iid_mask_extreme_counts_match_the_twin(size, count):
    """Near-empty and near-full maps, where the coins miss the count and probes fix it."""
    out = np.empty(size, bool)
    bitmaps.iid_count_mask(np.uint64(size + count), count,
                           np.uint64(round(count * 65536 / size)), out)
    assert int(out.sum()) == count
    assert out.tolist() == iid_mask_reference(size, count, size + count)


def test_iid_mask_is_uniform_over_subsets():
    """Every 2-subset of 5 positions drawn equally often over 6,000 keys (chi-square, 9 degrees
    of freedom, p = 1e-4 bound 33.7), and every position of a 40-element map set at its
    density within 5 sigma over 3,000 keys."""
    pairs: dict[tuple[int, ...], int] = {}
    for k in range(6000):
        chosen = tuple(np.flatnonzero(work.iid_mask((5,), 0.4, f"k{k}")))
        pairs[chosen] = pairs.get(chosen, 0) + 1
    assert len(pairs) == 10
    assert sum((n - 600) ** 2 / 600 for n in pairs.values()) < 33.7
    hits = sum(work.iid_mask((40,), 0.3, f"p{k}").astype(int) for k in range(3000))
    sigma = (3000 * 0.3 * 0.7) ** 0.5
    assert np.abs(hits - 900).max() < 5 * sigma


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 3000))
def test_float16_nonzero_by_bits_equals_comparison(seed, n):
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2**16, n, dtype=np.uint16)
    bits[rng.random(n) < 0.3] = 0x8000 * rng.integers(0, 2)   # +0 and -0
    values = bits.view(np.float16).reshape(-1, 1)
    maps = work._nonzero(values)
    with np.errstate(invalid="ignore"):
        assert np.array_equal(maps, values != 0)


@SETTINGS
@given(layer=st.one_of(conv_layers(), gemm_layers()))
def test_tap_bricks_and_planar_counts_match_walks(layer):
    for v in views(layer):
        taps = work.tap_counts(v)
        assert taps.nonzero.tolist() == tap_nonzero_reference(v.act, v.R, v.S, v.stride,
                                                              v.padding, v.dilation)
        for brick in (1, 3):
            got, _ = work.brick_work(v, brick, True)
            assert got.tolist() == brick_counts_reference(v.act, v.groups, brick)
        key = np.random.default_rng(v.H * v.W).integers(0, 5, v.H * v.W)
        narrow = (np.uint8,) if v.H * v.W <= 255 else ()   # counts that fit a byte
        for inner, dtype in itertools.product((False, True), (np.int32, *narrow)):
            got = bitmaps.planar_counts(v.act.view(np.uint8), key, 5, inner, dtype)
            assert got.dtype == dtype
            assert got.tolist() == planar_counts_reference(v.act, key, 5)
        for grid in ((2, 2), (8, 8)):   # tiles of several pixels, and a pixel per tile
            assert work.planar_act_count(v, *grid, True).tolist() == planar_reference(v, *grid)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), shape=st.tuples(st.integers(1, 3), st.integers(1, 9),
       st.integers(1, 4), st.integers(1, 4)), density=st.floats(0.0, 1.0),
       order=st.sampled_from([(0, 1, 2, 3), (0, 2, 3, 1), (2, 0, 3, 1), (3, 2, 1, 0)]))
def test_channel_counts_match_the_walk_in_any_layout(seed, shape, density, order):
    """Non-zeros per channel of a map laid out in any axis order (the map is a transposed
    view of a C-ordered array in that order), by each kernel that counts them."""
    stored = np.random.default_rng(seed).random([shape[i] for i in order]) < density
    act = stored.transpose(np.argsort(order))
    want = channel_counts_reference(act)
    assert work.channel_nonzero(act).tolist() == want
    for inner in (False, True):
        assert bitmaps.channel_counts(act.view(np.uint8), inner).tolist() == want
    rows = np.ascontiguousarray(act.transpose(0, 2, 3, 1)).reshape(-1, act.shape[1])
    assert bitmaps.column_counts(rows.view(np.uint8)).tolist() == want


def planar_reference(v: work.ConvView, pe_rows: int, pe_cols: int) -> list:
    """`work.planar_act_count` from the walk over the map: out[g][n][c][tile][phase], tiles
    numbered in grid order among those that hold pixels, the phase of pixel (h, w)
    ((h + pad_top) mod stride_h) * stride_w + (w + pad_left) mod stride_w."""
    rows, cols = work.pe_grid(v, pe_rows, pe_cols)
    row_bounds, col_bounds = work.split_bounds(v.H, rows), work.split_bounds(v.W, cols)

    def tile(h: int, w: int) -> int:
        th = max(i for i in range(rows) if row_bounds[i] <= h < row_bounds[i + 1])
        tw = max(i for i in range(cols) if col_bounds[i] <= w < col_bounds[i + 1])
        return th * cols + tw

    held = sorted({tile(h, w) for h in range(v.H) for w in range(v.W)})
    sh, sw = v.stride
    phases = sh * sw
    out = [[[[[0] * phases for _ in held] for _ in range(v.Cg)] for _ in range(v.N)]
           for _ in range(v.groups)]
    for n in range(v.N):
        for c in range(v.C):
            g, cg = divmod(c, v.Cg)
            for h in range(v.H):
                for w in range(v.W):
                    phase = ((h + v.padding[0]) % sh) * sw + (w + v.padding[2]) % sw
                    out[g][n][cg][held.index(tile(h, w))][phase] += int(v.act[n, c, h, w])
    return out


def test_a_linear_layer_whose_rows_each_have_a_pe_is_its_own_planar_count():
    shape = GemmShape(M=6, K=5, N=3)
    act = np.random.default_rng(3).random(shape.act_shape) < 0.5
    layer = Layer("g", "linear", shape, act_mask=act)
    v = work.conv_view(layer, *work.operand_masks(layer), planar=True)
    got = work.planar_act_count(v, 8, 8, True)
    assert got.dtype == np.uint8 and got.shape == (1, 1, 5, 6, 1)
    assert got[0, 0, :, :, 0].tolist() == act.T.astype(int).tolist()
    assert got.tolist() == planar_reference(v, 8, 8)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), n_img=st.integers(1, 3), groups=st.integers(1, 3),
       words=st.integers(1, 5), brick=st.sampled_from([8, 16, 24, 248, 256]),
       density=st.floats(0, 1))
def test_brick_counts_of_word_aligned_bricks_match_walk(seed, n_img, groups, words, brick,
                                                        density):
    """1 x 1 maps whose bricks are whole 8-byte words (a linear layer's) are summed a word at a
    time; bricks of more than 31 words, and partial last bricks, are walked as well."""
    rng = np.random.default_rng(seed)
    act = rng.random((n_img, groups * words * 8, 1, 1)) < density
    got = bitmaps.brick_counts(act.view(np.uint8), groups, brick)
    assert got.tolist() == brick_counts_reference(act, groups, brick)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), n_img=st.integers(1, 3), groups=st.integers(1, 3),
       channels=st.sampled_from([1, 3, 8, 16, 40]), hw=st.sampled_from([(1, 1), (2, 3)]),
       brick=st.sampled_from([1, 3, 8, 16, 256]), lanes=st.integers(1, 5),
       issue=st.integers(0, 3), density=st.floats(0, 1))
def test_lockstep_pixel_cycles_match_walk(seed, n_img, groups, channels, hw, brick, lanes,
                                          issue, density):
    """1 x 1 windows over every pixel: word-aligned bricks of 1 x 1 maps (a linear layer's) and
    bricks walked channel by channel give the items' slowest bricks, summed."""
    rng = np.random.default_rng(seed)
    act = rng.random((n_img, groups * channels, *hw)) < density
    got = kern.lockstep_pixel_cycles(act.view(np.uint8), groups, brick, lanes, issue)
    assert got == lockstep_pixel_cycles_reference(act, groups, brick, lanes, issue)


@SETTINGS
@given(layer=st.one_of(conv_layers(), gemm_layers()), lanes=st.integers(1, 4),
       kc=st.integers(1, 3))
def test_weight_counts_match_walk(layer, lanes, kc):
    for v in views(layer):   # C-ordered conv weights and transposed linear ones
        phase = ((np.arange(v.R) * v.dilation[0]) % v.stride[0])[:, None] * v.stride[1] \
            + ((np.arange(v.S) * v.dilation[1]) % v.stride[1])[None, :]
        phase = phase.reshape(-1).astype(np.int64)
        n_phases = v.stride[0] * v.stride[1]
        taps, lane, planar = weight_counts_reference(v.weight, v.groups, lanes, kc, phase)
        assert work.weight_tap_counts(v).tolist() == taps
        assert work.lane_weight_work(v, lanes, True).tolist() == lane
        got = bitmaps.planar_weight_counts(v.weight, v.groups, kc, phase, n_phases,
                                           work.filters_outer(v.weight))
        assert got[..., :int(phase.max()) + 1].tolist() == planar
        assert int(got.sum()) == int(v.weight.sum())


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(1, 40), k=st.integers(1, 40),
       eights=st.booleans(), density=st.floats(0.0, 1.0))
def test_transposed_bytes_match_the_plain_transpose(seed, m, k, eights, density):
    """Word-wise 8 x 8 blocks where both sides are multiples of 8, byte by byte otherwise."""
    if eights:
        m, k = 8 * (m // 8 + 1), 8 * (k // 8 + 1)
    rows = (np.random.default_rng(seed).random((m, k)) < density).view(np.uint8)
    out = np.empty((k, m), np.uint8)
    bitmaps.transposed_bytes(rows, out)
    assert out.tolist() == transposed_bytes_reference(rows.tolist())


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 400), density=st.floats(0.0, 1.0),
       run_bits=st.integers(1, 5), segment=st.one_of(st.none(), st.integers(1, 40)),
       runs=st.booleans())
def test_rle_pairs_match_sequential_encoder(seed, n, density, run_bits, segment, runs):
    rng = np.random.default_rng(seed)
    flat = rng.random(n) < density
    if runs:   # long zero runs and whole words of non-zeros
        flat[: n // 2] = False
        flat[n // 2: n // 2 + 16] = True
    assert rle_entries(flat, run_bits, segment) == rle_entries_reference(flat.tolist(),
                                                                        run_bits, segment)
    grid = flat[: (n // 4) * 4].reshape(4, -1)
    view = grid.T.reshape(1, -1, 4, 1)   # a transposed view is read in its own C order
    assert rle_entries(view, run_bits, segment) == rle_entries_reference(
        np.ascontiguousarray(view).reshape(-1).tolist(), run_bits, segment)
    wide = flat[: (n // 64) * 64].reshape(8, -1)   # 8 x 8 blocks of a transposed view
    assert rle_entries(wide.T.reshape(1, -1, 8, 1), run_bits, segment) == rle_entries_reference(
        wide.T.reshape(-1).tolist(), run_bits, segment)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), shape=st.tuples(st.integers(1, 2), st.integers(1, 2),
       st.integers(1, 4), st.integers(1, 5), st.integers(1, 3)), n_kc=st.integers(1, 3),
       fi=st.tuples(st.integers(1, 3), st.integers(1, 3)), repeated=st.booleans(),
       transposed=st.booleans(), flat=st.sampled_from(["no", "vectors", "weights"]),
       shared=st.booleans())
def test_planar_decoupled_pass_equals_lane_timing(seed, shape, n_kc, fi, repeated, transposed,
                                                  flat, shared):
    """Barrier per pass, unbounded FIFOs, no issue interval: the busiest PE's sum; output-channel
    groups with the same weights (`repeated`: runs of equal groups, as dense weights give),
    counts laid out PE-major (`transposed`, as a linear layer's planar view gives), weight
    counts whose vectors (`flat` "vectors") or counts ("weights", a read-only broadcast as dense
    weights give) are the same for every channel and phase of a group, and weight counts
    broadcast over groups (`shared`, as a batched matmul's dense weights give)."""
    groups, n_img, n_ch, pes, phases = shape
    rng = np.random.default_rng(seed)
    acts = rng.integers(0, 6, shape).astype(np.int32) * (rng.random(shape) < 0.7)
    if transposed:
        acts = np.ascontiguousarray(acts.transpose(0, 1, 3, 4, 2)).transpose(0, 1, 4, 2, 3)
    weights = rng.integers(0, 6, (groups, n_kc, n_ch, phases)).astype(np.int32)
    if flat == "vectors":   # counts that differ within one multiplier vector
        weights = (rng.integers(0, 3, (groups, n_kc, 1, 1)) * fi[0]
                   + rng.integers(1, fi[0] + 1, (groups, n_kc, n_ch, phases))).astype(np.int32)
    elif flat == "weights":
        weights = np.broadcast_to(weights[:, :, :1, :1], weights.shape)
    if repeated:
        weights = weights[:, rng.integers(0, 2, n_kc + 2).cumsum() % n_kc]
    if shared:
        weights = np.broadcast_to(weights[:1], weights.shape)
    general = kern.planar_cartesian_cycles(acts, weights, fi[0], fi[1], kern.BARRIER_PASS, -1, 0)
    assert kern.planar_decoupled_cycles(acts, weights, fi[0], fi[1]) == general
    plane = kern.contiguous_plane(acts)   # a one-group, one-image plane read on its own
    assert plane is None or groups * n_img == 1
    assert kern.planar_decoupled_cycles(acts, weights, fi[0], fi[1], plane) == general


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), lanes=st.integers(1, 4), depth=st.sampled_from([-1, 1, 2]),
       issue=st.integers(0, 2), passes=st.integers(1, 3), same=st.booleans())
def test_channel_lanes_timed_once_per_window_equals_every_window(seed, lanes, depth, issue,
                                                                 passes, same):
    """A barrier per pass: each window timed once (for all filter passes, and for all windows
    when they are alike) equals timing the layer item by item (barrier per item index)."""
    rng = np.random.default_rng(seed)
    n_cb, h, w = int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(1, 4))
    bricks = rng.integers(0, 4, (2, 1, n_cb, h, w)).astype(np.int32)
    pad = rng.integers(0, 4, n_cb).astype(np.int32)
    if same:
        bricks[:] = pad[None, None, :, None, None]
    args = (h, w, 2, 2, 1, 1, 1, 1, 1, 1, lanes, passes)
    got = kern.channel_lanes_cycles(bricks, pad, *args, kern.BARRIER_PASS, depth, issue, same)
    ref = kern.channel_lanes_cycles(bricks, pad, *args, kern.BARRIER_PASS, depth, issue, False)
    assert got == ref
    rows, ends = [], []
    for g in range(2):
        for _ in range(passes):
            for e in range(h):
                for f in range(w):
                    window = [bricks[g, 0, cb, e - 1 + r, f - 1 + s]
                              if 0 <= e - 1 + r < h and 0 <= f - 1 + s < w else pad[cb]
                              for r in range(2) for s in range(2) for cb in range(n_cb)]
                    for i in range(0, len(window), lanes):
                        chunk = list(window[i:i + lanes])
                        rows.append(chunk + [0] * (lanes - len(chunk)))
                    ends.append(len(rows) - 1)
    cycles, busy = kern.lane_cycles(np.array(rows, np.int64).reshape(-1, lanes),
                                    np.array(ends, np.int64), depth, issue)
    assert (got[0], got[1]) == (cycles, busy)


@pytest.mark.skipif(not DIGITS.is_file(), reason="workloads/digits_cnn.npz not shipped")
def test_bitmap_passes_on_real_digits_layers():
    wl = load_workload(DIGITS)
    for layer in wl.layers:
        maps = work.layer_bitmaps(layer)
        assert np.array_equal(maps.act, layer.nonzero())
        assert maps.act_density == layer.act_density
        assert maps.weight_density == layer.weight_density
        v = work.conv_view(layer, *work.operand_masks(layer))
        small = work.ConvView(v.act[:2], v.weight, v.stride, v.padding, v.dilation, v.groups)
        assert work.tap_counts(small).nonzero.tolist() == tap_nonzero_reference(
            small.act, small.R, small.S, small.stride, small.padding, small.dilation)
        assert rle_entries(v.act, 4, None) == rle_entries_reference(
            np.ascontiguousarray(v.act).reshape(-1).tolist(), 4, None)
        size = v.act.size
        count = int(round(maps.act_density * size))
        assert work.iid_mask(v.act.shape, maps.act_density, layer.name).reshape(-1).tolist() \
            == (iid_mask_reference(size, count, zlib.crc32(layer.name.encode()))
                if count < size else [True] * size)


@SETTINGS
@given(layer=st.one_of(conv_layers(), gemm_layers()), lanes=st.integers(1, 4),
       brick=st.integers(1, 3), issue=st.integers(0, 2))
def test_lockstep_channel_lanes_closed_form_equals_kernel(layer, lanes, brick, issue):
    """Items at one window position: per-pixel item times summed over the window taps equal
    the lockstep kernel, window by window."""
    v = work.conv_view(layer, *work.operand_masks(layer))
    if not (v.R * v.S == 1 or -(-v.Cg // brick) % lanes == 0):
        lanes = -(-v.Cg // brick)   # every position's bricks make one whole item
    a = ChannelLanes(dataflow="channel_lanes", lanes=lanes, brick_size=brick,
                     filters_per_pass=1)
    bricks, pad = work.brick_work(v, brick, True)
    s, p, d = v.stride, v.padding, v.dilation
    expected, _, _ = kern.channel_lanes_cycles(
        bricks, pad, v.E, v.F, v.R, v.S, s[0], s[1], p[0], p[2], d[0], d[1], lanes, 1,
        kern.BARRIER_PASS, 1, issue, False)
    assert _lockstep_channel_lanes(v, a, issue) == expected


def test_dense_counts_by_shape_do_not_read_the_maps():
    """Two layers of one shape and different maps count the same on a dense equivalent, and a
    kept result is a copy (changing it changes no later result)."""
    rng = np.random.default_rng(3)
    shape = ConvShape(N=1, C=4, H=5, W=5, K=3, R=3, S=3, padding=(1, 1, 1, 1))
    layers = [Layer(f"l{i}", "conv2d", shape, act_mask=rng.random(shape.act_shape) < x)
              for i, x in enumerate((0.1, 0.9))]
    for name in ("cnvlutin_like", "scnn_like", "eie_like", "eyeriss_gating"):
        dense = load_arch(ROOT / "arch_configs" / f"{name}.yaml").dense_equivalent()
        first = zero_skip.simulate(layers[0], dense)
        first.columns["cycles_if_uniform"] = -1
        second = zero_skip.simulate(layers[1], dense)
        fresh = count_layer(layers[1], dense)
        assert second.cycles == fresh.cycles == second.columns["cycles_if_uniform"]
        assert second.actions == fresh.actions


@pytest.mark.skipif(not DIGITS.is_file(), reason="workloads/digits_cnn.npz not shipped")
def test_statistics_kept_per_layer_give_each_arch_its_own_counts():
    """The views, tap and MAC counts, stored sizes and brick work a layer keeps for the archs
    that ask for them: read again by an arch with the same choices (the same objects), and
    never handed to an arch whose skip, gate, format or brick differ (every arch's counts on a
    layer that served others equal its counts on a fresh copy of the layer)."""
    base = load_arch(ROOT / "arch_configs" / "cnvlutin_like.yaml")
    archs = [base,
             base.model_copy(update={"array": base.array.model_copy(update={"lanes": 4})}),
             base.model_copy(update={"array": base.array.model_copy(update={"brick_size": 4})}),
             base.model_copy(update={"skip": (), "gate": ("act",)}),
             base.dense_equivalent(),
             load_arch(ROOT / "arch_configs" / "eyeriss_gating.yaml")]
    layers = load_workload(DIGITS).layers
    for layer in layers:
        for arch in archs:
            count_layer(layer, arch)
            count_layer(layer, arch, uniform=True)
        kept = work.layer_bitmaps(layer).counted
        assert len(kept) >= 4   # trace and i.i.d. maps, skipping and gating archs
        assert {key[0] for key in kept} == {False, True}
    for arch in archs:
        for old, new in zip(layers, load_workload(DIGITS).layers):
            for uniform in (False, True):
                a, b = count_layer(old, arch, uniform), count_layer(new, arch, uniform)
                assert (a.cycles, a.macs_done, a.macs_gated, a.actions) == \
                    (b.cycles, b.macs_done, b.macs_gated, b.actions), (old.name, arch.name)
    lanes_4 = archs[1]
    first = zero_skip.count._counted(layers[1], base, False, False)
    assert zero_skip.count._counted(layers[1], lanes_4, False, False) is first
    v = first[0]
    assert work.brick_work(v, 16, True)[0] is work.brick_work(v, 16, True)[0]
    assert work.brick_work(v, 4, True)[0].shape != work.brick_work(v, 16, True)[0].shape


@pytest.mark.skipif(not DIGITS.is_file(), reason="workloads/digits_cnn.npz not shipped")
def test_uniform_cycles_are_the_cycles_of_the_full_uniform_count():
    """`cycles_if_uniform` from the lean path equals the full count on i.i.d. maps, with and
    without memory stalls (scnn_like does not model them; eyeriss_gating stalls on digits)."""
    configs = ["cnvlutin_like", "scnn_like", "eie_like", "eyeriss_gating"]
    archs = [load_arch(ROOT / "arch_configs" / f"{c}.yaml") for c in configs]
    archs.append(archs[1].model_copy(update={"model_memory_stalls": True}))
    stalled = 0
    for layer in load_workload(DIGITS).layers:
        for arch in archs:
            full = count_layer(layer, arch, uniform=True)
            assert zero_skip.count.uniform_cycles(layer, arch) == full.cycles, \
                (layer.name, arch.name)
            stalled += full.stall_cycles > 0
    assert stalled > 0


@pytest.mark.skipif(not DIGITS.is_file(), reason="workloads/digits_cnn.npz not shipped")
def test_uniform_cycles_from_the_traced_work_on_archs_that_skip_nothing():
    """On an arch that compresses or gates but skips nothing, `cycles_if_uniform` takes the
    dataflow's work from the trace pass and only the stored sizes from the i.i.d. maps: equal
    to the full count on i.i.d. maps, stalled or not, for every dataflow; its stalls differ
    from the trace's where the formats' sizes do."""
    bases = [load_arch(ROOT / "arch_configs" / f"{c}.yaml")
             for c in ("cnvlutin_like", "scnn_like", "eie_like", "eyeriss_gating")]
    archs = [a.model_copy(update={"skip": (), "gate": ("act",), "model_memory_stalls": True,
                                  "act_format": bases[1].act_format,
                                  "weight_format": bases[1].weight_format})
             for a in bases]
    archs.append(bases[3])
    uniform_stalls, trace_stalls = [], []
    for layer in load_workload(DIGITS).layers:
        for arch in archs:
            traced, work_done = zero_skip.count._count_layer(layer, arch)
            full = count_layer(layer, arch, uniform=True)
            assert zero_skip.count.uniform_cycles(layer, arch, work_done) == full.cycles, \
                (layer.name, arch.name)
            uniform_stalls.append(full.stall_cycles)
            trace_stalls.append(traced.stall_cycles)
    assert any(uniform_stalls)
    assert uniform_stalls != trace_stalls


MINILM = ROOT / "workloads" / "minilm.npz"


@pytest.mark.skipif(not MINILM.is_file(), reason="workloads/minilm.npz not shipped")
def test_layers_that_read_one_tensor_share_its_map_and_count_as_apart():
    """Q, K and V read one stored array (`alias_of`): their non-zero maps are one object, and
    each one's counts (trace and i.i.d. maps, on skipping and gating archs) equal those of the
    same layer holding a copy of that array, whose map is made on its own."""
    import dataclasses

    workload = load_workload(MINILM)
    by_name = {layer.name: layer for layer in workload.layers}
    layers = [layer for layer in workload.layers if layer.alias_of][:2]
    assert layers
    archs = [load_arch(ROOT / "arch_configs" / f"{c}.yaml")
             for c in ("cnvlutin_like", "scnn_like", "eyeriss_gating")]
    for layer in layers:
        owner = by_name[layer.alias_of]
        assert layer.act is owner.act
        alias = dataclasses.replace(layer, act=owner.act)
        apart = dataclasses.replace(layer, act=owner.act.copy())
        assert work.layer_bitmaps(alias).act is work.layer_bitmaps(owner).act
        assert work.layer_bitmaps(apart).act is not work.layer_bitmaps(owner).act
        for arch in archs:
            for uniform in (False, True):
                a, b = count_layer(alias, arch, uniform), count_layer(apart, arch, uniform)
                assert (a.cycles, a.macs_done, a.macs_gated, a.actions, a.columns) == \
                    (b.cycles, b.macs_done, b.macs_gated, b.actions, b.columns), \
                    (layer.name, arch.name, uniform)


@pytest.mark.skipif(not MINILM.is_file(), reason="workloads/minilm.npz not shipped")
def test_a_layer_whose_maps_are_all_non_zero_is_its_own_iid_draw():
    """MiniLM's Q/K/V inputs have no zeros: the i.i.d. map at density 1 is that map, so
    `cycles_if_uniform` is the trace's cycles without drawing one; it equals the i.i.d. pass
    run in full. A layer with zeros still draws and runs its i.i.d. pass."""
    archs = [load_arch(ROOT / "arch_configs" / f"{c}.yaml")
             for c in ("cnvlutin_like", "scnn_like", "eyeriss_gating")]
    layers = load_workload(MINILM).layers
    dense = [x for x in layers if work.layer_bitmaps(x).act_density == 1.0][:3]
    sparse = [x for x in layers if 0 < work.layer_bitmaps(x).act_density < 1][:2]
    assert dense and sparse
    got = {(layer.name, arch.name): zero_skip.simulate(layer, arch).columns["cycles_if_uniform"]
           for arch in archs for layer in dense}
    assert not any(work.layer_bitmaps(layer).iid for layer in dense)
    for arch in archs:
        for layer in dense:
            assert got[layer.name, arch.name] == zero_skip.count.uniform_cycles(layer, arch)
        for layer in sparse:
            zero_skip.simulate(layer, arch)
            assert "act" in work.layer_bitmaps(layer).iid, (layer.name, arch.name)
