"""Training, calibrating and evaluating the patch detector of ``classifier.py``, on data that exists offline.

Real images: scikit-image and scikit-learn sample photographs, the photos of ``shared/interop/c2pa``, cut into many
random crops at several scales, and real MNIST digits upsampled 28 -> 256 by the very path the generators use
(``synthguard.generate.base.resize_image``, OpenCV bicubic), so that interpolation is not the cue that separates
real digits from fake ones. Fake families: the shipped GAN and VAE (samples, and VAE reconstructions of real
digits), a tiny DDPM (Ho et al. 2020) trained here on MNIST with diffusers, and the project's procedural images.
A sixth, "upsampled" (photos down-sampled 4x, then bicubic up: what a cheap "enhancer" does), is built for the
test split only: trained on as fake, it made the detector flag every soft or enlarged real photo. Enlarged and
soft real photos go into the real class instead (``--soft-real``).

Shortcuts are the classic failure of such detectors (real JPEGs vs fake PNGs: see detection-peers.md), so every
image of both classes goes through the same steps: luma, the same random resize and JPEG (quality 50-95)
augmentation, the same patch sampling. Photos are split by *source* picture into train / calibration / test, MNIST
by its own train / test split, generators by seed range, so no test picture or seed is seen in training.

Run ``python -m synthguard.training.detector --help``; the shipped weights came from the call recorded in
``weights/README.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from synthguard.core.samples import procedural_image
from synthguard.core.torch_utils import resize_image, torch_threads
from synthguard.errors import InputError
from synthguard.generate.backends import builtin_generator
from synthguard.models.detector import (
    Calibration,
    GlobalDiscriminator,
    PatchDetector,
    PatchDiscriminator,
    fit_calibration,
    thumbnail,
    to_luma,
)
from synthguard.training.data import load_mnist

IMAGE_SIZE = 256  # the generators' output size; real crops are made this size too
DIGIT_SIZE = 28
SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "immunohistochemistry", "retina", "moon",
                  "grass", "gravel", "brick", "coins", "clock", "cat", "page", "text", "hubble_deep_field",
                  "stereo_motorcycle")
# Held-out photo sources, by name (the rest train). "cat" and "chelsea" are the same cat: both sit in training.
CALIBRATION_SOURCES = ("rocket", "gravel", "page", "china", "c2pa:CACA.jpg")
TEST_SOURCES = ("coffee", "brick", "clock", "text", "hubble_deep_field", "flower", "c2pa:cloud.jpg",
                "c2pa:boxhash.jpg")
SPLITS = ("train", "calibration", "test")
FAMILIES = ("gan", "vae", "vae_recon", "ddpm", "upsampled", "procedural")
# "upsampled" is a real photo resampled, not a generator's output: as a fake family it teaches "little fine detail
# means synthetic", and the detector then flags soft and enlarged real photos (weights/README.md). It stays in the
# test split, measured as a family the detector never saw.
TRAINED_FAMILIES = tuple(f for f in FAMILIES if f != "upsampled")
DEFAULT_SOFT_REAL = 250
BUILTIN_GLOBAL_EPOCHS = 24  # the shipped weights' global view; `synthguard train detector` defaults to 16
_SEED_BASE = {"train": 0, "calibration": 1_000_000, "test": 2_000_000}


# ----------------------------------------------------------------------------------------------------- real data
def photo_sources(c2pa_folder: str | Path | None = None) -> dict[str, np.ndarray]:
    """Every offline photograph as (H, W) uint8 luma, by name; identical pixel arrays are kept once."""
    import skimage.data
    from sklearn.datasets import load_sample_images

    sources: dict[str, np.ndarray] = {}
    for name in SKIMAGE_PHOTOS:
        image = getattr(skimage.data, name)()
        sources[name] = to_luma(image[0] if isinstance(image, tuple) else image)  # stereo pair: the left view
    for name, image in zip(("china", "flower"), load_sample_images().images):
        sources[name] = to_luma(image)
    folder = Path(c2pa_folder) if c2pa_folder else Path(__file__).resolve().parents[3] / "shared/interop/c2pa"
    seen: set[bytes] = set()
    for path in sorted(folder.glob("*.jpg")):
        luma = to_luma(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))
        if luma.tobytes()[:1_000_000] not in seen:  # the same photo signed twice is one source
            seen.add(luma.tobytes()[:1_000_000])
            sources[f"c2pa:{path.name}"] = luma
    return sources


def split_of_source(name: str) -> str:
    return "test" if name in TEST_SOURCES else "calibration" if name in CALIBRATION_SOURCES else "train"


def split_sources(split: str, sources: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """The photo sources of ``split`` (from ``sources``, default every offline photo)."""
    if split not in SPLITS:
        raise InputError(f"split must be one of {SPLITS}, not {split!r}")
    sources = photo_sources() if sources is None else sources
    return {k: v for k, v in sources.items() if split_of_source(k) == split}


def photo_crops(sources: Mapping[str, np.ndarray], n: int, seed: int) -> list[np.ndarray]:
    """``n`` random square crops, side drawn log-uniformly from [256, min(1024, short side)], area-resized to 256
    (sources shorter than 256 give native crops of their short side: they are never upsampled)."""
    rng = np.random.default_rng(seed)
    names = sorted(sources)
    crops = []
    for _ in range(n):
        image = sources[names[rng.integers(len(names))]]
        short = min(image.shape)
        side = short if short <= IMAGE_SIZE else int(np.exp(rng.uniform(np.log(IMAGE_SIZE), np.log(min(1024, short)))))
        y, x = rng.integers(0, image.shape[0] - side + 1), rng.integers(0, image.shape[1] - side + 1)
        crops.append(resize_image(image[y : y + side, x : x + side], (min(side, IMAGE_SIZE),) * 2))
    return crops


def enlarged(image: np.ndarray, small: tuple[int, int], interpolation: int) -> np.ndarray:
    """``image`` as if taken at the lower resolution ``small`` (height, width: area down) and enlarged back to its
    own size with the OpenCV ``interpolation``."""
    return cv2.resize(resize_image(image, small), (image.shape[1], image.shape[0]), interpolation=interpolation)


def upsample_digits(digits: np.ndarray) -> list[np.ndarray]:
    """(N, 28, 28) uint8 -> N x (256, 256) by the generators' own resampling (OpenCV bicubic, saturated)."""
    return [resize_image(d, (IMAGE_SIZE, IMAGE_SIZE)) for d in digits]


