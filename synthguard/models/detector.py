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

This module scores and applies a calibration, running both views in numpy (``PatchNet``, ``GlobalNet``: float32,
the same weights files, no torch import); their torch modules, for training and for scoring on a torch device, are
``models/detector_nets.py``. Fitting a calibration, and training the views, is ``synthguard.training``'s
(``training/calibration.py``, ``training/detector.py``). How the shipped weights were made: ``weights/detector``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from enum import Enum
from importlib.resources import as_file, files
from pathlib import Path

import cv2
import numpy as np

from synthguard.core.fileio import write_atomic
from synthguard.core.process import one_blas_thread
from synthguard.errors import InputError

MIN_SIDE = 32  # below this there is too little texture for a forensic score to mean anything
CALIBRATION_FILE = "calibration.json"
BUILTIN_NAME = "synthguard/patch-detector"


WEIGHTS_FILE = "diffusion_pytorch_model.safetensors"  # the name diffusers' save_pretrained gives the weights
CHUNK = 64  # items per forward pass of a numpy view: bounds the im2col buffers of a large batch


class Runtime(str, Enum):
    """What runs the views' forward pass: numpy on the CPU (the default, no torch import) or the torch modules of
    ``models.detector_nets`` on a torch device."""

    NUMPY = "numpy"
    TORCH = "torch"


@dataclass(frozen=True)
class PatchConfig:
    """The patch view's architecture (``PatchDiscriminator``'s config): see that class."""

    patch_size: int = 64
    widths: tuple[int, ...] = (16, 32, 64, 64)
    max_grid: int = 4

    def __post_init__(self) -> None:
        object.__setattr__(self, "widths", _widths(self.widths))
        if not _is_int(self.patch_size) or self.patch_size < MIN_SIDE or self.patch_size % 2 ** (len(self.widths) - 1):
            raise InputError(f"patch_size must be >= {MIN_SIDE} and divisible by 2**(len(widths)-1), not "
                             f"{self.patch_size}")
        if not _is_int(self.max_grid) or self.max_grid < 1:
            raise InputError(f"widths must be positive channel counts and max_grid >= 1, not {self.widths}, "
                             f"{self.max_grid}")


@dataclass(frozen=True)
class GlobalConfig:
    """The global view's architecture (``GlobalDiscriminator``'s config): see that class."""

    size: int = 32
    widths: tuple[int, ...] = (32, 64, 128, 128)

    def __post_init__(self) -> None:
        object.__setattr__(self, "widths", _widths(self.widths))
        if not _is_int(self.size) or self.size < 8 or self.size % 2 ** (len(self.widths) - 1):
            raise InputError(f"size must be >= 8 and divisible by 2**(len(widths)-1), widths positive; not "
                             f"{self.size}, {self.widths}")

    @property
    def side(self) -> int:
        """The side of the last feature map (what the linear read-out flattens)."""
        return self.size // 2 ** (len(self.widths) - 1)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _widths(widths) -> tuple[int, ...]:
    if isinstance(widths, str | bytes) or not hasattr(widths, "__iter__"):
        raise InputError(f"widths must be a sequence of positive channel counts, not {widths!r}")
    widths = tuple(widths)
    if not widths or not all(_is_int(w) and w > 0 for w in widths):
        raise InputError(f"widths must be positive channel counts, not {widths!r}")
    return widths


