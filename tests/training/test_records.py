"""The training record: one atomic writer, a reader, and the output-folder check every trainer makes first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthguard.errors import Hint, InputError
from synthguard.training.records import (
    TRAINING_RECORD,
    check_output_folder,
    read_training_record,
    write_training_record,
)


def test_write_then_read_round_trips_and_leaves_no_temp_file(tmp_path):
    folder = tmp_path / "new" / "model"
    path = write_training_record(folder, {"command": "x", "losses": (0.5, 0.25), "data": Path("a/b.npz")})
    assert path == folder / TRAINING_RECORD
    assert read_training_record(folder) == {"command": "x", "losses": [0.5, 0.25], "data": "a/b.npz"}
    assert [p.name for p in folder.iterdir()] == [TRAINING_RECORD]
    write_training_record(folder, {"command": "y"})  # replaces the old record whole
    assert json.loads(path.read_text()) == {"command": "y"}


def test_read_is_none_without_a_record_and_refuses_a_broken_one(tmp_path):
    assert read_training_record(tmp_path) is None
    (tmp_path / TRAINING_RECORD).write_text("{not json")
    with pytest.raises(InputError, match="training record"):
        read_training_record(tmp_path)


def test_output_folder_check(tmp_path):
    assert check_output_folder(tmp_path / "absent") == tmp_path / "absent"
    (tmp_path / "empty").mkdir()
    check_output_folder(tmp_path / "empty")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "config.json").write_text("{}")
    with pytest.raises(InputError, match="not empty") as refused:
        check_output_folder(tmp_path / "full")
    assert refused.value.hint is Hint.OVERWRITE and "--" not in str(refused.value)  # no CLI flag in the message
    check_output_folder(tmp_path / "full", overwrite=True)
    with pytest.raises(InputError, match="is a file"):
        check_output_folder(tmp_path / "full" / "config.json", overwrite=True)
