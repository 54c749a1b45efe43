"""FID / KID / IS / precision-recall, their intervals and sample-size warnings, and the mode-collapse diagnostic,
with a tiny untrained extractor or synthetic Gaussian features."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from synthguard.errors import InputError
from synthguard.models.mnist_classifier import MnistClassifier
from synthguard.training.evaluation import (
    FID_RELIABLE_N,
    FeatureExtractor,
    SampleSizeWarning,
    _bootstrap_kid,
    _t_quantile,
    _weighted_gaussian,
    diversity_report,
    fid_infinity_estimate,
    fid_interval,
    frechet_distance,
    kernel_inception_distance,
    kid_interval,
    precision_recall_intervals,
    sample_size_warnings,
    score_features,
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


def gaussian_sets(n: int, dim: int = 8, shift: float = 0.5, seed: int = 0):
    """(generated features, generated class probabilities, reference features): two Gaussians ``shift`` apart."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, 10)) * 3
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return rng.normal(size=(n, dim)) + shift, probs, rng.normal(size=(n, dim))


def test_intervals_contain_the_estimates_and_narrow_with_the_sample_size():
    widths = {}
    for n in (100, 1000):
        s = score_features(*gaussian_sets(n), "synthetic", kid_subsets=5, kid_subset_size=200, resamples=100)
        for point, (low, high) in ((s.fid, s.fid_ci), (s.kid, s.kid_ci), (s.inception_score, s.inception_score_ci),
                                   (s.precision, s.precision_ci), (s.recall, s.recall_ci)):
            assert low <= point <= high
        assert s.bootstrap_resamples == 100 and s.confidence == 0.95
        widths[n] = {name: getattr(s, name)[1] - getattr(s, name)[0] for name in ("fid_ci", "kid_ci", "precision_ci")}
    for name in widths[100]:
        assert widths[1000][name] < widths[100][name] / 2, name  # ~ 1 / sqrt(N)
    # The true FID of N(0.5, I_8) against N(0, I_8) is 8 * 0.5^2 = 2; the large-N interval holds it.
    low, high = score_features(*gaussian_sets(4000), "synthetic", kid_subsets=2, kid_subset_size=100,
                               resamples=50).fid_ci
    assert low < 2.0 < high + 0.05


def test_fid_interval_is_seeded_and_matches_score_features():
    gen, probs, ref = gaussian_sets(300)
    s = score_features(gen, probs, ref, "synthetic", kid_subsets=2, kid_subset_size=100, resamples=50, seed=3)
    assert fid_interval(gen, ref, resamples=50, seed=3) == s.fid_ci
    assert fid_interval(gen, ref, resamples=50, seed=4) != s.fid_ci
    assert kid_interval(gen, ref, s.kid, resamples=50, seed=3) == s.kid_ci
    assert precision_recall_intervals(gen, ref, resamples=50, seed=3) == (s.precision_ci, s.recall_ci)


def test_no_resamples_means_no_bootstrap_intervals():
    s = score_features(*gaussian_sets(50), "synthetic", kid_subsets=2, kid_subset_size=20, resamples=0)
    assert s.fid_ci is s.kid_ci is s.precision_ci is s.recall_ci is None and s.inception_score_ci is not None
    with pytest.raises(InputError, match="resamples"):
        score_features(*gaussian_sets(50), "synthetic", resamples=-1)


def test_resampled_statistics_equal_the_plain_ones_for_unit_weights():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(60, 5)), rng.normal(size=(60, 5)) + 0.3
    counts = rng.integers(0, 3, size=60).astype(float)
    mean, cov = _weighted_gaussian(a, counts)
    repeated = np.repeat(a, counts.astype(int), axis=0)
    assert np.allclose(mean, repeated.mean(0)) and np.allclose(cov, np.cov(repeated, rowvar=False))
    # With every point drawn once the resampled KID is the unbiased MMD^2 over all pairs, which is what every
    # subset gives when the subsets are the whole sets.
    full, _ = kernel_inception_distance(a, b, subsets=2, subset_size=1000)
    assert _bootstrap_kid(a, b, np.ones((1, 60)), np.ones((1, 60)), block=16)[0] == pytest.approx(full)


def test_sample_size_warnings_fire_below_the_thresholds_only():
    def codes(n_gen, n_ref, dim=128):
        return [w.code for w in sample_size_warnings(n_gen, n_ref, dim)]

    assert codes(100, 100) == [SampleSizeWarning.BELOW_FEATURE_DIM]
    assert codes(128, 128) == [SampleSizeWarning.BELOW_FEATURE_DIM]  # rank 127 < 128
    assert codes(129, 129) == [SampleSizeWarning.BIAS_EXCEEDS_INTERVAL]
    assert codes(FID_RELIABLE_N - 1, FID_RELIABLE_N - 1) == [SampleSizeWarning.BIAS_EXCEEDS_INTERVAL]
    assert codes(FID_RELIABLE_N, FID_RELIABLE_N) == []
    assert codes(5000, FID_RELIABLE_N) == [SampleSizeWarning.UNEQUAL_SIZES]
    assert codes(FID_RELIABLE_N, 100) == [SampleSizeWarning.BELOW_FEATURE_DIM, SampleSizeWarning.UNEQUAL_SIZES]
    assert "singular" in sample_size_warnings(100, 100, 128)[0].message


def test_scores_carry_their_warnings_into_json_and_text():
    s = score_features(*gaussian_sets(20, dim=8), "synthetic", kid_subsets=2, kid_subset_size=10, resamples=20)
    assert [w.code for w in s.warnings] == [SampleSizeWarning.BIAS_EXCEEDS_INTERVAL]  # 20 > 8 dims, < reliable N
    out = json.loads(json.dumps(s.to_dict()))
    assert out["warning_codes"] == ["bias_exceeds_interval"] and out["warnings"] == [s.warnings[0].message]
    assert out["fid"] == s.fid and out["fid_ci"] == list(s.fid_ci) and out["bootstrap_resamples"] == 20
    text = "\n".join(s.describe())
    assert "95% CI" in text and "compare it only with FIDs at 20 vs 20 images" in text


def test_fid_infinity_extrapolates_towards_the_true_distance():
    gen, probs, ref = gaussian_sets(2000, dim=8)
    infinity = fid_infinity_estimate(gen, ref)
    assert abs(infinity - 2.0) < abs(frechet_distance(gen[:400], ref[:400]) - 2.0) + 0.05
    assert abs(infinity - 2.0) < 0.15
    s = score_features(gen[:20], probs[:20], ref[:20], "synthetic", kid_subsets=2, kid_subset_size=10, resamples=0,
                       fid_infinity=True)
    assert s.fid_infinity is None and s.warnings[-1].code is SampleSizeWarning.FID_INFINITY_NOT_COMPUTED


def test_student_t_quantiles():
    assert _t_quantile(0.975, 1) == pytest.approx(12.706, abs=1e-3)
    assert _t_quantile(0.975, 2) == pytest.approx(4.303, abs=1e-3)
    assert _t_quantile(0.975, 9) == pytest.approx(2.262, abs=1e-3)
    assert _t_quantile(0.975, 1000) == pytest.approx(1.962, abs=1e-3)


def test_two_images_per_set_score_without_error(extractor, mnist_like):
    s = score_images(mnist_like[:2], mnist_like[2:4], extractor, kid_subsets=2, resamples=10)
    assert s.warnings[0].code is SampleSizeWarning.BELOW_FEATURE_DIM and 0 <= s.precision <= 1
