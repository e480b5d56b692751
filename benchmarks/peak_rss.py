"""Peak resident memory of one zero-skip `simulate` in a fresh process (Linux `VmHWM`), on a
shipped layer or on a synthetic lm_head (linear M64 K640 N262144, 50 % random activation
density, `lm_head+weights` with a traced 50 % weight mask too). Used by `bench_zero_skip.py`
and `run_all.py`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

RSS_SCRIPT = """
import json, sys
import numpy as np
from accelsim.kinds import load_arch
from accelsim.simulate import simulate
from accelsim.workload import GemmShape, Layer, Workload, load_workload
config, case = sys.argv[1], sys.argv[2]
arch = load_arch(f"arch_configs/{config}.yaml")
if case.startswith("lm_head"):
    rng = np.random.default_rng(1)
    act = rng.standard_normal((64, 640)).astype(np.float16)
    act[rng.random(act.shape) < 0.5] = 0
    wmask = None
    if case == "lm_head+weights":
        wmask = np.random.default_rng(2).integers(0, 2, (640, 262144), dtype=np.uint8).view(bool)
    layer = Layer("lm_head", "linear", GemmShape(M=64, K=640, N=262144), act=act,
                  weight_mask=wmask)
else:
    path, name = case.split(":")
    layer = load_workload(path).layer(name)
workload = Workload("rss", [layer])
def high_water_kib():
    with open("/proc/self/status") as fh:
        return int(next(x for x in fh if x.startswith("VmHWM:")).split()[1])
before = high_water_kib()
simulate(workload, arch)
print(json.dumps({"before_kib": before, "peak_kib": high_water_kib()}))
"""
"""The probe run in the fresh process (config name, case): the kernel's high-water mark of that
process (`VmHWM`, which an exec starts afresh, unlike `ru_maxrss`), before and after `simulate`."""


def peak_rss(config: str, case: str) -> dict[str, float]:
    """{'rss_before_simulate_mb', 'peak_rss_mb', 'process_s'} of `simulate` of `case` ('lm_head',
    'lm_head+weights' or 'path:layer') on `arch_configs/<config>.yaml` in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", RSS_SCRIPT, config, case], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - start
    rss = json.loads(done.stdout.strip().splitlines()[-1])
    return {"rss_before_simulate_mb": rss["before_kib"] / 1024,
            "peak_rss_mb": rss["peak_kib"] / 1024, "process_s": seconds}
