"""Policies: rules as data, validated on load (errors name the key), the shipped examples, check and explain."""

import pytest
from helpers.files import REPO

from synthguard.errors import InputError
from synthguard.policy import DEFAULT_POLICY, check_policy, load_policy


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


# ------------------------------------------------------------------------------------------- newsroom policies
import json  # noqa: E402

from click.testing import CliRunner  # noqa: E402

from synthguard.cli import main  # noqa: E402

SHIPPED = sorted((REPO / "policies").glob("*.yaml"))


def test_shipped_policies_validate_and_explain():
    assert {p.name for p in SHIPPED} >= {"default.yaml", "newsroom-default.yaml", "newsroom-strict.yaml",
                                         "platform-labeling.yaml"}
    hashes = set()
    for path in SHIPPED:
        policy = load_policy(path)
        hashes.add(policy.sha256)
        text = policy.explain()
        assert policy.name in text and "Desk actions" in text and "error" in text
        result = CliRunner().invoke(main, ["policy", "check", str(path), "--json"])
        assert result.exit_code == 0 and json.loads(result.stdout)["valid"]
    assert len(hashes) == len(SHIPPED)


@pytest.mark.parametrize(("text", "named"), [
    ("version: 1\nactions:\n  unknown: publsh\n", "actions.unknown"),
    ("version: 1\nlabeling:\n  ai_source_types: [deepFake]\n", "labeling.ai_source_types"),
    ("version: 1\ndetection:\n  watermark_max_p_value: 0.01\n", "detection.watermark_max_p_value"),
    ("version: 2\n", "version"),
    ("version: 1\ntrust:\n  anchors: [missing-root.pem]\n", "missing-root.pem"),
])
def test_policy_check_names_the_bad_key(tmp_path, text, named):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    result = CliRunner().invoke(main, ["policy", "check", str(path)])
    assert result.exit_code == 2 and named in result.stderr and "Traceback" not in result.output


def test_check_policy_needs_its_anchor_files(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("version: 1\ntrust:\n  anchors: [root.pem, missing.pem]\n")
    (tmp_path / "root.pem").write_text("not checked here: only that the file is there")
    assert load_policy(path).anchor_files() == (tmp_path / "root.pem", tmp_path / "missing.pem")
    with pytest.raises(InputError, match="file\\(s\\) not found: missing.pem$"):
        check_policy(path)
    (tmp_path / "missing.pem").write_text("")
    assert check_policy(path).name == "default"


def test_policy_explain_command():
    result = CliRunner().invoke(main, ["policy", "explain", str(REPO / "policies" / "newsroom-strict.yaml")])
    assert result.exit_code == 0 and "likely-synthetic   -> reject" in result.stdout
