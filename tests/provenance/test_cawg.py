"""CAWG identity assertions read from reader.json(): who is named, verified or not, and why."""

import copy
import json

import c2pa
import pytest
from helpers.files import INTEROP

from synthguard.provenance.cawg import CawgIdentity, CawgKind, identities_from_store

EXPECTED = json.loads((INTEROP / "cawg" / "expected.json").read_text())
JWK_ISSUER = ("did:jwk:eyJhbGciOiJFZERTQSIsImt0eSI6Ik9LUCIsImNydiI6IkVkMjU1MTkiLCJ4IjoiTXA1LTBlODNuTmdRaGRoQlc4UnNo"
              "a2p5OTBzYTFBOUpJemtJdGNEcUN1SSJ9")


def read_store(name: str) -> dict:
    with open(INTEROP / name, "rb") as stream, c2pa.Reader("image/jpeg", stream) as reader:
        return json.loads(reader.json())


@pytest.fixture(scope="module")
def stores() -> dict[str, dict]:
    names = [f"cawg/{n}" for n in EXPECTED] + ["adobe_connected_identities.jpg", "C.jpg"]
    return {name: read_store(name) for name in names}


def only(stores, name) -> CawgIdentity:
    found = identities_from_store(stores[name])
    assert len(found) == 1
    return found[0]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_fixture_identity_is_found_and_none_is_verified(stores, name):
    found = identities_from_store(stores[f"cawg/{name}"])
    assert [i.label for i in found] == EXPECTED[name]["identity_assertions"]
    for identity in found:
        assert not identity.verified and identity.why
        assert json.loads(json.dumps(identity.to_dict()))["verified"] is False
        assert identity.describe()[0].startswith("CAWG identity (") and "a claim, not proof" in identity.describe()[0]
        # every identity failure c2pa reported for the file is this assertion's
        cawg_failures = [c for c in EXPECTED[name]["failure_codes"] if c.startswith("cawg.")]
        assert list(identity.failure) == cawg_failures


def test_an_x509_identity_names_its_certificate(stores):
    identity = only(stores, "cawg/C_with_CAWG_data.jpg")
    assert identity.kind is CawgKind.X509 and identity.sig_type == "cawg.x509.cose"
    assert (identity.name, identity.issuer, identity.algorithm) == ("C2PA Signer", "C2PA Test Signing Cert",
                                                                    "Ed25519")
    assert identity.serial_number == "638838410810235485828984295321338730070538954823"
    assert identity.referenced_assertions == ("cawg.training-mining", "c2pa.hash.data")
    assert identity.signature_verified and "cawg.x509.signature.validated" in identity.success
    assert identity.why == ("cawg.x509.credential.untrusted (the named identity (CAWG) is not on your trust list)",)
    assert identity.describe()[0] == (
        "CAWG identity (X.509): 'C2PA Signer' (issued by C2PA Test Signing Cert): signature verified, but the named "
        "identity (CAWG) is not on your trust list: a claim, not proof")


def test_bad_padding_is_named_beside_the_untrusted_certificate(stores):
    identity = only(stores, "cawg/x509_pad1_invalid.jpg")
    assert identity.failure == ("cawg.identity.pad.invalid", "cawg.x509.credential.untrusted")
    assert identity.why[0] == "cawg.identity.pad.invalid (the identity assertion's padding is invalid)"


