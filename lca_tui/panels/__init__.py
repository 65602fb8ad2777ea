"""The three panels of the app: Hijack (1), Trainer (2), Inspector (3).

``PANEL_CLASSES`` is the one list of panels, in tab order: the app builds its tab strip, its panel
keys (digit and alt+digit) and its palette from it. A new panel is a ``Panel`` subclass
(``panels/base.py``) and one entry here."""

from lca_tui.panels.hijack import HijackPanel
from lca_tui.panels.inspector import InspectorPanel
from lca_tui.panels.trainer import TrainerPanel

PANEL_CLASSES = (HijackPanel, TrainerPanel, InspectorPanel)

__all__ = ["HijackPanel", "TrainerPanel", "InspectorPanel", "PANEL_CLASSES"]
