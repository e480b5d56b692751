"""Run a sweep: every (design point, workload) once, results journaled as they finish.

Each finished task is one JSON line appended to `<out>/points.jsonl` and fsync'd, so a SIGKILL
loses at most the task in flight; a torn last line is detected and cut on `--resume`, and
finished `point_hash`es are skipped. `points.csv` / `points.parquet` (ordered by point, then
workload, so they do not depend on completion order) are rebuilt from the journal at the end.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from accelsim.arch.area import area_um2_by_component
from accelsim.errors import AccelsimError
from accelsim.kinds import parse_arch
from accelsim.sweep_spec import Point, SweepError, SweepSpec, point_hash
from accelsim.workload.format import _file_hash, load_workload

JOURNAL = "points.jsonl"
TABLE = "points.csv"
PR_SET_PDEATHSIG = 1
"""prctl option from <linux/prctl.h>."""

_WORKLOADS: dict[str, object] = {}


def run_point(arch_data: dict, workload_path: str) -> dict:
    """Simulate one arch mapping on one workload file (cached per process): totals + area."""
    from accelsim.simulate import simulate

    if workload_path not in _WORKLOADS:
        _WORKLOADS[workload_path] = load_workload(workload_path)
    arch = parse_arch(arch_data, "sweep point")
    totals = simulate(_WORKLOADS[workload_path], arch).totals()
    areas = area_um2_by_component(arch)
    row = {k: v for k, v in totals.items() if k not in ("layer", "op")}
    row.update({f"area_{k}_mm2": v / 1e6 for k, v in areas.items()})
    row["area_mm2"] = sum(areas.values()) / 1e6
    return row


Task = tuple[str, Point, Path]
"""(point_hash, point, workload path)."""


def tasks(spec: SweepSpec, points: list[Point]) -> list[Task]:
    """Every (point, workload) pair with its point_hash."""
    hashes = {w: _file_hash(w) for w in spec.workloads}
    return [(point_hash(p.arch, hashes[w]), p, w) for p in points for w in spec.workloads]


def read_journal(out: Path, repair: bool) -> list[dict]:
    """Complete rows of the journal; with `repair`, a torn last line is cut off the file."""
    path = out / JOURNAL
    if not path.is_file():
        return []
    data = path.read_bytes()
    good = data.rfind(b"\n") + 1
    rows = []
    for number, line in enumerate(data[:good].splitlines(), start=1):
        try:
            rows.append(json.loads(line))
        except ValueError:
            raise SweepError(f"{path}: line {number} is not a JSON record (the file was edited "
                             "or damaged); delete that line, or choose another --out.") from None
    if good < len(data) and repair:
        with open(path, "r+b") as f:
            f.truncate(good)
            f.flush()
            os.fsync(f.fileno())
    return rows


def _append(f, row: dict) -> None:
    f.write(json.dumps(row, separators=(",", ":"), allow_nan=True) + "\n")
    f.flush()
    os.fsync(f.fileno())


def _local(todo: list[Task], workers: int) -> Iterator[tuple[Task, dict]]:
    if workers <= 1:
        for task in todo:
            try:
                row = run_point(task[1].arch, str(task[2]))
            except AccelsimError as exc:
                raise _failed(task, exc) from None
            yield task, row
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                               initializer=_die_with_parent)
    try:
        futures = {pool.submit(run_point, t[1].arch, str(t[2])): t for t in todo}
        for fut in as_completed(futures):
            yield futures[fut], _result(fut, futures[fut])
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _die_with_parent() -> None:
    """Linux: a pool worker gets SIGKILL when the sweep process dies, even by SIGKILL, instead
    of finishing its point as an orphan."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _failed(task: Task, exc: Exception) -> SweepError:
    return SweepError(f"design point {task[1].index} ({task[1].params}) on {task[2].name} "
                      f"failed: {exc} Finished points are kept; fix the sweep and re-run with "
                      "--resume.")


def _result(future: Any, task: Task) -> dict:
    """A finished task's row; a failed point is named, and the journal kept for --resume."""
    try:
        return future.result()
    except AccelsimError as exc:
        raise _failed(task, exc) from None