class _NumpyView:
    """A view's forward pass in numpy float32: 3x3 convolutions (zero padding 1; stride 1, then 2) as im2col and one
    matrix product each, LeakyReLU 0.2, and a linear read-out. Weights keep torch's names and layouts
    (``features.{2i}.weight`` (out, in, 3, 3), ``head.weight`` (1, features)), so a ``save_pretrained`` folder
    of the torch module loads here and back."""

    class_name: str
    in_planes: int

    def __init__(self, config, weights: Mapping[str, np.ndarray]) -> None:
        self.config = config
        expected = self._shapes()
        missing = sorted(set(expected) - set(weights))
        unexpected = sorted(set(weights) - set(expected))
        mismatched = sorted(k for k in set(expected) & set(weights) if tuple(np.shape(weights[k])) != expected[k])
        if missing or unexpected or mismatched:
            raise InputError(f"weights do not fit {self.class_name}{tuple(asdict(config).values())}: missing "
                             f"{missing}, unexpected {unexpected}, mismatched {mismatched}")
        self._weights = {k: np.array(weights[k], dtype=np.float32) for k in expected}
        # (out, in * 9) matrices: torch's (out, in, ky, kx) order, the order ``_conv3x3`` lays its columns out in.
        self._convs = [
            (self._weights[f"features.{2 * i}.weight"].reshape(width, -1),
             self._weights[f"features.{2 * i}.bias"][:, None], 1 if i == 0 else 2)
            for i, width in enumerate(config.widths)
        ]

    def _shapes(self) -> dict[str, tuple[int, ...]]:
        widths = self.config.widths
        shapes: dict[str, tuple[int, ...]] = {}
        for i, (c_in, c_out) in enumerate(zip((self.in_planes, *widths[:-1]), widths)):
            shapes[f"features.{2 * i}.weight"] = (c_out, c_in, 3, 3)
            shapes[f"features.{2 * i}.bias"] = (c_out,)
        shapes["head.weight"] = (1, self._head_inputs())
        shapes["head.bias"] = (1,)
        return shapes

    def _head_inputs(self) -> int:
        raise NotImplementedError

    def _features(self, x: np.ndarray) -> np.ndarray:
        """(in_planes, N, H, W) -> the last (C, N, h, w) feature map (channels first, then items: each layer's
        output is one matrix product's, laid out as it comes)."""
        for matrix, bias, stride in self._convs:
            x = _conv3x3(x, matrix, bias, stride)
            np.maximum(x, np.float32(0.2) * x, out=x)  # LeakyReLU(0.2)
        return x

    def _logits(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """(N, S, S) float32 luma in [0, 1] -> (N,) float32 logits, ``CHUNK`` items at a time."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 3 or x.shape[0] == 0:
            raise InputError(f"{self.class_name} takes (N, S, S) luma, not shape {x.shape}")
        return np.concatenate([self._logits(x[i : i + CHUNK]) for i in range(0, len(x), CHUNK)])

    def state_dict(self) -> dict[str, np.ndarray]:
        """The weights by their torch names, in torch layout (copies)."""
        return {k: v.copy() for k, v in self._weights.items()}

    def init_kwargs(self) -> dict:
        """The config as the torch class's ``__init__`` arguments."""
        return asdict(self.config)

    @classmethod
    def from_module(cls, module):
        """The numpy view of a torch module (a ``PatchDiscriminator`` / ``GlobalDiscriminator``): its config and a
        float32 copy of its weights as they are now."""
        config_cls = PatchConfig if cls is PatchNet else GlobalConfig
        config = config_cls(**{k: v for k, v in module.config.items() if not k.startswith("_")})
        return cls(config, {k: v.detach().float().cpu().numpy() for k, v in module.state_dict().items()})

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike):
        """Load a ``save_pretrained`` folder (config.json and safetensors weights); ``InputError`` naming the folder
        when it is missing, of another class, or its weights do not fit its config."""
        folder = Path(folder)
        config_path, weights_path = folder / "config.json", folder / WEIGHTS_FILE
        if not config_path.is_file():
            raise InputError(f"model folder {str(folder)!r} does not exist or has no config.json")
        try:
            saved = json.loads(config_path.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"{str(config_path)!r} is not a JSON object: {exc}") from exc
        if not isinstance(saved, dict):
            raise InputError(f"{str(config_path)!r} is not a JSON object")
        if saved.get("_class_name") != cls.class_name:
            raise InputError(f"model folder {str(folder)!r} holds a {saved.get('_class_name')!r}, not a "
                             f"{cls.class_name!r}")
        config_cls = PatchConfig if cls is PatchNet else GlobalConfig
        settings = {k: v for k, v in saved.items() if not k.startswith("_")}
        unknown = sorted(set(settings) - {f.name for f in fields(config_cls)})
        if unknown:
            raise InputError(f"{str(config_path)!r} has settings {cls.class_name} does not know: {unknown}")
        from safetensors import SafetensorError  # noqa: PLC0415 (the loader's import is paid with a model only)
        from safetensors.numpy import load_file  # noqa: PLC0415

        try:
            config = config_cls(**settings)
            weights = load_file(str(weights_path))
        except (OSError, SafetensorError, TypeError, ValueError) as exc:
            raise InputError(f"cannot load {cls.class_name} from {str(folder)!r}: {' '.join(str(exc).split())}") \
                from exc
        except InputError as exc:
            raise InputError(f"cannot load {cls.class_name} from {str(folder)!r}: {exc}") from exc
        try:
            return cls(config, weights)
        except InputError as exc:
            raise InputError(f"weights in {str(folder)!r}: {exc}") from exc

    def save_pretrained(self, folder: str | os.PathLike) -> None:
        """config.json and the safetensors weights, as diffusers' ``save_pretrained`` writes them (the torch module
        loads them with ``from_pretrained``)."""
        from safetensors.numpy import save  # noqa: PLC0415 (only a save pays the import)

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        config = {"_class_name": self.class_name, **self.init_kwargs()}
        text = json.dumps(config, indent=2, sort_keys=True, default=list) + "\n"
        write_atomic(folder / "config.json", text.encode())
        write_atomic(folder / WEIGHTS_FILE, save(self._weights, metadata={"format": "pt"}))


