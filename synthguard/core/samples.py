"""Built-in content that needs no download: procedural images (IPTC ``algorithmicMedia``), seeded."""

from __future__ import annotations

import numpy as np


def procedural_image(width: int, height: int, seed: int = 0) -> np.ndarray:
    """An (H, W, 3) uint8 image: interfering colour waves plus fine grain, like a photo's mix of smooth areas and
    texture (so encoders and file sizes behave as they do on real pictures, unlike pure noise)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    x /= max(width, height)
    y /= max(width, height)
    img = np.zeros((height, width, 3), np.float32)
    for channel in range(3):
        for _ in range(4):
            fx, fy = rng.uniform(-12, 12, size=2)
            phase = rng.uniform(0, 2 * np.pi)
            img[..., channel] += np.sin(2 * np.pi * (fx * x + fy * y) + phase)
    img = (img - img.min()) / (np.ptp(img) + 1e-6) * 220 + 18
    img += rng.normal(0, 3.0, size=img.shape).astype(np.float32)  # sensor-like grain
    return np.clip(img, 0, 255).astype(np.uint8)
