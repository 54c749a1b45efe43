"""The strict JUMBF / COSE reader of provenance.jumbf, over the C2PA fixtures and over hand-built hostile stores."""

import datetime as dt
import json
import random
import struct

import c2pa
import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from helpers.files import INTEROP

from synthguard.errors import InputError
from synthguard.provenance import jumbf

# Every fixture with a readable manifest, and the signature algorithm c2pa names for it.
MANIFEST_FILES = ["C.jpg", "CA.jpg", "CACA.jpg", "CACAE-uri-CA.jpg", "E-sig-CA.jpg", "XCA.jpg", "boxhash.jpg",
                  "adobe_connected_identities.jpg", "cawg/C_with_CAWG_data.jpg", "cawg/ica_success.jpg",
                  "cawg/ica_valid_until_in_past.jpg", "cawg/x509_pad1_invalid.jpg"]
STORE_UUID = jumbf.STORE_UUID
MANIFEST_UUID = bytes.fromhex("63326d6100110010800000aa00389b71")
SIGNATURE_UUID = bytes.fromhex("6332637300110010800000aa00389b71")


def read_fixture(name: str) -> tuple[dict, bytes]:
    with open(INTEROP / name, "rb") as stream, c2pa.Reader("image/jpeg", stream) as reader:
        store = json.loads(reader.json())
        return store, jumbf.read_store_jumbf(reader, store["active_manifest"])


@pytest.fixture(scope="module")
def fixtures() -> dict[str, tuple[dict, bytes]]:
    return {name: read_fixture(name) for name in MANIFEST_FILES}


# -- hand-built boxes --

def box(box_type: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), box_type) + payload


def description(type_uuid: bytes, label: str | None, toggles: int = 0x03) -> bytes:
    return box(b"jumd", type_uuid + bytes([toggles]) + (label.encode() + b"\0" if label is not None else b""))


def superbox(type_uuid: bytes, label: str | None, *children: bytes) -> bytes:
    return box(b"jumb", description(type_uuid, label) + b"".join(children))


def mint_chain(*, intermediate_is_ca: bool = True) -> tuple[list[x509.Certificate], x509.Certificate]:
    """(leaf, intermediate) and the root that issued the intermediate, ES256, valid 2020-2040."""
    start, end = dt.datetime(2020, 1, 1, tzinfo=dt.UTC), dt.datetime(2040, 1, 1, tzinfo=dt.UTC)

    def cert(name, key, issuer_name, issuer_key, ca):
        return (x509.CertificateBuilder().subject_name(name).issuer_name(issuer_name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
                .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
                .sign(issuer_key, hashes.SHA256()))

    names = [x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, n)]) for n in ("Root", "Intermediate", "Leaf")]
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in names]
    root = cert(names[0], keys[0], names[0], keys[0], True)
    middle = cert(names[1], keys[1], names[0], keys[0], intermediate_is_ca)
    leaf = cert(names[2], keys[2], names[1], keys[1], False)
    return [leaf, middle], root


def cose(protected: dict | None = None, unprotected: dict | None = None, *, tag: int = 18) -> bytes:
    chain, _ = mint_chain()
    protected = {1: -7, 33: [c.public_bytes(Encoding.DER) for c in chain]} if protected is None else protected
    body = [cbor2.dumps(protected), unprotected or {}, None, b"\0" * 64]
    return cbor2.dumps(cbor2.CBORTag(tag, body))


def store_with(signature_payload: bytes, label: str = "urn:test:1") -> bytes:
    return superbox(STORE_UUID, "c2pa", superbox(MANIFEST_UUID, label, superbox(
        SIGNATURE_UUID, "c2pa.signature", box(b"cbor", signature_payload))))


# -- the fixtures --

