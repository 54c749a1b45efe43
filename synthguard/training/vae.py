"""Training of the convolutional VAE (``synthguard.models.vae``): the negative ELBO with a beta-weighted KL term."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from synthguard.core.torch_utils import resolve_device, torch_threads
from synthguard.errors import InputError
from synthguard.models.vae import ConvVAE


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
