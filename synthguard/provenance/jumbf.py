"""A strict reader of the C2PA manifest store (JUMBF) and of a manifest's claim signature (COSE_Sign1).

c2pa validates a manifest but does not hand back the signer's certificates or the time-stamp token. They sit in
the store: ISO/IEC 19566-5 JUMBF superboxes (``jumb``, each opening with a description box ``jumd``: a 16-byte
type UUID, a toggles byte, then a null-terminated label when toggle bit 0x02 is set, a 4-byte id when 0x04 is set,
a 32-byte hash when 0x08 is set), one per manifest, labelled with the manifest's label; inside it
``c2pa.signature`` holds a ``cbor`` box with the COSE_Sign1 (RFC 9052, CBOR tag 18) of the claim:
``[protected: bstr(map), unprotected: map, payload: nil, signature: bstr]``. The signer's chain is header 33
(``x5chain``), the RFC 3161 time-stamp tokens are in the unprotected ``sigTst2`` / ``sigTst`` header
(``{"tstTokens": [{"val": bstr}]}``; C2PA 2.x, "Time-stamps").

Everything read here is hostile until parsed: box lengths are checked against the buffer, nesting and box counts
are bounded, and any malformed structure raises ``InputError`` naming what is wrong.

``chain_anchor`` answers *which* anchor a certificate chain ends at, so a caller can say which trust source (a
trust list, the user's anchors, their own identity) vouched for a signer; every link it follows is a verified
signature.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import c2pa
import cbor2
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from synthguard.errors import InputError, one_line
from synthguard.provenance.identity import cert_fingerprint

# Nesting of a C2PA store: store > manifest > assertion store > assertion > (an ingredient's boxes); 32 is far more
# than any valid store and still shallow enough for the recursion below.
MAX_DEPTH = 32
MAX_BOXES = 100_000
MAX_CHAIN = 16  # certificates in one x5chain; real chains hold 2-4
# What reading a certificate's extensions raises when they are malformed (cryptography parses them lazily).
MALFORMED_EXTENSIONS = (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType)

STORE_UUID = bytes.fromhex("6332706100110010800000aa00389b71")  # "c2pa" + ISO suffix: the manifest store
_TOGGLE_LABEL, _TOGGLE_ID, _TOGGLE_HASH = 0x02, 0x04, 0x08
_X5CHAIN = 33
_ALG = 1
_TIMESTAMP_HEADERS = ("sigTst2", "sigTst")

# COSE algorithm identifiers (IANA "COSE Algorithms") that C2PA allows, by their names in the C2PA specification.
COSE_ALGORITHMS = {-7: "ES256", -35: "ES384", -36: "ES512", -37: "PS256", -38: "PS384", -39: "PS512",
                   -8: "Ed25519"}


@dataclass(frozen=True)
class ContentBox:
    """A JUMBF content box: its four-character type (``cbor``, ``json``, ``bidb``...) and its payload."""

    box_type: str
    payload: bytes


@dataclass(frozen=True)
class Superbox:
    """A JUMBF superbox: its description (type UUID, label) and its children in file order."""

    type_uuid: bytes
    label: str | None
    children: tuple[Superbox | ContentBox, ...]

    def child(self, label: str) -> Superbox | None:
        """The first child superbox with this label (None when there is none)."""
        return next((c for c in self.children if isinstance(c, Superbox) and c.label == label), None)

    def content(self, box_type: str) -> ContentBox | None:
        """The first content box of this type (None when there is none)."""
        return next((c for c in self.children if isinstance(c, ContentBox) and c.box_type == box_type), None)

    @property
    def superboxes(self) -> tuple[Superbox, ...]:
        return tuple(c for c in self.children if isinstance(c, Superbox))


@dataclass(frozen=True)
class CoseSignature:
    """What a manifest's claim signature carries besides the signature bytes (c2pa checks those).

    ``certificates``: the signer's chain as sent, end-entity first; ``timestamp_tokens``: the RFC 3161 tokens (DER,
    as stored: a TimeStampResp or a bare TimeStampToken) of ``timestamp_header`` (``sigTst2`` or ``sigTst``, the
    first of the two in the header, as c2pa reads it); ``algorithm``: the COSE algorithm's C2PA name.
    """

    manifest_label: str
    algorithm: str | None
    certificates: tuple[x509.Certificate, ...]
    timestamp_tokens: tuple[bytes, ...] = ()
    timestamp_header: str | None = None

    @property
    def signer_certificate(self) -> x509.Certificate | None:
        return self.certificates[0] if self.certificates else None

    def to_dict(self) -> dict:
        return {"manifest_label": self.manifest_label, "algorithm": self.algorithm,
                "certificates": [describe_certificate(c) for c in self.certificates],
                "timestamp_header": self.timestamp_header, "timestamp_tokens": len(self.timestamp_tokens)}


def describe_certificate(cert: x509.Certificate) -> dict:
    """Subject, issuer, serial, validity and SHA-256 fingerprint of a certificate, JSON-ready."""
    return {"subject": cert.subject.rfc4514_string(), "issuer": cert.issuer.rfc4514_string(),
            "serial_number": str(cert.serial_number), "not_before": cert.not_valid_before_utc.isoformat(),
            "not_after": cert.not_valid_after_utc.isoformat(), "sha256": cert_fingerprint(cert)}




def _box_header(data: bytes, offset: int, end: int) -> tuple[int, str, int]:
    """(box length, type, header length) of the box at ``offset``; the box must end within ``end``."""
    if end - offset < 8:
        raise InputError(f"corrupt JUMBF: {end - offset} stray bytes at offset {offset} (a box header needs 8)")
    length, raw_type = struct.unpack_from(">I4s", data, offset)
    header = 8
    if length == 1:
        if end - offset < 16:
            raise InputError(f"corrupt JUMBF: truncated extended box length at offset {offset}")
        (length,) = struct.unpack_from(">Q", data, offset + 8)
        header = 16
    elif length == 0:
        length = end - offset  # ISO BMFF: a zero length runs to the end of the enclosing box
    if length < header or length > end - offset:
        raise InputError(f"corrupt JUMBF: box at offset {offset} declares {length} bytes, "
                         f"{end - offset} remain in its parent")
    try:
        box_type = raw_type.decode("ascii")
    except UnicodeDecodeError:
        raise InputError(f"corrupt JUMBF: box at offset {offset} has a non-ASCII type {raw_type!r}") from None
    return length, box_type, header


def _description(payload: bytes, offset: int) -> tuple[bytes, str | None]:
    """(type UUID, label) of a ``jumd`` box's payload."""
    if len(payload) < 17:
        raise InputError(f"corrupt JUMBF: description box at offset {offset} is {len(payload)} bytes (needs 17)")
    type_uuid, toggles = payload[:16], payload[16]
    label, position = None, 17
    if toggles & _TOGGLE_LABEL:
        stop = payload.find(b"\0", 17)
        if stop < 0:
            raise InputError(f"corrupt JUMBF: the label of the description box at offset {offset} is not "
                             f"terminated")
        try:
            label = payload[17:stop].decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"corrupt JUMBF: the label at offset {offset} is not UTF-8") from None
        position = stop + 1
    needed = (4 if toggles & _TOGGLE_ID else 0) + (32 if toggles & _TOGGLE_HASH else 0)
    if len(payload) - position < needed:
        raise InputError(f"corrupt JUMBF: the description box at offset {offset} is truncated")
    return type_uuid, label


