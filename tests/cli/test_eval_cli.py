"""`synthguard eval images`: confidence intervals and sample-size warnings (stderr and JSON), on tiny folders of
synthetic digits scored with the shipped feature extractor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import tiny_models
from PIL import Image

from synthguard.cli import main
from synthguard.training import evaluation

OLD_FIELDS = ("fid", "kid", "kid_std", "inception_score", "inception_score_std", "precision", "recall",
              "feature_extractor", "n_generated", "n_reference")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def folder(root: Path, name: str, images: np.ndarray) -> Path:
    out = root / name
    out.mkdir()
    for i, image in enumerate(images):
        Image.fromarray(image).save(out / f"{i:04d}.png")
    return out


@pytest.fixture
def small_sets(tmp_path):
    digits = tiny_models.digits()
    return folder(tmp_path, "real", digits[:32]), folder(tmp_path, "fake", digits[32:])


def test_small_sets_warn_on_stderr_and_exit_0_with_intervals(small_sets):
    real, fake = small_sets
    result = run("eval", "images", "--real", real, "--fake", fake, "--resamples", "20", "--threads", "1")
    assert result.exit_code == 0, result.output
    assert "warning: FID IS NOT MEANINGFUL HERE: 32 images per set" in result.stderr
    assert "warning" not in result.stdout
    assert "95% CI" in result.stdout and "20 resamples" in result.stdout
    assert "compare it only with FIDs at 32 vs 32 images" in result.stdout
    assert result.stdout.splitlines()[0].startswith("feature extractor: mnist-cnn")


def test_json_keeps_its_fields_and_carries_intervals_and_warnings(small_sets):
    real, fake = small_sets
    result = run("eval", "images", "--real", real, "--fake", fake, "--resamples", "20", "--threads", "1", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert all(field in out for field in OLD_FIELDS) and out["n_generated"] == out["n_reference"] == 32
    assert out["bootstrap_resamples"] == 20 and out["confidence"] == 0.95
    for name in ("fid", "kid", "inception_score", "precision", "recall"):
        low, high = out[f"{name}_ci"]
        assert low <= out[name] <= high, name
    assert out["warning_codes"] == ["below_feature_dim"] and "singular" in out["warnings"][0]
    assert "warning: FID IS NOT MEANINGFUL" in result.stderr


def test_fid_infinity_that_cannot_be_computed_says_so(small_sets):
    real, fake = small_sets
    result = run("eval", "images", "--real", real, "--fake", fake, "--resamples", "0", "--fid-infinity",
                 "--threads", "1", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["fid_infinity"] is None and out["fid_ci"] is None and out["inception_score_ci"] is not None
    assert "fid_infinity_not_computed" in out["warning_codes"] and "not computed: FID_inf needs" in result.stderr


def test_no_warning_at_or_above_the_reliable_size(tmp_path, monkeypatch):
    # A threshold lowered to 130 images (just above the 128 feature dimensions) keeps the folders small.
    monkeypatch.setattr(evaluation, "FID_RELIABLE_N", 130)
    digits = np.concatenate([tiny_models.digits()] * 5)[:130]
    real, fake = folder(tmp_path, "real", digits), folder(tmp_path, "fake", digits[::-1])
    result = run("eval", "images", "--real", real, "--fake", fake, "--resamples", "10", "--threads", "1", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["warnings"] == [] and "warning" not in result.stderr
