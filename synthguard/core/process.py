"""What a process has cost so far (its peak resident memory), and the one knob it turns on its thread pools (BLAS
held to one thread around small matrix products)."""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Iterator
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


@functools.cache
def _blas_controller():
    """The process's threadpool controller (it scans the loaded BLAS libraries once, on first use)."""
    from threadpoolctl import ThreadpoolController  # noqa: PLC0415 (only where BLAS is held to one thread)

    return ThreadpoolController()


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """BLAS on one thread for the block: for small matrix products (the detector's numpy convolutions, the
    watermark screen's correlations) more threads only contend, and stall badly on a busy machine."""
    with _blas_controller().limit(limits=1, user_api="blas"):
        yield
