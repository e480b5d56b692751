"""Reports: HTML and PDF carry the results' numbers, escape user strings, render in a browser."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from accelsim.compare import run_compare
from accelsim.kinds import load_arch
from accelsim.report import write_report
from accelsim.report.content import shown
from accelsim.report.figures import neuromorphic_use
from accelsim.results import RunResult, load_compare, summary_table
from accelsim.workload import load_workload
from accelsim.workload.layer import Workload
from tests.conftest import ReportPage

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "workloads" / "digits_cnn.npz"
ARCHS = [ROOT / "arch_configs" / f"{n}.yaml" for n in ("tpu_like_128x128_ws", "scnn_like", "a100")]
EVIL_LAYER = "<script>alert(1)</script>"
EVIL_ARCH = "evil<script>alert(2)</script>$x$"

pytestmark = pytest.mark.skipif(not DIGITS.is_file(), reason="workloads/digits_cnn.npz not shipped")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "digits"
    run_compare([load_arch(a) for a in ARCHS], load_workload(DIGITS), DIGITS, out)
    return out


@pytest.fixture(scope="module")
def html(folder) -> tuple[Path, str]:
    path = write_report(folder, folder.parent / "report.html")
    return path, path.read_text(encoding="utf-8")


def test_html_tables_hold_the_results(folder, html):
    parser = ReportPage.parse(html[1])
    results, _ = load_compare(folder)
    summary = parser.tables["summary-table"]
    expected = summary_table(results)
    assert len(summary) == 1 + len(results)
    cells = {c: shown(c, expected[c].tolist()) for c in expected.columns}
    for i, row in enumerate(summary[1:]):
        assert row[0] == expected.loc[i, "arch"]
        for col in ("latency_s", "throughput_per_s", "energy_j", "edp_js", "speedup_vs_dense",
                    "energy_saving_vs_dense"):
            assert cells[col][i] in row, (col, row)
        assert row[6] == cells["area_mm2"][i]  # '-' for the GPU, no area model
    assert summary[0][2] == "latency" and summary[1 + 2][2].endswith("s")  # SI units in cells
    layers = parser.tables["layer-table"]
    assert len(layers) == 1 + sum(len(r.layers) for r in results)
    header = layers[0]
    every = pd.concat([r.layers for r in results], ignore_index=True)
    text = {c: shown(c, every[c].tolist()) for c in ("cycles", "energy_pj", "speedup_vs_dense")}
    for i, want in every.iterrows():
        got = next(x for x in layers[1:] if x[0] == want["arch"] and x[1] == want["layer"])
        assert got[header.index("cycles")] == text["cycles"][i]
        assert got[header.index("energy")] == text["energy_pj"][i]
        assert got[header.index("speed-up")] == text["speedup_vs_dense"][i]
        assert "e-" not in got[header.index("energy")] and "e+" not in " ".join(got)
    prov = dict((row[0], row[1]) for row in parser.tables["provenance-table"])
    assert results[0].meta["workload_hash"] in prov["workload"]
    assert any(r.meta["arch_hash"] in v for r in results for v in prov.values())


def test_html_sections_follow_the_data_and_are_self_contained(html):
    parser = ReportPage.parse(html[1])
    # gpu curves only for the a100 (3rd), trace-vs-uniform only for the zero-skip arch (2nd)
    assert parser.figures == [
        "fig-speedup", "fig-scatter", "fig-energy", "fig-roofline", "fig-area",
        "fig-latency-0", "fig-layer-energy-0", "fig-latency-1", "fig-layer-energy-1",
        "fig-uniform-1", "fig-latency-2", "fig-layer-energy-2", "fig-breakeven-2", "fig-graph"]
    assert html[1].count("<svg") == len(parser.figures)
    assert all(link.startswith(("#", "data:image/png;base64,")) for link in parser.links)
    assert "<link" not in html[1] and "@import" not in html[1]


def test_pdf_text_holds_the_results(folder):
    from pypdf import PdfReader

    path = write_report(folder, folder.parent / "report.pdf")
    reader = PdfReader(path)
    text = "\n".join(page.extract_text() for page in reader.pages)
    results, _ = load_compare(folder)
    table = summary_table(results)
    for col in ("arch", "latency_s", "energy_j", "speedup_vs_dense"):
        for cell in shown(col, table[col].tolist()):
            assert cell in text, col
    every = pd.concat([r.layers for r in results], ignore_index=True)
    for cell in shown("cycles", every["cycles"].tolist()):
        assert cell in text
    assert results[0].meta["workload_hash"] in text
    # figures are vector drawings: the only raster is the graph's colour bar (a thin strip)
    sizes = {im.image.size for page in reader.pages for im in page.images}
    assert all(min(w, h) < 40 for w, h in sizes), sizes
    assert len(reader.pages) >= 6


@pytest.fixture(scope="module")
def evil_html(tmp_path_factory) -> str:
    """A report whose layer and arch names are script tags (and mathtext dollars)."""
    w = load_workload(DIGITS)
    first = w.layers[0].name
    layers = [dataclasses.replace(w.layers[0], name=EVIL_LAYER), *w.layers[1:]]
    edges = [tuple(EVIL_LAYER if n == first else n for n in e) for e in w.edges]
    evil = Workload(model="m<img src=x onerror=alert(3)>", layers=layers, edges=edges,
                    source=w.source, content_hash=w.content_hash)
    arch = load_arch(ARCHS[1])
    arch = arch.model_copy(update={"name": EVIL_ARCH})
    out = tmp_path_factory.mktemp("evil")
    run_compare([arch, load_arch(ARCHS[2])], evil, "evil.npz", out / "cmp")
    return write_report(out / "cmp", out / "r.html").read_text(encoding="utf-8")


def test_user_strings_are_escaped(evil_html):
    assert "<script>alert" not in evil_html
    assert "<img" not in evil_html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in evil_html
    assert "&lt;script&gt;alert(2)" in evil_html
    parser = ReportPage.parse(evil_html)
    assert parser.tags.get("script") == 1  # the sort script only
    layer_cells = [row[1] for row in parser.tables["layer-table"][1:]]
    assert EVIL_LAYER in layer_cells  # shown literally once unescaped by the parser


def test_neuromorphic_figure_only_for_neuromorphic_results():
    df = pd.DataFrame({"layer": ["a", "b"], "events": [10, 20], "nps_used": [1, 3]})
    fig = neuromorphic_use(RunResult(df, {"arch": "n", "arch_kind": "neuromorphic"}))
    heights = [p.get_height() for ax in fig.axes for p in ax.patches]
    assert heights == [10, 20, 1, 3]
    assert neuromorphic_use(RunResult(df, {"arch": "s", "arch_kind": "systolic"})) is None


def _chromium() -> str | None:
    return next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(b)), None)


def _browser(binary: str, *args: str) -> subprocess.CompletedProcess:
    profile = tempfile.mkdtemp()
    try:
        return subprocess.run(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--hide-scrollbars", "--force-device-scale-factor=1",
             f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=120, check=False)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def _scripted_page(html: str, script: str, tmp_path: Path) -> tuple[str, Path]:
    """The chromium binary and a copy of the report `html` with `script` added at the end of
    its body; skips the test where no chromium is installed."""
    binary = _chromium()
    if binary is None:
        pytest.skip("no chromium binary (installed by `make test` where apt is available)")
    page = tmp_path / "page.html"
    page.write_text(html.replace("</body>", script + "</body>"), encoding="utf-8")
    return binary, page


def _pre_text(dom: subprocess.CompletedProcess, pre_id: str) -> str:
    """Text of the `<pre id=pre_id>` element an injected script wrote into the dumped DOM."""
    return re.search(rf'<pre id="{pre_id}">(.*?)</pre>', dom.stdout, re.S).group(1)


RECTS_JS = """<script>
document.addEventListener("DOMContentLoaded", function () {
  var out = document.createElement("pre"); out.id = "rects";
  document.querySelectorAll("figure svg").forEach(function (s) {
    var r = s.getBoundingClientRect();
    out.textContent += s.parentNode.id + " " + [r.left, r.top, r.width, r.height].join(" ") + "\\n";
  });
  document.body.appendChild(out);
});
</script>"""


@pytest.mark.slow
def test_browser_screenshot_shows_the_figures(html, tmp_path):
    binary, page = _scripted_page(html[1], RECTS_JS, tmp_path)
    width = 1280
    dom = _browser(binary, f"--window-size={width},2000", "--dump-dom", page.as_uri())
    rects = {}
    for line in _pre_text(dom, "rects").split("\n"):
        if line.strip():
            fid, *nums = line.split()
            rects[fid] = [float(v) for v in nums]
    assert set(rects) == set(ReportPage.parse(html[1]).figures)
    assert all(left >= 0 and left + w <= width for left, _, w, _ in rects.values())
    height = int(max(t + h for _, t, _, h in rects.values())) + 50
    shot = tmp_path / "shot.png"
    _browser(binary, f"--window-size={width},{height}", f"--screenshot={shot}", page.as_uri())
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape[1] == width
    for fid, (left, top, w, h) in rects.items():
        assert w > 300 and h > 200, fid
        region = pixels[int(top):int(top + h), int(left):int(left + w)]
        inked = (region < 200).mean()
        assert 0.01 < inked < 0.9, (fid, inked)
    # and the page outside the figures is mostly white background
    assert (pixels > 240).mean() > 0.5


SORT_JS = """<script>
document.addEventListener("DOMContentLoaded", function () {
  var table = document.getElementById("layer-table"), col = -1;
  table.querySelectorAll("th").forEach(function (th, i) { if (th.textContent === "cycles") col = i; });
  table.querySelectorAll("th")[col].click();
  var out = document.createElement("pre"); out.id = "sorted";
  Array.from(table.tBodies[0].rows).forEach(function (r) {
    out.textContent += r.cells[col].dataset.value + "\\n";
  });
  document.body.appendChild(out);
});
</script>"""


@pytest.mark.slow
def test_browser_sorts_the_layer_table(html, tmp_path):
    binary, page = _scripted_page(html[1], SORT_JS, tmp_path)
    dom = _browser(binary, "--window-size=1400,1000", "--dump-dom", page.as_uri())
    values = [float(v) for v in _pre_text(dom, "sorted").split()]
    assert len(values) == 12  # 4 layers x 3 archs
    assert values == sorted(values) and values != sorted(values, reverse=True)


def test_energy_components_merge_plurals_and_leave_operand_splits_out():
    from accelsim.report.figures import energy_breakdown, energy_components, merged_component

    layers = pd.DataFrame({"energy_pj": [10.0], "energy_dram_pj": [6.0],
                           "energy_dram_act_pj": [4.0], "energy_dram_psum_pj": [2.0],
                           "energy_accumulators_pj": [3.0], "energy_mac_pj": [1.0],
                           "energy_saving_vs_dense": [1.0]})
    parts = energy_components(layers)
    assert set(parts) == {"dram", "accumulators", "mac"}
    assert merged_component("accumulators", {"accumulator", "accumulators"}) == "accumulator"
    assert merged_component("accumulators", {"accumulators"}) == "accumulators"
    other = layers.rename(columns={"energy_accumulators_pj": "energy_accumulator_pj"})
    runs = [RunResult(layers=layers, meta={"arch": "a"}), RunResult(layers=other * 1000,
                                                                    meta={"arch": "b"})]
    fig = energy_breakdown(runs)
    ax = fig.axes[0]
    assert len(ax.get_legend().get_texts()) == 3  # accumulator(s) drawn once
    for x in (0, 1):  # each bar is its components' shares, 100 % in all
        bar = [p.get_height() for p in ax.patches if abs(p.get_x() + p.get_width() / 2 - x) < 1e-9]
        assert sum(bar) == pytest.approx(100.0)


def test_front_line_and_roofline_peak(folder):
    from accelsim.report.figures import peak_macs_per_s, two_objective_front

    rng = np.random.default_rng(3)
    points = pd.DataFrame({"latency_s": rng.random(40), "energy_pj": rng.random(40)})
    front = two_objective_front(points)
    for _, p in points.iterrows():
        dominated = ((front["latency_s"] <= p["latency_s"]) & (front["energy_pj"] <= p["energy_pj"])
                     & ((front["latency_s"] < p["latency_s"]) | (front["energy_pj"] < p["energy_pj"])))
        assert dominated.any() != (p.name in front.index)
    results, _ = load_compare(folder)
    tpu = load_arch(ARCHS[0])
    assert peak_macs_per_s(results[0]) == pytest.approx(tpu.rows * tpu.cols * tpu.clock_hz)


def test_area_figure_is_the_saved_components(folder):
    from accelsim.arch.area import area_mm2
    from accelsim.report.figures import area_breakdown

    results, _ = load_compare(folder)
    fig = area_breakdown(results)
    ax = fig.axes[0]
    bars = list(ax.patches)
    modelled = [r for r in results if r.meta.get("area_mm2_by_component")]
    assert [r.meta["arch_kind"] for r in modelled] == ["systolic", "zero_skip"]  # no GPU model
    for i in range(len(modelled)):
        widths = [p.get_width() for p in bars if abs(p.get_y() + p.get_height() / 2 - i) < 1e-9]
        assert sum(widths) == pytest.approx(area_mm2(load_arch(ARCHS[i])))
