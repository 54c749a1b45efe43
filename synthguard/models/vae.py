"""A convolutional variational autoencoder with a standard-normal prior.

Kingma & Welling 2014, "Auto-Encoding Variational Bayes": an encoder gives q(z|x) = N(mu, diag(sigma^2)) and the
reparameterisation z = mu + sigma * eps makes it trainable by gradient descent (the loss, the negative ELBO, is
``synthguard.training.vae``'s). The decoder gives Bernoulli logits: pixels in [0, 1], as is usual for MNIST.

Sampling decodes prior draws; reconstruction and interpolation use the posterior mean mu, so they are
deterministic.
"""

from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from synthguard.errors import InputError


class ConvVAE(ModelMixin, ConfigMixin):
    """images (B, channels, s, s) in [0, 1] <-> latents (B, latent_dim); s a multiple of 4."""

    @register_to_config
    def __init__(self, latent_dim: int = 16, width: int = 32, channels: int = 1, image_size: int = 28):
        super().__init__()
        if image_size % 4:
            raise InputError(f"image_size must be a multiple of 4, not {image_size}")
        self.start = image_size // 4
        flat = 2 * width * self.start**2
        self.encoder = nn.Sequential(
            nn.Conv2d(channels, width, 4, 2, 1), nn.SiLU(),  # (B, w, s/2, s/2)
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.SiLU(),  # (B, 2w, s/4, s/4)
            nn.Flatten(),
            nn.Linear(flat, 2 * latent_dim),  # (B, 2 * latent_dim): mu and log-variance
        )
        self.project = nn.Sequential(nn.Linear(latent_dim, flat), nn.SiLU())
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.SiLU(),  # (B, w, s/2, s/2)
            nn.ConvTranspose2d(width, width, 4, 2, 1), nn.SiLU(),  # (B, w, s, s)
            nn.Conv2d(width, channels, 3, 1, 1),  # (B, channels, s, s) logits
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, s, s) -> (mu, log-variance), each (B, latent_dim)."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar.clamp(-30, 20)  # keeps exp() finite early in training

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim) -> (B, C, s, s) Bernoulli logits."""
        return self.decoder(self.project(z).view(len(z), -1, self.start, self.start))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim) -> (B, C, s, s) mean image in [0, 1]."""
        return torch.sigmoid(self.decode_logits(z))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One reparameterised pass: (reconstruction logits, mu, log-variance)."""
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decode_logits(z), mu, logvar


