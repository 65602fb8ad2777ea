"""ruff over the whole tree, as configured in pyproject.toml ([tool.ruff]): a finding fails the
test suite, so ``make test`` and CI are the linter's gate."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _ruff() -> str:
    beside = Path(sys.executable).with_name("ruff")  # the venv's, installed by `make setup`
    found = str(beside) if beside.exists() else shutil.which("ruff")
    assert found, "ruff is not installed: `make setup` installs it with the dev extra"
    return found


def test_ruff_finds_nothing():
    res = subprocess.run([_ruff(), "check", "--no-cache", "."], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stdout + res.stderr


def test_ruff_would_fail_on_a_finding(tmp_path):
    """The gate is live: the same configuration flags an unused import."""
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n")
    res = subprocess.run([_ruff(), "check", "--no-cache", "--config", str(ROOT / "pyproject.toml"), str(bad)],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 1 and "F401" in res.stdout
