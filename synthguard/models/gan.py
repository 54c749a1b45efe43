"""A DCGAN-family image generator and the spectrally normalised discriminator it is trained against.

- Generator: Radford, Metz & Chintala 2016, "Unsupervised Representation Learning with Deep Convolutional
  Generative Adversarial Networks" (transposed convolutions, batch norm, ReLU, tanh output).
- Discriminator: Miyato et al. 2018, "Spectral Normalization for Generative Adversarial Networks" (every weight
  divided by its largest singular value, estimated by one power iteration per step).

Sized for small images (28x28 MNIST): the generator starts from a (2w, s/4, s/4) map and doubles twice. The
training (hinge loss, optional weight averaging) is ``synthguard.training.gan``.
"""
from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from synthguard.errors import InputError


class DCGANGenerator(ModelMixin, ConfigMixin):
    """z (B, latent_dim) -> images (B, channels, image_size, image_size) in [-1, 1]."""

    @register_to_config
    def __init__(self, latent_dim: int = 64, width: int = 64, channels: int = 1, image_size: int = 28):
        super().__init__()
        if image_size % 4:
            raise InputError(f"image_size must be a multiple of 4, not {image_size}")
        self.start = image_size // 4
        self.project = nn.Sequential(
            nn.Linear(latent_dim, 2 * width * self.start**2, bias=False),
            nn.BatchNorm1d(2 * width * self.start**2),
            nn.ReLU(),
        )
        self.upsample = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=False),  # (B, w, s/2, s/2)
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),  # (B, w/2, s, s)
            nn.BatchNorm2d(width // 2),
            nn.ReLU(),
            # A 3x3 conv at full resolution smooths the checkerboard that stride-2 transposed convs leave.
            nn.Conv2d(width // 2, channels, 3, 1, 1),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.project(z).view(len(z), -1, self.start, self.start)  # (B, 2w, s/4, s/4)
        return self.upsample(x)


class SNDiscriminator(ModelMixin, ConfigMixin):
    """images (B, channels, s, s) in [-1, 1] -> (B,) unbounded scores (real high, fake low)."""

    @register_to_config
    def __init__(self, width: int = 64, channels: int = 1, image_size: int = 28):
        super().__init__()
        self.body = nn.Sequential(
            spectral_norm(nn.Conv2d(channels, width, 3, 1, 1)),  # (B, w, s, s)
            nn.LeakyReLU(0.1),
            spectral_norm(nn.Conv2d(width, width, 4, 2, 1)),  # (B, w, s/2, s/2)
            nn.LeakyReLU(0.1),
            spectral_norm(nn.Conv2d(width, 2 * width, 4, 2, 1)),  # (B, 2w, s/4, s/4)
            nn.LeakyReLU(0.1),
            nn.Flatten(),
            spectral_norm(nn.Linear(2 * width * (image_size // 4) ** 2, 1)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).squeeze(1)


