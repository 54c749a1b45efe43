"""The dataset cache: a given path wins, cached files are verified, downloads are checked and renamed into place,
a read-only cache is read, and a missing dataset offline says where to put which file. No test reaches a network:
downloads come from file:// URLs or an injected fetcher."""

from __future__ import annotations

import hashlib
import io
import os
import urllib.error
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from helpers.files import INTEROP, MNIST_SUBSET
from helpers.mnist_idx import write_mnist_idx

from synthguard.core import datasets
from synthguard.core.datasets import (
    DATASETS,
    CachedFile,
    Dataset,
    RemoteFile,
    data_dir,
    dataset_path,
    npz_arrays_sha256,
    read_mnist_idx,
)
from synthguard.errors import Hint, InputError


def one_file_dataset(tmp_path: Path, content: bytes = b"digits and photographs\n" * 100,
                     sha256: str | None = None, name: str = "notes.txt") -> Dataset:
    """A one-file dataset published at a file:// URL."""
    published = tmp_path / "published" / name
    published.parent.mkdir(parents=True)
    published.write_bytes(content)
    remote = RemoteFile(published.as_uri(), name, len(content), sha256 or hashlib.sha256(content).hexdigest())
    return Dataset("notes", "The notes", name, "a text file", "a test folder", "none",
                   (CachedFile(remote.name, remote.size, remote.sha256),), (remote,))


def no_fetch(url):
    raise AssertionError(f"nothing may be fetched here ({url})")


@pytest.fixture
def online(monkeypatch):
    """Downloads on (conftest turns them off for every test); each test still fetches from local files only."""
    monkeypatch.delenv("SYNTHGUARD_OFFLINE")


def test_the_cache_is_synthguard_data_else_the_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTHGUARD_DATA", str(tmp_path / "data"))
    assert data_dir() == tmp_path / "data"
    monkeypatch.delenv("SYNTHGUARD_DATA")
    monkeypatch.setenv("SYNTHGUARD_HOME", str(tmp_path / "home"))
    assert data_dir() == tmp_path / "home" / "datasets"


def test_a_download_is_verified_and_renamed_into_the_cache(tmp_path, online):
    dataset = one_file_dataset(tmp_path)
    cache = tmp_path / "cache"
    path = dataset_path(dataset, cache=cache)
    assert path == cache / "notes.txt" and path.read_bytes().startswith(b"digits")
    assert sorted(os.listdir(cache)) == ["notes.txt"]  # the download folder is gone
    # Found in the cache the second time: nothing is fetched.
    assert dataset_path(dataset, cache=cache, fetch=no_fetch) == path


def test_a_download_with_the_wrong_checksum_is_refused(tmp_path, online):
    dataset = one_file_dataset(tmp_path, sha256="0" * 64)
    cache = tmp_path / "cache"
    with pytest.raises(InputError, match="expected .* sha256 0{64}: refused") as caught:
        dataset_path(dataset, cache=cache)
    assert caught.value.hint is Hint.NEEDS_DATA
    assert os.listdir(cache) == []  # nothing half-written stays behind


def test_a_download_longer_than_published_stops(tmp_path, online):
    dataset = one_file_dataset(tmp_path)
    endless = io.BytesIO(b"x" * (dataset.downloads[0].size + 10))
    with pytest.raises(InputError, match="over"):
        dataset_path(dataset, cache=tmp_path / "cache", fetch=lambda url: endless)


def test_a_cached_file_with_the_wrong_checksum_is_refused(tmp_path):
    dataset = one_file_dataset(tmp_path)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "notes.txt").write_bytes(b"something else")
    with pytest.raises(InputError, match="is not The notes as published .*sha256") as caught:
        dataset_path(dataset, cache=cache, fetch=no_fetch)
    assert caught.value.hint is Hint.NEEDS_DATA


