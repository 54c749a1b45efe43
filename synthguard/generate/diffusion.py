"""A backend for any Hugging Face diffusers ``DiffusionPipeline`` (DDPM: Ho et al. 2020, "Denoising Diffusion
Probabilistic Models"; latent diffusion: Rombach et al. 2022; SDXL: Podell et al. 2023; and the rest diffusers
implements): unconditional pipelines (DDPM, DDIM) and text-to-image ones (Stable Diffusion 1.x/2.x, SDXL).

The pipeline is loaded from a local folder written by ``save_pretrained`` (or a hub id, which needs network or the
local hub cache). Each call passes one CPU ``torch.Generator`` per image, seeded ``seed + i``, so image ``i``'s
noise does not depend on the batch it was made in (for pipelines that take a list of generators, as diffusers'
do). The same seed and batch size give the same bytes on the CPU; another batch size gives the same image, but
the network's float arithmetic over a differently sized batch (attention, classifier-free guidance) can move a
pixel by one grey level, so the batch size is recorded too.

What is recorded (the result's ``name`` and ``parameters``, which a manifest carries) is kept free of private
things: the model is named by its folder's name or hub id, never an absolute path, and a prompt is recorded as its
sha256 unless the caller asks for the text (``record_prompt``).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from synthguard.core.torch_utils import config_hash, resize_image, resolve_device, torch_threads
from synthguard.errors import InputError
from synthguard.generate.base import GenerationResult, Generator, ProgressCallback, check_output_size, check_request

# Set by the generator on every call; call_kwargs may not set them.
_RESERVED = frozenset({"generator", "batch_size", "num_images_per_prompt", "output_type", "return_dict"})
# Typed arguments of the generator; call_kwargs may not set them either (they would bypass the checks and the
# prompt's privacy).
_TYPED = frozenset({"prompt", "negative_prompt", "guidance_scale", "width", "height", "num_inference_steps",
                    "prompt_2", "negative_prompt_2"})
# Pipelines from diffusers latent models need sides that are multiples of the VAE's 8x downsampling.
SIDE_MULTIPLE = 8
MAX_SIDE = 8192
# A string recorded in a manifest that looks like an absolute local path (POSIX, home, Windows drive or UNC).
_ABSOLUTE_PATH = re.compile(r"^(/|~|[A-Za-z]:[\\/]|\\\\)")
# Keys of component configs that name the library or the local copy, not the model.
_UNHASHED_KEYS = frozenset({"transformers_version", "name_or_path"})


class DiffusionGenerator(Generator):
    """``Generator`` over a diffusers pipeline.

    Text-to-image settings (each refused with ``InputError`` when the pipeline's call does not take it):
    ``prompt`` (required by a pipeline that takes one), ``negative_prompt``, ``guidance_scale``, ``width`` and
    ``height`` (multiples of 8; None: the pipeline's own size), ``scheduler`` (a diffusers scheduler class name
    among those compatible with the pipeline's, e.g. "EulerDiscreteScheduler"). ``num_inference_steps`` None
    keeps the pipeline's default. ``record_prompt`` False (the default) records the prompts as sha256 only.

    ``call_kwargs`` go to every pipeline call (other pipeline-specific options) and are recorded in the result, so
    they must be JSON-ready and hold no absolute path. ``output_size`` None (the default) keeps the size the
    pipeline made; a size resizes to it.
    """

    def __init__(
        self,
        pipeline: Any,
        *,
        name: str,
        version: str = "unversioned",
        num_inference_steps: int | None = None,
        prompt: str | None = None,
        negative_prompt: str | None = None,
        guidance_scale: float | None = None,
        width: int | None = None,
        height: int | None = None,
        scheduler: str | None = None,
        record_prompt: bool = False,
        call_kwargs: dict[str, Any] | None = None,
        output_size: int | tuple[int, int] | None = None,
        num_threads: int | None = None,
    ) -> None:
        steps = num_inference_steps
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps <= 0):
            raise InputError(f"num_inference_steps must be a positive integer or None, not {num_inference_steps!r}")
        if not isinstance(record_prompt, bool):
            raise InputError(f"record_prompt must be True or False, not {record_prompt!r}")
        call_kwargs = dict(call_kwargs or {})
        reserved = _RESERVED & set(call_kwargs)
        if reserved:
            raise InputError(f"call_kwargs may not set {sorted(reserved)}: the generator sets them")
        typed = _TYPED & set(call_kwargs)
        if typed:
            raise InputError(f"call_kwargs may not set {sorted(typed)}: pass them as the generator's own arguments")
        try:
            json.dumps(call_kwargs)
        except (TypeError, ValueError) as exc:
            raise InputError(f"call_kwargs must be JSON-ready to be recorded: {exc}") from exc
        _check_not_a_path("the model name", name)
        _check_no_paths("call_kwargs", call_kwargs)
        kind = type(pipeline).__name__
        accepted = _call_parameters(pipeline)
        settings = {"prompt": prompt, "negative_prompt": negative_prompt, "guidance_scale": guidance_scale,
                    "width": width, "height": height, "num_inference_steps": num_inference_steps}
        for key, value in settings.items():
            if value is not None and key not in accepted:
                what = "generates without a text prompt" if key in ("prompt", "negative_prompt") else f"takes no {key}"
                raise InputError(f"{kind} {what}: {key} cannot be given for it")
        if "prompt" in accepted and prompt is None and "prompt" in _required_text(pipeline):
            raise InputError(f"{kind} is a text-to-image pipeline: it needs a prompt")
        for key in ("prompt", "negative_prompt"):
            if settings[key] is not None and not isinstance(settings[key], str):
                raise InputError(f"{key} must be a string, not {type(settings[key]).__name__}")
        if guidance_scale is not None:
            if (isinstance(guidance_scale, bool) or not isinstance(guidance_scale, int | float)
                    or not math.isfinite(guidance_scale) or not 0 <= guidance_scale <= 100):
                raise InputError(f"guidance_scale must be a number in [0, 100], not {guidance_scale!r}")
            guidance_scale = float(guidance_scale)
        for key, side in (("width", width), ("height", height)):
            if side is not None and (isinstance(side, bool) or not isinstance(side, int) or not 0 < side <= MAX_SIDE
                                     or side % SIDE_MULTIPLE):
                raise InputError(f"{key} must be a multiple of {SIDE_MULTIPLE} pixels in {SIDE_MULTIPLE}..{MAX_SIDE}, "
                                 f"not {side!r}")
        if scheduler is not None:
            pipeline.scheduler = _compatible_scheduler(pipeline, scheduler)
        self.pipeline = pipeline
        self.name = name
        self.version = version
        self.num_inference_steps = num_inference_steps
        self.prompt = prompt
        self.negative_prompt = negative_prompt
        self.guidance_scale = guidance_scale
        self.width = width
        self.height = height
        self.record_prompt = record_prompt
        self.call_kwargs = call_kwargs
        self.output_size = check_output_size(output_size)
        self.num_threads = num_threads
        self._accepted = accepted
        self._config_hash = pipeline_config_hash(pipeline)

    @classmethod
    def from_pretrained(
        cls, path_or_id: str | os.PathLike, *, local_files_only: bool = False, **kwargs: Any
    ) -> DiffusionGenerator:
        """Load a pipeline folder, or a hub id ("owner/name"); ``name`` defaults to the folder's name (never its
        full path) or the id. ``kwargs`` are the constructor's.

        A path that does not exist, a folder that is no pipeline, and a hub id that cannot be fetched (offline and
        not in the local hub cache) raise ``InputError``.
        """
        from diffusers import DiffusionPipeline  # noqa: PLC0415 (slow to import; only this backend needs it)

        text = str(path_or_id)
        folder = Path(text).expanduser()
        # A hub id is exactly "owner/name"; anything else (or anything that exists on disk) is a local path.
        looks_local = folder.exists() or text.startswith((".", "/", "~")) or text.count("/") != 1
        if looks_local and not (folder / "model_index.json").is_file():
            raise InputError(f"pipeline folder {text!r} does not exist or has no model_index.json")
        try:
            pipeline = DiffusionPipeline.from_pretrained(str(folder) if looks_local else text,
                                                         local_files_only=local_files_only)
        except (OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
            where = "folder" if looks_local else "hub id (offline? not in the local hub cache?)"
            message = " ".join(str(exc).split())
            raise InputError(f"cannot load a diffusers pipeline from {where} {text!r}: {message}") from exc
        pipeline.set_progress_bar_config(disable=True)
        kwargs.setdefault("name", folder.resolve().name if looks_local else text)
        return cls(pipeline, **kwargs)

    @property
    def config_hash(self) -> str:
        """Hash over the configs of the pipeline and of each of its components (see ``pipeline_config_hash``)."""
        return self._config_hash

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
        call = {**self.call_kwargs, **self._typed_call()}
        count_key = "num_images_per_prompt" if "num_images_per_prompt" in self._accepted else "batch_size"
        images: list[np.ndarray] = []
        made = None  # (height, width) the pipeline made, before any resize
        probe = _WatermarkProbe.install(self.pipeline)
        try:
            with torch_threads(self.num_threads):
                self.pipeline.to(target)
                for start in range(0, n, batch_size):
                    chunk = seeds[start : start + batch_size]
                    generators = [torch.Generator("cpu").manual_seed(s) for s in chunk]
                    try:
                        output = self.pipeline(generator=generators, output_type="np", **{count_key: len(chunk)},
                                               **call)
                    except (ValueError, TypeError) as exc:
                        message = " ".join(str(exc).split())
                        raise InputError(f"{type(self.pipeline).__name__} refused the request: {message}") from exc
                    batch = _to_uint8(output.images)
                    made = batch[0].shape[:2] if batch else made
                    images.extend(resize_image(image, self.output_size) for image in batch)
                    if progress is not None:
                        progress(len(images))
        finally:
            if probe is not None:
                probe.uninstall()
        return GenerationResult(
            images=images,
            model=self.name,
            version=self.version,
            config_hash=self.config_hash,
            seed=seed,
            parameters={**self._parameters(seeds, target, made, probe), "batch_size": batch_size},
        )

    def _typed_call(self) -> dict[str, Any]:
        """The typed settings that were given, as the pipeline's call takes them."""
        typed = {"prompt": self.prompt, "negative_prompt": self.negative_prompt,
                 "guidance_scale": self.guidance_scale, "width": self.width, "height": self.height,
                 "num_inference_steps": self.num_inference_steps}
        return {k: v for k, v in typed.items() if v is not None}

    def _parameters(self, seeds: list[int], target: torch.device, made, probe: _WatermarkProbe | None) -> dict:
        import diffusers  # noqa: PLC0415 (already imported with the pipeline)

        parameters: dict[str, Any] = {
            "image_seeds": seeds,
            "noise": "one torch.Generator('cpu').manual_seed(image_seed) per image, passed as a list",
            "pipeline": type(self.pipeline).__name__,
            "scheduler": type(self.pipeline.scheduler).__name__ if hasattr(self.pipeline, "scheduler") else None,
            "num_inference_steps": self.num_inference_steps,
        }
        if "prompt" in self._accepted:
            parameters.update(_prompt_record("prompt", self.prompt, self.record_prompt))
            parameters.update(_prompt_record("negative_prompt", self.negative_prompt, self.record_prompt))
            parameters["prompt_recorded"] = "text" if self.record_prompt else "sha256 of the UTF-8 text only"
        for key in ("guidance_scale", "width", "height"):
            if key in self._accepted:
                parameters[key] = getattr(self, key)  # None: the pipeline's default
        parameters.update({
            "call_kwargs": self.call_kwargs,
            "generated_size": list(made) if made else None,  # (height, width) the pipeline made
            "output_size": list(self.output_size) if self.output_size else "native",
            "resampling": "opencv INTER_CUBIC up / INTER_AREA down" if self.output_size else "none",
            "pipeline_watermark": probe.record() if probe is not None else None,
            "safety_checker": _component_class(self.pipeline, "safety_checker"),
            "device": str(target),
            "torch": torch.__version__,
            "diffusers": diffusers.__version__,
        })
        return parameters


def pipeline_config_hash(pipeline: Any) -> str:
    """First 16 hex digits of the sha256 over the pipeline's config and a record of each component, whatever its
    kind: diffusers models and schedulers (their config), transformers models and image processors (``to_dict``),
    tokenizers (their vocabulary and merges), absent components (None). Local paths and library versions are left
    out, so the hash names the model and not where or with what it was saved.

    (The shared ``config_hash`` takes one flat mapping; a pipeline's components need this conversion first.)"""
    configs: dict[str, Any] = {"pipeline": _plain(dict(getattr(pipeline, "config", {}) or {}))}
    for key, component in sorted(pipeline.components.items()):
        configs[key] = _component_record(component)
    return config_hash(configs)


def _component_record(component: Any) -> Any:
    """A JSON-ready record of one pipeline component that changes when its architecture or vocabulary does."""
    if component is None:
        return None
    kind = f"{type(component).__module__.split('.')[0]}.{type(component).__name__}"
    if hasattr(component, "get_vocab"):  # a tokenizer: it has no config; what it maps text to is its identity
        backend = getattr(component, "backend_tokenizer", None)
        text = backend.to_str() if backend is not None else json.dumps(sorted(component.get_vocab().items()))
        return {"class": kind, "tokenizer_sha256": hashlib.sha256(text.encode()).hexdigest(),
                "model_max_length": _plain(getattr(component, "model_max_length", None))}
    config = getattr(component, "config", None)
    if isinstance(config, Mapping):  # diffusers models and schedulers: a FrozenDict
        return {"class": kind, "config": _plain(dict(config))}
    if config is not None and hasattr(config, "to_dict"):  # transformers models: a PretrainedConfig
        return {"class": kind, "config": _plain(config.to_dict())}
    if hasattr(component, "to_dict"):  # transformers image processors / feature extractors
        return {"class": kind, "config": _plain(component.to_dict())}
    return {"class": kind}


def _plain(value: Any) -> Any:
    """``value`` as plain JSON for hashing: private (``_``) and library-version keys dropped at every level, tuples
    as lists, dtypes and enums by name, other objects by their class (never their repr, which may hold an
    address)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()
                if not str(k).startswith("_") and str(k) not in _UNHASHED_KEYS}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_plain(v) for v in value]
        return sorted(items, key=json.dumps) if isinstance(value, set | frozenset) else items
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, torch.dtype):
        return str(value)
    if hasattr(value, "to_dict"):
        return _plain(value.to_dict())
    if hasattr(value, "value") and isinstance(value.value, str | int):  # an enum member
        return value.value
    return f"{type(value).__module__}.{type(value).__qualname__}"


def _call_parameters(pipeline: Any) -> frozenset[str]:
    """The keyword arguments the pipeline's ``__call__`` takes by name."""
    try:
        signature = inspect.signature(pipeline.__call__)
    except (TypeError, ValueError):
        return frozenset()
    return frozenset(name for name, p in signature.parameters.items()
                     if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


def _required_text(pipeline: Any) -> frozenset[str]:
    """{"prompt"} when the pipeline conditions on text (it has a text encoder) and so cannot run without one."""
    components = getattr(pipeline, "components", {}) or {}
    has_encoder = any(component is not None for key, component in components.items() if key.startswith("text_encoder"))
    return frozenset({"prompt"}) if has_encoder else frozenset()


def _compatible_scheduler(pipeline: Any, name: str) -> Any:
    """A scheduler of class ``name`` built from the pipeline's scheduler config, if diffusers lists it as compatible
    with the pipeline's scheduler; anything else raises ``InputError`` naming the choices."""
    current = getattr(pipeline, "scheduler", None)
    kind = type(pipeline).__name__
    if current is None:
        raise InputError(f"{kind} has no scheduler to replace with {name!r}")
    if not isinstance(name, str) or not name:
        raise InputError(f"scheduler must be a diffusers scheduler class name, not {name!r}")
    if type(current).__name__ == name:
        return current
    choices = {cls.__name__: cls for cls in getattr(current, "compatibles", ()) if isinstance(cls, type)}
    choices.pop(type(current).__name__, None)
    if name not in choices:
        listed = ", ".join(sorted(choices)) or "none"
        raise InputError(f"scheduler {name!r} is not compatible with {kind}'s {type(current).__name__}: choose one "
                         f"of {type(current).__name__} (its own), {listed}")
    try:
        return choices[name].from_config(current.config)
    except (ImportError, ValueError, TypeError, AttributeError) as exc:
        message = " ".join(str(exc).split())
        raise InputError(f"scheduler {name} cannot be built from {kind}'s scheduler config: {message}") from exc


def _prompt_record(key: str, text: str | None, record: bool) -> dict[str, Any]:
    if text is None:
        return {f"{key}_sha256": None}
    digest = {f"{key}_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()}
    return {key: text, **digest} if record else digest


def _component_class(pipeline: Any, key: str) -> str | None:
    component = (getattr(pipeline, "components", {}) or {}).get(key)
    return type(component).__name__ if component is not None else None


def _check_not_a_path(what: str, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise InputError(f"{what} must be a non-empty string, not {value!r}")
    if _ABSOLUTE_PATH.match(value):
        raise InputError(f"{what} {value!r} is an absolute local path, which the manifest would publish: name the "
                         "model by its folder's name or hub id")


def _check_no_paths(what: str, value: Any) -> None:
    """Refuse any string in a (nested) JSON value that looks like an absolute local path."""
    if isinstance(value, str):
        _check_not_a_path(f"a value in {what}", value)
    elif isinstance(value, dict):
        for item in value.values():
            _check_no_paths(what, item)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_no_paths(what, item)


class _WatermarkProbe:
    """Stands in for a pipeline's own watermarker (SDXL's ``pipeline.watermark``, diffusers'
    ``StableDiffusionXLWatermarker`` over invisible-watermark) during ``generate``: it runs the real one and notes
    whether it marked the images. invisible-watermark refuses images under 256x256 pixels in area, which diffusers
    only checks by width; such a batch is left unmarked by the pipeline and recorded as not marked, with why."""

    def __init__(self, pipeline: Any, inner: Any) -> None:
        self.pipeline = pipeline
        self.inner = inner
        self.marked = 0
        self.unmarked = 0
        self.why_not: str | None = None

    @classmethod
    def install(cls, pipeline: Any) -> _WatermarkProbe | None:
        inner = getattr(pipeline, "watermark", None)
        if inner is None or not hasattr(inner, "apply_watermark"):
            return None
        probe = cls(pipeline, inner)
        pipeline.watermark = probe
        return probe

    def uninstall(self) -> None:
        self.pipeline.watermark = self.inner

    def apply_watermark(self, images: Any, *args: Any, **kwargs: Any) -> Any:
        count = len(images)
        try:
            marked = self.inner.apply_watermark(images, *args, **kwargs)
        except RuntimeError as exc:
            if "too small" not in str(exc):
                raise
            self.unmarked += count
            self.why_not = f"the pipeline's watermarker refused the image: {' '.join(str(exc).split())}"
            return images
        if marked is images:  # diffusers' own skip (images narrower than 256 px)
            self.unmarked += count
            self.why_not = "the pipeline's watermarker skipped the images (it needs at least 256 px of width)"
        else:
            self.marked += count
        return marked

    def record(self) -> dict[str, Any]:
        """What the manifest says about the pipeline's own mark."""
        kind = type(self.inner).__name__
        bits = getattr(self.inner, "watermark", None)
        message = ("".join(str(int(b)) for b in bits) if isinstance(bits, list | tuple)
                   and all(b in (0, 1) for b in bits) else None)
        return {"watermarker": kind,
                # diffusers' SDXL watermarker always encodes with dwtDct; another class's method is not known here.
                "method": "invisible-watermark dwtDct" if kind == "StableDiffusionXLWatermarker" else None,
                "message_bits": message,
                "ran": self.marked > 0 and self.unmarked == 0,
                "why_not": self.why_not}


def _to_uint8(images: np.ndarray) -> list[np.ndarray]:
    """A pipeline's (B, H, W, C) floats in [0, 1] -> B uint8 images, (H, W) when C == 1."""
    pixels = (np.clip(np.asarray(images, dtype=np.float32), 0, 1) * 255).round().astype(np.uint8)
    if pixels.ndim == 4 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    return list(pixels)
