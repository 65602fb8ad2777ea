"""User-facing errors: one clear sentence, no traceback.

The CLI prints ``str(err)`` and exits with code 2; the app shows it inline and keeps running.
"""


class UserError(ValueError):
    """A mistake in what the user asked for (a bad flag, a missing file, an unknown model)."""


def describe(exc: BaseException) -> str:
    """An error in one line for the user: a ``UserError``'s message, else ``"Type: message"``."""
    return str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"


class ConfigError(UserError):
    """A configuration value is invalid; raised by the frozen config dataclasses on construction.

    ``field`` names the offending setting when one is to blame, so a form can mark it.
    """

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class Cancelled(Exception):
    """A job stopped at a cancel (``engine.job_context.JobContext.check``): the one rule for every
    cancellable engine function. ``partial`` is what it had finished when that means something (an
    ``EfficacyResult`` flagged ``cancelled``: the records scored so far), else None (a trace, a
    dataset trace, an experiment's jobs)."""

    def __init__(self, partial=None):
        super().__init__(partial)  # args hold the partial result: it pickles back as it was
        self.partial = partial

    def __str__(self) -> str:
        return "cancelled"
