"""RunResult totals and save/load."""

from __future__ import annotations

import pandas as pd
import pytest

from accelsim.errors import AccelsimError
from accelsim.results import RunResult


def result() -> RunResult:
    df = pd.DataFrame({
        "layer": ["a", "b"], "op": ["linear", "conv2d"], "arch": "x", "workload": "w",
        "engine": "e",
        "engine_mode": ["trace", "statistical"], "macs_dense": [100, 300], "macs_done": [50, 300],
        "macs_skipped": [50, 0], "macs_gated": [0, 0], "act_density": [0.5, 1.0],
        "weight_density": [1.0, 1.0], "cycles": [10.0, 30.0], "compute_cycles": [10.0, 30.0],
        "stall_cycles": [0.0, 0.0], "latency_s": [1.0, 3.0], "energy_pj": [5.0, 15.0],
        "dram_bytes": [1.0, 2.0], "utilization": [0.5, 1.0], "bound": ["compute", "memory"],
        "speedup_vs_dense": [2.0, 1.0], "energy_saving_vs_dense": [2.0, 1.0],
        "dense_cycles": [20.0, 30.0], "dense_latency_s": [2.0, 3.0], "dense_energy_pj": [10.0, 15.0],
        "energy_mac_pj": [5.0, 15.0], "cycles_if_uniform": [9.0, 31.0], "best_kernel": ["a", "b"],
        "nps_used": [1, 2], "covered_macs_fraction": [1.0, 1.0], "warnings": ["", "x"],
    })
    return RunResult(layers=df, meta={"arch": "x"})


def test_totals_sum_additive_columns_and_weight_ratios():
    tot = result().totals()
    assert tot["cycles"] == 40 and tot["cycles_if_uniform"] == 40 and tot["energy_mac_pj"] == 20
    assert tot["act_density"] == pytest.approx((0.5 * 100 + 300) / 400)
    assert tot["speedup_vs_dense"] == pytest.approx(5 / 4)
    assert tot["energy_saving_vs_dense"] == pytest.approx(25 / 20)
    assert tot["utilization"] == pytest.approx((0.5 * 10 + 30) / 40)
    assert tot["engine_mode"] == "mixed"
    assert "nps_used" not in tot and "best_kernel" not in tot


def test_save_load_round_trip_and_partial_folder(tmp_path):
    r = result()
    r.save(tmp_path / "ok")
    back = RunResult.load(tmp_path / "ok")
    pd.testing.assert_frame_equal(back.layers, r.layers, check_dtype=False)
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / "results.csv").write_text("layer\nx\n")
    with pytest.raises(AccelsimError, match="no complete results"):
        RunResult.load(tmp_path / "partial")


def test_layers_without_result_are_left_out_and_counted():
    r = result()
    r.layers.loc[1, ["cycles", "latency_s", "energy_pj", "utilization"]] = float("nan")
    tot = r.totals()
    assert tot["layers_without_result"] == 1
    assert tot["cycles"] == 10 and tot["dense_latency_s"] == 2.0
    assert tot["speedup_vs_dense"] == pytest.approx(2.0)
    assert tot["utilization"] == pytest.approx(0.5)


def test_engine_tables_round_trip_and_a_missing_one_is_a_clear_error(tmp_path):
    r = result()
    r.tables["curves"] = pd.DataFrame({"layer": ["a", "a", "b"], "density": [0.1, 1.0, 0.5],
                                       "at_layer_density": [False, False, True]})
    paths = r.save(tmp_path / "ok")
    assert [p.name for p in paths] == ["results.csv", "results.parquet", "results_curves.csv",
                                       "results_curves.parquet", "results.json"]
    back = RunResult.load(tmp_path / "ok")
    pd.testing.assert_frame_equal(back.tables["curves"], r.tables["curves"])
    assert RunResult.load(tmp_path / "ok").meta == r.meta
    (tmp_path / "ok" / "results_curves.parquet").unlink()
    with pytest.raises(AccelsimError, match="unreadable"):
        RunResult.load(tmp_path / "ok")