def test_the_given_path_wins(tmp_path):
    dataset = one_file_dataset(tmp_path)
    mine = tmp_path / "my-notes.txt"
    mine.write_text("my own copy, not the published one")
    assert dataset_path(dataset, mine, cache=tmp_path / "empty", fetch=no_fetch) == mine
    with pytest.raises(InputError, match="The notes not found at .*absent.txt"):
        dataset_path(dataset, tmp_path / "absent.txt", fetch=no_fetch)
    with pytest.raises(InputError, match="is a folder"):
        dataset_path("c2pa-photos", mine, fetch=no_fetch)


def test_offline_the_error_says_where_to_put_the_file(tmp_path, online):
    dataset = one_file_dataset(tmp_path)
    cache = tmp_path / "cache"

    def unreachable(url):
        raise urllib.error.URLError("no route to host")

    with pytest.raises(InputError) as caught:
        dataset_path(dataset, cache=cache, fetch=unreachable)
    message = str(caught.value)
    assert caught.value.hint is Hint.NEEDS_DATA
    assert "no route to host" in message and str(cache / "notes.txt") in message
    assert dataset.files[0].sha256 in message and f"{dataset.files[0].size:,} bytes" in message


def test_synthguard_offline_turns_downloads_off(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTHGUARD_OFFLINE", "1")
    with pytest.raises(InputError, match="downloads are off") as caught:
        dataset_path("mnist", cache=tmp_path, fetch=no_fetch)
    message = str(caught.value)
    assert DATASETS["mnist"].files[0].sha256 in message and str(tmp_path / "mnist.npz") in message
    assert "idx .gz" in message  # the other form of MNIST a caller may give


def test_a_read_only_cache_is_read_without_writing(tmp_path, monkeypatch, online):
    dataset = one_file_dataset(tmp_path)
    cache = tmp_path / "cache"
    dataset_path(dataset, cache=cache)
    (cache / "notes.txt").chmod(0o444)
    cache.chmod(0o555)

    def no_write(*args, **kwargs):
        raise PermissionError(13, "Read-only file system")

    # Permission bits do not stop root, so every way the module writes is made to fail as well.
    monkeypatch.setattr(datasets, "tempfile", SimpleNamespace(mkdtemp=no_write))
    monkeypatch.setattr(datasets.os, "replace", no_write)
    assert dataset_path(dataset, cache=cache, fetch=no_fetch).read_bytes().startswith(b"digits")
    # A dataset that is not there: a clear error, not a traceback.
    other = one_file_dataset(tmp_path / "other", name="other.txt")
    with pytest.raises(InputError, match="cannot be written: Read-only file system") as caught:
        dataset_path(other, cache=cache)
    assert caught.value.hint is Hint.NEEDS_DATA
    cache.chmod(0o755)


def test_the_registry_photos_download_from_their_published_bytes(tmp_path, online):
    """The real ``c2pa-photos`` entry: URLs and checksums of c2pa-rs, served here from the same files in
    tests/fixtures/c2pa."""
    photos = DATASETS["c2pa-photos"]
    served = []

    def from_fixtures(url):
        served.append(url)
        return open(INTEROP / url.rsplit("/", 1)[1], "rb")

    folder = dataset_path("c2pa-photos", cache=tmp_path, fetch=from_fixtures)
    assert folder == tmp_path / "c2pa-photos" and len(served) == len(photos.files) == 11
    assert all(url.startswith("https://raw.githubusercontent.com/contentauth/c2pa-rs/") for url in served)
    assert sorted(p.name for p in folder.iterdir()) == sorted(Path(f.name).name for f in photos.files)
    (folder / "cloud.jpg").unlink()
    with pytest.raises(InputError, match="cloud.jpg .*missing"):
        dataset_path("c2pa-photos", cache=tmp_path, fetch=no_fetch)


def test_mnist_from_idx_files(tmp_path):
    with np.load(MNIST_SUBSET) as subset:
        arrays = {k: subset[k] for k in subset.files}
    for gzipped in (True, False):
        folder = write_mnist_idx(tmp_path / f"idx-{gzipped}", arrays, gzipped=gzipped)
        back = read_mnist_idx(folder)
        assert set(back) == set(arrays) and all(np.array_equal(back[k], arrays[k]) for k in arrays)
        assert back["train_images"].dtype == np.uint8 and back["train_images"].max() <= 254
    (tmp_path / "idx-True" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(InputError, match="no t10k-labels-idx1-ubyte.gz"):
        read_mnist_idx(tmp_path / "idx-True")
    (tmp_path / "idx-False" / "t10k-labels-idx1-ubyte").write_bytes(b"\0\0\x08\x03" + b"\0" * 20)
    with pytest.raises(InputError, match="1 dimension"):
        read_mnist_idx(tmp_path / "idx-False")


def test_mnist_is_built_from_its_idx_download_and_checked_by_its_arrays(tmp_path, online):
    """MNIST's download path (idx files -> mnist.npz), on the subset: the built file is identified by the digest of
    its arrays, whatever bytes the compression gives."""
    with np.load(MNIST_SUBSET) as subset:
        arrays = {k: subset[k] for k in subset.files}
    published = write_mnist_idx(tmp_path / "published", arrays)
    mnist = DATASETS["mnist"]
    downloads = tuple(RemoteFile((published / d.name).as_uri(), d.name, (published / d.name).stat().st_size,
                                 hashlib.sha256((published / d.name).read_bytes()).hexdigest())
                      for d in mnist.downloads)
    small = Dataset("mnist-subset", "MNIST subset", "mnist.npz", "digits", "idx files", "CC BY-SA 3.0",
                    (CachedFile("mnist.npz", 1, "0" * 64, arrays_sha256=npz_arrays_sha256(MNIST_SUBSET)),),
                    downloads, build=mnist.build)
    path = dataset_path(small, cache=tmp_path / "cache")
    assert npz_arrays_sha256(path) == npz_arrays_sha256(MNIST_SUBSET)
    assert sorted(os.listdir(tmp_path / "cache")) == ["mnist.npz"]


def test_the_full_datasets_match_the_registry(full_datasets):
    """The registry's sizes and checksums against the real files, and the MNIST subset against full MNIST."""
    from synthguard.training.data import load_mnist

    assert dataset_path("tinyshakespeare", fetch=no_fetch).stat().st_size == 1_115_394
    path = dataset_path("mnist", fetch=no_fetch)
    assert path == full_datasets / "mnist.npz" and npz_arrays_sha256(path) == DATASETS["mnist"].files[0].arrays_sha256
    train, test = load_mnist("train"), load_mnist("test")
    assert train.images.shape == (60000, 28, 28) and test.images.shape == (10000, 28, 28)
    with np.load(MNIST_SUBSET) as subset:
        assert np.array_equal(subset["train_images"], train.images[:2000])
        assert np.array_equal(subset["test_labels"], test.labels[:2000])


def test_install_copies_a_verified_local_copy_into_the_cache(tmp_path):
    ds = one_file_dataset(tmp_path)
    cached = datasets.install(ds, tmp_path / "published" / "notes.txt", cache=tmp_path / "cache")
    assert cached == tmp_path / "cache" / "notes.txt"
    assert cached.read_bytes() == (tmp_path / "published" / "notes.txt").read_bytes()
    (tmp_path / "other.txt").write_bytes(b"something else")
    with pytest.raises(InputError, match="not The notes as published") as exc:
        datasets.install(ds, tmp_path / "other.txt", cache=tmp_path / "cache2")
    assert exc.value.hint is Hint.NEEDS_DATA and not (tmp_path / "cache2" / "notes.txt").exists()


def test_install_takes_the_photo_folder_and_mnist_public_files(tmp_path):
    folder = datasets.install("c2pa-photos", INTEROP, cache=tmp_path / "cache")
    assert len(list(folder.iterdir())) == 11
    with np.load(MNIST_SUBSET) as subset:
        arrays = {k: subset[k] for k in subset.files}
    published = write_mnist_idx(tmp_path / "idx", arrays)
    # The subset's idx files are not MNIST's published ones: refused by their checksums, nothing cached.
    with pytest.raises(InputError, match="expected"):
        datasets.install("mnist", published, cache=tmp_path / "cache")
    assert not (tmp_path / "cache" / "mnist.npz").exists()
