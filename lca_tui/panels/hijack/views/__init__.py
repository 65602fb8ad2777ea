"""The hijack panel's views, one module each, in tab order: Textual widgets (``View``, a ``TabPane``)
the panel composes and feeds. A new view: a module with a ``View`` subclass (``views/base.py``) and
one line here; its keys are its ``BINDINGS``, which the panel lifts."""

from lca_tui.panels.hijack.views.attention import AttentionView
from lca_tui.panels.hijack.views.base import ProbeContext, ShowView, View, view_bindings
from lca_tui.panels.hijack.views.efficacy import EfficacyView
from lca_tui.panels.hijack.views.lens import LensView
from lca_tui.panels.hijack.views.repair import RepairView
from lca_tui.panels.hijack.views.surprise import SurpriseView
from lca_tui.panels.hijack.views.sweep import SweepView
from lca_tui.panels.hijack.views.trace import TraceView

VIEWS: tuple[type[View], ...] = (SurpriseView, LensView, AttentionView, TraceView, SweepView, EfficacyView,
                                 RepairView)

__all__ = ["VIEWS", "ProbeContext", "ShowView", "View", "view_bindings"]
