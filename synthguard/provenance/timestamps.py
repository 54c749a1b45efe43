"""The claim signature's RFC 3161 time-stamp, checked against a list of trusted time-stamp authorities.

c2pa's own ``timeStamp.trusted`` / ``timeStamp.untrusted`` do not say whether the authority is one this verifier
trusts: with no time-stamp anchors configured, c2pa-python 0.38 reports ``timeStamp.trusted`` ("legacy timestamp
cert trusted") for every ``sigTst`` authority of the test fixtures and ``timeStamp.untrusted`` for every ``sigTst2``
one; neither is used here. What only c2pa can tell is ``timeStamp.validated``: the token's message imprint
matches this claim's signature (c2pa-rs ``crypto/time_stamp/verify.rs`` also checks the token's own signature
before saying so). A time-stamp is *trusted* here when

1. c2pa reports ``timeStamp.validated`` for the active manifest's signature and none of ``timeStamp.mismatch``,
   ``timeStamp.malformed``, ``timeStamp.outsideValidity``;
2. the token read from the manifest store (``provenance.jumbf``) parses: its TSTInfo's ``genTime`` is the time
   reported (the value under the authority's signature; c2pa's ``signature_info.time`` may come from the CMS
   ``signingTime`` attribute instead), its signer certificate is the one its SignerInfo names, and the CMS
   signature over the signed attributes (with the ``messageDigest`` of the TSTInfo) verifies with it here, so the
   certificate whose chain is checked is the one that signed;
3. that certificate carries the timeStamping extended key usage, and a path of verified signatures runs from it
   through the token's own certificates to one of the given anchors (the C2PA TSA Trust List), every certificate
   on it, the anchor included, valid at ``genTime``.

The token is read with a small strict DER reader (RFC 5652 SignedData, RFC 3161 TSTInfo): lengths are checked
against the buffer and the structure is walked to a fixed depth; anything malformed is a finding ("the token
cannot be read"), never a crash. Not checked: revocation of the authority's certificates (offline), certificate
policies and name constraints.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from synthguard.errors import InputError
from synthguard.provenance.identity import cert_fingerprint as fingerprint
from synthguard.provenance.jumbf import MALFORMED_EXTENSIONS, CoseSignature, trust_path

MAX_TOKEN_CERTIFICATES = 16

_OID_SIGNED_DATA = "1.2.840.113549.1.7.2"
_OID_TST_INFO = "1.2.840.113549.1.9.16.1.4"
_OID_CONTENT_TYPE = "1.2.840.113549.1.9.3"
_OID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
_OID_RSA_PSS = "1.2.840.113549.1.1.10"
_DIGESTS = {"2.16.840.1.101.3.4.2.1": hashes.SHA256, "2.16.840.1.101.3.4.2.2": hashes.SHA384,
            "2.16.840.1.101.3.4.2.3": hashes.SHA512}

# c2pa's codes about the claim signature's time-stamp: the one that says the token matches this claim, and those
# that say it does not hold.
VALIDATED = "timeStamp.validated"
BROKEN = ("timeStamp.mismatch", "timeStamp.malformed", "timeStamp.outsideValidity")


class TimestampStatus(str, Enum):
    ABSENT = "absent"  # the claim signature carries no time-stamp
    TRUSTED = "trusted"  # it holds and its authority chains to a given anchor
    UNTRUSTED = "untrusted"  # it holds, but its authority is not on the list
    INVALID = "invalid"  # it does not hold (mismatch, malformed, outside a certificate's validity, bad signature)
    NOT_CHECKED = "not-checked"  # it could not be checked here (unreadable signature, no list, unsupported alg.)


@dataclass(frozen=True)
class TimestampSignal:
    """The claim signature's time-stamp: when, by whom, and whether the authority is one the list trusts."""

    status: TimestampStatus
    time: str | None = None  # ISO 8601 (UTC): the token's genTime
    authority: str | None = None  # the time-stamp signing certificate's common name
    authority_organization: str | None = None
    anchor: str | None = None  # the list anchor the authority chains to (its common name)
    anchor_sha256: str | None = None
    source: str | None = None  # the list that was consulted
    reason: str | None = None  # why it is not trusted (None when trusted or absent)
    c2pa_codes: tuple[str, ...] = ()  # c2pa's timeStamp.* codes for this signature, as reported

    @property
    def present(self) -> bool:
        return self.status is not TimestampStatus.ABSENT

    @property
    def trusted(self) -> bool:
        return self.status is TimestampStatus.TRUSTED

    def to_dict(self) -> dict:
        return {"status": self.status.value, "present": self.present, "trusted": self.trusted, "time": self.time,
                "authority": self.authority, "authority_organization": self.authority_organization,
                "anchor": self.anchor, "anchor_sha256": self.anchor_sha256, "source": self.source,
                "reason": self.reason, "c2pa_codes": list(self.c2pa_codes)}

    def describe(self) -> tuple[str, ...]:
        if self.status is TimestampStatus.ABSENT:
            return ("Time-stamp: none (the signing time is the signer's own claim)",)
        who = self.authority or "an unnamed authority"
        if self.authority_organization and self.authority_organization != self.authority:
            who += f" ({self.authority_organization})"
        when = self.time or "an unreadable time"
        if self.trusted:
            return (f"Time-stamp: {when} by {who}, trusted: it chains to '{self.anchor}' on {self.source}",)
        words = {TimestampStatus.UNTRUSTED: "not trusted", TimestampStatus.INVALID: "invalid",
                 TimestampStatus.NOT_CHECKED: "not checked"}[self.status]
        return (f"Time-stamp: {when} by {who}, {words}: {self.reason}",)


