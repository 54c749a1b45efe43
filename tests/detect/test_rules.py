"""A policy applied to signals: its signer list, its AI source types, its watermark bounds, its trust anchors."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization

from synthguard.detect import rules
from synthguard.detect.signals import ImageWatermarkSignal, TextWatermarkSignal
from synthguard.policy import DEFAULT_POLICY, load_policy
from synthguard.provenance.identity import IdentityStore, TrustSource
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
    default = rules.trust_anchors(DEFAULT_POLICY, home)
    assert len(default.of_source(TrustSource.OWN_IDENTITY)) == 1  # this machine's own identity
    assert len(default.of_source(TrustSource.C2PA_TRUST_LIST)) == 30  # and the shipped C2PA Trust List
    assert default.tsa_list is not None and len(default.tsa_list.certificates) == 22
    path = tmp_path / "p.yaml"
    other = IdentityStore(type(home)(tmp_path / "other")).init("Other", "Other org")
    (tmp_path / "other-root.pem").write_bytes(other.anchor.public_bytes(serialization.Encoding.PEM))
    path.write_text("version: 1\ntrust:\n  own_identity: false\n  c2pa_trust_list: false\n"
                    "  anchors: [other-root.pem]\n")
    anchors = rules.trust_anchors(load_policy(path), home)
    assert [c.subject for c in anchors.certificates] == [other.anchor.subject]
    assert anchors.sources == (TrustSource.ANCHORS,)
    assert rules.in_force(None) is DEFAULT_POLICY


def test_capture_claims_count_only_from_named_capture_signers(tmp_path):
    from helpers.files import REPO

    from synthguard.detect.fusion import CAPTURE_NOT_VOUCHED

    def capture(state=ProvenanceState.TRUSTED, source_type="digitalCapture", signer="SynthGuard local identity (me)",
                issuer="SynthGuard (self-issued)"):
        return ProvenanceSignal(present=True, state=state, signer=signer, issuer=issuer,
                                digital_source_type=URI + source_type,
                                actions=(ActionRecord("c2pa.created", URI + source_type),), ai_generated=False)

    newsroom = load_policy(REPO / "policies" / "newsroom-default.yaml")
    for policy in (DEFAULT_POLICY, newsroom):  # no capture source named: this machine's own identity included
        marked = rules.apply_to_provenance(policy, capture())
        assert marked.state is ProvenanceState.TRUSTED and marked.informational == (CAPTURE_NOT_VOUCHED,)
        assert marked.failures == ()  # a note on the claim, not a validation failure
        for other in ("negativeFilm", "positiveFilm", "print", "computationalCapture"):
            assert CAPTURE_NOT_VOUCHED in rules.apply_to_provenance(policy, capture(source_type=other)).informational
        # Only capture claims of trusted manifests are marked.
        assert rules.apply_to_provenance(policy, capture(source_type="digitalArt")).informational == ()
        assert rules.apply_to_provenance(policy, capture(ProvenanceState.VALID)).informational == ()
    path = tmp_path / "p.yaml"
    path.write_text("version: 1\ntrust:\n  capture_signers: ['Example Camera Co', 'synthguard local identity*']\n")
    named = load_policy(path)
    assert rules.apply_to_provenance(named, capture()).informational == ()  # matched like trust.signers: no case
    assert rules.apply_to_provenance(named, capture(signer="Body cam 7", issuer="Example Camera Co")).informational \
        == ()  # the issuer's organisation matches too
    assert rules.apply_to_provenance(named, capture(signer="Someone", issuer="Org")).informational \
        == (CAPTURE_NOT_VOUCHED,)
    assert rules.capture_signer_allowed(named, None, "example camera co")
    assert not rules.capture_signer_allowed(DEFAULT_POLICY, "Example Camera Co", None)


def _listed_captures(tmp_path, home, names: list[tuple[str, str]]):
    """digitalCapture photos signed by minted identities named like Conforming Products List products, whose CAs
    are on an installed C2PA Trust List."""
    from helpers.trust_lists import ca_of, minted_identity, signed_capture, write_trust_list

    from synthguard.provenance.trustlist import install_trust_lists

    identities = [minted_identity(cn, org) for cn, org in names]
    install_trust_lists(home, write_trust_list(tmp_path / "list", [ca_of(chain) for chain, _ in identities],
                                               entity="Google LLC").parent)
    photos = [signed_capture(tmp_path, chain, key, name=cn) for (cn, _), (chain, key) in zip(names, identities)]
    return photos


def test_a_capture_claim_is_trusted_only_within_the_signers_conforming_product_scope(tmp_path):
    from synthguard.core.home import Home
    from synthguard.detect.context import InspectionContext, inspect_file

    home = Home(tmp_path / "home")
    policy_file = tmp_path / "p.yaml"
    policy_file.write_text("version: 1\ntrust:\n  own_identity: false\n  capture_signers: [Pixel Camera, Snapseed]\n")
    policy = load_policy(policy_file)
    # Pixel Camera is a generator product that may claim captures; Snapseed's entry disallows capturedMedia.
    camera, editor = _listed_captures(tmp_path, home, [("Pixel Camera", "Google LLC"), ("Snapseed", "Google LLC")])
    with InspectionContext.build(home, policy=policy, classifier=False) as context:
        found, scoped = inspect_file(camera, context), inspect_file(editor, context)
    assert found.provenance.trust_source == "c2pa-trust-list" and found.provenance.trust_entity == "Google LLC"
    assert found.provenance.details.product.name == "Pixel Camera"
    assert found.verdict.label.value == "authentic-capture"
    # Named as a capture source or not, a claim outside the product's scope settles nothing.
    assert scoped.provenance.state is ProvenanceState.TRUSTED
    assert "inception:signal_capturedMedia" in scoped.provenance.outside_scope
    assert scoped.verdict.label.value == "unknown"
    assert any("Conforming Products List entry may not claim captured media" in r for r in scoped.verdict.reasons)
    # Not named in trust.capture_signers: a product that may claim captures still settles nothing by itself.
    unnamed = policy.model_copy(update={"trust": policy.trust.model_copy(update={"capture_signers": ()})})
    with InspectionContext.build(home, policy=unnamed, classifier=False) as context:
        assert inspect_file(camera, context).verdict.label.value == "unknown"
