"""What a process has cost so far: its peak resident memory."""

from __future__ import annotations

import sys
from pathlib import Path


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB: the kernel's high-water mark of its own memory
    (``VmHWM``; ``ru_maxrss`` would include the peak of the process that started it, which Linux carries over into
    a spawned child), else ``ru_maxrss`` where there is no /proc (macOS reports bytes, Linux KiB)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    import resource  # noqa: PLC0415

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0 if sys.platform == "darwin" else 1024.0)
