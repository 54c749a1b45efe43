"""A network to train, built from its model config: the one home of its architecture.

Training functions take ``model_config`` (a diffusers ``ConfigMixin`` config, whole or in part, or a plain dict of
the class's ``__init__`` arguments) instead of repeating the architecture in their own settings.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import numpy as np

from synthguard.errors import InputError


def build(cls: type, model_config: Mapping[str, Any] | None = None, **fallbacks: Any):
    """``cls`` from ``model_config``; ``fallbacks`` fill what the config leaves out, then the class's defaults.

    Unknown keys are refused (diffusers would only warn); private ``_`` keys of a saved config are ignored.
    """
    config = {k: v for k, v in (model_config or {}).items() if not k.startswith("_")}
    known = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = sorted(set(config) - known)
    if unknown:
        raise InputError(f"{cls.__name__} has no setting {', '.join(map(repr, unknown))}: choose from "
                         f"{', '.join(sorted(known))}")
    return cls(**{**fallbacks, **config})


def architecture_of(model) -> dict[str, Any]:
    """A model's architecture as a plain JSON-ready dict (its config without diffusers' private keys)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in model.config.items() if not k.startswith("_")}


def check_image_training(data, what: str, *, min_images: int, epochs: int, batch_size: int,
                         max_steps: int | None) -> None:
    """The arguments every image-training loop shares: uint8 (N, H, W) ``data`` and a positive schedule."""
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 3 or len(data) < min_images:
        shape = getattr(data, "shape", None)
        raise InputError(f"{what} data must be uint8 (N, H, W) with N >= {min_images}, not {type(data).__name__} "
                         f"{shape}")
    if epochs <= 0 or batch_size <= 0 or (max_steps is not None and max_steps < 0):
        raise InputError(f"epochs and batch_size must be positive and max_steps >= 0, not {epochs!r}, "
                         f"{batch_size!r}, {max_steps!r}")


def check_fits_images(model, data: np.ndarray, what: str) -> None:
    """A model whose config says ``channels`` and ``image_size`` must fit 1-channel (N, H, W) ``data``."""
    arch = model.config
    if (arch.channels, arch.image_size, arch.image_size) != (1, *data.shape[1:]):
        raise InputError(f"{what} {arch.channels}x{arch.image_size}x{arch.image_size} images, the data are "
                         f"1x{data.shape[1]}x{data.shape[2]}")
