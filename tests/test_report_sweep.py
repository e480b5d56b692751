"""Sweep reports: a real (tiny) sweep folder becomes an HTML and a PDF report carrying the
numbers of best.csv and pareto.csv, user strings stay text, and partial folders are refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from accelsim.cli import main
from accelsim.errors import AccelsimError
from accelsim.pareto import analyse
from accelsim.report import write_report
from accelsim.report.content import shown
from accelsim.sweep import run_sweep
from accelsim.sweep_spec import expand, load_sweep
from tests.conftest import ReportPage

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / "arch_configs" / "cnvlutin_like.yaml"
DIGITS = ROOT / "workloads" / "digits_cnn.npz"
EVIL_NAME = "sw<script>alert(1)</script><b>bold</b>$x$"
EVIL_WORKLOAD = "<i>digits<br>$"

pytestmark = pytest.mark.skipif(not DIGITS.is_file(), reason="workloads/digits_cnn.npz absent")


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory) -> Path:
    """A 4-point grid sweep on digits_cnn (workload file renamed to carry markup), run and
    analysed with the same calls `accelsim sweep` makes, one local worker."""
    root = tmp_path_factory.mktemp("sweep")
    workload = root / f"{EVIL_WORKLOAD}.npz"
    shutil.copyfile(DIGITS, workload)
    spec_path = root / "s.yaml"
    spec_path.write_text(yaml.safe_dump({
        "name": EVIL_NAME, "base": str(BASE), "workloads": [workload.name],
        "parameters": [{"path": "array.lanes", "name": "lanes", "values": [4, 8]},
                       {"path": "array.filters_per_pass", "name": "filters", "values": [16, 64]}],
    }))
    spec = load_sweep(spec_path)
    out = root / "out"
    df = run_sweep(spec, expand(spec), out, executor="local", workers=1)
    analyse(df, [p.name for p in spec.parameters], out)
    return out


@pytest.fixture(scope="module")
def html_page(sweep_dir: Path, tmp_path_factory) -> tuple[str, ReportPage]:
    path = write_report(sweep_dir, tmp_path_factory.mktemp("html") / "sweep.html")
    text = path.read_text(encoding="utf-8")
    return text, ReportPage.parse(text)


def _column(table: list[list[str]], header: str) -> list[str]:
    i = table[0].index(header)
    return [row[i] for row in table[1:]]


def test_html_best_and_pareto_tables_carry_the_csv_numbers(sweep_dir: Path, html_page) -> None:
    _text, page = html_page
    best = pd.read_csv(sweep_dir / "best.csv")
    front = pd.read_csv(sweep_dir / "pareto.csv")
    shown_best = page.tables["best-table"]
    assert len(shown_best) - 1 == len(best) == 3
    for header, col in (("objective", "objective"), ("point", "point"), ("lanes", "lanes"),
                        ("filters", "filters"), ("latency", "latency_s"),
                        ("energy", "energy_pj"), ("area", "area_mm2"),
                        ("speed-up vs dense", "speedup_vs_dense")):
        assert _column(shown_best, header) == shown(col, best[col].tolist()), header
    shown_front = page.tables["pareto-table"]
    assert len(shown_front) - 1 == len(front)
    for header, col in (("point", "point"), ("latency", "latency_s"),
                        ("energy", "energy_pj"), ("area", "area_mm2")):
        assert _column(shown_front, header) == shown(col, front[col].tolist()), header
    edp = front["latency_s"] * front["energy_pj"] * 1e-12
    assert _column(shown_front, "EDP") == shown("edp_js", edp.tolist())


def test_html_top_points_sensitivity_figure_and_provenance(sweep_dir: Path, html_page) -> None:
    _text, page = html_page
    points = pd.read_csv(sweep_dir / "points.csv")
    edp = points["latency_s"] * points["energy_pj"]
    top = page.tables["top-table"]
    assert len(top) - 1 == len(points) == 4
    assert _column(top, "point") == shown("point", points.loc[edp.sort_values().index,
                                                               "point"].tolist())
    sens = pd.read_csv(sweep_dir / "sensitivity.csv")
    table = page.tables["sensitivity-table"]
    assert _column(table, "parameter") == list(sens["parameter"])
    assert _column(table, "swing (fraction of mean)") == shown("swing", sens["swing"].tolist())
    assert page.figures == ["fig-pareto", "fig-parameters"]
    assert page.tags.get("svg") == 2
    assert all(link.startswith(("#", "data:")) for link in page.links)  # self-contained
    prov = dict((row[0], row[1]) for row in page.tables["provenance-table"])
    assert prov["parameter lanes"] == "array.lanes: values [4, 8]"
    assert prov["base arch"] == "cnvlutin-like-16x16"
    assert "4 in points.csv" in prov["design points"]


def test_html_escapes_sweep_and_workload_names(html_page) -> None:
    text, page = html_page
    assert page.tags.get("script") == 1  # only the table-sorting script
    assert not {"b", "i", "br"} & set(page.tags)
    assert EVIL_NAME in page.title
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert _column(page.tables["best-table"], "workload")[0] == EVIL_WORKLOAD


def test_pdf_report_has_searchable_numbers(sweep_dir: Path, tmp_path: Path) -> None:
    import pypdf

    path = write_report(sweep_dir, tmp_path / "sweep.pdf")
    text = "\n".join(page.extract_text() for page in pypdf.PdfReader(path).pages)
    assert EVIL_NAME in text
    best = pd.read_csv(sweep_dir / "best.csv")
    front = pd.read_csv(sweep_dir / "pareto.csv")
    for df in (best, front):
        for col in ("latency_s", "energy_pj", "area_mm2"):
            for cell in shown(col, df[col].tolist()):
                assert cell in text, (col, cell)
    assert "Sensitivity" in text and "Provenance" in text


def test_cli_report_on_sweep_folder(sweep_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    assert main(["report", str(sweep_dir), "-o", str(out)]) == 0
    assert "Pareto front" in out.read_text(encoding="utf-8")


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "best.csv").unlink(), "has no best.csv"),
    (lambda d: (d / "pareto.csv").write_text(""), "pareto.csv: not a readable table"),
    (lambda d: (d / "sensitivity.csv").write_text("workload,parameter\n"),
     "sensitivity.csv: the table is empty"),
    (lambda d: pd.read_csv(d / "points.csv").drop(columns="lanes").to_csv(d / "points.csv"),
     "columns ['lanes'] are missing"),
])
def test_partial_sweep_folder_is_a_clear_error(sweep_dir: Path, tmp_path: Path, damage,
                                               message: str, capsys) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(sweep_dir, broken)
    damage(broken)
    with pytest.raises(AccelsimError, match="--resume") as err:
        write_report(broken, tmp_path / "r.html")
    assert message in str(err.value)
    assert main(["report", str(broken), "-o", str(tmp_path / "r.pdf")]) == 2
    assert message in capsys.readouterr().err.replace("\n", "")
    assert not (tmp_path / "r.html").exists()