class PatchNet(_NumpyView):
    """``PatchDiscriminator``'s forward pass in numpy: (N, P, P) float32 luma in [0, 1] -> (N,) logits."""

    class_name = "PatchDiscriminator"
    in_planes = 2

    def _head_inputs(self) -> int:
        return self.config.widths[-1]

    def _logits(self, patches: np.ndarray) -> np.ndarray:
        residual = patches - _box_mean3(patches)
        x = np.stack([patches - np.float32(0.5), np.float32(8) * residual])  # (2, N, P, P)
        pooled = self._features(x).mean(axis=(2, 3), dtype=np.float32)  # (C, N)
        return (self._weights["head.weight"] @ pooled + self._weights["head.bias"][:, None])[0]


class GlobalNet(_NumpyView):
    """``GlobalDiscriminator``'s forward pass in numpy: (N, S, S) float32 thumbnails in [0, 1] -> (N,) logits."""

    class_name = "GlobalDiscriminator"
    in_planes = 1

    def _head_inputs(self) -> int:
        return self.config.widths[-1] * self.config.side ** 2

    def _logits(self, thumbs: np.ndarray) -> np.ndarray:
        h = self._features((thumbs - np.float32(0.5))[None])  # (C, N, h, w)
        flat = h.transpose(1, 0, 2, 3).reshape(h.shape[1], -1)  # (N, C * h * w): torch's flatten order
        return (flat @ self._weights["head.weight"].T + self._weights["head.bias"])[:, 0]


def _conv3x3(x: np.ndarray, matrix: np.ndarray, bias: np.ndarray, stride: int) -> np.ndarray:
    """(C, N, H, W) -> (out, N, ceil(H / stride), ceil(W / stride)): a 3x3 convolution with zero padding 1, as one
    (out, C * 9) x (C * 9, N * h * w) product over the image columns."""
    c, n, h, w = x.shape
    padded = np.zeros((c, n, h + 2, w + 2), dtype=np.float32)
    padded[:, :, 1:-1, 1:-1] = x
    ho, wo = (h - 1) // stride + 1, (w - 1) // stride + 1
    columns = np.empty((c, 3, 3, n, ho, wo), dtype=np.float32)
    for ky in range(3):
        for kx in range(3):
            columns[:, ky, kx] = padded[:, :, ky : ky + stride * (ho - 1) + 1 : stride,
                                        kx : kx + stride * (wo - 1) + 1 : stride]
    out = matrix @ columns.reshape(c * 9, n * ho * wo)
    out += bias
    return out.reshape(-1, n, ho, wo)


def _box_mean3(x: np.ndarray) -> np.ndarray:
    """(N, H, W) -> the mean of each pixel's 3x3 neighbourhood within the image (torch's ``avg_pool2d(x, 3, 1, 1,
    count_include_pad=False)``)."""
    h, w = x.shape[1:]
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    total = np.zeros_like(x)
    for ky in range(3):
        for kx in range(3):
            total += padded[:, ky : ky + h, kx : kx + w]
    # Each pixel's count of neighbours inside the image, itself included: 3 inside, 2 on an edge, 1 for a side of 1.
    rows = 1 + (np.arange(h) > 0) + (np.arange(h) < h - 1)
    cols = 1 + (np.arange(w) > 0) + (np.arange(w) < w - 1)
    return total / np.outer(rows, cols).astype(np.float32)


