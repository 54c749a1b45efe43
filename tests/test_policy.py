import pytest

from conftest import REPO
from synthguard.errors import InputError
from synthguard.policy import DEFAULT_POLICY, load_policy


def test_default_yaml_is_the_default_policy():
    loaded = load_policy(REPO / "policies" / "default.yaml")
    assert loaded.model_dump() == DEFAULT_POLICY.model_dump()


def test_unknown_key_is_named(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("version: 1\ntrust:\n  own_identiy: true\n")
    with pytest.raises(InputError, match="trust.own_identiy"):
        load_policy(bad)


def test_not_yaml(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("version: [1\n")
    with pytest.raises(InputError, match="not valid YAML"):
        load_policy(bad)
