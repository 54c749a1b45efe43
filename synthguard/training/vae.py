"""Training of the convolutional VAE (``synthguard.models.vae``): the negative ELBO with a beta-weighted KL term.

The loss (Kingma & Welling 2014) is reconstruction (Bernoulli likelihood) plus ``beta`` times KL(q(z|x) || N(0, I));
beta = 1 is the plain VAE (Higgins et al. 2017 for other values). The architecture is the model's config
(``model_config``); this module holds optimiser settings only. With labels the model is a conditional VAE (Sohn et
al. 2015): encoder and decoder both see the one-hot label.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from synthguard.core.torch_utils import resolve_device, torch_threads
from synthguard.models.vae import ConvVAE
from synthguard.training.architecture import build, check_fits_images, check_image_training
from synthguard.training.gan import check_labels_for


@dataclass(frozen=True)
class VAETrainConfig:
    """Optimiser and loss settings of ``train_vae`` (the architecture is the model's config)."""

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


def vae_loss(model: ConvVAE, x: torch.Tensor, beta: float, labels: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Negative ELBO per image of (B, C, s, s) pixels in [0, 1] (with their (B,) labels for a CVAE): (loss,
    reconstruction, kl), batch means."""
    logits, mu, logvar = model(x, labels)
    reconstruction = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)
    kl = -0.5 * torch.sum(1 + logvar - mu**2 - logvar.exp()) / len(x)
    return reconstruction + beta * kl, reconstruction, kl


def train_vae(
    data: np.ndarray,
    config: VAETrainConfig = VAETrainConfig(),
    *,
    model_config: Mapping[str, Any] | None = None,
    epochs: int = 5,
    batch_size: int = 128,
    seed: int = 0,
    device: str = "auto",
    num_threads: int | None = None,
    max_steps: int | None = None,
    log: Callable[[str], None] | None = None,
    labels: np.ndarray | None = None,
) -> VAETraining:
    """Train a ``ConvVAE`` with Adam on uint8 (N, H, W) grey images.

    ``model_config``: its architecture, a ``ConvVAE`` config or part of one (``image_size`` defaults to the
    images', the rest to the class's defaults), initialised from ``seed``.

    ``labels`` (N,) integers in [0, num_classes) make it a conditional VAE (``num_classes`` from ``model_config``,
    10 when it has none). ``max_steps`` stops after that many steps (0 returns the initial model); ``log`` gets one
    line per epoch.
    """
    check_image_training(data, "VAE", min_images=1, epochs=epochs, batch_size=batch_size, max_steps=max_steps)
    labels, num_classes = check_labels_for(data, labels, model_config)
    target = resolve_device(device)
    with torch_threads(num_threads):
        torch.manual_seed(seed)
        model = build(ConvVAE, {**(model_config or {}), "num_classes": num_classes}, image_size=data.shape[1])
        check_fits_images(model, data, "the VAE takes")
        model = model.to(target)
        optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
        images = torch.from_numpy(data)
        classes = torch.from_numpy(labels) if labels is not None else None
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
                y = classes[index].to(target) if classes is not None else None
                loss, reconstruction, kl = vae_loss(model, x, config.beta, y)
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
