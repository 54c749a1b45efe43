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


# ------------------------------------------------------------------------------------------- newsroom policies
import json  # noqa: E402

from click.testing import CliRunner  # noqa: E402

from synthguard.cli import main  # noqa: E402
from synthguard.detect.watermark_signal import WatermarkSignal  # noqa: E402
from synthguard.provenance.reading import ActionRecord, ProvenanceSignal, ProvenanceState  # noqa: E402

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


def test_signer_list_and_source_types_and_watermark_bound(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("version: 1\ntrust:\n  signers: ['Example Wire*']\nlabeling:\n  ai_source_types: "
                    "[algorithmicMedia]\ndetection:\n  watermark_max_p_value: 1.0e-12\n")
    policy = load_policy(path)
    uri = "http://cv.iptc.org/newscodes/digitalsourcetype/"
    trusted = ProvenanceSignal(present=True, state=ProvenanceState.TRUSTED, signer="Someone Else", issuer="Org",
                               digital_source_type=uri + "algorithmicMedia",
                               actions=(ActionRecord("c2pa.created", uri + "algorithmicMedia"),), ai_generated=False)
    applied = policy.apply_provenance(trusted)
    assert applied.state is ProvenanceState.VALID and "policy.signerNotListed" in applied.failures
    assert applied.ai_generated is True  # algorithmicMedia needs a label under this policy
    listed = policy.apply_provenance(ProvenanceSignal(present=True, state=ProvenanceState.TRUSTED,
                                                      signer="Example Wire Photo Desk"))
    assert listed.state is ProvenanceState.TRUSTED
    weak = WatermarkSignal(True, "io.synthguard.tilemark.4", "900000000001", 1e-9, 0, True)
    assert not policy.apply_watermark(weak).detected
    strong = WatermarkSignal(True, "io.synthguard.tilemark.4", "900000000001", 1e-20, 0, True)
    assert policy.apply_watermark(strong).detected


def test_policy_explain_command():
    result = CliRunner().invoke(main, ["policy", "explain", str(REPO / "policies" / "newsroom-strict.yaml")])
    assert result.exit_code == 0 and "likely-synthetic   -> reject" in result.stdout
