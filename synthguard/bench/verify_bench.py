"""Batch-verification throughput: files per second for a folder of 512 px images with 1 and N workers, with the
local engine (processes) and the Ray engine (an actor pool), whether memory stays flat (peak RSS per process) and
whether every run wrote the same JSONL."""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from synthguard.core.samples import procedural_image
from synthguard.errors import InputError
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


ENGINES = ("local", "ray")


def run(n: int, workers: list[int], policy: Policy, home: Path, log=print, engines: tuple[str, ...] = ("local",),
        address: str | None = None) -> dict:
    """Verify one folder of ``n`` images with each engine at each of ``workers`` (processes for "local", the actor
    pool for "ray"); files per second, peak memory per worker or actor, and whether every run wrote the same JSONL.

    Ray's start-up (starting or joining the cluster, once for all its runs) is timed apart: each Ray run gives files
    per second without it (``files_per_second``) and with it (``files_per_second_with_start``)."""
    from synthguard.desk.batch import VerifySettings, verify  # noqa: PLC0415

    unknown = [e for e in engines if e not in ENGINES]
    if unknown or not engines:
        raise InputError(f"engines: choose from {', '.join(ENGINES)}, not {', '.join(unknown) or 'none'}")
    out: dict = {"files": n, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "inbox"
        folder.mkdir()
        log(f"writing {n} images of 512 px")
        make_folder(folder, n)
        settings = VerifySettings(policy=policy, home=home, use_ledger=False)
        outputs: dict[str, list[Path]] = {e: [] for e in engines}
        if "local" in engines:
            for w in workers:
                jsonl = Path(tmp) / f"w{w}.jsonl"
                start = time.perf_counter()
                result = verify([folder], settings, workers=w, audit=False, jsonl=jsonl)
                seconds = time.perf_counter() - start
                outputs["local"].append(jsonl)
                out["runs"].append({"engine": "local", "workers": w, "seconds": round(seconds, 2),
                                    "files_per_second": round(n / seconds, 2), "errors": result.errors,
                                    "peak_rss_mb_main": round(_rss_mb(resource.RUSAGE_SELF), 1),
                                    "peak_rss_mb_workers": round(_rss_mb(resource.RUSAGE_CHILDREN), 1),
                                    "peak_mb_per_worker": list(result.worker_peak_mb)})
                log(f"{w} worker(s): {n / seconds:.1f} files/s")
        if "ray" in engines:
            out["ray"] = _ray_runs(folder, Path(tmp), n, workers, settings, address, out["runs"], outputs["ray"], log)
        if "local" in engines:
            out["identical_jsonl_across_workers"] = len({p.read_bytes() for p in outputs["local"]}) == 1
        every = [p for paths in outputs.values() for p in paths]
        out["identical_jsonl_across_runs"] = len({p.read_bytes() for p in every}) == 1
    return out


def _ray_runs(folder: Path, tmp: Path, n: int, workers: list[int], settings, address: str | None, runs: list,
              outputs: list[Path], log) -> dict:
    """The Ray runs, all on one session (started or joined once, timed apart); the session's description."""
    from synthguard.core.ray_cluster import ray_session  # noqa: PLC0415
    from synthguard.desk.batch import verify  # noqa: PLC0415

    start = time.perf_counter()
    # A local instance gets as many CPUs as the largest pool, so that every pool asked for is placed.
    with ray_session(address, num_cpus=None if address else max(workers)) as cluster:
        ray_start = time.perf_counter() - start
        log(f"Ray start-up: {ray_start:.1f} s ({'; '.join(cluster.describe())})")
        for w in workers:
            jsonl = tmp / f"ray{w}.jsonl"
            begin = time.perf_counter()
            result = verify([folder], settings, workers=w, audit=False, jsonl=jsonl, engine="ray")
            seconds = time.perf_counter() - begin
            outputs.append(jsonl)
            plan = result.ray.plan
            runs.append({"engine": "ray", "workers": plan.pool, "seconds": round(seconds, 2),
                         "files_per_second": round(n / seconds, 2),
                         "files_per_second_with_start": round(n / (seconds + ray_start), 2),
                         "errors": result.errors, "accelerator": plan.accelerator.value,
                         "peak_mb_per_actor": list(result.worker_peak_mb)})
            log(f"ray, {plan.pool} actor(s): {n / seconds:.1f} files/s "
                f"({n / (seconds + ray_start):.1f} with the start-up)")
    return {"start_seconds": round(ray_start, 2), "cluster": cluster.to_dict()}
