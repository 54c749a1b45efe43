"""Audio watermarks: the interface (``base``), SynthGuard's own mark (``bandmark``: BandMark) and the attack suite
(``attacks``)."""

from synthguard.watermark.audio.bandmark import MIN_SECONDS, BandMarkWatermarker
from synthguard.watermark.audio.base import AudioWatermarker, WatermarkResult


def default_audio_watermarker() -> AudioWatermarker:
    """The audio watermarker SynthGuard embeds and detects with by default (BandMark, io.synthguard.bandmark.1)."""
    return BandMarkWatermarker()


__all__ = ["MIN_SECONDS", "AudioWatermarker", "BandMarkWatermarker", "WatermarkResult", "default_audio_watermarker"]
