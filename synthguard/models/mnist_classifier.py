"""The small MNIST CNN whose penultimate layer is the feature space of the generator metrics (FID, KID, IS,
precision / recall); the shipped weights are in ``weights/mnist-classifier``."""

from __future__ import annotations

import hashlib

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn


class MnistClassifier(ModelMixin, ConfigMixin):
    """Two conv blocks and two linear layers; ``features`` is the penultimate layer the metrics use."""

    @register_to_config
    def __init__(self, width: int = 32, feature_dim: int = 128, num_classes: int = 10, dropout: float = 0.25):
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, w, 14, 14)
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 2w, 7, 7)
        )
        self.embed = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(2 * width * 49, feature_dim), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(feature_dim, num_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 28, 28) in [0, 1] -> (B, feature_dim)."""
        return self.embed(self.convs(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 28, 28) in [0, 1] -> (B, num_classes) logits."""
        return self.head(self.features(x))

    def weights_name(self) -> str:
        """Names architecture and weights (first 12 hex of the sha256 over the state dict): two classifiers with
        this name give the same scores."""
        digest = hashlib.sha256()
        for key, tensor in sorted(self.state_dict().items()):
            digest.update(key.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return f"mnist-cnn(width={self.config.width},features={self.config.feature_dim})@{digest.hexdigest()[:12]}"
