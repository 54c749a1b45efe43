"""Evaluating a trained detector on held-out data: AUC, detection rate and false-positive rate per family and
real domain, under perturbations applied to both classes alike, and how it fares on families it never saw.

The AUC is exact and rank-based (the Mann-Whitney U statistic over all real x fake pairs, ties counted one half),
so evaluation needs numpy only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from synthguard.core.samples import procedural_image
from synthguard.errors import InputError
from synthguard.models.detector import PatchDetector
from synthguard.training.augmentation import jpeg, rescale
from synthguard.training.detector import DetectorData, DetectorTrainConfig, train_detector


def roc_auc(labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for binary ``labels`` (1 = positive): the probability that a random
    positive scores above a random negative, ties counting one half. Exact, from mid-ranks, in O(N log N)."""
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    if labels.ndim != 1 or labels.shape != scores.shape or not set(np.unique(labels).tolist()) <= {0, 1}:
        raise InputError(f"AUC needs (N,) 0/1 labels and (N,) scores, not {labels.shape}, {scores.shape}")
    positive = labels == 1
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if not n_pos or not n_neg:
        raise InputError(f"AUC needs both classes, not {n_pos} positive and {n_neg} negative scores")
    if np.isnan(scores).any():
        raise InputError("AUC scores must not be NaN")
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    last = np.cumsum(counts)  # 1-based rank of the last score in each group of equal scores
    ranks = (last - (counts - 1) / 2)[inverse]  # mid-rank of each score
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


PERTURBATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "none": lambda image: image,
    "jpeg75": lambda image: jpeg(image, 75),
    "resize0.5": lambda image: rescale(image, 0.5),
}


@dataclass(frozen=True)
class FamilyScore:
    family: str
    perturbation: str
    auc: float  # real test images vs this family's test images
    tpr: float  # fraction of the family flagged at the stored threshold
    accuracy: float  # balanced: (TPR + (1 - FPR)) / 2 at the stored threshold


@dataclass(frozen=True)
class DetectorEvaluation:
    families: list[FamilyScore]
    fpr: dict[str, dict[str, float]]  # perturbation -> real domain ("photo", "digit", "all") -> FPR at threshold
    ms_per_512: float
    n_real: int
    n_per_family: dict[str, int]
    # perturbation -> stress domain (``stress_real``) -> FPR at threshold; reported apart, never pooled into AUCs
    stress_fpr: dict[str, dict[str, float]] = field(default_factory=dict)


def evaluate_detector(detector: PatchDetector, real: Mapping[str, Sequence[np.ndarray]],
                      fakes_by_family: Mapping[str, Sequence[np.ndarray]], *,
                      perturbations: Sequence[str] = ("none", "jpeg75", "resize0.5"),
                      stress: Mapping[str, Sequence[np.ndarray]] | None = None) -> DetectorEvaluation:
    """AUC, detection rate and balanced accuracy per family, and FPR per real domain, for each perturbation
    (applied to both classes alike), plus the mean milliseconds to score a 512x512 RGB image. ``stress``: more
    real domains (``stress_real``) whose FPR is reported on its own, outside the AUCs and the pooled FPR."""
    unknown = set(perturbations) - set(PERTURBATIONS)
    if unknown:
        raise InputError(f"unknown perturbations {sorted(unknown)}: choose from {sorted(PERTURBATIONS)}")
    threshold = detector.calibration.threshold
    rows, fprs, stress_fprs = [], {}, {}
    for name in perturbations:
        change = PERTURBATIONS[name]
        if stress:
            stress_fprs[name] = {domain: float(np.mean([detector.score(change(im)).probability >= threshold
                                                        for im in images]))
                                 for domain, images in stress.items()}
        real_p = {domain: np.array([detector.score(change(im)).probability for im in images])
                  for domain, images in real.items()}
        all_real = np.concatenate(list(real_p.values()))
        fpr = float(np.mean(all_real >= threshold))
        fprs[name] = {**{d: float(np.mean(p >= threshold)) for d, p in real_p.items()}, "all": fpr}
        for family, images in fakes_by_family.items():
            fake_p = np.array([detector.score(change(im)).probability for im in images])
            labels = np.r_[np.zeros(len(all_real)), np.ones(len(fake_p))]
            tpr = float(np.mean(fake_p >= threshold))
            rows.append(FamilyScore(family, name, roc_auc(labels, np.r_[all_real, fake_p]), tpr,
                                    (tpr + 1 - fpr) / 2))
    return DetectorEvaluation(families=rows, fpr=fprs, ms_per_512=_ms_per_512(detector),
                              n_real=sum(map(len, real.values())),
                              n_per_family={k: len(v) for k, v in fakes_by_family.items()},
                              stress_fpr=stress_fprs)


