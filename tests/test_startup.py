"""Start-up: building the command-line parser (what `accelsim --help` does) imports neither
numba, pandas nor networkx, nor any engine; loading a description imports only the engine of
its kind; loading a trace imports no networkx; `accelsim run`'s terminal table is made without
pandas, and what it shows (the columns and the totals row) is what the pandas table holds."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.api import load_arch, load_workload
from accelsim.results import RunResult, _stacked, column_array
from accelsim.simulate import simulate

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("numba", "pandas", "networkx", "matplotlib", "torch", "pyarrow")
COUNT_STEPS = ("accelsim.kinds", "accelsim.simulate", "accelsim.engines.systolic",
               "accelsim.engines.zero_skip", "accelsim.engines.sparse_tensor_core",
               "accelsim.engines.neuromorphic", "accelsim.engines.gpu.count")


def modules_after(code: str) -> set[str]:
    """The modules loaded in a fresh interpreter after running `code`."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                         text=True, check=True, timeout=120)
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_parser_imports_no_heavy_package_and_no_engine() -> None:
    loaded = modules_after("from accelsim.cli import build_parser\nbuild_parser()")
    assert "accelsim.cli" in loaded
    assert sorted(set(HEAVY) & loaded) == []
    assert sorted(set(COUNT_STEPS) & loaded) == []
    assert sorted(m for m in loaded if m.startswith("accelsim.engines.gpu")) == []
    assert "accelsim.workload.recipes" not in loaded  # capture's options are added when parsed


def test_capture_options_are_there_when_capture_parses_or_prints_help(capsys) -> None:
    from accelsim.cli import build_parser

    args = build_parser().parse_args(["capture", "digits-cnn", "-o", "t.npz", "--images", "4"])
    assert (args.recipe, args.images, args.keep) == ("digits-cnn", 4, "values")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["capture", "--help"])
    shown = capsys.readouterr().out
    assert "--max-tokens" in shown and "Recipes: digits-cnn:" in " ".join(shown.split())


def test_help_runs_and_lists_the_commands() -> None:
    out = subprocess.run([sys.executable, "-m", "accelsim.cli", "--help"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "sweep" in out.stdout and "run" in out.stdout


def test_a_systolic_description_loads_only_its_engine() -> None:
    loaded = modules_after("from accelsim.kinds import load_arch\n"
                           "load_arch('arch_configs/tpu_like_128x128_ws.yaml')")
    assert "accelsim.engines.systolic" in loaded
    others = {"accelsim.engines.zero_skip", "accelsim.engines.neuromorphic",
              "accelsim.engines.sparse_tensor_core", "accelsim.engines.gpu", "numba"}
    assert sorted(others & loaded) == []


def test_loading_a_trace_imports_no_networkx_and_no_pandas() -> None:
    loaded = modules_after("from accelsim.api import load_workload\n"
                           "load_workload('workloads/digits_cnn.npz')")
    assert "accelsim.workload.format" in loaded
    assert sorted({"networkx", "pandas", "numba"} & loaded) == []


def test_run_prints_its_table_without_pandas_networkx_or_other_engines() -> None:
    loaded = modules_after(
        "import contextlib, io\nfrom accelsim.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    assert main(['run', 'arch_configs/tpu_like_128x128_ws.yaml', "
        "'workloads/digits_cnn.npz']) == 0\n"
        "assert 'TOTAL' in out.getvalue()")
    assert "accelsim.engines.systolic" in loaded
    assert sorted(set(HEAVY) & loaded) == []
    others = {"accelsim.engines.zero_skip", "accelsim.engines.neuromorphic",
              "accelsim.engines.sparse_tensor_core", "accelsim.engines.gpu"}
    assert sorted(others & loaded) == []


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _same(a: list, b: list) -> bool:
    """Equal cell by cell, of one type, None and NaN both missing."""
    return len(a) == len(b) and all(
        (_missing(x) and _missing(y)) or (type(x) is type(y) and x == y) for x, y in zip(a, b))


CELLS = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                  st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(["", "a", "b"]),
                  st.just("absent"))
TOTALS = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from(["", "TOTAL"]), st.just("absent"))
"""What `RunResult.totals` puts below a column: a sum, a ratio, a name, or nothing."""


@settings(max_examples=300, deadline=None)
@given(st.lists(CELLS, min_size=1, max_size=6).filter(lambda c: set(c) != {"absent"}), TOTALS)
def test_columns_from_rows_are_the_columns_pandas_makes(cells, below) -> None:
    rows = [{} if v == "absent" else {"c": v} for v in cells]
    table = pd.DataFrame(rows)
    mine = column_array([r.get("c", math.nan) for r in rows])
    theirs = table["c"].to_numpy()
    assert mine.dtype.kind == theirs.dtype.kind
    assert _same(mine.tolist(), theirs.tolist())
    if mine.dtype.kind == "b":  # totals sum numbers only: nothing below a boolean column
        below = "absent"
    total = {} if below == "absent" else {"c": below}
    stacked = pd.concat([table, pd.DataFrame([total])], ignore_index=True)["c"]
    numeric = pd.api.types.is_numeric_dtype(stacked) and not pd.api.types.is_bool_dtype(stacked)
    shown = _stacked(mine, total.get("c", math.nan))
    assert (shown.dtype.kind in "iufc") == numeric
    assert _same(shown.tolist(), stacked.tolist())


@pytest.mark.parametrize("arch", ["tpu_like_128x128_ws", "a100", "a100_sparse_tc", "akd1000",
                                  "eyeriss_gating"])
def test_totals_and_table_of_rows_equal_those_of_the_dataframe(arch: str) -> None:
    workload = load_workload(ROOT / "tests" / "data" / "hostile" / "markup-names.npz")
    result = simulate(workload, load_arch(ROOT / "arch_configs" / f"{arch}.yaml"))
    table = RunResult(layers=result.layers.copy(), meta=result.meta)
    rows = simulate(workload, load_arch(ROOT / "arch_configs" / f"{arch}.yaml"))
    assert rows.columns == list(table.layers.columns)
    assert _same(list(rows.totals().values()), list(table.totals().values()))
    assert list(rows.totals()) == list(table.totals())
    assert rows.coverage_note() == table.coverage_note()
    shown = rows.columns_with_totals(rows.columns)
    full = table.with_totals()
    for c in rows.columns:
        numeric = (pd.api.types.is_numeric_dtype(full[c])
                   and not pd.api.types.is_bool_dtype(full[c]))
        assert (shown[c].dtype.kind in "iufc") == numeric, c
        assert _same(shown[c].tolist(), full[c].tolist()), c
