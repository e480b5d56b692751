"""Run a sweep: every (design point, workload) once, results journaled as they finish.

Tasks run in chunks: the design points of one chunk share a workload and a kind and are
evaluated together (`accelsim.simulate.simulate_totals`: each layer counted on all of them at
once). Each finished task is one JSON line appended to `<out>/points.jsonl`, the lines of a
chunk fsync'd together, so a SIGKILL loses at most the chunks in flight; a torn last line is
detected and cut on `--resume`, and finished tasks, keyed by (`point_hash`, workload name), are
skipped. With `--workers N` the chunks go to N forked processes (Linux; spawned elsewhere),
which inherit the workloads the sweep loaded. `points.csv` /
`points.parquet` (ordered by point, then workload, so they do not depend on completion order)
are rebuilt from the journal at the end.

`sweep.json` is written before the first task runs, with the spec's `spec_hash`: `--resume`
refuses a folder whose manifest names another spec (or none), and every journal line is checked
before it is trusted: a JSON object of a task of this sweep, with that task's parameters, seen
once, whose `check` (a digest of the rest of the line) matches, so that an edited value, a
swapped hash or a missing column is named by its line number instead of being reported.
"""

from __future__ import annotations

import ctypes
import gc
import hashlib
import json
import math
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from accelsim.arch.area import area_um2_by_component
from accelsim.arch.schema import ArchBase
from accelsim.errors import AccelsimError, ArchError
from accelsim.kinds import parse_arch
from accelsim.sweep_spec import Point, SweepError, SweepSpec, point_hash
from accelsim.workload.format import file_hash, load_workload
from accelsim.workload.layer import Workload

JOURNAL = "points.jsonl"
TABLE = "points.csv"
MANIFEST = "sweep.json"
CHECK = "check"
"""Journal field holding the digest of the rest of its line (`line_check`)."""
PR_SET_PDEATHSIG = 1
"""prctl option from <linux/prctl.h>."""

_WORKLOADS: dict[str, Workload] = {}


ROW_KEYS_DROPPED = ("layer", "op", "workload")
"""Totals keys a sweep row does not keep: the task's own `workload` field (the file's name,
part of the task key) names the workload."""
CHUNK_MAX = 64
"""Most tasks evaluated together in one chunk."""
CHUNKS_PER_WORKER = 4
"""Chunks per pool worker a sweep aims for (so that workers finish together)."""


def _workload(workload_path: str) -> Workload:
    """The workload file, loaded once per process."""
    if workload_path not in _WORKLOADS:
        _WORKLOADS[workload_path] = load_workload(workload_path)
    return _WORKLOADS[workload_path]


def run_point(arch_data: dict, workload_path: str, decode: dict | None = None) -> dict:
    """Simulate one arch mapping on one workload file (cached per process), as LLM decode when
    `decode` gives the setup: totals + area."""
    return run_points([arch_data], workload_path, decode)[0]


def run_points(arch_datas: list[dict], workload_path: str,
               decode: dict | None = None) -> list[dict]:
    """`run_point` for many arch mappings on one workload: the points of each kind evaluated
    together (`accelsim.simulate.simulate_totals`; point by point for LLM decode)."""
    from accelsim.simulate import simulate, simulate_totals

    workload = _workload(workload_path)
    archs = [parse_arch(data, "sweep point") for data in arch_datas]
    totals: list[dict] = [{} for _ in archs]
    if decode is not None:
        totals = [simulate(workload, arch, phase="decode", **decode).totals() for arch in archs]
    else:
        for kind in dict.fromkeys(a.kind for a in archs):
            idx = [i for i, a in enumerate(archs) if a.kind == kind]
            for i, tot in zip(idx, simulate_totals(workload, [archs[i] for i in idx])):
                totals[i] = tot
    return [_with_area({k: v for k, v in tot.items() if k not in ROW_KEYS_DROPPED}, arch)
            for tot, arch in zip(totals, archs)]


def _with_area(row: dict, arch: ArchBase) -> dict:
    """A point's totals with its modelled area (mm^2; NaN where the kind has no area model)."""
    try:
        areas = area_um2_by_component(arch)
    except ArchError:  # the area model does not cover this kind (GPUs, neuromorphic cores)
        row["area_mm2"] = math.nan
        return row
    row.update({f"area_{k}_mm2": v / 1e6 for k, v in areas.items()})
    row["area_mm2"] = sum(areas.values()) / 1e6
    return row


