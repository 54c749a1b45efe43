"""Shared fixtures: an isolated SYNTHGUARD_HOME per test, a local identity, small images made on the spot."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synthguard.core.home import Home
from synthguard.core.samples import procedural_image
from synthguard.provenance.identity import IdentityStore

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SYNTHGUARD_SHARED", REPO.parent / "shared"))
INTEROP = SHARED / "interop" / "c2pa"


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch) -> Home:
    """Every test gets its own SYNTHGUARD_HOME: no test reads or writes the user's keys or ledger."""
    root = tmp_path / "sg-home"
    monkeypatch.setenv("SYNTHGUARD_HOME", str(root))
    return Home(root)


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


def files_in(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}
