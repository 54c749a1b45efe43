"""Training the detector: a step moves the network, the loops train both views from their model configs, the data
set's harder real photos are softer crops of the split's own sources.

Tiny seeded models (patch 32, widths (4, 8); global 16, widths (4, 8)); the photo tests need scikit-image and
scikit-learn (the offline photographs).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthguard.core.samples import procedural_image
from synthguard.errors import InputError
from synthguard.models.detector_nets import PatchDiscriminator
from synthguard.training.augmentation import augment
from synthguard.training.detector import (
    DetectorData,
    DetectorTrainConfig,
    for_training,
    stress_real,
    train_detector,
    training_step,
)
from synthguard.training.detector_evaluation import evaluate_detector, table

PATCH = {"patch_size": 32, "widths": (4, 8)}
GLOBAL = {"size": 16, "widths": (4, 8)}


def tiny_model(seed: int = 0) -> PatchDiscriminator:
    torch.manual_seed(seed)
    return PatchDiscriminator(**PATCH)


def photos_available() -> None:
    pytest.importorskip("skimage.data")
    pytest.importorskip("sklearn.datasets")


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


def test_augment_keeps_uint8_grey():
    rng = np.random.default_rng(0)
    image = procedural_image(64, 64, seed=0)[..., 0]
    for _ in range(10):
        out = augment(image, rng)
        assert out.dtype == np.uint8 and out.ndim == 2 and min(out.shape) >= 32


@pytest.mark.parametrize("global_epochs", [0, 2])
def test_train_detector_end_to_end_tiny(global_epochs):
    real = [procedural_image(64, 64, seed=s)[..., 0] for s in range(6)]
    fakes = {"flat": [np.full((64, 64), 100 + s, np.uint8) for s in range(6)]}
    config = DetectorTrainConfig(steps=4, batch_size=8, refresh_every=2, global_epochs=global_epochs,
                                 global_batch_size=4)
    detector, record = train_detector(real, fakes, calibration_real=real[:4], calibration_fakes_by_family=fakes,
                                      config=config, patch_config=PATCH,
                                      global_config=GLOBAL if global_epochs else None, num_threads=1,
                                      log=lambda _msg: None)
    assert record.n_calibration_real == 4 and len(record.losses) == 2
    assert (detector.global_model is not None) == bool(global_epochs)
    assert len(record.global_losses) == global_epochs
    assert len(detector.calibration.weights) == (2 if global_epochs else 1)
    # The architecture came from the model configs, and the record names it.
    assert detector.model.config.patch_size == 32 and detector.model.config.max_grid == 4  # the class default
    assert record.patch_config == {"patch_size": 32, "widths": [4, 8], "max_grid": 4}
    assert record.global_config == ({"size": 16, "widths": [4, 8]} if global_epochs else None)
    assert "max_grid" not in record.config and "widths" not in record.config
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

    photos_available()
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

    photos_available()
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


def test_architecture_settings_are_refused_in_the_wrong_place():
    real = [procedural_image(64, 64, seed=s)[..., 0] for s in range(4)]
    fakes = {"flat": [np.full((64, 64), 100 + s, np.uint8) for s in range(4)]}
    kwargs = dict(calibration_real=real, calibration_fakes_by_family=fakes, num_threads=1, log=lambda _msg: None)
    with pytest.raises(InputError, match="no setting 'max_gird'"):
        train_detector(real, fakes, config=DetectorTrainConfig(steps=1, global_epochs=0),
                       patch_config={**PATCH, "max_gird": 8}, **kwargs)
    with pytest.raises(InputError, match="global_epochs is 0"):
        train_detector(real, fakes, config=DetectorTrainConfig(steps=1, global_epochs=0), patch_config=PATCH,
                       global_config=GLOBAL, **kwargs)
    with pytest.raises(TypeError):
        DetectorTrainConfig(max_grid=8)  # the training settings hold no architecture
