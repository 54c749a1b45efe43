"""Sample-quality metrics for the generators, computed with an offline MNIST feature extractor.

- FID: Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium".
- KID: Binkowski et al. 2018, "Demystifying MMD GANs" (unbiased MMD^2, cubic polynomial kernel, over subsets).
- Inception Score: Salimans et al. 2016, "Improved Techniques for Training GANs".
- Precision / recall: Kynkaanniemi et al. 2019, "Improved Precision and Recall Metric for Assessing Generative
  Models" (k-NN balls around feature vectors).

The published metrics use ImageNet's Inception-v3, which cannot be downloaded here and means little for digits.
The features are the penultimate layer (128 values) of a small CNN trained on MNIST by ``train_mnist_classifier``,
and its softmax gives the class probabilities of the Inception Score. Scores are only comparable when computed with
the same extractor: every result names it (architecture and a hash of its weights).

Every score comes with a 95 % confidence interval (``GenerativeScores`` says how each is made) and the result carries
warnings when the sample is too small for FID to mean much (``sample_size_warnings``). FID is biased upwards at small
N (Chong & Forsyth 2020, "Effectively Unbiased FID and Inception Score and where to find them"), so FIDs compare only
at equal N; ``fid_infinity`` is their extrapolation to N = infinity.

Also here: ``diversity_report``, the mode-collapse diagnostic logged while training a GAN.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from enum import Enum
from importlib.resources import as_file, files
from statistics import NormalDist
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from synthguard.core.torch_utils import load_model, resize_image, resolve_device, torch_threads
from synthguard.errors import InputError
from synthguard.models.mnist_classifier import MnistClassifier
from synthguard.training.architecture import build


@dataclass(frozen=True)
class ClassifierTraining:
    """A trained classifier, its accuracy on the held-out images and the per-epoch mean training loss."""

    model: MnistClassifier
    test_accuracy: float
    epoch_losses: tuple[float, ...]
    seconds: float


def train_mnist_classifier(
    images: np.ndarray,
    labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    *,
    model_config: Mapping[str, Any] | None = None,
    epochs: int = 2,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    device: str = "auto",
    num_threads: int | None = None,
    log: Callable[[str], None] | None = None,
) -> ClassifierTraining:
    """Train an ``MnistClassifier`` with Adam and cross-entropy on uint8 (N, 28, 28) images.

    ``model_config``: its architecture (an ``MnistClassifier`` config or part of one; the rest are the class's
    defaults), initialised from ``seed``."""
    _check_images(images, "images")
    _check_images(test_images, "test_images")
    target = resolve_device(device)
    started = time.perf_counter()
    with torch_threads(num_threads):
        torch.manual_seed(seed)
        model = build(MnistClassifier, model_config).to(target)
        optimiser = torch.optim.Adam(model.parameters(), lr=lr)
        x_all = torch.from_numpy(images)
        y_all = torch.from_numpy(np.asarray(labels, dtype=np.int64))
        order_rng = torch.Generator().manual_seed(seed)
        losses = []
        for epoch in range(epochs):
            model.train()
            total, count = 0.0, 0
            for index in torch.randperm(len(x_all), generator=order_rng).split(batch_size):
                x = (x_all[index].float() / 255).unsqueeze(1).to(target)  # (B, 1, 28, 28)
                loss = F.cross_entropy(model(x), y_all[index].to(target))
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                total += loss.item() * len(index)
                count += len(index)
            losses.append(total / count)
            if log:
                log(f"classifier epoch {epoch + 1}/{epochs}: loss {losses[-1]:.4f}")
        predictions = _batched(model, test_images, target, lambda m, x: m(x).argmax(1))
        accuracy = float((predictions.numpy() == np.asarray(test_labels)).mean())
    if log:
        log(f"classifier test accuracy {accuracy:.4f}")
    return ClassifierTraining(model.cpu().eval(), accuracy, tuple(losses), time.perf_counter() - started)


class FeatureExtractor:
    """Turns images into MNIST-classifier features and class probabilities.

    Images (uint8 (H, W) grey or (H, W, 3) RGB, any size) are turned grey (channel mean) and area-resized to
    28x28, the classifier's input.
    """

    def __init__(self, model: MnistClassifier, *, device: str = "cpu", num_threads: int | None = None):
        self.model = model.eval()
        self.device = resolve_device(device)
        self.num_threads = num_threads
        self.name = model.weights_name()

    def __call__(self, images: Sequence[np.ndarray] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """-> (features (N, feature_dim) float64, class probabilities (N, num_classes) float64)."""
        batch = to_mnist_input(images)
        with torch_threads(self.num_threads):
            self.model.to(self.device)
            outputs = _batched(self.model, batch, self.device, lambda m, x: _features_and_probs(m, x))
        features, probs = outputs[:, : -self.model.config.num_classes], outputs[:, -self.model.config.num_classes :]
        return features.double().numpy(), probs.double().numpy()


def to_mnist_input(images: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """Any uint8 grey/RGB images -> uint8 (N, 28, 28) grey."""
    if len(images) == 0:
        raise InputError("no images to score")
    out = np.empty((len(images), 28, 28), np.uint8)
    for i, image in enumerate(images):
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3)):
            raise InputError(f"image {i} must be uint8 (H, W) or (H, W, 3), not {image.dtype} {image.shape}")
        if image.ndim == 3:
            image = image.mean(axis=2).round().astype(np.uint8)
        out[i] = resize_image(image, (28, 28))
    return out


class SampleSizeWarning(Enum):
    """Why a sample is too small, or the two too different in size, for its FID to mean much."""

    BELOW_FEATURE_DIM = "below_feature_dim"
    BIAS_EXCEEDS_INTERVAL = "bias_exceeds_interval"
    UNEQUAL_SIZES = "unequal_sizes"
    FID_INFINITY_NOT_COMPUTED = "fid_infinity_not_computed"


# Below this many images per set the shipped GAN's FID is further above its N = infinity value (its bias) than its
# 95 % interval is wide, on the shipped extractor: the model card's FID-vs-N table is the measurement.
FID_RELIABLE_N = 2000


@dataclass(frozen=True)
class ScoreWarning:
    """One sample-size warning: its code and the sentence a report prints."""

    code: SampleSizeWarning
    message: str


def sample_size_warnings(n_generated: int, n_reference: int, feature_dim: int) -> tuple[ScoreWarning, ...]:
    """The warnings FID deserves at these set sizes, for features of ``feature_dim`` values."""
    n = min(n_generated, n_reference)
    warnings = []
    if n <= feature_dim:
        # The covariance of n points has rank n - 1 at most: singular once that is below the dimension.
        warnings.append(ScoreWarning(SampleSizeWarning.BELOW_FEATURE_DIM, (
            f"FID IS NOT MEANINGFUL HERE: {n} images per set is not more than the {feature_dim} feature dimensions, "
            f"so the covariance estimates are singular (rank at most {n - 1}) and FID mostly measures the sample "
            f"size; use at least {FID_RELIABLE_N} images per set")))
    elif n < FID_RELIABLE_N:
        warnings.append(ScoreWarning(SampleSizeWarning.BIAS_EXCEEDS_INTERVAL, (
            f"FID at {n} images per set is biased upwards by more than its 95% interval is wide (with the shipped "
            f"extractor two real MNIST samples of 500 images score about 20, of 1000 about 10, where the true value "
            f"is 0); compare FIDs only at equal sample sizes and use at least {FID_RELIABLE_N} images per set")))
    if n_generated != n_reference:
        warnings.append(ScoreWarning(SampleSizeWarning.UNEQUAL_SIZES, (
            f"the sets differ in size ({n_generated} generated, {n_reference} reference): FID's bias depends on "
            "both sizes, so it compares only with runs of the same two sizes")))
    return tuple(warnings)


@dataclass(frozen=True)
class GenerativeScores:
    """Sample-quality scores of a generated set against a reference set.

    ``fid``: lower is better, 0 for identical feature statistics. ``kid`` / ``kid_std``: unbiased MMD^2 mean and
    standard deviation over subsets; near 0 (can be slightly negative) when the sets match. ``inception_score`` /
    ``inception_score_std``: over ``is_splits`` splits of the generated set; at most ``num_classes`` (10), high when
    each image is confidently one digit and all digits appear. ``precision``: share of generated images inside the
    reference manifold (quality); ``recall``: share of reference images inside the generated manifold (coverage).
    ``feature_extractor``: the extractor's name; compare scores only across equal names.

    Intervals (``confidence``, 95 % by default; None when ``bootstrap_resamples`` is 0):

    - ``fid_ci`` / ``kid_ci``: bootstrap over both sets (``bootstrap_resamples`` draws with replacement of each set,
      seeded); the percentile interval of the resampled scores, moved by their mean bias so that it is centred on the
      estimate: for FID on a log scale (its resamples' copies inflate it 1.5-2x, and its spread grows with its
      level), for KID additively, its resamples leaving out pairs of copies of one image (k(x, x) terms). It is the
      spread of the score at this sample size, not FID's small-N bias (see ``warnings``).
    - ``precision_ci`` / ``recall_ci``: bootstrap of the images scored, the k-NN manifolds held fixed; it leaves out
      the manifolds' own variability, so it is narrower than the spread over fresh samples (a lower bound).
    - ``inception_score_ci``: Student's t interval of the mean over the disjoint splits (None with one split).

    ``warnings``: ``sample_size_warnings``. ``fid_infinity``: Chong & Forsyth's extrapolation (None unless asked).
    """

    fid: float
    kid: float
    kid_std: float
    inception_score: float
    inception_score_std: float
    precision: float
    recall: float
    feature_extractor: str
    n_generated: int
    n_reference: int
    fid_ci: tuple[float, float] | None = None
    kid_ci: tuple[float, float] | None = None
    inception_score_ci: tuple[float, float] | None = None
    precision_ci: tuple[float, float] | None = None
    recall_ci: tuple[float, float] | None = None
    bootstrap_resamples: int = 0
    confidence: float = 0.95
    warnings: tuple[ScoreWarning, ...] = ()
    fid_infinity: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the fields, ``warnings`` as their sentences and ``warning_codes`` beside them."""
        out = asdict(self)
        out["warnings"] = [w.message for w in self.warnings]
        out["warning_codes"] = [w.code.value for w in self.warnings]
        return out

    def describe(self) -> tuple[str, ...]:
        """The lines a report prints: the scores, their intervals, and the comparability note."""
        lines = [
            f"feature extractor: {self.feature_extractor}  ({self.n_generated} generated vs {self.n_reference} "
            "reference images)",
            f"FID {self.fid:.2f}   KID {self.kid:.3f} ± {self.kid_std:.3f}   IS {self.inception_score:.2f} "
            f"± {self.inception_score_std:.2f}   precision {self.precision:.3f}   recall {self.recall:.3f}",
        ]
        level = f"{100 * self.confidence:g}%"

        def ci(name: str, value: float, interval: tuple[float, float] | None, digits: int) -> str:
            span = "no interval" if interval is None else f"{interval[0]:.{digits}f} to {interval[1]:.{digits}f}"
            return f"  {name} {value:.{digits}f}  ({level} CI {span})"

        how = (f"FID, KID: bootstrap of both sets, {self.bootstrap_resamples} resamples; precision, recall: of the "
               "scored images, the manifolds fixed" if self.bootstrap_resamples else "no bootstrap")
        lines += [
            f"{level} confidence intervals ({how}; IS: t interval over its splits):",
            ci("FID", self.fid, self.fid_ci, 2), ci("KID", self.kid, self.kid_ci, 3),
            ci("IS", self.inception_score, self.inception_score_ci, 2),
            ci("precision", self.precision, self.precision_ci, 3), ci("recall", self.recall, self.recall_ci, 3),
        ]
        if self.fid_infinity is not None:
            lines.append(f"FID_inf {self.fid_infinity:.2f}  (Chong & Forsyth: FID extrapolated to infinitely many "
                         f"images; the FID above is {self.fid - self.fid_infinity:+.2f} from it)")
        lines.append(f"FID depends on the sample size: compare it only with FIDs at {self.n_generated} vs "
                     f"{self.n_reference} images and the same extractor")
        return tuple(lines)


