"""visible_token, colour ramps/quantisation, and the widgets' import rule."""

import ast
from pathlib import Path

import numpy as np

from widgets import quantize, ramp, visible_token
from widgets.colors import contrast_text

WIDGETS_DIR = Path(__file__).resolve().parents[2] / "widgets"


def test_visible_token_whitespace():
    assert visible_token(" Paris") == "␣Paris"
    assert visible_token("\n") == "↵"
    assert visible_token("\t x") == "→␣x"
    assert visible_token("") == "∅"
    assert visible_token("a\x00") == "a\\x00"
    assert visible_token("élan") == "élan"


def test_ramp_endpoints_and_length():
    colors = ramp("viridis", 256)
    assert len(colors) == 256
    assert colors[0].get_truecolor() == (0x44, 0x01, 0x54)
    assert colors[-1].get_truecolor() == (0xFD, 0xE7, 0x25)
    div = ramp("diverging", 255)
    assert div[127].get_truecolor() == (0xF7, 0xF7, 0xF7)  # white at the centre


def test_quantize_maps_range_and_nan():
    idx = quantize([0.0, 0.5, 1.0, -3.0, 7.0, np.nan], 0.0, 1.0, 256)
    assert idx.tolist() == [0, 128, 255, 0, 255, -1]
    assert quantize([2.0, 2.0], 2.0, 2.0, 64).tolist() == [0, 0]  # degenerate range


def test_contrast_text():
    assert contrast_text(ramp("viridis")[0]).get_truecolor() == (255, 255, 255)
    assert contrast_text(ramp("viridis")[-1]).get_truecolor() == (0, 0, 0)


def test_widgets_do_not_import_engine_app_or_torch():
    banned = {"engine", "lca_tui", "torch", "transformers"}
    for path in WIDGETS_DIR.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            assert not {n.split(".")[0] for n in names} & banned, (path.name, names)
