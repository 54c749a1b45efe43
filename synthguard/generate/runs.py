"""Generate responsibly: a generator's images, each watermarked, signed (trainedAlgorithmicMedia + model assertion +
soft binding) and recorded in the ledger, written atomically into a folder.

Two flows, each one function written as numbered steps over a typed request: ``generate_images(ImageRequest)``
samples ``n`` seeded images; ``interpolate_images(InterpolationRequest)`` decodes the VAE's latent path between two
seeds or two image files. Both stamp with a ``Stamper``, or open one from a ``Home``, and return a
``GenerateReport``. ``generate.ray_engine.generate_images_on_ray`` runs the first flow on a Ray cluster and returns
the same report.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from synthguard.core.home import Home
from synthguard.errors import Hint, InputError, WatermarkError
from synthguard.generate.backends import BACKENDS, VAEGenerator, load_generator
from synthguard.generate.base import (
    DEFAULT_OUTPUT_SIZE,
    GenerationResult,
    ProgressCallback,
    check_labels,
    check_output_size,
    check_request,
)
from synthguard.provenance.manifest import DigitalSourceType, ManifestSpec, ModelInfo
from synthguard.stamp import IdentitySource, Stamper, StampResult

if TYPE_CHECKING:
    from synthguard.core.ray_cluster import RayCluster

# The short side the image watermark needs to read back reliably.
MIN_MARKABLE_SIDE = 128


class ImageFormat(str, Enum):
    """The formats generated images are written in (each keeps the watermark)."""

    PNG = "png"
    JPEG = "jpeg"
    WEBP = "webp"

    @property
    def mime(self) -> str:
        return f"image/{self.value}"

    @property
    def suffix(self) -> str:
        return ".jpg" if self is ImageFormat.JPEG else f".{self.value}"

    @classmethod
    def parse(cls, value: str | ImageFormat) -> ImageFormat:
        try:
            return cls(value)
        except ValueError:
            raise InputError(f"unknown format {value!r}: choose one of {', '.join(f.value for f in cls)}") from None


def _check_count(name: str, value, *, minimum: int = 1, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{name} must be an integer of at least {minimum}{' or None' if optional else ''}, "
                         f"not {value!r}")


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")


@dataclass(frozen=True, kw_only=True)
class ImageRequest:
    """What to generate: ``n`` images from ``seed`` (image ``i`` from seed ``seed + i``), written into
    ``output_dir`` as ``<model>-<seed>.<ext>`` (with a ``label``: ``<model>-l<label>-<seed>.<ext>``). Checked when
    made (``InputError`` names the bad value)."""

    output_dir: Path
    backend: str = "gan"  # "gan", "vae" (built-in weights) or "diffusion" (needs ``model``)
    model: str | None = None  # a save_pretrained folder, or for diffusion a pipeline folder / hub id; None: built-in
    n: int = 8
    seed: int = 0
    fmt: ImageFormat = ImageFormat.PNG
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:N", "mps"
    batch_size: int = 64
    size: int | None = DEFAULT_OUTPUT_SIZE  # output side in pixels; None keeps the model's native size
    threads: int | None = None  # torch CPU threads; None: torch's choice
    workers: int = 2  # threads that embed watermarks (signing stays in order on one)
    inference_steps: int | None = None  # diffusion: denoising steps; None: the pipeline's
    prompt: str | None = None  # diffusion: the prompt of a text-to-image pipeline
    negative_prompt: str | None = None  # diffusion: what the image should not show
    guidance_scale: float | None = None  # diffusion: classifier-free guidance; None: the pipeline's
    width: int | None = None  # diffusion: the pipeline's image width (a multiple of 8); None: the pipeline's
    height: int | None = None  # diffusion: the pipeline's image height (a multiple of 8); None: the pipeline's
    scheduler: str | None = None  # diffusion: a compatible diffusers scheduler class name; None: the pipeline's
    record_prompt: bool = False  # diffusion: record the prompts in clear (else their sha256 only)
    overwrite: bool = False
    watermark: bool = True  # embed the image watermark (the manifest declares AI either way)
    # gan / vae: the class of every image, from a class-conditional model (None: the built-in "<backend>-conditional"
    # weights); None: unconditional sampling.
    label: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "output_dir", Path(self.output_dir))
        object.__setattr__(self, "fmt", ImageFormat.parse(self.fmt))
        _check_backend(self.backend)
        check_request(self.n, self.seed, self.batch_size)
        if self.label is not None:
            _check_count("label", self.label, minimum=0)
            if self.backend not in ("gan", "vae"):
                raise InputError(f"a class label applies to the gan and vae backends only, not {self.backend!r}")
        check_output_size(self.size)
        _check_count("threads", self.threads, optional=True)
        _check_count("workers", self.workers)
        _check_count("inference_steps", self.inference_steps, optional=True)
        given = [k for k, v in self.diffusion_options().items() if v is not None and v is not False]
        if given and self.backend != "diffusion":
            raise InputError(f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to the diffusion backend "
                             f"only, not {self.backend!r}")

    def diffusion_options(self) -> dict:
        """The diffusion settings, as ``load_generator`` takes them."""
        return {"inference_steps": self.inference_steps, "prompt": self.prompt,
                "negative_prompt": self.negative_prompt, "guidance_scale": self.guidance_scale, "width": self.width,
                "height": self.height, "scheduler": self.scheduler, "record_prompt": self.record_prompt}


@dataclass(frozen=True, kw_only=True)
class InterpolationRequest:
    """A latent morph in ``steps`` frames from ``start`` to ``end`` (two seeds, or two image files), written into
    ``output_dir`` as ``interp-<step>.<ext>``. Only the VAE backend can do it (a GAN has no encoder)."""

    output_dir: Path
    start: int | Path
    end: int | Path
    steps: int = 8  # frames, both ends included
    backend: str = "vae"
    model: str | None = None  # a save_pretrained folder; None: the built-in weights
    fmt: ImageFormat = ImageFormat.PNG
    size: int | None = DEFAULT_OUTPUT_SIZE
    threads: int | None = None
    workers: int = 2
    overwrite: bool = False
    watermark: bool = True

    def __post_init__(self):
        object.__setattr__(self, "output_dir", Path(self.output_dir))
        object.__setattr__(self, "fmt", ImageFormat.parse(self.fmt))
        ends = []
        for end in (self.start, self.end):
            if isinstance(end, str):
                end = Path(end)
            if not isinstance(end, Path):
                _check_count("an interpolation end (a seed)", end, minimum=0)
            ends.append(end)
        if isinstance(ends[0], Path) != isinstance(ends[1], Path):
            raise InputError(f"interpolate between two seeds or two image files, not {self.start!r} and "
                             f"{self.end!r}")
        object.__setattr__(self, "start", ends[0])
        object.__setattr__(self, "end", ends[1])
        _check_backend(self.backend)
        _check_count("steps", self.steps, minimum=2)
        check_output_size(self.size)
        _check_count("threads", self.threads, optional=True)
        _check_count("workers", self.workers)


class Engine(str, Enum):
    """Where an image flow runs: in this process (marking threads), or on a Ray cluster's actors."""

    LOCAL = "local"
    RAY = "ray"


