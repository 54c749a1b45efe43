"""CAWG identity assertions: who a manifest names, and whether that naming is proven.

The Creator Assertions Working Group's identity assertion (CAWG identity 1.x, label ``cawg.identity``, repeated
ones ``cawg.identity__1``, ...) binds a named actor to some assertions of the manifest. c2pa validates it and
reports codes whose ``url`` ends in ``/c2pa.assertions/<label>``. Two kinds are read here:

- ``cawg.x509.cose``: signed with an X.509 certificate; the named actor is the certificate's subject. c2pa reports
  ``cawg.x509.signature.validated`` when the signature checks and ``cawg.x509.credential.trusted`` (else the
  failure ``cawg.x509.credential.untrusted``) for its chain;
- ``cawg.identity_claims_aggregation``: a W3C verifiable credential from an identity claims aggregator (issuer
  DID) listing verified identities (social media, document verification, affiliation, crypto wallet...). c2pa
  reports ``cawg.ica.credential_valid`` only when the credential's signature, validity window and issuer trust all
  hold; an issuer off the verifier's list gives the informational ``cawg.ica.untrusted_issuer``, logged only once
  the issuer's signature has checked (c2pa-rs ``identity/claim_aggregation/ica_signature_verifier.rs``).

An identity is ``verified`` only when its signature-validated success code (and, for X.509, the trusted-credential
code) is present and no failure and no informational code other than a could-not-check one remains for it.
Everything else is a claim, not proof, and ``why`` says so in the words of ``provenance.validation``.
Every field is read defensively: a hostile or missing value gives None, never an exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from enum import Enum

from synthguard.provenance.validation import ValidationKind, classify, explain, meaning

IDENTITY_LABEL = "cawg.identity"
X509_SIG_TYPE = "cawg.x509.cose"
ICA_SIG_TYPE = "cawg.identity_claims_aggregation"
_MAX_TEXT = 300  # characters kept of any one field from the file
_MAX_IDENTITIES = 64  # verified identities kept per assertion (the rest are counted)

# The success codes that say the identity's signature checked (X.509) or the whole credential held (ICA).
X509_SIGNATURE_OK = "cawg.x509.signature.validated"
X509_TRUSTED = "cawg.x509.credential.trusted"
ICA_VALID = "cawg.ica.credential_valid"
ICA_UNTRUSTED_ISSUER = "cawg.ica.untrusted_issuer"

_IDENTITY_TYPES = {"cawg.social_media": "social media", "cawg.document_verification": "document verification",
                   "cawg.affiliation": "affiliation", "cawg.crypto_wallet": "crypto wallet",
                   "cawg.web_site": "web site"}


class CawgKind(str, Enum):
    X509 = "x509"
    IDENTITY_CLAIMS_AGGREGATION = "identity-claims-aggregation"
    UNKNOWN = "unknown"  # a sig_type this reader does not know (or none)

    @property
    def words(self) -> str:
        return {"x509": "X.509", "identity-claims-aggregation": "identity claims aggregation"}.get(
            self.value, "unknown signature type")


def _text(value) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    text = " ".join(str(value).split())
    return (text[:_MAX_TEXT] + "...") if len(text) > _MAX_TEXT else (text or None)


def _mapping(value) -> Mapping:
    return value if isinstance(value, Mapping) else {}


def _items(value) -> list:
    return value if isinstance(value, list) else []


@dataclass(frozen=True)
class VerifiedIdentity:
    """One identity an aggregator says it verified (what it says: verified by the aggregator, not by us)."""

    type: str | None
    name: str | None = None
    username: str | None = None
    uri: str | None = None
    provider: str | None = None  # the provider's name
    provider_id: str | None = None
    verified_at: str | None = None

    @classmethod
    def from_data(cls, data) -> VerifiedIdentity:
        data, provider = _mapping(data), _mapping(_mapping(data).get("provider"))
        return cls(type=_text(data.get("type")), name=_text(data.get("name")), username=_text(data.get("username")),
                   uri=_text(data.get("uri")), provider=_text(provider.get("name")),
                   provider_id=_text(provider.get("id")), verified_at=_text(data.get("verifiedAt")))

    def describe(self) -> str:
        kind = _IDENTITY_TYPES.get(self.type or "", self.type or "identity")
        who = " ".join(part for part in (f"'{self.name}'" if self.name else None,
                                         f"@{self.username}" if self.username else None,
                                         f"<{self.uri}>" if self.uri else None) if part) or "(no name given)"
        by = f" by {self.provider or self.provider_id}" if (self.provider or self.provider_id) else ""
        at = f" at {self.verified_at}" if self.verified_at else ""
        return f"{kind}: {who}, verified{by}{at} (the aggregator's statement)"


@dataclass(frozen=True)
class CawgIdentity:
    """One CAWG identity assertion of the active manifest: who it names, and whether that is proven."""

    label: str
    kind: CawgKind
    sig_type: str | None
    name: str | None = None  # X.509: the identity certificate's common name
    issuer: str | None = None  # X.509: the certificate's issuer; ICA: the issuer's DID
    serial_number: str | None = None
    algorithm: str | None = None
    identities: tuple[VerifiedIdentity, ...] = ()  # ICA: the verified identities listed
    more_identities: int = 0  # listed beyond the first _MAX_IDENTITIES, not kept
    valid_from: str | None = None
    valid_until: str | None = None
    referenced_assertions: tuple[str, ...] = ()  # labels of the assertions the identity signs over
    success: tuple[str, ...] = ()
    informational: tuple[str, ...] = ()
    failure: tuple[str, ...] = ()
    verified: bool = False
    signature_verified: bool = False  # the identity's own signature checked (trust aside)
    why: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"label": self.label, "kind": self.kind.value, "sig_type": self.sig_type, "name": self.name,
                "issuer": self.issuer, "serial_number": self.serial_number, "algorithm": self.algorithm,
                "identities": [asdict(i) for i in self.identities],
                "more_identities": self.more_identities, "valid_from": self.valid_from,
                "valid_until": self.valid_until, "referenced_assertions": list(self.referenced_assertions),
                "success": list(self.success), "informational": list(self.informational),
                "failure": list(self.failure), "verified": self.verified,
                "signature_verified": self.signature_verified, "why": list(self.why)}

    def _named(self) -> str:
        if self.kind is CawgKind.X509:
            who = f"'{self.name}'" if self.name else "an unnamed certificate"
            return f"{who} (issued by {self.issuer})" if self.issuer else who
        if self.kind is CawgKind.IDENTITY_CLAIMS_AGGREGATION:
            return f"credential from {self.issuer}" if self.issuer else "credential from an unnamed issuer"
        return f"signature type {self.sig_type!r}" if self.sig_type else "no signature type"

    def _verdict(self) -> str:
        if self.verified:
            return "verified: its signature checks and its credential is trusted"
        problems = [meaning(code) or f"unknown code {code}" for code in _problems(self)]
        said = "; ".join(dict.fromkeys(problems or self.why))
        if self.signature_verified:
            return f"signature verified, but {said}: a claim, not proof"
        return f"not verified: {said}: a claim, not proof"

    def describe(self) -> tuple[str, ...]:
        lines = [f"CAWG identity ({self.kind.words}): {self._named()}: {self._verdict()}"]
        lines += [f"  {identity.describe()}" for identity in self.identities]
        if self.more_identities:
            lines.append(f"  ... and {self.more_identities} more identities (not shown)")
        if self.valid_from or self.valid_until:
            lines.append(f"  valid from {self.valid_from or '?'} until {self.valid_until or '(no end)'}")
        if self.referenced_assertions:
            lines.append(f"  covers: {', '.join(self.referenced_assertions)}")
        return tuple(lines)


def _problems(identity: CawgIdentity) -> tuple[str, ...]:
    """The codes that keep an identity from being verified: every failure, then each informational code that is
    not a could-not-check one."""
    extra = tuple(c for c in identity.informational if classify(c) is not ValidationKind.NOT_CHECKED)
    return tuple(dict.fromkeys((*identity.failure, *extra)))


def _assertion_of(url) -> str | None:
    """The assertion label a validation code's url names (``...c2pa.assertions/cawg.identity`` -> label)."""
    if not isinstance(url, str) or "c2pa.assertions/" not in url:
        return None
    return url.rsplit("c2pa.assertions/", 1)[1] or None


