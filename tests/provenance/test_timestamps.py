"""Time-stamps checked against a TSA trust list: the fixtures' real DigiCert tokens, and locally minted authorities
whose tokens are built here byte by byte (RFC 3161 TSTInfo in an RFC 5652 SignedData, signed with ECDSA)."""

import datetime as dt
import hashlib
import json
import random
from importlib import resources

import c2pa
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from helpers.files import INTEROP

from synthguard.errors import InputError
from synthguard.provenance import jumbf
from synthguard.provenance.timestamps import (
    TimestampSignal,
    TimestampStatus,
    read_token,
    signature_codes,
    validate_timestamp,
)

TSA_LIST = x509.load_pem_x509_certificates(
    (resources.files("synthguard.provenance") / "data" / "C2PA-TSA-TRUST-LIST.pem").read_bytes())
VALIDATED = {"success": ["timeStamp.validated"], "informational": [], "failure": []}
GEN_TIME = dt.datetime(2025, 1, 1, 12, 0, 0, tzinfo=dt.UTC)


def read_fixture(name: str) -> tuple[dict, jumbf.CoseSignature]:
    with open(INTEROP / name, "rb") as stream, c2pa.Reader("image/jpeg", stream) as reader:
        store = json.loads(reader.json())
        label = store["active_manifest"]
        return store, jumbf.manifest_signature(jumbf.read_store_jumbf(reader, label), label)


def check_fixture(name: str, anchors=TSA_LIST) -> TimestampSignal:
    store, signature = read_fixture(name)
    info = store["manifests"][store["active_manifest"]].get("signature_info", {})
    return validate_timestamp(signature, anchors, c2pa_codes=signature_codes(store), signed_at=info.get("time"))


# -- DER, enough to build a time-stamp token --