@dataclass(frozen=True)
class GenerateReport:
    files: list[StampResult]
    model: str
    version: str
    config_hash: str
    device: str
    # Seconds of work per stage: "model" (generation), "watermark" (summed over marking threads), "sign".
    seconds: dict = field(default_factory=dict)
    wall_seconds: float = 0.0
    engine: Engine = Engine.LOCAL
    cluster: RayCluster | None = None  # the Ray cluster the images were made on (engine "ray")

    @property
    def images_per_second(self) -> float:
        return len(self.files) / self.wall_seconds if self.wall_seconds else float("nan")

    @property
    def stage_share(self) -> dict:
        """Each stage's share of the work (None for all when no work was timed)."""
        total = sum(self.seconds.values())
        return {k: (v / total if total else None) for k, v in self.seconds.items()}

    def to_dict(self) -> dict:
        return {"model": self.model, "version": self.version, "config_hash": self.config_hash,
                "device": self.device, "images": len(self.files), "seconds": self.seconds,
                "wall_seconds": self.wall_seconds, "stage_share": self.stage_share,
                "images_per_second": self.images_per_second, "engine": self.engine.value,
                "cluster": self.cluster.to_dict() if self.cluster is not None else None,
                "files": [f.to_dict() for f in self.files]}


def generate_images(request: ImageRequest, stamper: Stamper | Home, *, identity: IdentitySource = None,
                    progress: ProgressCallback | None = None) -> GenerateReport:
    """Generate the request's images and stamp each: watermark, a signed manifest (trainedAlgorithmicMedia, the
    model and how to remake the image), a ledger record.

    ``stamper``: an open Stamper, or a Home to open one from (signing as ``identity``, see ``IdentitySource``, only
    once the model has loaded). ``progress(k)``: ``k`` more images stamped.
    """
    # 1. Check the inputs: the stamper and the output folder.
    _check_stamper(stamper, request.watermark)
    folder = image_folder(request.output_dir)

    # 2. Load the generator.
    generator = load_generator(request.backend, request.model, output_size=request.size,
                               num_threads=request.threads, **request.diffusion_options(),
                               conditional=request.label is not None)
    if request.label is not None:
        check_labels(request.label, request.n, generator.num_classes)

    # 3. Name the outputs and refuse existing ones, before any time goes into sampling.
    seeds = [request.seed + i for i in range(request.n)]
    prefix = generator.name.rsplit("/", 1)[-1] + (f"-l{request.label}" if request.label is not None else "")
    paths = output_paths(folder, prefix, seeds, request.fmt.suffix, request.overwrite)

    # 4. Open the stamper (signing identity, ledger, watermarker).
    with _opened(stamper, request.watermark, identity) as stamper:
        # 5. Sample.
        start = time.perf_counter()
        labelled = {"labels": request.label} if request.label is not None else {}
        result = generator.generate(request.n, request.seed, batch_size=request.batch_size, device=request.device,
                                    **labelled)
        model_seconds = time.perf_counter() - start
        check_markable(result.images, stamper)

        # 6. Describe each image: the model and how to remake it.
        specs = sample_specs(result, paths, seeds)

        # 7. Stamp: watermark, sign, record.
        stamping = time.perf_counter()
        folder.mkdir(parents=True, exist_ok=True)
        files = stamper.stamp_many(result.images, paths, specs, mime=request.fmt.mime, overwrite=request.overwrite,
                                   workers=request.workers, progress=progress)
        stamp_seconds = time.perf_counter() - stamping

    # 8. Report.
    return GenerateReport(files, result.model, result.version, result.config_hash,
                          str(result.parameters.get("device", request.device)), stage_seconds(model_seconds, files),
                          wall_seconds=model_seconds + stamp_seconds)


