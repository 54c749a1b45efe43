"""What each C2PA validation status code means for a verifier: four kinds of result, not two.

c2pa (c2pa-rs inside c2pa-python) reports ``validation_state`` (Invalid / Valid / Trusted) and, per manifest,
``success``, ``informational`` and ``failure`` codes. Only some failures mean that the content or the manifest was
changed after signing; the others say that the signature's credential no longer holds, that a signer is not on
this verifier's lists, or that something could not be checked here. The kinds (``ValidationKind``):

- ``integrity``: changed after signing, or malformed (a hash, the claim signature, the claim's structure);
- ``credential``: the signature's credential no longer holds (expired, revoked, not valid for signing, outside its
  validity, a time-stamp that does not match); the content hashes may all match;
- ``trust``: intact, but the signer, the time-stamp authority or a named identity is not on the verifier's lists;
- ``not-checked``: could not be checked offline or by this validator (revocation, a DID document, a remote manifest,
  an unsupported algorithm);
- ``unclassified``: a code this table does not know. It is never ignored: such a manifest is not authenticated, but
  the code is not taken as proof of tampering either.

The codes are those of the C2PA specification 2.x ("Validation", standard status codes, as c2pa-rs emits them) and
of the CAWG identity assertion 1.x. A CAWG identity assertion is covered by the claim's own hashes (a change after
signing shows as ``assertion.hashedURI.mismatch``), so its failures say that the *named identity* is not proven
(credential, trust or not-checked), never that the content changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum


class ValidationKind(str, Enum):
    INTEGRITY = "integrity"
    CREDENTIAL = "credential"
    TRUST = "trust"
    NOT_CHECKED = "not-checked"
    UNCLASSIFIED = "unclassified"


_I, _C, _T, _N = (ValidationKind.INTEGRITY, ValidationKind.CREDENTIAL, ValidationKind.TRUST,
                  ValidationKind.NOT_CHECKED)

# code -> (kind, what it says): the words the verdict's reasons quote beside a code.
CODES: dict[str, tuple[ValidationKind, str]] = {
    # -- integrity: content bindings (hard bindings) --
    "assertion.dataHash.mismatch": (_I, "the content's bytes differ from the signed hash"),
    "assertion.dataHash.malformed": (_I, "the data hash assertion is malformed"),
    "assertion.bmffHash.mismatch": (_I, "the content's boxes differ from the signed BMFF hash"),
    "assertion.bmffHash.malformed": (_I, "the BMFF hash assertion is malformed"),
    "assertion.boxesHash.mismatch": (_I, "the content's boxes differ from the signed box hash"),
    "assertion.boxesHash.unknownBox": (_I, "a box is not in the signed box hash"),
    "assertion.collectionHash.mismatch": (_I, "an asset of the collection differs from its signed hash"),
    "assertion.collectionHash.incorrectFileCount": (_I, "an asset of the signed collection is missing"),
    "assertion.collectionHash.invalidURI": (_I, "the collection hash names an invalid path"),
    "assertion.collectionHash.malformed": (_I, "the collection hash assertion is malformed"),
    "claim.hardBindings.missing": (_I, "the claim binds no content"),
    "assertion.multipleHardBindings": (_I, "the claim has more than one content binding"),
    "assertion.cloud-data.hardBinding": (_I, "a content binding sits in a cloud-data assertion"),
    # -- integrity: the claim, its signature and its assertions --
    "claimSignature.mismatch": (_I, "the claim signature does not verify"),
    "claimSignature.missing": (_I, "the claim signature is missing"),
    "claim.missing": (_I, "the claim is missing"),
    "claim.multiple": (_I, "the manifest holds more than one claim"),
    "claim.malformed": (_I, "the claim is malformed"),
    "claim.cbor.invalid": (_I, "the claim's CBOR is invalid"),
    "claim.required.missing": (_I, "a required field of the claim is missing"),
    "assertion.hashedURI.mismatch": (_I, "an assertion differs from its signed hash"),
    "hashedURI.mismatch": (_I, "referenced data differs from its signed hash"),
    "hashedURI.missing": (_I, "referenced data is missing"),
    "assertion.missing": (_I, "a signed assertion is missing"),
    "assertion.undeclared": (_I, "an assertion is present that the claim does not declare"),
    "assertion.outsideManifest": (_I, "a signed assertion lies outside its manifest"),
    "assertion.notRedacted": (_I, "an assertion declared redacted is still present"),
    "assertion.selfRedacted": (_I, "an assertion is redacted by its own claim"),
    "assertion.required.missing": (_I, "a required field of an assertion is missing"),
    "assertion.cbor.invalid": (_I, "an assertion's CBOR is invalid"),
    "assertion.json.invalid": (_I, "an assertion's JSON is invalid"),
    "assertion.action.ingredientMismatch": (_I, "an action's ingredient cannot be found"),
    "assertion.action.redacted": (_I, "an actions assertion was redacted"),
    "assertion.action.redactionMismatch": (_I, "an action's redaction cannot be found"),
    "assertion.action.malformed": (_I, "an actions assertion is malformed"),
    "assertion.cloud-data.actions": (_I, "an update manifest's cloud data references actions"),
    "assertion.cloud-data.malformed": (_I, "a cloud-data assertion is malformed"),
    "assertion.ingredient.malformed": (_I, "an ingredient assertion is malformed"),
    "assertion.metadata.disallowed": (_I, "a metadata assertion holds a disallowed field"),
    "manifest.multipleParents": (_I, "the manifest has more than one parent ingredient"),
    "manifest.update.invalid": (_I, "an update manifest holds a content binding or actions"),
    "manifest.update.wrongParents": (_I, "an update manifest does not have exactly one parent"),
    "manifest.timestamp.invalid": (_I, "a time-stamp manifest holds a disallowed assertion"),
    "manifest.timestamp.wrongParents": (_I, "a time-stamp manifest does not have exactly one parent"),
    "manifest.compressed.invalid": (_I, "the compressed manifest is invalid"),
    "manifest.unreferenced": (_I, "a manifest in the store is referenced by no ingredient"),
    # -- integrity: ingredients as recorded by this manifest --
    "ingredient.hashedURI.mismatch": (_I, "an ingredient's manifest differs from its signed hash"),
    "ingredient.manifest.missing": (_I, "an ingredient's manifest is missing"),
    "ingredient.manifest.mismatch": (_I, "an ingredient's manifest differs from its signed hash"),
    "ingredient.claimSignature.missing": (_I, "an ingredient's claim signature is missing"),
    "ingredient.claimSignature.mismatch": (_I, "an ingredient's claim signature differs from its signed hash"),
    # -- credential: the signature's credential no longer holds --
    "signingCredential.expired": (_C, "the signing certificate has expired"),
    "signingCredential.revoked": (_C, "the signing certificate was revoked"),
    "signingCredential.ocsp.revoked": (_C, "the signing certificate was revoked"),
    "signingCredential.invalid": (_C, "the signing certificate is not valid for signing"),
    "claimSignature.outsideValidity": (_C, "signed outside the signing certificate's validity"),
    "timeStamp.mismatch": (_C, "the time-stamp does not match the claim"),
    "timeStamp.malformed": (_C, "the time-stamp is malformed"),
    "timeStamp.outsideValidity": (_C, "the time-stamp lies outside a certificate's validity"),
    "algorithm.deprecated": (_C, "the signature algorithm is deprecated"),
    "cawg.identity.credential_revoked": (_C, "the named identity's credential was revoked"),
    "cawg.x509.credential.invalid": (_C, "the named identity's certificate is not valid"),
    "cawg.x509.credential.expired": (_C, "the named identity's certificate has expired"),
    "cawg.x509.signature.mismatch": (_C, "the named identity's signature does not verify"),
    "cawg.x509.signature.outside_validity": (_C, "the named identity signed outside its certificate's validity"),
    "cawg.x509.time_of_signing.outside_validity": (_C, "the named identity signed outside its certificate's "
                                                       "validity"),
    "cawg.x509.time_stamp.mismatch": (_C, "the named identity's time-stamp does not match"),
    "cawg.x509.time_stamp.malformed": (_C, "the named identity's time-stamp is malformed"),
    "cawg.x509.time_stamp.outside_validity": (_C, "the named identity's time-stamp lies outside a certificate's "
                                                  "validity"),
    "cawg.x509.time_stamp.credential_invalid": (_C, "the named identity's time-stamp credential is not valid"),
    "cawg.identity.cbor.invalid": (_C, "the identity assertion is malformed"),
    "cawg.identity.assertion.mismatch": (_C, "the identity assertion does not match the claim"),
    "cawg.identity.assertion.duplicate": (_C, "the identity assertion references an assertion twice"),
    "cawg.identity.hard_binding_missing": (_C, "the identity assertion does not cover the content binding"),
    "cawg.identity.hard_binding_incorrect": (_C, "the identity assertion covers the wrong content binding"),
    "cawg.identity.pad.invalid": (_C, "the identity assertion's padding is invalid"),
    "cawg.ica.signature_mismatch": (_C, "the identity claims aggregator's signature does not verify"),
    "cawg.ica.invalid_cose_sign1": (_C, "the identity credential's COSE signature is malformed"),
    "cawg.ica.signer_payload.mismatch": (_C, "the identity credential signs a different payload"),
    "cawg.ica.invalid_verifiable_credential": (_C, "the identity's verifiable credential is invalid"),
    "cawg.ica.invalid_issuer": (_C, "the identity credential's issuer is invalid"),
    "cawg.ica.invalid_did_document": (_C, "the identity issuer's DID document is invalid"),
    "cawg.ica.invalid_alg": (_C, "the identity credential's algorithm is invalid"),
    "cawg.ica.invalid_content_type": (_C, "the identity credential's content type is invalid"),
    "cawg.ica.time_stamp.invalid": (_C, "the identity credential's time-stamp is invalid"),
    "cawg.ica.valid_from.invalid": (_C, "the identity credential is not yet valid"),
    "cawg.ica.valid_from.missing": (_C, "the identity credential has no start of validity"),
    "cawg.ica.valid_until.invalid": (_C, "the identity credential has expired"),
    # -- trust: not on this verifier's lists --
    "signingCredential.untrusted": (_T, "the signer is not on your trust list"),
    "timeStamp.untrusted": (_T, "the time-stamp authority is not on your trust list"),
    "cawg.x509.credential.untrusted": (_T, "the named identity (CAWG) is not on your trust list"),
    "cawg.x509.time_stamp.untrusted": (_T, "the named identity's time-stamp authority is not on your trust list"),
    "cawg.ica.untrusted_issuer": (_T, "the identity credential's issuer is not on your list of trusted issuers"),
    # SynthGuard's own codes (detect.rules): a trusted signer that the policy's list of signers does not name (a
    # failure), one whose capture claims the policy does not accept (informational).
    "policy.signerNotListed": (_T, "the signer is not on the policy's list of signers"),
    "policy.captureSignerNotListed": (_T, "the policy does not accept capture claims from this signer"),
    # -- not checked: offline, or beyond this validator --
    "signingCredential.ocsp.skipped": (_N, "the signing certificate's revocation status was not checked"),
    "signingCredential.ocsp.inaccessible": (_N, "the signing certificate's revocation service was unreachable"),
    "signingCredential.ocsp.unknown": (_N, "the revocation service does not know the signing certificate"),
    "manifest.inaccessible": (_N, "a remote manifest could not be fetched"),
    "assertion.inaccessible": (_N, "a remote assertion could not be fetched"),
    "algorithm.unsupported": (_N, "an algorithm is not supported by this validator"),
    "manifest.unknownProvenance": (_N, "the manifest cannot be interpreted by this validator"),
    "ingredient.unknownProvenance": (_N, "an ingredient's provenance cannot be interpreted"),
    "com.adobe.prerelease": (_N, "the manifest uses a prerelease format"),
    "cawg.ica.did_unavailable": (_N, "the named identity's DID document could not be fetched"),
    "cawg.ica.did_unsupported_method": (_N, "the named identity's DID method is not supported here"),
    "cawg.identity.network_traffic_blocked": (_N, "the named identity needs the network to be checked"),
    "cawg.identity.sig_type.unknown": (_N, "the named identity's signature type is not supported here"),
    "cawg.x509.algorithm.unsupported": (_N, "the named identity's algorithm is not supported here"),
    "cawg.x509.ocsp.skipped": (_N, "the named identity's revocation status was not checked"),
    "cawg.x509.ocsp.inaccessible": (_N, "the named identity's revocation service was unreachable"),
    "cawg.x509.ocsp.unknown": (_N, "the revocation service does not know the named identity's certificate"),
}


def classify(code: str) -> ValidationKind:
    """The kind of one validation code; ``UNCLASSIFIED`` for a code this table does not know."""
    return CODES[code][0] if code in CODES else ValidationKind.UNCLASSIFIED


def meaning(code: str) -> str | None:
    """What the code says, in words (None for an unclassified code)."""
    return CODES[code][1] if code in CODES else None


def explain(code: str) -> str:
    """The code with its meaning in brackets: ``signingCredential.expired (the signing certificate has expired)``."""
    words = meaning(code)
    return f"{code} ({words})" if words else code


@dataclass(frozen=True)
class ValidationKinds:
    """Validation codes sorted into their kinds, each in the order c2pa reported it, without repeats."""

    integrity: tuple[str, ...] = ()
    credential: tuple[str, ...] = ()
    trust: tuple[str, ...] = ()
    not_checked: tuple[str, ...] = ()
    unclassified: tuple[str, ...] = ()

    @classmethod
    def of(cls, codes: Iterable[str]) -> ValidationKinds:
        found: dict[ValidationKind, list[str]] = {kind: [] for kind in ValidationKind}
        for code in codes:
            if code not in found[classify(code)]:
                found[classify(code)].append(code)
        return cls(*(tuple(found[kind]) for kind in (ValidationKind.INTEGRITY, ValidationKind.CREDENTIAL,
                                                      ValidationKind.TRUST, ValidationKind.NOT_CHECKED,
                                                      ValidationKind.UNCLASSIFIED)))
