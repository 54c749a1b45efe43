"""A convolutional variational autoencoder with a standard-normal prior.

Kingma & Welling 2014, "Auto-Encoding Variational Bayes": an encoder gives q(z|x) = N(mu, diag(sigma^2)), the
reparameterisation z = mu + sigma * eps trains it by gradient descent, and the loss is the negative ELBO:
reconstruction (Bernoulli likelihood: pixels in [0, 1], as is usual for MNIST) plus ``beta`` times
KL(q(z|x) || N(0, I)) (beta = 1 is the plain VAE; Higgins et al. 2017 for other values).

Sampling decodes prior draws; reconstruction and interpolation use the posterior mean mu, so they are
deterministic.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from synthguard.errors import InputError
from synthguard.generators.base import (
    LatentImageGenerator,
    resize_image,
    resolve_device,
    seeded_normal,
    to_uint8_images,
    torch_threads,
)


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


@dataclass(frozen=True)
class VAETrainConfig:
    latent_dim: int = 16
    width: int = 32
    lr: float = 1e-3
    beta: float = 1.0  # weight of the KL term


@dataclass(frozen=True)
class VAEEpoch:
    """One epoch's means per image, in nats: loss = reconstruction + beta * kl."""

    epoch: int
    loss: float
    reconstruction: float
    kl: float
    seconds: float


@dataclass(frozen=True)
class VAETraining:
    model: ConvVAE
    history: tuple[VAEEpoch, ...]
    steps: int


