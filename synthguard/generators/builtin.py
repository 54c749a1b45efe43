"""The generators and the metric feature extractor that ship inside the package (``weights/``; how each was
trained is recorded in ``weights/README.md``)."""

from __future__ import annotations

from importlib.resources import as_file, files

from synthguard.errors import InputError
from synthguard.generators.base import DEFAULT_OUTPUT_SIZE, LatentImageGenerator, load_model
from synthguard.generators.evaluation import FeatureExtractor, MnistClassifier
from synthguard.generators.gan import GANGenerator
from synthguard.generators.vae import VAEGenerator

BUILTIN_VERSION = "1.0"
_BUILTIN = {
    "gan": (GANGenerator, "synthguard/mnist-dcgan"),
    "vae": (VAEGenerator, "synthguard/mnist-vae"),
}


def builtin_generator(
    name: str,
    *,
    output_size: int | tuple[int, int] | None = DEFAULT_OUTPUT_SIZE,
    temperature: float = 1.0,
    num_threads: int | None = None,
) -> LatentImageGenerator:
    """The shipped MNIST ``"gan"`` or ``"vae"``, generating at ``output_size`` (None: native 28x28)."""
    if name not in _BUILTIN:
        raise InputError(f"no built-in generator {name!r}: choose one of {sorted(_BUILTIN)}")
    cls, model_name = _BUILTIN[name]
    with as_file(files("synthguard.generators") / "weights" / name) as folder:
        return cls.from_pretrained(
            folder,
            name=model_name,
            version=BUILTIN_VERSION,
            output_size=output_size,
            temperature=temperature,
            num_threads=num_threads,
        )


def builtin_feature_extractor(*, device: str = "cpu", num_threads: int | None = None) -> FeatureExtractor:
    """The shipped MNIST classifier as the feature extractor of FID / KID / IS."""
    with as_file(files("synthguard.generators") / "weights" / "mnist-classifier") as folder:
        return FeatureExtractor(load_model(MnistClassifier, folder), device=device, num_threads=num_threads)
