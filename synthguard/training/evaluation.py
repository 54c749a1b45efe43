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

Also here: ``diversity_report``, the mode-collapse diagnostic logged while training a GAN.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import as_file, files
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
        digest = hashlib.sha256()
        for key, tensor in sorted(model.state_dict().items()):
            digest.update(key.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        # Names architecture and weights: two extractors with this name give the same scores.
        shape = f"width={model.config.width},features={model.config.feature_dim}"
        self.name = f"mnist-cnn({shape})@{digest.hexdigest()[:12]}"

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


@dataclass(frozen=True)
class GenerativeScores:
    """Sample-quality scores of a generated set against a reference set.

    ``fid``: lower is better, 0 for identical feature statistics. ``kid`` / ``kid_std``: unbiased MMD^2 mean and
    standard deviation over subsets; near 0 (can be slightly negative) when the sets match. ``inception_score`` /
    ``inception_score_std``: over ``is_splits`` splits of the generated set; at most ``num_classes`` (10), high when
    each image is confidently one digit and all digits appear. ``precision``: share of generated images inside the
    reference manifold (quality); ``recall``: share of reference images inside the generated manifold (coverage).
    ``feature_extractor``: the extractor's name; compare scores only across equal names.
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
) -> GenerativeScores:
    """FID, KID, Inception Score and k-NN precision/recall of ``generated`` against ``reference``."""
    if len(generated) < 2 or len(reference) < 2:
        raise InputError(f"need at least 2 generated and 2 reference images, got {len(generated)}, {len(reference)}")
    gen_features, gen_probs = extractor(generated)
    ref_features, _ = extractor(reference)
    kid, kid_std = kernel_inception_distance(gen_features, ref_features, kid_subsets, kid_subset_size, seed)
    inception, inception_std = inception_score(gen_probs, is_splits)
    precision, recall = precision_recall(gen_features, ref_features, k)
    return GenerativeScores(
        fid=frechet_distance(gen_features, ref_features),
        kid=kid,
        kid_std=kid_std,
        inception_score=inception,
        inception_score_std=inception_std,
        precision=precision,
        recall=recall,
        feature_extractor=extractor.name,
        n_generated=len(generated),
        n_reference=len(reference),
    )


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)) of the Gaussians fitted to (N, D) features.

    tr((S_a S_b)^(1/2)) is the sum of the square roots of the eigenvalues of S_a^(1/2) S_b S_a^(1/2), which is
    symmetric positive semi-definite: eigh on it is stable where a general sqrtm can turn complex.
    """
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    cross = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_root = np.sqrt(np.clip(cross, 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root)


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
    some member of the set to that member's k-th nearest neighbour in the set."""

    def radii(points: np.ndarray) -> np.ndarray:
        distances = _pairwise(points, points)
        return np.sort(distances, axis=1)[:, k]  # column 0 is the point itself

    def covered(points: np.ndarray, manifold: np.ndarray, manifold_radii: np.ndarray) -> float:
        return float((_pairwise(points, manifold) <= manifold_radii[None, :]).any(axis=1).mean())

    return (
        covered(generated, reference, radii(reference)),
        covered(reference, generated, radii(generated)),
    )


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
