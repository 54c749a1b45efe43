"""Batch-verification throughput: files per second for a folder of 512 px images with 1 and N workers, and
whether memory stays flat (peak RSS after a short and after the full run, per process kind)."""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from synthguard.core.samples import procedural_image
from synthguard.policy import Policy


def make_folder(folder: Path, n: int, size: int = 512, seed: int = 0) -> list[Path]:
    """``n`` distinct PNG images (photo crops when scikit-image is there, else procedural images)."""
    rng = np.random.default_rng(seed)
    try:
        import skimage.data  # noqa: PLC0415

        sources = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea(), skimage.data.rocket()]
    except ImportError:
        sources = []
    paths = []
    for i in range(n):
        if sources:
            src = sources[i % len(sources)]
            side = int(rng.integers(size // 2, min(src.shape[:2]) + 1))
            y, x = rng.integers(0, src.shape[0] - side + 1), rng.integers(0, src.shape[1] - side + 1)
            image = cv2.resize(src[y : y + side, x : x + side], (size, size), interpolation=cv2.INTER_AREA)
        else:
            image = procedural_image(size, size, seed=seed + i)
        path = folder / f"img-{i:05d}.png"
        cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        paths.append(path)
    return paths


def _rss_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024.0  # KiB on Linux


def run(n: int, workers: list[int], policy: Policy, home: Path, log=print) -> dict:
    from synthguard.desk.batch import VerifySettings, verify  # noqa: PLC0415

    out: dict = {"files": n, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "inbox"
        folder.mkdir()
        log(f"writing {n} images of 512 px")
        make_folder(folder, n)
        settings = VerifySettings(policy=policy, home=home, use_ledger=False)
        for w in workers:
            start = time.perf_counter()
            result = verify([folder], settings, workers=w, audit=False, jsonl=Path(tmp) / f"w{w}.jsonl")
            seconds = time.perf_counter() - start
            out["runs"].append({"workers": w, "seconds": round(seconds, 2), "files_per_second": round(n / seconds, 2),
                                "errors": result.errors,
                                "peak_rss_mb_main": round(_rss_mb(resource.RUSAGE_SELF), 1),
                                "peak_rss_mb_workers": round(_rss_mb(resource.RUSAGE_CHILDREN), 1)})
            log(f"{w} worker(s): {n / seconds:.1f} files/s")
        same = len({(Path(tmp) / f"w{w}.jsonl").read_bytes() for w in workers}) == 1
        out["identical_jsonl_across_workers"] = same
    return out
