"""The inspector panel's tabs, one module each, in the order ``v`` cycles through them: Textual
widgets (``InspectorTab``, a ``TabPane``) the inspector composes and feeds (``draw(InspectedRun)``).
A new tab: a module with an ``InspectorTab`` subclass (``base.py``) and one line here."""

from lca_tui.panels.inspector_tabs.attention import AttentionTab
from lca_tui.panels.inspector_tabs.base import InspectedRun, InspectorTab
from lca_tui.panels.inspector_tabs.geometry import GeometryTab
from lca_tui.panels.inspector_tabs.gram import GramTab
from lca_tui.panels.inspector_tabs.mirror import MirrorTab
from lca_tui.panels.inspector_tabs.spectra import SpectraTab
from lca_tui.panels.inspector_tabs.value import ValueTab

TABS: tuple[type[InspectorTab], ...] = (GeometryTab, GramTab, SpectraTab, ValueTab, AttentionTab, MirrorTab)

__all__ = ["TABS", "InspectedRun", "InspectorTab"]
