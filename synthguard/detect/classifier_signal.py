"""The classifier signal: how likely the shipped (or a given) discriminator finds an image synthetic, and where."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from synthguard.errors import InputError
from synthguard.models.detector import PatchDetector


@dataclass(frozen=True)
class ClassifierSignal:
    """``probability`` is the calibrated P(synthetic); ``threshold`` the decision threshold in force (the policy's,
    or the detector's own, chosen for ``threshold_fpr`` on held-out real images); ``synthetic`` the call."""

    model: str
    probability: float | None = None
    threshold: float | None = None
    threshold_fpr: float | None = None  # measured FPR of the detector's own threshold on held-out real images
    synthetic: bool = False
    patches: int = 0
    heatmap: np.ndarray | None = field(default=None, repr=False, compare=False)  # (rows, cols) P per patch
    skipped: str | None = None

    def to_dict(self) -> dict:
        return {"model": self.model, "probability": self.probability, "threshold": self.threshold,
                "threshold_fpr": self.threshold_fpr, "synthetic": self.synthetic, "patches": self.patches,
                "heatmap": None if self.heatmap is None else np.round(self.heatmap, 3).tolist(),
                "skipped": self.skipped}


def score_classifier(pixels: np.ndarray, detector: PatchDetector, threshold: float | None = None) -> ClassifierSignal:
    """Score decoded pixels; ``threshold`` overrides the detector's calibrated one (a policy's choice)."""
    try:
        result = detector.score(pixels)
    except InputError as exc:
        return ClassifierSignal(detector.name, skipped=str(exc))
    own = threshold is None
    cut = detector.calibration.threshold if own else float(threshold)
    return ClassifierSignal(
        model=detector.name,
        probability=result.probability,
        threshold=cut,
        threshold_fpr=detector.calibration.measured_fpr if own else None,
        synthetic=result.probability >= cut,
        patches=result.patches,
        heatmap=result.heatmap,
    )