# ----------------------------------------------------------------------------------------------------- tiny DDPM
def train_tiny_ddpm(digits: np.ndarray, *, steps: int = 400, batch_size: int = 32, seed: int = 0,
                    num_threads: int | None = None, log: Callable[[str], None] = print):
    """A small diffusers ``UNet2DModel`` DDPM on 32x32 (28 padded) digits, epsilon objective, 1000 linear-beta
    timesteps. Minutes on one CPU thread: its samples are rough, which is fine for a fake family."""
    from diffusers import DDPMScheduler, UNet2DModel

    torch.manual_seed(seed)
    unet = UNet2DModel(sample_size=32, in_channels=1, out_channels=1, block_out_channels=(16, 32, 32),
                       layers_per_block=1, down_block_types=("DownBlock2D",) * 3, up_block_types=("UpBlock2D",) * 3,
                       norm_num_groups=8)
    scheduler = DDPMScheduler(num_train_timesteps=1000)
    data = torch.from_numpy(np.pad(digits, ((0, 0), (2, 2), (2, 2)))).float().div(127.5).sub(1)[:, None]  # (N,1,32,32)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=2e-3)
    rng = torch.Generator().manual_seed(seed)
    with torch_threads(num_threads):
        unet.train()
        for step in range(steps):
            x0 = data[torch.randint(len(data), (batch_size,), generator=rng)]
            noise = torch.randn(x0.shape, generator=rng)
            t = torch.randint(0, 1000, (batch_size,), generator=rng)
            loss = torch.nn.functional.mse_loss(unet(scheduler.add_noise(x0, noise, t), t).sample, noise)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step % 100 == 0 or step == steps - 1:
                log(f"ddpm step {step} loss {loss.item():.4f}")
    return unet.eval()


