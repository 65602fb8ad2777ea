"""What the status bar shows that the app measures itself: the memory in use."""

from __future__ import annotations

import os
import sys


def memory_in_use() -> str:
    """Resident memory of this process, plus GPU memory when torch is loaded and CUDA is in use."""
    try:
        import resource

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # peak MiB on Linux
        try:
            with open("/proc/self/statm") as fh:
                rss = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20
        except OSError:
            pass
    except ImportError:
        rss = 0.0
    text = f"{rss:,.0f} MiB"
    cuda = getattr(sys.modules.get("torch"), "cuda", None)  # only if torch is (fully) imported
    try:
        if cuda is not None and cuda.is_available() and cuda.is_initialized():
            text += f" · GPU {cuda.memory_allocated() / 2 ** 30:.2f} GiB"
    except (AttributeError, RuntimeError):
        pass
    return text