def test_an_aggregated_credential_lists_each_verified_identity(stores):
    identity = only(stores, "cawg/ica_success.jpg")
    assert identity.kind is CawgKind.IDENTITY_CLAIMS_AGGREGATION and identity.issuer == JWK_ISSUER
    assert identity.valid_from == "2025-04-22T22:45:44.334364Z" and identity.valid_until is None
    assert [(i.type, i.name, i.username, i.provider) for i in identity.identities] == [
        ("cawg.document_verification", "First-Name Last-Name", None, "Example ID Verifier"),
        ("cawg.affiliation", None, None, "Example Affiliated Organization"),
        ("cawg.social_media", "Silly Cats 929", "username", "Example Social Network"),
        ("cawg.crypto_wallet", None, "username", "Example Crypto Wallet")]
    assert identity.identities[2].uri == "https://example-social-network.com/username"
    assert identity.identities[2].verified_at == "2024-05-27T08:40:39.569856Z"
    # the issuer's signature checked (c2pa logs untrusted_issuer only then), but the issuer is on no list of ours
    assert identity.signature_verified and not identity.failure
    assert identity.why == ("cawg.ica.untrusted_issuer (the identity credential's issuer is not on your list of "
                            "trusted issuers)",)
    lines = identity.describe()
    assert lines[0].endswith("signature verified, but the identity credential's issuer is not on your list of "
                             "trusted issuers: a claim, not proof")
    assert lines[3] == ("  social media: 'Silly Cats 929' @username <https://example-social-network.com/username>, "
                        "verified by Example Social Network at 2024-05-27T08:40:39.569856Z (the aggregator's "
                        "statement)")


def test_an_expired_credential_says_so(stores):
    identity = only(stores, "cawg/ica_valid_until_in_past.jpg")
    assert identity.valid_until == "1900-01-01T12:00:00Z"
    assert identity.why[0] == "cawg.ica.valid_until.invalid (the identity credential has expired)"
    assert "the identity credential has expired" in identity.describe()[0]


def test_an_issuer_that_cannot_be_resolved_offline_is_not_checked(stores):
    identity = only(stores, "adobe_connected_identities.jpg")
    assert identity.issuer == "did:web:connected-identities.identity-stage.adobe.com"
    assert [(i.type, i.username, i.uri, i.provider) for i in identity.identities] == [
        ("cawg.social_media", "testuser23", "https://net.s2stagehance.com/testuser23", "behance")]
    assert not identity.signature_verified and not identity.verified
    assert identity.why == ("cawg.ica.did_unavailable (the named identity's DID document could not be fetched)",)
    assert identity.describe()[0].endswith("not verified: the named identity's DID document could not be "
                                           "fetched: a claim, not proof")


def test_a_manifest_without_identity_assertions_names_none(stores):
    assert identities_from_store(stores["C.jpg"]) == ()


# -- what would make an identity verified (c2pa here cannot be given CAWG trust anchors: the store is edited) --

def _recode(store: dict, *, drop: tuple[str, ...] = (), add: dict[str, list[str]] | None = None) -> dict:
    store = copy.deepcopy(store)
    results = store["validation_results"]["activeManifest"]
    url = f"self#jumbf=/c2pa/{store['active_manifest']}/c2pa.assertions/cawg.identity"
    for kind in ("success", "informational", "failure"):
        results[kind] = [i for i in results[kind] if i["code"] not in drop]
        results[kind] += [{"code": c, "url": url} for c in (add or {}).get(kind, [])]
    return store


def test_a_trusted_x509_identity_is_verified(stores):
    store = _recode(stores["cawg/C_with_CAWG_data.jpg"], drop=("cawg.x509.credential.untrusted",),
                    add={"success": ["cawg.x509.credential.trusted"]})
    (identity,) = identities_from_store(store)
    assert identity.verified and identity.describe()[0].endswith("verified: its signature checks and its "
                                                                 "credential is trusted")
    # a could-not-check note (revocation) does not undo it; an unknown informational code does
    (identity,) = identities_from_store(_recode(store, add={"informational": ["cawg.x509.ocsp.skipped"]}))
    assert identity.verified
    (identity,) = identities_from_store(_recode(store, add={"informational": ["cawg.brand.new"]}))
    assert not identity.verified and identity.why == ("cawg.brand.new",)
    assert "unknown code cawg.brand.new" in identity.describe()[0]
    # a validated signature alone, with no trusted-credential code, is not enough
    (identity,) = identities_from_store(_recode(store, drop=("cawg.x509.credential.trusted",)))
    assert not identity.verified and identity.signature_verified
    assert identity.why == ("its credential was not reported as trusted",)
    assert identity.describe()[0].endswith("signature verified, but its credential was not reported as trusted: a "
                                           "claim, not proof")


