"""The image signals: the watermark of a file (refused for what is not an image, skipped for what is too small),
and the classifier under a policy's threshold or the detector's own."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from synthguard.core.samples import procedural_image
from synthguard.detect.image import load_detector, score_classifier, score_watermark, score_watermark_file
from synthguard.errors import InputError
from synthguard.watermark import default_image_watermarker
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
