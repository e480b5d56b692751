"""Helpers the benchmark scripts share: best-of-N wall-clock timing and writing a figures CSV."""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def best_of(repeats: int, fn: Callable[[], Any]) -> float:
    """Fastest wall time of `repeats` calls of `fn`, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def best_fresh(load: Callable[[], Any], fn: Callable[[Any], Any], repeats: int,
               min_total_s: float = 0.3, most: int = 100) -> tuple[float, Any]:
    """Fastest wall time in seconds of `fn(load())`, loading not timed (a fresh copy each call,
    so nothing is served from per-object caches), and the last result: at least `repeats`
    calls, more (at most `most`) until the timed calls add up to `min_total_s`, so that a case
    of a few milliseconds is sampled as often as the machine's noise needs."""
    best, total, calls, out = math.inf, 0.0, 0, None
    while calls < repeats or (total < min_total_s and calls < most):
        arg = load()
        start = time.perf_counter()
        out = fn(arg)
        took = time.perf_counter() - start
        best, total, calls = min(best, took), total + took, calls + 1
    return best, out


def write_csv(path: Path, rows: list[dict]) -> None:
    """Write `rows` (columns from the first row's keys) to `path`, creating its folder, and say so."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {path}")
