"""Fitting the linear probe of a ``BackboneDetector`` (``synthguard.models.backbone``): L2-regularised logistic
regression on a frozen vision backbone's features (Ojha et al. 2023), then its calibration on held-out images."""

from __future__ import annotations

import numpy as np
import torch

from synthguard.models.backbone import BackboneDetector, backbone_features, load_backbone
from synthguard.training.calibration import fit_calibration


def train_backbone_detector(source: str, real: list[np.ndarray], fakes: list[np.ndarray],
                            calibration_real: list[np.ndarray], calibration_fakes: list[np.ndarray], *,
                            target_fpr: float = 0.01, l2: float = 1e-3, num_threads: int | None = None,
                            name: str | None = None) -> BackboneDetector:
    """Fit the linear probe (L2-regularised logistic regression on the raw, unstandardised features, LBFGS) on the
    training images' features, then the calibration and threshold on the held-out ones."""
    backbone = load_backbone(source, num_threads)

    def feats(images):
        return backbone_features(backbone, images, num_threads)

    x = torch.from_numpy(np.concatenate([feats(real), feats(fakes)])).double()
    y = torch.cat([torch.zeros(len(real)), torch.ones(len(fakes))]).double()
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([w, b], lr=0.5, max_iter=300, line_search_fn="strong_wolfe")
    pos_weight = torch.tensor(len(real) / max(1, len(fakes)), dtype=torch.float64)

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ w + b, y, pos_weight=pos_weight) \
            + l2 * (w * w).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    weight, bias = w.detach().numpy(), float(b.detach())
    held = np.concatenate([feats(calibration_real), feats(calibration_fakes)]) @ weight + bias
    labels = np.r_[np.zeros(len(calibration_real)), np.ones(len(calibration_fakes))].astype(int)
    calibration = fit_calibration(held, labels, target_fpr=target_fpr)
    return BackboneDetector(source, weight, bias, calibration, name=name, num_threads=num_threads, backbone=backbone)