def vae_loss(model: ConvVAE, x: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Negative ELBO per image of (B, C, s, s) pixels in [0, 1]: (loss, reconstruction, kl), batch means."""
    logits, mu, logvar = model(x)
    reconstruction = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)
    kl = -0.5 * torch.sum(1 + logvar - mu**2 - logvar.exp()) / len(x)
    return reconstruction + beta * kl, reconstruction, kl


def train_vae(
    data: np.ndarray,
    config: VAETrainConfig = VAETrainConfig(),
    *,
    epochs: int = 5,
    batch_size: int = 128,
    seed: int = 0,
    device: str = "auto",
    num_threads: int | None = None,
    max_steps: int | None = None,
    log: Callable[[str], None] | None = None,
) -> VAETraining:
    """Train a ``ConvVAE`` with Adam on uint8 (N, H, W) grey images.

    ``max_steps`` stops after that many steps (0 returns the initial model); ``log`` gets one line per epoch.
    """
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 3 or len(data) < 1:
        shape = getattr(data, "shape", None)
        raise InputError(f"VAE data must be uint8 (N, H, W), not {type(data).__name__} {shape}")
    if epochs <= 0 or batch_size <= 0 or (max_steps is not None and max_steps < 0):
        raise InputError(
            f"epochs and batch_size must be positive and max_steps >= 0, not {epochs!r}, {batch_size!r}, {max_steps!r}"
        )
    target = resolve_device(device)
    with torch_threads(num_threads):
        torch.manual_seed(seed)
        model = ConvVAE(config.latent_dim, config.width, 1, data.shape[1]).to(target)
        optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
        images = torch.from_numpy(data)
        order_rng = torch.Generator().manual_seed(seed)
        history: list[VAEEpoch] = []
        step = 0
        for epoch in range(1, epochs + 1):
            started = time.perf_counter()
            model.train()
            sums, count = np.zeros(3), 0
            for index in torch.randperm(len(images), generator=order_rng).split(batch_size):
                if max_steps is not None and step >= max_steps:
                    break
                x = (images[index].float() / 255).unsqueeze(1).to(target)  # (B, 1, s, s) in [0, 1]
                loss, reconstruction, kl = vae_loss(model, x, config.beta)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                sums += np.array([loss.item(), reconstruction.item(), kl.item()]) * len(index)
                count += len(index)
                step += 1
            if count == 0:  # no step taken: max_steps was reached
                break
            means = sums / count
            history.append(VAEEpoch(epoch, *map(float, means), time.perf_counter() - started))
            if log:
                log(
                    f"vae epoch {epoch}/{epochs}: loss {means[0]:.2f} = reconstruction {means[1]:.2f} "
                    f"+ {config.beta:g} * kl {means[2]:.2f} | {history[-1].seconds:.0f}s"
                )
            if max_steps is not None and step >= max_steps:
                break
    return VAETraining(model.cpu().eval(), tuple(history), step)


class VAEGenerator(LatentImageGenerator):
    """``Generator`` over a trained ``ConvVAE``: image ``i`` is the decoder's mean image of
    temperature * z_i, z_i seeded by ``seed + i``; also reconstructs and interpolates images."""

    model_class = ConvVAE
    default_name = "vae"

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self.model.decode(latents)

    def encode(self, image: np.ndarray) -> torch.Tensor:
        """Posterior mean of one uint8 (H, W) grey or (H, W, 3) RGB image (made grey and resized to the model's
        size): (latent_dim,)."""
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
            raise InputError(f"image must be uint8 (H, W) or (H, W, 3), not {image.dtype} {image.shape}")
        if image.ndim == 3:
            image = image.mean(axis=2).round().astype(np.uint8)
        size = self.model.config.image_size
        x = torch.from_numpy(resize_image(image, (size, size))).float().div(255)[None, None]  # (1, 1, s, s)
        with torch_threads(self.num_threads), torch.inference_mode():
            return self.model.cpu().encode(x)[0][0]

    def reconstruct(self, image: np.ndarray) -> np.ndarray:
        """decode(mu(image)) as uint8 at the output size."""
        return self._render(self.encode(image)[None])[0]

    def interpolate(self, a: np.ndarray, b: np.ndarray, steps: int) -> list[np.ndarray]:
        """``steps`` images decoded along the straight line between the posterior means of images ``a`` and
        ``b``; the first and last equal ``reconstruct(a)`` and ``reconstruct(b)``."""
        return self._render(_lerp(self.encode(a), self.encode(b), _check_steps(steps)))

    def interpolate_seeds(self, seed_a: int, seed_b: int, steps: int) -> list[np.ndarray]:
        """``steps`` images along the great circle between the latents of two seeds (slerp keeps the latents at
        the norm the prior puts them, where linear mixing would shrink them); the ends equal
        ``generate(1, seed_a)`` and ``generate(1, seed_b)`` on the CPU."""
        steps = _check_steps(steps)
        for seed in (seed_a, seed_b):
            if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
                raise InputError(f"seed must be a non-negative integer, not {seed!r}")
        za, zb = seeded_normal([seed_a, seed_b], self.latent_shape) * self.temperature
        return self._render(_slerp(za, zb, steps))

    def _render(self, latents: torch.Tensor) -> list[np.ndarray]:
        with torch_threads(self.num_threads), torch.inference_mode():
            images = to_uint8_images(self.model.cpu().decode(latents))
        return [resize_image(image, self.output_size) for image in images]


def _check_steps(steps: int) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise InputError(f"interpolation steps must be an integer >= 2 (both ends included), not {steps!r}")
    return steps


def _lerp(a: torch.Tensor, b: torch.Tensor, steps: int) -> torch.Tensor:
    """(D,), (D,) -> (steps, D), ends exactly a and b."""
    t = torch.linspace(0, 1, steps)[:, None]
    path = (1 - t) * a + t * b
    path[0], path[-1] = a, b  # exact ends, free of rounding in the blend
    return path


def _slerp(a: torch.Tensor, b: torch.Tensor, steps: int) -> torch.Tensor:
    """Spherical interpolation (Shoemake 1985) of (D,) vectors -> (steps, D), ends exactly a and b."""
    cos = torch.dot(a / a.norm(), b / b.norm()).clamp(-1, 1)
    omega = torch.arccos(cos)
    if omega.abs() < 1e-6 or math.isclose(omega.item(), math.pi, abs_tol=1e-6):
        return _lerp(a, b, steps)  # parallel or opposite: the great circle is not unique, take the chord
    t = torch.linspace(0, 1, steps)[:, None]
    path = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)
    path[0], path[-1] = a, b
    return path