def score_images(
    generated: Sequence[np.ndarray] | np.ndarray,
    reference: Sequence[np.ndarray] | np.ndarray,
    extractor: FeatureExtractor,
    *,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    is_splits: int = 10,
    k: int = 3,
    seed: int = 0,
    resamples: int = 200,
    confidence: float = 0.95,
    fid_infinity: bool = False,
) -> GenerativeScores:
    """FID, KID, Inception Score and k-NN precision/recall of ``generated`` against ``reference``, with intervals
    from ``resamples`` bootstrap draws (0: none) and the sample-size warnings; ``fid_infinity`` adds Chong &
    Forsyth's FID_inf."""
    if len(generated) < 2 or len(reference) < 2:
        raise InputError(f"need at least 2 generated and 2 reference images, got {len(generated)}, {len(reference)}")
    gen_features, gen_probs = extractor(generated)
    ref_features, _ = extractor(reference)
    return score_features(gen_features, gen_probs, ref_features, extractor.name, kid_subsets=kid_subsets,
                          kid_subset_size=kid_subset_size, is_splits=is_splits, k=k, seed=seed, resamples=resamples,
                          confidence=confidence, fid_infinity=fid_infinity)


def score_features(
    gen_features: np.ndarray,
    gen_probs: np.ndarray,
    ref_features: np.ndarray,
    feature_extractor: str,
    *,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    is_splits: int = 10,
    k: int = 3,
    seed: int = 0,
    resamples: int = 200,
    confidence: float = 0.95,
    fid_infinity: bool = False,
) -> GenerativeScores:
    """``score_images`` on features already extracted: (N, D) and (M, D) features, (N, C) class probabilities of
    the generated set, and the name of the extractor that made them."""
    if gen_features.ndim != 2 or ref_features.ndim != 2 or gen_features.shape[1] != ref_features.shape[1]:
        raise InputError(f"features must be (N, D) and (M, D), not {gen_features.shape} and {ref_features.shape}")
    if len(gen_features) < 2 or len(ref_features) < 2 or len(gen_probs) != len(gen_features):
        raise InputError(f"need at least 2 generated and 2 reference feature rows (and one class-probability row per "
                         f"generated one), got {len(gen_features)}, {len(ref_features)}, {len(gen_probs)}")
    if resamples < 0 or not 0 < confidence < 1:
        raise InputError(f"resamples must be >= 0 and confidence in (0, 1), not {resamples!r}, {confidence!r}")
    fid = frechet_distance(gen_features, ref_features)
    kid, kid_std = kernel_inception_distance(gen_features, ref_features, kid_subsets, kid_subset_size, seed)
    inception, inception_std = inception_score(gen_probs, is_splits)
    gen_inside, ref_inside = _manifold_membership(gen_features, ref_features, k)
    precision, recall = float(gen_inside.mean()), float(ref_inside.mean())
    infinity, not_computed = None, ()
    if fid_infinity:
        try:
            infinity = fid_infinity_estimate(gen_features, ref_features, seed=seed)
        except InputError as exc:
            not_computed = (ScoreWarning(SampleSizeWarning.FID_INFINITY_NOT_COMPUTED, f"not computed: {exc}"),)
    intervals: dict[str, tuple[float, float] | None] = {}
    if resamples:
        rng = np.random.default_rng(seed)
        w_gen = _resample_weights(len(gen_features), resamples, rng)
        w_ref = _resample_weights(len(ref_features), resamples, rng)
        intervals["fid_ci"] = _centred_interval(fid, _bootstrap_fid(gen_features, ref_features, w_gen, w_ref),
                                                confidence, (0.0, np.inf), relative=True)
        intervals["kid_ci"] = _centred_interval(kid, _bootstrap_kid(gen_features, ref_features, w_gen, w_ref),
                                                confidence)
        intervals["precision_ci"], intervals["recall_ci"] = _membership_intervals(gen_inside, ref_inside, w_gen,
                                                                                  w_ref, confidence)
    return GenerativeScores(
        fid=fid,
        kid=kid,
        kid_std=kid_std,
        inception_score=inception,
        inception_score_std=inception_std,
        precision=precision,
        recall=recall,
        feature_extractor=feature_extractor,
        n_generated=len(gen_features),
        n_reference=len(ref_features),
        inception_score_ci=_split_interval(inception, inception_std, min(is_splits, len(gen_probs)), confidence),
        bootstrap_resamples=resamples,
        confidence=confidence,
        warnings=sample_size_warnings(len(gen_features), len(ref_features), gen_features.shape[1]) + not_computed,
        fid_infinity=infinity,
        **intervals,
    )


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)) of the Gaussians fitted to (N, D) features."""
    return _frechet(a.mean(0), np.atleast_2d(np.cov(a, rowvar=False)), b.mean(0),
                    np.atleast_2d(np.cov(b, rowvar=False)))


def _frechet(mu_a: np.ndarray, cov_a: np.ndarray, mu_b: np.ndarray, cov_b: np.ndarray) -> float:
    """The Frechet distance of two Gaussians.

    tr((S_a S_b)^(1/2)) is the sum of the square roots of the eigenvalues of S_a^(1/2) S_b S_a^(1/2), which is
    symmetric positive semi-definite: eigh on it is stable where a general sqrtm can turn complex.
    """
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    cross = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_root = np.sqrt(np.clip(cross, 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root)


def fid_interval(a: np.ndarray, b: np.ndarray, *, resamples: int = 200, confidence: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """The bootstrap interval of ``frechet_distance(a, b)`` that ``score_features`` reports as ``fid_ci``."""
    if len(a) < 2 or len(b) < 2 or resamples < 1:
        raise InputError(f"an FID interval needs 2 or more points per set and resamples, got {len(a)}, {len(b)}, "
                         f"{resamples}")
    rng = np.random.default_rng(seed)
    w_a, w_b = _resample_weights(len(a), resamples, rng), _resample_weights(len(b), resamples, rng)
    low, high = _centred_interval(frechet_distance(a, b), _bootstrap_fid(a, b, w_a, w_b), confidence, (0.0, np.inf),
                                  relative=True)
    return low, high


def kid_interval(a: np.ndarray, b: np.ndarray, kid: float, *, resamples: int = 200, confidence: float = 0.95,
                 seed: int = 0) -> tuple[float, float] | None:
    """The bootstrap interval around ``kid`` (``kernel_inception_distance(a, b)``) that ``score_features``
    reports as ``kid_ci``."""
    if len(a) < 2 or len(b) < 2 or resamples < 1:
        raise InputError(f"a KID interval needs 2 or more points per set and resamples, got {len(a)}, {len(b)}, "
                         f"{resamples}")
    rng = np.random.default_rng(seed)
    w_a, w_b = _resample_weights(len(a), resamples, rng), _resample_weights(len(b), resamples, rng)
    return _centred_interval(kid, _bootstrap_kid(a, b, w_a, w_b), confidence)


def fid_infinity_estimate(a: np.ndarray, b: np.ndarray, *, points: int = 15, seed: int = 0) -> float:
    """Chong & Forsyth's FID_inf: FID of random subsets (without replacement) of ``points`` sizes evenly spaced in
    1/N between N / 5 and N (N: the smaller set; the smallest at least twice the feature dimension), a least-squares
    line of FID against 1/N, and its value at 1/N = 0."""
    n, dim = min(len(a), len(b)), a.shape[1]
    smallest = max(n // 5, 2 * dim)
    if n < 2 * smallest:
        raise InputError(f"FID_inf needs at least {4 * dim} images per set (two sizes above twice the {dim} "
                         f"feature dimensions), got {n}")
    rng = np.random.default_rng(seed)
    sizes = np.unique((1 / np.linspace(1 / smallest, 1 / n, points)).round().astype(int))
    fids = [frechet_distance(a[rng.choice(len(a), m, replace=False)], b[rng.choice(len(b), m, replace=False)])
            for m in sizes]
    _, intercept = np.polyfit(1 / sizes, fids, 1)
    return float(intercept)


def _resample_weights(n: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(resamples, n) bootstrap multiplicities: how often each of n points is drawn in n draws with replacement."""
    return rng.multinomial(n, np.full(n, 1 / n), size=resamples).astype(np.float64)