@pytest.mark.parametrize("name", MANIFEST_FILES)
def test_every_fixture_signature_matches_what_c2pa_reports(fixtures, name):
    store, data = fixtures[name]
    label = store["active_manifest"]
    signature = jumbf.manifest_signature(data, label)
    info = store["manifests"][label]["signature_info"]
    leaf = signature.certificates[0]
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == info["common_name"]
    assert str(leaf.serial_number) == info["cert_serial_number"]
    assert signature.algorithm == info["alg"].upper()
    assert len(signature.certificates) >= 2  # C2PA forbids a self-signed signer: the chain is sent
    # one superbox per manifest of the store, each labelled as c2pa names it
    assert {m.label for m in jumbf.manifest_store(data).superboxes} == set(store["manifests"])
    # a time-stamp token whenever c2pa reports a time-stamp code, none otherwise
    results = store["validation_results"]["activeManifest"]
    stamped = any(i["code"].startswith("timeStamp.") for kind in results.values() for i in kind)
    assert bool(signature.timestamp_tokens) == stamped
    assert json.dumps(signature.to_dict())


def test_c_jpg_is_read_as_measured(fixtures):
    store, data = fixtures["C.jpg"]
    assert len(data) == 45872
    signature = jumbf.manifest_signature(data, store["active_manifest"])
    assert signature.algorithm == "PS256" and signature.timestamp_header == "sigTst"
    assert [c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value for c in signature.certificates] == \
        ["C2PA Signer", "Intermediate CA"]
    assert len(signature.timestamp_tokens) == 1 and signature.timestamp_tokens[0][:2] == b"\x30\x82"


def test_a_manifest_the_store_does_not_hold_gives_none(fixtures):
    _, data = fixtures["C.jpg"]
    assert jumbf.manifest_signature(data, "urn:uuid:not-there") is None


def test_the_ingredient_manifests_are_readable_too(fixtures):
    store, data = fixtures["CACAE-uri-CA.jpg"]
    for label in store["manifests"]:
        assert jumbf.manifest_signature(data, label).certificates


def test_an_x509_identity_assertion_gives_its_certificate_chain(fixtures):
    store, data = fixtures["cawg/C_with_CAWG_data.jpg"]
    identity = jumbf.identity_signature(data, store["active_manifest"], "cawg.identity")
    data_info = next(a for a in store["manifests"][store["active_manifest"]]["assertions"]
                     if a["label"] == "cawg.identity")["data"]["signature_info"]
    assert identity.algorithm == "Ed25519"
    assert str(identity.certificates[0].serial_number) == data_info["cert_serial_number"]
    # an identity claims aggregation credential is signed with a DID key, not a certificate
    store, data = fixtures["cawg/ica_success.jpg"]
    assert jumbf.identity_signature(data, store["active_manifest"], "cawg.identity") is None
    assert jumbf.identity_signature(data, store["active_manifest"], "cawg.identity__9") is None


# -- corrupt stores --

@pytest.mark.parametrize("cut", [1, 7, 100, 45000])
def test_a_truncated_store_is_refused(fixtures, cut):
    store, data = fixtures["C.jpg"]
    with pytest.raises(InputError, match="JUMBF"):
        jumbf.manifest_signature(data[:-cut], store["active_manifest"])


def test_trailing_bytes_after_the_store_are_refused(fixtures):
    store, data = fixtures["C.jpg"]
    with pytest.raises(InputError, match="top superbox is"):
        jumbf.manifest_signature(data + b"\0" * 8, store["active_manifest"])


def test_an_inner_length_past_its_parent_is_refused():
    data = bytearray(store_with(cose()))
    inner = 8 + 8 + 16 + 1 + len("c2pa") + 1  # after the store's header and description: the manifest box
    struct.pack_into(">I", data, inner, 10 ** 6)
    with pytest.raises(InputError, match="declares 1000000 bytes"):
        jumbf.manifest_signature(bytes(data), "urn:test:1")


def test_a_box_shorter_than_its_header_is_refused():
    data = bytearray(store_with(cose()))
    struct.pack_into(">I", data, 8, 4)  # the store's description box says it is 4 bytes long
    with pytest.raises(InputError, match="declares 4 bytes"):
        jumbf.parse_jumbf(bytes(data))


