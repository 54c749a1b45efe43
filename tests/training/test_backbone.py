"""Fitting the backbone detector's probe (a tiny randomly initialised CLIP vision tower saved here; a hub id takes
the same path through transformers), and `synthguard train detector --backbone`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import tiny_models
from PIL import Image

from synthguard.cli import main
from synthguard.core.samples import procedural_image
from synthguard.detect import load_detector
from synthguard.errors import InputError
from synthguard.models.backbone import BackboneDetector
from synthguard.training.backbone import train_backbone_detector

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    return tiny_models.tiny_clip(tmp_path_factory.mktemp("clip") / "tiny-clip")


def images():
    real = [procedural_image(64, 64, seed=i) for i in range(8)]
    fake = [np.full((64, 64, 3), 40 + 20 * i, np.uint8) for i in range(8)]
    return real, fake


def test_probe_trains_saves_loads_and_separates(tiny_clip, tmp_path):
    real, fake = images()
    detector = train_backbone_detector(str(tiny_clip), real[:6], fake[:6], real[6:], fake[6:], num_threads=1)
    assert type(detector.model).__name__ == "CLIPVisionModelWithProjection"  # its own architecture, projection kept
    assert detector.probe_weight.shape == (16,)
    scores = [detector.score(im).probability for im in real[6:] + fake[6:]]
    assert max(scores[:2]) < min(scores[2:])  # held-out images ordered correctly (they are trivially separable)
    detector.save_pretrained(tmp_path)
    loaded = load_detector(tmp_path, num_threads=1)
    assert isinstance(loaded, BackboneDetector)
    assert loaded.score(real[7]).probability == pytest.approx(detector.score(real[7]).probability)


def test_missing_backbone_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="backbone"):
        train_backbone_detector(str(tmp_path / "absent"), *images(), [], [], num_threads=1)


def test_train_detector_backbone_cli(home, tiny_clip, tmp_path):
    real_dir, fake_dir = tmp_path / "real", tmp_path / "fake"
    real_dir.mkdir()
    fake_dir.mkdir()
    real, fake = images()
    for i, (r, f) in enumerate(zip(real, fake)):
        Image.fromarray(r).save(real_dir / f"{i}.png")
        Image.fromarray(f).save(fake_dir / f"{i}.png")
    out = tmp_path / "probe"
    result = CliRunner().invoke(main, ["train", "detector", "--real", str(real_dir), "--fake", str(fake_dir),
                                       "--backbone", str(tiny_clip), "-o", str(out), "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert (out / "backbone.json").is_file()
    assert json.loads((out / "training.json").read_text())["backbone"] == str(tiny_clip)
    detected = CliRunner().invoke(main, ["detect", str(fake_dir / "0.png"), "--json", "--detector", str(out)])
    assert json.loads(detected.stdout)["classifier"]["model"] == str(out)
