"""Image memory benchmark: peak resident memory and time of inspecting one image near the pixel budget.

Photo-like images (seeded: smooth gradients and a few low-frequency waves per channel, plus fine grain) of 1, 25,
50 and 100 megapixels (the default pixel budget, ``core.media.DEFAULT_MAX_PIXELS``) are written as PNG and as
JPEG 90. Each is inspected by ``detect.context.inspect_file`` in a fresh Python process, under the default policy
with the classifier on, as one ``verify`` worker inspects it. That process first inspects a small image, so the
models are loaded and its imports done; its peak resident set size then (``baseline``) and after the large image
(``peak``, ``core.process.peak_rss_mb``: the process's own high-water mark) are reported, with the seconds the
large image took and the verdict, beside ``detect.image.peak_memory_bound_mb`` for that image's pixels. The images
are made in a process of their own too, so the parent that starts the measured processes never holds one.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from synthguard.core.process import peak_rss_mb
from synthguard.errors import InputError

SIZES_MP = (1, 25, 50, 100)
FORMATS = ("png", "jpeg")
JPEG_QUALITY = 90
_STRIP_ROWS = 512  # rows generated at a time: the generator holds the image and one strip's float planes
_CHILD_FLAG = "--inspect-one"
_MAKE_FLAG = "--make"


def photo_size(megapixels: float) -> tuple[int, int]:
    """(height, width) of the largest 4:3 landscape image (3u x 4u) of at most ``megapixels`` million pixels."""
    if not megapixels > 0:
        raise InputError(f"megapixels must be > 0, not {megapixels!r}")
    unit = max(1, math.isqrt(int(megapixels * 1e6) // 12))
    return 3 * unit, 4 * unit


def photo_like(height: int, width: int, *, seed: int = 0) -> np.ndarray:
    """(height, width, 3) uint8 RGB: per channel a gradient and three low-frequency waves (the smooth areas and
    shading of a photograph), and Gaussian grain of 3 grey levels (sensor noise), all from ``seed``."""
    if height < 1 or width < 1:
        raise InputError(f"an image needs positive sides, not {height}x{width}")
    rng = np.random.default_rng(seed)
    base = rng.uniform(60, 190, 3)
    slope = rng.uniform(-50, 50, (3, 2))  # grey levels across the whole height / width
    waves = [(rng.uniform(20, 40), rng.uniform(1, 6, 2), rng.uniform(0, 2 * math.pi)) for _ in range(9)]
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    out = np.empty((height, width, 3), np.uint8)
    for top in range(0, height, _STRIP_ROWS):
        rows = min(_STRIP_ROWS, height - top)
        y = (np.arange(top, top + rows, dtype=np.float32) / max(height - 1, 1))[:, None]
        grain = np.random.default_rng([seed, top]).standard_normal((rows, width, 3), dtype=np.float32)
        grain *= 3.0
        for c in range(3):
            plane = base[c] + slope[c, 0] * (y - 0.5) + slope[c, 1] * (x - 0.5) + grain[..., c]
            for amplitude, (fy, fx), phase in waves[3 * c : 3 * c + 3]:
                plane += amplitude * np.sin(2 * math.pi * (fy * y + fx * x) + phase)
            out[top : top + rows, :, c] = np.clip(plane, 0, 255)
    return out


def write_image(path: Path, rgb: np.ndarray, fmt: str) -> Path:
    """``rgb`` saved as PNG (fast compression) or JPEG 90 at ``path``."""
    params = {"png": [cv2.IMWRITE_PNG_COMPRESSION, 1], "jpeg": [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]}.get(fmt)
    if params is None:
        raise InputError(f"format must be one of {FORMATS}, not {fmt!r}")
    ok, data = cv2.imencode(".png" if fmt == "png" else ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise InputError(f"cannot encode a {rgb.shape} image as {fmt}")
    Path(path).write_bytes(data.tobytes())
    return Path(path)


def inspect_one(path: Path) -> dict:
    """In this process: inspect a small image (models loaded), then ``path``; peak RSS before and after, seconds."""
    from synthguard.core.home import Home  # noqa: PLC0415
    from synthguard.detect.context import InspectionContext, inspect_file  # noqa: PLC0415
    cv2.setNumThreads(1)  # as a verify worker runs
    with tempfile.TemporaryDirectory() as tmp:
        warm = write_image(Path(tmp) / "warm.png", photo_like(256, 256, seed=1), "png")
        with InspectionContext.build(Home(Path(tmp) / "home"), ledger=False, threads=1) as context:
            inspect_file(warm, context)
            baseline = peak_rss_mb()
            start = time.perf_counter()
            inspection = inspect_file(path, context)
            seconds = time.perf_counter() - start
    return {"baseline_rss_mb": round(baseline, 1), "peak_rss_mb": round(peak_rss_mb(), 1),
            "seconds": round(seconds, 2), "verdict": inspection.verdict.label}


def _in_process(args: list[str], what: str, timeout_s: float) -> str:
    """The last line this module prints, run with ``args`` in a fresh Python process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "synthguard.bench.image_memory_bench", *args],
                          capture_output=True, text=True, timeout=timeout_s, check=False, env=env)
    if done.returncode != 0:
        raise InputError(f"{what} failed in its process (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    return done.stdout.strip().splitlines()[-1]


def measure_file(path: Path, *, timeout_s: float = 1800.0) -> dict:
    """``inspect_one(path)`` in a fresh Python process (so no earlier image's peak counts)."""
    return json.loads(_in_process([_CHILD_FLAG, str(path)], f"inspecting {path}", timeout_s))


def make_files(folder: Path, megapixels: float, formats: tuple[str, ...], seed: int) -> list[Path]:
    """In this process: the photo-like image of ``megapixels`` written in each format into ``folder``."""
    height, width = photo_size(megapixels)
    rgb = photo_like(height, width, seed=seed)
    return [write_image(Path(folder) / f"photo-{megapixels:g}mp.{fmt}", rgb, fmt) for fmt in formats]


def run(sizes_mp: tuple[float, ...] = SIZES_MP, formats: tuple[str, ...] = FORMATS, *, seed: int = 0,
        log=print) -> list[dict]:
    """One row per (size, format): megapixels, sides, file bytes, baseline and peak RSS (MB), seconds, verdict,
    and the stated bound (MB)."""
    from synthguard.core.media import max_pixels  # noqa: PLC0415
    from synthguard.detect.image import peak_memory_bound_mb  # noqa: PLC0415

    budget = max_pixels()
    if any(mp * 1e6 > budget for mp in sizes_mp):
        raise InputError(f"sizes {sizes_mp} MP: each must be at most the pixel budget, {budget / 1e6:g} MP")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mp in sizes_mp:
            height, width = photo_size(mp)
            log(f"making a {width}x{height} image ({height * width / 1e6:.1f} MP)")
            made = _in_process([_MAKE_FLAG, tmp, repr(mp), ",".join(formats), str(seed)], "making the images",
                               1800.0)
            for fmt, path in zip(formats, [Path(p) for p in json.loads(made)], strict=True):
                log(f"inspecting {path.name}")
                measured = measure_file(path)
                rows.append({"megapixels": round(height * width / 1e6, 2), "width": width, "height": height,
                             "format": fmt, "file_bytes": path.stat().st_size, **measured,
                             "bound_mb": peak_memory_bound_mb(height * width)})
                path.unlink()
    return rows


def table(rows: list[dict]) -> str:
    lines = [f"{'MP':>6} {'format':<6} {'file MB':>8} {'baseline MB':>12} {'peak MB':>8} {'bound MB':>9} "
             f"{'seconds':>8}  verdict"]
    for r in rows:
        lines.append(f"{r['megapixels']:>6.1f} {r['format']:<6} {r['file_bytes'] / 1e6:>8.1f} "
                     f"{r['baseline_rss_mb']:>12.0f} {r['peak_rss_mb']:>8.0f} {r['bound_mb']:>9.0f} "
                     f"{r['seconds']:>8.2f}  {r['verdict']}")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == _CHILD_FLAG:
        print(json.dumps(inspect_one(Path(sys.argv[2]))))
    elif len(sys.argv) == 6 and sys.argv[1] == _MAKE_FLAG:
        files = make_files(Path(sys.argv[2]), float(sys.argv[3]), tuple(sys.argv[4].split(",")), int(sys.argv[5]))
        print(json.dumps([str(f) for f in files]))
    else:
        sys.exit(f"usage: python -m synthguard.bench.image_memory_bench {_CHILD_FLAG} IMAGE | {_MAKE_FLAG} FOLDER "
                 "MEGAPIXELS FORMATS SEED")
