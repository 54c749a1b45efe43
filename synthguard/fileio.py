"""Atomic output files: a temp file in the destination folder, renamed into place only when complete.

A crash, an error or Ctrl-C leaves either the old state or the finished file, never a partial one. Inputs are never
written: an output that resolves to an input is refused.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from synthguard.errors import InputError


def check_output_path(output: Path, *, inputs: tuple[Path, ...] = (), overwrite: bool = False) -> Path:
    """Refuse outputs that would clobber an input, an existing file (unless ``overwrite``) or a folder."""
    output = Path(output)
    for src in inputs:
        if output.exists() and src.exists() and os.path.samefile(output, src):
            raise InputError(f"output {output} is the input file; SynthGuard never modifies its inputs")
        if output.resolve() == Path(src).resolve():
            raise InputError(f"output {output} is the input file; SynthGuard never modifies its inputs")
    if output.is_dir():
        raise InputError(f"output {output} is a directory; give a file name")
    if output.exists() and not overwrite:
        raise InputError(f"output {output} already exists (use --force to replace it)")
    if not output.parent.exists():
        raise InputError(f"output folder {output.parent} does not exist")
    return output


@contextlib.contextmanager
def atomic_output(path: Path, mode: int = 0o644) -> Iterator[BinaryIO]:
    """Yield a binary file handle whose contents appear at ``path`` only if the block finishes without error."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w+b") as handle:
            yield handle
            handle.flush()
            os.fchmod(handle.fileno(), mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    with atomic_output(path, mode=mode) as handle:
        handle.write(data)


def write_private(path: Path, data: bytes) -> None:
    """Write a secret (a private key) so that it is never readable by others, not even for an instant."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.part")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
