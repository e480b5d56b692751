"""The public Python API: `accelsim.simulate`, `accelsim.compare`, `accelsim.load_arch`,
`accelsim.load_workload`, from a plain interpreter and in-process."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

import accelsim
from accelsim.errors import AccelsimError
from accelsim.results import RunResult, load_comparison

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "workloads" / "digits_cnn.npz"
TPU = ROOT / "arch_configs" / "tpu_like_128x128_ws.yaml"
SCNN = ROOT / "arch_configs" / "scnn_like.yaml"
SWEEP = next((ROOT / "arch_configs" / "sweeps").glob("*.yaml"), None)

pytestmark = pytest.mark.skipif(not DIGITS.is_file(), reason="workloads/digits_cnn.npz not shipped")


def plain_python(code: str) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter from the repository root."""
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_a_plain_interpreter_simulates_with_paths_and_imports_no_engine_up_front():
    code = f"""
import json, sys
import accelsim
bare = sorted(m for m in ("pandas", "torch", "accelsim.engines", "accelsim.simulate")
              if m in sys.modules)
r = accelsim.simulate({str(TPU)!r}, {str(DIGITS)!r})
import accelsim.simulate as module
from accelsim.simulate import simulate as engine_side
print(json.dumps({{"bare": bare, "rows": len(r.layers), "arch": r.totals()["arch"],
                  "workload": sorted(set(r.layers["workload"])),
                  "module": type(module).__name__, "engine_side": engine_side.__module__}}))
"""
    done = plain_python(code)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["bare"] == []
    assert out["rows"] == len(accelsim.load_workload(DIGITS).layers)
    assert out["arch"] == "tpu-like-128x128-ws"
    assert out["workload"] == [accelsim.load_workload(DIGITS).model]
    assert out["module"] == "_CallableModule" and out["engine_side"] == "accelsim.simulate"


def test_paths_mappings_and_loaded_objects_give_the_same_run():
    from accelsim.simulate import simulate as engine_side

    arch, workload = accelsim.load_arch(SCNN), accelsim.load_workload(DIGITS)
    mapping = yaml.safe_load(SCNN.read_text(encoding="utf-8"))
    by_path = accelsim.simulate(SCNN, str(DIGITS))
    by_object = accelsim.simulate(arch, workload)
    by_mapping = accelsim.simulate(mapping, workload)
    by_engine = engine_side(workload, arch)
    assert isinstance(by_path, RunResult) and isinstance(by_path.layers, pd.DataFrame)
    numeric = by_path.layers.select_dtypes("number").columns
    for other in (by_object, by_mapping, by_engine):
        pd.testing.assert_frame_equal(other.layers[numeric], by_path.layers[numeric])
    assert by_path.totals()["latency_s"] == pytest.approx(by_path.layers["latency_s"].sum())


def test_access_columns_are_bytes_per_level_that_add_up_to_dram_bytes():
    layers = accelsim.simulate(SCNN, DIGITS).layers
    access = [c for c in layers.columns if c.startswith("access_")]
    assert all(c.endswith("_bytes") for c in access)
    assert (layers[access] >= 0).all().all()
    dram = [c for c in access if c.startswith("access_dram_")]
    assert "access_dram_read_bytes" in dram
    assert (layers[dram].sum(axis=1) == layers["dram_bytes"]).all()


def test_swapped_and_wrong_kinds_of_file_are_named_before_anything_runs():
    with pytest.raises(AccelsimError, match="wrong order") as swapped:
        accelsim.simulate(DIGITS, TPU)
    assert f"accelsim.simulate({str(TPU)!r}, {str(DIGITS)!r})" in str(swapped.value)
    with pytest.raises(AccelsimError, match="this is a workload trace") as trace_as_arch:
        accelsim.simulate(DIGITS, DIGITS)
    assert "accelsim run ARCH.yaml" in str(trace_as_arch.value)
    with pytest.raises(AccelsimError, match="architecture description"):
        accelsim.load_workload(TPU)
    with pytest.raises(AccelsimError, match="got a int"):
        accelsim.load_arch(3)
    with pytest.raises(AccelsimError, match="got a list"):
        accelsim.load_workload([DIGITS])
    if SWEEP is not None:
        with pytest.raises(AccelsimError, match="sweep spec"):
            accelsim.load_arch(SWEEP)


