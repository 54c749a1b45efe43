"""Forensic pictures: shapes and types, speed, refusals, the up-sampling peak in the spectrum, and bounded memory
(strips equal to the whole image, the spectrum's central window)."""

from __future__ import annotations

import time
import tracemalloc

import cv2
import numpy as np
import pytest

from synthguard.core.samples import procedural_image
from synthguard.detect import forensics
from synthguard.detect.forensics import error_level, noise_residual, spectrum, to_png
from synthguard.errors import InputError
from synthguard.models.detector import to_luma


@pytest.mark.parametrize("channels", [None, 3])
def test_pictures_shape_and_dtype(channels):
    rgb = procedural_image(200, 120, seed=1)
    image = rgb if channels else rgb[..., 0]
    for picture in (spectrum(image), noise_residual(image)):
        assert picture.dtype == np.uint8 and picture.shape == (120, 200)
    ela = error_level(image)
    assert ela.dtype == np.uint8 and ela.shape == image.shape
    assert to_png(ela).startswith(b"\x89PNG")


def test_pictures_refuse_bad_input():
    for bad in (np.zeros((64, 64), np.float64), np.zeros((16, 64), np.uint8)):
        for picture in (spectrum, noise_residual, error_level):
            with pytest.raises(InputError):
                picture(bad)
    with pytest.raises(InputError):
        to_png(np.zeros((8, 8), np.float32))


def _replica_peak(image: np.ndarray) -> float:
    """How far the brightest 0.5 % of the spectrum's outer band (where 2x up-sampling puts the replicas of the
    low frequencies: around +-N/2) stands above the spectrum's median."""
    s = spectrum(image).astype(float)
    band = np.concatenate([s[:, :16].ravel(), s[:, -16:].ravel(), s[:16].ravel(), s[-16:].ravel()])
    return float(np.percentile(band, 99.5) - np.median(s))


@pytest.mark.parametrize("seed", [0, 1])
def test_spectrum_shows_the_upsampling_replica(seed):
    original = to_luma(procedural_image(256, 256, seed=seed))
    upsampled = cv2.resize(to_luma(procedural_image(128, 128, seed=seed)), (256, 256), interpolation=cv2.INTER_CUBIC)
    assert _replica_peak(upsampled) > _replica_peak(original) + 20


def test_pictures_are_fast_at_512():
    image = procedural_image(512, 512, seed=0)
    for picture in (spectrum, noise_residual, error_level):
        picture(image)
        start = time.perf_counter()
        picture(image)
        assert time.perf_counter() - start < 0.05, picture.__name__


@pytest.mark.parametrize("shape", [(517, 301), (200, 120), (96, 1000)])
@pytest.mark.parametrize("channels", [None, 3])
def test_residual_and_error_level_in_strips_equal_the_whole_image(monkeypatch, shape, channels):
    rgb = procedural_image(shape[1], shape[0], seed=3)
    image = rgb if channels else rgb[..., 0]
    monkeypatch.setattr(forensics, "STRIP_PIXELS", 1 << 40)  # one strip: the image whole
    whole = noise_residual(image), error_level(image)
    monkeypatch.setattr(forensics, "STRIP_PIXELS", 4000)  # strips of a few rows, cut inside JPEG blocks' reach
    strips = noise_residual(image), error_level(image)
    for a, b in zip(whole, strips, strict=True):
        assert a.shape == b.shape and np.array_equal(a, b)


def test_spectrum_of_a_large_image_is_of_its_central_window():
    image = procedural_image(2500, 2100, seed=4)  # (2100, 2500, 3)
    side = forensics.SPECTRUM_MAX_SIDE
    picture = spectrum(image)
    assert picture.shape == (side, side)
    top, left = (2100 - side) // 2, (2500 - side) // 2
    assert np.array_equal(picture, spectrum(image[top:top + side, left:left + side]))
    assert spectrum(image[:300, :2500]).shape == (300, side)


def test_pictures_of_a_12_megapixel_image_stay_within_their_memory():
    # Besides the picture returned, at most the spectrum's window and one strip's intermediates are held.
    image = np.random.default_rng(5).integers(0, 256, (3000, 4000, 3), dtype=np.uint8)
    limits = {spectrum: 120e6, noise_residual: 12e6 + 30e6, error_level: 36e6 + 50e6}
    for picture, limit in limits.items():
        tracemalloc.start()
        try:
            picture(image)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < limit, (picture.__name__, peak)
