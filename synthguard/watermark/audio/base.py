"""The interface every SynthGuard audio watermark implements; results are the image watermarks' ``WatermarkResult``
(same fields, same meaning: ``detected`` only below the detector's p-value threshold)."""

from __future__ import annotations

import abc

import numpy as np

from synthguard.watermark.image.base import WatermarkResult

__all__ = ["AudioWatermarker", "WatermarkResult"]


class AudioWatermarker(abc.ABC):
    """An inaudible audio watermark carrying ``payload_bytes`` bytes.

    Samples are float32 in [-1, 1], shape ``(frames,)`` (mono) or ``(frames, channels)``, at any sample rate
    ``rate`` (Hz). ``embed`` returns an array of the same shape, dtype and rate; ``detect`` never raises for an
    unmarked clip, it returns ``detected=False``; both raise ``InputError`` for input they cannot work on (empty,
    non-finite, a rate or length outside what they support).
    """

    name: str
    version: str
    payload_bytes: int

    @property
    def algorithm_id(self) -> str:
        return f"io.synthguard.{self.name}.{self.version}"

    @abc.abstractmethod
    def embed(self, samples: np.ndarray, rate: int, payload: bytes) -> np.ndarray:
        """Return a marked copy of ``samples`` carrying ``payload`` (exactly ``payload_bytes`` bytes)."""

    @abc.abstractmethod
    def detect(self, samples: np.ndarray, rate: int) -> WatermarkResult:
        """Look for the watermark in ``samples`` (any excerpt long enough to hold it) and decode its payload."""

    def estimate_payload_bits(self, samples: np.ndarray, rate: int) -> np.ndarray | None:
        """Best-effort hard decisions on the payload bits (``8 * payload_bytes`` values in {0, 1}, most significant
        bit of each byte first), without any detection claim: for benchmarks' bit-accuracy figures. None when this
        watermark offers no such estimate."""
        return None
