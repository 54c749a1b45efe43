"""A convolutional variational autoencoder with a standard-normal prior.

Kingma & Welling 2014, "Auto-Encoding Variational Bayes": an encoder gives q(z|x) = N(mu, diag(sigma^2)) and the
reparameterisation z = mu + sigma * eps makes it trainable by gradient descent (the loss, the negative ELBO, is
``synthguard.training.vae``'s). The decoder gives Bernoulli logits: pixels in [0, 1], as is usual for MNIST.

With ``num_classes > 0`` it is a conditional VAE (Sohn, Lee & Yan 2015, "Learning Structured Output Representation
using Deep Conditional Generative Models"): the one-hot label joins the encoder's flattened features (q(z|x, y)) and
the latent at the decoder's input (p(x|z, y)), so a prior draw decodes to a digit of the asked class.

Sampling decodes prior draws; reconstruction and interpolation use the posterior mean mu, so they are
deterministic.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from synthguard.errors import InputError
from synthguard.models.gan import check_labels, check_num_classes


class ConvVAE(ModelMixin, ConfigMixin):
    """images (B, channels, s, s) in [0, 1] <-> latents (B, latent_dim); s a multiple of 4. With ``num_classes > 0``
    every method also takes labels (B,) (a CVAE)."""

    @register_to_config
    def __init__(self, latent_dim: int = 16, width: int = 32, channels: int = 1, image_size: int = 28,
                 num_classes: int = 0):
        super().__init__()
        if image_size % 4:
            raise InputError(f"image_size must be a multiple of 4, not {image_size}")
        check_num_classes(num_classes)
        self.start = image_size // 4
        flat = 2 * width * self.start**2
        self.encoder = nn.Sequential(
            nn.Conv2d(channels, width, 4, 2, 1), nn.SiLU(),  # (B, w, s/2, s/2)
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.SiLU(),  # (B, 2w, s/4, s/4)
            nn.Flatten(),
            nn.Linear(flat + num_classes, 2 * latent_dim),  # (B, 2 * latent_dim): mu and log-variance
        )
        self.project = nn.Sequential(nn.Linear(latent_dim + num_classes, flat), nn.SiLU())
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.SiLU(),  # (B, w, s/2, s/2)
            nn.ConvTranspose2d(width, width, 4, 2, 1), nn.SiLU(),  # (B, w, s, s)
            nn.Conv2d(width, channels, 3, 1, 1),  # (B, channels, s, s) logits
        )

    def _with_label(self, h: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """(B, D) -> (B, D + num_classes) with the one-hot labels appended (unchanged when unconditional)."""
        labels = check_labels(labels, self.config.num_classes, len(h), "VAE")
        if labels is None:
            return h
        return torch.cat([h, F.one_hot(labels, self.config.num_classes).to(h.dtype)], dim=1)

    def encode(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, s, s) -> (mu, log-variance), each (B, latent_dim)."""
        h = self._with_label(self.encoder[:-1](x), labels)  # (B, flat [+ num_classes])
        mu, logvar = self.encoder[-1](h).chunk(2, dim=1)
        return mu, logvar.clamp(-30, 20)  # keeps exp() finite early in training

    def decode_logits(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """(B, latent_dim) -> (B, C, s, s) Bernoulli logits."""
        h = self.project(self._with_label(z, labels))
        return self.decoder(h.view(len(z), -1, self.start, self.start))

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """(B, latent_dim) -> (B, C, s, s) mean image in [0, 1]."""
        return torch.sigmoid(self.decode_logits(z, labels))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One reparameterised pass: (reconstruction logits, mu, log-variance)."""
        mu, logvar = self.encode(x, labels)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decode_logits(z, labels), mu, logvar


