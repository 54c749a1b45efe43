"""The image signals: SynthGuard's watermark in decoded pixels, and a detector's P(synthetic) with its heatmap; and
the bound on a worker's peak memory while it inspects one image (``peak_memory_bound_mb``).

Memory per image, in bytes per pixel of the decoded image: the decode (``core.media.decode_image``) peaks at
DECODE_PEAK_BYTES_PER_PIXEL; the analyses then hold the decoded RGB (3) and at most the luma of its central square
(the detector's global view, 1); the watermark's working grid, the Stable Diffusion marks and the forensic pictures
are read in strips of about a million pixels (ANALYSIS_FIXED_MB together). ``synthguard bench image-memory``
measures the peak of an inspecting process against this bound.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from synthguard.core.media import DEFAULT_MAX_PIXELS, MediaKind, decode_image, max_pixels, sniff
from synthguard.detect.signals import ClassifierSignal, ImageWatermarkSignal
from synthguard.errors import InputError, WatermarkError
from synthguard.models.detector import PatchDetector
from synthguard.watermark import ImageWatermarker
from synthguard.watermark.payload import declared_ai


def score_watermark(pixels: np.ndarray, watermarker: ImageWatermarker) -> ImageWatermarkSignal:
    """The watermark test of (H, W, 3) uint8 pixels; an image it cannot test gives a signal that says why."""
    try:
        result = watermarker.detect(pixels)
    except (WatermarkError, InputError) as exc:
        return ImageWatermarkSignal(False, watermarker.algorithm_id, skipped=str(exc))
    if not result.detected or result.payload is None:
        return ImageWatermarkSignal(False, result.algorithm, p_value=result.p_value)
    ai = declared_ai(result.payload)
    return ImageWatermarkSignal(True, result.algorithm, result.payload.hex(), result.p_value, result.bit_errors, ai)


def score_watermark_file(path: Path, watermarker: ImageWatermarker) -> ImageWatermarkSignal:
    """The watermark test of an image file; any other file is an input error."""
    if sniff(path).kind is not MediaKind.IMAGE:
        raise InputError(f"{path}: not an image; the image watermark applies to images only")
    return score_watermark(decode_image(path, keep_rgb=True).rgb, watermarker)


def score_classifier(pixels: np.ndarray, detector: PatchDetector, threshold: float | None = None) -> ClassifierSignal:
    """Score decoded pixels; ``threshold`` overrides the detector's calibrated one (a policy's choice)."""
    try:
        result = detector.score(pixels)
    except InputError as exc:
        return ClassifierSignal(detector.name, skipped=str(exc))
    own = threshold is None
    cut = detector.calibration.threshold if own else float(threshold)
    return ClassifierSignal(
        model=detector.name,
        probability=result.probability,
        threshold=cut,
        threshold_fpr=detector.calibration.measured_fpr if own else None,
        synthetic=result.probability >= cut,
        patches=result.patches,
        heatmap=result.heatmap,
    )


def load_detector(folder: Path | None = None, *, num_threads: int | None = None, device: str = "cpu"):
    """The built-in detector (``folder=None``), or one saved by ``synthguard train detector``: a discriminator
    detector (``patch/``, ``global/``) or a backbone probe (``backbone.json``).

    A discriminator detector runs in numpy on ``device="cpu"`` (no torch import) and as torch modules on any other
    device ("cuda", "cuda:N", "mps", "auto"); ``num_threads``: torch's CPU threads (torch runtime, backbone). A
    backbone probe runs its transformers model on the CPU (``device`` must be "cpu")."""
    from synthguard.models.backbone import BACKBONE_FILE, BackboneDetector  # noqa: PLC0415
    from synthguard.models.detector import builtin_detector  # noqa: PLC0415

    if folder is None:
        return builtin_detector(num_threads=num_threads, device=device)
    folder = Path(folder)
    if (folder / BACKBONE_FILE).is_file():
        if device != "cpu":
            raise InputError(f"a backbone detector ({folder}) runs on the CPU only, not on {device!r}")
        return BackboneDetector.from_pretrained(folder, name=str(folder), num_threads=num_threads)
    return PatchDetector.from_pretrained(folder, name=str(folder), num_threads=num_threads, device=device)


# A process that has inspected one small image: the interpreter, numpy / OpenCV, the detector and the watermarker
# loaded (the numpy detector imports no torch; the bound keeps the room torch took when it did).
WORKER_BASE_MB = 480
# core.media.decode_image keeping the RGB of an 8-bit RGB(A) image: Pillow's 4-byte frame and the RGB array, the
# hashed bytes and the conversion going strip by strip.
DECODE_PEAK_BYTES_PER_PIXEL = 7
ANALYSIS_BYTES_PER_PIXEL = 4  # the decoded RGB and the luma of its central square
ANALYSIS_FIXED_MB = 64  # the strips, the working grid's spectra, the detector's patches


def peak_memory_bound_mb(pixels: int | None = None) -> int:
    """A bound, in MiB, on the peak resident memory of a process that inspects images of at most ``pixels`` pixels
    (None: the pixel budget in force, ``core.media.max_pixels``) with the built-in detector: the base, the fixed
    analysis buffers, and the larger of the decode's and the analyses' per-pixel peaks (they do not add up: the
    decode's buffers but the RGB it returns are freed before the analyses start)."""
    pixels = max_pixels() if pixels is None else pixels
    if isinstance(pixels, bool) or not isinstance(pixels, int) or pixels < 0:
        raise InputError(f"pixels must be a non-negative integer, not {pixels!r}")
    per_pixel = max(DECODE_PEAK_BYTES_PER_PIXEL, ANALYSIS_BYTES_PER_PIXEL)
    return math.ceil(WORKER_BASE_MB + ANALYSIS_FIXED_MB + pixels * per_pixel / 2**20)


PEAK_MEMORY_BOUND_MB = peak_memory_bound_mb(DEFAULT_MAX_PIXELS)  # at the default pixel budget
