"""lca-tui: the terminal workbench application (App, screens, CLI)."""

__version__ = "0.1.0"
