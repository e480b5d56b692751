"""benchmarks/gpu_calibration.py: clean exit without a GPU; its fit recovers known parameters."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from accelsim.engines.gpu.kernels import csr_time, dense_time, nm_time, row_skip_time
from accelsim.engines.shared_gemm_operand import gemm_dims
from accelsim.kinds import load_arch
from accelsim.workload import GemmShape, Layer
from benchmarks.gpu_calibration import FIELDS, fit

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_calibration.py"


def test_measure_without_cuda_says_so_and_exits_cleanly(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present: the script would measure")
    out = tmp_path / "cal.csv"
    proc = subprocess.run([sys.executable, str(SCRIPT), "measure", "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "no CUDA GPU" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()


def test_fit_recovers_the_parameters_a_synthetic_gpu_was_timed_with(tmp_path):
    """Time a GPU whose efficiencies differ from the YAML, write the CSV the script would, and
    fit the YAML back to it: each parameter comes back within 1 %."""
    path = ROOT / "arch_configs" / "h100.yaml"
    arch = load_arch(path)
    truth = {"dense": 0.70, "csr": 0.05, "2of4": 0.55, "gemv_bw": 0.65}
    kernels = arch.kernels
    dense = kernels["dense"].model_copy(update={"compute_efficiency": {"fp16": truth["dense"]}})
    csr = kernels["csr"].model_copy(update={"compute_efficiency": {"fp16": truth["csr"]},
                                            "conversion": "none"})
    nm = kernels["2of4"].model_copy(update={"compute_efficiency": {"fp16": truth["2of4"]},
                                            "conversion": "none"})
    gemv = kernels["act_sparse_gemv"].model_copy(update={"bandwidth_efficiency": truth["gemv_bw"]})
    mc = arch.machine()
    rows = []

    def add(method, shape, density, seconds):
        rows.append({"device": "synthetic", "torch_version": "-", "cuda_version": "-",
                     "method": method, "dtype": "fp16", "M": shape[0], "K": shape[1],
                     "N": shape[2], "density": density, "time_s": seconds, "repeats": 1,
                     "created": "-"})

    for shape in [(4096, 4096, 4096), (2048, 8192, 4096), (1, 4096, 11008)]:
        d = gemm_dims(Layer("g", "linear", GemmShape(*shape)))
        add("dense", shape, 1.0, dense_time(d, mc, dense).total_s)
        for density in (0.5, 0.1, 0.02):
            if shape[0] == 1:
                add("masked_gemv", shape, density, row_skip_time(d, density, mc, gemv).total_s)
            else:
                add("csr_spmm", shape, density, csr_time(d, density, mc, csr).total_s)
        if shape[0] > 1:
            add("2of4_mm", shape, 0.5, nm_time(d, mc, nm, dense).total_s)
    out = tmp_path / "synthetic.csv"
    with out.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    found = fit(out, path)
    assert found["dense.compute_efficiency.fp16"] == pytest.approx(truth["dense"], rel=0.01)
    assert found["csr.compute_efficiency.fp16"] == pytest.approx(truth["csr"], rel=0.01)
    assert found["2of4.compute_efficiency.fp16"] == pytest.approx(truth["2of4"], rel=0.01)
    assert found["act_sparse_gemv.bandwidth_efficiency"] == pytest.approx(truth["gemv_bw"], rel=0.01)
