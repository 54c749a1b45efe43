"""The backbone detector at inference: preprocessing from the model's own settings, a probe's score and its saved
form (a tiny randomly initialised CLIP vision tower saved here; fitting the probe is tests/training/)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import tiny_models

from synthguard.core.samples import procedural_image
from synthguard.errors import InputError
from synthguard.models.backbone import BackboneDetector, load_backbone, preprocess
from synthguard.models.detector import Calibration

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    return tiny_models.tiny_clip(tmp_path_factory.mktemp("clip") / "tiny-clip")


def test_preprocess_shape_and_refusals():
    x = preprocess(np.zeros((50, 90), np.uint8), 32, (0.5,) * 3, (0.25,) * 3)
    assert tuple(x.shape) == (1, 3, 32, 32) and float(x.min()) == -2.0
    with pytest.raises(InputError):
        preprocess(np.zeros((8, 8), np.float32), 32, (0.5,) * 3, (0.25,) * 3)


def test_probe_scores_and_round_trips(tiny_clip, tmp_path):
    calibration = Calibration(weights=(2.0,), bias=-0.5, threshold=0.5, target_fpr=0.01, measured_fpr=0.0,
                              n_real=10, n_fake=10)
    weight = np.linspace(-1, 1, 16)
    detector = BackboneDetector(str(tiny_clip), weight, 0.25, calibration, num_threads=1)
    image = procedural_image(64, 64, seed=1)
    result = detector.score(image)
    logit = float(detector.features([image])[0] @ weight + 0.25)
    assert result.logit == pytest.approx(logit)
    assert result.probability == pytest.approx(1 / (1 + np.exp(-(2.0 * logit - 0.5))))
    assert result.heatmap.shape == (1, 1) and result.model == f"backbone:{tiny_clip}"
    detector.save_pretrained(tmp_path)
    loaded = BackboneDetector.from_pretrained(tmp_path, num_threads=1)
    assert loaded.calibration == calibration and loaded.score(image).probability == pytest.approx(result.probability)


def test_a_probe_for_another_backbone_is_refused(tiny_clip):
    calibration = Calibration(weights=(1.0,), bias=0.0, threshold=0.5, target_fpr=0.01, measured_fpr=0.0,
                              n_real=1, n_fake=1)
    detector = BackboneDetector(str(tiny_clip), np.zeros(8), 0.0, calibration, num_threads=1)
    with pytest.raises(InputError, match="wrong backbone"):
        detector.score(procedural_image(64, 64, seed=0))


def test_missing_backbone_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="backbone"):
        load_backbone(str(tmp_path / "absent"))
    with pytest.raises(InputError, match="backbone detector"):
        BackboneDetector.from_pretrained(tmp_path)
