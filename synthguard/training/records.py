"""What a training run leaves beside its weights: ``training.json``, the record of the run, written atomically.

Every trainer writes its record through ``write_training_record``, so a crash leaves the old record or the new one,
never half of one. The record's fields are the trainer's (the command or call, the settings, the history).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from synthguard.core.fileio import write_atomic
from synthguard.errors import Hint, InputError

TRAINING_RECORD = "training.json"


def write_training_record(folder: str | os.PathLike, record: Mapping[str, Any]) -> Path:
    """Write ``record`` as ``folder/training.json`` (indented JSON; values JSON does not know, such as paths, as
    their ``str``), creating ``folder`` if needed; returns the file's path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / TRAINING_RECORD
    write_atomic(path, (json.dumps(record, indent=2, default=str) + "\n").encode())
    return path


def read_training_record(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The record in ``folder`` (None when it has none); an unreadable one is an ``InputError``."""
    path = Path(folder) / TRAINING_RECORD
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the training record {str(path)!r}: {' '.join(str(exc).split())}") from exc


def check_output_folder(folder: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Refuse to train into a folder that exists and holds files, unless ``overwrite``; returns it as a Path."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder} is a file, not a folder for the model")
    if folder.is_dir() and any(folder.iterdir()) and not overwrite:
        raise InputError(f"{folder} exists and is not empty", hint=Hint.OVERWRITE)
    return folder
