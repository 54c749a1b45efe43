"""The image signals: the watermark of a file (refused for what is not an image, skipped for what is too small),
and the classifier under a policy's threshold or the detector's own; on large images, the same results from bounded
memory, and the stated bound on a worker's peak."""

from __future__ import annotations

import tracemalloc

import cv2
import numpy as np
import pytest
from PIL import Image
from threadpoolctl import threadpool_limits

from synthguard.core.media import DEFAULT_MAX_PIXELS
from synthguard.core.samples import procedural_image
from synthguard.detect.image import (
    ANALYSIS_BYTES_PER_PIXEL,
    ANALYSIS_FIXED_MB,
    DECODE_PEAK_BYTES_PER_PIXEL,
    PEAK_MEMORY_BOUND_MB,
    WORKER_BASE_MB,
    load_detector,
    peak_memory_bound_mb,
    score_classifier,
    score_watermark,
    score_watermark_file,
)
from synthguard.errors import InputError
from synthguard.models.detector import extract_patches, thumbnail, to_luma
from synthguard.watermark import default_image_watermarker
from synthguard.watermark.image import tilemark
from synthguard.watermark.payload import Payload


def test_watermark_of_a_file(tmp_path):
    wm = default_image_watermarker()
    marked = tmp_path / "m.png"
    payload = Payload.new(True, None).to_bytes()
    Image.fromarray(wm.embed(procedural_image(256, 256, seed=1), payload)).save(marked)
    found = score_watermark_file(marked, wm)
    assert found.detected and found.payload == payload.hex() and found.ai_declared is True
    assert score_watermark(procedural_image(256, 256, seed=1), wm).detected is False
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (8, 8)).save(tiny)
    assert score_watermark_file(tiny, wm).skipped
    note = tmp_path / "n.txt"
    note.write_text("words")
    with pytest.raises(InputError, match="not an image"):
        score_watermark_file(note, wm)


def test_classifier_threshold_is_the_detectors_unless_a_policy_gives_one():
    detector = load_detector(num_threads=1)
    pixels = procedural_image(128, 128, seed=2)
    own = score_classifier(pixels, detector)
    assert own.threshold == detector.calibration.threshold and own.threshold_fpr is not None
    assert own.heatmap is not None and 0 <= own.probability <= 1
    strict = score_classifier(pixels, detector, 1e-6)
    assert strict.threshold == 1e-6 and strict.threshold_fpr is None and strict.synthetic
    assert score_classifier(np.zeros((8, 8, 3), np.uint8), detector).skipped


def _photo(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth picture with grain at any size: a procedural image area-resized, plus seeded noise."""
    base = cv2.resize(procedural_image(256, 192, seed=seed), (width, height), interpolation=cv2.INTER_CUBIC)
    grain = np.random.default_rng(seed).integers(-3, 4, (height, width, 3), dtype=np.int16)
    return np.clip(base + grain, 0, 255).astype(np.uint8)


def test_classifier_reads_the_windows_it_needs_as_the_whole_luma_gives_them():
    detector = load_detector(num_threads=1)
    patch, size = detector.model.config, detector.global_model.config.size
    for image in (_photo(3000, 4000, 1), _photo(4001, 2999, 2), _photo(300, 40, 3), procedural_image(50, 40, seed=4)):
        luma = to_luma(image)
        patches, grid = extract_patches(luma, patch.patch_size, patch.max_grid)
        with threadpool_limits(limits=1, user_api="blas"):  # as the detector scores: one BLAS thread
            logits = detector.model(patches.astype(np.float32) / np.float32(255)).astype(np.float64)
            g = float(detector.global_model(thumbnail(luma, size)[None].astype(np.float32) / np.float32(255))[0])
        assert np.array_equal(detector.scores(image), np.array([logits.mean(), g]))
        assert detector.score(image).heatmap.shape == grid


def test_watermark_of_a_large_image_read_in_strips_equals_the_whole_read(monkeypatch):
    wm = default_image_watermarker()
    payload = Payload.new(True, None).to_bytes()
    # Wide and tall: the strips run across the long side.
    for (h, w), (height, width) in (((768, 1024), (3000, 4000)), ((1024, 768), (4000, 3000))):
        image = cv2.resize(wm.embed(_photo(h, w, 5), payload), (width, height), interpolation=cv2.INTER_CUBIC)
        strips = score_watermark(image, wm)
        monkeypatch.setattr(tilemark, "DIRECT_PIXELS", 1 << 40)
        whole = score_watermark(image, wm)
        monkeypatch.undo()
        assert strips.detected and strips.payload == payload.hex()
        assert (strips.payload, strips.bit_errors) == (whole.payload, whole.bit_errors)
        assert strips.p_value == pytest.approx(whole.p_value, rel=1e-3)


def test_image_signals_of_a_12_megapixel_image_stay_within_their_memory():
    # The decoded pixels are the caller's. The watermark reads them in strips: besides its geometry search's own
    # buffers (about 35 MB at any size) it holds one strip, not the 12 MB luma and its 48 MB float copy; the
    # detector converts only its windows (the central square's luma, 9 MB, is the largest) and adds the numpy
    # network's working buffers for its 16 patches (the largest layer's columns and output, about 12 MB at any
    # image size); a whole-image luma (12 MB) or float copy (48 MB) would not fit.
    image = _photo(3000, 4000, 6)
    wm, detector = default_image_watermarker(), load_detector(num_threads=1)
    for name, signal, limit in (("watermark", lambda: score_watermark(image, wm), 40e6),
                                ("classifier", lambda: score_classifier(image, detector), 23e6)):
        signal()  # the watermarker's and detector's own one-time buffers
        tracemalloc.start()
        try:
            signal()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < limit, (name, peak)


def test_peak_memory_bound_follows_the_pixel_budget(monkeypatch):
    assert peak_memory_bound_mb(DEFAULT_MAX_PIXELS) == PEAK_MEMORY_BOUND_MB
    assert peak_memory_bound_mb(0) == WORKER_BASE_MB + ANALYSIS_FIXED_MB
    assert peak_memory_bound_mb(50_000_000) < peak_memory_bound_mb(100_000_000)
    per_pixel = max(DECODE_PEAK_BYTES_PER_PIXEL, ANALYSIS_BYTES_PER_PIXEL)
    assert peak_memory_bound_mb(2**20) == WORKER_BASE_MB + ANALYSIS_FIXED_MB + per_pixel
    monkeypatch.setenv("SYNTHGUARD_MAX_PIXELS", "25000000")
    assert peak_memory_bound_mb() == peak_memory_bound_mb(25_000_000)
    for bad in (-1, 2.5, True):
        with pytest.raises(InputError):
            peak_memory_bound_mb(bad)