def tlv(tag: int, content: bytes) -> bytes:
    size = len(content)
    length = bytes([size]) if size < 0x80 else bytes([0x80 | ((size.bit_length() + 7) // 8)]) + size.to_bytes(
        (size.bit_length() + 7) // 8, "big")
    return bytes([tag]) + length + content


def seq(*parts: bytes) -> bytes:
    return tlv(0x30, b"".join(parts))


def set_of(*parts: bytes) -> bytes:
    return tlv(0x31, b"".join(sorted(parts)))


def oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    body = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        while arc > 0x7F:
            arc >>= 7
            chunk.append(0x80 | (arc & 0x7F))
        body += bytes(reversed(chunk))
    return tlv(0x06, bytes(body))


def integer(value: int) -> bytes:
    return tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))


SHA256, TST_INFO = "2.16.840.1.101.3.4.2.1", "1.2.840.113549.1.9.16.1.4"


def make_token(signer: x509.Certificate, key, certificates: list[x509.Certificate], *, when: dt.datetime = GEN_TIME,
               response: bool = True, status: int = 0, by_key_id: bool = False, damage=None) -> bytes:
    """An RFC 3161 token time-stamping 32 zero bytes, signed by ``key`` (``damage`` edits a part before use)."""
    parts = {"tst_info": seq(integer(1), oid("1.2.3.4"), seq(seq(oid(SHA256)), tlv(0x04, bytes(32))),
                             integer(7), tlv(0x18, when.strftime("%Y%m%d%H%M%SZ").encode()))}
    parts["attributes"] = [seq(oid("1.2.840.113549.1.9.3"), set_of(oid(TST_INFO))),
                           seq(oid("1.2.840.113549.1.9.4"),
                               set_of(tlv(0x04, hashlib.sha256(parts["tst_info"]).digest())))]
    signed_set = set_of(*parts["attributes"])
    parts["signature"] = key.sign(signed_set, ec.ECDSA(hashes.SHA256()))
    if damage:
        damage(parts)
    if by_key_id:
        sid = tlv(0x80, signer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest)
    else:
        sid = seq(signer.issuer.public_bytes(), integer(signer.serial_number))
    signer_info = seq(integer(1), sid, seq(oid(SHA256)), tlv(0xA0, b"".join(sorted(parts["attributes"]))),
                      seq(oid("1.2.840.10045.4.3.2")), tlv(0x04, parts["signature"]))
    signed_data = seq(integer(3), set_of(seq(oid(SHA256))),
                      seq(oid(TST_INFO), tlv(0xA0, tlv(0x04, parts["tst_info"]))),
                      tlv(0xA0, b"".join(c.public_bytes(Encoding.DER) for c in certificates)), set_of(signer_info))
    token = seq(oid("1.2.840.113549.1.7.2"), tlv(0xA0, signed_data))
    return seq(seq(integer(status)), token) if response else token


def name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Time Authority")])


def certificate(subject: str, key, issuer: str, issuer_key, *, ca: bool, eku: bool = False,
                not_after: dt.datetime = dt.datetime(2040, 1, 1, tzinfo=dt.UTC)) -> x509.Certificate:
    builder = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(dt.datetime(2020, 1, 1, tzinfo=dt.UTC)).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
    return builder.sign(issuer_key, hashes.SHA256())


class MintedTsa:
    """A root, an issuing CA under it and a time-stamping certificate under that, with their keys."""

    def __init__(self, *, eku: bool = True, tsa_not_after: dt.datetime = dt.datetime(2040, 1, 1, tzinfo=dt.UTC)):
        self.root_key, self.ca_key, self.key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
        self.root = certificate("Example TSA Root", self.root_key, "Example TSA Root", self.root_key, ca=True)
        self.ca = certificate("Example TSA CA", self.ca_key, "Example TSA Root", self.root_key, ca=True)
        self.tsa = certificate("Example TSA", self.key, "Example TSA CA", self.ca_key, ca=False, eku=eku,
                               not_after=tsa_not_after)

    def signature(self, **token_options) -> jumbf.CoseSignature:
        certificates = token_options.pop("certificates", [self.tsa, self.ca])
        token = make_token(self.tsa, self.key, certificates, **token_options)
        return jumbf.CoseSignature(manifest_label="urn:test", algorithm="ES256", certificates=(self.tsa,),
                                   timestamp_tokens=(token,), timestamp_header="sigTst2")


@pytest.fixture(scope="module")
def minted() -> MintedTsa:
    return MintedTsa()


# -- locally minted authorities --

def test_a_minted_authority_placed_in_the_anchors_is_trusted(minted):
    signal = validate_timestamp(minted.signature(), [minted.root], c2pa_codes=VALIDATED)
    assert signal.status is TimestampStatus.TRUSTED and signal.trusted and signal.present
    assert signal.time == "2025-01-01T12:00:00Z"
    assert (signal.authority, signal.authority_organization) == ("Example TSA", "Example Time Authority")
    assert signal.anchor == "Example TSA Root" and signal.reason is None
    assert signal.anchor_sha256 == hashlib.sha256(minted.root.public_bytes(Encoding.DER)).hexdigest()
    assert signal.describe() == ("Time-stamp: 2025-01-01T12:00:00Z by Example TSA (Example Time Authority), "
                                 "trusted: it chains to 'Example TSA Root' on the C2PA TSA Trust List",)
    assert json.loads(json.dumps(signal.to_dict()))["trusted"] is True


def test_the_same_authority_not_placed_is_untrusted(minted):
    signal = validate_timestamp(minted.signature(), TSA_LIST, c2pa_codes=VALIDATED)
    assert signal.status is TimestampStatus.UNTRUSTED and not signal.trusted
    assert signal.reason == "its authority is not on the C2PA TSA Trust List" and signal.anchor is None
    assert signal.describe()[0].endswith("not trusted: its authority is not on the C2PA TSA Trust List")


def test_an_issuing_ca_on_the_list_is_the_anchor(minted):
    signal = validate_timestamp(minted.signature(), [minted.ca], c2pa_codes=VALIDATED)
    assert signal.trusted and signal.anchor == "Example TSA CA"
    # the token carries only the TSA certificate: no verified link reaches the root
    signal = validate_timestamp(minted.signature(certificates=[minted.tsa]), [minted.root], c2pa_codes=VALIDATED)
    assert signal.status is TimestampStatus.UNTRUSTED


def test_a_root_with_the_same_name_and_another_key_is_not_the_anchor(minted):
    key = ec.generate_private_key(ec.SECP256R1())
    impostor = certificate("Example TSA Root", key, "Example TSA Root", key, ca=True)
    signal = validate_timestamp(minted.signature(), [impostor], c2pa_codes=VALIDATED)
    assert signal.status is TimestampStatus.UNTRUSTED


def test_a_bare_token_and_a_key_id_signer_are_read(minted):
    for options in ({"response": False}, {"by_key_id": True}):
        assert validate_timestamp(minted.signature(**options), [minted.root], c2pa_codes=VALIDATED).trusted


def test_a_certificate_without_the_time_stamping_usage_is_refused():
    tsa = MintedTsa(eku=False)
    signal = validate_timestamp(tsa.signature(), [tsa.root], c2pa_codes=VALIDATED)
    assert signal.status is TimestampStatus.INVALID and "timeStamping" in signal.reason


def test_a_time_outside_the_authority_certificate_is_refused():
    tsa = MintedTsa(tsa_not_after=dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    signal = validate_timestamp(tsa.signature(), [tsa.root], c2pa_codes=VALIDATED)
    assert signal.status is TimestampStatus.INVALID
    assert signal.reason == "certificate 'Example TSA' was not valid at the time-stamp's time"
    signal = validate_timestamp(tsa.signature(when=dt.datetime(2023, 6, 1, tzinfo=dt.UTC)), [tsa.root],
                                c2pa_codes=VALIDATED)
    assert signal.trusted


def _flip_signature(parts):
    parts["signature"] = parts["signature"][:-1] + bytes([parts["signature"][-1] ^ 1])


def _change_time(parts):
    parts["tst_info"] = parts["tst_info"].replace(b"20250101", b"20250102")


def test_a_changed_token_is_refused(minted):
    signal = validate_timestamp(minted.signature(damage=_flip_signature), [minted.root], c2pa_codes=VALIDATED)
    assert signal.status is TimestampStatus.INVALID and signal.reason in (
        "the token's signature does not verify with its authority's certificate", "the token's signature is malformed")
    signal = validate_timestamp(minted.signature(damage=_change_time), [minted.root], c2pa_codes=VALIDATED)
    assert signal.status is TimestampStatus.INVALID
    assert signal.reason == "the token's signed message digest does not match its content"


def test_c2pa_codes_decide_whether_the_token_belongs_to_this_claim(minted):
    signature = minted.signature()
    signal = validate_timestamp(signature, [minted.root], c2pa_codes={"success": ["timeStamp.trusted"]})
    assert signal.status is TimestampStatus.NOT_CHECKED and "timeStamp.validated" in signal.reason
    signal = validate_timestamp(signature, [minted.root],
                                c2pa_codes={"success": [], "informational": ["timeStamp.mismatch"]})
    assert signal.status is TimestampStatus.INVALID and signal.reason == "c2pa reports timeStamp.mismatch"
    signal = validate_timestamp(signature, [], c2pa_codes=VALIDATED)
    assert signal.status is TimestampStatus.NOT_CHECKED and "empty or was not loaded" in signal.reason


def test_no_signature_or_no_token():
    assert validate_timestamp(None, TSA_LIST, c2pa_codes={}).status is TimestampStatus.ABSENT
    signal = validate_timestamp(None, TSA_LIST, c2pa_codes=VALIDATED, signed_at="2025-01-01T00:00:00+00:00")
    assert signal.status is TimestampStatus.NOT_CHECKED and signal.time == "2025-01-01T00:00:00+00:00"
    bare = jumbf.CoseSignature(manifest_label="urn:test", algorithm="ES256", certificates=())
    signal = validate_timestamp(bare, TSA_LIST, c2pa_codes={})
    assert not signal.present and signal.describe() == (
        "Time-stamp: none (the signing time is the signer's own claim)",)


def test_a_refused_response_and_garbage_are_unreadable(minted):
    for token in (make_token(minted.tsa, minted.key, [minted.tsa], status=2), b"", b"\x30\x80\x00\x00",
                  b"\x30\x03\x02\x01", bytes(range(256))):
        with pytest.raises(InputError):
            read_token(token)
        signature = jumbf.CoseSignature(manifest_label="urn:test", algorithm="ES256", certificates=(),
                                        timestamp_tokens=(token,))
        signal = validate_timestamp(signature, [minted.root], c2pa_codes=VALIDATED)
        assert signal.status is TimestampStatus.INVALID and signal.reason.startswith("the token cannot be read")


def test_random_damage_to_a_token_never_crashes(minted):
    token = make_token(minted.tsa, minted.key, [minted.tsa, minted.ca])
    rng = random.Random(3161)
    seen = set()
    for _ in range(400):
        damaged = bytearray(token)
        for _ in range(rng.randint(1, 3)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        if rng.random() < 0.2:
            damaged = damaged[:rng.randrange(len(damaged))]
        signature = jumbf.CoseSignature(manifest_label="urn:test", algorithm="ES256", certificates=(),
                                        timestamp_tokens=(bytes(damaged),))
        signal = validate_timestamp(signature, [minted.root], c2pa_codes=VALIDATED)
        seen.add(signal.status)
        if signal.trusted:  # damage outside what is signed (a version number, say) may leave it trusted, as it was
            assert (signal.time, signal.authority, signal.anchor) == ("2025-01-01T12:00:00Z", "Example TSA",
                                                                      "Example TSA Root")
    assert TimestampStatus.INVALID in seen


# -- the fixtures' real tokens --

def test_c_jpg_is_stamped_by_digicert_which_is_not_on_the_c2pa_tsa_list():
    signal = check_fixture("C.jpg")
    assert signal.status is TimestampStatus.UNTRUSTED
    assert (signal.authority, signal.authority_organization) == ("DigiCert Timestamp 2023", "DigiCert, Inc.")
    assert signal.time == "2024-08-06T21:53:37Z"  # the same instant c2pa reports as signature_info.time
    assert signal.c2pa_codes == ("timeStamp.validated", "timeStamp.trusted")  # c2pa's "trusted" is no trust check
    assert signal.reason == "its authority is not on the C2PA TSA Trust List"


def test_c_jpg_chain_verifies_to_its_own_root():
    _, signature = read_fixture("C.jpg")
    token = read_token(signature.timestamp_tokens[0])
    # the token carries DigiCert Timestamp 2023 <- G4 TimeStamping CA <- Trusted Root G4 (RSA, verified here)
    names = [c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value for c in token.certificates]
    assert names == ["DigiCert Timestamp 2023", "DigiCert Trusted G4 RSA4096 SHA256 TimeStamping CA",
                     "DigiCert Trusted Root G4"]
    signal = check_fixture("C.jpg", anchors=[token.certificates[2]])
    assert signal.trusted and signal.anchor == "DigiCert Trusted Root G4"
    # the C2PA TSA list's DigiCert entries are its own C2PA hierarchy, not the public G4 time-stamping one
    digicert = [c for c in TSA_LIST if "DigiCert" in c.subject.rfc4514_string()]
    assert len(digicert) == 4 and not any(jumbf.chain_anchor(token.certificates, [c]) for c in digicert)


def test_the_other_fixtures():
    assert check_fixture("CACA.jpg").status is TimestampStatus.UNTRUSTED  # a sigTst2 (v2) time-stamp
    signal = check_fixture("E-sig-CA.jpg")
    assert signal.status is TimestampStatus.INVALID and signal.reason == "c2pa reports timeStamp.mismatch"
    # a real TSA certificate with "_" in a PrintableString: strict X.509 parsers refuse it, so it is not checked
    signal = check_fixture("adobe_connected_identities.jpg")
    assert signal.status is TimestampStatus.NOT_CHECKED and "strict X.509" in signal.reason
    assert signal.authority == "ECC256_SHA256_Timestamp_Responder_Adobe_NOV_2024"
    assert check_fixture("cawg/ica_success.jpg").status is TimestampStatus.ABSENT


def test_signature_codes_keep_only_the_claim_signature():
    store = {"validation_results": {"activeManifest": {
        "success": [{"code": "timeStamp.validated", "url": "self#jumbf=/c2pa/urn:x/c2pa.signature"},
                    {"code": "timeStamp.validated", "url": "self#jumbf=/c2pa/urn:x/c2pa.assertions/cawg.identity"},
                    {"code": 5, "url": "self#jumbf=/c2pa/urn:x/c2pa.signature"}, "junk"],
        "failure": None}}}
    assert signature_codes(store) == {"success": ["timeStamp.validated"], "informational": [], "failure": []}
    assert signature_codes({}) == signature_codes(None) == {"success": [], "informational": [], "failure": []}
