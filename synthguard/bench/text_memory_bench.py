"""Text detection cost by text size: peak RSS and seconds of a whole ``synthguard detect`` process (models,
calibrations and the text included) for texts of a few sizes, each in a fresh process so every peak is its own.

The texts are a seeded mix of words (ASCII, accented, CJK and emoji words, punctuation, line breaks and runs of
spaces), written to a temporary folder. A first run on a short text, not counted, measures and caches the
calibrations in the temporary home and gives the cost of starting up.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from synthguard.detect.text import TEXT_PEAK_MEMORY_BOUND_MB
from synthguard.errors import InputError

DEFAULT_SIZES_MB = (1.0, 5.0, 20.0, 64.0)
MIB = 1024 * 1024
_WORDS = ("the", "of", "and", "a", "to", "in", "is", "was", "that", "for", "it", "with", "as", "on", "by", "river",
          "market", "evidence", "signal", "because", "although", "measurement", "committee", "north", "seven",
          "café", "naïve", "Zürich", "façade", "résumé", "Ελλάδα", "Москва", "東京", "文字", "数据", "🙂", "🚀",
          "42", "1,000", "3.14", "(see", "above)", "—", "«quote»")
_SEPARATORS = (" ",) * 12 + (", ", ". ", "\n", "\n\n", "  ", "\t", " " * 9)


@dataclass(frozen=True)
class TextMemoryRow:
    """One measured ``detect`` process: the text's size, its peak RSS and wall time, and what it reported."""

    label: str
    text_bytes: int
    peak_rss_mb: float
    seconds: float  # wall time of the whole process
    cpu_seconds: float  # user + system time (steadier than wall time on a shared machine)
    exit_status: int
    verdict: str | None
    tokens_tested: int | None
    note: str | None

    def to_dict(self) -> dict:
        return asdict(self)


def write_text(path: Path, n_bytes: int, seed: int = 0) -> int:
    """Write ``n_bytes`` (or a few fewer, so no character is cut) of seeded word-mix UTF-8 text; return the size."""
    if n_bytes < 1:
        raise InputError(f"a benchmark text needs at least 1 byte, got {n_bytes}")
    rng = random.Random(seed)
    written = 0
    with open(path, "wb") as handle:
        while written < n_bytes:
            chunk = "".join(rng.choice(_WORDS) + rng.choice(_SEPARATORS) for _ in range(4096)).encode()
            chunk = chunk[:n_bytes - written]
            # A multi-byte character cut at the end is left out.
            chunk = chunk.decode("utf-8", errors="ignore").encode()
            if not chunk:
                break
            handle.write(chunk)
            written += len(chunk)
    return written


def _detect_command(path: Path, scorer: str | None) -> list[str]:
    command = [sys.executable, "-m", "synthguard.cli", "detect", str(path), "--json", "--no-ledger", "--threads", "1"]
    return command + (["--text-scorer", scorer] if scorer else [])


def measure(path: Path, home: Path, *, label: str, scorer: str | None = None) -> TextMemoryRow:
    """Run ``synthguard detect`` on ``path`` in a fresh process; its own peak RSS (from ``wait4``) and wall time."""
    env = dict(os.environ, SYNTHGUARD_HOME=str(home), OMP_NUM_THREADS="1")
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(_detect_command(path, scorer), stdout=out, stderr=err, env=env)  # noqa: S603
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    verdict = tokens = note = None
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if lines:
        record = json.loads(lines[-1])
        verdict = (record.get("verdict") or {}).get("label")
        details = (record.get("watermark") or {}).get("details") or {}
        tokens, note = details.get("tokens"), details.get("note")
    elif proc.returncode != 0:
        note = (stderr.strip().splitlines() or ["no output"])[-1]
    return TextMemoryRow(label, path.stat().st_size, round(usage.ru_maxrss / 1024.0, 1), round(seconds, 2),
                         round(usage.ru_utime + usage.ru_stime, 2), proc.returncode, verdict, tokens, note)