class _Counter:
    def __init__(self) -> None:
        self.boxes = 0

    def tick(self, offset: int) -> None:
        self.boxes += 1
        if self.boxes > MAX_BOXES:
            raise InputError(f"JUMBF holds more than {MAX_BOXES} boxes (at offset {offset}): refused")


def _superbox(data: bytes, start: int, end: int, depth: int, counter: _Counter) -> Superbox:
    """The superbox whose payload is ``data[start:end]`` (its ``jumd`` first, then its children)."""
    if depth > MAX_DEPTH:
        raise InputError(f"JUMBF nested deeper than {MAX_DEPTH} superboxes (at offset {start}): refused")
    length, box_type, header = _box_header(data, start, end)
    if box_type != "jumd":
        raise InputError(f"corrupt JUMBF: superbox at offset {start} opens with {box_type!r}, not a description box")
    counter.tick(start)
    type_uuid, label = _description(data[start + header:start + length], start)
    children: list[Superbox | ContentBox] = []
    offset = start + length
    while offset < end:
        length, box_type, header = _box_header(data, offset, end)
        counter.tick(offset)
        if box_type == "jumb":
            children.append(_superbox(data, offset + header, offset + length, depth + 1, counter))
        else:
            children.append(ContentBox(box_type, data[offset + header:offset + length]))
        offset += length
    return Superbox(type_uuid=type_uuid, label=label, children=tuple(children))


