"""Where the test data lives: everything a test reads is under tests/fixtures (see each folder's README)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
INTEROP = FIXTURES / "c2pa"  # third-party C2PA samples and what the reference reader says of them (expected.json)
MNIST_SUBSET = FIXTURES / "mnist" / "mnist-subset.npz"  # the first 2,000 train and test digits


def files_in(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}