def _dask(todo: list[Task], workers: int, scheduler: str | None) -> Iterator[tuple[Task, dict]]:
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise SweepError("the dask executor needs dask[distributed]: "
                         "pip install 'accelsim[dist]'.") from None
    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(n_workers=max(workers, 1), threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    try:
        futures = {client.submit(run_point, t[1].arch, str(t[2].resolve()), pure=False): t
                   for t in todo}
        for fut in as_completed(list(futures)):
            yield futures[fut], _result(fut, futures[fut])
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_sweep(
    spec: SweepSpec,
    points: list[Point],
    out: Path,
    executor: str = "local",
    workers: int = 1,
    scheduler: str | None = None,
    resume: bool = False,
    on_start: Callable[[int, int], None] | None = None,
    on_task: Callable[[], None] | None = None,
) -> pd.DataFrame:
    """Run the tasks not yet in `out`'s journal and return the consolidated table.

    `on_start(total, already_done)` is called once, `on_task()` after each finished task.
    """
    out.mkdir(parents=True, exist_ok=True)
    all_tasks = tasks(spec, points)
    done_rows = read_journal(out, repair=resume)
    if done_rows and not resume:
        raise SweepError(f"{out / JOURNAL} already holds {len(done_rows)} results; pass "
                         "--resume to continue that sweep, or choose another --out.")
    done = {r["point_hash"] for r in done_rows}
    todo = [t for t in all_tasks if t[0] not in done]
    if on_start is not None:
        on_start(len(all_tasks), len(all_tasks) - len(todo))
    if executor == "dask" or scheduler:
        results = _dask(todo, workers, scheduler)
    elif executor == "local":
        results = _local(todo, workers)
    else:
        raise SweepError(f"unknown executor {executor!r}; use local or dask.")
    with open(out / JOURNAL, "a", encoding="utf-8") as f:
        for (phash, point, workload), row in results:
            record = {"point_hash": phash, "point": point.index, "workload": workload.stem,
                      **point.params, **row}
            _append(f, record)
            if on_task is not None:
                on_task()
    write_manifest(spec, len(points), all_tasks, out)
    return consolidate(spec, all_tasks, out)


def write_manifest(spec: SweepSpec, n_points: int, all_tasks: list[Task], out: Path) -> None:
    """`sweep.json`: what the folder holds (spec, parameters, objectives, provenance), so a
    reader such as a report can recognise a sweep folder and name its parameter columns."""
    from accelsim import __version__
    from accelsim.pareto import OBJECTIVES
    from accelsim.results import git_revision

    manifest = {
        "kind": "accelsim-sweep",
        "name": spec.name,
        "spec": str(Path(spec.source).resolve()),
        "base_arch": spec.base["name"],
        "parameters": [{k: v for k, v in vars(prm).items() if v is not None}
                       for prm in spec.parameters],
        "sampling": {"method": spec.method, "samples": spec.samples, "seed": spec.seed},
        "constraints": list(spec.constraints),
        "workloads": [str(w.resolve()) for w in spec.workloads],
        "points": n_points,
        "tasks": len(all_tasks),
        "objectives": list(OBJECTIVES),
        "tables": {"points": TABLE, "journal": JOURNAL, "pareto": "pareto.csv",
                   "best": "best.csv", "sensitivity": "sensitivity.csv",
                   "figure": ["pareto.png", "pareto.svg"]},
        "tool_version": __version__,
        "git_revision": git_revision(),
    }
    (out / "sweep.json").write_text(json.dumps(manifest, indent=2, default=list))


def consolidate(spec: SweepSpec, all_tasks: list[Task], out: Path) -> pd.DataFrame:
    """Journal rows of this sweep's tasks, one per point_hash, in point then workload order;
    written to points.csv and points.parquet."""
    order = {t[0]: i for i, t in enumerate(all_tasks)}
    rows = {r["point_hash"]: r for r in read_journal(out, repair=False) if r["point_hash"] in order}
    df = pd.DataFrame(sorted(rows.values(), key=lambda r: order[r["point_hash"]]))
    df.to_csv(out / TABLE, index=False)
    df.to_parquet(out / "points.parquet", index=False)
    return df
