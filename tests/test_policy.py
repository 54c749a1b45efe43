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
    ("version: 1\nactions:\n  ai-declred: label-ai\n", "actions.ai-declred"),  # unknown labels stay errors
    ("version: 1\nactions:\n  ai-declared: label\n", "actions.ai-declared"),
    ("version: 1\ntrust:\n  capture_signer: [x]\n", "trust.capture_signer"),
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


# ------------------------------------------------------------------------------ ai-declared and capture signers
def test_ai_declared_has_a_desk_action_in_every_shipped_policy():
    expected = {"default": "label-ai", "newsroom-default": "label-ai", "platform-labeling": "label-ai",
                "newsroom-strict": "human-review"}
    for path in SHIPPED:
        policy = load_policy(path)
        action = policy.actions.for_label("ai-declared").value
        assert action == expected[policy.name] and action != "reject"  # never reject on an unsigned declaration
        assert f"ai-declared        -> {action}" in policy.explain()
        assert "anyone with SynthGuard can embed" in policy.explain()
    assert DEFAULT_POLICY.actions.for_label("ai-declared").value == "label-ai"
    explained = CliRunner().invoke(main, ["policy", "explain", str(REPO / "policies" / "newsroom-strict.yaml")])
    assert explained.exit_code == 0 and "ai-declared        -> human-review" in explained.stdout


def test_capture_signers_load_and_explain(tmp_path):
    assert DEFAULT_POLICY.trust.capture_signers == ()
    assert "a capture claim never makes an authentic capture" in DEFAULT_POLICY.explain()
    path = tmp_path / "p.yaml"
    path.write_text("version: 1\ntrust:\n  capture_signers: ['Example Camera Co', 'Wire Photo*']\n"
                    "actions:\n  ai-declared: human-review\n")
    policy = load_policy(path)
    assert policy.trust.capture_signers == ("Example Camera Co", "Wire Photo*")
    assert policy.actions.for_label("ai-declared").value == "human-review"
    assert "authentic capture only from: Example Camera Co, Wire Photo*" in policy.explain()
    assert policy.sha256 != DEFAULT_POLICY.sha256


def test_policy_check_accepts_ai_declared_and_capture_keys(tmp_path):
    ok = tmp_path / "ok.yaml"
    ok.write_text("version: 1\ntrust:\n  capture_signers: [x]\nactions:\n  ai-declared: reject\n")
    assert CliRunner().invoke(main, ["policy", "check", str(ok)]).exit_code == 0
