"""Hostile and mistaken input: the regression corpus (`tests/data/hostile/`), zip bombs and edited
sweep journals made on the fly, and a seeded mutation corpus run under time and memory bounds
(`tests/fuzz_mutations.py`). Every input ends in exit 0 with a correct result or exit 2 with one
paragraph naming the file; never a traceback, a silent wrong result or unbounded work."""

from __future__ import annotations

import json
import resource
import shutil
import zipfile
from pathlib import Path

import networkx as nx
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.cli import main
from accelsim.errors import WorkloadError
from accelsim.sweep import JOURNAL
from accelsim.workload import format as fmt
from accelsim.workload import load_workload
from tests.fuzz_mutations import (
    FAMILIES,
    base_spec,
    deflated,
    generate,
    meta_npy,
    npy_header,
    run_cases,
    summary,
    write_zip,
    zero_bomb,
)
from tests.hostile_corpus import CORPUS, DIGITS, HOSTILE, TPU, Entry

ROOT = Path(__file__).resolve().parents[1]


def _argv(entry: Entry, tmp_path: Path) -> list[str]:
    path = HOSTILE / entry.name
    arch = tmp_path / "priced.yaml"
    if "{arch}" in entry.argv:
        data = yaml.safe_load(TPU.read_text())
        data["tech"] = {**data["tech"], "table": str(path)}
        arch.write_text(yaml.safe_dump(data))
    values = {"file": str(path), "tpu": str(TPU), "digits": str(DIGITS), "arch": str(arch),
              "out": str(tmp_path / "out")}
    return [part.format(**values) for part in entry.argv]


def _error_paragraph(err: str) -> str:
    return err[err.index("accelsim: error:"):].strip()


def test_corpus_files_are_the_listed_ones():
    assert sorted(p.name for p in HOSTILE.iterdir()) == sorted(e.name for e in CORPUS)


@pytest.mark.parametrize("entry", CORPUS, ids=lambda e: e.name)
def test_hostile_corpus(entry: Entry, tmp_path: Path, capsys):
    rc = main(_argv(entry, tmp_path))
    out, err = capsys.readouterr()
    assert rc == entry.exit_code, err
    if rc == 2:
        message = " ".join(_error_paragraph(err).split())
        assert entry.needle in message
        assert entry.name in message
        assert "\n\n" not in _error_paragraph(err) and "Traceback" not in err
    else:
        assert entry.needle in out and "Traceback" not in err


def test_markup_in_names_is_printed_as_written(capsys):
    assert main(["run", str(TPU), str(HOSTILE / "markup-names.npz")]) == 0
    out = capsys.readouterr().out
    assert "[bold red]q" in out and "[blink]toy" in out


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcdef"), st.sampled_from("abcdef")), max_size=12))
def test_trace_cycle_check_finds_the_cycle_networkx_finds(edges):
    graph = nx.DiGraph(edges)
    expected = [] if nx.is_directed_acyclic_graph(graph) else nx.find_cycle(graph)
    assert fmt.find_cycle(edges) == expected


def test_a_cyclic_layer_graph_is_one_paragraph_naming_the_cycle(tmp_path):
    meta = {"format": "accelsim-trace", "version": 1, "model": "loop",
            "edges": [["a", "b"], ["b", "c"], ["c", "b"]],
            "layers": [{"name": n, "op": "linear", "M": 2, "K": 2, "N": 2, "act_density": 0.5}
                       for n in "abc"]}
    path = tmp_path / "loop.npz"
    write_zip(path, [deflated("__meta__.npy", meta_npy(meta))])
    with pytest.raises(WorkloadError, match=r"cycle \[\('b', 'c'\), \('c', 'b'\)\]"):
        load_workload(path)


