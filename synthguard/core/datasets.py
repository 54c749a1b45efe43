"""The datasets SynthGuard trains and benchmarks on, behind a local cache with checksums.

Nothing here is needed to generate, sign, detect or verify: only training, evaluation and the benchmarks read
datasets. ``dataset_path(name, path)`` finds one, in this order:

1. ``path``, when the caller gives one: it wins, and must exist (its contents are the caller's choice and are not
   checked against the registry: a subset or another copy is fine).
2. The cache: ``$SYNTHGUARD_DATA`` if set, else ``$SYNTHGUARD_HOME/datasets`` (``~/.synthguard/datasets``). A file
   found there must match the registry's size and sha256, or it is refused. Reading never writes: the cache may
   be read-only (a shared copy on a team folder).
3. A download from the public source into the cache: each file's size and sha256 are checked while it streams
   into a temporary folder inside the cache, and only the finished, verified dataset is renamed into place.
   ``SYNTHGUARD_OFFLINE=1`` turns downloads off.

When all three fail the ``InputError`` (``hint=Hint.NEEDS_DATA``) says where to put which file, with its sha256.

MNIST is cached as ``mnist.npz`` (plain uint8 arrays ``train_images`` (60000, 28, 28), ``train_labels``,
``test_images`` (10000, 28, 28), ``test_labels``: read with ``numpy.load``, nothing is unpickled). Its public
source is the four idx ``.gz`` files of the MNIST distribution; ``read_mnist_idx`` converts them, and a folder
holding them is also accepted as MNIST's ``path``.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

import numpy as np

from synthguard.core.home import Home
from synthguard.core.media import file_sha256
from synthguard.errors import Hint, InputError

DOWNLOAD_TIMEOUT_S = 60
_CHUNK = 1 << 20

# fetch(url) -> a readable binary stream (a context manager): urllib's urlopen, or a stand-in a test injects.
Fetch = Callable[[str], BinaryIO]


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset's public source, saved as ``name`` (a path relative to the download folder)."""

    url: str
    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class CachedFile:
    """One file of a dataset as it sits in the cache (``name`` is relative to the cache folder).

    ``arrays_sha256`` (``.npz`` only): the digest of the arrays themselves (``npz_arrays_sha256``). A file rebuilt
    from the public source holds the same arrays but may compress to other bytes (zlib builds differ), so for such
    a file either digest identifies it.
    """

    name: str
    size: int
    sha256: str
    arrays_sha256: str | None = None


@dataclass(frozen=True)
class Dataset:
    """A dataset of the registry: what ``dataset_path`` returns (``target``, a file or a folder inside the cache),
    the files that make it up, and the public files it is downloaded from.

    ``build(downloaded, staging)`` turns the downloaded files (in the folder ``downloaded``) into ``files`` (under
    ``staging``); without it the downloads are the cached files themselves. ``also_accepted``: what else a caller
    may give as its path, said in the error when the dataset is missing.
    """

    name: str
    title: str
    target: str
    description: str
    source: str
    licence: str
    files: tuple[CachedFile, ...]
    downloads: tuple[RemoteFile, ...]
    build: Callable[[Path, Path], None] | None = None
    also_accepted: str = ""

    @property
    def is_folder(self) -> bool:
        return any(f.name.startswith(self.target + "/") for f in self.files)


