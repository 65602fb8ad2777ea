"""The hijack panel's views, one module each, in tab order. A new view: a module with a ``View``
subclass (``views/base.py``) and one line here."""

from lca_tui.panels.hijack.views.attention import AttentionView
from lca_tui.panels.hijack.views.base import View
from lca_tui.panels.hijack.views.efficacy import EfficacyView
from lca_tui.panels.hijack.views.lens import LensView
from lca_tui.panels.hijack.views.surprise import SurpriseView
from lca_tui.panels.hijack.views.sweep import SweepView
from lca_tui.panels.hijack.views.trace import TraceView

VIEWS: tuple[type[View], ...] = (SurpriseView, LensView, AttentionView, TraceView, SweepView, EfficacyView)

__all__ = ["VIEWS", "View"]
