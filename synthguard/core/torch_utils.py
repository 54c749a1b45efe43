"""torch helpers every model family shares: loading ``save_pretrained`` folders, devices, thread scopes, seeded
noise, image resizing and tensor-to-uint8 conversion, config hashes.

torch is imported by the helpers that use it, when first called: importing this module costs no torch import (an
image inspection with the numpy detector never pays it)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from synthguard.errors import InputError

if TYPE_CHECKING:
    import torch


def load_model(cls: type, path: str | os.PathLike):
    """``cls.from_pretrained(path)`` for a folder written by ``save_pretrained`` (or a Hugging Face hub id
    "owner/name" that is not a local path, fetched or taken from the local hub cache), in eval mode.

    A missing folder, missing files or weights that do not fit the config raise ``InputError`` naming the folder.
    """
    folder = Path(path)
    if not folder.exists() and is_hub_id(str(path)):
        folder = _fetch_from_hub(str(path))
    if not (folder / "config.json").is_file():
        raise InputError(f"model folder {str(folder)!r} does not exist or has no config.json")
    try:
        saved_class = json.loads((folder / "config.json").read_text()).get("_class_name")
    except (OSError, ValueError, AttributeError) as exc:
        raise InputError(f"{str(folder / 'config.json')!r} is not a JSON object: {exc}") from exc
    if saved_class != cls.__name__:
        raise InputError(f"model folder {str(folder)!r} holds a {saved_class!r}, not a {cls.__name__!r}")
    try:
        model, info = cls.from_pretrained(
            folder, local_files_only=True, low_cpu_mem_usage=False, output_loading_info=True
        )
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
        raise InputError(f"cannot load {cls.__name__} from {str(folder)!r}: {' '.join(str(exc).split())}") from exc
    # diffusers only warns about weights it could not fill and leaves them random: for us that is a failed load.
    problems = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    if problems:
        raise InputError(f"weights in {str(folder)!r} do not fit {cls.__name__}: {problems}")
    return model.eval()


def read_training_record(folder: Path) -> tuple[dict | None, str]:
    """A model folder's ``training.json`` (None when it has none) and the version it records: its ``version``, "1"
    when it names none, "unknown" without a record. An unreadable record is an ``InputError``."""
    path = Path(folder) / "training.json"
    if not path.is_file():
        return None, "unknown"
    try:
        training = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{folder}: unreadable training.json ({' '.join(str(exc).split())[:200]})") from None
    return training, str(training.get("version", "1")) if isinstance(training, dict) else "unknown"


def is_hub_id(text: str) -> bool:
    owner, sep, name = text.partition("/")
    return bool(sep and owner and name) and "/" not in name and not text.startswith((".", "~"))


def _fetch_from_hub(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download  # noqa: PLC0415 (only for hub ids)

    # Read the hub settings now, not when huggingface_hub was first imported (it caches them at import).
    home = os.environ.get("HF_HOME")
    cache = os.environ.get("HF_HUB_CACHE") or (os.path.join(home, "hub") if home else None)
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    try:
        return Path(snapshot_download(repo_id, allow_patterns=["config.json", "*.safetensors"], cache_dir=cache,
                                      local_files_only=offline))
    except Exception as exc:  # noqa: BLE001 (network, auth and not-found errors all mean: cannot load it)
        raise InputError(f"cannot fetch model {repo_id!r} from the Hugging Face hub (offline? private? misspelt?): "
                         f"{' '.join(str(exc).split())[:300]}") from None


def config_hash(config: Mapping[str, Any]) -> str:
    """sha256 of a model config as canonical JSON (sorted keys, no whitespace), first 16 hex digits.

    Keys starting with ``_`` (diffusers' ``_class_name``, ``_diffusers_version``...) are left out, so the hash names
    the architecture and not the library version that saved it.
    """
    public = {k: v for k, v in config.items() if not k.startswith("_")}
    text = json.dumps(public, sort_keys=True, separators=(",", ":"), default=list)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def resolve_device(device: str) -> torch.device:
    """``"auto"`` is cuda when available, else cpu; a named device that this machine lacks raises ``InputError``."""
    import torch  # noqa: PLC0415 (torch on first use: see the module's docstring)

    if not isinstance(device, str):
        raise InputError(f"device must be a string such as 'cpu', 'cuda' or 'auto', not {device!r}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise InputError(f"unknown device {device!r}: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'") from exc
    if resolved.type == "cpu":
        return resolved
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"device {device!r} asked for, but this torch build or machine has no CUDA device")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise InputError(f"device {device!r} asked for, but only {torch.cuda.device_count()} CUDA device(s)")
        return resolved
    if resolved.type == "mps":
        if not torch.backends.mps.is_available():
            raise InputError(f"device {device!r} asked for, but MPS is not available on this machine")
        return resolved
    raise InputError(f"device {device!r} is not supported: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")


def seeded_normal(seeds: list[int], shape: tuple[int, ...]) -> torch.Tensor:
    """One standard-normal draw of ``shape`` per seed, stacked: (len(seeds), *shape), float32 on the CPU."""
    import torch  # noqa: PLC0415 (torch on first use: see the module's docstring)

    return torch.stack([torch.randn(shape, generator=torch.Generator("cpu").manual_seed(s)) for s in seeds])


def resize_image(image: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """Resize a uint8 (H, W) or (H, W, 3) image to ``size`` = (height, width).

    Up: bicubic (OpenCV ``INTER_CUBIC``, saturated to 0..255): smooth edges with no nearest-neighbour blocks.
    Down: area averaging (``INTER_AREA``), which does not alias.
    """
    if size is None or image.shape[:2] == size:
        return image
    height, width = size
    shrinking = height < image.shape[0] or width < image.shape[1]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)


def to_uint8_images(batch: torch.Tensor) -> list[np.ndarray]:
    """(B, C, H, W) floats in [0, 1] -> B uint8 images, (H, W) when C == 1 else (H, W, C)."""
    import torch  # noqa: PLC0415 (torch on first use: see the module's docstring)

    pixels = (batch.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    if pixels.shape[1] == 1:
        return list(pixels[:, 0])
    return list(pixels.transpose(0, 2, 3, 1))


@contextlib.contextmanager
def torch_threads(num_threads: int | None) -> Iterator[None]:
    """Run a block with ``torch.set_num_threads(num_threads)`` and restore the previous count after it.

    None leaves torch's setting alone. The count is process-wide in torch; this only scopes it to the block.
    """
    if num_threads is None:
        yield
        return
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads <= 0:
        raise InputError(f"num_threads must be a positive integer or None, not {num_threads!r}")
    import torch  # noqa: PLC0415 (torch on first use: see the module's docstring)

    previous = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