def chunks(todo: list[Task], workers: int) -> list[list[Task]]:
    """The tasks in chunks of one workload each, at most `CHUNK_MAX` long and about
    `CHUNKS_PER_WORKER` per worker; tasks whose archs differ only in name and memory sizes side
    by side (`_sizes_apart`), so that they share a chunk, whichever worker runs it."""
    size = max(1, min(CHUNK_MAX, math.ceil(len(todo) / max(1, workers * CHUNKS_PER_WORKER))))
    by_workload: dict[Path, list[Task]] = {}
    for task in sorted(todo, key=_sizes_apart):
        by_workload.setdefault(task[2], []).append(task)
    return [group[i:i + size] for group in by_workload.values()
            for i in range(0, len(group), size)]


def _sizes_apart(task: Task) -> str:
    """The task's arch description without its name and its memory levels' sizes (canonical
    JSON): tasks equal under it are those a batched engine may count once (a zero-skip arch
    without DRAM is counted once for all its sizes, `accelsim.engines.zero_skip.batch.group_key`);
    it orders the work only, never a result."""
    arch = {k: v for k, v in task[1].arch.items() if k != "name"}
    if isinstance(arch.get("memory"), list):
        arch["memory"] = [{k: v for k, v in level.items() if k != "size_bytes"}
                          if isinstance(level, dict) else level for level in arch["memory"]]
    return json.dumps(arch, sort_keys=True, default=str)


def _run_chunk(chunk: list[Task], decode: dict | None) -> list[dict]:
    return run_points([t[1].arch for t in chunk], str(chunk[0][2]), decode)


Task = tuple[str, Point, Path]
"""(point_hash, point, workload path)."""


def tasks(spec: SweepSpec, points: list[Point]) -> list[Task]:
    """Every (point, workload) pair with its point_hash."""
    hashes = {w: file_hash(str(w)) for w in spec.workloads}
    return [(point_hash(p.arch, hashes[w], spec.decode), p, w) for p in points
            for w in spec.workloads]


def task_key(phash: str, workload: str) -> tuple[str, str]:
    """What identifies a task's result: its point_hash and its workload's name (two workloads
    with the same content are two tasks)."""
    return phash, workload


