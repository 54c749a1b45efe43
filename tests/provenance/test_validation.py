"""C2PA validation codes in four kinds (integrity, credential, trust, not checked): only integrity is tampering."""

import json

import pytest
from helpers.files import INTEROP

from synthguard.provenance.identity import TrustAnchors
from synthguard.provenance.reading import ProvenanceState, read_provenance, signal_from_store
from synthguard.provenance.validation import CODES, ValidationKind, ValidationKinds, classify, explain, meaning

K = ValidationKind

# The table of the reference (real-world-signals.md, "C2PA validation: four kinds of result"), code by code.
REFERENCE = {
    "assertion.dataHash.mismatch": K.INTEGRITY, "assertion.bmffHash.mismatch": K.INTEGRITY,
    "assertion.boxesHash.mismatch": K.INTEGRITY, "assertion.collectionHash.mismatch": K.INTEGRITY,
    "assertion.hashedURI.mismatch": K.INTEGRITY, "ingredient.hashedURI.mismatch": K.INTEGRITY,
    "claimSignature.mismatch": K.INTEGRITY, "assertion.missing": K.INTEGRITY, "assertion.undeclared": K.INTEGRITY,
    "claim.hardBindings.missing": K.INTEGRITY, "claim.cbor.invalid": K.INTEGRITY,
    "assertion.cbor.invalid": K.INTEGRITY, "assertion.json.invalid": K.INTEGRITY,
    "manifest.multipleParents": K.INTEGRITY,
    "signingCredential.expired": K.CREDENTIAL, "signingCredential.revoked": K.CREDENTIAL,
    "signingCredential.invalid": K.CREDENTIAL, "claimSignature.outsideValidity": K.CREDENTIAL,
    "timeStamp.mismatch": K.CREDENTIAL, "timeStamp.outsideValidity": K.CREDENTIAL,
    "signingCredential.untrusted": K.TRUST, "timeStamp.untrusted": K.TRUST,
    "cawg.x509.credential.untrusted": K.TRUST,
    "signingCredential.ocsp.skipped": K.NOT_CHECKED, "cawg.ica.did_unavailable": K.NOT_CHECKED,
    "manifest.inaccessible": K.NOT_CHECKED,
}


@pytest.mark.parametrize("code,kind", sorted(REFERENCE.items()))
def test_the_reference_codes_have_its_kinds(code, kind):
    assert classify(code) is kind
    assert meaning(code) and explain(code) == f"{code} ({meaning(code)})"


def test_codes_beyond_the_reference_follow_the_spec():
    # c2pa-rs reports revocation as signingCredential.ocsp.revoked; an identity assertion's failures say the
    # named identity is not proven, never that the content changed (the claim's own hashes cover the assertion).
    assert classify("signingCredential.ocsp.revoked") is K.CREDENTIAL
    assert classify("cawg.x509.signature.mismatch") is K.CREDENTIAL
    assert classify("cawg.x509.credential.expired") is K.CREDENTIAL
    assert classify("signingCredential.ocsp.inaccessible") is K.NOT_CHECKED
    assert classify("algorithm.unsupported") is K.NOT_CHECKED
    assert classify("ingredient.manifest.mismatch") is K.INTEGRITY
    assert classify("policy.signerNotListed") is K.TRUST  # SynthGuard's own (detect.rules)
    assert not [code for code, (kind, _) in CODES.items() if code.startswith("cawg.") and kind is K.INTEGRITY]


def test_an_unknown_code_is_unclassified_with_no_meaning():
    assert classify("com.example.brandNew") is K.UNCLASSIFIED and classify("general.error") is K.UNCLASSIFIED
    assert meaning("com.example.brandNew") is None and explain("com.example.brandNew") == "com.example.brandNew"


def test_kinds_keep_the_reported_order_without_repeats():
    kinds = ValidationKinds.of(["signingCredential.untrusted", "assertion.dataHash.mismatch", "x.y",
                                "signingCredential.untrusted", "signingCredential.expired", "manifest.inaccessible",
                                "claimSignature.mismatch"])
    assert kinds == ValidationKinds(integrity=("assertion.dataHash.mismatch", "claimSignature.mismatch"),
                                    credential=("signingCredential.expired",),
                                    trust=("signingCredential.untrusted",), not_checked=("manifest.inaccessible",),
                                    unclassified=("x.y",))


