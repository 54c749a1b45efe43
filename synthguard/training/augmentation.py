"""The augmentation every detector training image gets, real and fake alike (so that neither file format nor
resolution is the cue), and the perturbations the evaluation applies."""

from __future__ import annotations

import cv2
import numpy as np

from synthguard.core.torch_utils import resize_image
from synthguard.errors import InputError


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """``image`` re-saved as a JPEG of ``quality`` and decoded again."""
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise InputError(f"JPEG encoding failed for an image of shape {image.shape}")
    return cv2.imdecode(data, cv2.IMREAD_UNCHANGED)


def rescale(image: np.ndarray, factor: float) -> np.ndarray:
    """``image`` resized by ``factor`` (area down, bicubic up), never below 32 px a side."""
    size = (max(32, round(image.shape[0] * factor)), max(32, round(image.shape[1] * factor)))
    return resize_image(image, size)


def augment(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The one augmentation both classes get: with p 0.5 a resize by U(0.5, 1.25) (area down, bicubic up), then
    with p 0.6 a JPEG re-save at quality U(50, 95); a fifth of images come through untouched either way."""
    if rng.random() < 0.5:
        image = rescale(image, rng.uniform(0.5, 1.25))
    if rng.random() < 0.6:
        image = jpeg(image, int(rng.integers(50, 96)))
    return image
