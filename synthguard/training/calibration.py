"""Fitting a detector's ``Calibration`` (``synthguard.models.detector``) on held-out scores.

A logistic map with positive weights (Platt scaling, Platt 1999; with a temperature and a bias per view, Guo et al.
2017) is fitted by LBFGS on the log-loss, and the decision threshold is set for a stated false-positive rate on the
held-out real images. The models only apply the result.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from synthguard.errors import InputError
from synthguard.models.detector import Calibration


def fit_calibration(logits: np.ndarray, labels: np.ndarray, *, target_fpr: float = 0.01,
                    steps: int = 200) -> Calibration:
    """Fit positive weights and a bias by minimising the log-loss of held-out image scores ``logits`` ((N,) for
    one view or (N, views); ``labels`` 1 = synthetic), then set the threshold for ``target_fpr`` on the held-out
    real ones. Use images the network was not trained on: on training images it is over-confident, and the
    threshold would let too many real images through as fake."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels)
    if logits.ndim == 1:
        logits = logits[:, None]
    if (logits.ndim != 2 or logits.shape[0] != labels.shape[0] or labels.ndim != 1
            or not set(np.unique(labels)) == {0, 1}):
        raise InputError(f"calibration needs (N,) or (N, views) scores and N 0/1 labels of both classes, not "
                         f"{logits.shape}, {labels.shape}, classes {sorted(set(np.unique(labels).tolist()))}")
    if not 0 <= target_fpr < 1:
        raise InputError(f"target_fpr must be in [0, 1), not {target_fpr!r}")
    x = torch.from_numpy(logits)
    y = torch.from_numpy(labels.astype(np.float64))
    log_w = torch.zeros(logits.shape[1], dtype=torch.float64, requires_grad=True)  # weights = exp(log_w) > 0
    bias = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_w, bias], lr=0.5, max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ log_w.exp() + bias, y)
        loss.backward()
        return loss

    optimizer.step(closure)
    weights, b = tuple(max(float(w), 1e-12) for w in log_w.detach().exp()), float(bias.detach())
    z = logits[labels == 0] @ np.asarray(weights) + b
    real_p = np.sort(np.exp(-np.logaddexp(0.0, -z)))[::-1]  # sigmoid without overflow warnings; descending
    allowed = math.floor(target_fpr * len(real_p))  # real images that may score at or above the threshold
    # Just above the (allowed+1)-th highest real probability: that one and all below fall under the threshold.
    threshold = float(min(1.0, np.nextafter(real_p[allowed], np.inf)))
    return Calibration(
        weights=weights,
        bias=b,
        threshold=threshold,
        target_fpr=float(target_fpr),
        measured_fpr=float(np.mean(real_p >= threshold)),
        n_real=len(real_p),
        n_fake=int(np.sum(labels == 1)),
    )
