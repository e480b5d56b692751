"""`accelsim compare`: runs several archs on a real trace, saves, summarises; bad folders fail clearly."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from accelsim.arch.area import area_mm2
from accelsim.cli import main
from accelsim.errors import AccelsimError
from accelsim.kinds import load_arch
from accelsim.report import write_report
from accelsim.results import load_compare, summary_table
from accelsim.simulate import simulate
from accelsim.workload import load_workload

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "workloads" / "digits_cnn.npz"
ARCHS = [str(ROOT / "arch_configs" / f"{n}.yaml") for n in ("tpu_like_128x128_ws", "scnn_like", "a100")]

pytestmark = pytest.mark.skipif(not DIGITS.is_file(), reason="workloads/digits_cnn.npz not shipped")


@pytest.fixture(scope="module")
def compared(tmp_path_factory) -> tuple[Path, str]:
    """A compare folder of the three archs on the digits CNN trace, and the printed table."""
    out = tmp_path_factory.mktemp("cmp") / "digits"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["compare", *ARCHS, str(DIGITS), "--out", str(out),
                     "--report", str(out.parent / "r.html")]) == 0
    return out, buf.getvalue()


def test_compare_saves_each_run_in_order_and_the_workload(compared):
    out, printed = compared
    results, info = load_compare(out)
    names = [r.meta["arch"] for r in results]
    assert names == ["tpu-like-128x128-ws", "scnn-like-8x8x4x4", "nvidia-a100-sxm4-80gb"]
    assert [r.meta["arch_kind"] for r in results] == ["systolic", "zero_skip", "gpu"]
    workload = load_workload(DIGITS)
    assert info["hash"] == workload.content_hash
    assert [tuple(e) for e in info["edges"]] == workload.edges
    for entry, layer in zip(info["layers"], workload.layers):
        assert entry["shape_kind"] == type(layer.shape).__name__
        assert entry["shape"] == json.loads(json.dumps(dataclasses.asdict(layer.shape)))
        assert entry["act_density"] == pytest.approx(layer.act_density)
    for name in names:
        assert name in printed
    assert "nvidia-a100-sxm4-80gb" in (out.parent / "r.html").read_text(encoding="utf-8")


def test_summary_table_is_the_totals(compared):
    results, _ = load_compare(compared[0])
    table = summary_table(results)
    for i, ((_, row), result) in enumerate(zip(table.iterrows(), results)):
        df = result.layers
        latency_s = df["latency_s"].sum()
        energy_j = df["energy_pj"].sum() * 1e-12
        assert row["latency_s"] == pytest.approx(latency_s)
        assert row["throughput_per_s"] == pytest.approx(1 / latency_s)
        assert row["energy_j"] == pytest.approx(energy_j)
        assert row["edp_js"] == pytest.approx(energy_j * latency_s)
        assert row["speedup_vs_dense"] == pytest.approx(df["dense_latency_s"].sum() / latency_s)
        assert row["energy_saving_vs_dense"] == pytest.approx(
            df["dense_energy_pj"].sum() / df["energy_pj"].sum())
        if result.meta["arch_kind"] == "gpu":
            assert np.isnan(row["area_mm2"])  # no area model for GPUs
        else:
            assert row["area_mm2"] == pytest.approx(area_mm2(load_arch(ARCHS[i])))
    # the zero-skip engine gains on a real ReLU trace; the dense systolic array is its own dense
    assert table.loc[1, "speedup_vs_dense"] > 1.0
    assert table.loc[0, "speedup_vs_dense"] == pytest.approx(1.0)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_partial_folders_give_clear_errors(compared, tmp_path, capsys):
    src = compared[0]
    broken = _copy(src, tmp_path / "no_workload")
    (broken / "workload.json").unlink()
    with pytest.raises(AccelsimError, match="did not finish"):
        load_compare(broken)

    broken = _copy(src, tmp_path / "no_csv")
    (broken / "scnn-like-8x8x4x4" / "results.csv").unlink()
    with pytest.raises(AccelsimError, match="no complete results"):
        load_compare(broken)

    broken = _copy(src, tmp_path / "short")
    csv = broken / "nvidia-a100-sxm4-80gb" / "results.csv"
    pd.read_csv(csv).head(2).to_csv(csv, index=False)
    with pytest.raises(AccelsimError, match="cut short"):
        load_compare(broken)

    broken = _copy(src, tmp_path / "other_workload")
    js = broken / "tpu-like-128x128-ws" / "results.json"
    data = json.loads(js.read_text())
    data["meta"]["workload_hash"] = "0" * 16
    js.write_text(json.dumps(data))
    with pytest.raises(AccelsimError, match="another workload"):
        load_compare(broken)

    (tmp_path / "empty").mkdir()
    for folder in (tmp_path / "empty", tmp_path / "missing"):
        capsys.readouterr()
        assert main(["report", str(folder), "-o", str(tmp_path / "r.html")]) == 2
        err = capsys.readouterr().err
        assert "accelsim: error" in err and "Traceback" not in err
    assert not (tmp_path / "r.html").exists()


def test_wrong_inputs_are_one_paragraph_before_anything_runs(compared, tmp_path, capsys):
    """Each mistake exits 2 with one paragraph naming the file and the fix, before any
    simulation (nothing is written), and a used results folder is left as it was."""
    sweep = str(ROOT / "arch_configs" / "sweeps" / "cnvlutin_sweep.yaml")
    out = tmp_path / "never"
    before = sorted(p.name for p in compared[0].iterdir())
    cases = [
        (["compare", ARCHS[0]], "no workload trace"),
        (["compare", ARCHS[0], str(DIGITS), "--report", str(tmp_path / "r.png")],
         "unknown report format '.png'"),
        (["compare", ARCHS[0], sweep, str(DIGITS)], "this is a sweep spec"),
        (["compare", ARCHS[0], str(tmp_path / "none.npz")], "no such file"),
        (["compare", ARCHS[0], str(DIGITS), "--sparsities", "0,0.5"], "--phase decode"),
        (["compare", ARCHS[0], str(DIGITS), "--baseline", str(DIGITS)], "this is a workload trace"),
        (["compare", ARCHS[0], str(DIGITS), "--out", str(compared[0])], "add --force"),
    ]
    for args, needle in cases:
        argv = args if "--out" in args else [*args, "--out", str(out)]
        assert main(argv) == 2, args
        err = capsys.readouterr().err
        assert needle in err and err.count("\n") == 1 and "Traceback" not in err, (args, err)
        assert not out.exists()
    assert sorted(p.name for p in compared[0].iterdir()) == before
    with pytest.raises(AccelsimError, match="unknown report format"):
        write_report(compared[0], tmp_path / "r.docx")


def test_several_workloads_in_any_order_one_report(tmp_path, capsys):
    """Files are told apart by content; two workloads make one folder per workload, a summary
    with a workload column, and one report (HTML and PDF) with a section per workload."""
    from accelsim.results import load_comparison
    from tests.conftest import ReportPage

    crepe = ROOT / "workloads" / "crepe_full.npz"
    out, report = tmp_path / "cmp", tmp_path / "r.html"
    argv = ["compare", str(DIGITS), ARCHS[0], str(crepe), ARCHS[1], "--out", str(out),
            "--report", str(report), "--no-curves"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "digits-cnn" in printed and "crepe-full" in printed
    parts = load_comparison(out)
    assert [info["model"] for _, info in parts] == ["digits-cnn", "crepe-full"]
    for results, info in parts:
        assert [r.meta["arch"] for r in results] == ["tpu-like-128x128-ws", "scnn-like-8x8x4x4"]
        assert {r.meta["workload"] for r in results} == {info["model"]}
    page = ReportPage.parse(report.read_text(encoding="utf-8"))
    overall = page.tables["summary-table"]
    assert len(overall) == 1 + 4 and overall[0][0] == "workload"
    assert {"w1-layer-table", "w2-layer-table"} <= set(page.tables)
    assert len(page.tables["w2-layer-table"]) == 1 + 2 * len(load_workload(crepe).layers)
    assert main(argv) == 2 and "--force" in capsys.readouterr().err  # (API test: --force reuses)
    pdf = tmp_path / "r.pdf"
    assert main(["report", str(out), "-o", str(pdf)]) == 0
    assert pdf.read_bytes().startswith(b"%PDF")


def test_neuromorphic_core_beside_dense_and_zero_skip(tmp_path):
    """An Akida-like core sits in the same comparison as a dense and a zero-skip design; its
    events are the trace's non-zero inputs and the report draws its events/NP figure."""
    from tests.conftest import ReportPage

    names = ("tpu_like_128x128_ws", "cnvlutin_like", "akd1000")
    archs = [str(ROOT / "arch_configs" / f"{n}.yaml") for n in names]
    out = tmp_path / "cmp"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["compare", *archs, str(DIGITS), "--out", str(out),
                     "--report", str(tmp_path / "r.html")]) == 0
    runs, _ = load_compare(out)
    assert [run.meta["arch_kind"] for run in runs] == ["systolic", "zero_skip", "neuromorphic"]
    akida = runs[2].layers
    inputs = {layer.name: layer.act.size for layer in load_workload(DIGITS).layers}
    assert (akida["events"] > 0).all()
    assert (akida["events"] <= akida["layer"].map(inputs)).all()
    page = ReportPage.parse((tmp_path / "r.html").read_text())
    assert any(f.startswith("fig-neuromorphic") for f in page.figures)
    assert any(f.startswith("fig-uniform") for f in page.figures)
    assert any("akd1000" in " ".join(row) for row in page.tables["summary-table"])


