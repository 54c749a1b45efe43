"""A discriminator turned detector: two small CNNs score an image as synthetic or real, one locally, one globally.

The *patch* view: a CNN scores 64x64 luma patches of the image at its own resolution.

The idea is the GAN discriminator's (Radford et al. 2016, DCGAN; Isola et al. 2017, pix2pix's "PatchGAN") kept
after training and aimed at every generator at once, with the patch-level reading of Chai et al. 2020 ("What makes
fake images detectable?", ECCV): a classifier that sees only small patches cannot lean on global content (what the
picture shows) and must use local texture, noise and resampling traces, and its per-patch scores form a heatmap.

Scoring an image: it becomes luma (BT.601, the Y that JPEG codes), is cut into a grid of 64x64 patches at its *own*
resolution (resampling the whole image first would wipe out the very traces a detector needs), at most
``max_grid`` x ``max_grid`` patches spread evenly over it; the network scores each patch; the image logit is the
mean patch logit; a fitted calibration (Platt scaling: a temperature and a bias, Platt 1999 / Guo et al. 2017)
maps it to P(synthetic); the decision threshold was set for a stated false-positive rate on held-out real images.

The *global* view: local traces cannot tell a well-made GAN digit from a real one once both went through the same
resampling; what differs is the shape as a whole (the cue a GAN's own discriminator learns). A second CNN scores
a 32x32 thumbnail of the image's central square. The two logits are fused by a logistic calibration with
non-negative weights, fitted on held-out images (so a higher score on either view never lowers the probability);
the heatmap shows each patch's probability with the global term held at the image's value.

This module scores and applies a calibration; fitting one, and training the views, is ``synthguard.training``'s
(``training/calibration.py``, ``training/detector.py``). How the shipped weights were made: ``weights/detector``.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from dataclasses import asdict, dataclass
from importlib.resources import as_file, files
from pathlib import Path

import cv2
import numpy as np
import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from synthguard.core.fileio import write_atomic
from synthguard.core.torch_utils import load_model, torch_threads
from synthguard.errors import InputError

MIN_SIDE = 32  # below this there is too little texture for a forensic score to mean anything
CALIBRATION_FILE = "calibration.json"
BUILTIN_NAME = "synthguard/patch-detector"


class GlobalDiscriminator(ModelMixin, ConfigMixin):
    """(B, 1, S, S) luma thumbnails in [0, 1] -> (B,) logits of "synthetic" (S = ``size``, see ``thumbnail``).

    Stride-2 3x3 convolutions with LeakyReLU (0.2), no normalisation, and a linear read-out of the flattened
    feature map: position matters here (a digit's shape is the cue), unlike in the patch view.
    """

    @register_to_config
    def __init__(self, size: int = 32, widths: tuple[int, ...] = (32, 64, 128, 128)):
        super().__init__()
        if not widths or any(w <= 0 for w in widths) or size < 8 or size % 2 ** (len(widths) - 1):
            raise InputError(f"size must be >= 8 and divisible by 2**(len(widths)-1), widths positive; not {size}, "
                             f"{widths}")
        layers: list[nn.Module] = [nn.Conv2d(1, widths[0], 3, padding=1), nn.LeakyReLU(0.2)]
        for c_in, c_out in itertools.pairwise(widths):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers)
        side = size // 2 ** (len(widths) - 1)
        self.head = nn.Linear(widths[-1] * side * side, 1)

    def forward(self, thumbs: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(thumbs - 0.5).flatten(1))[:, 0]


def thumbnail(luma: np.ndarray, size: int) -> np.ndarray:
    """(H, W) uint8 -> (size, size) uint8: the central square, area-resized (the global view's input)."""
    h, w = luma.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = luma[top : top + side, left : left + side]
    interp = cv2.INTER_AREA if side >= size else cv2.INTER_LINEAR
    return cv2.resize(square, (size, size), interpolation=interp)


class PatchDiscriminator(ModelMixin, ConfigMixin):
    """(B, 1, P, P) luma patches in [0, 1] -> (B,) logits of "synthetic".

    ``widths[0]`` channels at full resolution first (a stride-2 first layer would alias away the highest
    frequencies, where resampling and generator traces live), then one stride-2 conv per further width, LeakyReLU
    (0.2, DCGAN's), no normalisation (a batch statistic would make a patch's score depend on its batch-mates), a
    spatial mean and a linear read-out. ``max_grid`` is a scoring setting kept here so that it travels with the
    weights: the most patches per image side that ``PatchDetector.score`` takes.
    """

    @register_to_config
    def __init__(self, patch_size: int = 64, widths: tuple[int, ...] = (16, 32, 64, 64), max_grid: int = 4):
        super().__init__()
        if patch_size < MIN_SIDE or patch_size % 2 ** (len(widths) - 1):
            raise InputError(f"patch_size must be >= {MIN_SIDE} and divisible by 2**(len(widths)-1), not {patch_size}")
        if not widths or any(w <= 0 for w in widths) or max_grid < 1:
            raise InputError(f"widths must be positive channel counts and max_grid >= 1, not {widths}, {max_grid}")
        # Two input planes: the centred luma and its high-pass residual (luma minus its 3x3 mean). Forensic CNNs
        # learn far faster when handed the residual (the idea of SRM filters and Bayar & Stamm's constrained conv),
        # since content dwarfs the traces in raw pixels.
        layers: list[nn.Module] = [nn.Conv2d(2, widths[0], 3, padding=1), nn.LeakyReLU(0.2)]
        for c_in, c_out in itertools.pairwise(widths):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(widths[-1], 1)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        residual = patches - nn.functional.avg_pool2d(patches, 3, stride=1, padding=1, count_include_pad=False)
        x = torch.cat([patches - 0.5, 8 * residual], dim=1)  # (B, 2, P, P); 8x: residuals are a few grey levels
        h = self.features(x)  # (B, C, P / 2**(n-1), P / 2**(n-1))
        return self.head(h.mean(dim=(2, 3)))[:, 0]  # (B, C) -> (B,)


@dataclass(frozen=True)
class Calibration:
    """Scores -> P(synthetic) = sigmoid(weights . scores + bias), and the decision threshold on that probability.

    The scores are the views' logits in a fixed order (patch, then global when the detector has one).
    ``threshold`` was chosen on ``n_real`` held-out real images so that at most ``target_fpr`` of them score at or
    above it; ``measured_fpr`` is the fraction that did (with ``n_real`` images the resolution is 1 / n_real).
    Every weight is > 0, so the probability increases with each score: calibration never reorders images along
    one view.
    """

    weights: tuple[float, ...]
    bias: float
    threshold: float
    target_fpr: float
    measured_fpr: float
    n_real: int
    n_fake: int
    method: str = "logistic, positive weights"

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", tuple(float(w) for w in self.weights))
        if not self.weights or not all(w > 0 and math.isfinite(w) for w in self.weights) or not math.isfinite(
                self.bias):
            raise InputError(f"calibration weights must be finite and > 0 and the bias finite, not "
                             f"{self.weights!r}, {self.bias!r}")
        if not 0 <= self.threshold <= 1 or not 0 <= self.target_fpr < 1:
            raise InputError(f"calibration threshold and target FPR must be in [0, 1], not {self.threshold!r}, "
                             f"{self.target_fpr!r}")

    def probability(self, scores: float | np.ndarray) -> np.ndarray:
        """P(synthetic) of scores shaped (..., len(weights)) (a bare number or (...,) when there is one view)."""
        x = np.asarray(scores, dtype=np.float64)
        if len(self.weights) == 1 and (x.ndim == 0 or x.shape[-1] != 1):
            x = x[..., None]
        if x.shape[-1] != len(self.weights):
            raise InputError(f"calibration expects {len(self.weights)} scores per image, got shape {x.shape}")
        return _sigmoid(x @ np.asarray(self.weights) + self.bias)

    def save(self, folder: str | os.PathLike) -> None:
        write_atomic(Path(folder) / CALIBRATION_FILE, (json.dumps(asdict(self), indent=2) + "\n").encode())

    @classmethod
    def load(cls, folder: str | os.PathLike) -> Calibration:
        path = Path(folder) / CALIBRATION_FILE
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise InputError(f"cannot read a calibration from {str(path)!r}: {' '.join(str(exc).split())}") from exc


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-z)) without overflow warnings for large negative scores."""
    return np.exp(-np.logaddexp(0.0, -z))


@dataclass(frozen=True)
class ClassifierResult:
    """One image's score.

    Attributes
    ----------
    probability
        Calibrated P(synthetic) of the whole image, in [0, 1].
    logit
        The patch view's uncalibrated image logit (mean of the patch logits).
    global_logit
        The global view's uncalibrated logit (None for a detector without one).
    heatmap
        (rows, cols) float array: each patch's P(synthetic) by the same calibration, laid out as the patches are
        on the image (a single patch is a weaker witness than the whole image: read it as where, not whether).
    threshold
        The stored decision threshold on ``probability`` (set for the stored false-positive rate).
    patches
        How many patches were scored (rows * cols).
    model
        The detector's name.
    """

    probability: float
    logit: float
    global_logit: float | None
    heatmap: np.ndarray
    threshold: float
    patches: int
    model: str

    @property
    def synthetic(self) -> bool:
        """The thresholded call: probability at or above the threshold."""
        return self.probability >= self.threshold

    def to_dict(self) -> dict:
        return {"probability": self.probability, "logit": self.logit, "global_logit": self.global_logit,
                "threshold": self.threshold,
                "synthetic": self.synthetic, "patches": self.patches, "model": self.model,
                "heatmap": np.round(self.heatmap, 4).tolist()}


def to_luma(image: np.ndarray) -> np.ndarray:
    """A uint8 (H, W), (H, W, 1) or (H, W, 3) RGB image -> (H, W) uint8 luma; refuses anything else loudly.

    Colour is dropped on purpose: generators here are grey, so colour would be a content cue and not a trace.
    """
    image = _checked(image)
    return image if image.ndim == 2 else _rgb_luma(image)


def _checked(image: np.ndarray) -> np.ndarray:
    """The image as (H, W) grey or (H, W, 3) RGB uint8, at least MIN_SIDE a side (what ``to_luma`` accepts)."""
    if not isinstance(image, np.ndarray):
        raise InputError(f"image must be a numpy array, not {type(image).__name__}")
    if image.dtype != np.uint8:
        raise InputError(f"image must be uint8, not {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise InputError(f"image must be (H, W) grey or (H, W, 3) RGB, not shape {image.shape}")
    if min(image.shape[:2]) < MIN_SIDE:
        raise InputError(f"image must be at least {MIN_SIDE}x{MIN_SIDE} pixels, not {image.shape[1]}x{image.shape[0]}")
    return image


def _rgb_luma(rgb: np.ndarray) -> np.ndarray:
    """(H, W) uint8 luma of (H, W, 3) uint8 RGB pixels; a window of a larger image is read in place (OpenCV
    takes a row stride) when its pixels are packed, so only the luma is allocated."""
    packed = rgb.strides[1:] == (3, 1) and rgb.strides[0] > 0
    return cv2.cvtColor(rgb if packed else np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def _window_luma(image: np.ndarray, top: int, left: int, height: int, width: int) -> np.ndarray:
    """The luma of one window of a checked image: ``to_luma(image)[top:top+height, left:left+width]``, without
    converting the rest of the image."""
    window = image[top : top + height, left : left + width]
    return window if window.ndim == 2 else _rgb_luma(window)


def patch_grid(height: int, width: int, patch_size: int, max_grid: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-left corners of the patches along y and along x.

    Per side: enough patches to cover it (ceil(side / patch_size)) capped at ``max_grid``, spread evenly from edge
    to edge; they overlap a little when the side is not a multiple of ``patch_size`` and leave gaps when capped.
    A side shorter than a patch is reflect-padded to one patch before this (see ``extract_patches``).
    """
    def corners(side: int) -> np.ndarray:
        count = min(max_grid, max(1, math.ceil(side / patch_size)))
        return np.round(np.linspace(0, max(0, side - patch_size), count)).astype(int)

    return corners(height), corners(width)