def interpolate_images(request: InterpolationRequest, stamper: Stamper | Home, *, identity: IdentitySource = None,
                       progress: ProgressCallback | None = None) -> GenerateReport:
    """The VAE's latent morph of the request, each frame stamped like a generated image (see
    ``generate_images``): seeds follow the great circle between their latents, images the line between their
    posterior means."""
    from synthguard.core.media import decode_image  # noqa: PLC0415

    # 1. Check the inputs: the stamper, the output folder and, for a morph between images, that they decode.
    _check_stamper(stamper, request.watermark)
    folder = image_folder(request.output_dir)
    ends = None
    if isinstance(request.start, Path):
        ends = [decode_image(path, keep_rgb=True).rgb for path in (request.start, request.end)]

    # 2. Load the generator: it must have an encoder.
    generator = load_generator(request.backend, request.model, output_size=request.size,
                               num_threads=request.threads)
    if not isinstance(generator, VAEGenerator):
        raise InputError("interpolation needs the VAE backend: a GAN has no encoder", hint=Hint.NEEDS_VAE)

    # 3. Name the outputs and refuse existing ones.
    paths = output_paths(folder, "interp", list(range(request.steps)), request.fmt.suffix, request.overwrite)

    # 4. Open the stamper.
    with _opened(stamper, request.watermark, identity) as stamper:
        # 5. Decode the path.
        start = time.perf_counter()
        if ends is None:
            images = generator.interpolate_seeds(request.start, request.end, request.steps)
            how = {"between_seeds": [request.start, request.end], "path": "slerp"}
        else:
            images = generator.interpolate(ends[0], ends[1], request.steps)
            how = {"between_images": [request.start.name, request.end.name], "path": "lerp of posterior means"}
        model_seconds = time.perf_counter() - start
        check_markable(images, stamper)

        # 6. Describe each frame.
        specs = [generated_spec(path, ModelInfo(generator.name, generator.version,
                                                config_hash=generator.config_hash,
                                                parameters={**how, "step": i, "steps": request.steps}))
                 for i, path in enumerate(paths)]

        # 7. Stamp.
        stamping = time.perf_counter()
        folder.mkdir(parents=True, exist_ok=True)
        files = stamper.stamp_many(images, paths, specs, mime=request.fmt.mime, overwrite=request.overwrite,
                                   workers=request.workers, progress=progress)
        stamp_seconds = time.perf_counter() - stamping

    # 8. Report (the VAE renders on the CPU).
    return GenerateReport(files, generator.name, generator.version, generator.config_hash, "cpu",
                          stage_seconds(model_seconds, files), wall_seconds=model_seconds + stamp_seconds)