def test_deep_nesting_is_refused():
    data = box(b"cbor", b"\xa0")
    for _ in range(jumbf.MAX_DEPTH + 5):
        data = superbox(MANIFEST_UUID, "x", data)
    with pytest.raises(InputError, match="nested deeper"):
        jumbf.parse_jumbf(data)


def test_a_box_count_bomb_is_refused():
    data = superbox(STORE_UUID, "c2pa", b"".join(box(b"free", b"") for _ in range(jumbf.MAX_BOXES + 1)))
    with pytest.raises(InputError, match="more than"):
        jumbf.parse_jumbf(data)


@pytest.mark.parametrize("data,message", [
    (b"", "empty"),
    (box(b"free", b""), "not a superbox"),
    (box(b"jumb", box(b"cbor", b"")), "not a description box"),
    (box(b"jumb", box(b"jumd", b"\0" * 10)), "needs 17"),
    (box(b"jumb", box(b"jumd", STORE_UUID + b"\x03c2pa")), "not terminated"),
    (box(b"jumb", box(b"jumd", STORE_UUID + b"\x0fc2pa\0")), "truncated"),
    (box(b"jumb", description(STORE_UUID, "c2pa") + b"\0\0\0\x08\xff\xfe\xfd\xfc"), "non-ASCII"),
    (box(b"jumb", description(STORE_UUID, "c2pa") + b"\0\0\0\x01cbor\0\0"), "extended box length"),
    (box(b"jumb", description(STORE_UUID, "c2pa") + b"\0\0\0"), "stray bytes"),
])
def test_malformed_boxes_name_what_is_wrong(data, message):
    with pytest.raises(InputError, match=message):
        jumbf.parse_jumbf(data)


def test_extended_and_zero_lengths_are_read():
    payload = b"\xa0"
    extended = struct.pack(">I4sQ", 1, b"cbor", 16 + len(payload)) + payload
    data = superbox(STORE_UUID, "c2pa", extended, struct.pack(">I4s", 0, b"json") + b"{}")
    store = jumbf.parse_jumbf(data)
    assert [(c.box_type, c.payload) for c in store.children] == [("cbor", payload), ("json", b"{}")]


def test_a_store_of_another_type_is_refused():
    with pytest.raises(InputError, match="not a C2PA manifest store"):
        jumbf.manifest_signature(superbox(MANIFEST_UUID, "c2pa"), "x")


@pytest.mark.parametrize("payload,message", [
    (b"\x9f\x01", "corrupt claim signature"),
    (cose() + b"\0", "1 bytes after its CBOR"),
    (b"\xff", "not a COSE_Sign1"),
    (cbor2.dumps(cbor2.CBORTag(17, [b"", {}, None, b""])), "tag 17"),
    (cbor2.dumps([b"", {}, None]), "not a COSE_Sign1"),
    (cbor2.dumps(cbor2.CBORTag(18, [cbor2.dumps([1]), {}, None, b""])), "not a map"),
    (cose({1: -7}), "no certificate"),
    (cose({1: -7, 33: b"not DER"}), "corrupt certificate"),
    (cose({1: -7, 33: [b"x"] * 17}), "more than 16"),
    (cose({1: -7, 33: ["text"]}), "not one or more DER"),
    (cose(unprotected={"sigTst": {"tstTokens": "nope"}}), "time-stamp header sigTst"),
    (cose(unprotected={"sigTst2": [1]}), "time-stamp header sigTst2"),
])
def test_a_malformed_claim_signature_is_refused(payload, message):
    with pytest.raises(InputError, match=message):
        jumbf.manifest_signature(store_with(payload), "urn:test:1")


def test_a_hand_built_signature_is_read():
    token = b"\x30\x03\x02\x01\x00"
    signature = jumbf.manifest_signature(store_with(cose(unprotected={"sigTst2": {"tstTokens": [{"val": token}]},
                                                                      "sigTst": {"tstTokens": []}})), "urn:test:1")
    assert signature.algorithm == "ES256" and signature.timestamp_header == "sigTst2"
    assert signature.timestamp_tokens == (token,)
    assert signature.signer_certificate.subject.rfc4514_string() == "CN=Leaf"
    # x5chain may also sit in the unprotected header, as one certificate
    chain, _ = mint_chain()
    unprotected = cose({1: -37}, {33: chain[0].public_bytes(Encoding.DER)})
    signature = jumbf.manifest_signature(store_with(unprotected), "urn:test:1")
    assert signature.algorithm == "PS256" and signature.certificates == (chain[0],)


