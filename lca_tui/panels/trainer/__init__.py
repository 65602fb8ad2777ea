"""The trainer panel (``panel.py``: keys, state, requests), its form's fields and recipe
(``form.py``), the runs it knows and their table (``runs.py``) and the training thread
(``worker.py``)."""

from lca_tui.panels.trainer.form import FORM_FIELDS, TUNING
from lca_tui.panels.trainer.panel import TrainerPanel
from lca_tui.panels.trainer.runs import RunState

__all__ = ["FORM_FIELDS", "TUNING", "RunState", "TrainerPanel"]
