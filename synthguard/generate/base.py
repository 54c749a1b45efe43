"""The interface every SynthGuard image generator implements, and the result ``generate`` returns.

A generator turns ``(n, seed)`` into ``n`` uint8 images plus everything needed to make them again, so the stamping
layer can watermark and C2PA-sign them with an honest record of how they were made.

Seeds. Image ``i`` of a call with seed ``s`` is drawn from its own seed ``s + i``: its noise comes from
``torch.Generator("cpu").manual_seed(s + i)``, so image ``i`` does not depend on ``n`` or ``batch_size``, and
``generate(1, s + i)`` makes it again on its own.

Determinism. Noise is always drawn on the CPU, so every device sees the same latents. On the CPU, with the same
torch version, the same seed gives bit-identical images. On CUDA (and across torch versions or CPU instruction sets)
the network's float arithmetic differs in the last bits; after rounding to uint8 most pixels agree, but a pixel can
differ by one grey level. The seed fixes the content, not the exact bytes across devices.

Labels. A class-conditional generator (``num_classes > 0``) also takes a label per image: image ``i`` depends only
on ``(seed + i, label_i)``, so a label changes the digit drawn from the same latent, nothing else.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from synthguard.core.torch_utils import (
    config_hash,
    load_model,
    resize_image,
    resolve_device,
    seeded_normal,
    to_uint8_images,
    torch_threads,
)
from synthguard.errors import InputError

DEFAULT_OUTPUT_SIZE = 256
MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed takes a signed 64-bit integer

ProgressCallback = Callable[[int], None]


@dataclass(frozen=True)
class GenerationResult:
    """What one ``generate`` call made.

    Attributes
    ----------
    images
        uint8 arrays, (H, W) grey or (H, W, 3) RGB, at the output size.
    model
        The generator's name (for a manifest's ``softwareAgent`` / digital source record).
    version
        The weights' version.
    config_hash
        First 16 hex digits of the sha256 of the model's canonical config JSON (see ``config_hash``).
    seed
        The seed of image 0; image ``i`` used seed ``seed + i``.
    parameters
        JSON-ready settings that, with the weights, reproduce the images: per-image seeds, latent scheme, output
        size, resampling, sampler settings.
    """

    images: list[np.ndarray]
    model: str
    version: str
    config_hash: str
    seed: int
    parameters: dict[str, Any] = field(default_factory=dict)


class Generator(abc.ABC):
    """Makes seeded images. Subclasses set ``name`` and ``version`` and implement ``generate``."""

    name: str
    version: str

    @abc.abstractmethod
    def generate(
        self,
        n: int,
        seed: int,
        *,
        batch_size: int = 64,
        device: str = "auto",
        progress: ProgressCallback | None = None,
    ) -> GenerationResult:
        """Make ``n`` images from ``seed`` (image ``i`` from seed ``seed + i``), ``batch_size`` at a time on
        ``device`` ("auto", "cpu", "cuda", "cuda:1", "mps"), calling ``progress(done)`` after each batch."""


def check_request(n: int, seed: int, batch_size: int) -> None:
    """Validate the common ``generate`` arguments at the boundary."""
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise InputError(f"number of images must be a positive integer, not {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED - n + 1:
        raise InputError(f"seed must be an integer in [0, 2**63 - n], not {seed!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise InputError(f"batch_size must be a positive integer, not {batch_size!r}")


def check_output_size(output_size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    """Normalise an output size to ``(height, width)``; None keeps the model's native size."""
    if output_size is None:
        return None
    if isinstance(output_size, int) and not isinstance(output_size, bool):
        output_size = (output_size, output_size)
    if (
        not isinstance(output_size, tuple | list)
        or len(output_size) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= 8192 for s in output_size)
    ):
        raise InputError(f"output_size must be None, an int or (height, width) in 1..8192, not {output_size!r}")
    return int(output_size[0]), int(output_size[1])


def check_labels(labels: int | Sequence[int] | None, n: int, num_classes: int) -> list[int] | None:
    """The per-image labels of a ``generate`` call: one int for all ``n`` images or a sequence of ``n``, each in
    [0, num_classes); None for an unconditional generator (``num_classes`` 0), which takes none."""
    if num_classes == 0:
        if labels is not None:
            raise InputError("this generator is unconditional: it takes no labels")
        return None
    if labels is None:
        raise InputError(f"this generator is class-conditional: give a label in [0, {num_classes}) per image")
    if isinstance(labels, int | np.integer) and not isinstance(labels, bool):
        labels = [int(labels)] * n
    elif isinstance(labels, str | bytes) or not isinstance(labels, Sequence | np.ndarray):
        raise InputError(f"labels must be an int or a sequence of ints, not {type(labels).__name__}")
    labels = list(labels)
    if len(labels) != n:
        raise InputError(f"give one label per image: {len(labels)} labels for {n} images")
    for label in labels:
        if isinstance(label, bool) or not isinstance(label, int | np.integer) or not 0 <= label < num_classes:
            raise InputError(f"labels must be integers in [0, {num_classes}), not {label!r}")
    return [int(label) for label in labels]