# ------------------------------------------------------------------- a reader's JSON, by hand, into a signal
def store(state, failures=(), *, successes=("claimSignature.validated", "assertion.dataHash.match"),
          informational=(), ingredient_failures=()) -> dict:
    """What ``reader.json()`` gives for one manifest signed by "Camera" (issuer "Maker")."""
    def items(codes):
        return [{"code": code, "url": "self#jumbf=/c2pa/m/c2pa.signature", "explanation": code} for code in codes]
    results = {"activeManifest": {"success": items(successes), "informational": items(informational),
                                  "failure": items(failures)}}
    if ingredient_failures:
        results["ingredientDeltas"] = [{"uri": "self#jumbf=/c2pa/m/c2pa.assertions/c2pa.ingredient.v3",
                                        "validationDeltas": {"failure": items(ingredient_failures)}}]
    manifest = {"label": "m", "title": "photo.jpg", "signature_info": {"common_name": "Camera", "issuer": "Maker"},
                "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": [{
                    "action": "c2pa.created",
                    "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"}]}}]}
    return {"active_manifest": "m", "manifests": {"m": manifest}, "validation_state": state,
            "validation_results": results}


def decide(signal):
    from synthguard.detect.fusion import decide as fuse
    return fuse(signal)


EXPIRED = "the signature's credential no longer holds (signingCredential.expired); the content hashes match"


def test_an_expired_credential_alone_is_a_finding_not_tampering():
    from synthguard.detect.fusion import VerdictLabel

    # With the camera's root as one of our anchors: c2pa says Invalid only because the certificate expired.
    signal = signal_from_store(store("Invalid", ["signingCredential.expired"],
                                     successes=("signingCredential.trusted", "assertion.dataHash.match")),
                               source="embedded")
    assert signal.state is ProvenanceState.VALID and signal.c2pa_state == "Invalid"
    assert signal.credential_failures == ("signingCredential.expired",) and signal.integrity_failures == ()
    verdict = decide(signal)
    assert verdict.label is VerdictLabel.UNKNOWN and verdict.confidence is None
    assert verdict.reasons[:2] == ("the manifest is not authenticated: signed by Camera (Maker), declares "
                                   "digitalCapture; treat its claims as unverified", EXPIRED)
    # An untrusted camera whose certificate has expired: both findings, still not tampered.
    signal = signal_from_store(store("Invalid", ["signingCredential.untrusted", "signingCredential.expired"]),
                               source="embedded")
    assert signal.state is ProvenanceState.VALID
    verdict = decide(signal)
    assert verdict.label is VerdictLabel.UNKNOWN
    assert verdict.reasons[:2] == ("intact manifest, but the signer is not on your trust list: signed by Camera "
                                   "(Maker), declares digitalCapture; treat its claims as unverified", EXPIRED)


def test_a_revoked_credential_is_not_trusted_and_not_tampered():
    from synthguard.detect.fusion import VerdictLabel

    signal = signal_from_store(store("Invalid", ["signingCredential.ocsp.revoked"],
                                     successes=("signingCredential.trusted",)), source="embedded")
    assert signal.state is ProvenanceState.VALID
    verdict = decide(signal)
    assert verdict.label is VerdictLabel.UNKNOWN
    assert ("the signature's credential no longer holds (signingCredential.ocsp.revoked); the content hashes match"
            in verdict.reasons)


def test_changed_content_is_tampered_whatever_else_is_wrong():
    from synthguard.detect.fusion import VerdictLabel

    signal = signal_from_store(store("Invalid", ["signingCredential.untrusted", "signingCredential.expired",
                                                 "assertion.dataHash.mismatch"]), source="embedded")
    assert signal.state is ProvenanceState.INVALID
    assert signal.integrity_failures == ("assertion.dataHash.mismatch",)
    verdict = decide(signal)
    assert verdict.label is VerdictLabel.TAMPERED and verdict.confidence == 1.0
    assert verdict.reasons[:2] == (
        "the C2PA manifest fails validation (assertion.dataHash.mismatch): content or manifest was changed after "
        "signing, or is malformed",
        "the signature's credential no longer holds either (signingCredential.expired)")


