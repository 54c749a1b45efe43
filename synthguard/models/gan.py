"""A DCGAN-family image generator and the spectrally normalised discriminator it is trained against.

- Generator: Radford, Metz & Chintala 2016, "Unsupervised Representation Learning with Deep Convolutional
  Generative Adversarial Networks" (transposed convolutions, batch norm, ReLU, tanh output).
- Discriminator: Miyato et al. 2018, "Spectral Normalization for Generative Adversarial Networks" (every weight
  divided by its largest singular value, estimated by one power iteration per step).
- Class-conditional variants (``num_classes > 0``): the generator takes a learned label embedding concatenated
  with z (Mirza & Osindero 2014, "Conditional Generative Adversarial Nets"); the discriminator adds the projection
  term <embed(y), phi(x)> to its score (Miyato & Koyama 2018, "cGANs with Projection Discriminator").

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

LABEL_EMBEDDING = 16  # width of a conditional generator's label embedding


def check_labels(labels: torch.Tensor | None, num_classes: int, batch: int, what: str) -> torch.Tensor | None:
    """``labels`` must be given exactly when ``num_classes > 0``: an integer (B,) tensor in [0, num_classes)."""
    if num_classes == 0:
        if labels is not None:
            raise InputError(f"this {what} is unconditional: it takes no labels")
        return None
    if labels is None:
        raise InputError(f"this {what} is class-conditional ({num_classes} classes): it needs labels")
    integer = isinstance(labels, torch.Tensor) and labels.dtype in (torch.int64, torch.int32)
    if not integer or labels.shape != (batch,):
        shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise InputError(f"labels must be an integer tensor of shape ({batch},), not {shape}")
    if batch and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise InputError(f"labels must lie in [0, {num_classes}), not {int(labels.min())}..{int(labels.max())}")
    return labels.long()


def check_num_classes(num_classes: int) -> None:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
        raise InputError(f"num_classes must be an integer >= 0 (0: unconditional), not {num_classes!r}")


class DCGANGenerator(ModelMixin, ConfigMixin):
    """z (B, latent_dim) [+ labels (B,) when ``num_classes > 0``] -> images (B, channels, image_size, image_size)
    in [-1, 1]. A conditional generator concatenates a learned ``LABEL_EMBEDDING``-wide embedding of the label to
    z."""

    @register_to_config
    def __init__(self, latent_dim: int = 64, width: int = 64, channels: int = 1, image_size: int = 28,
                 num_classes: int = 0):
        super().__init__()
        if image_size % 4:
            raise InputError(f"image_size must be a multiple of 4, not {image_size}")
        check_num_classes(num_classes)
        self.start = image_size // 4
        if num_classes:
            self.embed = nn.Embedding(num_classes, LABEL_EMBEDDING)
        self.project = nn.Sequential(
            nn.Linear(latent_dim + (LABEL_EMBEDDING if num_classes else 0), 2 * width * self.start**2, bias=False),
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

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        labels = check_labels(labels, self.config.num_classes, len(z), "generator")
        if labels is not None:
            z = torch.cat([z, self.embed(labels)], dim=1)  # (B, latent_dim + LABEL_EMBEDDING)
        x = self.project(z).view(len(z), -1, self.start, self.start)  # (B, 2w, s/4, s/4)
        return self.upsample(x)


class SNDiscriminator(ModelMixin, ConfigMixin):
    """images (B, channels, s, s) in [-1, 1] [+ labels (B,) when ``num_classes > 0``] -> (B,) unbounded scores
    (real high, fake low). A conditional one scores psi(phi(x)) + <embed(y), phi(x)> (the projection
    discriminator), phi(x) the flattened features before the last layer."""

    @register_to_config
    def __init__(self, width: int = 64, channels: int = 1, image_size: int = 28, num_classes: int = 0):
        super().__init__()
        check_num_classes(num_classes)
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
        if num_classes:
            self.embed = spectral_norm(nn.Embedding(num_classes, 2 * width * (image_size // 4) ** 2))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        labels = check_labels(labels, self.config.num_classes, len(x), "discriminator")
        if labels is None:
            return self.body(x).squeeze(1)
        features = self.body[:-1](x)  # (B, 2w * (s/4)^2)
        return self.body[-1](features).squeeze(1) + (self.embed(labels) * features).sum(1)


