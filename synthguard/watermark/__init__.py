"""Invisible image watermarking: the interface, SynthGuard's own TileMark algorithm and the attack suite."""

from synthguard.watermark.image.base import ImageWatermarker, WatermarkResult
from synthguard.watermark.image.tilemark import TileMarkWatermarker


def default_image_watermarker() -> ImageWatermarker:
    """The image watermarker SynthGuard embeds and detects with by default."""
    return TileMarkWatermarker()


__all__ = ["ImageWatermarker", "TileMarkWatermarker", "WatermarkResult", "default_image_watermarker"]
