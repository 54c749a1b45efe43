import datetime as dt
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from synthguard.core.home import Home
from synthguard.errors import IdentityError
from synthguard.provenance.identity import (
    IdentityStore,
    TrustAnchors,
    add_trust_anchor,
    create_local_identity,
    verify_signs,
)


def test_init_creates_a_c2pa_ready_identity(home):
    store = IdentityStore(home)
    identity = store.init("Desk signer", "Example News")
    assert stat.S_IMODE(store.key_path.stat().st_mode) == 0o600
    assert store.is_self_issued()
    certs = identity.certificates
    assert len(certs) == 2
    ee, root = certs
    assert ee.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    assert ExtendedKeyUsageOID.EMAIL_PROTECTION in ee.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ee.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    assert not ee.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    # Long validity: no timestamp authority offline, so manifests live as long as the certificate.
    assert ee.not_valid_after_utc - dt.datetime.now(dt.UTC) > dt.timedelta(days=365 * 9)
    assert identity.common_name == "Desk signer"
    verify_signs(identity)


def test_private_key_never_in_repr_or_summary(identity):
    text = repr(identity) + str(identity.summary())
    assert "PRIVATE" not in text and "_key" not in str(identity.summary())


def test_init_refuses_to_replace_without_force_and_keeps_old_root_trusted(home):
    store = IdentityStore(home)
    first = store.init("one", "org")
    with pytest.raises(IdentityError, match="already exists"):
        store.init("two", "org")
    second = store.init("two", "org", force=True)
    anchors = TrustAnchors.from_home(home)
    subjects = {c.subject for c in anchors.certificates}
    assert first.anchor.subject in subjects and second.anchor.subject in subjects


def test_import_checks_that_the_identity_signs(home, tmp_path):
    chain, key = create_local_identity("Imported signer", "Partner")
    identity = IdentityStore(home).import_identity(chain, key)
    assert identity.common_name == "Imported signer"
    assert not IdentityStore(home).is_self_issued()


def test_import_refuses_mismatched_key(home):
    chain, _ = create_local_identity("a", "b")
    _, other_key = create_local_identity("c", "d")
    with pytest.raises(IdentityError, match="does not match"):
        IdentityStore(home).import_identity(chain, other_key)
    assert not IdentityStore(home).exists()


def test_import_refuses_garbage(home):
    with pytest.raises(IdentityError):
        IdentityStore(home).import_identity(b"not a pem", b"nor this")


def _server_auth_identity() -> tuple[bytes, bytes]:
    """A chain c2pa refuses: serverAuth EKU on the signing certificate (a TLS certificate, not a signer)."""
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tls")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def test_import_refuses_a_chain_c2pa_rejects(home):
    chain, key = _server_auth_identity()
    with pytest.raises(IdentityError, match="c2pa refuses|does not validate"):
        IdentityStore(home).import_identity(chain, key)
    assert not IdentityStore(home).exists()


def test_add_trust_anchor(home, tmp_path):
    other = Home(tmp_path / "other")
    other_identity = IdentityStore(other).init("other", "org")
    pem = tmp_path / "other-root.pem"
    pem.write_bytes(other_identity.anchor.public_bytes(serialization.Encoding.PEM))
    add_trust_anchor(home, pem)
    assert other_identity.anchor.subject in {c.subject for c in TrustAnchors.from_home(home).certificates}


def test_bad_anchor_file_is_an_identity_error(home, tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("hello")
    with pytest.raises(IdentityError, match="bad.pem"):
        add_trust_anchor(home, bad)


def test_add_trust_keeps_only_certificates(home, tmp_path):
    chain, key = create_local_identity("x", "y")
    combined = tmp_path / "combined.pem"
    combined.write_bytes(chain + key)
    add_trust_anchor(home, combined)
    stored = b"".join(p.read_bytes() for p in home.trust_dir.glob("*.pem"))
    assert b"PRIVATE KEY" not in stored and b"BEGIN CERTIFICATE" in stored


def test_many_processes_making_the_first_identity_at_once_agree_on_one(tmp_path):
    import os
    import subprocess
    import sys
    script = ("from synthguard.core.home import Home\n"
              "from synthguard.provenance.identity import IdentityStore, verify_signs\n"
              "identity, _ = IdentityStore(Home.from_env()).ensure()\nverify_signs(identity)\n"
              "print(identity.summary()['sha256_fingerprint'])\n")
    env = {**os.environ, "SYNTHGUARD_HOME": str(tmp_path / "shared-home")}
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(6)]
    outputs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len(set(outputs)) == 1
    verify_signs(IdentityStore(Home(tmp_path / "shared-home")).load())
