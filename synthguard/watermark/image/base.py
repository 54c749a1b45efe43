"""The interface every SynthGuard image watermark implements, and the result a detector returns."""

from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WatermarkResult:
    """What a detector found in one image.

    Attributes
    ----------
    detected
        True only when the decoded payload passes the check (``p_value`` below the detector's threshold).
    payload
        The data bytes when detected, else None.
    bit_errors
        Channel bits the error-correcting code corrected (None when nothing decoded).
    confidence
        ``1 - p_value``.
    p_value
        Probability that an unmarked image yields a decode this good by chance, including the multiple-testing
        factor of the synchronisation search.
    algorithm
        ``io.synthguard.<name>.<version>``.
    """

    detected: bool
    payload: bytes | None
    bit_errors: int | None
    confidence: float
    p_value: float
    algorithm: str


class ImageWatermarker(abc.ABC):
    """An invisible image watermark carrying ``payload_bytes`` bytes.

    ``embed`` takes and returns uint8 (H, W) grey or (H, W, 3) RGB arrays of the same shape; ``detect`` never
    raises for an unmarked image, it returns ``detected=False``.
    """

    name: str
    version: str
    payload_bytes: int

    @property
    def algorithm_id(self) -> str:
        return f"io.synthguard.{self.name}.{self.version}"

    @abc.abstractmethod
    def embed(self, image: np.ndarray, payload: bytes) -> np.ndarray:
        """Return a marked copy of ``image`` carrying ``payload`` (exactly ``payload_bytes`` bytes)."""

    @abc.abstractmethod
    def detect(self, image: np.ndarray) -> WatermarkResult:
        """Look for the watermark in ``image`` and decode its payload."""

    def fresh(self) -> ImageWatermarker | None:
        """An independent instance with the same settings, for use on another thread, or None when this watermark
        cannot make one (callers then stay on one thread). Instances need not be thread-safe themselves."""
        return None

    def estimate_payload_bits(self, image: np.ndarray) -> np.ndarray | None:
        """Best-effort hard decisions on the payload bits, without any detection claim.

        For benchmarks' bit-accuracy figures: unlike ``detect`` this always answers for a watermark that can, even
        when nothing would pass the detection threshold, and says nothing about whether a mark is present.

        Returns
        -------
        numpy.ndarray or None
            ``8 * payload_bytes`` values in {0, 1} (uint8, most significant bit of each byte first), or None when
            this watermark offers no such estimate (the default).
        """
        return None