def _ms_per_512(detector: PatchDetector, repeats: int = 10) -> float:
    image = procedural_image(512, 512, seed=0)
    detector.score(image)  # warm-up: first-call allocations
    start = time.perf_counter()
    for _ in range(repeats):
        detector.score(image)
    return 1000 * (time.perf_counter() - start) / repeats


def leave_one_family_out(train: DetectorData, calibration: DetectorData, test: DetectorData, *,
                         config: DetectorTrainConfig, patch_config: Mapping[str, Any] | None = None,
                         global_config: Mapping[str, Any] | None = None, global_extra: DetectorData | None = None,
                         seed: int = 0, num_threads: int | None = None,
                         log: Callable[[str], None] = print) -> dict[str, float]:
    """For each family: train and calibrate without it (the views' architecture from ``patch_config`` and
    ``global_config``, as in ``train_detector``), then the AUC of its test images against the real test images
    (clean). How the detector fares on a generator it never saw."""
    aucs = {}
    real_test = test.real_images
    for family in train.fakes:
        detector, _ = train_detector(
            train.real_images, {k: v for k, v in train.fakes.items() if k != family},
            calibration_real=calibration.real_images,
            calibration_fakes_by_family={k: v for k, v in calibration.fakes.items() if k != family},
            config=config, patch_config=patch_config, global_config=global_config, global_extra=global_extra,
            global_families=[f for f in train.fakes if f not in (family, "upsampled")], seed=seed,
            num_threads=num_threads, log=lambda _msg: None)
        real_logits = [detector.score(im).probability for im in real_test]
        fake_logits = [detector.score(im).probability for im in test.fakes[family]]
        labels = np.r_[np.zeros(len(real_logits)), np.ones(len(fake_logits))]
        aucs[family] = roc_auc(labels, np.r_[real_logits, fake_logits])
        log(f"leave out {family}: AUC {aucs[family]:.3f}")
    return aucs


def table(evaluation: DetectorEvaluation, lofo: Mapping[str, float] | None = None,
          trained: Sequence[str] | None = None) -> str:
    """The evaluation as a Markdown table: one row per family, AUC / detection rate per perturbation.

    ``trained``: the fake families the detector was trained on (default: all). A test family outside it is marked
    "(not trained)": its row measures a generator the detector never saw, so its own AUC is a left-out figure."""
    names = list(dict.fromkeys(row.perturbation for row in evaluation.families))
    by = {(row.family, row.perturbation): row for row in evaluation.families}
    unseen = [f for f in evaluation.n_per_family if trained is not None and f not in trained]
    header = ["family", "n"] + [f"AUC {p}" for p in names] + [f"TPR {p}" for p in names] + ["bal. acc"]
    if lofo is not None:
        header.append("AUC left out")
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for family, n in evaluation.n_per_family.items():
        cells = [family + (" (not trained)" if family in unseen else ""), str(n)]
        cells += [f"{by[family, p].auc:.3f}" for p in names]
        cells += [f"{by[family, p].tpr:.2f}" for p in names] + [f"{by[family, names[0]].accuracy:.3f}"]
        if lofo is not None:
            left_out = by[family, names[0]].auc if family in unseen else lofo.get(family)
            cells.append("-" if left_out is None else f"{left_out:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    if unseen:
        lines.append(f"\n(not trained): not in this detector's training ({', '.join(unseen)}); every figure in such a "
                     "row is for a family the detector never saw")
    for p in names:
        fpr = evaluation.fpr[p]
        lines.append(f"\nFPR on real test images at the threshold, {p}: "
                     + ", ".join(f"{d} {v:.3f}" for d, v in fpr.items()))
    for p, fpr in evaluation.stress_fpr.items():
        lines.append(f"\nFPR on harder real photos (enlarged, soft, denoised; not in the AUCs) at the threshold, {p}: "
                     + ", ".join(f"{d} {v:.3f}" for d, v in fpr.items()))
    lines.append(f"\n{evaluation.ms_per_512:.1f} ms per 512x512 image ({evaluation.n_real} real test images)")
    return "\n".join(lines)
