"""The detector at inference: a calibration is applied in order, scoring takes any size and refuses bad input,
save and load round-trip (its training is tests/training/test_detector.py).

Tiny seeded models built from config (patch 32, widths (4, 8); global 16, widths (4, 8)); only the ``builtin`` tests
read the shipped weights.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthguard.core.samples import procedural_image
from synthguard.errors import InputError
from synthguard.models.detector import (
    Calibration,
    GlobalDiscriminator,
    PatchDetector,
    PatchDiscriminator,
    builtin_detector,
    patch_grid,
    thumbnail,
)


def tiny_model(seed: int = 0) -> PatchDiscriminator:
    torch.manual_seed(seed)
    return PatchDiscriminator(patch_size=32, widths=(4, 8), max_grid=8)


def tiny_detector() -> PatchDetector:
    calibration = Calibration(weights=(0.5,), bias=0.1, threshold=0.6, target_fpr=0.01, measured_fpr=0.0,
                              n_real=100, n_fake=100)
    return PatchDetector(tiny_model(), calibration, name="tiny", num_threads=1)


def tiny_two_view_detector() -> PatchDetector:
    torch.manual_seed(1)
    calibration = Calibration(weights=(0.5, 2.0), bias=-0.3, threshold=0.6, target_fpr=0.01, measured_fpr=0.0,
                              n_real=100, n_fake=100)
    return PatchDetector(tiny_model(), calibration, global_model=GlobalDiscriminator(size=16, widths=(4, 8)),
                         name="tiny2", num_threads=1)


def test_calibration_refuses_nonpositive_weights_and_wrong_arity():
    with pytest.raises(InputError, match="weights"):
        Calibration(weights=(-1.0,), bias=0.0, threshold=0.5, target_fpr=0.01, measured_fpr=0.0, n_real=1,
                    n_fake=1)
    with pytest.raises(InputError, match="2 scores"):
        Calibration(weights=(1.0, 1.0), bias=0.0, threshold=0.5, target_fpr=0.01, measured_fpr=0.0, n_real=1,
                    n_fake=1).probability(np.zeros((4, 3)))
    with pytest.raises(InputError, match="view"):
        PatchDetector(tiny_model(), tiny_two_view_detector().calibration)


def test_two_view_score_and_heatmap():
    detector = tiny_two_view_detector()
    image = procedural_image(160, 96, seed=3)
    result = detector.score(image)
    assert result.global_logit is not None
    expected = 1 / (1 + np.exp(-(0.5 * result.logit + 2.0 * result.global_logit - 0.3)))
    assert result.probability == pytest.approx(expected)
    assert result.heatmap.shape == (3, 5)
    assert thumbnail(np.zeros((100, 300), np.uint8), 16).shape == (16, 16)


@pytest.mark.parametrize(
    ("shape", "grid"),
    [((128, 128), (4, 4)), ((512, 512, 3), (8, 8)), ((100, 300), (4, 8)), ((40, 33, 3), (2, 2))],
)
def test_score_any_size_grey_or_rgb(shape, grid):
    image = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    result = tiny_detector().score(image)
    assert result.heatmap.shape == grid == tuple(map(len, patch_grid(shape[0], shape[1], 32, 8)))
    assert result.patches == grid[0] * grid[1]
    assert 0 <= result.probability <= 1 and np.all((result.heatmap >= 0) & (result.heatmap <= 1))
    assert result.threshold == 0.6 and result.model == "tiny"
    assert result.probability == pytest.approx(1 / (1 + np.exp(-(result.logit * 0.5 + 0.1))))
    assert result.synthetic == (result.probability >= 0.6)


def test_image_smaller_than_a_patch_is_padded_to_one_patch():
    torch.manual_seed(0)
    detector = PatchDetector(PatchDiscriminator(patch_size=64, widths=(4, 8)), tiny_detector().calibration)
    assert detector.score(np.zeros((40, 50), np.uint8)).heatmap.shape == (1, 1)


def test_grey_and_rgb_of_the_same_grey_image_score_alike():
    grey = procedural_image(96, 96, seed=2)[..., 0]
    detector = tiny_detector()
    assert detector.score(grey).logit == pytest.approx(detector.score(np.dstack([grey] * 3)).logit, abs=1e-6)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((64, 64), np.float32), "uint8"),
        (np.zeros((64, 64), np.uint16), "uint8"),
        (np.zeros((31, 64), np.uint8), "at least 32"),
        (np.zeros((64, 64, 4), np.uint8), "shape"),
        ([[0] * 64] * 64, "numpy array"),
    ],
)
def test_score_refuses_bad_input(image, message):
    with pytest.raises(InputError, match=message):
        tiny_detector().score(image)


@pytest.mark.parametrize("make", [tiny_detector, tiny_two_view_detector])
def test_save_and_load_round_trip(tmp_path, make):
    detector = make()
    detector.save_pretrained(tmp_path)
    assert {"patch", "calibration.json"} <= {p.name for p in tmp_path.iterdir()}
    assert (tmp_path / "global").is_dir() == (detector.global_model is not None)
    loaded = PatchDetector.from_pretrained(tmp_path, name="tiny")
    image = procedural_image(80, 120, seed=4)
    assert loaded.score(image).probability == pytest.approx(detector.score(image).probability, abs=1e-6)
    assert loaded.calibration == detector.calibration


def test_load_refuses_missing_folder(tmp_path):
    with pytest.raises(InputError):
        PatchDetector.from_pretrained(tmp_path / "absent")


def test_builtin_detector_loads():
    detector = builtin_detector(num_threads=1)
    result = detector.score(procedural_image(128, 128, seed=0))
    assert result.heatmap.shape == (2, 2) and result.model == "synthguard/patch-detector"
    assert detector.global_model is not None and len(detector.calibration.weights) == 2
    assert detector.calibration.target_fpr == 0.01


@pytest.mark.slow
def test_builtin_flags_most_gan_samples_and_no_real_photo():
    """The shipped detector at its own threshold, on unseen seeds and the scikit-image photographs."""
    from synthguard.generate.backends import builtin_generator

    data = pytest.importorskip("skimage.data")
    detector = builtin_detector(num_threads=1)
    fakes = builtin_generator("gan", num_threads=1).generate(20, 4_000_000, device="cpu").images
    flagged = sum(detector.score(im).synthetic for im in fakes)
    assert flagged >= 10, flagged  # at least half: the card's GAN detection rate is well above it
    for name in ("astronaut", "coffee", "camera", "rocket", "chelsea", "moon", "page"):
        assert not detector.score(getattr(data, name)()).synthetic, name


@pytest.mark.slow
def test_bench_detector_runs_small(home):
    from click.testing import CliRunner

    from synthguard.cli import main

    pytest.importorskip("skimage.data")
    result = CliRunner().invoke(main, ["bench", "detector", "-n", "5", "--json"])
    assert result.exit_code == 0, result.output
    import json

    report = json.loads(result.stdout)
    families = {row["family"] for row in report["evaluation"]["families"]}
    assert families == {"gan", "vae", "vae_recon", "upsampled", "procedural", "ddpm"}
    assert "AUC left out" in report["table"] and report["evaluation"]["ms_per_512"] > 0
    # A lower threshold (as a policy may set) flags at least as much of everything; the AUCs do not move.
    low = json.loads(CliRunner().invoke(main, ["bench", "detector", "-n", "5", "--threshold", "0.01", "--json"]).stdout)
    assert low["calibration"]["threshold"] == 0.01
    assert low["calibrated_threshold"] == report["calibration"]["threshold"] == builtin_detector().calibration.threshold
    assert "--threshold" in low["table"]
    rows = {(r["family"], r["perturbation"]): r for r in report["evaluation"]["families"]}
    for row in low["evaluation"]["families"]:
        assert row["auc"] == rows[row["family"], row["perturbation"]]["auc"]
        assert row["tpr"] >= rows[row["family"], row["perturbation"]]["tpr"]
    assert low["evaluation"]["fpr"]["none"]["all"] >= report["evaluation"]["fpr"]["none"]["all"]
    refused = CliRunner().invoke(main, ["bench", "detector", "--threshold", "1.5"])
    assert refused.exit_code == 2 and "Traceback" not in refused.output