def test_a_valid_aggregated_credential_is_verified(stores):
    store = _recode(stores["cawg/ica_success.jpg"], drop=("cawg.ica.untrusted_issuer",),
                    add={"success": ["cawg.ica.credential_valid"]})
    (identity,) = identities_from_store(store)
    assert identity.verified and identity.signature_verified
    (identity,) = identities_from_store(_recode(store, add={"failure": ["cawg.ica.valid_until.invalid"]}))
    assert not identity.verified


def test_repeated_identity_assertions_keep_their_own_codes(stores):
    store = copy.deepcopy(stores["cawg/C_with_CAWG_data.jpg"])
    assertions = store["manifests"][store["active_manifest"]]["assertions"]
    second = copy.deepcopy(next(a for a in assertions if a["label"] == "cawg.identity"))
    second["label"] = "cawg.identity__1"
    second["data"]["signature_info"]["common_name"] = "Second Signer"
    assertions.append(second)
    store = _recode(store)
    store["validation_results"]["activeManifest"]["failure"].append(
        {"code": "cawg.x509.signature.mismatch",
         "url": f"self#jumbf=/c2pa/{store['active_manifest']}/c2pa.assertions/cawg.identity__1"})
    first, other = identities_from_store(store)
    assert (first.label, other.label, other.name) == ("cawg.identity", "cawg.identity__1", "Second Signer")
    assert first.failure == ("cawg.x509.credential.untrusted",)
    assert other.failure == ("cawg.x509.signature.mismatch",) and not other.signature_verified


@pytest.mark.parametrize("store", [
    None, [], "text", {"manifests": 5}, {"active_manifest": 7, "manifests": {}},
    {"active_manifest": "m", "manifests": {"m": {"assertions": "junk"}}},
    {"active_manifest": "m", "manifests": {"m": {"assertions": [None, 3, {"label": None}, {"label": "cawg.identity"},
                                                                {"label": "cawg.identity__2", "data": "x"}]}},
     "validation_results": {"activeManifest": {"failure": [None, {"code": 5}, {"url": 3, "code": "x"}]}}},
])
def test_hostile_stores_never_crash(store):
    found = identities_from_store(store)
    assert all(i.kind is CawgKind.UNKNOWN and not i.verified and i.why for i in found)
    assert all(json.dumps(i.to_dict()) and i.describe() for i in found)


def test_hostile_fields_are_dropped_or_cut_never_trusted():
    data = {"signer_payload": {"sig_type": "cawg.identity_claims_aggregation",
                               "referenced_assertions": [{"url": 5}, "x", {"url": "self#jumbf=c2pa.assertions/a"}]},
            "c2paAsset": {"sig_type": "cawg.x509.cose"},
            "issuer": "did:x:" + "a" * 10_000, "validFrom": {"nested": True},
            "verifiedIdentities": [None, {"type": ["list"], "provider": "not a map", "name": "Bo\nb"}] * 100}
    store = {"active_manifest": "m", "manifests": {"m": {"assertions": [{"label": "cawg.identity", "data": data}]}}}
    (identity,) = identities_from_store(store)
    assert identity.kind is CawgKind.IDENTITY_CLAIMS_AGGREGATION  # signer_payload comes first
    assert identity.referenced_assertions == ("a",) and identity.valid_from is None
    assert len(identity.issuer) < 400 and len(identity.identities) == 64 and identity.more_identities == 136
    assert identity.describe()[-2] == "  ... and 136 more identities (not shown)"
    assert identity.identities[1].name == "Bo b" and identity.identities[1].provider is None
    assert not identity.verified