def run(sizes_mb: tuple[float, ...] = DEFAULT_SIZES_MB, *, scorer: str | None = "builtin", seed: int = 0,
        startup: bool = True, log=print) -> dict:
    """Peak RSS and seconds per text size (MB = 2**20 bytes, so 64 is the largest accepted text), with ratios to
    the first size; with ``startup``, after a calibrating run and a measured start-up run on a short text (else
    the first size's run also measures the calibrations)."""
    if not sizes_mb or any(s <= 0 for s in sizes_mb):
        raise InputError(f"text sizes must be positive, got {list(sizes_mb)}")
    from synthguard.core.home import Home  # noqa: PLC0415
    from synthguard.provenance.identity import IdentityStore  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        IdentityStore(Home(home)).ensure()
        base = None
        if startup:
            short = Path(tmp) / "short.txt"
            write_text(short, 4096, seed)
            log("start-up run (calibrations measured and cached)")
            measure(short, home, label="calibrating", scorer=scorer)
            base = measure(short, home, label="start-up", scorer=scorer)
        rows = []
        for mb in sizes_mb:
            path = Path(tmp) / f"text-{mb:g}MB.txt"
            write_text(path, int(mb * MIB), seed)
            log(f"{mb:g} MB")
            rows.append(measure(path, home, label=f"{mb:g} MB", scorer=scorer))
            path.unlink()
    first = rows[0]
    return {"startup": base.to_dict() if base else None, "scorer": scorer,
            "rows": [dict(r.to_dict(), rss_ratio=round(r.peak_rss_mb / first.peak_rss_mb, 2),
                          seconds_ratio=round(r.seconds / max(first.seconds, 1e-9), 2),
                          cpu_ratio=round(r.cpu_seconds / max(first.cpu_seconds, 1e-9), 2),
                          size_ratio=round(r.text_bytes / first.text_bytes, 2)) for r in rows]}


def render(result: dict) -> str:
    """The table: one row per text size, with its peak RSS and times and their ratios to the first size."""
    s = result["startup"]
    lines = [f"{'text':>8} {'bytes':>10} {'peak RSS MB':>12} {'x':>5} {'wall s':>7} {'x':>5} {'cpu s':>7} {'x':>5} "
             f"{'tokens tested':>14}  verdict"]
    if s:
        lines.append(f"{'start-up':>8} {s['text_bytes']:>10} {s['peak_rss_mb']:>12.1f} {'':>5} {s['seconds']:>7.2f} "
                     f"{'':>5} {s['cpu_seconds']:>7.2f} {'':>5} {s['tokens_tested'] or 0:>14}  {s['verdict']}")
    for r in result["rows"]:
        lines.append(f"{r['label']:>8} {r['text_bytes']:>10} {r['peak_rss_mb']:>12.1f} {r['rss_ratio']:>5.2f} "
                     f"{r['seconds']:>7.2f} {r['seconds_ratio']:>5.2f} {r['cpu_seconds']:>7.2f} {r['cpu_ratio']:>5.2f} "
                     f"{r['tokens_tested'] or 0:>14}  {r['verdict'] if r['exit_status'] == 0 else 'error'}")
    notes = sorted({r["note"] for r in result["rows"] if r["note"]})
    lines += [f"note: {n}" for n in notes]
    over = [r["label"] for r in result["rows"] if r["peak_rss_mb"] > TEXT_PEAK_MEMORY_BOUND_MB]
    lines.append(f"Whole `synthguard detect` processes (models included), machine-text scorer: "
                 f"{result['scorer'] or 'off'}; x: ratio to the first size; MB = 2**20 bytes. Bound: "
                 f"{TEXT_PEAK_MEMORY_BOUND_MB} MB" + (f", EXCEEDED by {', '.join(over)}." if over else ", held."))
    return "\n".join(lines)
