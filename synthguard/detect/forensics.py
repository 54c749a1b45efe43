"""Forensic pictures for a person to look at: evidence to weigh, never a verdict on their own.

- ``spectrum``: the centred log-magnitude of the luma's 2-D FFT. Up-sampling (and the transposed convolutions of
  GAN generators) copies the spectrum into periodic replicas, seen as bright peaks or grid lines away from the
  centre (Durall et al. 2020, "Watch your up-convolution"; Frank et al. 2020).
- ``noise_residual``: the image minus a denoised copy of itself (a 3x3 median), amplified: sensor noise of a camera
  looks like even grain, synthesis or editing often leaves smooth or patterned areas.
- ``error_level``: error-level analysis (Krawetz 2007): the difference to a JPEG quality-90 re-save, amplified;
  regions compressed differently from the rest stand out. On an image saved once at one quality, ELA is even.

All take a uint8 (H, W) grey or (H, W, 3) RGB image of at least 32x32 and return a uint8 picture in a few
milliseconds at 512 px; ``to_png`` encodes one for a report. Memory stays bounded on images near the pixel budget:
the spectrum is of the central window of at most SPECTRUM_MAX_SIDE x SPECTRUM_MAX_SIDE pixels (at the image's own
resolution, where resampling traces are; the whole image when it is no larger), and the residual and the error
level are computed in strips of about STRIP_PIXELS pixels, exactly as on the whole image, so that besides the
picture returned only one strip's intermediates are held.
"""

from __future__ import annotations

import cv2
import numpy as np

from synthguard.errors import InputError
from synthguard.models.detector import to_luma

SPECTRUM_MAX_SIDE = 2048
STRIP_PIXELS = 1 << 20
_JPEG_BLOCK = 16  # the largest JPEG coding unit (a 4:2:0 MCU): strips cut on it re-encode as the whole image does


def spectrum(image: np.ndarray) -> np.ndarray:
    """(h, w) uint8: log(1 + |FFT(luma)|), zero frequency at the centre, stretched to 0..255, of the image's
    central window of at most SPECTRUM_MAX_SIDE a side (h, w: the window's sides; the image's own when smaller).

    A Hann window first, so the image's borders (which wrap around in the FFT) do not paint a bright cross over
    the peaks we look for.
    """
    to_luma(image)  # the same input checks as every other picture
    height, width = image.shape[:2]
    h, w = min(height, SPECTRUM_MAX_SIDE), min(width, SPECTRUM_MAX_SIDE)
    top, left = (height - h) // 2, (width - w) // 2
    luma = to_luma(image[top : top + h, left : left + w]).astype(np.float32)
    luma -= luma.mean()
    luma *= cv2.createHanningWindow((w, h), cv2.CV_32F)  # (h, w)
    # OpenCV's float32 DFT: several times faster than numpy's float64 one, which matters at 512 px and up.
    planes = cv2.dft(luma, flags=cv2.DFT_COMPLEX_OUTPUT)  # (h, w, 2): real, imaginary
    del luma
    magnitude = cv2.magnitude(planes[..., 0], planes[..., 1])  # (h, w)
    del planes
    magnitude = np.fft.fftshift(magnitude)
    return _stretch(np.log1p(magnitude, out=magnitude))


def _strips(height: int, width: int, align: int = 1):
    """(top, bottom) row ranges covering ``height`` rows of about STRIP_PIXELS pixels each, cut on ``align``."""
    step = max(align, (STRIP_PIXELS // max(width, 1)) // align * align)
    for top in range(0, height, step):
        yield top, min(height, top + step)


def noise_residual(image: np.ndarray, *, gain: float = 8.0) -> np.ndarray:
    """(H, W) uint8: 128 + gain * (luma - median3x3(luma)), saturated; mid-grey where there is no noise."""
    to_luma(image)
    height, width = image.shape[:2]
    out = np.empty((height, width), np.uint8)
    for top, bottom in _strips(height, width):
        # One row more on each side inside the image: the median sees the neighbours it sees on the whole image
        # (and OpenCV's replicated border at the image's own edges).
        lo, hi = max(0, top - 1), min(height, bottom + 1)
        luma = _rows_luma(image[lo:hi])
        residual = luma.astype(np.float32) - cv2.medianBlur(luma, 3).astype(np.float32)
        out[top:bottom] = np.clip(128 + gain * residual, 0, 255).astype(np.uint8)[top - lo : top - lo + bottom - top]
    return out


def _rows_luma(rows: np.ndarray) -> np.ndarray:
    """The luma of a strip of rows of a checked image (which may be shorter than a picture's minimum side)."""
    if rows.ndim == 3 and rows.shape[2] == 1:
        rows = rows[..., 0]
    return rows if rows.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(rows), cv2.COLOR_RGB2GRAY)


def error_level(image: np.ndarray, *, quality: int = 90, gain: float = 15.0) -> np.ndarray:
    """Same shape as the image (grey or RGB), uint8: gain * |image - JPEG(image, quality)|, saturated."""
    to_luma(image)  # the same input checks as every other picture
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if not 1 <= quality <= 100:
        raise InputError(f"JPEG quality must be in 1..100, not {quality!r}")
    height, width = image.shape[:2]
    out = np.empty(image.shape, np.uint8)
    for top, bottom in _strips(height, width, _JPEG_BLOCK):
        # A coding unit more on each side: the decoder's chroma upsampling reads the neighbouring units, and the
        # strip then starts on the whole image's block grid, so its blocks are coded exactly as there.
        lo, hi = max(0, top - _JPEG_BLOCK), min(height, bottom + _JPEG_BLOCK)
        rows = image[lo:hi]
        resaved = _jpeg_round_trip(rows, quality)
        diff = cv2.absdiff(np.ascontiguousarray(rows), resaved)[top - lo : top - lo + bottom - top]
        out[top:bottom] = np.clip(gain * diff.astype(np.float32), 0, 255).astype(np.uint8)
    return out


def _jpeg_round_trip(rows: np.ndarray, quality: int) -> np.ndarray:
    bgr = rows if rows.ndim == 2 else cv2.cvtColor(rows, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise InputError(f"cannot JPEG-encode an image of shape {rows.shape}")
    resaved = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    return resaved if rows.ndim == 2 else cv2.cvtColor(resaved, cv2.COLOR_BGR2RGB)


def to_png(picture: np.ndarray) -> bytes:
    """PNG bytes of a uint8 (H, W) or (H, W, 3) RGB picture."""
    if picture.dtype != np.uint8 or picture.ndim not in (2, 3) or (picture.ndim == 3 and picture.shape[2] != 3):
        raise InputError(f"a picture must be uint8 (H, W) or (H, W, 3), not {picture.dtype} {picture.shape}")
    ok, data = cv2.imencode(".png", picture if picture.ndim == 2 else cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    if not ok:
        raise InputError(f"cannot PNG-encode a picture of shape {picture.shape}")
    return data.tobytes()


def _stretch(values: np.ndarray) -> np.ndarray:
    low, high = float(values.min()), float(values.max())
    return ((values - low) * (255.0 / max(high - low, 1e-12))).astype(np.uint8)
