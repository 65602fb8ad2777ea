"""The hijack panel (``panel.py``: keys, state, requests) and its views (``views/``: one module per
tab, each drawing the result it is given, all registered in ``views.VIEWS``)."""

from lca_tui.panels.hijack.panel import HijackPanel

__all__ = ["HijackPanel"]
