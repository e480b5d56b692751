"""Sweeps: spec validation, point expansion, journal and resume, analysis, area model."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.arch.area import area_mm2, area_um2_by_component
from accelsim.arch.tech import load_tech_table
from accelsim.cli import main
from accelsim.engines.zero_skip.batch import group_key
from accelsim.errors import AccelsimError
from accelsim.kinds import load_arch, parse_arch
from accelsim.pareto import best_per_objective, pareto_front, pareto_mask, sensitivity
from accelsim.sweep import JOURNAL, chunks, read_journal, run_sweep
from accelsim.sweep_spec import SweepError, expand, load_sweep

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / "arch_configs" / "cnvlutin_like.yaml"
DIGITS = ROOT / "workloads" / "digits_cnn.npz"
needs_digits = pytest.mark.skipif(not DIGITS.is_file(), reason="workloads/digits_cnn.npz absent")


def write_sweep(tmp_path: Path, **over: object) -> Path:
    spec = {
        "name": "t",
        "base": str(BASE),
        "workloads": [str(DIGITS)],
        "parameters": [
            {"path": "array.lanes", "name": "lanes", "values": [4, 8, 16]},
            {"path": "array.filters_per_pass", "name": "filters", "values": [16, 64, 256]},
            {"path": "memory.1.size_bytes", "name": "neuron_bytes", "values": [65536, 1048576]},
        ],
        "constraints": ["lanes * filters <= 1024"],
    }
    spec.update(over)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@needs_digits
def test_grid_expansion_applies_constraints_and_sets_fields(tmp_path: Path) -> None:
    spec = load_sweep(write_sweep(tmp_path))
    points = expand(spec)
    combos = {(p.params["lanes"], p.params["filters"]) for p in points}
    assert combos == {(lanes, f) for lanes in (4, 8, 16) for f in (16, 64, 256)
                      if lanes * f <= 1024}
    assert len(points) == 2 * len(combos)
    for p in points:
        assert p.arch["array"]["lanes"] == p.params["lanes"]
        assert p.arch["memory"][1]["size_bytes"] == p.params["neuron_bytes"]
    names = [p.arch["name"] for p in points]
    assert len(set(names)) == len(points)
    assert all(f"lanes={p.params['lanes']}," in p.arch["name"] for p in points)


@needs_digits
@pytest.mark.parametrize("over, message", [
    ({"parameters": [{"path": "array.lanez", "values": [1]}]}, "no 'lanez'"),
    ({"parameters": [{"path": "memory.7.size_bytes", "values": [1]}]}, "no '7'"),
    ({"parameters": [{"path": "array.lanes", "values": []}]}, "non-empty list"),
    ({"parameters": [{"path": "array", "values": [1]}]}, "whole section"),
    ({"parameters": [{"path": "array.lanes", "range": [8, 2]}],
      "sampling": {"method": "random", "samples": 3}}, "low < high"),
    ({"parameters": [{"path": "array.lanes", "range": [2, 8]}]}, "grid sampling needs"),
    ({"constraints": ["lanes *"]}, "not a valid expression"),
    ({"constraints": ["__import__('os').system('true')"]}, "uses Call"),
    ({"constraints": ["lanes.__class__ == 1"]}, "uses Attribute"),
    ({"constraints": ["rows <= 4"]}, "names 'rows'"),
    ({"constraints": ["lanes > 10000"]}, "no design point"),
    ({"workloads": ["/nonexistent/w.npz"]}, "not found"),
    ({"parameters": [{"path": "array.lanes", "values": [0]}]}, "invalid architecture"),
    ({"sampling": {"method": "sobol"}}, "sampling.method"),
    ({"extra_key": 1}, "unknown keys"),
    ({"parameters": [{"path": "array.lanes", "name": "point", "values": [4]}]},
     "the name 'point' is a result column"),
    ({"parameters": [{"path": "array.lanes", "name": "workload", "values": [4]}]},
     "is a result column"),
    ({"parameters": [{"path": "array.lanes", "name": "latency_s", "values": [4]}]},
     "is a result column"),
    ({"sampling": "grid"}, "'sampling' must be a mapping"),
    ({"sampling": {"method": "random", "samples": 2, "seed": -1}}, "sampling.seed"),
    ({"sampling": {"method": "random", "samples": 2, "seed": True}}, "sampling.seed"),
    ({"sampling": {"method": "random", "samples": 10**9}}, "at most 100000"),
    ({"sampling": {"method": "random", "samples": 1e9}}, "positive integer 'samples'"),
    ({"parameters": [{"path": "array.lanes", "values": [[4, 8]]}]}, "is not a finite number"),
    ({"parameters": [{"path": "array.lanes", "values": [float("inf")]}]}, "is not a finite"),
    ({"parameters": [{"path": "array.lanes", "range": [1, float("inf")]}],
      "sampling": {"method": "random", "samples": 2}}, "finite numbers"),
    ({"parameters": [{"path": "array.lanes", "range": [1, 1e23]}],
      "sampling": {"method": "random", "samples": 2}}, "finite numbers (below 2**63"),
    ({"parameters": [{"path": "array.lanes", "range": [1, 1e18]}],
      "sampling": {"method": "random", "samples": 2}}, "'array.lanes'"),
    ({"parameters": [{"path": "array.lanes", "range": [2, 8], "log": "no"}],
      "sampling": {"method": "random", "samples": 2}}, "'log' must be true or false"),
    ({"parameters": [{"path": p, "values": list(range(1, 33))}
                     for p in ("array.lanes", "array.filters_per_pass", "array.brick_size",
                               "sync.issue_cycles")]}, "the grid has 1,048,576 design points"),
    ({"parameters": [{"path": "array.lanes", "values": [4]},
                     {"path": "array.lanes", "name": "again", "values": [8]}]},
     "parameter paths repeat"),
    ({"constraints": ["9 ** 9 ** 9 > 1"]}, "above 2**256"),
    ({"constraints": ["lanes ** lanes ** lanes > 1"]}, "above 2**256"),
    ({"constraints": ["lanes * 'a' > 1"]}, "only numeric constants"),
    ({"constraints": ["-" * 500 + "lanes < 0"]}, "syntax nodes, more than 200"),
    ({"constraints": ["lanes / (lanes - lanes) > 0"]}, "a constraint fails on"),
    ({"name": "../outside"}, "'name' must be printable text"),
    ({"workloads": [str(DIGITS), str(DIGITS)]}, "appear more than once by name"),
])
def test_invalid_specs_are_refused_before_work(tmp_path: Path, over: dict, message: str) -> None:
    if "parameters" in over and "constraints" not in over:
        over = {**over, "constraints": []}
    with pytest.raises(AccelsimError, match=re.escape(message)):
        expand(load_sweep(write_sweep(tmp_path, **over)))


@needs_digits
def test_cli_bad_spec_exits_2_without_traceback(tmp_path: Path, capsys) -> None:
    path = write_sweep(tmp_path, constraints=["lanes * "])
    assert main(["sweep", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "not a valid expression" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


@needs_digits
@pytest.mark.parametrize("method", ["random", "latin-hypercube"])
def test_sampled_points_stay_in_range_and_are_reproducible(tmp_path: Path, method: str) -> None:
    params = [{"path": "array.lanes", "name": "lanes", "range": [2, 64]},
              {"path": "memory.1.size_bytes", "name": "neuron_bytes",
               "range": [65536, 4194304], "log": True}]
    path = write_sweep(tmp_path, parameters=params, constraints=[],
                       sampling={"method": method, "samples": 40, "seed": 3})
    a, b = expand(load_sweep(path)), expand(load_sweep(path))
    assert [p.params for p in a] == [p.params for p in b]
    lanes = np.array([p.params["lanes"] for p in a])
    assert lanes.min() >= 2 and lanes.max() <= 64 and lanes.dtype.kind == "i"
    if method == "latin-hypercube":
        # one sample per stratum of the unit interval: log-sizes cover all 40 strata
        u = (np.log([p.params["neuron_bytes"] for p in a]) - np.log(65536)) / np.log(64)
        assert len(a) == 40 and sorted(np.floor(u * 40).astype(int)) == list(range(40))


@given(st.lists(st.tuples(*[st.integers(0, 6)] * 3), min_size=1, max_size=30))
@settings(max_examples=60, deadline=None)
def test_pareto_mask_matches_pairwise_definition(rows: list) -> None:
    values = np.array(rows, dtype=float)
    expected = [not any(all(o <= v) and any(o < v) for o in values) for v in values]
    assert pareto_mask(values).tolist() == expected


def test_analysis_tables() -> None:
    df = pd.DataFrame({"point": range(4), "workload": "w", "p": [1, 2, 3, 4],
                       "latency_s": [4.0, 3.0, 2.0, 1.0], "energy_pj": [1.0, 2.0, 3.0, 5.0],
                       "area_mm2": [1.0, 1.0, 1.0, 0.5]})
    df.loc[1, "energy_pj"] = 9.0  # point 1 is now dominated by point 2
    assert sorted(pareto_front(df)["point"]) == [0, 2, 3]
    best = best_per_objective(df).set_index("objective")["point"]
    assert best.to_dict() == {"latency_s": 3, "energy_pj": 0, "area_mm2": 3}
    sens = sensitivity(df, ["p"]).set_index("objective")
    assert sens.loc["latency_s", "spearman"] == pytest.approx(-1.0)
    assert sens.loc["latency_s", "swing"] == pytest.approx((4.0 - 1.0) / 2.5)


def test_area_model_components_scale_with_macs_sram_and_node() -> None:
    arch = load_arch(BASE)
    table = load_tech_table(arch.tech.table)
    areas = area_um2_by_component(arch)
    scale = (arch.tech.node_nm / 45.0) ** 2
    mac_um2 = (table.area_um2["mult"]["int16"] + table.area_um2["add"]["int32"]) * scale
    assert areas["mac"] == pytest.approx(16 * 256 * mac_um2)
    assert areas["sram_neuron_memory"] == pytest.approx(4194304 * 8 * 0.346 * scale)
    assert area_mm2(arch) == pytest.approx(sum(areas.values()) / 1e6)
    smaller = arch.model_copy(update={"tech": arch.tech.model_copy(update={"node_nm": 14.0})})
    assert area_mm2(smaller) == pytest.approx(area_mm2(arch) * (14 / 28) ** 2)


def test_torn_last_line_is_cut_on_resume(tmp_path: Path) -> None:
    (tmp_path / JOURNAL).write_text('{"point_hash": "a"}\n{"point_hash": "b"}\n{"point_h')
    assert [r["point_hash"] for r in read_journal(tmp_path, repair=False)] == ["a", "b"]
    assert (tmp_path / JOURNAL).read_text().endswith('{"point_h')
    read_journal(tmp_path, repair=True)
    assert (tmp_path / JOURNAL).read_text() == '{"point_hash": "a"}\n{"point_hash": "b"}\n'


@needs_digits
def test_rerun_without_resume_is_refused_and_resume_skips_all(tmp_path: Path) -> None:
    spec = load_sweep(write_sweep(tmp_path))
    points = expand(spec)
    out = tmp_path / "o"
    first = run_sweep(spec, points, out)
    assert first["point_hash"].is_unique and len(first) == len(points)
    assert {"area_mm2", "latency_s", "energy_pj", "lanes"} <= set(first.columns)
    manifest = json.loads((out / "sweep.json").read_text())
    assert [prm["name"] for prm in manifest["parameters"]] == ["lanes", "filters", "neuron_bytes"]
    assert manifest["points"] == len(points) and manifest["kind"] == "accelsim-sweep"
    with pytest.raises(SweepError, match="--resume"):
        run_sweep(spec, points, out)
    counts = []
    again = run_sweep(spec, points, out, resume=True, on_start=lambda t, d: counts.append((t, d)))
    assert counts == [(len(points), len(points))]
    pd.testing.assert_frame_equal(first, again)


def _pool_workers(pid: int) -> list[int]:
    """Process-pool worker pids of `pid` (Linux /proc: its child processes, forked workers)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in children.read_text().split()] if children.exists() else []


