"""A detector on a pretrained vision backbone: frozen image features and a calibrated linear probe.

For users with a better network than the built-in discriminator: a CLIP vision model (or any transformers vision
model) by hub id or local folder gives one feature vector per image, and a logistic-regression probe on those
features separates real from synthetic. That a frozen CLIP feature space with a linear probe generalises across
generators far better than a network trained end to end on one generator is the finding of Ojha et al. 2023
("Towards Universal Fake Image Detectors that Generalize Across Generative Models", CVPR).

Preprocessing is done here from the model's own settings (input size; mean and std from
``preprocessor_config.json`` when the folder has one, CLIP's otherwise): resize the short side with bicubic
interpolation, centre crop, normalise. It needs no image-processor backend (torchvision).

Saved form: ``backbone.json`` in the detector folder, holding the backbone's id or path, the probe's weights and
bias, and the ``Calibration``. Fitting the probe is ``synthguard.training.backbone``'s.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from synthguard.core.fileio import write_atomic
from synthguard.core.torch_utils import torch_threads
from synthguard.errors import InputError
from synthguard.models.detector import Calibration, ClassifierResult

if TYPE_CHECKING:
    import torch

BACKBONE_FILE = "backbone.json"
# CLIP's published normalisation constants (used when the model folder has no preprocessor_config.json).
CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)


def load_backbone(source: str, num_threads: int | None = None):
    """(model, input size, mean, std) for a transformers vision model by local folder or hub id, in eval mode."""
    import transformers  # noqa: PLC0415 (a core dependency, but seconds to import: only backbone users pay)
    from transformers import AutoConfig, AutoModel  # noqa: PLC0415

    transformers.utils.logging.set_verbosity_error()  # no load reports or progress bars on the user's terminal
    transformers.utils.logging.disable_progress_bar()
    local = Path(source).is_dir()
    try:
        config = AutoConfig.from_pretrained(source, local_files_only=local)
        # The checkpoint's own architecture (a CLIP vision tower keeps its projection), else the generic model.
        named = [getattr(transformers, a, None) for a in (getattr(config, "architectures", None) or [])]
        cls = next((c for c in named if c is not None), AutoModel)
        with torch_threads(num_threads):
            model = cls.from_pretrained(source, local_files_only=local).eval()
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"cannot load a vision backbone from {source!r}: {' '.join(str(exc).split())[:300]}") \
            from exc
    vision = getattr(config, "vision_config", config)
    size = getattr(vision, "image_size", None)
    if not isinstance(size, int) or size <= 0:
        raise InputError(f"{source!r} is not a vision model with an image_size (got {type(config).__name__})")
    mean, std = CLIP_MEAN, CLIP_STD
    if local and (Path(source) / "preprocessor_config.json").is_file():
        pre = json.loads((Path(source) / "preprocessor_config.json").read_text())
        mean, std = tuple(pre.get("image_mean", mean)), tuple(pre.get("image_std", std))
    return model, size, mean, std


class BackboneDetector:
    """Frozen backbone features -> linear probe logit -> calibrated P(synthetic). Same ``score`` as
    ``PatchDetector`` (its heatmap is a single cell: the backbone sees the whole image)."""

    def __init__(self, source: str, probe_weight: np.ndarray, probe_bias: float, calibration: Calibration, *,
                 name: str | None = None, num_threads: int | None = None, backbone: tuple | None = None) -> None:
        """``backbone``: what ``load_backbone(source)`` returned, when the caller has it loaded already."""
        self.source = source
        self.model, self.size, self.mean, self.std = backbone or load_backbone(source, num_threads)
        self.probe_weight = np.asarray(probe_weight, dtype=np.float64)
        self.probe_bias = float(probe_bias)
        self.calibration = calibration
        self.name = name or f"backbone:{source}"
        self.num_threads = num_threads

    def features(self, images: list[np.ndarray]) -> np.ndarray:
        return backbone_features((self.model, self.size, self.mean, self.std), images, self.num_threads)

    def score(self, image: np.ndarray) -> ClassifierResult:
        feature = self.features([image])[0]
        if feature.shape != self.probe_weight.shape:
            raise InputError(f"backbone gives {feature.shape[0]} features, the probe expects "
                             f"{self.probe_weight.shape[0]}: wrong backbone for this detector")
        logit = float(feature @ self.probe_weight + self.probe_bias)
        p = float(self.calibration.probability(logit))
        return ClassifierResult(probability=p, logit=logit, global_logit=None, heatmap=np.array([[p]]),
                                threshold=self.calibration.threshold, patches=1, model=self.name)

    def save_pretrained(self, folder: str | os.PathLike) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / BACKBONE_FILE, (json.dumps({
            "backbone": self.source, "probe_weight": self.probe_weight.tolist(), "probe_bias": self.probe_bias,
            "calibration": asdict(self.calibration)}, indent=1) + "\n").encode())

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, **kwargs) -> BackboneDetector:
        path = Path(folder) / BACKBONE_FILE
        try:
            data = json.loads(path.read_text())
            calibration = Calibration(**data["calibration"])
            return cls(data["backbone"], np.asarray(data["probe_weight"]), data["probe_bias"], calibration,
                       **kwargs)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"cannot read a backbone detector from {str(path)!r}: {exc}") from exc


def preprocess(image: np.ndarray, size: int, mean, std) -> torch.Tensor:
    import torch  # noqa: PLC0415 (torch on first use: importing this module to read a folder costs none)

    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise InputError("image must be a uint8 (H, W) or (H, W, 3) array")
    rgb = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image[..., :3]
    h, w = rgb.shape[:2]
    scale = size / min(h, w)
    resized = cv2.resize(rgb, (max(size, round(w * scale)), max(size, round(h * scale))),
                         interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
    top, left = (resized.shape[0] - size) // 2, (resized.shape[1] - size) // 2
    crop = resized[top : top + size, left : left + size].astype(np.float32) / 255.0
    x = (crop - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]


def backbone_features(backbone: tuple, images: list[np.ndarray], num_threads: int | None = None) -> np.ndarray:
    """(N, D) features of uint8 images through a ``load_backbone`` result (model, size, mean, std)."""
    import torch  # noqa: PLC0415 (torch on first use: importing this module to read a folder costs none)

    model, size, mean, std = backbone
    return embed(model, torch.cat([preprocess(im, size, mean, std) for im in images]), num_threads)


def embed(model, pixels: torch.Tensor, num_threads: int | None = None, batch_size: int = 32) -> np.ndarray:
    """(N, 3, S, S) -> (N, D) image features: the model's projected image embedding when it has one (CLIP), else
    its pooled output, else the mean of its last hidden states."""
    import torch  # noqa: PLC0415 (torch on first use: importing this module to read a folder costs none)

    out = []
    with torch_threads(num_threads), torch.inference_mode():
        for start in range(0, len(pixels), batch_size):
            x = pixels[start : start + batch_size]
            if hasattr(model, "get_image_features"):
                f = model.get_image_features(pixel_values=x)
                f = f if isinstance(f, torch.Tensor) else (getattr(f, "pooler_output", None)
                                                         if getattr(f, "pooler_output", None) is not None
                                                         else f.last_hidden_state.mean(1))
            else:
                o = model(pixel_values=x)
                f = o.image_embeds if getattr(o, "image_embeds", None) is not None else (
                    o.pooler_output if getattr(o, "pooler_output", None) is not None else o.last_hidden_state.mean(1))
            out.append(f.float().numpy())
    return np.concatenate(out)