# -- a strict DER reader, enough for RFC 5652 SignedData and RFC 3161 TSTInfo --

@dataclass(frozen=True)
class _Node:
    tag: int
    data: bytes  # the whole buffer the node lies in
    start: int  # content start
    end: int  # content end
    header: int  # offset of the tag byte

    @property
    def content(self) -> bytes:
        return self.data[self.start:self.end]

    @property
    def encoded(self) -> bytes:
        return self.data[self.header:self.end]


def _node(data: bytes, offset: int, end: int) -> _Node:
    if end - offset < 2:
        raise InputError(f"corrupt DER: truncated at offset {offset}")
    tag, first = data[offset], data[offset + 1]
    if tag & 0x1F == 0x1F:
        raise InputError(f"corrupt DER: multi-byte tag at offset {offset}")
    position = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4:
            raise InputError(f"corrupt DER: {'indefinite' if count == 0 else 'oversized'} length at offset {offset}")
        if end - position < count:
            raise InputError(f"corrupt DER: truncated length at offset {offset}")
        length = int.from_bytes(data[position:position + count], "big")
        position += count
    if length > end - position:
        raise InputError(f"corrupt DER: element at offset {offset} declares {length} bytes, {end - position} remain")
    return _Node(tag=tag, data=data, start=position, end=position + length, header=offset)


def _parse(data: bytes) -> _Node:
    node = _node(data, 0, len(data))
    if node.end != len(data):
        raise InputError(f"corrupt DER: {len(data) - node.end} bytes after the end")
    return node


def _children(node: _Node) -> list[_Node]:
    if not node.tag & 0x20:
        raise InputError(f"corrupt DER: element at offset {node.header} is not constructed")
    found, offset = [], node.start
    while offset < node.end:
        child = _node(node.data, offset, node.end)
        found.append(child)
        offset = child.end
    return found


def _expect(node: _Node, tag: int, what: str) -> _Node:
    if node.tag != tag:
        raise InputError(f"corrupt time-stamp token: {what} has tag 0x{node.tag:02x}, expected 0x{tag:02x}")
    return node


def _oid(node: _Node) -> str:
    raw = _expect(node, 0x06, "an object identifier").content
    if not raw or raw[-1] & 0x80:
        raise InputError("corrupt DER: malformed object identifier")
    arcs, value = [], 0
    for byte in raw:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in (first, arcs[0] - 40 * first, *arcs[1:]))


def _integer(node: _Node) -> int:
    return int.from_bytes(_expect(node, 0x02, "an integer").content, "big", signed=True)


_GENERALIZED = re.compile(r"(\d{14})(?:[.,](\d{1,6})\d*)?Z")