def _alive(pid: int) -> bool:
    """A running (not exited, not zombie) process."""
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from accelsim.cli import main; sys.exit(main())",
            *args]


@needs_digits
def test_sigkill_then_resume_equals_uninterrupted_run(tmp_path: Path) -> None:
    params = [{"path": "array.lanes", "name": "lanes", "values": [2, 4, 8, 16, 32]},
              {"path": "array.filters_per_pass", "name": "filters", "values": [16, 32, 64, 128]},
              {"path": "array.brick_size", "name": "brick", "values": [4, 8, 16]}]
    path = write_sweep(tmp_path, parameters=params, constraints=[])
    spec = load_sweep(path)
    points = expand(spec)
    reference = run_sweep(spec, points, tmp_path / "ref")

    out = tmp_path / "killed"
    proc = subprocess.Popen(_cli("sweep", str(path), "--out", str(out), "--workers", "2"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = out / JOURNAL
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if journal.is_file() and journal.read_bytes().count(b"\n") >= 8:
            break
        time.sleep(0.02)
    workers = _pool_workers(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(1.0)
    assert workers and not [pid for pid in workers if _alive(pid)], \
        "pool workers outlived the killed sweep"
    finished = journal.read_bytes().count(b"\n")
    assert 8 <= finished < len(points), "the sweep was not interrupted part-way"
    with open(journal, "ab") as f:  # a write torn by the kill
        f.write(b'{"point_hash": "dead", "lat')

    done = subprocess.run(_cli("sweep", str(path), "--out", str(out), "--workers", "2",
                               "--resume"), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"{finished} of {len(points)} already finished" in done.stderr
    lines = journal.read_text().splitlines()
    hashes = [json.loads(line)["point_hash"] for line in lines]
    assert len(hashes) == len(set(hashes)) == len(points)
    resumed = pd.read_csv(out / "points.csv")
    pd.testing.assert_frame_equal(resumed, pd.read_csv(tmp_path / "ref" / "points.csv"))
    assert len(reference) == len(points)
    for name in ("pareto.csv", "best.csv", "sensitivity.csv", "pareto.png", "pareto.svg"):
        assert (out / name).stat().st_size > 0


@needs_digits
@pytest.mark.slow
def test_dask_local_cluster_and_joined_scheduler_match_local_run(tmp_path: Path) -> None:
    pytest.importorskip("dask.distributed")
    spec = load_sweep(write_sweep(tmp_path))
    points = expand(spec)
    local = run_sweep(spec, points, tmp_path / "local")
    dask = run_sweep(spec, points, tmp_path / "dask", executor="dask", workers=2)
    pd.testing.assert_frame_equal(local, dask)
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster:
        joined = run_sweep(spec, points, tmp_path / "joined", scheduler=cluster.scheduler_address)
    pd.testing.assert_frame_equal(local, joined)


def test_damaged_journal_line_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / JOURNAL).write_text('{"point_hash": "a"}\nnot json\n{"point_hash": "b"}\n')
    with pytest.raises(SweepError, match="line 2 is not a JSON record"):
        read_journal(tmp_path, repair=True)


@needs_digits
def test_shipped_sweep_has_500_valid_points() -> None:
    spec = load_sweep(ROOT / "arch_configs" / "sweeps" / "cnvlutin_sweep.yaml")
    points = expand(spec)
    assert len(points) >= 500
    assert all(p.params["lanes"] * p.params["filters"] <= 16384 for p in points)


@needs_digits
def test_points_that_differ_only_in_sizes_share_a_chunk() -> None:
    """The shipped sweep's points that a zero-skip batch counts once (same description but for
    name and memory sizes, no DRAM) land in one chunk, with 1 or 2 workers; every task once."""
    spec = load_sweep(ROOT / "arch_configs" / "sweeps" / "cnvlutin_sweep.yaml")
    points = expand(spec)
    todo = [(str(p.index), p, spec.workloads[0]) for p in points]
    keys = {p.index: group_key(parse_arch(p.arch)) for p in points}
    for workers in (1, 2):
        parts = chunks(todo, workers)
        assert sorted(t[1].index for c in parts for t in c) == sorted(keys)
        where: dict[str, set[int]] = {}
        for i, chunk in enumerate(parts):
            for task in chunk:
                where.setdefault(keys[task[1].index], set()).add(i)
        split = [k for k, at in where.items() if len(at) > 1]
        assert len(split) < len(parts), split   # at most the groups at chunk boundaries


@needs_digits
def test_two_workers_match_one_and_the_first_task_runs_before_the_fork(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a pool, the sweep process runs the first task itself (its forked workers inherit
    what it loaded) and the pool the rest; the table is the one a single worker makes."""
    from accelsim import sweep

    spec = load_sweep(write_sweep(tmp_path))
    points = expand(spec)
    one = run_sweep(spec, points, tmp_path / "one", workers=1)
    here: list[list[int]] = []
    serial = sweep._serial

    def recorded(parts: list, decode: dict | None):   # runs in this process only
        here.append([len(chunk) for chunk in parts])
        return serial(parts, decode)

    monkeypatch.setattr(sweep, "_serial", recorded)
    two = run_sweep(spec, points, tmp_path / "two", workers=2)
    assert here == [[1]]
    pd.testing.assert_frame_equal(one, two)


@needs_digits
def test_table_is_the_journal_read_back_and_the_collector_is_left_as_found(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A resumed sweep's table holds the rows of both runs as the journal reads them back, in
    task order, the same table as one uninterrupted run; the objects loaded before the tasks
    are frozen out of garbage collection while they run, and thawed after."""
    import gc

    from accelsim import sweep

    spec = load_sweep(write_sweep(tmp_path))
    points = expand(spec)
    whole = run_sweep(spec, points, tmp_path / "whole")
    out = tmp_path / "resumed"
    run_sweep(spec, points[1::2], out)
    frozen: list[int] = []
    serial = sweep._serial

    def recorded(parts: list, decode: dict | None):
        frozen.append(gc.get_freeze_count())
        return serial(parts, decode)

    monkeypatch.setattr(sweep, "_serial", recorded)
    before = gc.get_freeze_count()
    resumed = run_sweep(spec, points, out, resume=True)
    assert frozen and frozen[0] > before and gc.get_freeze_count() == before
    pd.testing.assert_frame_equal(whole, resumed)
    by_point = {r["point"]: {k: v for k, v in r.items() if k != "check"}
                for r in read_journal(out, repair=False)}
    pd.testing.assert_frame_equal(resumed, pd.DataFrame([by_point[p.index] for p in points]))


def test_a_journal_row_is_kept_as_it_reads_back() -> None:
    import io

    from accelsim.sweep import _append

    plain = {"point_hash": "a", "cycles": 1.5, "n": 3, "ok": True, "note": None, "x": float("nan")}
    assert _append(io.StringIO(), plain) is plain
    assert _append(io.StringIO(), {"pair": (1, 2), "v": np.float64(0.25)}) == {"pair": [1, 2],
                                                                              "v": 0.25}


@needs_digits
def test_designs_equal_once_validated_are_one_point_and_reported(tmp_path: Path) -> None:
    params = [{"path": "array.lanes", "name": "lanes", "values": [8, 8.0, 16]},
              {"path": "array.filters_per_pass", "name": "filters", "values": [16]}]
    spec = load_sweep(write_sweep(tmp_path, parameters=params, constraints=[]))
    points = expand(spec)
    assert [p.params["lanes"] for p in points] == [8, 16]
    assert points.duplicates == [{"params": {"lanes": 8.0, "filters": 16}, "same_as": 0}]
    assert all(isinstance(p.arch["array"]["lanes"], int) for p in points)
    df = run_sweep(spec, points, tmp_path / "o")
    assert len(df) == 2
    manifest = json.loads((tmp_path / "o" / "sweep.json").read_text())
    assert manifest["duplicate_points"] == points.duplicates
    assert manifest["spec_hash"] == spec.spec_hash


@needs_digits
def test_workloads_are_keyed_by_name_and_content(tmp_path: Path) -> None:
    twin = tmp_path / "twin.npz"
    twin.write_bytes(DIGITS.read_bytes())
    params = [{"path": "array.lanes", "name": "lanes", "values": [4, 8]}]
    spec = load_sweep(write_sweep(tmp_path, parameters=params, constraints=[],
                                  workloads=[str(DIGITS), str(twin)]))
    df = run_sweep(spec, expand(spec), tmp_path / "o")
    assert len(df) == 4 and sorted(set(df["workload"])) == ["digits_cnn", "twin"]
    both = df.pivot(index="point", columns="workload", values="latency_s")
    assert (both["digits_cnn"] == both["twin"]).all()


@needs_digits
def test_spec_hash_follows_what_the_sweep_computes(tmp_path: Path) -> None:
    first = load_sweep(write_sweep(tmp_path))
    assert load_sweep(write_sweep(tmp_path)).spec_hash == first.spec_hash
    assert load_sweep(write_sweep(tmp_path, constraints=[])).spec_hash != first.spec_hash
    twin = tmp_path / "digits_cnn.npz"
    twin.write_bytes(DIGITS.read_bytes() + b"changed")
    assert load_sweep(write_sweep(tmp_path, workloads=[str(twin)])).spec_hash != first.spec_hash


@needs_digits
def test_resume_refuses_a_folder_of_another_spec(tmp_path: Path) -> None:
    params = [{"path": "array.lanes", "name": "lanes", "values": [4, 8]}]
    spec = load_sweep(write_sweep(tmp_path, parameters=params, constraints=[]))
    run_sweep(spec, expand(spec), tmp_path / "o")
    params[0]["values"] = [2, 4, 8]
    other = load_sweep(write_sweep(tmp_path, parameters=params, constraints=[]))
    with pytest.raises(SweepError, match="was written by a different sweep spec"):
        run_sweep(other, expand(other), tmp_path / "o", resume=True)


@needs_digits
def test_parameter_named_like_an_engine_column_stops_before_journaling(tmp_path: Path) -> None:
    params = [{"path": "array.lanes", "name": "metadata_bytes", "values": [4]}]
    spec = load_sweep(write_sweep(tmp_path, parameters=params, constraints=[]))
    with pytest.raises(SweepError, match=r"\[.metadata_bytes.\] are named like result"):
        run_sweep(spec, expand(spec), tmp_path / "o")
    assert not (tmp_path / "o" / JOURNAL).read_text()


def test_journal_lines_must_be_objects(tmp_path: Path) -> None:
    (tmp_path / JOURNAL).write_text('{"point_hash": "a"}\n[1, 2]\n')
    with pytest.raises(SweepError, match="line 2 is not a JSON object"):
        read_journal(tmp_path, repair=False)