def line_check(row: dict) -> str:
    """Digest of a journal row without its `check` field (canonical JSON, sha256, 16 hex)."""
    canon = json.dumps(_without_check(row), sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(canon.encode()).hexdigest()[:16]


def _without_check(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != CHECK}


def read_journal(out: Path, repair: bool) -> list[dict]:
    """Complete rows of the journal, each a JSON object; with `repair`, a torn last line is cut
    off the file."""
    path = out / JOURNAL
    if not path.is_file():
        return []
    data = path.read_bytes()
    good = data.rfind(b"\n") + 1
    rows = []
    for number, line in enumerate(data[:good].splitlines(), start=1):
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            raise SweepError(f"{path}: line {number} is not a JSON record (the file was edited "
                             "or damaged); delete that line, or choose another --out.") from None
        if not isinstance(row, dict):
            raise SweepError(f"{path}: line {number} is not a JSON object (the file was edited "
                             "or damaged); delete that line, or choose another --out.")
        rows.append(row)
    if good < len(data) and repair:
        with open(path, "r+b") as f:
            f.truncate(good)
            f.flush()
            os.fsync(f.fileno())
    return rows


def check_journal(rows: list[dict], all_tasks: list[Task], out: Path) -> None:
    """Refuse journal rows that this sweep did not write as they are, naming the line: not a
    task of this sweep, other parameters than the task's, a task seen twice, or a `check` that
    does not match the line (a value edited, a column removed)."""
    path = out / JOURNAL
    by_key = {task_key(t[0], t[2].stem): t for t in all_tasks}
    seen: set[tuple[str, str]] = set()
    fix = "delete that line to have the task run again, or choose another --out"
    for number, row in enumerate(rows, start=1):
        phash, workload = row.get("point_hash"), row.get("workload")
        task = by_key.get((phash, workload)) if isinstance(phash, str) and isinstance(
            workload, str) else None
        if task is None:
            raise SweepError(f"{path}: line {number} (point_hash {phash!r:.40}, workload "
                             f"{workload!r:.40}) is not a task of this sweep: the journal was "
                             f"edited or comes from another sweep; {fix}.")
        if row.get(CHECK) != line_check(row):
            raise SweepError(f"{path}: line {number} does not match its check digest: a value "
                             f"was edited or a column removed after it was written; {fix}.")
        wrong = sorted(k for k, v in task[1].params.items()
                       if k not in row or json.dumps(row[k]) != json.dumps(v))
        if wrong or row.get("point") != task[1].index:
            raise SweepError(f"{path}: line {number}: its parameters {wrong or ['point']} are not "
                             f"those of the task its point_hash names; {fix}.")
        if (phash, workload) in seen:
            raise SweepError(f"{path}: line {number} repeats the task (point_hash {phash}, "
                             f"workload {workload}) of an earlier line; {fix}.")
        seen.add((phash, workload))


def _append(f, row: dict) -> dict:
    """Write `row` with its `check` as one journal line; return the row as `read_journal` will
    read it back, without its `check`."""
    line = json.dumps({**row, CHECK: line_check(row)}, separators=(",", ":"), allow_nan=True)
    f.write(line + "\n")
    if all(type(k) is str and type(v) in _JSON_SCALARS for k, v in row.items()):
        return row
    return _without_check(json.loads(line))


_JSON_SCALARS = (str, int, float, bool, type(None))
"""Value types that a journal line reads back as they were written."""


def _sync(f) -> None:
    f.flush()
    os.fsync(f.fileno())


Finished = list[tuple[Task, dict]]
"""One chunk's tasks with their result rows."""


def _serial(parts: list[list[Task]], decode: dict | None) -> Iterator[Finished]:
    for chunk in parts:
        try:
            rows = _run_chunk(chunk, decode)
        except AccelsimError as exc:
            raise _failed_chunk(chunk, exc, decode) from None
        yield list(zip(chunk, rows))


def _local(todo: list[Task], workers: int, decode: dict | None) -> Iterator[Finished]:
    parts = chunks(todo, workers)
    if workers <= 1 or not parts:
        yield from _serial(parts, decode)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    for path in dict.fromkeys(t[2] for t in todo):  # loaded once, inherited by forked workers
        _workload(str(path))
    # the first task runs here, so that forked workers inherit the kernels it loaded (and any
    # counts it kept) instead of each loading them again
    yield from _serial([parts[0][:1]], decode)
    parts = [chunk for chunk in (parts[0][1:], *parts[1:]) if chunk]
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context(method),
                               initializer=_die_with_parent)
    try:
        futures = {pool.submit(_run_chunk, chunk, decode): chunk for chunk in parts}
        for fut in as_completed(futures):
            chunk = futures[fut]
            try:
                rows = fut.result()
            except AccelsimError as exc:
                raise _failed_chunk(chunk, exc, decode) from None
            yield list(zip(chunk, rows))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _failed_chunk(chunk: list[Task], exc: AccelsimError, decode: dict | None) -> SweepError:
    """The first design point of a failed chunk that fails on its own, named (the chunk's
    error where none does)."""
    for task in chunk:
        try:
            run_point(task[1].arch, str(task[2]), decode)
        except AccelsimError as own:
            return _failed(task, own)
    return _failed(chunk[0], exc)


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


