"""The three panels of the app: Hijack (1), Trainer (2), Inspector (3)."""

from lca_tui.panels.hijack import HijackPanel
from lca_tui.panels.inspector import InspectorPanel
from lca_tui.panels.trainer import TrainerPanel

PANEL_CLASSES = (HijackPanel, TrainerPanel, InspectorPanel)

__all__ = ["HijackPanel", "TrainerPanel", "InspectorPanel", "PANEL_CLASSES"]
