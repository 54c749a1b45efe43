"""A policy applied to signals: its signer list, its AI source types, its watermark bounds, its trust anchors."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization

from synthguard.detect import rules
from synthguard.detect.signals import ImageWatermarkSignal, TextWatermarkSignal
from synthguard.policy import DEFAULT_POLICY, load_policy
from synthguard.provenance.identity import IdentityStore
from synthguard.provenance.reading import ActionRecord, ProvenanceSignal, ProvenanceState

URI = "http://cv.iptc.org/newscodes/digitalsourcetype/"


def test_signer_list_and_source_types(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("version: 1\ntrust:\n  signers: ['Example Wire*']\nlabeling:\n  ai_source_types: "
                    "[algorithmicMedia]\n")
    policy = load_policy(path)
    trusted = ProvenanceSignal(present=True, state=ProvenanceState.TRUSTED, signer="Someone Else", issuer="Org",
                               digital_source_type=URI + "algorithmicMedia",
                               actions=(ActionRecord("c2pa.created", URI + "algorithmicMedia"),), ai_generated=False)
    applied = rules.apply_to_provenance(policy, trusted)
    assert applied.state is ProvenanceState.VALID and "policy.signerNotListed" in applied.failures
    assert applied.ai_generated is True  # algorithmicMedia needs a label under this policy
    listed = rules.apply_to_provenance(policy, ProvenanceSignal(present=True, state=ProvenanceState.TRUSTED,
                                                                signer="Example Wire Photo Desk"))
    assert listed.state is ProvenanceState.TRUSTED
    assert rules.signer_allowed(policy, None, "example wire desk") and not rules.signer_allowed(policy, "x", None)
    # The default policy: trainedAlgorithmicMedia is AI, algorithmicMedia is not; any trusted signer counts.
    assert rules.apply_to_provenance(DEFAULT_POLICY, trusted) == trusted


def test_watermark_bounds(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("version: 1\ndetection:\n  watermark_max_p_value: 1.0e-12\n  text_watermark_max_p_value: 1.0e-5\n")
    policy = load_policy(path)
    weak = ImageWatermarkSignal(True, "io.synthguard.tilemark.4", "900000000001", 1e-9, 0, True)
    assert rules.apply_to_watermark(policy, weak) == ImageWatermarkSignal(False, "io.synthguard.tilemark.4",
                                                                          p_value=1e-9)
    strong = ImageWatermarkSignal(True, "io.synthguard.tilemark.4", "900000000001", 1e-20, 0, True)
    assert rules.apply_to_watermark(policy, strong) is strong
    text = TextWatermarkSignal(True, "io.synthguard.synthid-text.1", 1e-4, True, key_id="k", z=4.0, tokens=60)
    demoted = rules.apply_to_watermark(policy, text)
    assert not demoted.detected and demoted.ai_declared is None and demoted.key_id == "k"
    assert rules.apply_to_watermark(DEFAULT_POLICY, text) is text  # 1e-4 <= the default 1e-3
    assert rules.apply_to_watermark(policy, None) is None


def test_trust_anchors_follow_the_policy(home, identity, tmp_path):
    assert len(rules.trust_anchors(DEFAULT_POLICY, home)) == 1  # this machine's own identity
    path = tmp_path / "p.yaml"
    other = IdentityStore(type(home)(tmp_path / "other")).init("Other", "Other org")
    (tmp_path / "other-root.pem").write_bytes(other.anchor.public_bytes(serialization.Encoding.PEM))
    path.write_text("version: 1\ntrust:\n  own_identity: false\n  anchors: [other-root.pem]\n")
    anchors = rules.trust_anchors(load_policy(path), home)
    assert [c.subject for c in anchors.certificates] == [other.anchor.subject]
    assert rules.in_force(None) is DEFAULT_POLICY
