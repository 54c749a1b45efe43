"""Training the patch detector of ``synthguard.models.detector`` on data that exists offline: the data set, the
patch and global training loops, and the calibration on held-out images.

Real images: scikit-image and scikit-learn sample photographs, the dataset ``c2pa-photos`` (C2PA samples), cut into many
random crops at several scales, and real MNIST digits upsampled 28 -> 256 by the very path the generators use
(``synthguard.core.torch_utils.resize_image``, OpenCV bicubic), so that interpolation is not the cue that separates
real digits from fake ones. Fake families: the shipped GAN and VAE (samples, and VAE reconstructions of real
digits), a tiny DDPM (``training/ddpm.py``) trained on MNIST, and the project's procedural images. A sixth,
"upsampled" (photos down-sampled 4x, then bicubic up: what a cheap "enhancer" does), is a resampled real photo, not
a generator's output: it is built for every split but trained on only when asked. Enlarged and soft real photos can
join the real class (``for_training``'s ``soft_real``).

Shortcuts are the classic failure of such detectors (real JPEGs vs fake PNGs: see detection-peers.md), so every
image of both classes goes through the same steps: luma, the same random resize and JPEG (quality 50-95)
augmentation, the same patch sampling. Photos are split by *source* picture into train / calibration / test, MNIST
by its own train / test split, generators by seed range, so no test picture or seed is seen in training.

The architecture of both views is their model config (``patch_config``, ``global_config``); ``DetectorTrainConfig``
holds optimiser and calibration settings only. The run behind the shipped weights is ``recipes/train_detector.py``;
evaluation is ``training/detector_evaluation.py``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from synthguard.core.datasets import dataset_path
from synthguard.core.samples import procedural_image
from synthguard.core.torch_utils import resize_image, torch_threads
from synthguard.errors import InputError
from synthguard.generate.backends import builtin_generator
from synthguard.models.detector import Calibration, PatchDetector, thumbnail, to_luma
from synthguard.models.detector_nets import GlobalDiscriminator, PatchDiscriminator
from synthguard.training.architecture import architecture_of, build
from synthguard.training.augmentation import augment
from synthguard.training.calibration import fit_calibration
from synthguard.training.data import load_mnist
from synthguard.training.ddpm import sample_tiny_ddpm

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
# "upsampled" is a real photo resampled, not a generator's output: trained on as fake it teaches "little fine
# detail means synthetic" (the detector card says what that cost). It stays in the test split as an unseen family.
TRAINED_FAMILIES = tuple(f for f in FAMILIES if f != "upsampled")
_SEED_BASE = {"train": 0, "calibration": 1_000_000, "test": 2_000_000}


# ----------------------------------------------------------------------------------------------------- real data
def photo_sources(c2pa_folder: str | Path | None = None) -> dict[str, np.ndarray]:
    """Every offline photograph as (H, W) uint8 luma, by name; identical pixel arrays are kept once."""
    import skimage.data  # noqa: PLC0415
    from sklearn.datasets import load_sample_images  # noqa: PLC0415

    sources: dict[str, np.ndarray] = {}
    for name in SKIMAGE_PHOTOS:
        image = getattr(skimage.data, name)()
        sources[name] = to_luma(image[0] if isinstance(image, tuple) else image)  # stereo pair: the left view
    for name, image in zip(("china", "flower"), load_sample_images().images):
        sources[name] = to_luma(image)
    folder = dataset_path("c2pa-photos", c2pa_folder)  # the caller's folder, else the dataset cache
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

    ``ddpm`` is a ``UNet2DModel`` from ``training.ddpm.train_tiny_ddpm`` (None leaves that family out). Photo
    crops and the "upsampled" family come only from that split's photo sources; digits from MNIST train (train,
    calibration) or test (test); generator seeds from a range of their own per split.
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
        fakes["ddpm"] = upsample_digits(sample_tiny_ddpm(ddpm, n_per_family, base, num_threads=num_threads))
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


# ------------------------------------------------------------------------------------------------------ training
@dataclass(frozen=True)
class DetectorTrainConfig:
    """Optimiser and calibration settings of ``train_detector`` (the views' architecture is their model config)."""

    steps: int = 1500  # optimiser steps, batch_size patches each
    batch_size: int = 64  # half real, half fake
    lr: float = 2e-3
    refresh_every: int = 100  # steps between fresh augmentations of every training image
    target_fpr: float = 0.01
    global_epochs: int = 16  # passes over every training image's thumbnail (0: no global view)
    global_batch_size: int = 64
    global_lr: float = 1e-3
    global_refresh_every: int = 2  # epochs between fresh augmentations


@dataclass(frozen=True)
class DetectorTraining:
    """The record of one ``train_detector`` call (JSON-ready through ``asdict``)."""

    config: dict  # the DetectorTrainConfig
    families: list[str]
    n_train_real: int
    n_train_fake: int
    n_calibration_real: int
    n_calibration_fake: int
    losses: list[float]  # mean patch loss per ``refresh_every`` steps
    seconds: float
    global_losses: list[float] = field(default_factory=list)  # mean thumbnail loss per epoch
    calibration: dict = field(default_factory=dict)
    patch_config: dict = field(default_factory=dict)  # the views' architecture (their model configs)
    global_config: dict | None = None


class _PatchSampler:
    """Draws balanced batches of random ``patch`` x ``patch`` crops from freshly augmented copies of the images.

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
                 *, model_config: Mapping[str, Any] | None = None, seed: int = 0, num_threads: int | None = None,
                 log: Callable[[str], None] = print) -> tuple[GlobalDiscriminator, list[float]]:
    """Train the global view (a ``GlobalDiscriminator`` of ``model_config``, default the class's defaults,
    initialised from ``seed``) on thumbnails of freshly augmented copies of every image (the same ``augment`` as
    the patch view, before the thumbnail is taken), classes weighted to balance; one loss per epoch."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed + 17)
    model = build(GlobalDiscriminator, model_config)
    size = model.config.size
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
                thumbs = [thumbnail(augment(im, rng), size) for im in images]
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
    patch_config: Mapping[str, Any] | None = None,
    global_config: Mapping[str, Any] | None = None,
    global_extra: DetectorData | None = None,
    global_families: Sequence[str] | None = None,
    seed: int = 0,
    num_threads: int | None = None,
    log: Callable[[str], None] = print,
) -> tuple[PatchDetector, DetectorTraining]:
    """Train a ``PatchDiscriminator`` on patches of the given images and (``config.global_epochs`` > 0) a
    ``GlobalDiscriminator`` on their thumbnails plus ``global_extra``'s, then fit the fused calibration and
    threshold on the calibration images (held out: other photo sources, other digits, other seeds).

    ``patch_config`` / ``global_config``: the views' architecture, each a model config or part of one (e.g.
    ``PatchDiscriminator.load_config(folder)``, or ``{"max_grid": 8}``); the rest are the classes' defaults, which
    are the shipped detector's. Both are initialised from ``seed``.

    ``global_families`` (default: every family but "upsampled", whose thumbnails are those of real photos) are the
    fake families the global view trains on; ``global_extra``'s fakes count only when their family is in it."""
    if not real_images or not fake_images_by_family or not all(fake_images_by_family.values()):
        raise InputError("train_detector needs real images and at least one non-empty fake family")
    if global_config is not None and not config.global_epochs:
        raise InputError("a global view's config was given but global_epochs is 0 (no global view)")
    start = time.perf_counter()
    torch.manual_seed(seed)
    model = build(PatchDiscriminator, patch_config)
    sampler = _PatchSampler(real_images, fake_images_by_family, model.config.patch_size, seed)
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
    if config.global_epochs:
        families = [f for f in (global_families if global_families is not None else fake_images_by_family)
                    if f != "upsampled" or global_families is not None]
        extra = global_extra or DetectorData(real={}, fakes={})
        g_real = list(real_images) + extra.real_images
        g_fake = [im for f in families for im in (*fake_images_by_family.get(f, ()), *extra.fakes.get(f, ()))]
        global_model, global_losses = train_global(g_real, g_fake, config, model_config=global_config, seed=seed,
                                                   num_threads=num_threads, log=log)
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
        patch_config=architecture_of(model),
        global_config=architecture_of(global_model) if global_model is not None else None,
    )
    return detector, record