class LatentImageGenerator(Generator):
    """A generator that decodes standard-normal latents with a torch network (the GAN's and the VAE's scheme).

    Subclasses name their network class (``model_class``, a ``ModelMixin`` with ``config.latent_dim``) and a
    default ``name``, and implement ``decode``; this class does loading, seeding, batching, device placement,
    conversion to uint8 and resizing, identically for both.
    """

    model_class: type
    default_name: str

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        name: str | None = None,
        version: str = "unversioned",
        output_size: int | tuple[int, int] | None = DEFAULT_OUTPUT_SIZE,
        temperature: float = 1.0,
        num_threads: int | None = None,
    ) -> None:
        if not isinstance(temperature, int | float) or not 0 < temperature <= 10:
            raise InputError(f"temperature must be a number in (0, 10], not {temperature!r}")
        self.model = model.eval()
        self.latent_shape = (model.config.latent_dim,)
        self.name = name or self.default_name
        self.version = version
        self.output_size = check_output_size(output_size)
        # Latents are temperature * N(0, I): below 1 trades variety for cleaner samples (the truncation trick's
        # cheap cousin), above 1 the reverse.
        self.temperature = float(temperature)
        self.num_threads = num_threads

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, **kwargs) -> LatentImageGenerator:
        """Load a folder written by ``model_class.save_pretrained`` (or a hub id); ``name`` defaults to its last
        path component."""
        kwargs.setdefault("name", Path(str(path)).name)
        return cls(load_model(cls.model_class, path), **kwargs)

    @abc.abstractmethod
    def decode(self, latents: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """(B, *latent_shape) latents (and, conditional, (B,) labels) on the model's device -> (B, C, H, W) images
        in [0, 1]."""

    @property
    def config_hash(self) -> str:
        return config_hash(self.model.config)

    @property
    def num_classes(self) -> int:
        """The classes a conditional model takes labels of; 0 for an unconditional one."""
        return int(getattr(self.model.config, "num_classes", 0) or 0)

    def generate(
        self,
        n: int,
        seed: int,
        *,
        labels: int | Sequence[int] | None = None,
        batch_size: int = 64,
        device: str = "auto",
        progress: ProgressCallback | None = None,
    ) -> GenerationResult:
        """See ``Generator.generate``; a class-conditional generator (``num_classes > 0``) needs ``labels``: an int
        for all ``n`` images or one per image, recorded as ``parameters["labels"]``."""
        check_request(n, seed, batch_size)
        per_image = check_labels(labels, n, self.num_classes)
        target = resolve_device(device)
        seeds = [seed + i for i in range(n)]
        images: list[np.ndarray] = []
        with torch_threads(self.num_threads), torch.inference_mode():
            self.model.to(target).eval()
            for start in range(0, n, batch_size):
                latents = seeded_normal(seeds[start : start + batch_size], self.latent_shape)
                latents = (latents * self.temperature).to(target)
                batch_labels = None
                if per_image is not None:
                    batch_labels = torch.tensor(per_image[start : start + batch_size], device=target)
                batch = to_uint8_images(self.decode(latents, batch_labels))  # B x (H, W) at the native size
                images.extend(resize_image(image, self.output_size) for image in batch)
                if progress is not None:
                    progress(len(images))
        return GenerationResult(
            images=images,
            model=self.name,
            version=self.version,
            config_hash=self.config_hash,
            seed=seed,
            parameters={
                "image_seeds": seeds,
                "latents": f"torch.randn({tuple(self.latent_shape)}, generator=torch.Generator('cpu')"
                ".manual_seed(image_seed)) * temperature, one draw per image",
                "output_size": list(self.output_size) if self.output_size else "native",
                "resampling": "opencv INTER_CUBIC up / INTER_AREA down" if self.output_size else "none",
                "device": str(target),
                "temperature": self.temperature,
                "torch": torch.__version__,
                **({"labels": per_image} if per_image is not None else {}),
            },
        )