def parse_jumbf(data: bytes) -> Superbox:
    """The one top-level superbox of a JUMBF buffer (a C2PA manifest store), every box checked."""
    data = bytes(data)
    if not data:
        raise InputError("corrupt JUMBF: empty")
    length, box_type, header = _box_header(data, 0, len(data))
    if box_type != "jumb":
        raise InputError(f"corrupt JUMBF: the buffer opens with a {box_type!r} box, not a superbox")
    if length != len(data):
        raise InputError(f"corrupt JUMBF: the top superbox is {length} bytes of a {len(data)}-byte buffer")
    return _superbox(data, header, length, 1, _Counter())


def manifest_store(data: bytes) -> Superbox:
    """The manifest store superbox of a JUMBF buffer; refuses anything else."""
    store = parse_jumbf(data)
    if store.type_uuid != STORE_UUID or store.label != "c2pa":
        raise InputError(f"not a C2PA manifest store: the top superbox is {store.label!r} "
                         f"({store.type_uuid.hex()})")
    return store


def _cbor(payload: bytes, what: str):
    stream = io.BytesIO(payload)
    try:
        value = cbor2.CBORDecoder(stream).decode()
    except (cbor2.CBORError, ValueError, TypeError, OverflowError, RecursionError, MemoryError) as exc:
        raise InputError(f"corrupt {what}: {one_line(exc)}") from None
    if stream.tell() != len(payload):
        raise InputError(f"corrupt {what}: {len(payload) - stream.tell()} bytes after its CBOR")
    return value


def _certificates(value, label: str) -> tuple[x509.Certificate, ...]:
    items = [value] if isinstance(value, bytes) else value
    if not isinstance(items, (list, tuple)) or not items or not all(isinstance(i, bytes) for i in items):
        raise InputError(f"corrupt claim signature of {label}: x5chain is not one or more DER certificates")
    if len(items) > MAX_CHAIN:
        raise InputError(f"claim signature of {label}: x5chain holds {len(items)} certificates "
                         f"(more than {MAX_CHAIN}): refused")
    try:
        return tuple(x509.load_der_x509_certificate(item) for item in items)
    except (ValueError, x509.InvalidVersion) as exc:
        raise InputError(f"corrupt certificate in the claim signature of {label}: {one_line(exc)}") from None


def _timestamps(unprotected: Mapping, label: str) -> tuple[tuple[bytes, ...], str | None]:
    header = next((k for k in unprotected if k in _TIMESTAMP_HEADERS), None)
    if header is None:
        return (), None
    container = unprotected[header]
    tokens = container.get("tstTokens") if isinstance(container, Mapping) else None
    if not isinstance(tokens, (list, tuple)) or not all(isinstance(t, Mapping) and isinstance(t.get("val"), bytes)
                                               for t in tokens):
        raise InputError(f"corrupt time-stamp header {header} in the claim signature of {label}")
    return tuple(t["val"] for t in tokens), header


def parse_cose_sign1(payload: bytes, label: str) -> CoseSignature:
    """The certificates, time-stamp tokens and algorithm of a claim signature's COSE_Sign1 (``label``: whose)."""
    value = _cbor(payload, f"claim signature of {label}")
    if isinstance(value, cbor2.CBORTag):
        if value.tag != 18:
            raise InputError(f"claim signature of {label} is CBOR tag {value.tag}, not COSE_Sign1 (18)")
        value = value.value
    if not (isinstance(value, (list, tuple)) and len(value) == 4 and isinstance(value[0], bytes)
            and isinstance(value[1], Mapping) and isinstance(value[3], bytes)):
        raise InputError(f"claim signature of {label} is not a COSE_Sign1 "
                         f"[protected, unprotected, payload, signature]")
    protected = _cbor(value[0], f"protected header of {label}") if value[0] else {}
    if not isinstance(protected, Mapping):
        raise InputError(f"corrupt protected header in the claim signature of {label}: not a map")
    unprotected = value[1]
    chain = protected.get(_X5CHAIN, unprotected.get(_X5CHAIN, unprotected.get("x5chain")))
    if chain is None:
        raise InputError(f"the claim signature of {label} carries no certificate (x5chain)")
    alg = protected.get(_ALG)
    algorithm = COSE_ALGORITHMS.get(alg, f"cose:{alg}") if isinstance(alg, int) else None
    tokens, header = _timestamps(unprotected, label)
    return CoseSignature(manifest_label=label, algorithm=algorithm, certificates=_certificates(chain, label),
                         timestamp_tokens=tokens, timestamp_header=header)


def manifest_signature(store_jumbf: bytes, manifest_label: str) -> CoseSignature | None:
    """The claim signature of one manifest of a store (None when the store has no such manifest or signature).

    Raises ``InputError`` when the store or the signature is malformed.
    """
    return signature_in(manifest_store(store_jumbf), manifest_label)