def _dask(todo: list[Task], workers: int, scheduler: str | None,
          decode: dict | None) -> Iterator[Finished]:
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
        futures = {client.submit(run_point, t[1].arch, str(t[2].resolve()), decode, pure=False): t
                   for t in todo}
        for fut in as_completed(list(futures)):
            yield [(futures[fut], _result(fut, futures[fut]))]
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
    if resume and (done_rows or (out / MANIFEST).is_file()):
        _check_same_spec(spec, out)
    check_journal(done_rows, all_tasks, out)
    write_manifest(spec, points, all_tasks, out)
    done = {task_key(r["point_hash"], r["workload"]) for r in done_rows}
    todo = [t for t in all_tasks if task_key(t[0], t[2].stem) not in done]
    if on_start is not None:
        on_start(len(all_tasks), len(all_tasks) - len(todo))
    if executor == "dask" or scheduler:
        results = _dask(todo, workers, scheduler, spec.decode)
    elif executor == "local":
        results = _local(todo, workers, spec.decode)
    else:
        raise SweepError(f"unknown executor {executor!r}; use local or dask.")
    rows = {task_key(r["point_hash"], r["workload"]): _without_check(r) for r in done_rows}
    freeze = gc.get_freeze_count() == 0  # the caller's own freeze is left as it is
    if freeze:
        gc.freeze()  # what is loaded by now lives until the end: no collection scans it again
    try:
        with open(out / JOURNAL, "a", encoding="utf-8") as f:
            for finished in results:
                for (phash, point, workload), row in finished:
                    clash = sorted(set(point.params) & set(row))
                    if clash:
                        raise SweepError(f"{spec.source}: parameter(s) {clash} are named like "
                                         "result column(s) of this engine and would overwrite "
                                         "them; rename them with 'name' in the sweep file.")
                    record = {"point_hash": phash, "point": point.index,
                              "workload": workload.stem, **point.params, **row}
                    rows[task_key(phash, workload.stem)] = _append(f, record)
                _sync(f)
                for _ in finished:
                    if on_task is not None:
                        on_task()
    finally:
        if freeze:
            gc.unfreeze()
    write_manifest(spec, points, all_tasks, out)
    return consolidate(all_tasks, rows, out)


def _check_same_spec(spec: SweepSpec, out: Path) -> None:
    """Refuse to resume in a folder written by another sweep spec (see the module docstring)."""
    path = out / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        manifest = None
    written = manifest.get("spec_hash") if isinstance(manifest, dict) else None
    if written != spec.spec_hash:
        what = (f"was written by a different sweep spec (spec_hash {written}) than "
                f"{spec.source} (spec_hash {spec.spec_hash})" if isinstance(written, str)
                else f"has no readable {MANIFEST} naming the spec that wrote it, so it cannot "
                     f"be resumed with {spec.source}")
        raise SweepError(f"{out} {what}: its finished points would be mixed with this spec's. "
                         "Resume with the spec that wrote it, or choose another --out.")


def write_manifest(spec: SweepSpec, points: list[Point], all_tasks: list[Task], out: Path) -> None:
    """`sweep.json`: what the folder holds (spec, its hash, parameters, objectives, designs
    repeated by others, provenance), so a reader such as a report can recognise a sweep folder
    and name its parameter columns, and `--resume` can recognise its spec."""
    from accelsim import __version__
    from accelsim.pareto import OBJECTIVES
    from accelsim.results import git_revision

    manifest = {
        "kind": "accelsim-sweep",
        "name": spec.name,
        "spec": str(Path(spec.source).resolve()),
        "spec_hash": spec.spec_hash,
        "base_arch": spec.base["name"],
        "parameters": [{k: v for k, v in vars(prm).items() if v is not None}
                       for prm in spec.parameters],
        "sampling": {"method": spec.method, "samples": spec.samples, "seed": spec.seed},
        "constraints": list(spec.constraints),
        "workloads": [str(w.resolve()) for w in spec.workloads],
        **({"decode": spec.decode} if spec.decode is not None else {}),
        "points": len(points),
        "duplicate_points": list(getattr(points, "duplicates", [])),
        "tasks": len(all_tasks),
        "objectives": list(OBJECTIVES),
        "tables": {"points": TABLE, "journal": JOURNAL, "pareto": "pareto.csv",
                   "best": "best.csv", "sensitivity": "sensitivity.csv",
                   "figure": ["pareto.png", "pareto.svg"]},
        "tool_version": __version__,
        "git_revision": git_revision(),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, default=list))


def consolidate(all_tasks: list[Task], rows: dict[tuple[str, str], dict], out: Path
                ) -> pd.DataFrame:
    """The journal's rows (`rows`, by `task_key`, without their `check` digests) of this
    sweep's tasks, one per task, in point then workload order; written to points.csv and
    points.parquet."""
    order = {task_key(t[0], t[2].stem): i for i, t in enumerate(all_tasks)}
    df = pd.DataFrame([rows[k] for k in sorted((k for k in rows if k in order),
                                               key=order.__getitem__)])
    df.to_csv(out / TABLE, index=False)
    df.to_parquet(out / "points.parquet", index=False)
    return df