def test_a_manifest_without_a_signature_box_gives_none_and_one_without_cbor_is_refused():
    bare = superbox(STORE_UUID, "c2pa", superbox(MANIFEST_UUID, "urn:test:1"))
    assert jumbf.manifest_signature(bare, "urn:test:1") is None
    empty = superbox(STORE_UUID, "c2pa", superbox(MANIFEST_UUID, "urn:test:1",
                                                  superbox(SIGNATURE_UUID, "c2pa.signature")))
    with pytest.raises(InputError, match="holds no CBOR"):
        jumbf.manifest_signature(empty, "urn:test:1")


def test_random_damage_gives_an_answer_or_input_error_never_a_crash(fixtures):
    store, data = fixtures["C.jpg"]
    label = store["active_manifest"]
    rng = random.Random(16)
    outcomes = {"read": 0, "refused": 0}
    for _ in range(300):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        try:
            jumbf.manifest_signature(bytes(damaged), label)
            outcomes["read"] += 1
        except InputError:
            outcomes["refused"] += 1
    assert outcomes["read"] and outcomes["refused"]  # both kinds of damage happened


# -- which anchor a chain ends at --

def test_chain_anchor_names_the_anchor_the_chain_ends_at():
    chain, root = mint_chain()
    other_chain, other_root = mint_chain()
    assert jumbf.chain_anchor(chain, [other_root, root]) == root
    assert jumbf.chain_anchor(chain, [chain[1]]) == chain[1]  # an anchor inside the chain
    assert jumbf.chain_anchor(chain, [chain[0]]) == chain[0]  # the signer itself named as an anchor
    # the path starts at chain[0], the end-entity: a reversed chain answers for its intermediate alone
    assert jumbf.trust_path(list(reversed(chain)), [root]).certificates == (chain[1],)
    assert jumbf.chain_anchor([chain[0]], [root]) is None  # the intermediate is missing: no verified link
    assert jumbf.chain_anchor(chain, [other_root]) is None
    assert jumbf.chain_anchor(chain, []) is None and jumbf.chain_anchor([], [root]) is None
    path = jumbf.trust_path(chain, [root])
    assert path.certificates == tuple(chain) and path.anchor == root


def test_chain_anchor_verifies_every_link():
    chain, root = mint_chain()
    key = ec.generate_private_key(ec.SECP256R1())
    # same name as the real root, another key: the names chain, the signature does not
    impostor = (x509.CertificateBuilder().subject_name(root.subject).issuer_name(root.subject)
                .public_key(key.public_key()).serial_number(1).not_valid_before(root.not_valid_before_utc)
                .not_valid_after(root.not_valid_after_utc)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
    assert jumbf.chain_anchor(chain, [impostor]) is None
    # an intermediate that is not a CA may not issue the signer
    chain, root = mint_chain(intermediate_is_ca=False)
    assert jumbf.chain_anchor(chain, [root]) is None


def test_chain_anchor_on_a_fixture_chain_that_carries_its_root(fixtures):
    store, data = fixtures["boxhash.jpg"]
    chain = jumbf.manifest_signature(data, store["active_manifest"]).certificates
    root = chain[-1]
    assert jumbf.chain_anchor(chain, [root]) == root
    assert jumbf.chain_anchor(chain[:2], [root]) == root  # the root issued the intermediate (ECDSA verified)
    store_c, data_c = fixtures["C.jpg"]
    chain_c = jumbf.manifest_signature(data_c, store_c["active_manifest"]).certificates
    assert jumbf.chain_anchor(chain_c, [root]) is None  # C.jpg's RSA-PSS chain has another root
    assert jumbf.chain_anchor(chain_c, [chain_c[1]]) == chain_c[1]