def _bomb(path: Path, zero_bytes: int) -> None:
    """A trace whose one activation member inflates to `zero_bytes` zeros from a few MiB."""
    meta = {"format": "accelsim-trace", "version": 1, "model": "bomb", "edges": [],
            "layers": [{"name": "fc", "op": "linear", "M": zero_bytes // 2 // 4096,
                        "K": 4096, "N": 8}]}
    head = npy_header((zero_bytes // 2 // 4096, 4096), "<f2")
    write_zip(path, [deflated("__meta__.npy", meta_npy(meta)),
                     zero_bomb("act/fc.npy", head, zero_bytes)])


def test_zip_bomb_is_refused_before_it_is_read(tmp_path, monkeypatch):
    path = tmp_path / "bomb.npz"
    _bomb(path, 12 * 2**30)
    assert path.stat().st_size < 16 * 2**20                 # 12 GiB of zeros in a few MiB
    monkeypatch.setattr(fmt, "memory_budget_bytes", lambda: 2**30)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(WorkloadError, match=r"need 24\.\d+ GiB once read and decoded") as err:
        load_workload(path)
    assert str(path) in str(err.value)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 256 * 1024                              # nothing was decompressed


def test_memory_budget_follows_the_address_space_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    budget = fmt.memory_budget_bytes()
    assert 0 < budget <= fmt.MAX_UNCOMPRESSED_BYTES
    if soft == resource.RLIM_INFINITY:
        resource.setrlimit(resource.RLIMIT_AS, (2**40, hard))
        try:
            assert fmt.memory_budget_bytes() <= 2**39
        finally:
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


# --- sweep journals edited, then --resume ---------------------------------------------------


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("journal")
    spec = work / "spec.yaml"
    spec.write_text(yaml.safe_dump(base_spec()))
    out = work / "ref"
    assert main(["sweep", str(spec), "--out", str(out), "--workers", "1"]) == 0
    return spec, out


def _copy(finished: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path, list[dict]]:
    spec, ref = finished
    out = tmp_path / "out"
    shutil.copytree(ref, out)
    rows = [json.loads(line) for line in (out / JOURNAL).read_text().splitlines()]
    return spec, out, rows


def _rewrite(out: Path, rows: list[dict]) -> None:
    (out / JOURNAL).write_text("".join(json.dumps(r) + "\n" for r in rows))


def _edit_value(rows: list[dict]) -> None:
    rows[1]["latency_s"] *= 2


def _swap_hashes(rows: list[dict]) -> None:
    rows[0]["point_hash"], rows[2]["point_hash"] = rows[2]["point_hash"], rows[0]["point_hash"]


def _drop_column(rows: list[dict]) -> None:
    rows[3].pop("energy_pj")


def _edit_param(rows: list[dict]) -> None:
    rows[0]["lanes"] = 16


def _repeat(rows: list[dict]) -> None:
    rows.append(dict(rows[1]))


@pytest.mark.parametrize(("edit", "needle"), [
    (_edit_value, "line 2 does not match its check digest"),
    (_swap_hashes, "line 1 does not match its check digest"),
    (_drop_column, "line 4 does not match its check digest"),
    (_edit_param, "line 1 does not match its check digest"),
    (_repeat, "line 5 repeats the task"),
])
def test_edited_journal_lines_are_named(finished_sweep, tmp_path, capsys, edit, needle):
    spec, out, rows = _copy(finished_sweep, tmp_path)
    edit(rows)
    _rewrite(out, rows)
    assert main(["sweep", str(spec), "--out", str(out), "--workers", "1", "--resume"]) == 2
    err = capsys.readouterr().err
    assert needle in err and str(out / JOURNAL) in err and "Traceback" not in err


def test_resume_with_a_changed_spec_is_refused(finished_sweep, tmp_path, capsys):
    spec, out, _ = _copy(finished_sweep, tmp_path)
    changed = tmp_path / "changed.yaml"
    data = yaml.safe_load(spec.read_text())
    data["parameters"][0]["values"] = [2, *data["parameters"][0]["values"]]  # shifts indices
    changed.write_text(yaml.safe_dump(data))
    assert main(["sweep", str(changed), "--out", str(out), "--workers", "1", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "was written by a different sweep spec" in err and str(changed) in err
    (out / "sweep.json").unlink()
    assert main(["sweep", str(spec), "--out", str(out), "--workers", "1", "--resume"]) == 2
    assert "has no readable sweep.json" in capsys.readouterr().err


def test_resume_after_a_torn_and_a_lost_line_equals_the_finished_run(finished_sweep, tmp_path):
    spec, out, rows = _copy(finished_sweep, tmp_path)
    lines = (out / JOURNAL).read_text().splitlines()
    (out / JOURNAL).write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:40])
    assert main(["sweep", str(spec), "--out", str(out), "--workers", "1", "--resume"]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(out / "points.csv"),
                                  pd.read_csv(finished_sweep[1] / "points.csv"))
    assert "check" not in pd.read_csv(out / "points.csv").columns and len(rows) == 4


# --- the seeded mutation corpus -------------------------------------------------------------

CASES_PER_FAMILY = 10


@pytest.mark.parametrize("family", FAMILIES)
def test_mutation_corpus(family, tmp_path):
    cases = generate(family, CASES_PER_FAMILY, seed=2024, work=tmp_path)
    outcomes = run_cases(cases, timeout_s=60, memory_bytes=4 * 2**30)
    bad = [f"{o.label}: {o.category}: {o.detail}" for o in outcomes
           if o.category not in ("clear", "ok")]
    assert not bad, "\n".join(bad)
    assert sum(summary(outcomes)[family].values()) == CASES_PER_FAMILY


def test_mutation_generator_is_seeded(tmp_path):
    first = generate("sweep", 6, seed=5, work=tmp_path / "a")
    second = generate("sweep", 6, seed=5, work=tmp_path / "b")
    assert [c.label for c in first] == [c.label for c in second]
    assert [c.expect for c in first] == [c.expect for c in second]


def test_zero_bomb_helper_inflates_to_what_it_declares(tmp_path):
    path = tmp_path / "small.npz"
    _bomb(path, 2**21)
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("act/fc.npy")
    assert info.file_size == len(npy_header((2**21 // 2 // 4096, 4096), "<f2")) + 2**21
    assert info.compress_size * 100 < info.file_size
    with pytest.raises(WorkloadError, match="act/fc.npy' cannot be read"):  # CRC left wrong
        load_workload(path)
