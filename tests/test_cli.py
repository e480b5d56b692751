"""The `accelsim` command line: run, inspect, import-scalesim, and clean errors."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from accelsim.cli import main
from accelsim.results import BASE_COLUMNS, RunResult
from accelsim.workload import load_workload, save_workload
from tests.test_format import make_workload

ROOT = Path(__file__).resolve().parents[1]
TPU = str(ROOT / "arch_configs" / "tpu_like_128x128_ws.yaml")
EYERISS = str(ROOT / "arch_configs" / "eyeriss_like.yaml")


@pytest.fixture
def trace(tmp_path) -> Path:
    path = tmp_path / "toy.npz"
    save_workload(make_workload(np.random.default_rng(7)), path)
    return path


def test_run_csv_is_exactly_the_per_layer_table(trace, capsys):
    assert main(["run", EYERISS, str(trace), "--format", "csv"]) == 0
    out = capsys.readouterr().out
    df = pd.read_csv(io.StringIO(out))
    assert list(df["layer"]) == [layer.name for layer in load_workload(trace).layers]
    assert all(c in df.columns for c in BASE_COLUMNS)
    assert (df["macs_done"] + df["macs_skipped"] == df["macs_dense"]).all()
    from accelsim.report.figures import energy_components

    parts = energy_components(df)
    assert np.allclose(df["energy_pj"], df[list(parts.values())].sum(axis=1))
    assert set(df["engine_mode"]) == {"trace", "statistical"}


def test_run_json_and_out_folder(trace, tmp_path, capsys):
    out_dir = tmp_path / "res"
    assert main(["run", TPU, str(trace), "--format", "json", "--out", str(out_dir)]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["meta"]["arch"] == "tpu-like-128x128-ws"
    assert payload["totals"]["macs_dense"] == sum(row["macs_dense"] for row in payload["layers"])
    saved = RunResult.load(out_dir)
    assert len(saved.layers) == len(payload["layers"])
    assert saved.meta["workload_hash"] == load_workload(trace).content_hash
    assert (out_dir / "results.parquet").is_file()


def test_run_table_shows_totals(trace, capsys):
    assert main(["run", TPU, str(trace)]) == 0
    out = capsys.readouterr().out
    assert "TOTAL" in out and "conv" in out


def test_inspect_table_and_json(trace, capsys):
    assert main(["inspect", str(trace), "--json"]) == 0
    layers = {row["layer"]: row for row in json.loads(capsys.readouterr().out)["layers"]}
    w = load_workload(trace)
    for layer in w.layers:
        assert layers[layer.name]["macs_dense"] == layer.macs
    x = w.layer("conv").act
    assert layers["conv"]["zero_fraction"] == pytest.approx(np.mean(x == 0))
    assert main(["inspect", str(trace)]) == 0
    assert "conv2d" in capsys.readouterr().out


def test_import_scalesim_conv_and_gemm(tmp_path, capsys):
    topo = tmp_path / "net.csv"
    topo.write_text(
        "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
        "Conv1, 230, 230, 7, 7, 3, 64, 2,\n"
        "Conv2, 58, 58, 3, 3, 64, 64, 1,\n"
    )
    out = tmp_path / "net.npz"
    assert main(["import-scalesim", str(topo), "-o", str(out), "--act-density", "0.4"]) == 0
    w = load_workload(out)
    assert [layer.name for layer in w.layers] == ["Conv1", "Conv2"]
    c1 = w.layer("Conv1").shape
    assert (c1.H, c1.R, c1.C, c1.K, c1.stride) == (230, 7, 3, 64, (2, 2))
    assert c1.E == -(-(230 - 7 + 2) // 2)
    assert w.layer("Conv2").act_density == 0.4
    gemm = tmp_path / "gemm.csv"
    gemm.write_text("Layer, M, N, K,\nqkv, 128, 768, 256,\n")
    assert main(["import-scalesim", str(gemm), "-o", str(out), "--gemm"]) == 0
    s = load_workload(out).layer("qkv").shape
    assert (s.M, s.N, s.K) == (128, 768, 256)


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("Layer, M, N, K,\nqkv, 128, 768,\n", "expected a layer name and 7 values"),
        ("Conv1, 10, 10, 3, 3, x, 4, 1,\n", "'Channels' must be a positive integer"),
        ("Conv1, 2, 2, 3, 3, 1, 4, 1,\n", "larger than"),
        ("", "no layers found"),
    ],
)
def test_import_scalesim_errors(tmp_path, capsys, content, needle):
    topo = tmp_path / "bad.csv"
    topo.write_text(content)
    assert main(["import-scalesim", str(topo), "-o", str(tmp_path / "o.npz")]) == 2
    assert needle in capsys.readouterr().err


def test_bad_inputs_exit_nonzero_without_traceback(tmp_path, trace):
    bad_arch = tmp_path / "bad.yaml"
    bad_arch.write_text("name: x\nkind: systolic\nclock_mhz: 100\nrows: 4\ncols: 4\ncolumns: 3\n")
    truncated = tmp_path / "cut.npz"
    truncated.write_bytes(trace.read_bytes()[:100])
    for args, needle in [
        (["run", str(bad_arch), str(trace)], "unknown key 'columns'"),
        (["run", TPU, str(truncated)], "truncated"),
        (["inspect", str(tmp_path / "none.npz")], "no such workload"),
    ]:
        proc = subprocess.run([sys.executable, "-m", "accelsim.cli", *args],
                              capture_output=True, text=True)
        assert proc.returncode == 2
        assert needle in proc.stderr
        assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_console_script_end_to_end(trace):
    exe = Path(sys.executable).with_name("accelsim")
    if not exe.exists():
        pytest.skip("console script not installed in this environment")
    proc = subprocess.run([str(exe), "run", TPU, str(trace), "--format", "csv"],
                          capture_output=True, text=True, check=True)
    assert proc.stdout.splitlines()[0].startswith("layer,op,arch")


DIGITS = ROOT / "workloads" / "digits_cnn.npz"
NUMBER = re.compile(r"^-?[\d.,]+( [a-zA-Z/·²]+)?$")


def cli(*args: str, columns: int = 80, **env: str) -> subprocess.CompletedProcess:
    """`accelsim ARGS` in this process from the repository root, stdout and stderr captured
    (neither a terminal) at `COLUMNS=columns`, with `env` set meanwhile."""
    out, err = io.StringIO(), io.StringIO()
    saved, cwd = dict(os.environ), os.getcwd()
    os.environ.update({"COLUMNS": str(columns), **env})
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # --help, or argparse refusing an argument
                code = int(exc.code or 0)
    finally:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(saved)
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def table_cells(text: str) -> list[str]:
    """Every cell of the rich tables in `text`."""
    return [cell.strip() for line in text.splitlines() if line.startswith("│")
            for cell in line.strip("│").split("│")]


@pytest.mark.skipif(not DIGITS.is_file(), reason="workloads/digits_cnn.npz not shipped")
@pytest.mark.parametrize("columns", [80, 150])
def test_run_table_fits_the_width_and_never_splits_a_number(columns):
    from accelsim.report.units import column_text

    done = cli("run", TPU, str(DIGITS), columns=columns)
    assert done.returncode == 0, done.stderr
    assert max(len(line) for line in done.stdout.splitlines()) <= columns
    csv = cli("run", TPU, str(DIGITS), "--format", "csv")
    df = pd.read_csv(io.StringIO(csv.stdout))
    whole = {text for c in df.columns if pd.api.types.is_numeric_dtype(df[c])
             for text in column_text(c, df[c].tolist())}
    numbers = [cell for cell in table_cells(done.stdout) if NUMBER.match(cell)]
    assert numbers and "e+" not in done.stdout and "e-0" not in done.stdout
    totals = [cell for cell in numbers if cell not in whole]
    # cells of the TOTAL row are sums, the others are exactly a result column's values
    assert len(totals) <= len(numbers) // (len(df) + 1) + 1, totals
    assert any(cell.endswith(" us") for cell in numbers)
    assert any(cell.endswith("J") for cell in numbers)


def test_machine_formats_keep_full_precision(trace):
    csv = cli("run", TPU, str(trace), "--format", "csv")
    js = json.loads(cli("run", TPU, str(trace), "--format", "json").stdout)
    df = pd.read_csv(io.StringIO(csv.stdout))
    assert list(df["latency_s"]) == [row["latency_s"] for row in js["layers"]]
    assert df["latency_s"].max() < 1e-3  # seconds, the base unit, not microseconds


def test_progress_is_plain_lines_on_stderr_when_piped(trace):
    done = cli("run", TPU, str(trace), ACCELSIM_PROGRESS_INTERVAL_S="0")
    lines = [line for line in done.stderr.splitlines() if line.startswith("tpu-like")]
    n = len(load_workload(trace).layers)
    assert len(lines) == n
    assert lines[-1].startswith(f"tpu-like-128x128-ws: {n}/{n} (")
    assert "s elapsed" in lines[-1] and "left" in lines[0]


def test_inspect_shows_progress_per_layer_when_piped(trace):
    done = cli("inspect", str(trace), ACCELSIM_PROGRESS_INTERVAL_S="0")
    n = len(load_workload(trace).layers)
    lines = [line for line in done.stderr.splitlines() if line.startswith("inspect:")]
    assert len(lines) == n and lines[-1].startswith(f"inspect: {n}/{n} (")


def test_inspect_prints_a_legend_for_its_columns(trace):
    from accelsim.cli import INSPECT_LEGEND

    done = cli("inspect", str(trace))
    assert done.returncode == 0
    legend = done.stdout.split("columns:", 1)[1]
    for key in INSPECT_LEGEND:
        assert f"  {key.replace('@T', '@0.01')}: " in legend
    assert "2:4_ok" in cli("inspect", "--help").stdout


def test_list_and_describe_come_from_the_registry_and_schemas():
    from accelsim.display import schema_rows
    from accelsim.kinds import KINDS
    from accelsim.workload.recipes import RECIPES

    kinds = json.loads(cli("list", "kinds", "--format", "json").stdout)
    assert [k["kind"] for k in kinds] == list(KINDS)
    recipes = json.loads(cli("list", "recipes", "--format", "json").stdout)
    assert [r["recipe"] for r in recipes] == list(RECIPES)
    archs = json.loads(cli("list", "archs", "--format", "json").stdout)
    shipped = sorted((ROOT / "arch_configs").glob("*.yaml"))
    assert [a["file"] for a in archs] == [f"arch_configs/{p.name}" for p in shipped]
    assert {a["kind"] for a in archs} <= set(KINDS)
    fields = json.loads(cli("describe", "zero_skip", "--format", "json").stdout)
    keys = {f["key"]: f for f in fields}
    assert keys["clock_mhz"]["default"] == "required" and keys["clock_mhz"]["unit"] == "MHz"
    assert "> 0" in keys["clock_mhz"]["bounds"]
    assert keys["gated_mac_energy_fraction"]["default"] == "0.2"
    assert "array[dataflow=channel_lanes].lanes" in keys
    assert keys["memory[].size_bytes"]["doc"].startswith("Capacity in bytes")
    # every top-level field of every kind is described
    for kind, k in KINDS.items():
        described = {r.key for r in schema_rows(k.engine.Config)}
        assert set(k.engine.Config.model_fields) <= described, kind
    text = cli("describe", "systolic")
    assert text.returncode == 0 and "clock_mhz: float, required" in text.stdout
    bad = cli("describe", "tpu")
    assert bad.returncode == 2 and "unknown kind 'tpu'" in bad.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [  # (a traceback would fail the test: main only catches AccelsimError)
        (["run", "workloads/digits_cnn.npz", TPU], "in the wrong order"),
        (["run", "arch_configs/sweeps/cnvlutin_sweep.yaml", "workloads/digits_cnn.npz"],
         "accelsim sweep arch_configs/sweeps/cnvlutin_sweep.yaml"),
        (["run", "arch_configs/tech/horowitz_45nm.yaml", "workloads/digits_cnn.npz"],
         "tech table"),
        (["run", TPU, TPU], "needs a workload trace"),
        (["sweep", TPU], "needs a sweep spec"),
        (["report", "workloads/digits_cnn.npz", "-o", "r.html"], "results folder"),
        (["inspect", TPU], "needs a workload trace"),
    ],
)
def test_files_in_the_wrong_place_are_one_paragraph(args, needle):
    done = cli(*args)
    assert done.returncode == 2
    assert needle in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and done.stdout == ""


SI_FACTOR = {"T": 1e12, "G": 1e9, "M": 1e6, "k": 1e3, "": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9,
             "p": 1e-12, "f": 1e-15}


@given(st.floats(min_value=1e-14, max_value=1e14) | st.floats(min_value=-1e14, max_value=-1e-14))
def test_si_reads_back_within_three_digits_and_never_an_exponent(value):
    from accelsim.report.units import si

    text = si(value, "s")
    number, unit = text.split(" ")
    assert "e" not in number and unit.endswith("s")
    mantissa = float(number)
    assert 1 <= abs(mantissa) < 1000 or unit[0] == "f"
    assert mantissa * SI_FACTOR[unit[:-1]] == pytest.approx(value, rel=5e-3)


@given(st.floats(min_value=-1e7, max_value=1e7, allow_nan=False))
def test_fixed_point_keeps_three_significant_digits(value):
    from accelsim.report.units import fixed

    text = fixed(value)
    assert "e" not in text
    assert float(text.replace(",", "")) == pytest.approx(value, rel=5e-3, abs=5e-9)