def _generalized_time(node: _Node) -> dt.datetime:
    match = _GENERALIZED.fullmatch(_expect(node, 0x18, "genTime").content.decode("ascii", "replace"))
    if not match:
        raise InputError("corrupt time-stamp token: genTime is not a UTC GeneralizedTime")
    try:
        when = dt.datetime.strptime(match.group(1), "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)
    except ValueError:
        raise InputError("corrupt time-stamp token: genTime is not a valid date") from None
    return when + dt.timedelta(microseconds=int((match.group(2) or "0").ljust(6, "0")))


@dataclass(frozen=True)
class TimestampToken:
    """What a time-stamp token says and who signed it (its CMS signature is checked by ``verify_token_signature``).

    ``signer`` is None when the signer's certificate does not parse under strict X.509 rules (some deployed
    time-stamp certificates break them, e.g. a ``_`` in a PrintableString); its names are still read from the DER.
    """

    gen_time: dt.datetime
    certificates: tuple[x509.Certificate, ...]  # those that parse
    signer: x509.Certificate | None
    authority: str | None  # the signer's subject common name (else organisation)
    authority_organization: str | None
    digest: type[hashes.HashAlgorithm]
    signature_algorithm: str
    signature: bytes
    signed_attributes: bytes  # DER of the SET OF attributes, as signed
    content: bytes  # the TSTInfo's DER, as hashed into messageDigest
    message_digest: bytes
    content_type: str


def _signed_data(token: bytes) -> _Node:
    """The SignedData of a TimeStampResp (status granted) or of a bare TimeStampToken (ContentInfo)."""
    outer = _children(_expect(_parse(token), 0x30, "the token"))
    if outer and outer[0].tag == 0x30:  # TimeStampResp: PKIStatusInfo, then the token
        status = _children(outer[0])
        if not status or _integer(status[0]) not in (0, 1) or len(outer) < 2:
            raise InputError("the time-stamp response was not granted")
        outer = _children(_expect(outer[1], 0x30, "the token"))
    if len(outer) < 2 or _oid(outer[0]) != _OID_SIGNED_DATA:
        raise InputError("corrupt time-stamp token: not a CMS SignedData")
    return _expect(_children(_expect(outer[1], 0xA0, "the content"))[0], 0x30, "SignedData")


@dataclass(frozen=True)
class _RawCertificate:
    der: bytes
    issuer: bytes  # the issuer Name's DER, as encoded
    serial: int
    subject: _Node


def _raw_certificate(node: _Node) -> _RawCertificate:
    tbs = _children(_expect(_children(_expect(node, 0x30, "a certificate"))[0], 0x30, "a certificate's body"))
    index = 1 if tbs[0].tag == 0xA0 else 0  # [0] version is optional
    return _RawCertificate(der=node.encoded, issuer=tbs[index + 2].encoded, serial=_integer(tbs[index]),
                           subject=_expect(tbs[index + 4], 0x30, "a certificate's subject"))


def _name_attribute(name: _Node, oid: str) -> str | None:
    """The first value of one attribute type in a DER Name, decoded leniently (for a report only)."""
    for rdn in _children(name):
        for pair in _children(rdn):
            parts = _children(pair)
            if len(parts) == 2 and _oid(parts[0]) == oid:
                return parts[1].content.decode("utf-8", "replace")
    return None


def _load(der: bytes) -> x509.Certificate | None:
    try:
        return x509.load_der_x509_certificate(der)
    except (ValueError, x509.InvalidVersion):
        return None


def _subject_key_id(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except (x509.ExtensionNotFound, *MALFORMED_EXTENSIONS):
        return None


def _signer(sid: _Node, raw: Sequence[_RawCertificate]) -> _RawCertificate:
    if sid.tag == 0x30:
        parts = _children(sid)
        if len(parts) != 2:
            raise InputError("corrupt time-stamp token: malformed signer identifier")
        wanted = (parts[0].encoded, _integer(parts[1]))
        found = [c for c in raw if (c.issuer, c.serial) == wanted]
    elif sid.tag == 0x80:
        found = [c for c in raw if (cert := _load(c.der)) is not None and _subject_key_id(cert) == sid.content]
    else:
        raise InputError("corrupt time-stamp token: unknown signer identifier")
    if not found:
        raise InputError("the time-stamp token does not carry its signer's certificate")
    return found[0]


def _attributes(node: _Node) -> tuple[bytes, str]:
    """The signed messageDigest and contentType (each must be there, once, with one value)."""
    values = {}
    for attribute in _children(node):
        parts = _children(_expect(attribute, 0x30, "an attribute"))
        if len(parts) != 2:
            raise InputError("corrupt time-stamp token: malformed signed attribute")
        members = _children(_expect(parts[1], 0x31, "attribute values"))
        oid = _oid(parts[0])
        if oid in values or len(members) != 1:
            raise InputError(f"corrupt time-stamp token: attribute {oid} is repeated or has several values")
        values[oid] = members[0]
    if _OID_MESSAGE_DIGEST not in values or _OID_CONTENT_TYPE not in values:
        raise InputError("corrupt time-stamp token: the signed attributes lack messageDigest or contentType")
    return _expect(values[_OID_MESSAGE_DIGEST], 0x04, "messageDigest").content, _oid(values[_OID_CONTENT_TYPE])


def read_token(token: bytes) -> TimestampToken:
    """Parse an RFC 3161 token: genTime, certificates, and the signer its SignerInfo names (``InputError`` when
    malformed). Only the first SignerInfo is read: an RFC 3161 token has exactly one."""
    try:
        return _read_token(bytes(token))
    except IndexError:
        raise InputError("corrupt time-stamp token: a required element is missing") from None


def _read_token(token: bytes) -> TimestampToken:
    fields = _children(_signed_data(token))
    encapsulated = _children(_expect(fields[2], 0x30, "encapContentInfo"))
    if _oid(encapsulated[0]) != _OID_TST_INFO:
        raise InputError("corrupt time-stamp token: its content is not a TSTInfo")
    content = _expect(_children(_expect(encapsulated[1], 0xA0, "eContent"))[0], 0x04, "eContent").content
    tst_info = _children(_expect(_parse(content), 0x30, "TSTInfo"))
    gen_time = _generalized_time(tst_info[4])
    certificates_node = next((f for f in fields[3:] if f.tag == 0xA0), None)
    if certificates_node is None:
        raise InputError("the time-stamp token carries no certificates")
    raw = [_raw_certificate(c) for c in _children(certificates_node) if c.tag == 0x30]
    if len(raw) > MAX_TOKEN_CERTIFICATES:
        raise InputError(f"the time-stamp token carries {len(raw)} certificates: refused")
    signer_infos = _children(_expect(fields[-1], 0x31, "signerInfos"))
    info = _children(_expect(signer_infos[0], 0x30, "SignerInfo"))
    digest_oid = _oid(_children(info[2])[0])
    signed = _expect(info[3], 0xA0, "the signed attributes (RFC 3161 requires them)")
    message_digest, content_type = _attributes(signed)
    if digest_oid not in _DIGESTS:
        raise InputError(f"the time-stamp token uses digest {digest_oid}, which is not supported here")
    signer = _signer(info[1], raw)
    return TimestampToken(
        gen_time=gen_time, certificates=tuple(c for c in (_load(r.der) for r in raw) if c is not None),
        signer=_load(signer.der),
        authority=_name_attribute(signer.subject, "2.5.4.3") or _name_attribute(signer.subject, "2.5.4.10"),
        authority_organization=_name_attribute(signer.subject, "2.5.4.10"),
        digest=_DIGESTS[digest_oid], signature_algorithm=_oid(_children(info[4])[0]),
        signature=_expect(info[5], 0x04, "the signature").content,
        signed_attributes=b"\x31" + signed.encoded[1:], content=content,
        message_digest=message_digest, content_type=content_type)


def verify_token_signature(token: TimestampToken) -> str | None:
    """None when the token's CMS signature verifies with its signer certificate; else why not."""
    digest = hashes.Hash(token.digest())
    digest.update(token.content)
    if digest.finalize() != token.message_digest:
        return "the token's signed message digest does not match its content"
    if token.content_type != _OID_TST_INFO:
        return "the token's signed content type is not a TSTInfo"
    if token.signer is None:
        return "the authority's certificate does not parse under strict X.509 rules, so it cannot be checked here"
    try:
        key = token.signer.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return "the authority's certificate holds a malformed or unsupported public key"
    try:
        if isinstance(key, rsa.RSAPublicKey):
            pad = (padding.PSS(padding.MGF1(token.digest()), padding.PSS.AUTO)
                   if token.signature_algorithm == _OID_RSA_PSS else padding.PKCS1v15())
            key.verify(token.signature, token.signed_attributes, pad, token.digest())
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(token.signature, token.signed_attributes, ec.ECDSA(token.digest()))
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(token.signature, token.signed_attributes)
        else:
            return f"the authority's key type ({type(key).__name__}) is not supported here"
    except InvalidSignature:
        return "the token's signature does not verify with its authority's certificate"
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return "the token's signature is malformed"
    return None


# -- the signal --

def _name(cert: x509.Certificate, oid=NameOID.COMMON_NAME) -> str | None:
    values = cert.subject.get_attributes_for_oid(oid)
    return str(values[0].value) if values else None


def _label(cert: x509.Certificate) -> str:
    return _name(cert) or _name(cert, NameOID.ORGANIZATION_NAME) or cert.subject.rfc4514_string()


def _has_timestamping(cert: x509.Certificate) -> bool:
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except (x509.ExtensionNotFound, *MALFORMED_EXTENSIONS):
        return False
    return ExtendedKeyUsageOID.TIME_STAMPING in usages


def _valid_at(cert: x509.Certificate, when: dt.datetime) -> bool:
    return cert.not_valid_before_utc <= when <= cert.not_valid_after_utc


def signature_codes(store: Mapping) -> dict[str, list[str]]:
    """The active manifest's success / informational / failure codes about its claim signature (``reader.json()``
    output), the input ``validate_timestamp`` expects."""
    results = store.get("validation_results") if isinstance(store, Mapping) else None
    active = results.get("activeManifest") if isinstance(results, Mapping) else None
    codes: dict[str, list[str]] = {"success": [], "informational": [], "failure": []}
    for kind in codes:
        items = active.get(kind) if isinstance(active, Mapping) else None
        for item in items if isinstance(items, list) else []:
            if (isinstance(item, Mapping) and isinstance(item.get("code"), str)
                    and str(item.get("url", "")).endswith("/c2pa.signature")):
                codes[kind].append(item["code"])
    return codes


def validate_timestamp(signature: CoseSignature | None, tsa_anchors: Sequence[x509.Certificate], *,
                       c2pa_codes: Mapping[str, Sequence[str]], signed_at: str | None = None,
                       source: str = "the C2PA TSA Trust List") -> TimestampSignal:
    """The time-stamp of a claim signature, trusted only as the module docstring says.

    ``signature``: from ``jumbf.manifest_signature`` (None when it could not be read); ``tsa_anchors``: the
    trusted time-stamp authorities; ``c2pa_codes``: c2pa's codes about this signature by kind (``signature_codes``);
    ``signed_at``: c2pa's ``signature_info.time``, reported when the token itself cannot be read; ``source``: the
    name of the list, for the report.
    """
    reported = tuple(dict.fromkeys(code for kind in ("success", "informational", "failure")
                                   for code in c2pa_codes.get(kind, ()) if code.startswith("timeStamp.")))
    base = {"source": source, "c2pa_codes": reported}
    if signature is None:
        if reported or signed_at:
            return TimestampSignal(TimestampStatus.NOT_CHECKED, time=signed_at, reason=(
                "the claim signature could not be read here, so its time-stamp authority was not checked"), **base)
        return TimestampSignal(TimestampStatus.ABSENT, **base)
    if not signature.timestamp_tokens:
        return TimestampSignal(TimestampStatus.ABSENT, **base)
    try:
        token = read_token(signature.timestamp_tokens[0])
    except InputError as exc:
        return TimestampSignal(TimestampStatus.INVALID, time=signed_at, reason=f"the token cannot be read ({exc})",
                               **base)
    base |= {"time": token.gen_time.isoformat().replace("+00:00", "Z"), "authority": token.authority,
             "authority_organization": token.authority_organization}
    broken = [code for code in reported if code in BROKEN]
    if broken:
        return TimestampSignal(TimestampStatus.INVALID, reason=f"c2pa reports {', '.join(broken)}", **base)
    signer = token.signer
    if signer is None:
        return TimestampSignal(TimestampStatus.NOT_CHECKED, reason=(
            "the authority's certificate does not parse under strict X.509 rules, so its chain cannot be checked "
            "here"), **base)
    problem = verify_token_signature(token)
    if problem:
        return TimestampSignal(TimestampStatus.INVALID, reason=problem, **base)
    if not _has_timestamping(signer):
        return TimestampSignal(TimestampStatus.INVALID, reason=(
            "the authority's certificate is not issued for time-stamping (no timeStamping key usage)"), **base)
    if VALIDATED not in c2pa_codes.get("success", ()):
        return TimestampSignal(TimestampStatus.NOT_CHECKED, reason=(
            "c2pa did not confirm that the token time-stamps this claim's signature (no timeStamp.validated)"),
            **base)
    if not tsa_anchors:
        return TimestampSignal(TimestampStatus.NOT_CHECKED, reason=f"{source} is empty or was not loaded", **base)
    others = tuple(c for c in token.certificates if fingerprint(c) != fingerprint(signer))
    path = trust_path((signer, *others), tsa_anchors)
    if path is None:
        return TimestampSignal(TimestampStatus.UNTRUSTED, reason=f"its authority is not on {source}", **base)
    for cert in (*path.certificates, path.anchor):
        if not _valid_at(cert, token.gen_time):
            return TimestampSignal(TimestampStatus.INVALID, reason=(
                f"certificate '{_label(cert)}' was not valid at the time-stamp's time"), **base)
    return TimestampSignal(TimestampStatus.TRUSTED, anchor=_label(path.anchor),
                           anchor_sha256=fingerprint(path.anchor), **base)