def extract_patches(luma: np.ndarray, patch_size: int, max_grid: int) -> tuple[np.ndarray, tuple[int, int]]:
    """(H, W) uint8 -> ((rows * cols, patch, patch) uint8 patches in row-major order, (rows, cols))."""
    pad_y, pad_x = max(0, patch_size - luma.shape[0]), max(0, patch_size - luma.shape[1])
    if pad_y or pad_x:
        luma = np.pad(luma, ((0, pad_y), (0, pad_x)), mode="reflect")
    ys, xs = patch_grid(luma.shape[0], luma.shape[1], patch_size, max_grid)
    patches = np.stack([luma[y : y + patch_size, x : x + patch_size] for y in ys for x in xs])
    return patches, (len(ys), len(xs))


class PatchDetector:
    """Scores images with a ``PatchDiscriminator``, an optional ``GlobalDiscriminator`` and their ``Calibration``;
    ``score`` is its one verb."""

    def __init__(
        self, model: PatchDiscriminator, calibration: Calibration, *, global_model: GlobalDiscriminator | None = None,
        name: str = BUILTIN_NAME, num_threads: int | None = None,
    ) -> None:
        views = 1 + (global_model is not None)
        if len(calibration.weights) != views:
            raise InputError(f"calibration has {len(calibration.weights)} weights for {views} view(s)")
        self.model = model.eval()
        self.global_model = global_model.eval() if global_model is not None else None
        self.calibration = calibration
        self.name = name
        self.num_threads = num_threads

    def patch_logits(self, image: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        """(rows * cols,) patch logits of one image and the grid shape (rows, cols)."""
        config = self.model.config
        image, size = _checked(image), config.patch_size
        h, w = image.shape[:2]
        if h < size or w < size:  # reflect-padded to one patch: the whole (small) image's luma
            patches, grid = extract_patches(to_luma(image), size, config.max_grid)
        else:  # the luma of the patches only, not of the whole image
            ys, xs = patch_grid(h, w, size, config.max_grid)
            patches = np.stack([_window_luma(image, y, x, size, size) for y in ys for x in xs])
            grid = (len(ys), len(xs))
        x = torch.from_numpy(patches).float().div(255)[:, None]  # (N, 1, P, P)
        with torch_threads(self.num_threads), torch.inference_mode():
            return self.model.cpu()(x).double().numpy(), grid

    def global_logit(self, image: np.ndarray) -> float | None:
        """The global view's logit of one image (None without a global view)."""
        if self.global_model is None:
            return None
        image = _checked(image)
        h, w = image.shape[:2]
        side = min(h, w)
        # The central square's luma only: what ``thumbnail`` keeps of the whole image's.
        square = _window_luma(image, (h - side) // 2, (w - side) // 2, side, side)
        thumb = thumbnail(square, self.global_model.config.size)
        x = torch.from_numpy(thumb).float().div(255)[None, None]  # (1, 1, S, S)
        with torch_threads(self.num_threads), torch.inference_mode():
            return float(self.global_model.cpu()(x)[0])

    def _views(self, image: np.ndarray) -> tuple[np.ndarray, tuple[int, int], float | None, np.ndarray]:
        """Patch logits, their grid, the global logit, and the calibration's input [mean patch logit(, global)]."""
        logits, grid = self.patch_logits(image)
        g = self.global_logit(image)
        return logits, grid, g, np.array([logits.mean()] if g is None else [logits.mean(), g])

    def scores(self, image: np.ndarray) -> np.ndarray:
        """The calibration's input for one image: (views,) = [mean patch logit(, global logit)]."""
        return self._views(image)[3]

    def score(self, image: np.ndarray) -> ClassifierResult:
        """Score one uint8 (H, W) grey or (H, W, 3) RGB image of any size >= 32x32."""
        logits, grid, g, image_scores = self._views(image)
        logit = float(image_scores[0])
        per_patch = logits[:, None] if g is None else np.stack([logits, np.full_like(logits, g)], axis=1)
        return ClassifierResult(
            probability=float(self.calibration.probability(image_scores)),
            logit=logit,
            global_logit=g,
            heatmap=self.calibration.probability(per_patch).reshape(grid),
            threshold=self.calibration.threshold,
            patches=int(logits.size),
            model=self.name,
        )

    def save_pretrained(self, folder: str | os.PathLike) -> None:
        """``patch/`` and ``global/`` (diffusers' config.json + safetensors each) and calibration.json in
        ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(folder / "patch", safe_serialization=True)
        if self.global_model is not None:
            self.global_model.save_pretrained(folder / "global", safe_serialization=True)
        self.calibration.save(folder)

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, **kwargs) -> PatchDetector:
        """Load what ``save_pretrained`` wrote; missing or mismatched files raise ``InputError`` naming the folder."""
        folder = Path(folder)
        global_model = load_model(GlobalDiscriminator, folder / "global") if (folder / "global").is_dir() else None
        return cls(load_model(PatchDiscriminator, folder / "patch"), Calibration.load(folder),
                   global_model=global_model, **kwargs)


def builtin_detector(*, num_threads: int | None = None) -> PatchDetector:
    """The shipped detector (``synthguard/models/weights/detector``; how it was trained: that folder's README.md)."""
    with as_file(files("synthguard.models") / "weights" / "detector") as folder:
        return PatchDetector.from_pretrained(folder, name=BUILTIN_NAME, num_threads=num_threads)
