"""App tests: settings and sessions go to temp folders."""

import pytest


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("LCA_TUI_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("LCA_TUI_DATA_DIR", str(tmp_path / "data"))
