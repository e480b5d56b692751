"""Start-up: building the command-line parser (what `accelsim --help` does) imports neither
numba, pandas nor networkx, nor any engine's count step; loading a description imports only
the engine of its kind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
