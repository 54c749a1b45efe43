"""The image generation backends behind one factory, ``load_generator``: the GAN and VAE over the networks in
``synthguard.models`` (the shipped MNIST weights or a ``save_pretrained`` folder) and the diffusers pipelines
(``diffusion.py``)."""

from __future__ import annotations

import math
from importlib.resources import as_file, files

import numpy as np
import torch

from synthguard.core.torch_utils import (
    resize_image,
    seeded_normal,
    to_uint8_images,
    torch_threads,
)
from synthguard.errors import Hint, InputError
from synthguard.generate.base import DEFAULT_OUTPUT_SIZE, LatentImageGenerator, check_labels
from synthguard.models.gan import DCGANGenerator
from synthguard.models.vae import ConvVAE


class GANGenerator(LatentImageGenerator):
    """``Generator`` over a trained ``DCGANGenerator``: image ``i`` is G(temperature * z_i), z_i seeded by
    ``seed + i``, mapped from [-1, 1] to uint8 and resized to ``output_size`` (None: native)."""

    model_class = DCGANGenerator
    default_name = "dcgan"

    def decode(self, latents: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return (self.model(latents, labels) + 1) / 2


class VAEGenerator(LatentImageGenerator):
    """``Generator`` over a trained ``ConvVAE``: image ``i`` is the decoder's mean image of
    temperature * z_i, z_i seeded by ``seed + i``; also reconstructs and interpolates images."""

    model_class = ConvVAE
    default_name = "vae"

    def decode(self, latents: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.model.decode(latents, labels)

    def encode(self, image: np.ndarray, label: int | None = None) -> torch.Tensor:
        """Posterior mean of one uint8 (H, W) grey or (H, W, 3) RGB image (made grey and resized to the model's
        size): (latent_dim,). A conditional VAE needs the image's ``label``."""
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
            raise InputError(f"image must be uint8 (H, W) or (H, W, 3), not {image.dtype} {image.shape}")
        if image.ndim == 3:
            image = image.mean(axis=2).round().astype(np.uint8)
        size = self.model.config.image_size
        x = torch.from_numpy(resize_image(image, (size, size))).float().div(255)[None, None]  # (1, 1, s, s)
        with torch_threads(self.num_threads), torch.inference_mode():
            return self.model.cpu().encode(x, self._labels(label, 1))[0][0]

    def reconstruct(self, image: np.ndarray, label: int | None = None) -> np.ndarray:
        """decode(mu(image)) as uint8 at the output size (a conditional VAE: with ``label`` both ways)."""
        return self._render(self.encode(image, label)[None], label)[0]

    def interpolate(self, a: np.ndarray, b: np.ndarray, steps: int, label: int | None = None) -> list[np.ndarray]:
        """``steps`` images decoded along the straight line between the posterior means of images ``a`` and
        ``b``; the first and last equal ``reconstruct(a)`` and ``reconstruct(b)``. A conditional VAE morphs
        within the class ``label``."""
        path = _lerp(self.encode(a, label), self.encode(b, label), _check_steps(steps))
        return self._render(path, label)

    def interpolate_seeds(self, seed_a: int, seed_b: int, steps: int, label: int | None = None) -> list[np.ndarray]:
        """``steps`` images along the great circle between the latents of two seeds (slerp keeps the latents at
        the norm the prior puts them, where linear mixing would shrink them); the ends equal
        ``generate(1, seed_a)`` and ``generate(1, seed_b)`` on the CPU (with ``labels=label`` for a conditional
        VAE)."""
        steps = _check_steps(steps)
        for seed in (seed_a, seed_b):
            if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
                raise InputError(f"seed must be a non-negative integer, not {seed!r}")
        self._labels(label, 1)
        za, zb = seeded_normal([seed_a, seed_b], self.latent_shape) * self.temperature
        return self._render(_slerp(za, zb, steps), label)

    def _labels(self, label: int | None, n: int) -> torch.Tensor | None:
        labels = check_labels(label, n, self.num_classes)
        return torch.tensor(labels) if labels is not None else None

    def _render(self, latents: torch.Tensor, label: int | None = None) -> list[np.ndarray]:
        labels = self._labels(label, len(latents))
        with torch_threads(self.num_threads), torch.inference_mode():
            images = to_uint8_images(self.model.cpu().decode(latents, labels))
        return [resize_image(image, self.output_size) for image in images]


def _check_steps(steps: int) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise InputError(f"interpolation steps must be an integer >= 2 (both ends included), not {steps!r}")
    return steps


def _lerp(a: torch.Tensor, b: torch.Tensor, steps: int) -> torch.Tensor:
    """(D,), (D,) -> (steps, D), ends exactly a and b."""
    t = torch.linspace(0, 1, steps)[:, None]
    path = (1 - t) * a + t * b
    path[0], path[-1] = a, b  # exact ends, free of rounding in the blend
    return path


def _slerp(a: torch.Tensor, b: torch.Tensor, steps: int) -> torch.Tensor:
    """Spherical interpolation (Shoemake 1985) of (D,) vectors -> (steps, D), ends exactly a and b."""
    cos = torch.dot(a / a.norm(), b / b.norm()).clamp(-1, 1)
    omega = torch.arccos(cos)
    if omega.abs() < 1e-6 or math.isclose(omega.item(), math.pi, abs_tol=1e-6):
        return _lerp(a, b, steps)  # parallel or opposite: the great circle is not unique, take the chord
    t = torch.linspace(0, 1, steps)[:, None]
    path = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)
    path[0], path[-1] = a, b
    return path


BUILTIN_VERSION = "1.0"


_BUILTIN = {
    "gan": (GANGenerator, "synthguard/mnist-dcgan"),
    "vae": (VAEGenerator, "synthguard/mnist-vae"),
    # Class-conditional on the digit (``generate(..., labels=K)``).
    "gan-conditional": (GANGenerator, "synthguard/mnist-cdcgan"),
    "vae-conditional": (VAEGenerator, "synthguard/mnist-cvae"),
}


def builtin_generator(
    name: str,
    *,
    output_size: int | tuple[int, int] | None = DEFAULT_OUTPUT_SIZE,
    temperature: float = 1.0,
    num_threads: int | None = None,
) -> LatentImageGenerator:
    """The shipped MNIST ``"gan"`` or ``"vae"``, or their class-conditional ``"gan-conditional"`` and
    ``"vae-conditional"``, generating at ``output_size`` (None: native 28x28)."""
    if name not in _BUILTIN:
        raise InputError(f"no built-in generator {name!r}: choose one of {sorted(_BUILTIN)}")
    cls, model_name = _BUILTIN[name]
    with as_file(files("synthguard.models") / "weights" / name) as folder:
        return cls.from_pretrained(
            folder,
            name=model_name,
            version=BUILTIN_VERSION,
            output_size=output_size,
            temperature=temperature,
            num_threads=num_threads,
        )


BACKENDS = ("gan", "vae", "diffusion")


def load_generator(backend: str, model: str | None, *, output_size: int | None, num_threads: int | None,
                   inference_steps: int | None = None, prompt: str | None = None, negative_prompt: str | None = None,
                   guidance_scale: float | None = None, width: int | None = None, height: int | None = None,
                   scheduler: str | None = None, record_prompt: bool = False, conditional: bool = False):
    """The generator for ``backend``: the built-in weights, or ``model`` (a local folder written by
    ``save_pretrained``, or for diffusion a pipeline folder / hub id).

    ``conditional`` (gan and vae): a class-conditional generator, the built-in ``"<backend>-conditional"`` without
    ``model``; a ``model`` that is not conditional is refused.

    The text-to-image settings (``prompt`` ... ``record_prompt``, see ``DiffusionGenerator``) apply to the
    diffusion backend only; for it ``output_size`` None keeps the size the pipeline makes."""
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    diffusion = {"inference_steps": inference_steps, "prompt": prompt, "negative_prompt": negative_prompt,
                 "guidance_scale": guidance_scale, "width": width, "height": height, "scheduler": scheduler}
    if conditional and backend == "diffusion":
        raise InputError("class labels apply to the gan and vae backends only, not 'diffusion'")
    if backend == "diffusion":
        if not model:
            raise InputError("the diffusion backend needs a model: a diffusers pipeline folder or hub id",
                             hint=Hint.NEEDS_MODEL)
        from synthguard.generate.diffusion import DiffusionGenerator  # noqa: PLC0415 (diffusers is slow to import)

        return DiffusionGenerator.from_pretrained(model, output_size=output_size, num_threads=num_threads,
                                                  num_inference_steps=inference_steps, prompt=prompt,
                                                  negative_prompt=negative_prompt, guidance_scale=guidance_scale,
                                                  width=width, height=height, scheduler=scheduler,
                                                  record_prompt=record_prompt)
    given = sorted(k for k, v in diffusion.items() if v is not None) + (["record_prompt"] if record_prompt else [])
    if given:
        raise InputError(f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to the diffusion backend "
                         f"only, not {backend!r}")
    if model is None:
        name = f"{backend}-conditional" if conditional else backend
        return builtin_generator(name, output_size=output_size, num_threads=num_threads)
    cls = GANGenerator if backend == "gan" else VAEGenerator
    generator = cls.from_pretrained(model, output_size=output_size, num_threads=num_threads)
    if conditional and not generator.num_classes:
        raise InputError(f"the {backend} model {generator.name!r} is unconditional: it takes no class label")
    return generator