def thumbnail(luma: np.ndarray, size: int) -> np.ndarray:
    """(H, W) uint8 -> (size, size) uint8: the central square, area-resized (the global view's input)."""
    h, w = luma.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = luma[top : top + side, left : left + side]
    interp = cv2.INTER_AREA if side >= size else cv2.INTER_LINEAR
    return cv2.resize(square, (size, size), interpolation=interp)


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
    """Scores images with a patch view, an optional global view and their ``Calibration``; ``score`` is its one verb.

    The views are given as numpy views (``PatchNet``, ``GlobalNet``) or as the torch modules of
    ``models.detector_nets`` (``PatchDiscriminator``, ``GlobalDiscriminator``); either kind runs on either runtime.
    ``runtime`` None chooses from ``device``: numpy for "cpu" (no torch import; a torch module's weights are copied
    when the detector is made), torch on any other device ("cuda", "cuda:N", "mps", "auto": cuda when available).
    ``runtime="torch", device="cpu"`` runs the torch modules on the CPU. ``num_threads`` scopes torch's CPU threads
    for the torch runtime; the numpy runtime runs its matrix products on one BLAS thread (they are small, about 0.4
    GFLOP for a 512 px image, and a second thread costs more than it gives: parallelism comes from workers).
    """

    def __init__(
        self, model, calibration: Calibration, *, global_model=None, name: str = BUILTIN_NAME,
        num_threads: int | None = None, runtime: Runtime | str | None = None, device: str = "cpu",
    ) -> None:
        views = 1 + (global_model is not None)
        if len(calibration.weights) != views:
            raise InputError(f"calibration has {len(calibration.weights)} weights for {views} view(s)")
        if not isinstance(device, str):
            raise InputError(f"device must be a string such as 'cpu', 'cuda' or 'auto', not {device!r}")
        runtime = _runtime(runtime, device)
        if runtime is Runtime.NUMPY and device != "cpu":
            raise InputError(f"the numpy runtime runs on the CPU only, not on {device!r}: choose runtime 'torch'")
        if isinstance(num_threads, bool) or not (num_threads is None or (isinstance(num_threads, int)
                                                                        and num_threads > 0)):
            raise InputError(f"num_threads must be a positive integer or None, not {num_threads!r}")
        self.model = model if isinstance(model, PatchNet) else model.eval()
        self.global_model = (global_model if global_model is None or isinstance(global_model, GlobalNet)
                             else global_model.eval())
        self.calibration = calibration
        self.name = name
        self.num_threads = num_threads
        self.runtime = runtime
        if runtime is Runtime.NUMPY:
            self._patch_net = model if isinstance(model, PatchNet) else PatchNet.from_module(model)
            self._global_net = (global_model if global_model is None or isinstance(global_model, GlobalNet)
                                else GlobalNet.from_module(global_model))
            self.device = "cpu"
            self._patch_config, self._global_config = self._patch_net.config, getattr(self._global_net, "config",
                                                                                       None)
        else:
            from synthguard.core.torch_utils import resolve_device  # noqa: PLC0415 (the torch runtime only)
            from synthguard.models.detector_nets import to_torch  # noqa: PLC0415 (the torch runtime only)

            self.device = str(resolve_device(device))
            self._patch_net = to_torch(model) if isinstance(model, PatchNet) else self.model
            self._global_net = to_torch(global_model) if isinstance(global_model, GlobalNet) else self.global_model
            self._patch_config = PatchConfig(**_init_kwargs(self._patch_net.config))
            self._global_config = (None if self._global_net is None
                                   else GlobalConfig(**_init_kwargs(self._global_net.config)))

    def _forward(self, net, x: np.ndarray) -> np.ndarray:
        """(N, S, S) float32 in [0, 1] through one view on this detector's runtime -> (N,) float64 logits."""
        if self.runtime is Runtime.NUMPY:
            with one_blas_thread():
                return net(x).astype(np.float64)
        import torch  # noqa: PLC0415 (the torch runtime only)

        from synthguard.core.torch_utils import torch_threads  # noqa: PLC0415 (the torch runtime only)

        with torch_threads(self.num_threads), torch.inference_mode():
            return net.to(self.device)(torch.from_numpy(x)[:, None].to(self.device)).double().cpu().numpy()

    def patch_logits(self, image: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        """(rows * cols,) patch logits of one image and the grid shape (rows, cols)."""
        config = self._patch_config
        image, size = _checked(image), config.patch_size
        h, w = image.shape[:2]
        if h < size or w < size:  # reflect-padded to one patch: the whole (small) image's luma
            patches, grid = extract_patches(to_luma(image), size, config.max_grid)
        else:  # the luma of the patches only, not of the whole image
            ys, xs = patch_grid(h, w, size, config.max_grid)
            patches = np.stack([_window_luma(image, y, x, size, size) for y in ys for x in xs])
            grid = (len(ys), len(xs))
        return self._forward(self._patch_net, patches.astype(np.float32) / np.float32(255)), grid

    def global_logit(self, image: np.ndarray) -> float | None:
        """The global view's logit of one image (None without a global view)."""
        if self._global_net is None:
            return None
        image = _checked(image)
        h, w = image.shape[:2]
        side = min(h, w)
        # The central square's luma only: what ``thumbnail`` keeps of the whole image's.
        square = _window_luma(image, (h - side) // 2, (w - side) // 2, side, side)
        thumb = thumbnail(square, self._global_config.size)
        return float(self._forward(self._global_net, thumb[None].astype(np.float32) / np.float32(255))[0])

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
        for view, sub in ((self.model, "patch"), (self.global_model, "global")):
            if isinstance(view, _NumpyView):
                view.save_pretrained(folder / sub)
            elif view is not None:
                view.save_pretrained(folder / sub, safe_serialization=True)
        self.calibration.save(folder)

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, **kwargs) -> PatchDetector:
        """Load what ``save_pretrained`` wrote (``kwargs``: ``__init__``'s, the runtime among them); missing or
        mismatched files raise ``InputError`` naming the folder."""
        folder = Path(folder)
        has_global = (folder / "global").is_dir()
        if _runtime(kwargs.get("runtime"), kwargs.get("device", "cpu")) is Runtime.NUMPY:
            patch, global_view = PatchNet.from_pretrained(folder / "patch"), None
            if has_global:
                global_view = GlobalNet.from_pretrained(folder / "global")
        else:
            from synthguard.core.torch_utils import load_model  # noqa: PLC0415 (the torch runtime only)
            from synthguard.models.detector_nets import (  # noqa: PLC0415 (the torch runtime only)
                GlobalDiscriminator,
                PatchDiscriminator,
            )

            patch = load_model(PatchDiscriminator, folder / "patch")
            global_view = load_model(GlobalDiscriminator, folder / "global") if has_global else None
        return cls(patch, Calibration.load(folder), global_model=global_view, **kwargs)


def _runtime(runtime: Runtime | str | None, device) -> Runtime:
    """The runtime asked for, or (None) the one ``device`` implies: numpy on "cpu", torch elsewhere."""
    if runtime is None:
        return Runtime.NUMPY if device == "cpu" else Runtime.TORCH
    try:
        return Runtime(runtime)
    except ValueError:
        raise InputError(f"runtime must be one of {', '.join(r.value for r in Runtime)}, not {runtime!r}") from None


def _init_kwargs(config) -> dict:
    """A torch module's config as its ``__init__`` arguments (diffusers' private ``_`` keys left out)."""
    return {k: v for k, v in config.items() if not k.startswith("_")}


def builtin_detector(*, num_threads: int | None = None, runtime: Runtime | str | None = None,
                     device: str = "cpu") -> PatchDetector:
    """The shipped detector (``synthguard/models/weights/detector``; how it was trained: that folder's README.md).
    ``runtime`` and ``device``: as ``PatchDetector``'s (default: numpy on the CPU)."""
    with as_file(files("synthguard.models") / "weights" / "detector") as folder:
        return PatchDetector.from_pretrained(folder, name=BUILTIN_NAME, num_threads=num_threads, runtime=runtime,
                                             device=device)


def __getattr__(name: str):
    """The torch modules under their former home: ``models.detector.PatchDiscriminator`` still resolves, importing
    torch only when asked for (their module is ``models.detector_nets``)."""
    if name in ("PatchDiscriminator", "GlobalDiscriminator"):
        from synthguard.models import detector_nets  # noqa: PLC0415 (torch is imported only when they are wanted)

        return getattr(detector_nets, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