# ------------------------------------------------------------------------------------------------------- MNIST
MNIST_IDX = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def _read_idx(path: Path, dims: int) -> np.ndarray:
    """An idx file (gzipped or not): big-endian header ``0 0 8 dims`` (unsigned byte data), ``dims`` int32 sizes."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as exc:
        raise InputError(f"{path}: cannot read as an idx file ({exc})") from None
    if len(data) < 4 + 4 * dims or data[:4] != bytes((0, 0, 8, dims)):
        raise InputError(f"{path}: not an idx file of unsigned bytes with {dims} dimension(s)")
    shape = tuple(int(n) for n in np.frombuffer(data, ">i4", count=dims, offset=4))
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * dims)
    if body.size != int(np.prod(shape)):
        raise InputError(f"{path}: {body.size} bytes of data for the shape {shape}")
    return body.reshape(shape)


def read_mnist_idx(folder: str | os.PathLike) -> dict[str, np.ndarray]:
    """MNIST from the four idx files of its distribution in ``folder`` (``train-images-idx3-ubyte.gz``, ...; the
    unzipped names work too), as the arrays of ``mnist.npz``.

    Pixels keep the values of the project's ``mnist.npz``, which was made from deeplearning.net's ``mnist.pkl.gz``
    (pixel / 256 as float32) by rounding x * 255: a pixel p of the idx file becomes p for p <= 128 and p - 1
    above. Applying the same map here gives, from the public files, the very arrays the shipped weights were
    trained on (the registry's ``arrays_sha256`` checks it).
    """
    folder = Path(folder)
    arrays = {}
    for key, stem in MNIST_IDX.items():
        candidates = [folder / f"{stem}.gz", folder / stem]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise InputError(f"{folder}: no {stem}.gz (the MNIST idx files are train-images-idx3-ubyte.gz, "
                             "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz)")
        arrays[key] = _read_idx(found, 3 if key.endswith("images") else 1)
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if len(images) != len(labels):
            raise InputError(f"{folder}: {len(images)} {split} images but {len(labels)} labels")
        arrays[f"{split}_images"] = images - (images > 128).astype(np.uint8)
    return arrays


def _build_mnist(downloaded: Path, staging: Path) -> None:
    np.savez_compressed(staging / "mnist.npz", **read_mnist_idx(downloaded))


def npz_arrays_sha256(path: str | os.PathLike) -> str:
    """sha256 over the arrays of an ``.npz`` (in name order: name, dtype, shape, then the raw bytes), independent of
    how the archive was compressed."""
    digest = hashlib.sha256()
    with np.load(path, allow_pickle=False) as arrays:
        for name in sorted(arrays.files):
            array = np.ascontiguousarray(arrays[name])
            digest.update(f"{name}:{array.dtype.str}:{array.shape}\n".encode())
            digest.update(array.tobytes())
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------------- registry
_MNIST_MIRROR = "https://storage.googleapis.com/cvdf-datasets/mnist/"
_C2PA_RS = "https://raw.githubusercontent.com/contentauth/c2pa-rs/24d17555beafb70c15e1e1e4054ac3c06fbba1c0/"
_C2PA_PHOTOS = (  # (path in c2pa-rs, size, sha256)
    ("sdk/tests/fixtures/C.jpg", 132518, "a2d14755db55de67a47c04090340d8266e892367be4104a45626d7a6fa6e9ffd"),
    ("sdk/tests/fixtures/CA.jpg", 166864, "e71bff58fc57640803e6e65f7534e2fb0c2f99018c85276cc14b30f04427cc76"),
    ("sdk/tests/fixtures/CACA.jpg", 279782, "e735fe9e50057f8280baf96182a38d516a4acfb144da7f1e6aad32de44c76aea"),
    ("sdk/tests/fixtures/CACAE-uri-CA.jpg", 388188,
     "66baccd7a155946eec0bcffd1c26a635e462493816414f677baf336989a0482a"),
    ("sdk/tests/fixtures/E-sig-CA.jpg", 166864, "20dc072a4c843d3b7d7cb4f4002fbb4d8f20d7ee859ca726f2458c1e0358a98c"),
    ("sdk/tests/fixtures/XCA.jpg", 142765, "81f20702a2e81611b29aa773f811b59ade6095acd3d089d6ffdae6b591d6d5a5"),
    ("sdk/src/identity/tests/fixtures/claim_aggregation/adobe_connected_identities.jpg", 249364,
     "d17c8bf620a2d1bff2395e2b7c597d17aaf7b823dc30f1521aa777813da43aa4"),
    ("sdk/tests/fixtures/boxhash.jpg", 174308, "b63a8df44b09d78cbe60b2c828b0a76b97b953407942fd9a2d0698c77c29b176"),
    ("sdk/tests/fixtures/cloud.jpg", 183901, "e6ad9f51be5bb83f137322a3f260b5881738e3528aee208727e75b6daaba6092"),
    ("sdk/tests/fixtures/no_manifest.jpg", 97591, "9ac395ca04fc9d348acf6f81920f5e894d336341c3f764ca86c354eec6f7c2d6"),
    ("sdk/tests/fixtures/prerelease.jpg", 374959, "17ea3035caaa4eb6f7cb06c89bda6c86a74a92c40dc5b8119e9954ed9cd99831"),
)


def _plain(name: str, title: str, target: str, description: str, source: str, licence: str,
           downloads: tuple[RemoteFile, ...]) -> Dataset:
    """A dataset whose downloads are its cached files, byte for byte."""
    files = tuple(CachedFile(d.name, d.size, d.sha256) for d in downloads)
    return Dataset(name, title, target, description, source, licence, files, downloads)


DATASETS: Mapping[str, Dataset] = {
    "mnist": Dataset(
        name="mnist", title="MNIST", target="mnist.npz",
        description="handwritten digits: 60,000 train and 10,000 test, 28x28 uint8 (the built-in GAN, VAE, "
                    "classifier and the detector's real digits)",
        source=f"the four idx .gz files of MNIST (Y. LeCun, C. Cortes, C. Burges) from {_MNIST_MIRROR}, "
               "converted by read_mnist_idx",
        licence="CC BY-SA 3.0 (as stated by its authors)",
        files=(CachedFile("mnist.npz", 11_483_465, "5c320ac6fa0e4c0462fd0bc2f0390927ae5ff577ec8cd3b15236dba72b896b19",
                          arrays_sha256="b35b580d0d155428a1ef83af7fd61c49ccd46a46779a6e795a5f239191d76e9a"),),
        downloads=(
            RemoteFile(_MNIST_MIRROR + "train-images-idx3-ubyte.gz", "train-images-idx3-ubyte.gz", 9_912_422,
                       "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
            RemoteFile(_MNIST_MIRROR + "train-labels-idx1-ubyte.gz", "train-labels-idx1-ubyte.gz", 28_881,
                       "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
            RemoteFile(_MNIST_MIRROR + "t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz", 1_648_877,
                       "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
            RemoteFile(_MNIST_MIRROR + "t10k-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 4_542,
                       "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
        ),
        build=_build_mnist,
        also_accepted="a folder holding the four MNIST idx .gz files",
    ),
    "tinyshakespeare": _plain(
        "tinyshakespeare", "Tiny Shakespeare", "tinyshakespeare.txt",
        "1,115,394 bytes of Shakespeare's plays, plain text (the built-in text model's corpus)",
        "data/tinyshakespeare/input.txt of the repository karpathy/char-rnn", "public domain",
        (RemoteFile("https://raw.githubusercontent.com/karpathy/char-rnn/6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e/"
                    "data/tinyshakespeare/input.txt", "tinyshakespeare.txt", 1_115_394,
                    "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"),),
    ),
    "c2pa-photos": _plain(
        "c2pa-photos", "the C2PA sample photographs", "c2pa-photos",
        "11 JPEG photographs, some signed with C2PA manifests (real photos for the detector's training and "
        "benchmark)",
        "the test fixtures of the C2PA reference implementation, contentauth/c2pa-rs at commit 24d1755",
        "MIT or Apache-2.0 (c2pa-rs)",
        tuple(RemoteFile(_C2PA_RS + path, "c2pa-photos/" + path.rsplit("/", 1)[1], size, sha)
              for path, size, sha in _C2PA_PHOTOS),
    ),
}


# ------------------------------------------------------------------------------------------------------ lookup
def data_dir() -> Path:
    """The dataset cache: ``$SYNTHGUARD_DATA`` if set, else ``$SYNTHGUARD_HOME/datasets``."""
    value = os.environ.get("SYNTHGUARD_DATA")
    return Path(value).expanduser() if value else Home.from_env().root / "datasets"


def downloads_allowed() -> bool:
    return os.environ.get("SYNTHGUARD_OFFLINE", "").strip().lower() not in ("1", "true", "yes", "on")


def file_problem(file: CachedFile, path: Path) -> str | None:
    """Why ``path`` is not ``file`` (a short phrase), or None when it is."""
    if not path.is_file():
        return "missing"
    size = path.stat().st_size
    digest = file_sha256(path)
    if size == file.size and digest == file.sha256:
        return None
    if file.arrays_sha256 is not None:
        with contextlib.suppress(OSError, ValueError, KeyError):
            if npz_arrays_sha256(path) == file.arrays_sha256:
                return None
    return f"{size:,} bytes with sha256 {digest}, expected {file.size:,} bytes with sha256 {file.sha256}"


def dataset_path(dataset: str | Dataset, path: str | os.PathLike | None = None, *, cache: Path | None = None,
                 fetch: Fetch | None = None) -> Path:
    """Where ``dataset`` (a name of ``DATASETS`` or a ``Dataset``) is: ``path``, else the cache (verified), else
    downloaded into the cache (see the module comment). ``cache`` defaults to ``data_dir()``; ``fetch`` to urllib."""
    dataset = _lookup(dataset)
    if path is not None:
        given = Path(path).expanduser()
        if not given.exists():
            raise InputError(f"{dataset.title} not found at {given}", hint=Hint.NEEDS_DATA)
        if dataset.is_folder and not given.is_dir():
            raise InputError(f"{given}: {dataset.title} is a folder ({dataset.target}/), not a file",
                             hint=Hint.NEEDS_DATA)
        return given
    cache = Path(cache) if cache is not None else data_dir()
    target = cache / dataset.target
    if target.exists():
        _verify(dataset, cache)
        return target
    if not downloads_allowed():
        raise _needs_data(dataset, cache, "downloads are off (SYNTHGUARD_OFFLINE)")
    return download(dataset, cache, fetch=fetch)


def download(dataset: str | Dataset, cache: Path | None = None, *, fetch: Fetch | None = None) -> Path:
    """Download ``dataset`` into ``cache``, verify every file, and rename it into place; returns its path."""
    dataset = _lookup(dataset)
    cache = Path(cache) if cache is not None else data_dir()
    fetch = fetch or _urlopen
    try:
        cache.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".sg-download-", dir=cache))
    except OSError as exc:
        raise _needs_data(dataset, cache, f"the cache folder cannot be written: {exc.strerror or exc}") from None
    try:
        downloaded = staging / "downloaded" if dataset.build else staging
        for remote in dataset.downloads:
            _fetch_verified(dataset, remote, downloaded / remote.name, fetch, cache)
        if dataset.build:
            dataset.build(downloaded, staging)
        for file in dataset.files:
            problem = file_problem(file, staging / file.name)
            if problem:
                raise InputError(f"{dataset.title} built from {dataset.source}: {file.name} is {problem}",
                                 hint=Hint.NEEDS_DATA)
        target = cache / dataset.target
        try:
            os.replace(staging / dataset.target, target)
        except OSError as exc:
            if not target.exists():  # an existing target: another process finished first (verified below)
                raise _needs_data(dataset, cache, f"cannot move it into the cache: {exc.strerror or exc}") from None
        _verify(dataset, cache)
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def install(dataset: str | Dataset, source: str | os.PathLike, cache: Path | None = None) -> Path:
    """Put a local copy of ``dataset`` into the cache, verified as a download would be; returns its cached path.

    ``source`` is a folder holding the dataset's public files (for MNIST the four idx ``.gz`` files, built as if
    downloaded), or the dataset as cached (``mnist.npz``, ``tinyshakespeare.txt``, the ``c2pa-photos`` folder).
    """
    dataset = _lookup(dataset)
    source = Path(source).expanduser()
    if not source.exists():
        raise InputError(f"{source}: no such file or folder")
    public = {remote.name.rsplit("/", 1)[-1]: remote for remote in dataset.downloads}
    if source.is_dir() and all((source / name).is_file() for name in public):
        by_url = {remote.url: source / name for name, remote in public.items()}
        return download(dataset, cache, fetch=lambda url: open(by_url[url], "rb"))

    def local(file: CachedFile) -> Path:
        return source / file.name.split("/", 1)[1] if dataset.is_folder else source

    for file in dataset.files:
        problem = file_problem(file, local(file))
        if problem:
            raise InputError(f"{local(file)} is not {dataset.title} as published ({problem})", hint=Hint.NEEDS_DATA)
    as_cached = replace(dataset, build=None, downloads=tuple(
        RemoteFile(str(local(f)), f.name, local(f).stat().st_size, file_sha256(local(f))) for f in dataset.files))
    return download(as_cached, cache, fetch=_open_local)


def _open_local(path: str) -> BinaryIO:
    return open(path, "rb")


# ----------------------------------------------------------------------------------------------------- helpers
def _lookup(dataset: str | Dataset) -> Dataset:
    if isinstance(dataset, Dataset):
        return dataset
    try:
        return DATASETS[dataset]
    except KeyError:
        raise InputError(f"no dataset {dataset!r}: the datasets are {', '.join(sorted(DATASETS))}") from None


def _verify(dataset: Dataset, cache: Path) -> None:
    for file in dataset.files:
        problem = file_problem(file, cache / file.name)
        if problem:
            raise InputError(f"{cache / file.name} in the dataset cache is not {dataset.title} as published "
                             f"({problem}): remove it to download it again, or give the path of another copy",
                             hint=Hint.NEEDS_DATA)


def _needs_data(dataset: Dataset, cache: Path, reason: str) -> InputError:
    if dataset.is_folder:
        names = ", ".join(f.name.rsplit("/", 1)[1] for f in dataset.files)
        where = (f"put its {len(dataset.files)} files ({names}; sizes and sha256 in synthguard.core.datasets."
                 f"DATASETS[{dataset.name!r}]) from {dataset.source} in {cache / dataset.target}")
    else:
        (file,) = dataset.files
        where = f"put {file.name} ({file.size:,} bytes, sha256 {file.sha256}) at {cache / file.name}"
    extra = f" (or of {dataset.also_accepted})" if dataset.also_accepted else ""
    return InputError(f"{dataset.title} ({dataset.description}) is not in the dataset cache and was not downloaded "
                      f"({reason}): {where}, or give the path of a copy{extra}", hint=Hint.NEEDS_DATA)


def _urlopen(url: str) -> BinaryIO:
    return urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S)


def _fetch_verified(dataset: Dataset, remote: RemoteFile, destination: Path, fetch: Fetch, cache: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    try:
        with fetch(remote.url) as response, open(destination, "wb") as out:
            for block in iter(lambda: response.read(_CHUNK), b""):
                size += len(block)
                if size > remote.size:
                    break
                digest.update(block)
                out.write(block)
    except (OSError, ValueError) as exc:  # URLError is an OSError; ValueError: an unusable URL
        raise _needs_data(dataset, cache, f"{remote.url}: {getattr(exc, 'reason', None) or exc}") from None
    if size != remote.size or digest.hexdigest() != remote.sha256:
        got = f"over {remote.size:,} bytes" if size > remote.size else f"{size:,} bytes, sha256 {digest.hexdigest()}"
        raise InputError(f"{remote.url}: downloaded {got}, expected {remote.size:,} bytes with sha256 "
                         f"{remote.sha256}: refused", hint=Hint.NEEDS_DATA)
