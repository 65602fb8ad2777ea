"""bench/device_check.sh --dry (issue 21): the prepared GPU check runs on the CPU in CI, so the script
keeps working until the day it runs on a GPU; every check runs, passes and lands in one JSON file."""

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_device_check_dry_mode_runs_every_check_on_the_cpu(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHON": str(Path(os.sys.executable))}
    proc = subprocess.run(["bash", str(ROOT / "bench" / "device_check.sh"), "--dry", str(tmp_path / "out")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads((tmp_path / "out" / "device_check.json").read_text())
    assert data["dry"] is True and data["passed"] is True
    names = [c["check"] for c in data["checks"]]
    for part in ("probe cpu float32", "probe cpu bfloat16", "es-sweep cpu float32", "es-sweep cpu bfloat16",
                 "trainer cpu fp32", "trace", "per-gpu executor"):
        assert any(n.startswith(part) for n in names), part
    executor = next(c for c in data["checks"] if c["check"].startswith("per-gpu executor"))
    assert executor["workers"] == 2 and "skipped" not in executor
    assert (tmp_path / "out" / "device_check.log").read_text().count("PASS") == len(names)


def test_device_check_without_cuda_says_so(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the real check would run")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([os.sys.executable, str(ROOT / "bench" / "device_check.py"), "--out", str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--dry" in proc.stderr