def sample_tiny_ddpm(unet, n: int, seed: int, *, inference_steps: int = 25, batch_size: int = 50,
                     num_threads: int | None = None) -> list[np.ndarray]:
    """``n`` DDIM samples (eta 0), centre 28x28, upsampled to 256 like every other digit."""
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler(num_train_timesteps=1000)
    scheduler.set_timesteps(inference_steps)
    out: list[np.ndarray] = []
    with torch_threads(num_threads), torch.inference_mode():
        for start in range(0, n, batch_size):
            count = min(batch_size, n - start)
            x = torch.randn((count, 1, 32, 32), generator=torch.Generator().manual_seed(seed + start))
            for t in scheduler.timesteps:
                x = scheduler.step(unet(x, t).sample, t, x).prev_sample
            pixels = ((x[:, 0, 2:30, 2:30].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
            out.extend(upsample_digits(pixels))
    return out


# -------------------------------------------------------------------------------------------------- the data set
@dataclass(frozen=True)
class DetectorData:
    """One split: real images by domain ("photo", "digit") and fake images by family, all (H, W) uint8 luma."""

    real: dict[str, list[np.ndarray]]
    fakes: dict[str, list[np.ndarray]]

    @property
    def real_images(self) -> list[np.ndarray]:
        return [image for images in self.real.values() for image in images]


def build_dataset(split: str, *, n_photo: int, n_digit: int, n_per_family: int, ddpm=None,
                  sources: Mapping[str, np.ndarray] | None = None, num_threads: int | None = None) -> DetectorData:
    """The ``split`` ("train", "calibration" or "test") of real photos, real digits and the six fake families
    (``for_training`` picks the ones a detector learns from).

    ``ddpm`` is a ``UNet2DModel`` from ``train_tiny_ddpm`` (None leaves that family out). Photo crops and the
    "upsampled" family come only from that split's photo sources; digits from MNIST train (train, calibration)
    or test (test); generator seeds from a range of their own per split.
    """
    own = split_sources(split, sources)
    base = _SEED_BASE[split]
    mnist = load_mnist("test" if split == "test" else "train").images
    rng = np.random.default_rng(base)
    offset = 30_000 if split == "calibration" else 0  # calibration digits: the other half of MNIST train
    picked = mnist[offset + rng.permutation(len(mnist) - offset)[: n_digit + n_per_family]]
    real_digits, recon_sources = picked[:n_digit], picked[n_digit:]

    gan = builtin_generator("gan", num_threads=num_threads)
    vae = builtin_generator("vae", num_threads=num_threads)
    fakes = {
        "gan": gan.generate(n_per_family, base, device="cpu").images,
        "vae": vae.generate(n_per_family, base, device="cpu").images,
        "vae_recon": [vae.reconstruct(d) for d in recon_sources],
        "upsampled": [enlarged(c, (c.shape[0] // 4, c.shape[1] // 4), cv2.INTER_CUBIC)
                      for c in photo_crops(own, n_per_family, base + 7)],
        "procedural": [to_luma(procedural_image(IMAGE_SIZE, IMAGE_SIZE, seed=base + i)) for i in range(n_per_family)],
    }
    if ddpm is not None:
        fakes["ddpm"] = sample_tiny_ddpm(ddpm, n_per_family, base, num_threads=num_threads)
    return DetectorData(real={"photo": photo_crops(own, n_photo, base + 1), "digit": upsample_digits(real_digits)},
                        fakes=fakes)


def build_global_extra(split: str, *, n_digit: int, n_gan: int, n_vae: int,
                       num_threads: int | None = None) -> DetectorData:
    """More digit-scale images for the global view only (cheap to make, and the shape cue needs thousands):
    real MNIST digits and GAN / VAE samples, from seed ranges and digits of their own (MNIST's other half of the
    split for calibration, never the test split unless ``split`` is "test")."""
    if split not in SPLITS:
        raise InputError(f"split must be one of {SPLITS}, not {split!r}")
    base = _SEED_BASE[split] + 500_000
    mnist = load_mnist("test" if split == "test" else "train").images
    rng = np.random.default_rng(base)
    digits = mnist[rng.permutation(len(mnist))[:n_digit]]
    gan = builtin_generator("gan", num_threads=num_threads)
    vae = builtin_generator("vae", num_threads=num_threads)
    fakes = {"gan": gan.generate(n_gan, base, device="cpu").images if n_gan else [],
             "vae": vae.generate(n_vae, base, device="cpu").images if n_vae else []}
    return DetectorData(real={"digit": upsample_digits(digits)}, fakes={k: v for k, v in fakes.items() if v})


def stress_real(split: str, *, n: int, sources: Mapping[str, np.ndarray] | None = None) -> dict[str, list[np.ndarray]]:
    """Real photos a newsroom receives that look least like a sharp camera original, as their own domains, for
    the false-positive rate only: ``enlarged-2x`` (taken at half the resolution and enlarged: area down 2x, bicubic
    up), ``soft`` (out of focus: Gaussian blur, sigma 1), ``enlarged-3x-bilinear`` (a third of the resolution,
    bilinear up) and ``denoised`` (3x3 median, as noise reduction leaves it: a kind ``soft_real_photos`` never
    trains on). Crops of ``split``'s photo sources, seeds of their own. A detector that has learned "less
    fine detail means synthetic" flags these; they are still captures."""
    own = split_sources(split, sources)
    base = _SEED_BASE[split] + 11
    return {"enlarged-2x": [enlarged(c, (c.shape[0] // 2, c.shape[1] // 2), cv2.INTER_CUBIC)
                            for c in photo_crops(own, n, base)],
            "soft": [cv2.GaussianBlur(c, (0, 0), 1.0) for c in photo_crops(own, n, base + 1)],
            # seeds base + 2, + 3 are soft_real_photos' (training images)
            "enlarged-3x-bilinear": [enlarged(c, (c.shape[0] // 3, c.shape[1] // 3), cv2.INTER_LINEAR)
                                     for c in photo_crops(own, n, base + 4)],
            "denoised": [cv2.medianBlur(c, 3) for c in photo_crops(own, n, base + 5)]}


def for_training(data: DetectorData, split: str, *, families: Sequence[str], soft_real: int = 0,
                 sources: Mapping[str, np.ndarray] | None = None) -> DetectorData:
    """A train or calibration split as the detector learns from it: only ``families`` among the fakes and, with
    ``soft_real`` > 0, that many enlarged and as many soft real photos (``soft_real_photos``) added to the real
    class, so that missing fine detail alone stops reading as synthetic."""
    unknown = set(families) - set(data.fakes)
    if unknown or not families:
        raise InputError(f"fake families to train on must be some of {sorted(data.fakes)}, not {sorted(families)}")
    real = dict(data.real)
    if soft_real:
        real.update(soft_real_photos(split, n=soft_real, sources=sources))
    return DetectorData(real=real, fakes={k: v for k, v in data.fakes.items() if k in families})


_UPSCALERS = (cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_LANCZOS4)  # how photo editors and browsers enlarge


def soft_real_photos(split: str, *, n: int, sources: Mapping[str, np.ndarray] | None = None
                     ) -> dict[str, list[np.ndarray]]:
    """Real photos to learn from that lack fine detail, at random strengths (so that no one blur or scale is the
    cue): ``enlarged`` (area down by U(1.5, 4), back up bilinear, bicubic or Lanczos) and ``soft`` (Gaussian blur,
    sigma U(0.5, 2)).
    Crops of ``split``'s photo sources with seeds of their own, apart from ``stress_real``'s fixed-strength test
    images."""
    own = split_sources(split, sources)
    base = _SEED_BASE[split] + 13
    rng = np.random.default_rng(base)
    larger = []
    for c in photo_crops(own, n, base):
        f = rng.uniform(1.5, 4.0)
        small = (max(8, round(c.shape[0] / f)), max(8, round(c.shape[1] / f)))
        larger.append(enlarged(c, small, _UPSCALERS[rng.integers(3)]))
    soft = [cv2.GaussianBlur(c, (0, 0), rng.uniform(0.5, 2.0)) for c in photo_crops(own, n, base + 1)]
    return {"enlarged": larger, "soft": soft}


# -------------------------------------------------------------------------------------------------- augmentation
def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise InputError(f"JPEG encoding failed for an image of shape {image.shape}")
    return cv2.imdecode(data, cv2.IMREAD_UNCHANGED)


def rescale(image: np.ndarray, factor: float) -> np.ndarray:
    size = (max(32, round(image.shape[0] * factor)), max(32, round(image.shape[1] * factor)))
    return resize_image(image, size)


def augment(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The one augmentation both classes get: with p 0.5 a resize by U(0.5, 1.25) (area down, bicubic up), then
    with p 0.6 a JPEG re-save at quality U(50, 95); a fifth of images come through untouched either way."""
    if rng.random() < 0.5:
        image = rescale(image, rng.uniform(0.5, 1.25))
    if rng.random() < 0.6:
        image = jpeg(image, int(rng.integers(50, 96)))
    return image


# ------------------------------------------------------------------------------------------------------ training
@dataclass(frozen=True)
class DetectorTrainConfig:
    patch_size: int = 64
    widths: tuple[int, ...] = (16, 32, 64, 64)
    max_grid: int = 4  # patches per side when scoring (4x4: a 256 px image is covered; larger ones are sampled)
    steps: int = 1500  # optimiser steps, batch_size patches each
    batch_size: int = 64  # half real, half fake
    lr: float = 2e-3
    refresh_every: int = 100  # steps between fresh augmentations of every training image
    target_fpr: float = 0.01
    global_size: int = 32  # thumbnail side of the global view (0: no global view)
    global_widths: tuple[int, ...] = (32, 64, 128, 128)
    global_epochs: int = 16  # passes over every training image's thumbnail
    global_batch_size: int = 64
    global_lr: float = 1e-3
    global_refresh_every: int = 2  # epochs between fresh augmentations


@dataclass(frozen=True)
class DetectorTraining:
    """The record of one ``train_detector`` call (JSON-ready through ``asdict``)."""

    config: dict
    families: list[str]
    n_train_real: int
    n_train_fake: int
    n_calibration_real: int
    n_calibration_fake: int
    losses: list[float]  # mean patch loss per ``refresh_every`` steps
    seconds: float
    global_losses: list[float] = field(default_factory=list)  # mean thumbnail loss per epoch
    calibration: dict = field(default_factory=dict)


class _PatchSampler:
    """Draws balanced batches of random 64x64 patches from freshly augmented copies of the images.

    Half of each batch is real (each real image equally likely), half fake (each family equally likely, then each
    image in it, so a big family does not drown a small one).
    """

    def __init__(self, real: Sequence[np.ndarray], fakes: Mapping[str, Sequence[np.ndarray]], patch: int, seed: int):
        self.real, self.fakes, self.patch = list(real), {k: list(v) for k, v in fakes.items()}, patch
        self.rng = np.random.default_rng(seed)
        self.refresh()

    def refresh(self) -> None:
        self.real_aug = [augment(im, self.rng) for im in self.real]
        self.fake_aug = {k: [augment(im, self.rng) for im in v] for k, v in self.fakes.items()}

    def _crop(self, image: np.ndarray) -> np.ndarray:
        p = self.patch
        if min(image.shape) < p:
            image = np.pad(image, ((0, max(0, p - image.shape[0])), (0, max(0, p - image.shape[1]))), mode="reflect")
        y, x = self.rng.integers(0, image.shape[0] - p + 1), self.rng.integers(0, image.shape[1] - p + 1)
        crop = image[y : y + p, x : x + p]
        return crop[:, ::-1] if self.rng.random() < 0.5 else crop  # mirror: same for both classes

    def batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        half = size // 2
        reals = [self._crop(self.real_aug[i]) for i in self.rng.integers(len(self.real_aug), size=half)]
        families = list(self.fake_aug)
        fakes = []
        for f in self.rng.integers(len(families), size=size - half):
            pool = self.fake_aug[families[f]]
            fakes.append(self._crop(pool[self.rng.integers(len(pool))]))
        x = torch.from_numpy(np.stack(reals + fakes).copy()).float().div(255)[:, None]  # (B, 1, P, P)
        y = torch.cat([torch.zeros(half), torch.ones(size - half)])
        return x, y


def training_step(model: PatchDiscriminator, optimizer: torch.optim.Optimizer, x: torch.Tensor,
                  y: torch.Tensor) -> float:
    """One optimiser step of the patch log-loss; returns the loss before the step."""
    model.train()
    loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def heldout_logits(detector: PatchDetector, real: Sequence[np.ndarray], fakes: Sequence[np.ndarray],
                   seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, views) scores of each held-out image twice, as given and once augmented (so the threshold holds for
    re-encoded files too), with labels 1 = synthetic."""
    rng = np.random.default_rng(seed)
    logits, labels = [], []
    for label, images in ((0, real), (1, fakes)):
        for image in images:
            for variant in (image, augment(image, rng)):
                logits.append(detector.scores(variant))
                labels.append(label)
    return np.stack(logits), np.array(labels)


def train_global(real_images: Sequence[np.ndarray], fake_images: Sequence[np.ndarray], config: DetectorTrainConfig,
                 *, seed: int = 0, num_threads: int | None = None,
                 log: Callable[[str], None] = print) -> tuple[GlobalDiscriminator, list[float]]:
    """Train the global view on thumbnails of freshly augmented copies of every image (the same ``augment`` as the
    patch view, before the thumbnail is taken), classes weighted to balance; one loss per epoch."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed + 17)
    model = GlobalDiscriminator(size=config.global_size, widths=tuple(config.global_widths))
    images = list(real_images) + list(fake_images)
    y_all = torch.cat([torch.zeros(len(real_images)), torch.ones(len(fake_images))])
    pos_weight = torch.tensor(len(real_images) / max(1, len(fake_images)))
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.global_lr, weight_decay=1e-4)
    steps = config.global_epochs * math.ceil(len(images) / config.global_batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.global_lr, total_steps=max(1, steps),
                                                   pct_start=0.05)
    losses: list[float] = []
    x_all = None
    with torch_threads(num_threads):
        model.train()
        for epoch in range(config.global_epochs):
            if x_all is None or epoch % config.global_refresh_every == 0:
                thumbs = [thumbnail(augment(im, rng), config.global_size) for im in images]
                x_all = torch.from_numpy(np.stack(thumbs)).float().div(255)[:, None]
            order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed + epoch))
            epoch_losses = []
            for start in range(0, len(images), config.global_batch_size):
                batch = order[start : start + config.global_batch_size]
                mirror = torch.from_numpy(rng.random(len(batch)) < 0.5)
                x = torch.where(mirror[:, None, None, None], x_all[batch].flip(-1), x_all[batch])
                loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y_all[batch],
                                                                            pos_weight=pos_weight)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
                epoch_losses.append(float(loss.detach()))
            losses.append(float(np.mean(epoch_losses)))
            log(f"global view epoch {epoch} loss {losses[-1]:.4f}")
    return model.eval(), losses


def train_detector(
    real_images: Sequence[np.ndarray],
    fake_images_by_family: Mapping[str, Sequence[np.ndarray]],
    *,
    calibration_real: Sequence[np.ndarray],
    calibration_fakes_by_family: Mapping[str, Sequence[np.ndarray]],
    config: DetectorTrainConfig = DetectorTrainConfig(),
    global_extra: DetectorData | None = None,
    global_families: Sequence[str] | None = None,
    seed: int = 0,
    num_threads: int | None = None,
    log: Callable[[str], None] = print,
) -> tuple[PatchDetector, DetectorTraining]:
    """Train a ``PatchDiscriminator`` on patches of the given images and (``config.global_size`` > 0) a
    ``GlobalDiscriminator`` on their thumbnails plus ``global_extra``'s, then fit the fused calibration and
    threshold on the calibration images (held out: other photo sources, other digits, other seeds).

    ``global_families`` (default: every family but "upsampled", whose thumbnails are those of real photos) are the
    fake families the global view trains on; ``global_extra``'s fakes count only when their family is in it."""
    if not real_images or not fake_images_by_family or not all(fake_images_by_family.values()):
        raise InputError("train_detector needs real images and at least one non-empty fake family")
    start = time.perf_counter()
    torch.manual_seed(seed)
    model = PatchDiscriminator(patch_size=config.patch_size, widths=tuple(config.widths), max_grid=config.max_grid)
    sampler = _PatchSampler(real_images, fake_images_by_family, config.patch_size, seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=config.steps,
                                                   pct_start=0.05)  # short warm-up, then cosine decay
    losses, window = [], []
    with torch_threads(num_threads):
        for step in range(config.steps):
            if step and step % config.refresh_every == 0:
                sampler.refresh()
                losses.append(float(np.mean(window)))
                log(f"detector step {step} loss {losses[-1]:.4f} ({time.perf_counter() - start:.0f} s)")
                window = []
            window.append(training_step(model, optimizer, *sampler.batch(config.batch_size)))
            schedule.step()
        losses.append(float(np.mean(window)))
    model.eval()
    global_model, global_losses = None, []
    if config.global_size:
        families = [f for f in (global_families if global_families is not None else fake_images_by_family)
                    if f != "upsampled" or global_families is not None]
        extra = global_extra or DetectorData(real={}, fakes={})
        g_real = list(real_images) + extra.real_images
        g_fake = [im for f in families for im in (*fake_images_by_family.get(f, ()), *extra.fakes.get(f, ()))]
        global_model, global_losses = train_global(g_real, g_fake, config, seed=seed, num_threads=num_threads,
                                                   log=log)
    # Unit calibration while the held-out scores are computed: they are read raw, before the fit.
    views = 1 + (global_model is not None)
    identity = Calibration(weights=(1.0,) * views, bias=0.0, threshold=0.5, target_fpr=0.0, measured_fpr=0.0,
                           n_real=0, n_fake=0)
    detector = PatchDetector(model, identity, global_model=global_model, num_threads=num_threads)
    calibration_fakes = [im for images in calibration_fakes_by_family.values() for im in images]
    logits, labels = heldout_logits(detector, calibration_real, calibration_fakes, seed + 1)
    detector.calibration = fit_calibration(logits, labels, target_fpr=config.target_fpr)
    record = DetectorTraining(
        config=asdict(config),
        families=sorted(fake_images_by_family),
        n_train_real=len(real_images),
        n_train_fake=sum(map(len, fake_images_by_family.values())),
        n_calibration_real=len(calibration_real),
        n_calibration_fake=len(calibration_fakes),
        losses=losses,
        seconds=round(time.perf_counter() - start, 1),
        global_losses=global_losses,
        calibration=asdict(detector.calibration),
    )
    return detector, record


# ---------------------------------------------------------------------------------------------------- evaluation
PERTURBATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "none": lambda image: image,
    "jpeg75": lambda image: jpeg(image, 75),
    "resize0.5": lambda image: rescale(image, 0.5),
}


@dataclass(frozen=True)
class FamilyScore:
    family: str
    perturbation: str
    auc: float  # real test images vs this family's test images
    tpr: float  # fraction of the family flagged at the stored threshold
    accuracy: float  # balanced: (TPR + (1 - FPR)) / 2 at the stored threshold


@dataclass(frozen=True)
class DetectorEvaluation:
    families: list[FamilyScore]
    fpr: dict[str, dict[str, float]]  # perturbation -> real domain ("photo", "digit", "all") -> FPR at threshold
    ms_per_512: float
    n_real: int
    n_per_family: dict[str, int]
    # perturbation -> stress domain (``stress_real``) -> FPR at threshold; reported apart, never pooled into AUCs
    stress_fpr: dict[str, dict[str, float]] = field(default_factory=dict)


def evaluate_detector(detector: PatchDetector, real: Mapping[str, Sequence[np.ndarray]],
                      fakes_by_family: Mapping[str, Sequence[np.ndarray]], *,
                      perturbations: Sequence[str] = ("none", "jpeg75", "resize0.5"),
                      stress: Mapping[str, Sequence[np.ndarray]] | None = None) -> DetectorEvaluation:
    """AUC, detection rate and balanced accuracy per family, and FPR per real domain, for each perturbation
    (applied to both classes alike), plus the mean milliseconds to score a 512x512 RGB image. ``stress``: more
    real domains (``stress_real``) whose FPR is reported on its own, outside the AUCs and the pooled FPR."""
    unknown = set(perturbations) - set(PERTURBATIONS)
    if unknown:
        raise InputError(f"unknown perturbations {sorted(unknown)}: choose from {sorted(PERTURBATIONS)}")
    threshold = detector.calibration.threshold
    rows, fprs, stress_fprs = [], {}, {}
    for name in perturbations:
        change = PERTURBATIONS[name]
        if stress:
            stress_fprs[name] = {domain: float(np.mean([detector.score(change(im)).probability >= threshold
                                                        for im in images]))
                                 for domain, images in stress.items()}
        real_p = {domain: np.array([detector.score(change(im)).probability for im in images])
                  for domain, images in real.items()}
        all_real = np.concatenate(list(real_p.values()))
        fpr = float(np.mean(all_real >= threshold))
        fprs[name] = {**{d: float(np.mean(p >= threshold)) for d, p in real_p.items()}, "all": fpr}
        for family, images in fakes_by_family.items():
            fake_p = np.array([detector.score(change(im)).probability for im in images])
            labels = np.r_[np.zeros(len(all_real)), np.ones(len(fake_p))]
            tpr = float(np.mean(fake_p >= threshold))
            rows.append(FamilyScore(family, name, float(roc_auc_score(labels, np.r_[all_real, fake_p])), tpr,
                                    (tpr + 1 - fpr) / 2))
    return DetectorEvaluation(families=rows, fpr=fprs, ms_per_512=_ms_per_512(detector),
                              n_real=sum(map(len, real.values())),
                              n_per_family={k: len(v) for k, v in fakes_by_family.items()},
                              stress_fpr=stress_fprs)


def _ms_per_512(detector: PatchDetector, repeats: int = 10) -> float:
    image = procedural_image(512, 512, seed=0)
    detector.score(image)  # warm-up: first-call allocations
    start = time.perf_counter()
    for _ in range(repeats):
        detector.score(image)
    return 1000 * (time.perf_counter() - start) / repeats


def leave_one_family_out(train: DetectorData, calibration: DetectorData, test: DetectorData, *,
                         config: DetectorTrainConfig, global_extra: DetectorData | None = None, seed: int = 0,
                         num_threads: int | None = None, log: Callable[[str], None] = print) -> dict[str, float]:
    """For each family: train and calibrate without it, then the AUC of its test images against the real test
    images (clean). How the detector fares on a generator it never saw."""
    aucs = {}
    real_test = test.real_images
    for family in train.fakes:
        detector, _ = train_detector(
            train.real_images, {k: v for k, v in train.fakes.items() if k != family},
            calibration_real=calibration.real_images,
            calibration_fakes_by_family={k: v for k, v in calibration.fakes.items() if k != family},
            config=config, global_extra=global_extra,
            global_families=[f for f in train.fakes if f not in (family, "upsampled")], seed=seed,
            num_threads=num_threads, log=lambda _msg: None)
        real_logits = [detector.score(im).probability for im in real_test]
        fake_logits = [detector.score(im).probability for im in test.fakes[family]]
        labels = np.r_[np.zeros(len(real_logits)), np.ones(len(fake_logits))]
        aucs[family] = float(roc_auc_score(labels, np.r_[real_logits, fake_logits]))
        log(f"leave out {family}: AUC {aucs[family]:.3f}")
    return aucs


def table(evaluation: DetectorEvaluation, lofo: Mapping[str, float] | None = None,
          trained: Sequence[str] | None = None) -> str:
    """The evaluation as a Markdown table: one row per family, AUC / detection rate per perturbation.

    ``trained``: the fake families the detector was trained on (default: all). A test family outside it is marked
    "(not trained)": its row measures a generator the detector never saw, so its own AUC is a left-out figure."""
    names = list(dict.fromkeys(row.perturbation for row in evaluation.families))
    by = {(row.family, row.perturbation): row for row in evaluation.families}
    unseen = [f for f in evaluation.n_per_family if trained is not None and f not in trained]
    header = ["family", "n"] + [f"AUC {p}" for p in names] + [f"TPR {p}" for p in names] + ["bal. acc"]
    if lofo is not None:
        header.append("AUC left out")
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for family, n in evaluation.n_per_family.items():
        cells = [family + (" (not trained)" if family in unseen else ""), str(n)]
        cells += [f"{by[family, p].auc:.3f}" for p in names]
        cells += [f"{by[family, p].tpr:.2f}" for p in names] + [f"{by[family, names[0]].accuracy:.3f}"]
        if lofo is not None:
            left_out = by[family, names[0]].auc if family in unseen else lofo.get(family)
            cells.append("-" if left_out is None else f"{left_out:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    if unseen:
        lines.append(f"\n(not trained): not in this detector's training ({', '.join(unseen)}); every figure in such a "
                     "row is for a family the detector never saw")
    for p in names:
        fpr = evaluation.fpr[p]
        lines.append(f"\nFPR on real test images at the threshold, {p}: "
                     + ", ".join(f"{d} {v:.3f}" for d, v in fpr.items()))
    for p, fpr in evaluation.stress_fpr.items():
        lines.append(f"\nFPR on harder real photos (enlarged, soft, denoised; not in the AUCs) at the threshold, {p}: "
                     + ", ".join(f"{d} {v:.3f}" for d, v in fpr.items()))
    lines.append(f"\n{evaluation.ms_per_512:.1f} ms per 512x512 image ({evaluation.n_real} real test images)")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------------ the run
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m synthguard.training.detector",
        description="Train, calibrate, save and evaluate the patch detector on offline data. Example: "
                    "python -m synthguard.training.detector --out /tmp/det/weights --threads 1")
    parser.add_argument("--out", required=True, help="folder for the weights (config.json, safetensors, "
                                                     "calibration.json, training.json, evaluation.md)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=DetectorTrainConfig.steps)
    parser.add_argument("--lofo-steps", type=int, default=300, help="patch steps of each leave-one-family-out "
                                                                    "model (0: skip); an in-family model of the "
                                                                    "same budget is trained for comparison")
    parser.add_argument("--ddpm-steps", type=int, default=400)
    parser.add_argument("--n-train", type=int, default=250, help="images per fake family and per real domain")
    parser.add_argument("--n-test", type=int, default=100)
    parser.add_argument("--global-epochs", type=int, default=BUILTIN_GLOBAL_EPOCHS)
    parser.add_argument("--n-global", type=int, default=6000, help="extra real digits and GAN samples (and half "
                                                                   "as many VAE samples) for the global view")
    parser.add_argument("--lofo-global-epochs", type=int, default=3)
    parser.add_argument("--families", default=",".join(TRAINED_FAMILIES),
                        help="fake families to train and calibrate on, comma-separated, from "
                             f"{', '.join(FAMILIES)} (the test split keeps every family, so one left out here is "
                             "measured as unseen; default: all but upsampled)")
    parser.add_argument("--soft-real", type=int, default=DEFAULT_SOFT_REAL,
                        help="add this many enlarged and as many soft real photos, at random strengths, to the real "
                             "class of the train split (n-test/n-train as many to calibration); 0: none "
                             "(default: %(default)s)")
    args = parser.parse_args(argv)
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    if not families or set(families) - set(FAMILIES):
        parser.error(f"--families: choose from {', '.join(FAMILIES)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:6.0f} s] {msg}", flush=True)

    torch.manual_seed(0)
    ddpm = train_tiny_ddpm(load_mnist("train").images, steps=args.ddpm_steps, num_threads=args.threads, log=log)
    ddpm.save_pretrained(out / "ddpm", safe_serialization=True)  # the fake family, for `synthguard bench detector`
    sources = photo_sources()
    n, m = args.n_train, args.n_test
    data = {split: build_dataset(split, n_photo=size, n_digit=size, n_per_family=size, ddpm=ddpm, sources=sources,
                                 num_threads=args.threads)
            for split, size in (("train", n), ("calibration", m), ("test", m))}
    for split, soft in (("train", args.soft_real), ("calibration", args.soft_real * m // n)):
        data[split] = for_training(data[split], split, families=families, soft_real=soft, sources=sources)
    extra = build_global_extra("train", n_digit=args.n_global, n_gan=args.n_global, n_vae=args.n_global // 2,
                               num_threads=args.threads)
    log("data built")
    config = DetectorTrainConfig(steps=args.steps, global_epochs=args.global_epochs)
    detector, record = train_detector(data["train"].real_images, data["train"].fakes,
                                      calibration_real=data["calibration"].real_images,
                                      calibration_fakes_by_family=data["calibration"].fakes,
                                      config=config, global_extra=extra, num_threads=args.threads, log=log)
    detector.save_pretrained(out)
    log(f"trained in {record.seconds} s; calibration {record.calibration}")
    evaluation = evaluate_detector(detector, data["test"].real, data["test"].fakes,
                                   stress=stress_real("test", n=m, sources=sources))
    log("evaluated")
    lofo, same_budget = None, None
    if args.lofo_steps:
        small = DetectorTrainConfig(steps=args.lofo_steps, global_epochs=args.lofo_global_epochs)
        third = args.n_global // 3
        small_extra = DetectorData(real={"digit": extra.real["digit"][:third]},
                                   fakes={k: v[:third] for k, v in extra.fakes.items()})
        lofo = leave_one_family_out(data["train"], data["calibration"], data["test"], config=small,
                                    global_extra=small_extra, num_threads=args.threads, log=log)
        reference, _ = train_detector(data["train"].real_images, data["train"].fakes,
                                      calibration_real=data["calibration"].real_images,
                                      calibration_fakes_by_family=data["calibration"].fakes,
                                      config=small, global_extra=small_extra, num_threads=args.threads,
                                      log=lambda _msg: None)
        same_budget = {row.family: row.auc for row in
                       evaluate_detector(reference, data["test"].real, data["test"].fakes, perturbations=("none",)
                                         ).families}
    text = table(evaluation, lofo, trained=families)
    if same_budget is not None:
        text += ("\n\nIn-family AUC of a model with the leave-one-out budget "
                 f"({args.lofo_steps} steps): " + ", ".join(f"{k} {v:.3f}" for k, v in same_budget.items()
                                                             if k in families))
    log("done\n" + text)
    (out / "evaluation.md").write_text(text + "\n")
    (out / "training.json").write_text(json.dumps({
        "call": "python -m synthguard.training.detector " + " ".join(argv if argv is not None else
                                                                         sys.argv[1:]),
        "training": asdict(record),
        "evaluation": asdict(evaluation),
        "leave_one_family_out_auc": lofo,
        "same_budget_in_family_auc": same_budget,
        "total_seconds": round(time.perf_counter() - t0, 1),
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
                    "device": "cpu", "threads": args.threads},
    }, indent=2) + "\n")


if __name__ == "__main__":
    main()
