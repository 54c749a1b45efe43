"""Training and reference images for the generators: MNIST from the dataset cache, or any folder of images.

MNIST is found in this order: the ``path`` argument, the ``SYNTHGUARD_MNIST`` variable, and the dataset cache of
``synthguard.core.datasets`` (``mnist.npz``, downloaded into the cache if missing). A given path may be an
``mnist.npz`` (plain arrays, never unpickled; any number of images) or a folder holding the four idx ``.gz`` files
of the MNIST distribution (converted on loading by ``read_mnist_idx``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from synthguard.core.datasets import dataset_path, read_mnist_idx
from synthguard.errors import InputError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


@dataclass(frozen=True)
class MnistSplit:
    """One MNIST split: ``images`` uint8 (N, 28, 28), white digits on black; ``labels`` int64 (N,) in 0..9."""

    images: np.ndarray
    labels: np.ndarray


def mnist_path(path: str | os.PathLike | None = None) -> Path:
    """Where MNIST is (see the module comment): an ``.npz`` file or a folder of idx files."""
    if path is None and os.environ.get("SYNTHGUARD_MNIST"):
        path = os.environ["SYNTHGUARD_MNIST"]
    return dataset_path("mnist", path)


def load_mnist(split: str = "train", path: str | os.PathLike | None = None) -> MnistSplit:
    """The ``"train"`` (60,000) or ``"test"`` (10,000) split of MNIST."""
    if split not in ("train", "test"):
        raise InputError(f"MNIST split must be 'train' or 'test', not {split!r}")
    source = mnist_path(path)
    try:
        if source.is_dir():
            arrays = read_mnist_idx(source)
            images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        else:
            with np.load(source, allow_pickle=False) as arrays:
                images = arrays[f"{split}_images"]
                labels = arrays[f"{split}_labels"]
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"{source} is not an MNIST .npz with {split}_images/{split}_labels: {exc}") from exc
    if images.dtype != np.uint8 or images.ndim != 3 or len(images) != len(labels):
        raise InputError(f"{source}: {split}_images must be uint8 (N, H, W) matching {split}_labels")
    return MnistSplit(images=images, labels=labels.astype(np.int64))


def load_images(
    source: str | os.PathLike,
    *,
    size: int | tuple[int, int] | None = 28,
    mode: str = "L",
    split: str = "train",
    limit: int | None = None,
) -> np.ndarray:
    """Images as one uint8 array: (N, H, W) for ``mode="L"`` (grey), (N, H, W, 3) for ``mode="RGB"``.

    ``source`` is ``"mnist"`` (the ``split`` of MNIST, at its native 28x28 unless ``size`` differs) or a folder,
    searched recursively for image files in name order, each converted to ``mode`` and resized to ``size``
    (int or (height, width); bicubic, or area when shrinking). ``size=None`` keeps sizes, which must then agree.
    ``limit`` keeps the first ``limit`` images.
    """
    if mode not in ("L", "RGB"):
        raise InputError(f"mode must be 'L' (grey) or 'RGB', not {mode!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0):
        raise InputError(f"limit must be a positive integer or None, not {limit!r}")
    if isinstance(size, int) and not isinstance(size, bool):
        size = (size, size)
    if str(source) == "mnist":
        images = load_mnist(split).images[:limit]
        if mode == "RGB":
            images = np.repeat(images[..., None], 3, axis=-1)
        if size is not None and images.shape[1:3] != tuple(size):
            images = np.stack([_resize(Image.fromarray(im), size) for im in images])
        return images
    folder = Path(source)
    if not folder.is_dir():
        raise InputError(f"image folder {str(folder)!r} does not exist or is not a folder")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())[:limit]
    if not files:
        raise InputError(f"image folder {str(folder)!r} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    arrays = []
    for file in files:
        try:
            with Image.open(file) as opened:
                image = opened.convert(mode)
        except (OSError, UnidentifiedImageError) as exc:
            raise InputError(f"{file} is not a readable image: {exc}") from exc
        arrays.append(_resize(image, size) if size is not None else np.asarray(image))
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise InputError(f"images in {str(folder)!r} differ in size ({len(shapes)} sizes): pass size=")
    return np.stack(arrays)


def _resize(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    height, width = size
    if (image.height, image.width) == (height, width):
        return np.asarray(image)
    shrinking = height < image.height or width < image.width
    resample = Image.Resampling.BOX if shrinking else Image.Resampling.BICUBIC
    return np.asarray(image.resize((width, height), resample))
