"""The detector: training moves it, calibration keeps order, scoring takes any size and refuses bad input.

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
    fit_calibration,
    patch_grid,
    thumbnail,
)
from synthguard.training.detector import (
    DetectorData,
    DetectorTrainConfig,
    augment,
    evaluate_detector,
    for_training,
    stress_real,
    table,
    train_detector,
    training_step,
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


def test_training_step_changes_parameters_and_lowers_loss():
    model = tiny_model()
    before = [p.detach().clone() for p in model.parameters()]
    generator = torch.Generator().manual_seed(1)
    x = torch.rand((8, 1, 32, 32), generator=generator)
    y = torch.tensor([0.0, 1.0] * 4)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = [training_step(model, optimizer, x, y) for _ in range(15)]
    assert losses[-1] < losses[0]
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_calibration_is_monotonic_and_threshold_meets_target_fpr():
    rng = np.random.default_rng(0)
    logits = np.r_[rng.normal(-2, 1, 300), rng.normal(2, 1, 300)]
    labels = np.r_[np.zeros(300), np.ones(300)].astype(int)
    calibration = fit_calibration(logits, labels, target_fpr=0.01)
    grid = np.linspace(-10, 10, 201)
    probabilities = calibration.probability(grid)
    assert np.all(np.diff(probabilities) > 0)
    assert calibration.weights[0] > 0
    assert calibration.measured_fpr <= 0.01
    real_p = calibration.probability(logits[:300])
    assert np.mean(real_p >= calibration.threshold) == pytest.approx(calibration.measured_fpr)
    assert (calibration.n_real, calibration.n_fake) == (300, 300)


def test_two_view_calibration_is_monotonic_in_each_view():
    rng = np.random.default_rng(1)
    real = np.c_[rng.normal(-1, 1, 300), rng.normal(-2, 1, 300)]
    fake = np.c_[rng.normal(1, 1, 300), rng.normal(2, 1, 300)]
    calibration = fit_calibration(np.r_[real, fake], np.r_[np.zeros(300), np.ones(300)].astype(int))
    assert len(calibration.weights) == 2 and all(w > 0 for w in calibration.weights)
    grid = np.linspace(-3, 3, 61)  # away from float saturation at 0 and 1
    for fixed in (-1.0, 0.0, 1.0):
        assert np.all(np.diff(calibration.probability(np.c_[grid, np.full_like(grid, fixed)])) > 0)
        assert np.all(np.diff(calibration.probability(np.c_[np.full_like(grid, fixed), grid])) > 0)
    # A view that carries no information still gets a positive weight (never a negative one that reverses it).
    noise = np.c_[np.r_[real[:, 0], fake[:, 0]], rng.normal(0, 1, 600)]
    assert all(w > 0 for w in fit_calibration(noise, np.r_[np.zeros(300), np.ones(300)].astype(int)).weights)


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


def test_calibration_refuses_one_class():
    with pytest.raises(InputError, match="both classes"):
        fit_calibration(np.zeros(4), np.zeros(4, dtype=int))


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


def test_augment_keeps_uint8_grey():
    rng = np.random.default_rng(0)
    image = procedural_image(64, 64, seed=0)[..., 0]
    for _ in range(10):
        out = augment(image, rng)
        assert out.dtype == np.uint8 and out.ndim == 2 and min(out.shape) >= 32


@pytest.mark.parametrize("global_size", [0, 16])
def test_train_detector_end_to_end_tiny(global_size):
    real = [procedural_image(64, 64, seed=s)[..., 0] for s in range(6)]
    fakes = {"flat": [np.full((64, 64), 100 + s, np.uint8) for s in range(6)]}
    config = DetectorTrainConfig(patch_size=32, widths=(4, 8), steps=4, batch_size=8, refresh_every=2,
                                 global_size=global_size, global_widths=(4, 8), global_epochs=2, global_batch_size=4)
    detector, record = train_detector(real, fakes, calibration_real=real[:4], calibration_fakes_by_family=fakes,
                                      config=config, num_threads=1, log=lambda _msg: None)
    assert record.n_calibration_real == 4 and len(record.losses) == 2
    assert (detector.global_model is not None) == bool(global_size)
    assert len(record.global_losses) == (2 if global_size else 0)
    assert len(detector.calibration.weights) == (2 if global_size else 1)
    assert detector.calibration.n_real == 8  # each held-out image as given and once augmented
    evaluation = evaluate_detector(detector, {"photo": real}, fakes, perturbations=("none", "jpeg75"),
                                   stress={"soft": real[:3], "flat-as-real": fakes["flat"][:2]})
    assert {row.perturbation for row in evaluation.families} == {"none", "jpeg75"}
    assert evaluation.ms_per_512 > 0
    # The stress domains get their own FPR and stay out of the pooled real set and the AUCs.
    assert set(evaluation.stress_fpr) == {"none", "jpeg75"}
    assert set(evaluation.stress_fpr["none"]) == {"soft", "flat-as-real"}
    assert evaluation.n_real == len(real) and set(evaluation.fpr["none"]) == {"photo", "all"}
    threshold = detector.calibration.threshold
    expected = np.mean([detector.score(im).probability >= threshold for im in fakes["flat"][:2]])
    assert evaluation.stress_fpr["none"]["flat-as-real"] == pytest.approx(expected)
    assert "harder real photos" in table(evaluation)
    # A family the detector was not trained on is marked, and its own AUC is its left-out figure.
    auc = next(row.auc for row in evaluation.families if row.perturbation == "none")
    assert "| flat | 6 |" in table(evaluation, {"flat": 0.25}, trained=["flat"])
    assert "0.250" in table(evaluation, {"flat": 0.25}, trained=["flat"])
    marked = table(evaluation, {}, trained=["other"])
    assert "| flat (not trained) | 6 |" in marked and "never saw" in marked
    assert marked.splitlines()[2].endswith(f" {auc:.3f} |")


def _detail(im):
    """Mean absolute horizontal pixel difference: how much fine detail an image has."""
    return float(np.abs(np.diff(im.astype(float), axis=1)).mean())


def test_stress_real_photos_are_real_crops_made_softer():
    """Enlarged, soft and denoised real photos: crops of the split's own sources, each with less fine detail than
    the sharp crop it was made from."""
    from synthguard.training.detector import _SEED_BASE, photo_crops, split_sources

    sources = split_sources("test")
    stress = stress_real("test", n=4, sources=sources)
    assert set(stress) == {"enlarged-2x", "soft", "enlarged-3x-bilinear", "denoised"}

    for offset, name in ((11, "enlarged-2x"), (12, "soft"), (15, "enlarged-3x-bilinear"), (16, "denoised")):
        originals = photo_crops(sources, 4, _SEED_BASE["test"] + offset)
        assert len(stress[name]) == 4
        for im, original in zip(stress[name], originals, strict=True):
            assert im.dtype == np.uint8 and im.shape == original.shape
            assert _detail(im) < _detail(original)
    with pytest.raises(InputError):
        stress_real("nope", n=1, sources=sources)


def test_for_training_keeps_the_named_families_and_adds_soft_real_photos():
    from synthguard.training.detector import split_sources

    sources = split_sources("train")
    flat = [np.full((64, 64), 100, np.uint8)]
    data = DetectorData(real={"photo": flat}, fakes={"gan": flat, "upsampled": flat * 2})
    out = for_training(data, "train", families=["gan"], soft_real=3, sources=sources)
    assert set(out.fakes) == {"gan"} and len(out.real_images) == 1 + 3 + 3
    assert set(out.real) == {"photo", "enlarged", "soft"} and set(data.real) == {"photo"}  # input untouched
    assert all(im.dtype == np.uint8 and im.ndim == 2 for im in out.real_images)
    # Random strengths: the soft photos differ from the fixed-strength test images, and from each other in blur.
    from synthguard.training.detector import _SEED_BASE, photo_crops

    originals = photo_crops(sources, 3, _SEED_BASE["train"] + 14)

    ratios = [_detail(im) / _detail(o) for im, o in zip(out.real["soft"], originals, strict=True)]
    assert all(r < 1 for r in ratios) and max(ratios) - min(ratios) > 0.02
    assert set(for_training(data, "train", families=["gan", "upsampled"]).real) == {"photo"}
    for families in ([], ["ddpm"]):
        with pytest.raises(InputError):
            for_training(data, "train", families=families)


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
    assert flagged >= 10, flagged  # measured TPR at the 1 % FPR threshold is 0.78 (weights/README.md)
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


def test_training_run_defaults_leave_out_resampled_photos_and_refuse_unknown_families(tmp_path, capsys):
    """The shipped recipe is the default: every generator family but "upsampled" (resampled real photos), plus soft
    and enlarged real photos; an unknown family stops the run before anything is trained."""
    from synthguard.training.detector import DEFAULT_SOFT_REAL, FAMILIES, TRAINED_FAMILIES, main

    assert set(FAMILIES) - set(TRAINED_FAMILIES) == {"upsampled"} and DEFAULT_SOFT_REAL > 0
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tmp_path / "run"), "--families", "gan,bogus"])
    assert exit_info.value.code == 2 and "choose from" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
