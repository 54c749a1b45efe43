"""Training of the DCGAN generator against the spectrally normalised discriminator (``synthguard.models.gan``),
with a per-epoch mode-collapse diagnostic.

- Loss: the hinge loss of Miyato et al. 2018 (as in the spectral-normalisation paper), one discriminator and one
  generator Adam step per batch with DCGAN's momentum (Radford et al. 2016).
- Optional weight averaging of the returned generator: Yazici et al. 2019, "The Unusual Effectiveness of
  Averaging in GAN Training" (``GANTrainConfig.ema_decay``).

The architecture is the generator's config (``model_config``); this module holds optimiser settings only.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from synthguard.core.torch_utils import resolve_device, seeded_normal, to_uint8_images, torch_threads
from synthguard.models.gan import DCGANGenerator, SNDiscriminator
from synthguard.training.architecture import build, check_fits_images, check_image_training
from synthguard.training.evaluation import DiversityReport, FeatureExtractor, diversity_report


@dataclass(frozen=True)
class GANTrainConfig:
    """Optimiser and diagnostic settings of ``train_gan`` (the architecture is the generator's config)."""

    lr_generator: float = 2e-4
    lr_discriminator: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)  # DCGAN's Adam momentum
    diagnostic_samples: int = 256  # fixed latents (and real images) for the per-epoch mode-collapse diagnostic
    # The returned generator is the exponential moving average of the trained one's weights with this decay, which
    # smooths the oscillation of adversarial training; None returns the last iterate.
    ema_decay: float | None = None


@dataclass(frozen=True)
class GANEpoch:
    """One epoch: mean losses, and the diagnostic on fixed latents after it."""

    epoch: int
    loss_discriminator: float
    loss_generator: float
    real_score: float  # mean D(x) on real images
    fake_score: float  # mean D(G(z))
    diversity: DiversityReport
    seconds: float


@dataclass(frozen=True)
class GANTraining:
    """``generator``: the weight average when ``config.ema_decay`` is set, else the last iterate."""

    generator: DCGANGenerator
    discriminator: SNDiscriminator
    history: tuple[GANEpoch, ...]
    steps: int


def train_gan(
    data: np.ndarray,
    config: GANTrainConfig = GANTrainConfig(),
    *,
    model_config: Mapping[str, Any] | None = None,
    epochs: int = 5,
    batch_size: int = 128,
    seed: int = 0,
    device: str = "auto",
    num_threads: int | None = None,
    max_steps: int | None = None,
    classifier: FeatureExtractor | None = None,
    log: Callable[[str], None] | None = None,
) -> GANTraining:
    """Train a DCGAN generator against a spectral-norm discriminator on uint8 (N, H, W) grey images.

    ``model_config``: the generator's architecture, a ``DCGANGenerator`` config or part of one (e.g.
    ``{"width": 32}``, or ``DCGANGenerator.load_config(folder)`` for a saved model's); ``image_size`` defaults to
    the images', the rest to the class's defaults. The discriminator takes the generator's width, channels
    and image size. Both are initialised from ``seed``.

    One discriminator and one generator Adam step per batch, hinge loss. After each epoch the generator is
    diagnosed for mode collapse on ``config.diagnostic_samples`` fixed latents (``diversity_report``; class
    coverage when ``classifier`` is given) and ``log`` gets one line. ``max_steps`` stops after that many steps
    (0 returns the initial networks).
    """
    check_image_training(data, "GAN", min_images=2, epochs=epochs, batch_size=batch_size, max_steps=max_steps)
    target = resolve_device(device)
    with torch_threads(num_threads):
        torch.manual_seed(seed)
        generator = build(DCGANGenerator, model_config, image_size=data.shape[1])
        check_fits_images(generator, data, "the generator makes")
        arch = generator.config
        discriminator = SNDiscriminator(arch.width, arch.channels, arch.image_size).to(target)
        generator = generator.to(target)
        # The average starts as a copy and follows the trained generator; its batch-norm statistics are copied.
        average = copy.deepcopy(generator) if config.ema_decay is not None else generator
        opt_g = torch.optim.Adam(generator.parameters(), lr=config.lr_generator, betas=config.betas)
        opt_d = torch.optim.Adam(discriminator.parameters(), lr=config.lr_discriminator, betas=config.betas)
        images = torch.from_numpy(data)
        order_rng = torch.Generator().manual_seed(seed)
        fixed_z = seeded_normal(list(range(config.diagnostic_samples)), (arch.latent_dim,)).to(target)
        fixed_real = data[torch.randperm(len(data), generator=order_rng)[: config.diagnostic_samples].numpy()]
        history: list[GANEpoch] = []
        step = 0
        for epoch in range(1, epochs + 1):
            started = time.perf_counter()
            generator.train()
            sums = np.zeros(4)
            batches = 0
            for index in torch.randperm(len(images), generator=order_rng).split(batch_size):
                if max_steps is not None and step >= max_steps:
                    break
                if len(index) < 2:  # batch norm needs two samples
                    continue
                real = (images[index].float() / 127.5 - 1).unsqueeze(1).to(target)  # (B, 1, s, s) in [-1, 1]
                z = torch.randn(len(index), arch.latent_dim, device=target)
                fake = generator(z)
                real_score, fake_score = discriminator(real), discriminator(fake.detach())
                loss_d = F.relu(1 - real_score).mean() + F.relu(1 + fake_score).mean()
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()
                loss_g = -discriminator(fake).mean()
                opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                opt_g.step()
                if average is not generator:
                    with torch.no_grad():
                        for kept, live in zip(average.parameters(), generator.parameters()):
                            kept.lerp_(live, 1 - config.ema_decay)
                        for kept, live in zip(average.buffers(), generator.buffers()):
                            kept.copy_(live)
                sums += [loss_d.item(), loss_g.item(), real_score.mean().item(), fake_score.mean().item()]
                batches += 1
                step += 1
            if batches == 0:  # no step taken: max_steps was reached
                break
            average.eval()
            with torch.inference_mode():
                samples = np.stack(to_uint8_images((average(fixed_z) + 1) / 2))  # (K, s, s)
            report = diversity_report(samples, fixed_real, classifier)
            means = sums / batches
            history.append(GANEpoch(epoch, *map(float, means), report, time.perf_counter() - started))
            if log:
                coverage = f", classes {report.classes_covered}/10" if report.classes_covered is not None else ""
                log(
                    f"gan epoch {epoch}/{epochs}: loss_d {means[0]:.3f} loss_g {means[1]:.3f} "
                    f"D(real) {means[2]:.2f} D(fake) {means[3]:.2f} | diversity ratio {report.distance_ratio:.2f} "
                    f"duplicates {report.duplicate_share:.1%}{coverage} | {history[-1].seconds:.0f}s"
                )
            if max_steps is not None and step >= max_steps:
                break
    return GANTraining(average.cpu().eval(), discriminator.cpu().eval(), tuple(history), step)