def _codes_by_assertion(store: Mapping) -> dict[str, dict[str, list[str]]]:
    active = _mapping(_mapping(store.get("validation_results")).get("activeManifest"))
    found: dict[str, dict[str, list[str]]] = {}
    for kind in ("success", "informational", "failure"):
        items = active.get(kind)
        for item in items if isinstance(items, list) else []:
            item = _mapping(item)
            label, code = _assertion_of(item.get("url")), item.get("code")
            if label and isinstance(code, str):
                codes = found.setdefault(label, {"success": [], "informational": [], "failure": []})[kind]
                if code not in codes:
                    codes.append(code)
    return found


def _referenced(payload: Mapping) -> tuple[str, ...]:
    urls = (_mapping(ref).get("url") for ref in _items(payload.get("referenced_assertions")))
    return tuple(label for url in urls if isinstance(url, str) and (label := _assertion_of(url) or _text(url)))


def is_identity_label(label) -> bool:
    return isinstance(label, str) and (label == IDENTITY_LABEL or label.startswith(IDENTITY_LABEL + "__"))


def _kind(sig_type: str | None) -> CawgKind:
    return {X509_SIG_TYPE: CawgKind.X509, ICA_SIG_TYPE: CawgKind.IDENTITY_CLAIMS_AGGREGATION}.get(
        sig_type or "", CawgKind.UNKNOWN)


