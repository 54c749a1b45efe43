import pytest

from synthguard.core.torch_utils import read_training_record
from synthguard.errors import InputError


def test_a_training_record_gives_its_version_or_says_there_is_none(tmp_path):
    assert read_training_record(tmp_path) == (None, "unknown")
    (tmp_path / "training.json").write_text('{"steps": 3}')
    assert read_training_record(tmp_path) == ({"steps": 3}, "1")
    (tmp_path / "training.json").write_text('{"version": 2}')
    assert read_training_record(tmp_path) == ({"version": 2}, "2")
    (tmp_path / "training.json").write_text("[1, 2]")
    assert read_training_record(tmp_path) == ([1, 2], "unknown")


def test_an_unreadable_training_record_is_an_input_error(tmp_path):
    (tmp_path / "training.json").write_text("{not json")
    with pytest.raises(InputError, match="unreadable training.json"):
        read_training_record(tmp_path)