def _centred_interval(point: float, estimates: np.ndarray, confidence: float,
                      bounds: tuple[float, float] = (-np.inf, np.inf), relative: bool = False
                      ) -> tuple[float, float] | None:
    """The percentile interval of the bootstrap ``estimates`` moved by (``point`` - their mean), clipped to
    ``bounds``; with ``relative`` (and all values positive) on a log scale: scaled by ``point`` / their geometric
    mean. Resamples without a value (KID of a resample that is one image drawn every time) are left out; None when
    none has one."""
    estimates = estimates[np.isfinite(estimates)]
    if not len(estimates):
        return None
    quantiles = [(1 - confidence) / 2, (1 + confidence) / 2]
    if relative and point > 0 and (estimates > 0).all():
        logs = np.log(estimates)
        low, high = point * np.exp(np.quantile(logs, quantiles) - logs.mean())
    else:
        low, high = np.quantile(estimates, quantiles) + point - np.mean(estimates)
    return float(np.clip(low, *bounds)), float(np.clip(high, *bounds))


def _weighted_gaussian(x: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (ddof 1) of the rows of (N, D) ``x`` repeated ``weights`` times each."""
    n = weights.sum()
    mean = weights @ x / n
    centred = (x - mean) * np.sqrt(weights)[:, None]
    return mean, centred.T @ centred / (n - 1)


def _bootstrap_fid(a: np.ndarray, b: np.ndarray, w_a: np.ndarray, w_b: np.ndarray) -> np.ndarray:
    """FID of each resample: (R,) from (R, N) and (R, M) multiplicities."""
    return np.array([_frechet(*_weighted_gaussian(a, x), *_weighted_gaussian(b, y)) for x, y in zip(w_a, w_b)])


def _bootstrap_kid(a: np.ndarray, b: np.ndarray, w_a: np.ndarray, w_b: np.ndarray, block: int = 1024) -> np.ndarray:
    """The unbiased MMD^2 of each resample over all its pairs, pairs of copies of one point left out: (R,)."""
    dim = a.shape[1]

    def weighted_sum(x: np.ndarray, y: np.ndarray, w_x: np.ndarray, w_y: np.ndarray) -> np.ndarray:
        total = np.zeros(len(w_x))  # (R,): sum_ij w_x[r, i] k(x_i, y_j) w_y[r, j], the kernel made block by block
        for start in range(0, len(x), block):
            kernel = (x[start : start + block] @ y.T / dim + 1) ** 3  # (block, M)
            total += ((kernel @ w_y.T) * w_x[:, start : start + block].T).sum(0)
        return total

    def within(x: np.ndarray, w: np.ndarray) -> np.ndarray:
        self_kernel = ((x * x).sum(1) / dim + 1) ** 3  # k(x_i, x_i)
        pairs = w.sum(1) ** 2 - (w * w).sum(1)  # 0 when one point was drawn every time
        with np.errstate(invalid="ignore", divide="ignore"):
            return (weighted_sum(x, x, w, w) - (w * w) @ self_kernel) / pairs

    cross = weighted_sum(a, b, w_a, w_b) / (w_a.sum(1) * w_b.sum(1))
    return within(a, w_a) + within(b, w_b) - 2 * cross


def _split_interval(mean: float, std: float, splits: int, confidence: float) -> tuple[float, float] | None:
    """Student's t interval of a mean over ``splits`` independent parts whose population std is ``std``."""
    if splits < 2:
        return None
    half = _t_quantile((1 + confidence) / 2, splits - 1) * std / np.sqrt(splits - 1)
    return float(mean - half), float(mean + half)


def _t_quantile(p: float, dof: int) -> float:
    """Student's t quantile: exact for 1 and 2 degrees of freedom, else the Cornish-Fisher expansion (Abramowitz &
    Stegun 26.7.5; within 0.004 of the exact 97.5 % point at 3 degrees of freedom, closer above)."""
    if dof == 1:
        return float(np.tan(np.pi * (p - 0.5)))
    if dof == 2:
        return float((2 * p - 1) / np.sqrt(2 * p * (1 - p)))
    z = NormalDist().inv_cdf(p)
    terms = ((z**3 + z) / 4, (5 * z**5 + 16 * z**3 + 3 * z) / 96, (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384,
             (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160)
    return float(z + sum(term / dof ** (i + 1) for i, term in enumerate(terms)))


def kernel_inception_distance(
    a: np.ndarray, b: np.ndarray, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Unbiased MMD^2 with k(x, y) = (x.y / D + 1)^3, averaged over random subsets: (mean, std)."""
    m = min(subset_size, len(a), len(b))
    rng = np.random.default_rng(seed)
    dim = a.shape[1]
    estimates = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        k_xx = (x @ x.T / dim + 1) ** 3
        k_yy = (y @ y.T / dim + 1) ** 3
        k_xy = (x @ y.T / dim + 1) ** 3
        # Unbiased: the diagonals k(x_i, x_i) are left out of the within-set means.
        within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
        estimates.append(within - 2 * k_xy.mean())
    return float(np.mean(estimates)), float(np.std(estimates))


def inception_score(probs: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """exp(E_x KL(p(y|x) || p(y))) over ``splits`` equal parts of (N, C) probabilities: (mean, std)."""
    scores = []
    for part in np.array_split(probs, min(splits, len(probs))):
        marginal = part.mean(0, keepdims=True)
        kl = (part * (np.log(part + 1e-12) - np.log(marginal + 1e-12))).sum(1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def precision_recall(generated: np.ndarray, reference: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall: a point is inside a set's manifold when it lies within the distance from
    some member of the set to that member's k-th nearest neighbour in the set (k at most the set's size - 1)."""
    gen_inside, ref_inside = _manifold_membership(generated, reference, k)
    return float(gen_inside.mean()), float(ref_inside.mean())


def precision_recall_intervals(generated: np.ndarray, reference: np.ndarray, k: int = 3, *, resamples: int = 200,
                               confidence: float = 0.95, seed: int = 0) -> tuple[tuple[float, float], ...]:
    """The bootstrap intervals of ``precision_recall`` that ``score_features`` reports: (precision's, recall's)."""
    if len(generated) < 2 or len(reference) < 2 or resamples < 1:
        raise InputError(f"precision / recall intervals need 2 or more points per set and resamples, got "
                         f"{len(generated)}, {len(reference)}, {resamples}")
    rng = np.random.default_rng(seed)
    weights = _resample_weights(len(generated), resamples, rng), _resample_weights(len(reference), resamples, rng)
    return _membership_intervals(*_manifold_membership(generated, reference, k), *weights, confidence)


def _membership_intervals(gen_inside: np.ndarray, ref_inside: np.ndarray, w_gen: np.ndarray, w_ref: np.ndarray,
                          confidence: float) -> tuple[tuple[float, float], ...]:
    """Precision's and recall's intervals: the scored points resampled, each set's manifold held as it is."""
    return tuple(_centred_interval(float(inside.mean()), weights @ inside / len(inside), confidence, (0.0, 1.0))
                 for inside, weights in ((gen_inside, w_gen), (ref_inside, w_ref)))


def _manifold_membership(generated: np.ndarray, reference: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(generated inside the reference manifold, reference inside the generated manifold): float 0/1 per point."""

    def radii(points: np.ndarray) -> np.ndarray:
        distances = _pairwise(points, points)
        return np.sort(distances, axis=1)[:, min(k, len(points) - 1)]  # column 0 is the point itself

    def inside(points: np.ndarray, manifold: np.ndarray, manifold_radii: np.ndarray) -> np.ndarray:
        return (_pairwise(points, manifold) <= manifold_radii[None, :]).any(axis=1).astype(np.float64)

    return inside(generated, reference, radii(reference)), inside(reference, generated, radii(generated))


@dataclass(frozen=True)
class DiversityReport:
    """Mode-collapse diagnostic of a batch of samples against a batch of real images (pixels in [0, 1]).

    ``distance_ratio``: mean pairwise L2 distance of the samples over that of the real images; near 1 for a healthy
    generator, towards 0 as it collapses. ``duplicate_share``: share of samples whose nearest other sample is closer
    than ``duplicate_threshold`` (a fifth of the real images' mean pairwise distance); real MNIST has ~0.
    ``classes_covered`` / ``class_entropy_bits``: distinct digits the classifier finds, and the entropy of their
    histogram (log2(10) = 3.32 when uniform); None without a classifier.
    """

    pairwise_distance: float
    reference_pairwise_distance: float
    distance_ratio: float
    duplicate_share: float
    duplicate_threshold: float
    classes_covered: int | None
    class_entropy_bits: float | None


def diversity_report(
    samples: np.ndarray, reference: np.ndarray, extractor: FeatureExtractor | None = None
) -> DiversityReport:
    """Diagnose mode collapse from uint8 (N, H, W) ``samples`` and (M, H, W) ``reference`` (same size)."""
    if samples.shape[1:] != reference.shape[1:] or len(samples) < 2 or len(reference) < 2:
        raise InputError(f"samples {samples.shape} and reference {reference.shape} need >= 2 images of one size")
    x = samples.reshape(len(samples), -1).astype(np.float64) / 255
    r = reference.reshape(len(reference), -1).astype(np.float64) / 255
    d_x, d_r = _pairwise(x, x), _pairwise(r, r)
    off_x, off_r = ~np.eye(len(x), dtype=bool), ~np.eye(len(r), dtype=bool)
    mean_x, mean_r = float(d_x[off_x].mean()), float(d_r[off_r].mean())
    threshold = 0.2 * mean_r
    nearest = np.where(off_x, d_x, np.inf).min(axis=1)
    covered, entropy = None, None
    if extractor is not None:
        _, probs = extractor(samples)
        counts = np.bincount(probs.argmax(1), minlength=probs.shape[1])
        share = counts[counts > 0] / counts.sum()
        covered, entropy = int((counts > 0).sum()), float(-(share * np.log2(share)).sum())
    return DiversityReport(
        pairwise_distance=mean_x,
        reference_pairwise_distance=mean_r,
        distance_ratio=mean_x / mean_r,
        duplicate_share=float((nearest < threshold).mean()),
        duplicate_threshold=threshold,
        classes_covered=covered,
        class_entropy_bits=entropy,
    )


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between the rows of (N, D) and (M, D): (N, M)."""
    squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.sqrt(np.clip(squared, 0, None))


def _features_and_probs(model: MnistClassifier, x: torch.Tensor) -> torch.Tensor:
    features = model.features(x)
    return torch.cat([features, model.head(features).softmax(1)], dim=1)  # (B, feature_dim + num_classes)


def _batched(model: nn.Module, images: np.ndarray, device: torch.device, fn, batch_size: int = 500) -> torch.Tensor:
    """Apply ``fn(model, x)`` to uint8 (N, 28, 28) images in batches in eval mode; results concatenated on CPU."""
    model.eval()
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size])).float().div(255)
            outputs.append(fn(model, x.unsqueeze(1).to(device)).cpu())
    return torch.cat(outputs)


def _check_images(images: np.ndarray, what: str) -> None:
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.shape[1:] != (28, 28):
        shape = getattr(images, "shape", None)
        raise InputError(f"{what} must be a uint8 (N, 28, 28) array, not {type(images).__name__} {shape}")


def builtin_feature_extractor(*, device: str = "cpu", num_threads: int | None = None) -> FeatureExtractor:
    """The shipped MNIST classifier as the feature extractor of FID / KID / IS."""
    with as_file(files("synthguard.models") / "weights" / "mnist-classifier") as folder:
        return FeatureExtractor(load_model(MnistClassifier, folder), device=device, num_threads=num_threads)
