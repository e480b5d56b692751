"""Cost of `accelsim.capture` against a plain forward pass, on the shipped recipes' models.

    .venv/bin/python benchmarks/bench_capture.py [--out benchmarks/results/capture.csv] [--repeats 3]

For each recipe whose packages are installed (digits-cnn, minilm, efficientnet-lite0, crepe,
with the shipped traces' default inputs), the model and inputs are built once (not timed), then
timed: a plain `torch.no_grad()` forward pass, `capture(..., keep="values")`, `capture(...,
keep="mask")` and `capture(..., keep="values", max_mb=...)` (which adds the shapes-only sizing
pass). Each figure is the best of `--repeats` runs, one thread (`torch.set_num_threads(1)`).
Prints one line per (recipe, step) and writes the same figures as CSV.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from accelsim.workload.capture import capture  # noqa: E402
from accelsim.workload.recipes import RECIPES, RecipeError  # noqa: E402
from benchmarks.timing import best_of, write_csv  # noqa: E402


def forward(model: torch.nn.Module, inputs: Any) -> Any:
    with torch.no_grad():
        if isinstance(inputs, dict):
            return model(**inputs)
        if isinstance(inputs, tuple):
            return model(*inputs)
        return model(inputs)


def bench_recipe(name: str, model: torch.nn.Module, inputs: Any, repeats: int) -> list[dict]:
    """Time a plain forward pass and the three capture variants on one recipe's model."""
    model.eval()
    steps: dict[str, Callable[[], Any]] = {
        "forward": lambda: forward(model, inputs),
        "capture_values": lambda: capture(model, inputs),
        "capture_mask": lambda: capture(model, inputs, keep="mask"),
        "capture_values_sized": lambda: capture(model, inputs, max_mb=4096),
    }
    trace = capture(model, inputs)
    rows, base = [], None
    for step, fn in steps.items():
        seconds = best_of(repeats, fn)
        base = seconds if base is None else base
        rows.append({"recipe": name, "step": step, "seconds": round(seconds, 4),
                     "vs_forward": round(seconds / base, 2), "layers": len(trace.layers),
                     "trace_mib": round(trace.source["estimated_bytes"] / 2**20, 2)})
        print(f"{name:20s} {step:22s} {seconds:8.3f} s  x{seconds / base:5.2f} forward")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "capture.csv")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for name in ("digits-cnn", "minilm", "efficientnet-lite0", "crepe"):
        try:
            model, inputs, _, _ = RECIPES[name].build()
        except RecipeError as exc:
            print(f"{name}: skipped ({exc})")
            continue
        rows += bench_recipe(name, model, inputs, args.repeats)
    write_csv(args.out, rows)


if __name__ == "__main__":
    main()
