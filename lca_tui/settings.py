"""User settings and keymap files (JSON under the platform's user config dir).

``settings.json`` remembers the theme; ``keymap.json`` maps binding ids to keys, e.g.
``{"app.panel.hijack": "f1", "hijack.n_up": "ctrl+up"}``. ``LCA_TUI_CONFIG_DIR`` overrides the folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def config_dir() -> Path:
    env = os.environ.get("LCA_TUI_CONFIG_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_config_dir("lca-tui"))


def _read(name: str) -> tuple[dict, str | None]:
    path = config_dir() / name
    if not path.exists():
        return {}, None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        return {}, f"{path} is unreadable ({exc}); using defaults"
    if not isinstance(data, dict):
        return {}, f"{path} must hold a JSON object; using defaults"
    return data, None


def load_settings() -> tuple[dict, str | None]:
    return _read("settings.json")


def save_settings(settings: dict) -> None:
    from engine.atomic import atomic_write_json

    try:
        atomic_write_json(config_dir() / "settings.json", settings)
    except Exception:  # noqa: BLE001 - remembering the theme must never crash the app
        pass


def load_keymap() -> tuple[dict[str, str], str | None]:
    """Binding id -> key string(s); a malformed entry is dropped with a warning."""
    data, problem = _read("keymap.json")
    keymap = {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str) and v.strip()}
    if len(keymap) != len(data) and problem is None:
        problem = "keymap.json: entries must map a binding id to a key string; others were ignored"
    return keymap, problem