def test_another_design_is_a_named_baseline(tmp_path, capsys):
    """`--baseline` compares every architecture with another design per layer and in the
    summary; each run's speedup_vs_dense keeps meaning its own hardware with sparsity off."""
    from tests.conftest import ReportPage

    scnn, dcnn = (str(ROOT / "arch_configs" / f"{n}.yaml") for n in ("scnn_like", "dcnn_like"))
    out = tmp_path / "cmp"
    assert main(["compare", scnn, str(DIGITS), "--baseline", dcnn, "--out", str(out),
                 "--report", str(tmp_path / "r.html")]) == 0
    printed = capsys.readouterr().out
    assert "speedup_vs_baseline" in printed and "dcnn-like-32x32-is" in printed
    runs, info = load_compare(out)
    assert info["baseline"] == "dcnn-like-32x32-is"
    base, mine = runs[0].layers, runs[1].layers
    assert list(mine["speedup_vs_baseline"]) == pytest.approx(
        list(base["latency_s"] / mine["latency_s"]))
    assert list(mine["energy_saving_vs_baseline"]) == pytest.approx(
        list(base["energy_pj"] / mine["energy_pj"]))
    table = summary_table(runs).set_index("arch")
    assert table.loc["dcnn-like-32x32-is", "speedup_vs_baseline"] == pytest.approx(1.0)
    assert table.loc["scnn-like-8x8x4x4", "speedup_vs_baseline"] == pytest.approx(
        base["latency_s"].sum() / mine["latency_s"].sum())
    own = simulate(load_workload(DIGITS), load_arch(scnn)).totals()["speedup_vs_dense"]
    assert table.loc["scnn-like-8x8x4x4", "speedup_vs_dense"] == pytest.approx(own)
    page = ReportPage.parse((tmp_path / "r.html").read_text())
    assert "speed-up vs baseline" in page.tables["summary-table"][0]
    assert "dcnn-like-32x32-is" in (tmp_path / "r.html").read_text()


