"""Loading training and reference images: MNIST and folders."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from synthguard.errors import InputError
from synthguard.training.data import load_images, load_mnist, mnist_path


def test_folder_grey_and_rgb(tmp_path):
    (tmp_path / "sub").mkdir()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(tmp_path / "a.png")
    Image.new("L", (10, 10), 99).save(tmp_path / "sub" / "b.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    grey = load_images(tmp_path, size=16)
    rgb = load_images(tmp_path, size=(8, 12), mode="RGB")
    assert grey.shape == (2, 16, 16) and grey.dtype == np.uint8
    assert rgb.shape == (2, 8, 12, 3)
    assert load_images(tmp_path, size=16, limit=1).shape == (1, 16, 16)


def test_empty_or_missing_folder(tmp_path):
    with pytest.raises(InputError, match="no images"):
        load_images(tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        load_images(tmp_path / "missing")
    with pytest.raises(InputError, match="mode"):
        load_images(tmp_path, mode="CMYK")


def test_mnist_from_the_variable(tmp_path, monkeypatch):
    fake = tmp_path / "m.npz"
    rng = np.random.default_rng(0)
    np.savez(
        fake,
        train_images=rng.integers(0, 256, (5, 28, 28), dtype=np.uint8), train_labels=np.arange(5),
        test_images=rng.integers(0, 256, (3, 28, 28), dtype=np.uint8), test_labels=np.arange(3),
    )
    monkeypatch.setenv("SYNTHGUARD_MNIST", str(fake))
    assert mnist_path() == fake
    assert load_mnist("test").images.shape == (3, 28, 28)
    assert load_images("mnist", split="train", size=14, limit=2).shape == (2, 14, 14)
    with pytest.raises(InputError, match="split"):
        load_mnist("valid")
    monkeypatch.setenv("SYNTHGUARD_MNIST", str(tmp_path / "absent.npz"))
    with pytest.raises(InputError, match="MNIST not found"):
        load_mnist()


def test_mnist_from_a_folder_of_idx_files(tmp_path):
    from helpers.files import MNIST_SUBSET
    from helpers.mnist_idx import write_mnist_idx

    with np.load(MNIST_SUBSET) as subset:
        arrays = {k: subset[k] for k in subset.files}
    folder = write_mnist_idx(tmp_path / "idx", arrays)
    test = load_mnist("test", folder)
    assert np.array_equal(test.images, arrays["test_images"]) and test.labels.dtype == np.int64


def test_mnist_missing_from_the_cache_offline_says_where_it_goes(tmp_path, monkeypatch):
    from synthguard.errors import Hint

    monkeypatch.delenv("SYNTHGUARD_MNIST")
    monkeypatch.setenv("SYNTHGUARD_DATA", str(tmp_path / "cache"))
    with pytest.raises(InputError, match="downloads are off") as caught:
        load_mnist("train")
    assert caught.value.hint is Hint.NEEDS_DATA and str(tmp_path / "cache" / "mnist.npz") in str(caught.value)
