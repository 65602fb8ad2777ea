"""The science of lca-tui, free of any UI: latent concept association and context hijacking.

Importable and testable without Textual. Never imports ``widgets`` or ``lca_tui``.
"""