def test_compare_stacks_runs_of_several_workloads_and_saves_them(tmp_path):
    from accelsim.workload.sparsify import sparsify

    dense = accelsim.load_workload(DIGITS)
    sparser = sparsify(dense, "threshold", target=0.8, output_error=False).workload
    copy = tmp_path / "digits_sparser.npz"
    from accelsim.workload import save_workload

    save_workload(sparser, copy)
    out = tmp_path / "cmp"
    comparison = accelsim.compare([TPU, SCNN], [DIGITS, copy], baseline=TPU, out=out)
    summary = comparison.summary()
    assert len(comparison.runs) == 2 * 3
    assert summary["workload"].nunique() == 2 and set(summary["arch"]) == {
        "tpu-like-128x128-ws", "scnn-like-8x8x4x4"}
    assert set(comparison.layers["workload"]) == set(comparison.workloads)
    scnn = summary[summary["arch"] == "scnn-like-8x8x4x4"].set_index("workload")
    # more zeros: the zero-skipping design gains more on the sparser copy
    assert scnn.loc[comparison.workloads[1], "speedup_vs_dense"] > scnn.loc[
        comparison.workloads[0], "speedup_vs_dense"]
    curve = comparison.runs[2].tables["density_curve"]
    assert list(curve["density"]) == sorted(curve["density"])
    assert curve["speedup_vs_dense"].is_monotonic_decreasing
    saved = load_comparison(out)
    assert [info["model"] for _, info in saved] == comparison.workloads
    assert [r.meta["arch"] for r in saved[1][0]] == [r.meta["arch"] for r in comparison.runs[3:]]


def test_compare_refuses_a_used_folder_unless_forced(tmp_path):
    out = tmp_path / "cmp"
    accelsim.compare(TPU, DIGITS, out=out)
    with pytest.raises(AccelsimError, match="--force"):
        accelsim.compare(SCNN, DIGITS, out=out)
    accelsim.compare(SCNN, DIGITS, out=out, force=True)
    (results, _), = load_comparison(out)
    assert [r.meta["arch"] for r in results] == ["scnn-like-8x8x4x4"]
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(AccelsimError, match="holds other files"):
        accelsim.compare(TPU, DIGITS, out=other, force=True)
    assert (other / "notes.txt").read_text() == "keep me"


def readme_api_block() -> str:
    """The README's Python API example: the python block that calls `accelsim.simulate(`."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    found = [b for b in blocks if "accelsim.simulate(" in b]
    assert len(found) == 1, "the README has one API example"
    return found[0]


def test_the_readme_api_example_runs_as_written():
    code = readme_api_block()
    done = plain_python(code)
    assert done.returncode == 0, done.stderr
    summary = done.stdout
    assert "speedup_vs_baseline" in summary and "crepe-full" in summary
    assert (ROOT / "reports" / "api_demo" / "report.html").is_file()
    assert "density" in summary and "speedup_vs_dense" in summary


def test_the_shipped_scalesim_topology_is_resnet18(tmp_path):
    from accelsim.cli import main

    out = tmp_path / "r18.npz"
    assert main(["import-scalesim", str(ROOT / "examples" / "resnet18.csv"), "-o", str(out),
                 "--act-density", "0.5"]) == 0
    workload = accelsim.load_workload(out)
    assert sum(layer.macs for layer in workload.layers) == 1_814_073_344
    outputs = {layer.name: layer.shape.E for layer in workload.layers}
    assert [outputs[n] for n in ("conv1", "layer1.0.conv1", "layer2.0.conv1",
                                 "layer3.0.downsample", "layer4.1.conv2")] == [112, 56, 28, 14, 7]
