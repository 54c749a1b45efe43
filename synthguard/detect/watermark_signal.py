"""The watermark signal: is a SynthGuard watermark in this image (and what does its payload say) or this text (and
where), how sure."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from synthguard.errors import InputError, WatermarkError
from synthguard.watermark import ImageWatermarker
from synthguard.watermark.payload import PAYLOAD_LAYOUT_VERSION, Payload


@dataclass(frozen=True)
class WatermarkSignal:
    detected: bool
    algorithm: str
    payload: str | None = None  # hex
    p_value: float = 1.0  # chance that an unmarked image decodes this well (the detector's own union bound)
    bit_errors: int | None = None
    ai_declared: bool | None = None  # the payload's AI bit (SynthGuard payload layout)
    skipped: str | None = None  # why the content could not be tested (image too small, no key...)
    details: dict | None = None  # text watermarks: z, tokens scored, key id, span of the marked passage...

    def to_dict(self) -> dict:
        return asdict(self)


def score_watermark(pixels: np.ndarray, watermarker: ImageWatermarker) -> WatermarkSignal:
    try:
        result = watermarker.detect(pixels)
    except (WatermarkError, InputError) as exc:
        return WatermarkSignal(False, watermarker.algorithm_id, skipped=str(exc))
    if not result.detected or result.payload is None:
        return WatermarkSignal(False, result.algorithm, p_value=result.p_value)
    payload = Payload.from_bytes(result.payload)
    ai = payload.ai_generated if payload.version == PAYLOAD_LAYOUT_VERSION else None
    return WatermarkSignal(True, result.algorithm, result.payload.hex(), result.p_value, result.bit_errors, ai)
