"""MNIST in its distribution format (idx files), written from arrays, for the tests of the idx conversion."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from synthguard.core.datasets import MNIST_IDX


def write_mnist_idx(folder: Path, arrays: dict[str, np.ndarray], *, gzipped: bool = True) -> Path:
    """The four idx files of ``arrays`` (the keys of ``mnist.npz``) in ``folder``, pixels mapped back to the idx
    values that ``read_mnist_idx`` turns into them (v for v <= 128, v + 1 above: 128 is read back as 128)."""
    folder.mkdir(parents=True, exist_ok=True)
    for key, stem in MNIST_IDX.items():
        array = arrays[key].astype(np.uint8)
        if key.endswith("images"):
            array = array + (array > 128).astype(np.uint8)
        data = bytes((0, 0, 8, array.ndim)) + np.array(array.shape, ">i4").tobytes() + array.tobytes()
        if gzipped:
            with gzip.open(folder / f"{stem}.gz", "wb") as handle:
                handle.write(data)
        else:
            (folder / stem).write_bytes(data)
    return folder
