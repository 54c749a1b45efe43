"""FID / KID / IS / precision-recall and the mode-collapse diagnostic, with a tiny untrained extractor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthguard.errors import InputError
from synthguard.models.mnist_classifier import MnistClassifier
from synthguard.training.evaluation import (
    FeatureExtractor,
    diversity_report,
    frechet_distance,
    kernel_inception_distance,
    score_images,
    train_mnist_classifier,
)


@pytest.fixture(scope="module")
def extractor() -> FeatureExtractor:
    torch.manual_seed(0)
    return FeatureExtractor(MnistClassifier(width=4, feature_dim=16), num_threads=1)


@pytest.fixture(scope="module")
def mnist_like() -> np.ndarray:
    rng = np.random.default_rng(1)
    images = np.zeros((200, 28, 28), np.uint8)
    for image in images:
        r0, c0 = rng.integers(3, 14, size=2)
        image[r0 : r0 + rng.integers(6, 14), c0 : c0 + rng.integers(2, 5)] = rng.integers(150, 256)
        image[r0 : r0 + 3, c0 : c0 + rng.integers(3, 12)] = rng.integers(150, 256)
    return images


def test_a_set_against_itself_scores_zero(extractor, mnist_like):
    scores = score_images(mnist_like, mnist_like, extractor, kid_subsets=10, kid_subset_size=100)
    assert abs(scores.fid) < 1e-6
    assert abs(scores.kid) < 1e-3
    assert scores.precision == 1.0 and scores.recall == 1.0
    assert 1.0 <= scores.inception_score <= 10.0
    assert scores.feature_extractor == extractor.name and scores.n_generated == 200


def test_noise_is_far_from_digits(extractor, mnist_like):
    noise = np.random.default_rng(2).integers(0, 256, size=(200, 28, 28), dtype=np.uint8)
    other_half = score_images(mnist_like[:100], mnist_like[100:], extractor, kid_subsets=10, kid_subset_size=100)
    against_noise = score_images(noise, mnist_like, extractor, kid_subsets=10, kid_subset_size=100)
    # An untrained extractor's features are small, so compare ratios, not absolute values.
    assert against_noise.fid > 20 * other_half.fid
    assert against_noise.kid > 20 * other_half.kid
    assert against_noise.precision < 0.1


def test_inputs_of_any_size_and_colour_are_accepted(extractor, mnist_like):
    big_rgb = [np.repeat(np.kron(im, np.ones((4, 4), np.uint8))[..., None], 3, axis=2) for im in mnist_like[:10]]
    features, probs = extractor(big_rgb)
    assert features.shape == (10, 16) and probs.shape == (10, 10)
    assert np.allclose(probs.sum(1), 1)
    with pytest.raises(InputError, match="uint8"):
        extractor([np.zeros((28, 28), np.float32)])


def test_frechet_distance_of_shifted_gaussians():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 3))
    assert frechet_distance(a, a + 2.0) == pytest.approx(12.0, rel=0.02)  # ||mu||^2 = 3 * 2^2, same covariance


def test_kid_is_unbiased_near_zero_for_two_samples_of_one_distribution():
    rng = np.random.default_rng(0)
    mean, _ = kernel_inception_distance(rng.normal(size=(500, 8)), rng.normal(size=(500, 8)), 20, 200)
    assert abs(mean) < 5e-3


def test_diversity_report_flags_collapse(mnist_like):
    healthy = diversity_report(mnist_like[:100], mnist_like[100:])
    collapsed = diversity_report(np.repeat(mnist_like[:1], 100, axis=0), mnist_like[100:])
    assert healthy.distance_ratio > 0.7 and healthy.duplicate_share < 0.2
    assert collapsed.distance_ratio < 0.05 and collapsed.duplicate_share == 1.0


def test_classifier_training_learns(mnist_like):
    labels = (mnist_like.reshape(200, -1).mean(1) > np.median(mnist_like.reshape(200, -1).mean(1))).astype(int)
    result = train_mnist_classifier(
        mnist_like[:150], labels[:150], mnist_like[150:], labels[150:],
        model_config={"width": 4, "feature_dim": 16, "num_classes": 2, "dropout": 0.0},
        epochs=3, batch_size=32, device="cpu", num_threads=1,
    )
    assert len(result.epoch_losses) == 3 and 0.0 <= result.test_accuracy <= 1.0
    assert (result.model.config.width, result.model.config.num_classes) == (4, 2)
    assert result.epoch_losses[-1] < result.epoch_losses[0]
