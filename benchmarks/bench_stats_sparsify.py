"""Speed of `accelsim inspect` statistics and of each `sparsify` method.

Runs on every shipped trace in `workloads/` and on two synthetic traces sized like the real
models issue 3 ships (a MiniLM-L6-like encoder over 128 tokens with GELU-like values, and an
EfficientNet-Lite0-like stack of 112x112 and 56x56 conv inputs for 2 images with ReLU6-like
values), so the figures do not depend on which workloads exist yet.

    .venv/bin/python benchmarks/bench_stats_sparsify.py [--out benchmarks/results/stats_sparsify.csv]

Prints one line per (workload, step) and writes the same figures as CSV. The output-error
step is BLAS matrix products: on a loaded machine with few cores, OPENBLAS_NUM_THREADS=1
avoids thread oversubscription (10x slower products were seen on a shared 2-core host). The first call of
each numba kernel is compiled (or loaded from cache) in a warm-up run that is not timed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from accelsim.workload import ConvShape, GemmShape, Layer, Workload, load_workload  # noqa: E402
from accelsim.workload.sparsify import sparsify  # noqa: E402
from accelsim.workload.stats import workload_stats  # noqa: E402
from benchmarks.timing import write_csv  # noqa: E402


def minilm_like(rng: np.random.Generator, tokens: int = 128, hidden: int = 384) -> Workload:
    """6 encoder blocks: q (k, v aliased), o, ffn up, ffn down; weights kept."""
    layers = []
    for b in range(6):
        x = rng.standard_normal((tokens, hidden)).astype(np.float16)
        gelu = rng.standard_normal((tokens, 4 * hidden))
        gelu = (gelu * 0.5 * (1 + np.tanh(0.8 * gelu))).astype(np.float16)
        w = lambda k, n: (rng.standard_normal((k, n)) / np.sqrt(k)).astype(np.float16)  # noqa: E731
        layers += [
            Layer(f"b{b}.q", "linear", GemmShape(tokens, hidden, hidden), act=x, weight=w(hidden, hidden)),
            Layer(f"b{b}.k", "linear", GemmShape(tokens, hidden, hidden), alias_of=f"b{b}.q", act=x,
                  weight=w(hidden, hidden)),
            Layer(f"b{b}.v", "linear", GemmShape(tokens, hidden, hidden), alias_of=f"b{b}.q", act=x,
                  weight=w(hidden, hidden)),
            Layer(f"b{b}.o", "linear", GemmShape(tokens, hidden, hidden),
                  act=rng.standard_normal((tokens, hidden)).astype(np.float16), weight=w(hidden, hidden)),
            Layer(f"b{b}.up", "linear", GemmShape(tokens, hidden, 4 * hidden), act=x,
                  weight=w(hidden, 4 * hidden)),
            Layer(f"b{b}.down", "linear", GemmShape(tokens, 4 * hidden, hidden), act=gelu,
                  weight=w(4 * hidden, hidden)),
        ]
    return Workload("minilm-like", layers)


def efficientnet_like(rng: np.random.Generator, images: int = 2) -> Workload:
    """Pointwise and depthwise convs on 112x112x32/16 and 56x56x96/24 inputs; weights kept."""
    def relu6(shape: tuple[int, ...]) -> np.ndarray:
        return np.clip(rng.standard_normal(shape) * 2, 0, 6).astype(np.float16)

    specs = [("dw1", 32, 112, 32, 3, 32), ("pw1", 32, 112, 16, 1, 1), ("pw2", 16, 112, 96, 1, 1),
             ("dw2", 96, 56, 96, 3, 96), ("pw3", 96, 56, 24, 1, 1), ("pw4", 24, 56, 144, 1, 1)]
    layers = []
    for name, c, hw, k, r, g in specs:
        pad = (r // 2,) * 4
        shape = ConvShape(N=images, C=c, H=hw, W=hw, K=k, R=r, S=r, padding=pad, groups=g)
        weight = (rng.standard_normal(shape.weight_shape) / np.sqrt(c // g * r * r)).astype(np.float16)
        layers.append(Layer(name, "conv2d", shape, act=relu6(shape.act_shape), weight=weight))
    return Workload("efficientnet-like", layers)


STEPS: list[tuple[str, Callable[[Workload], object]]] = [
    ("inspect stats", lambda w: workload_stats(w)),
    ("threshold target 0.5/layer", lambda w: sparsify(w, "threshold", target=0.5)),
    ("threshold target 0.5/model", lambda w: sparsify(w, "threshold", target=0.5, scope="model")),
    ("threshold target 0.5, no error", lambda w: sparsify(w, "threshold", target=0.5,
                                                          output_error=False)),
    ("topk keep 0.25", lambda w: sparsify(w, "topk", keep_fraction=0.25)),
    ("nm 2:4", lambda w: sparsify(w, "nm", n=2, m=4)),
    ("channel target 0.5", lambda w: sparsify(w, "channel", target=0.5)),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "stats_sparsify.csv")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per step (best is kept)")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    workloads = [minilm_like(rng), efficientnet_like(rng)]
    workloads += [load_workload(p) for p in sorted((ROOT / "workloads").glob("*.npz"))]
    sparsify(workloads[0], "nm", n=2, m=4, output_error=False)  # warm-up: numba compile/cache load
    rows = []
    for w in workloads:
        elements = sum(layer.act.size for layer in w.layers if layer.act is not None and not layer.alias_of)
        for step, fn in STEPS:
            try:
                best = min(_timed(fn, w) for _ in range(args.repeat))
            except Exception as exc:  # a shipped trace without values: report, keep going
                print(f"{w.model:24s} {step:34s} skipped ({type(exc).__name__}: {exc})")
                continue
            rows.append({"workload": w.model, "layers": len(w.layers), "elements": elements,
                         "step": step, "seconds": round(best, 4),
                         "melements_per_s": round(elements / best / 1e6, 2)})
            print(f"{w.model:24s} {step:34s} {best * 1e3:9.1f} ms  "
                  f"{elements / best / 1e6:8.1f} M elements/s  ({elements:,} elements)")
    write_csv(args.out, rows)


def _timed(fn: Callable[[Workload], object], w: Workload) -> float:
    start = time.perf_counter()
    fn(w)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
