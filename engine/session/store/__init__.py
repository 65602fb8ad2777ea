"""Sessions on disk, the public face: ``Session`` (one session directory), finding sessions under
the sessions root, and the records they list. The pieces, one thing each:

- ``layout``: folder and file names, ids, the sessions root, tolerant JSON reads;
- ``session``: the ``Session`` class (runs, recorded results, problems);
- ``catalog``: list / last used / find by name or path / the CLI's session;
- ``liveness``: ``interrupted`` detection (psutil);
- ``checkpoint``: checkpoint health (and the step it holds) from the safetensors header;
- ``progress``: a run's last step and best accuracy from its ``metrics.jsonl`` (read incrementally);
- ``records``: ``SessionInfo``, ``RunInfo``, ``Item``.
"""

from engine.session.store.catalog import find_session, last_session, list_sessions, open_cli_session
from engine.session.store.checkpoint import check_safetensors, checkpoint_header
from engine.session.store.layout import (
    KIND_DIRS,
    LAST_FILE,
    SESSION_FILE,
    default_sessions_root,
    new_id,
    slug,
)
from engine.session.store.liveness import LIVE_STATUSES, STALE_AFTER_S, effective_status, pid_alive
from engine.session.store.progress import MetricsProgress, metrics_progress
from engine.session.store.records import Item, RunInfo, SessionInfo
from engine.session.store.session import Session

__all__ = [
    "KIND_DIRS", "LAST_FILE", "LIVE_STATUSES", "SESSION_FILE", "STALE_AFTER_S", "Item", "MetricsProgress",
    "RunInfo", "Session", "SessionInfo", "check_safetensors", "checkpoint_header", "default_sessions_root",
    "effective_status", "find_session", "last_session", "list_sessions", "metrics_progress", "new_id",
    "open_cli_session", "pid_alive", "slug",
]