def signature_in(store: Superbox, manifest_label: str) -> CoseSignature | None:
    """``manifest_signature`` over a store already parsed (``manifest_store``): one parse serves every manifest."""
    manifest = store.child(manifest_label)
    if manifest is None:
        return None
    signature = manifest.child("c2pa.signature")
    if signature is None:
        return None
    box = signature.content("cbor")
    if box is None:
        raise InputError(f"the claim signature box of {manifest_label} holds no CBOR")
    return parse_cose_sign1(box.payload, manifest_label)


def identity_signature(store_jumbf: bytes, manifest_label: str, assertion_label: str) -> CoseSignature | None:
    """The COSE signature of a CAWG X.509 identity assertion (its certificate chain: who is named); None when the
    manifest has no such assertion or the assertion is not ``cawg.x509.cose`` (an identity claims aggregation
    credential is signed by a DID, not a certificate)."""
    manifest = manifest_store(store_jumbf).child(manifest_label)
    assertions = manifest.child("c2pa.assertions") if manifest else None
    assertion = assertions.child(assertion_label) if assertions else None
    box = assertion.content("cbor") if assertion else None
    if box is None:
        return None
    data = _cbor(box.payload, f"identity assertion {assertion_label}")
    payload = data.get("signer_payload") if isinstance(data, Mapping) else None
    if not isinstance(payload, Mapping) or payload.get("sig_type") != "cawg.x509.cose":
        return None
    if not isinstance(data.get("signature"), bytes):
        raise InputError(f"the identity assertion {assertion_label} of {manifest_label} holds no signature")
    return parse_cose_sign1(data["signature"], f"{manifest_label}/{assertion_label}")


def read_store_jumbf(reader, manifest_label: str) -> bytes:
    """The whole manifest store (JUMBF) behind an open ``c2pa.Reader``, through its signature resource."""
    stream = io.BytesIO()
    try:
        reader.resource_to_stream(f"self#jumbf=/c2pa/{manifest_label}/c2pa.signature", stream)
    except c2pa.C2paError as exc:
        raise InputError(f"the manifest store of {manifest_label} cannot be read: {one_line(exc)}") from None
    return stream.getvalue()


# -- which anchor a chain ends at --

def _issued_by(cert: x509.Certificate, issuer: x509.Certificate, *, anchor: bool) -> bool:
    """Did ``issuer`` sign ``cert`` (names chained, signature verified) and may it issue certificates?"""
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    try:
        return issuer.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return anchor  # a v1 root given as an anchor carries no extensions; a certificate in the chain must say CA
    except MALFORMED_EXTENSIONS:
        return False


@dataclass(frozen=True)
class TrustPath:
    """A verified path: ``certificates`` from the end-entity up to (not including) ``anchor``; ``anchor`` is
    either the last of them (an anchor found in the chain itself) or the certificate that issued the last."""

    certificates: tuple[x509.Certificate, ...]
    anchor: x509.Certificate


def trust_path(chain: Sequence[x509.Certificate], anchors: Sequence[x509.Certificate]) -> TrustPath | None:
    """The path from ``chain[0]`` to one of ``anchors`` through the chain's own verified issuer links, or None.

    At each step: a certificate that is an anchor (same SHA-256 fingerprint) ends the path; so does an anchor that
    verifiably issued it; else the next link is a certificate of ``chain`` that verifiably issued it and is a CA.
    The chain may come in any order (a time-stamp token's certificates are a set); no certificate is used twice.
    """
    if not chain:
        return None
    by_print = {cert_fingerprint(a): a for a in anchors}
    links = [(cert_fingerprint(c), c) for c in chain]
    path: list[x509.Certificate] = []
    used: set[str] = set()
    current_print, current = links[0]
    for _ in range(min(len(chain), MAX_CHAIN) + 1):
        path.append(current)
        used.add(current_print)
        if current_print in by_print:
            return TrustPath(certificates=tuple(path), anchor=by_print[current_print])
        issuer = next((a for a in anchors if _issued_by(current, a, anchor=True)), None)
        if issuer is not None:
            return TrustPath(certificates=tuple(path), anchor=issuer)
        found = next(((p, c) for p, c in links if p not in used and _issued_by(current, c, anchor=False)), None)
        if found is None:
            return None
        current_print, current = found
    return None


def chain_anchor(chain: Sequence[x509.Certificate], anchors: Sequence[x509.Certificate]) -> x509.Certificate | None:
    """The anchor (one of ``anchors``) that ``chain`` ends at, every link verified; None when it ends at none."""
    path = trust_path(chain, anchors)
    return path.anchor if path else None