def output_path(folder: Path, prefix: str, seed: int, ext: str) -> Path:
    """The file an image of ``seed`` is written to."""
    return folder / f"{prefix}-{seed:06d}{ext}"


def output_paths(folder: Path, prefix: str, seeds: list[int], ext: str, overwrite: bool) -> list[Path]:
    paths = [output_path(folder, prefix, seed, ext) for seed in seeds]
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        raise InputError(f"{existing[0]} already exists ({len(existing)} of the outputs do)", hint=Hint.OVERWRITE)
    return paths


def image_folder(folder: Path) -> Path:
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder} is a file; images are written into a folder")
    return folder


def _check_stamper(target: Stamper | Home, watermark: bool) -> None:
    """A given Stamper must watermark as the request asks; anything else must be a Home to open one from."""
    if isinstance(target, Stamper):
        if (target.watermarker is not None) != watermark:
            raise InputError(f"the request asks for watermark={watermark}, but the stamper "
                             f"{'has' if target.watermarker is not None else 'has no'} image watermarker")
    elif not isinstance(target, Home):
        raise InputError(f"stamper must be a Stamper or a Home, not {type(target).__name__}")


def _opened(target: Stamper | Home, watermark: bool, identity: IdentitySource):
    """The given Stamper (left open after the block), or one opened from the Home (closed after it)."""
    if isinstance(target, Stamper):
        return contextlib.nullcontext(target)
    return Stamper.from_home(target, identity=identity, image_watermark=watermark)


def generated_spec(path: Path, model: ModelInfo) -> ManifestSpec:
    return ManifestSpec(title=path.name, digital_source_type=DigitalSourceType.TRAINED_ALGORITHMIC_MEDIA,
                        model=model)


def sample_specs(result: GenerationResult, paths: list[Path], seeds: list[int]) -> list[ManifestSpec]:
    """The manifest of each sampled image: the model and how to remake it (its own seed replaces the seed list, its
    own ``label`` the label list of a conditional model)."""
    shared = {k: v for k, v in result.parameters.items() if k not in ("image_seeds", "labels")}
    labels = result.parameters.get("labels")
    return [generated_spec(path, ModelInfo(result.model, result.version, config_hash=result.config_hash, seed=seed,
                                           parameters=shared if labels is None else {**shared, "label": labels[i]}))
            for i, (path, seed) in enumerate(zip(paths, seeds, strict=True))]


def check_markable(images: list[np.ndarray], stamper: Stamper) -> None:
    if stamper.watermarker is None or not images:
        return
    height, width = images[0].shape[:2]
    if min(height, width) < MIN_MARKABLE_SIDE:
        raise WatermarkError(f"the images are {width}x{height}, too small for the watermark (short side >= "
                             f"{MIN_MARKABLE_SIDE} px): generate at {MIN_MARKABLE_SIDE} px or more (the default is "
                             f"{DEFAULT_OUTPUT_SIZE})", hint=Hint.NO_WATERMARK)


def stage_seconds(model_seconds: float, files: list[StampResult]) -> dict:
    """Seconds of work per stage (marking runs on several threads, so these may add up to more than the wall)."""
    return {"model": model_seconds, "watermark": sum(f.seconds.get("watermark", 0.0) for f in files),
            "sign": sum(f.seconds.get("sign", 0.0) for f in files)}
