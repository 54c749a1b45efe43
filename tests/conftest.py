"""Shared fixtures: an isolated SYNTHGUARD_HOME per test, datasets from tests/fixtures and never a download, a local
identity, small images made on the spot."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers.files import INTEROP, MNIST_SUBSET
from helpers.ray import ray_local  # noqa: F401 (the session's local Ray instance, for the Ray engine tests)
from helpers.resolvers import canned, serve  # noqa: F401 (fixtures for the resolver tests)
from PIL import Image

from synthguard.core.datasets import DATASETS
from synthguard.core.home import Home
from synthguard.core.samples import procedural_image
from synthguard.provenance.identity import IdentityStore

# The dataset cache the environment names (CI: its copy of the full datasets), read before a test replaces it.
ENVIRONMENT_DATA = os.environ.get("SYNTHGUARD_DATA")


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch) -> Home:
    """Every test gets its own SYNTHGUARD_HOME: no test reads or writes the user's keys or ledger."""
    root = tmp_path / "sg-home"
    monkeypatch.setenv("SYNTHGUARD_HOME", str(root))
    monkeypatch.delenv("SYNTHGUARD_DATABASE_URL", raising=False)
    return Home(root)


@pytest.fixture(scope="session")
def fixture_cache(tmp_path_factory) -> Path:
    """A read-only dataset cache holding the registry datasets that tests/fixtures has byte for byte: the
    detector's ``c2pa-photos`` are the C2PA samples."""
    cache = tmp_path_factory.mktemp("datasets")
    photos = DATASETS["c2pa-photos"]
    (cache / photos.target).mkdir()
    for file in photos.files:
        shutil.copyfile(INTEROP / Path(file.name).name, cache / file.name)
        (cache / file.name).chmod(0o444)
    for folder in (cache / photos.target, cache):
        folder.chmod(0o555)
    return cache


@pytest.fixture(autouse=True)
def offline_datasets(fixture_cache, monkeypatch) -> None:
    """No test downloads: the dataset cache is ``fixture_cache`` and MNIST is the committed subset."""
    monkeypatch.setenv("SYNTHGUARD_DATA", str(fixture_cache))
    monkeypatch.setenv("SYNTHGUARD_MNIST", str(MNIST_SUBSET))
    monkeypatch.setenv("SYNTHGUARD_OFFLINE", "1")


@pytest.fixture
def full_datasets(monkeypatch) -> Path:
    """The environment's cache of the full datasets (``SYNTHGUARD_DATA``: CI sets it to its shared copy), made the
    dataset cache of the test, with MNIST read from it; the test is skipped without one."""
    if not ENVIRONMENT_DATA or not Path(ENVIRONMENT_DATA).is_dir():
        pytest.skip("needs the full datasets: set SYNTHGUARD_DATA to a dataset cache that holds them")
    monkeypatch.setenv("SYNTHGUARD_DATA", ENVIRONMENT_DATA)
    monkeypatch.delenv("SYNTHGUARD_MNIST")
    return Path(ENVIRONMENT_DATA)


@pytest.fixture
def identity(home):
    return IdentityStore(home).init("SynthGuard test signer", "SynthGuard tests")


@pytest.fixture
def pixels() -> np.ndarray:
    return procedural_image(384, 320, seed=3)


@pytest.fixture
def png(tmp_path, pixels) -> Path:
    path = tmp_path / "input.png"
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture
def jpg(tmp_path, pixels) -> Path:
    path = tmp_path / "input.jpg"
    Image.fromarray(pixels).save(path, quality=90)
    return path
