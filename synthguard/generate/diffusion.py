"""A backend for any Hugging Face diffusers ``DiffusionPipeline`` (DDPM: Ho et al. 2020, "Denoising Diffusion
Probabilistic Models"; latent diffusion: Rombach et al. 2022; and the rest diffusers implements).

The pipeline is loaded from a local folder written by ``save_pretrained`` (or a hub id, which needs network or the
local hub cache). Each call passes one CPU ``torch.Generator`` per image, seeded ``seed + i``, so image ``i`` does
not depend on the batch it was made in (for pipelines that take a list of generators, as diffusers' do).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from synthguard.core.torch_utils import config_hash, resize_image, resolve_device, torch_threads
from synthguard.errors import InputError
from synthguard.generate.base import GenerationResult, Generator, ProgressCallback, check_output_size, check_request


class DiffusionGenerator(Generator):
    """``Generator`` over a diffusers pipeline.

    ``call_kwargs`` go to every pipeline call (e.g. ``prompt``, ``guidance_scale`` for text-to-image pipelines) and
    are recorded in the result, so they must be JSON-ready. ``output_size`` None (the default) keeps the
    pipeline's own size.
    """

    def __init__(
        self,
        pipeline: Any,
        *,
        name: str,
        version: str = "unversioned",
        num_inference_steps: int | None = None,
        call_kwargs: dict[str, Any] | None = None,
        output_size: int | tuple[int, int] | None = None,
        num_threads: int | None = None,
    ) -> None:
        steps = num_inference_steps
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps <= 0):
            raise InputError(f"num_inference_steps must be a positive integer or None, not {num_inference_steps!r}")
        call_kwargs = dict(call_kwargs or {})
        reserved = {"generator", "batch_size", "num_images_per_prompt", "output_type", "return_dict"} & set(call_kwargs)
        if reserved:
            raise InputError(f"call_kwargs may not set {sorted(reserved)}: the generator sets them")
        try:
            json.dumps(call_kwargs)
        except TypeError as exc:
            raise InputError(f"call_kwargs must be JSON-ready to be recorded: {exc}") from exc
        self.pipeline = pipeline
        self.name = name
        self.version = version
        self.num_inference_steps = num_inference_steps
        self.call_kwargs = call_kwargs
        self.output_size = check_output_size(output_size)
        self.num_threads = num_threads

    @classmethod
    def from_pretrained(
        cls, path_or_id: str | os.PathLike, *, local_files_only: bool = False, **kwargs: Any
    ) -> DiffusionGenerator:
        """Load a pipeline folder, or a hub id ("owner/name"); ``name`` defaults to the folder name or the id.

        A path that does not exist, a folder that is no pipeline, and a hub id that cannot be fetched (offline and
        not in the local hub cache) raise ``InputError``.
        """
        from diffusers import DiffusionPipeline  # noqa: PLC0415 (slow to import; only this backend needs it)

        text = str(path_or_id)
        folder = Path(text)
        # A hub id is exactly "owner/name"; anything else (or anything that exists on disk) is a local path.
        looks_local = folder.exists() or text.startswith((".", "/", "~")) or text.count("/") != 1
        if looks_local and not (folder / "model_index.json").is_file():
            raise InputError(f"pipeline folder {text!r} does not exist or has no model_index.json")
        try:
            pipeline = DiffusionPipeline.from_pretrained(text, local_files_only=local_files_only)
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            where = "folder" if looks_local else "hub id (offline? not in the local hub cache?)"
            message = " ".join(str(exc).split())
            raise InputError(f"cannot load a diffusers pipeline from {where} {text!r}: {message}") from exc
        pipeline.set_progress_bar_config(disable=True)
        kwargs.setdefault("name", folder.name if looks_local else text)
        return cls(pipeline, **kwargs)

    @property
    def config_hash(self) -> str:
        """Hash over the configs of the pipeline and of each of its components that has one."""
        configs = {"pipeline": dict(self.pipeline.config)}
        for key, component in sorted(self.pipeline.components.items()):
            if hasattr(component, "config"):
                configs[key] = dict(component.config)
        return config_hash(configs)

    def generate(
        self,
        n: int,
        seed: int,
        *,
        batch_size: int = 64,
        device: str = "auto",
        progress: ProgressCallback | None = None,
    ) -> GenerationResult:
        check_request(n, seed, batch_size)
        target = resolve_device(device)
        seeds = [seed + i for i in range(n)]
        call = dict(self.call_kwargs)
        if self.num_inference_steps is not None:
            call["num_inference_steps"] = self.num_inference_steps
        images: list[np.ndarray] = []
        with torch_threads(self.num_threads):
            self.pipeline.to(target)
            for start in range(0, n, batch_size):
                chunk = seeds[start : start + batch_size]
                generators = [torch.Generator("cpu").manual_seed(s) for s in chunk]
                count = {"num_images_per_prompt" if "prompt" in call else "batch_size": len(chunk)}
                output = self.pipeline(generator=generators, output_type="np", **count, **call)
                images.extend(resize_image(image, self.output_size) for image in _to_uint8(output.images))
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
                "noise": "one torch.Generator('cpu').manual_seed(image_seed) per image, passed as a list",
                "pipeline": type(self.pipeline).__name__,
                "scheduler": type(self.pipeline.scheduler).__name__ if hasattr(self.pipeline, "scheduler") else None,
                "num_inference_steps": self.num_inference_steps,
                "call_kwargs": self.call_kwargs,
                "output_size": list(self.output_size) if self.output_size else "native",
                "resampling": "opencv INTER_CUBIC up / INTER_AREA down" if self.output_size else "none",
                "device": str(target),
                "torch": torch.__version__,
            },
        )


def _to_uint8(images: np.ndarray) -> list[np.ndarray]:
    """A pipeline's (B, H, W, C) floats in [0, 1] -> B uint8 images, (H, W) when C == 1."""
    pixels = (np.clip(np.asarray(images, dtype=np.float32), 0, 1) * 255).round().astype(np.uint8)
    if pixels.ndim == 4 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    return list(pixels)
