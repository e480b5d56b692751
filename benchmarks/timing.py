"""Helpers the benchmark scripts share: best-of-N wall-clock timing and writing a figures CSV."""

from __future__ import annotations

import csv
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


def write_csv(path: Path, rows: list[dict]) -> None:
    """Write `rows` (columns from the first row's keys) to `path`, creating its folder, and say so."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {path}")