def identity_from_assertion(label: str, data, codes: Mapping[str, list[str]]) -> CawgIdentity:
    """One identity assertion (its ``data`` as ``reader.json()`` gives it) with its codes by kind."""
    data = _mapping(data)
    x509_payload = _mapping(data.get("signer_payload"))
    ica_payload = _mapping(data.get("c2paAsset"))
    payload = x509_payload or ica_payload
    sig_type = _text(payload.get("sig_type"))
    kind = _kind(sig_type)
    success, informational, failure = (tuple(codes.get(k, ())) for k in ("success", "informational", "failure"))
    fields: dict = {}
    if kind is CawgKind.X509:
        info = _mapping(data.get("signature_info"))
        fields = {"name": _text(info.get("common_name")), "issuer": _text(info.get("issuer")),
                  "serial_number": _text(info.get("cert_serial_number")), "algorithm": _text(info.get("alg"))}
        signature_verified = X509_SIGNATURE_OK in success
        proven = signature_verified and X509_TRUSTED in success
    elif kind is CawgKind.IDENTITY_CLAIMS_AGGREGATION:
        listed = _items(data.get("verifiedIdentities"))
        fields = {"issuer": _text(data.get("issuer")), "valid_from": _text(data.get("validFrom")),
                  "valid_until": _text(data.get("validUntil")),
                  "identities": tuple(VerifiedIdentity.from_data(i) for i in listed[:_MAX_IDENTITIES]),
                  "more_identities": max(0, len(listed) - _MAX_IDENTITIES)}
        # untrusted_issuer is logged only after the issuer's signature verified (c2pa-rs check_issuer_trust)
        signature_verified = ICA_VALID in success or ICA_UNTRUSTED_ISSUER in informational
        proven = ICA_VALID in success
    else:
        signature_verified = proven = False
    identity = CawgIdentity(label=label, kind=kind, sig_type=sig_type, referenced_assertions=_referenced(payload),
                            success=success, informational=informational, failure=failure,
                            signature_verified=signature_verified, **fields)
    problems = _problems(identity)
    verified = proven and not problems
    if verified:
        why: tuple[str, ...] = ("its signature checks and its credential is trusted (c2pa: "
                                + ", ".join(c for c in success if c.startswith("cawg.")) + ")",)
    elif problems:
        why = tuple(explain(code) for code in problems)
    elif kind is CawgKind.UNKNOWN:
        why = (f"its signature type {sig_type!r} is not one this verifier knows" if sig_type
               else "it names no signature type",)
    elif signature_verified:
        why = ("its credential was not reported as trusted",)
    else:
        why = ("c2pa reported no successful check of its signature",)
    return replace(identity, verified=verified, why=why)


def identities_from_store(store) -> tuple[CawgIdentity, ...]:
    """The CAWG identity assertions of the active manifest of a ``reader.json()`` store, in manifest order."""
    store = _mapping(store)
    manifests = _mapping(store.get("manifests"))
    active_label = store.get("active_manifest")
    active = _mapping(manifests.get(active_label)) if isinstance(active_label, str) else {}
    codes = _codes_by_assertion(store)
    found = []
    for assertion in _items(active.get("assertions")):
        assertion = _mapping(assertion)
        label = assertion.get("label")
        if is_identity_label(label):
            found.append(identity_from_assertion(label, assertion.get("data"), codes.get(label, {})))
    return tuple(found)