def test_untrusted_and_unchecked_codes_leave_the_manifest_valid():
    from synthguard.detect.fusion import VerdictLabel

    # c2pa says Invalid for an identity whose DID document cannot be fetched offline: not a change.
    signal = signal_from_store(store("Invalid", ["signingCredential.untrusted", "cawg.ica.did_unavailable"]),
                               source="embedded")
    assert signal.state is ProvenanceState.VALID and signal.unchecked == ("cawg.ica.did_unavailable",)
    verdict = decide(signal)
    assert verdict.label is VerdictLabel.UNKNOWN
    assert ("could not be checked here: cawg.ica.did_unavailable (the named identity's DID document could not be "
            "fetched)") in verdict.reasons
    signal = signal_from_store(store("Valid", ["signingCredential.untrusted", "cawg.x509.credential.untrusted"]),
                               source="embedded")
    assert signal.state is ProvenanceState.VALID
    assert signal.trust_failures == ("signingCredential.untrusted", "cawg.x509.credential.untrusted")
    assert ("cawg.x509.credential.untrusted (the named identity (CAWG) is not on your trust list): what it vouches "
            "for is unverified") in decide(signal).reasons


def test_an_unknown_code_is_not_authenticated_and_not_tampering():
    from synthguard.detect.fusion import VerdictLabel

    for state in ("Valid", "Trusted", "Invalid"):
        signal = signal_from_store(store(state, ["com.example.brandNew"], successes=("signingCredential.trusted",)),
                                   source="embedded")
        assert signal.state is ProvenanceState.VALID and signal.unclassified == ("com.example.brandNew",)
        verdict = decide(signal)
        assert verdict.label is VerdictLabel.UNKNOWN
        assert ("validation codes of no known kind (com.example.brandNew): the manifest is not authenticated, but "
                "they are not taken as proof of tampering") in verdict.reasons


def test_c2pa_state_is_never_upgraded():
    def state(*args, **kw):
        return signal_from_store(store(*args, **kw), source="embedded").state

    assert state("Valid") is ProvenanceState.VALID  # no anchor of ours trusts the signer
    assert state("Valid", successes=("signingCredential.trusted",)) is ProvenanceState.TRUSTED
    assert state("Trusted", informational=("signingCredential.ocsp.skipped",)) is ProvenanceState.TRUSTED
    assert state("Invalid", successes=()) is ProvenanceState.INVALID  # invalid and no code: nothing to weigh
    assert state("Invalid", ["timeStamp.untrusted"], successes=("signingCredential.trusted",)) \
        is ProvenanceState.VALID


def test_a_ledger_recovery_sets_aside_only_the_data_hash():
    unbound = frozenset({"assertion.dataHash.mismatch"})
    trusted = ("signingCredential.trusted", "claimSignature.validated")
    signal = signal_from_store(store("Invalid", ["assertion.dataHash.mismatch"], successes=trusted),
                               source="ledger", set_aside=unbound)
    assert signal.state is ProvenanceState.TRUSTED and signal.failures == () and signal.c2pa_state == "Invalid"
    signal = signal_from_store(store("Invalid", ["assertion.dataHash.mismatch", "signingCredential.expired"],
                                     successes=trusted), source="ledger", set_aside=unbound)
    assert signal.state is ProvenanceState.VALID and signal.credential_failures == ("signingCredential.expired",)
    signal = signal_from_store(store("Invalid", ["assertion.dataHash.mismatch", "claimSignature.mismatch"]),
                               source="ledger", set_aside=unbound)
    assert signal.state is ProvenanceState.INVALID and signal.integrity_failures == ("claimSignature.mismatch",)


def test_broken_ingredients_are_shown_never_dropped():
    from synthguard.detect.signals import Findings, describe_provenance

    signal = signal_from_store(store("Valid", ["signingCredential.untrusted"],
                                     ingredient_failures=["assertion.dataHash.mismatch",
                                                          "signingCredential.untrusted"]), source="embedded")
    assert signal.state is ProvenanceState.VALID  # an ingredient's problem is the earlier asset's
    line = ("ingredient manifests report: assertion.dataHash.mismatch (integrity), signingCredential.untrusted "
            "(trust); they concern the earlier assets this file was made from, not this file's own manifest")
    assert line in describe_provenance(signal)
    verdict = decide(signal)
    assert line in verdict.reasons
    findings = Findings.of(signal, (), verdict.reasons)
    assert (*findings.evidence, *findings.reasons).count(line) == 1


