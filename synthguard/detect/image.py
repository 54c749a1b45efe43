"""The image signals: SynthGuard's watermark in decoded pixels, and a detector's P(synthetic) with its heatmap."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from synthguard.core.media import MediaKind, decode_image, sniff
from synthguard.detect.signals import ClassifierSignal, ImageWatermarkSignal
from synthguard.errors import InputError, WatermarkError
from synthguard.models.detector import PatchDetector
from synthguard.watermark import ImageWatermarker
from synthguard.watermark.payload import PAYLOAD_LAYOUT_VERSION, Payload


def score_watermark(pixels: np.ndarray, watermarker: ImageWatermarker) -> ImageWatermarkSignal:
    """The watermark test of (H, W, 3) uint8 pixels; an image it cannot test gives a signal that says why."""
    try:
        result = watermarker.detect(pixels)
    except (WatermarkError, InputError) as exc:
        return ImageWatermarkSignal(False, watermarker.algorithm_id, skipped=str(exc))
    if not result.detected or result.payload is None:
        return ImageWatermarkSignal(False, result.algorithm, p_value=result.p_value)
    payload = Payload.from_bytes(result.payload)
    ai = payload.ai_generated if payload.version == PAYLOAD_LAYOUT_VERSION else None
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


def load_detector(folder: Path | None = None, *, num_threads: int | None = None):
    """The built-in detector (``folder=None``), or one saved by ``synthguard train detector``: a discriminator
    detector (``patch/``, ``global/``) or a backbone probe (``backbone.json``)."""
    from synthguard.models.backbone import BACKBONE_FILE, BackboneDetector  # noqa: PLC0415
    from synthguard.models.detector import builtin_detector  # noqa: PLC0415

    if folder is None:
        return builtin_detector(num_threads=num_threads)
    folder = Path(folder)
    if (folder / BACKBONE_FILE).is_file():
        return BackboneDetector.from_pretrained(folder, name=str(folder), num_threads=num_threads)
    return PatchDetector.from_pretrained(folder, name=str(folder), num_threads=num_threads)
