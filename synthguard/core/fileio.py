"""Atomic output files: a temp file in the destination folder, renamed into place only when complete.

A crash, an error or Ctrl-C leaves either the old state or the finished file, never a partial one. Inputs are never
written: an output that resolves to an input is refused.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from synthguard.errors import Hint, InputError


def check_output_path(output: Path, *, inputs: tuple[Path, ...] = (), overwrite: bool = False) -> Path:
    """Refuse outputs that would clobber an input, an existing file (unless ``overwrite``) or a folder."""
    output = Path(output)
    for src in inputs:
        if output.exists() and src.exists() and os.path.samefile(output, src):
            raise InputError(f"output {output} is the input file; SynthGuard never modifies its inputs")
        if _resolved(output) == _resolved(Path(src)):
            raise InputError(f"output {output} is the input file; SynthGuard never modifies its inputs")
    if output.is_dir():
        raise InputError(f"output {output} is a directory; give a file name")
    if output.exists() and not overwrite:
        raise InputError(f"output {output} already exists", hint=Hint.OVERWRITE)
    if not output.parent.exists():
        raise InputError(f"output folder {output.parent} does not exist")
    return output


def _resolved(path: Path) -> Path:
    """``path.resolve()``, with a symbolic link loop as an input error (Python raises RuntimeError or OSError)."""
    try:
        return path.resolve()
    except (RuntimeError, OSError) as exc:
        raise InputError(f"{path} is a symbolic link loop ({exc.__class__.__name__})") from None


def _default_mode() -> int:
    """0o666 less the process umask: what a plain ``open(path, "w")`` would create."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_output(path: Path, mode: int | None = None, *, overwrite: bool = True) -> Iterator[BinaryIO]:
    """Yield a binary file handle whose contents appear at ``path`` only if the block finishes without error.

    With ``overwrite=False`` the file is published with a hard link, which fails if ``path`` appeared meanwhile
    (another process writing the same output): the loser gets "already exists", nothing is lost. The temp name
    is short, so any name the filesystem accepts for ``path`` works. ``mode`` defaults to the umask's choice
    (or the replaced file's mode).
    """
    path = Path(path)
    if mode is None:
        mode = stat.S_IMODE(path.stat().st_mode) if overwrite and path.exists() else _default_mode()
    try:
        fd, tmp = tempfile.mkstemp(prefix=".sg-", suffix=".part", dir=path.parent)
    except OSError as exc:
        raise InputError(f"{path}: cannot write here ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "w+b") as handle:
            yield handle
            handle.flush()
            os.fchmod(handle.fileno(), mode)
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise InputError(f"output {path} already exists", hint=Hint.OVERWRITE) from None
            except OSError:
                # No hard links on this filesystem: the check-then-rename window is all we can do.
                if path.exists():
                    raise InputError(f"output {path} already exists", hint=Hint.OVERWRITE) from None
                os.replace(tmp, path)
            else:
                os.unlink(tmp)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_atomic(path: Path, data: bytes, mode: int | None = None, *, overwrite: bool = True) -> None:
    try:
        with atomic_output(path, mode=mode, overwrite=overwrite) as handle:
            handle.write(data)
    except OSError as exc:
        raise InputError(f"{path}: cannot write ({exc.strerror or exc})") from None


def write_private(path: Path, data: bytes) -> None:
    """Write a secret (a private key) so that it is never readable by others, not even for an instant."""
    path = Path(path)
    # mkstemp creates the file 0600 under a name no other process uses.
    fd, tmp = tempfile.mkstemp(prefix=".sg-key-", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
