"""Generate responsibly: a generator's images, each watermarked, signed (trainedAlgorithmicMedia + model assertion +
soft binding) and recorded in the ledger, written atomically into a folder.

The CLI's ``generate`` is a thin layer over :func:`generate_and_stamp`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from synthguard.errors import Hint, InputError, WatermarkError
from synthguard.provenance.manifest import DigitalSourceType, ManifestSpec, ModelInfo
from synthguard.stamp import Stamper, StampResult

FORMATS = {"png": ("image/png", ".png"), "jpeg": ("image/jpeg", ".jpg"), "webp": ("image/webp", ".webp")}


@dataclass(frozen=True)
class GenerateReport:
    files: list[StampResult]
    model: str
    version: str
    config_hash: str
    device: str
    # Seconds of work per stage: "model" (generation), "watermark" (summed over marking threads), "sign".
    seconds: dict = field(default_factory=dict)
    wall_seconds: float = 0.0

    @property
    def images_per_second(self) -> float:
        return len(self.files) / self.wall_seconds if self.wall_seconds else float("nan")

    def to_dict(self) -> dict:
        total = sum(self.seconds.values())
        return {"model": self.model, "version": self.version, "config_hash": self.config_hash,
                "device": self.device, "images": len(self.files), "seconds": self.seconds,
                "wall_seconds": self.wall_seconds,
                "stage_share": {k: (v / total if total else None) for k, v in self.seconds.items()},
                "images_per_second": self.images_per_second, "files": [f.to_dict() for f in self.files]}


def output_paths(folder: Path, prefix: str, seeds: list[int], ext: str, overwrite: bool) -> list[Path]:
    paths = [folder / f"{prefix}-{seed:06d}{ext}" for seed in seeds]
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        raise InputError(f"{existing[0]} already exists ({len(existing)} of the outputs do)", hint=Hint.OVERWRITE)
    return paths


def _check_markable(images: list[np.ndarray], stamper: Stamper) -> None:
    if stamper.watermarker is None or not images:
        return
    height, width = images[0].shape[:2]
    if min(height, width) < 128:
        raise WatermarkError(f"the images are {width}x{height}, too small for the watermark (short side >= 128 px): "
                             "generate at 128 px or more (the default is 256)", hint=Hint.NO_WATERMARK)


def generate_and_stamp(generator, n: int, seed: int, folder: Path, stamper: Stamper, *, fmt: str = "png",
                       device: str = "auto", batch_size: int = 64, overwrite: bool = False, workers: int = 2,
                       progress: Callable[[int], None] | None = None) -> GenerateReport:
    """Generate ``n`` images from ``seed`` and stamp each into ``folder`` as ``<model>-<seed>.<ext>``."""
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if n <= 0:
        raise InputError(f"n must be a positive number of images, got {n}")
    mime, ext = FORMATS[fmt]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    prefix = generator.name.rsplit("/", 1)[-1]
    paths = output_paths(folder, prefix, [seed + i for i in range(n)], ext, overwrite)
    start = time.perf_counter()
    result = generator.generate(n, seed, batch_size=batch_size, device=device)
    model_seconds = time.perf_counter() - start
    _check_markable(result.images, stamper)
    # Every manifest states the model and how to remake its image; the per-image seed replaces the seed list.
    shared = {k: v for k, v in result.parameters.items() if k != "image_seeds"}
    specs = [ManifestSpec(title=path.name, digital_source_type=DigitalSourceType.TRAINED_ALGORITHMIC_MEDIA,
                          model=ModelInfo(result.model, result.version, config_hash=result.config_hash,
                                          seed=seed + i, parameters=shared))
             for i, path in enumerate(paths)]
    stamping = time.perf_counter()
    files = stamper.stamp_many(result.images, paths, specs, mime=mime, overwrite=overwrite, workers=workers,
                               progress=progress)
    return GenerateReport(files, result.model, result.version, result.config_hash,
                          str(result.parameters.get("device", device)), _stage_seconds(model_seconds, files),
                          wall_seconds=model_seconds + time.perf_counter() - stamping)


def interpolate_and_stamp(generator, a: str, b: str, steps: int, folder: Path, stamper: Stamper, *,
                          fmt: str = "png", overwrite: bool = False, workers: int = 2,
                          progress: Callable[[int], None] | None = None) -> GenerateReport:
    """The VAE's latent morph from ``a`` to ``b`` (two seeds, or two image files), ``steps`` stamped images."""
    from synthguard.core.media import decode_image  # noqa: PLC0415
    from synthguard.generate.backends import VAEGenerator  # noqa: PLC0415

    if not isinstance(generator, VAEGenerator):
        raise InputError("interpolation needs the VAE backend: a GAN has no encoder", hint=Hint.NEEDS_VAE)
    mime, ext = FORMATS[fmt]
    start = time.perf_counter()
    if a.isdigit() and b.isdigit():
        images = generator.interpolate_seeds(int(a), int(b), steps)
        how = {"between_seeds": [int(a), int(b)], "path": "slerp"}
    else:
        ends = [decode_image(Path(p), keep_rgb=True).rgb for p in (a, b)]
        images = generator.interpolate(ends[0], ends[1], steps)
        how = {"between_images": [Path(a).name, Path(b).name], "path": "lerp of posterior means"}
    model_seconds = time.perf_counter() - start
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = output_paths(folder, "interp", list(range(steps)), ext, overwrite)
    specs = [ManifestSpec(title=path.name, digital_source_type=DigitalSourceType.TRAINED_ALGORITHMIC_MEDIA,
                          model=ModelInfo(generator.name, generator.version, config_hash=generator.config_hash,
                                          parameters={**how, "step": i, "steps": steps}))
             for i, path in enumerate(paths)]
    stamping = time.perf_counter()
    files = stamper.stamp_many(images, paths, specs, mime=mime, overwrite=overwrite, workers=workers,
                               progress=progress)
    return GenerateReport(files, generator.name, generator.version, generator.config_hash, "cpu",
                          _stage_seconds(model_seconds, files),
                          wall_seconds=model_seconds + time.perf_counter() - stamping)


def _stage_seconds(model_seconds: float, files: list[StampResult]) -> dict:
    """Seconds of work per stage (marking runs on several threads, so these may add up to more than the wall)."""
    return {"model": model_seconds, "watermark": sum(f.seconds.get("watermark", 0.0) for f in files),
            "sign": sum(f.seconds.get("sign", 0.0) for f in files)}
