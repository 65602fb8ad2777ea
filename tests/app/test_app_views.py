"""The hijack views are widgets fed by the panel: their keys are their own bindings (lifted into the
panel's, so they work from the targets table and the help screen lists them by id), and no view
reaches into the panel or the app."""

import ast
from pathlib import Path

import numpy as np

from lca_tui.app import LcaApp
from lca_tui.messages import ProbeAnswered
from lca_tui.panels.hijack.views import VIEWS

VIEWS_DIR = Path(__file__).parents[2] / "lca_tui" / "panels" / "hijack" / "views"


def test_no_view_reads_or_writes_the_panel_or_the_app():
    for path in VIEWS_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute):
                assert node.attr not in ("panel", "app"), f"{path.name}:{node.lineno} .{node.attr}"


async def test_view_keys_are_lifted_into_the_panel_and_run_on_the_view():
    from dataclasses import replace

    from test_app_snapshots import fixed_probe

    from lca_tui.screens.help import binding_rows

    app = LcaApp(load_model=False)
    async with app.run_test(size=(120, 40)) as pilot:
        panel = app.query_one("#hijack")
        rows = binding_rows(app)
        for view in VIEWS:
            for b in view.BINDINGS:
                assert ("hijack", b.description, b.id) in {(w, d, i) for w, _, d, i in rows}
        att = panel.views["attention"]
        await pilot.pause()
        await pilot.press("escape")  # the targets table has the focus, the Surprise view is shown
        req = panel.last_request
        res = replace(fixed_probe(req.prompt), attention=np.full((3, 2, 6), 1 / 6))
        panel.post_message(ProbeAnswered(req, result=res, seconds=0.01))
        await pilot.pause()
        await pilot.press("right_square_bracket", "right_square_bracket", "right_curly_bracket")
        assert (att.att_layer, att.att_head) == (1, 0) and panel.view == "surprise"
        assert str(att.query_one("#attention-label").render()).startswith("layer 2/3 · head 1/2")
        await pilot.press("k")
        assert panel.view == "trace" and panel.views["trace"].mode == "resid"
