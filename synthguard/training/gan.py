"""Training of the DCGAN generator against the spectrally normalised discriminator (``synthguard.models.gan``),
with a per-epoch mode-collapse diagnostic.

- Loss: the hinge loss of Miyato et al. 2018 (as in the spectral-normalisation paper), one discriminator and one
  generator Adam step per batch with DCGAN's momentum (Radford et al. 2016).
- Optional weight averaging of the returned generator: Yazici et al. 2019, "The Unusual Effectiveness of
  Averaging in GAN Training" (``GANTrainConfig.ema_decay``).
- With labels, a class-conditional GAN: the generator conditioned on a label embedding (Mirza & Osindero 2014), the
  discriminator a projection discriminator (Miyato & Koyama 2018); fakes are drawn for the labels of the real batch.
- After every epoch ``training_warnings`` reads the diagnostic for mode collapse and divergence; its thresholds are
  ``CollapseThresholds`` (measured on the shipped GAN's healthy run against collapsed and untrained generators, see
  the model cards).

The architecture is the generator's config (``model_config``); this module holds optimiser settings only.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from synthguard.core.torch_utils import resolve_device, seeded_normal, to_uint8_images, torch_threads
from synthguard.errors import InputError
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
class CollapseThresholds:
    """When ``training_warnings`` warns: mode collapse below / above these diagnostic values, divergence past the
    loss limits. The shipped GAN's 25 healthy epochs stayed within distance ratio 0.90-1.08, 0 % duplicates,
    10/10 classes, loss_G <= 0.83 and a D(real) - D(fake) gap <= 1.55; an untrained generator (the "grid of dots")
    and one collapsed to a point (temperature 0.01) give ratios 0.02 and 0.07, 100 % duplicates, 1 class."""

    min_distance_ratio: float = 0.5  # samples' mean pairwise distance over the real images'
    max_duplicate_share: float = 0.25  # share of samples with a near-duplicate among the others
    min_classes_covered: int = 8  # of the 10 digits, by the shipped classifier
    max_loss_generator: float = 5.0  # hinge loss of G: -mean D(G(z))
    max_score_gap: float = 5.0  # mean D(real) - mean D(fake): the discriminator runs away


@dataclass(frozen=True)
class GANEpoch:
    """One epoch: mean losses, and the diagnostic on fixed latents after it. ``label_agreement``: for a conditional
    GAN with a classifier, the share of the fixed samples (labels cycling 0..9) the classifier reads as their label;
    ``warnings``: what ``training_warnings`` found."""

    epoch: int
    loss_discriminator: float
    loss_generator: float
    real_score: float  # mean D(x) on real images
    fake_score: float  # mean D(G(z))
    diversity: DiversityReport
    seconds: float
    label_agreement: float | None = None
    warnings: tuple[str, ...] = ()


def training_warnings(loss_discriminator: float, loss_generator: float, real_score: float, fake_score: float,
                      diversity: DiversityReport, thresholds: CollapseThresholds = CollapseThresholds()
                      ) -> tuple[str, ...]:
    """What an epoch's losses and diagnostic say went wrong: "mode collapse: ..." and "divergence: ..." lines (empty
    when healthy)."""
    t, found = thresholds, []
    losses = (loss_discriminator, loss_generator, real_score, fake_score)
    if not all(math.isfinite(v) for v in losses):
        found.append("divergence: a loss or score is not finite (NaN or infinite)")
    else:
        if loss_generator > t.max_loss_generator:
            found.append(f"divergence: loss_G {loss_generator:.2f} > {t.max_loss_generator:g} (the generator is "
                         "losing badly)")
        if real_score - fake_score > t.max_score_gap:
            found.append(f"divergence: D(real) - D(fake) = {real_score - fake_score:.2f} > {t.max_score_gap:g} (the "
                         "discriminator runs away)")
    if not math.isfinite(diversity.distance_ratio) or diversity.distance_ratio < t.min_distance_ratio:
        found.append(f"mode collapse: samples are {diversity.distance_ratio:.2f}x as spread as real images "
                     f"(< {t.min_distance_ratio:g})")
    if diversity.duplicate_share > t.max_duplicate_share:
        found.append(f"mode collapse: {diversity.duplicate_share:.0%} of samples are near-duplicates "
                     f"(> {t.max_duplicate_share:.0%})")
    if diversity.classes_covered is not None and diversity.classes_covered < t.min_classes_covered:
        found.append(f"mode collapse: samples cover {diversity.classes_covered} of 10 digits "
                     f"(< {t.min_classes_covered})")
    return tuple(found)


def check_labels_for(data: np.ndarray, labels: np.ndarray | None, model_config: Mapping[str, Any] | None
                     ) -> tuple[np.ndarray | None, int]:
    """Training labels and the number of classes: ``labels`` (N,) integers in [0, num_classes), ``num_classes``
    from ``model_config`` (10 when it has none and labels are given); a conditional config needs labels."""
    configured = int((model_config or {}).get("num_classes") or 0)
    if labels is None:
        if configured:
            raise InputError(f"a class-conditional model ({configured} classes) needs labels")
        return None, 0
    num_classes = configured or 10
    labels = np.asarray(labels)
    if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"labels must be {len(data)} integers, one per image, not {labels.dtype} {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise InputError(f"labels must lie in [0, {num_classes}), not {labels.min()}..{labels.max()}")
    return labels.astype(np.int64), num_classes


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
    labels: np.ndarray | None = None,
    thresholds: CollapseThresholds = CollapseThresholds(),
    init: DCGANGenerator | None = None,
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

    ``labels`` (N,) integers in [0, num_classes) make both networks class-conditional (``num_classes`` from
    ``model_config``, 10 when it has none); the diagnostic then samples the fixed latents with labels cycling
    0..num_classes-1 and, with ``classifier``, reports the label agreement. An epoch whose diagnostic or losses
    cross ``thresholds`` gets ``warnings`` (also logged as "warning: ..." lines).

    ``init``: a trained generator to start from (a copy is trained; its config is the architecture, so
    ``model_config`` must be None); the discriminator starts fresh from ``seed``.
    """
    check_image_training(data, "GAN", min_images=2, epochs=epochs, batch_size=batch_size, max_steps=max_steps)
    if init is not None:
        if model_config is not None or not isinstance(init, DCGANGenerator):
            raise InputError("start from a DCGANGenerator (init) or build one from model_config, not both")
        model_config = init.config
    labels, num_classes = check_labels_for(data, labels, model_config)
    target = resolve_device(device)
    with torch_threads(num_threads):
        torch.manual_seed(seed)
        generator = build(DCGANGenerator, {**(model_config or {}), "num_classes": num_classes},
                          image_size=data.shape[1])
        if init is not None:
            generator.load_state_dict(init.state_dict())
        check_fits_images(generator, data, "the generator makes")
        arch = generator.config
        discriminator = SNDiscriminator(arch.width, arch.channels, arch.image_size, num_classes).to(target)
        generator = generator.to(target)
        # The average starts as a copy and follows the trained generator; its batch-norm statistics are copied.
        average = copy.deepcopy(generator) if config.ema_decay is not None else generator
        opt_g = torch.optim.Adam(generator.parameters(), lr=config.lr_generator, betas=config.betas)
        opt_d = torch.optim.Adam(discriminator.parameters(), lr=config.lr_discriminator, betas=config.betas)
        images = torch.from_numpy(data)
        classes = torch.from_numpy(labels) if labels is not None else None
        order_rng = torch.Generator().manual_seed(seed)
        fixed_z = seeded_normal(list(range(config.diagnostic_samples)), (arch.latent_dim,)).to(target)
        fixed_labels = None
        if num_classes:
            fixed_labels = torch.arange(config.diagnostic_samples).remainder(num_classes).to(target)
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
                y = classes[index].to(target) if classes is not None else None
                z = torch.randn(len(index), arch.latent_dim, device=target)
                fake = generator(z, y)
                real_score, fake_score = discriminator(real, y), discriminator(fake.detach(), y)
                loss_d = F.relu(1 - real_score).mean() + F.relu(1 + fake_score).mean()
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()
                loss_g = -discriminator(fake, y).mean()
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
                samples = np.stack(to_uint8_images((average(fixed_z, fixed_labels) + 1) / 2))  # (K, s, s)
            report = diversity_report(samples, fixed_real, classifier)
            agreement = None
            if fixed_labels is not None and classifier is not None:
                agreement = float((classifier(samples)[1].argmax(1) == fixed_labels.cpu().numpy()).mean())
            means = [float(v) for v in sums / batches]
            warnings = training_warnings(*means, report, thresholds)
            history.append(GANEpoch(epoch, *means, report, time.perf_counter() - started, agreement, warnings))
            if log:
                coverage = f", classes {report.classes_covered}/10" if report.classes_covered is not None else ""
                agrees = f", label agreement {agreement:.1%}" if agreement is not None else ""
                log(
                    f"gan epoch {epoch}/{epochs}: loss_d {means[0]:.3f} loss_g {means[1]:.3f} "
                    f"D(real) {means[2]:.2f} D(fake) {means[3]:.2f} | diversity ratio {report.distance_ratio:.2f} "
                    f"duplicates {report.duplicate_share:.1%}{coverage}{agrees} | {history[-1].seconds:.0f}s"
                )
                for line in warnings:
                    log(f"warning: gan epoch {epoch}: {line}")
            if max_steps is not None and step >= max_steps:
                break
    return GANTraining(average.cpu().eval(), discriminator.cpu().eval(), tuple(history), step)