def test_the_json_carries_the_kinds_and_reads_back():
    from synthguard.detect.signals import provenance_from_dict

    signal = signal_from_store(store("Invalid", ["signingCredential.untrusted", "signingCredential.expired",
                                                 "cawg.ica.did_unavailable", "x.y"],
                                     informational=("signingCredential.ocsp.skipped", "timeStamp.untrusted")),
                               source="embedded")
    data = json.loads(json.dumps(signal.to_dict()))
    assert data["failures"] == ["signingCredential.untrusted", "signingCredential.expired",
                                "cawg.ica.did_unavailable", "x.y"]  # every failure code, as before
    assert data["integrity_failures"] == [] and data["credential_failures"] == ["signingCredential.expired"]
    assert data["trust_failures"] == ["signingCredential.untrusted"]
    assert data["unchecked"] == ["cawg.ica.did_unavailable", "signingCredential.ocsp.skipped"]
    assert data["unclassified"] == ["x.y"]
    assert data["informational"] == ["signingCredential.ocsp.skipped", "timeStamp.untrusted"]
    assert data["c2pa_state"] == "Invalid" and data["state"] == "valid"
    assert provenance_from_dict(data) == signal
    # A verify line written before these fields existed still reads back.
    for name in ("informational", "c2pa_state", "integrity_failures", "credential_failures", "trust_failures",
                 "unchecked", "unclassified"):
        del data[name]
    old = provenance_from_dict(data)
    assert old.informational == () and old.c2pa_state is None and old.failures == signal.failures


# ----------------------------------------------------------------------- every C2PA file of tests/fixtures/c2pa
# file: (c2pa's state or reader error, our state, label, integrity, credential, trust, unchecked)
FIXTURE_TABLE = {
    "C.jpg": ("Valid", "valid", "unknown", (), (), ("signingCredential.untrusted",),
              ("signingCredential.ocsp.skipped",)),
    "CA.jpg": ("Valid", "valid", "unknown", (), (), ("signingCredential.untrusted",),
               ("signingCredential.ocsp.skipped",)),
    "CACA.jpg": ("Valid", "valid", "unknown", (), (), ("signingCredential.untrusted",),
                 ("signingCredential.ocsp.skipped",)),
    "CACAE-uri-CA.jpg": ("Valid", "valid", "unknown", (), (), ("signingCredential.untrusted",),
                         ("signingCredential.ocsp.skipped",)),
    "boxhash.jpg": ("Valid", "valid", "unknown", (), (), ("signingCredential.untrusted",),
                    ("signingCredential.ocsp.skipped",)),
    "adobe_connected_identities.jpg": ("Invalid", "valid", "unknown", (), (), ("signingCredential.untrusted",),
                                       ("cawg.ica.did_unavailable",)),
    "E-sig-CA.jpg": ("Invalid", "invalid", "tampered", ("claimSignature.mismatch",), (),
                     ("signingCredential.untrusted",), ("signingCredential.ocsp.skipped",)),
    "XCA.jpg": ("Invalid", "invalid", "tampered", ("assertion.dataHash.mismatch",), (),
                ("signingCredential.untrusted",), ("signingCredential.ocsp.skipped",)),
    "cloud.jpg": ("Remote", "error", "unknown", (), (), (), ()),
    "prerelease.jpg": ("Other", "error", "unknown", (), (), (), ()),
    "no_manifest.jpg": ("ManifestNotFound", "absent", "unknown", (), (), (), ()),
    "sample1.png": ("ManifestNotFound", "absent", "unknown", (), (), (), ()),
}
# Changed after signing (tests/fixtures/c2pa/README.md): a broken signature, pixels changed.
CHANGED = {"E-sig-CA.jpg", "XCA.jpg"}


def test_the_table_covers_every_c2pa_fixture():
    expected = json.loads((INTEROP / "expected.json").read_text())
    assert set(FIXTURE_TABLE) == set(expected)
    for name, row in FIXTURE_TABLE.items():
        assert row[0] == expected[name].get("validation_state", expected[name].get("error_type"))


@pytest.mark.parametrize("name", sorted(FIXTURE_TABLE))
def test_fixture_table_row(name):
    c2pa_state, state, label, integrity, credential, trust, unchecked = FIXTURE_TABLE[name]
    signal = read_provenance(INTEROP / name, trust=TrustAnchors())
    verdict = decide(signal)
    assert (signal.state.value, verdict.label.value) == (state, label)
    assert (signal.integrity_failures, signal.credential_failures, signal.trust_failures, signal.unchecked,
            signal.unclassified) == (integrity, credential, trust, unchecked, ())
    if signal.present and signal.state is not ProvenanceState.ERROR:
        assert signal.c2pa_state == c2pa_state
    # No intact file is tampered; every changed one is.
    assert (verdict.label.value == "tampered") is (name in CHANGED)