def test_partial_coverage_is_said_in_the_same_row(tmp_path, capsys):
    """An Akida core maps 1 of CREPE's 7 layers: its row says what share of the model's MACs
    its figures cover, stderr warns, and the report says it beside the summary."""
    from tests.conftest import ReportPage

    crepe = ROOT / "workloads" / "crepe_full.npz"
    archs = [str(ROOT / "arch_configs" / f"{n}.yaml") for n in ("akd1000", "tpu_like_128x128_ws")]
    out = tmp_path / "cmp"
    assert main(["compare", *archs, str(crepe), "--out", str(out),
                 "--report", str(tmp_path / "r.html")]) == 0
    captured = capsys.readouterr()
    assert "warning: akd1000: covers" in captured.err and "warning: tpu-like" not in captured.err
    runs, _ = load_compare(out)
    workload = load_workload(crepe)
    mapped = runs[0].layers["cycles"].notna()
    expected = (runs[0].layers.loc[mapped, "macs_dense"].sum()
                / sum(layer.macs for layer in workload.layers))
    table = summary_table(runs).set_index("arch")
    assert table.loc["akd1000", "covered_macs_fraction"] == pytest.approx(expected)
    assert expected < 0.01 and table.loc["tpu-like-128x128-ws", "covered_macs_fraction"] == 1.0
    assert list(runs[0].layers["covered_macs_fraction"]) == list(mapped.astype(float))
    rows = {r[0]: r for r in ReportPage.parse((tmp_path / "r.html").read_text())
            .tables["summary-table"][1:]}
    assert rows["akd1000"][-1].endswith("%") and rows["tpu-like-128x128-ws"][-1] == "100 %"
    assert "covers" in (tmp_path / "r.html").read_text()
    assert main(["run", archs[0], str(crepe), "--format", "csv"]) == 0
    csv = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(csv["covered_macs_fraction"]) == list(mapped.astype(float))
