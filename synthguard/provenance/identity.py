"""Signing identity and trust anchors.

A signing identity is a certificate chain (end-entity first) and its private key. ``synthguard keys init`` makes a
local one: a self-issued root CA and an ES256 end-entity certificate with the extensions C2PA validators require
(digitalSignature, EKU emailProtection, Authority/Subject Key Identifiers). It is on no public trust list: manifests
it signs read as *trusted* only where its root is a trust anchor (your own SynthGuard trusts it by default; share it
with ``synthguard keys export-trust``). ``synthguard keys import`` brings a real chain from a CA instead.

The private key stays in this process: c2pa gets a signing callback, never the key bytes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import getpass
import hashlib
import hmac
import io
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import c2pa
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from synthguard.core.fileio import write_atomic, write_private
from synthguard.core.home import Home
from synthguard.errors import Hint, IdentityError, one_line
from synthguard.provenance.manifest import DigitalSourceType
from synthguard.provenance.products import ConformingProducts
from synthguard.provenance.trustlist import TrustList

# No timestamp authority is reachable offline, so a manifest is only valid while its signing certificate is: the
# validity is long on purpose (a manifest signed today must not read Invalid next year).
SIGNING_CERT_DAYS = 365 * 10
ROOT_CERT_DAYS = 365 * 20

CHAIN_FILE = "chain.pem"
KEY_FILE = "signing-key.pem"
# Present when the identity was made by `keys init` (self-issued), absent for an imported chain.
LOCAL_MARKER = "self-issued"


def _key_usage(*, signing: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=signing, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=not signing,
                         crl_sign=not signing, encipher_only=False, decipher_only=False)


def create_local_identity(common_name: str, organization: str) -> tuple[bytes, bytes]:
    """A new root CA and ES256 signing certificate; returns (chain PEM with end-entity first, PKCS#8 key PEM)."""
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)  # tolerate small clock skew between machines
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{common_name} root CA"),
                           x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization)])
    root = (x509.CertificateBuilder()
            .subject_name(root_name).issuer_name(root_name).public_key(root_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=ROOT_CERT_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(signing=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization)])
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(root_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=SIGNING_CERT_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(signing=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256()))
    # The root key is not kept: a new identity gets a new root, and the old root stays a trust anchor.
    chain = cert.public_bytes(serialization.Encoding.PEM) + root.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return chain, key_pem


def _load_chain(chain_pem: bytes) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(chain_pem)
    except ValueError as exc:
        raise IdentityError(f"certificate chain is not valid PEM: {exc}") from None
    if not certs:
        raise IdentityError("certificate chain holds no certificate")
    return certs


def _load_key(key_pem: bytes):
    if b"ENCRYPTED" in key_pem:
        raise IdentityError("the private key is encrypted; give an unencrypted PKCS#8 PEM key")
    try:
        return serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise IdentityError(f"private key is not a PKCS#8 PEM key: {exc}") from None


def _algorithm_for(key) -> c2pa.C2paSigningAlg:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        algs = {"secp256r1": c2pa.C2paSigningAlg.ES256, "secp384r1": c2pa.C2paSigningAlg.ES384,
                "secp521r1": c2pa.C2paSigningAlg.ES512}
        if key.curve.name not in algs:
            raise IdentityError(f"EC curve {key.curve.name} is not usable for C2PA (use P-256, P-384 or P-521)")
        return algs[key.curve.name]
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return c2pa.C2paSigningAlg.ED25519
    if isinstance(key, rsa.RSAPrivateKey):
        return c2pa.C2paSigningAlg.PS256
    raise IdentityError(f"unsupported key type {type(key).__name__} (use EC P-256/384/521, Ed25519 or RSA)")


def _sign_bytes(key, alg: c2pa.C2paSigningAlg, data: bytes) -> bytes:
    if alg == c2pa.C2paSigningAlg.ED25519:
        return key.sign(data)
    if alg == c2pa.C2paSigningAlg.PS256:
        return key.sign(data, padding.PSS(padding.MGF1(hashes.SHA256()), hashes.SHA256().digest_size),
                        hashes.SHA256())
    digest = {c2pa.C2paSigningAlg.ES256: hashes.SHA256(), c2pa.C2paSigningAlg.ES384: hashes.SHA384(),
              c2pa.C2paSigningAlg.ES512: hashes.SHA512()}[alg]
    return key.sign(data, ec.ECDSA(digest))


def cert_fingerprint(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _name_attr(name: x509.Name, oid) -> str | None:
    values = name.get_attributes_for_oid(oid)
    return str(values[0].value) if values else None


@dataclass(frozen=True)
class Identity:
    """A certificate chain (end-entity first) with its private key, able to make a c2pa Signer."""

    chain_pem: bytes
    _key: object = field(repr=False)
    algorithm: c2pa.C2paSigningAlg = c2pa.C2paSigningAlg.ES256

    @classmethod
    def from_pem(cls, chain_pem: bytes, key_pem: bytes) -> Identity:
        certs = _load_chain(chain_pem)
        key = _load_key(key_pem)
        if certs[0].public_key().public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.SubjectPublicKeyInfo) != \
                key.public_key().public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.SubjectPublicKeyInfo):
            raise IdentityError("the private key does not match the first (end-entity) certificate of the chain")
        return cls(chain_pem, key, _algorithm_for(key))

    @property
    def certificates(self) -> list[x509.Certificate]:
        return _load_chain(self.chain_pem)

    @property
    def certificate(self) -> x509.Certificate:
        return self.certificates[0]

    @property
    def common_name(self) -> str:
        return _name_attr(self.certificate.subject, NameOID.COMMON_NAME) or self.certificate.subject.rfc4514_string()

    @property
    def organization(self) -> str | None:
        return _name_attr(self.certificate.subject, NameOID.ORGANIZATION_NAME)

    @property
    def anchor(self) -> x509.Certificate:
        """The last certificate of the chain: the root this identity's signatures chain to."""
        return self.certificates[-1]

    def sign(self, data: bytes) -> bytes:
        return _sign_bytes(self._key, self.algorithm, data)

    def text_watermark_secret(self) -> bytes:
        """32 bytes derived from the private key (HMAC-SHA256, domain separated) that key this identity's text
        watermarks: only the key's holder can mark text as this identity, or test for the mark."""
        der = self._key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
        return hmac.new(b"synthguard/text-watermark-secret/1", der, hashlib.sha256).digest()

    def signer(self) -> c2pa.Signer:
        """A c2pa Signer that calls back into this process for each signature (the key never leaves it)."""
        return c2pa.Signer.from_callback(self.sign, self.algorithm, self.chain_pem.decode(), None)

    def summary(self) -> dict:
        cert = self.certificate
        return {
            "common_name": self.common_name,
            "organization": self.organization,
            "issuer": cert.issuer.rfc4514_string(),
            "algorithm": self.algorithm.name,
            "serial": format(cert.serial_number, "x"),
            "not_before": cert.not_valid_before_utc.isoformat(),
            "not_after": cert.not_valid_after_utc.isoformat(),
            "sha256_fingerprint": cert_fingerprint(cert),
            "anchor": self.anchor.subject.rfc4514_string(),
            "anchor_sha256_fingerprint": cert_fingerprint(self.anchor),
            "chain_length": len(self.certificates),
        }


def verify_signs(identity: Identity) -> None:
    """Prove an identity works end to end: c2pa signs a tiny image with it and validates the result."""
    from PIL import Image  # noqa: PLC0415 (only needed here)

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (128, 64, 32)).save(buf, format="PNG")
    buf.seek(0)
    manifest = {"claim_generator_info": [{"name": "synthguard-keycheck"}], "title": "key check",
                "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": [
                    {"action": "c2pa.created", "digitalSourceType": DigitalSourceType.DIGITAL_CREATION.value}]}}]}
    out = io.BytesIO()
    context = c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": False}}})
    try:
        with identity.signer() as signer, c2pa.Builder(manifest, context=context) as builder:
            builder.sign(signer, "image/png", buf, out)
        out.seek(0)
        with c2pa.Reader("image/png", out, context=context) as reader:
            state = reader.get_validation_state()
            results = reader.get_validation_results() or {}
    except c2pa.C2paError as exc:
        raise IdentityError(f"c2pa refuses to sign with this identity: {one_line(exc)}") from None
    except (InvalidSignature, ValueError, TypeError) as exc:
        raise IdentityError(f"the key cannot sign: {exc}") from None
    failures = {f["code"] for f in results.get("activeManifest", {}).get("failure", [])}
    if state not in ("Valid", "Trusted") or failures - {"signingCredential.untrusted"}:
        raise IdentityError(f"a test signature with this identity does not validate ({state}: "
                            f"{', '.join(sorted(failures)) or 'no detail'})")


def _default_names() -> tuple[str, str]:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "user"
    return f"SynthGuard local identity ({user}@{socket.gethostname()})", "SynthGuard (self-issued)"


@dataclass(frozen=True)
class IdentityStore:
    """The identity kept under ``SYNTHGUARD_HOME/keys``."""

    home: Home

    @property
    def chain_path(self) -> Path:
        return self.home.keys_dir / CHAIN_FILE

    @property
    def key_path(self) -> Path:
        return self.home.keys_dir / KEY_FILE

    def exists(self) -> bool:
        return self.chain_path.exists() and self.key_path.exists()

    def is_self_issued(self) -> bool:
        return (self.home.keys_dir / LOCAL_MARKER).exists()

    def load(self) -> Identity:
        if not self.exists():
            raise IdentityError(f"no signing identity in {self.home.keys_dir}", hint=Hint.NEEDS_IDENTITY)
        try:
            return Identity.from_pem(self.chain_path.read_bytes(), self.key_path.read_bytes())
        except OSError as exc:
            raise IdentityError(f"cannot read the signing identity: {exc}") from None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the identity lock: two processes making a first identity at once must not mix key and chain."""
        self.home.ensure()
        with open(self.home.keys_dir / ".lock", "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def ensure(self) -> tuple[Identity, bool]:
        """The stored identity, creating a local self-issued one if there is none; returns (identity, created)."""
        if self.exists():
            return self.load(), False
        with self._locked():
            if self.exists():  # another process made it while we waited
                return self.load(), False
            return self._init(None, None), True

    def init(self, common_name: str | None = None, organization: str | None = None, *,
             force: bool = False) -> Identity:
        with self._locked():
            if self.exists() and not force:
                raise IdentityError(f"a signing identity already exists in {self.home.keys_dir}; its root stays "
                                    "trusted if it is replaced", hint=Hint.OVERWRITE)
            return self._init(common_name, organization)

    def _init(self, common_name: str | None, organization: str | None) -> Identity:
        default_cn, default_org = _default_names()
        chain, key = create_local_identity(common_name or default_cn, organization or default_org)
        self._store(chain, key, self_issued=True)
        return self.load()

    def import_identity(self, chain_pem: bytes, key_pem: bytes, *, force: bool = False) -> Identity:
        identity = Identity.from_pem(chain_pem, key_pem)
        verify_signs(identity)
        with self._locked():
            if self.exists() and not force:
                raise IdentityError(f"a signing identity already exists in {self.home.keys_dir}; its root stays "
                                    "trusted if it is replaced", hint=Hint.OVERWRITE)
            self._store(chain_pem, key_pem, self_issued=False)
            return self.load()

    def _store(self, chain_pem: bytes, key_pem: bytes, *, self_issued: bool) -> None:
        self.home.ensure()
        if self.exists():
            # Keep the old identity's anchor trusted, so what it signed still verifies as trusted here.
            try:
                old = self.load()
            except IdentityError:
                old = None  # a damaged identity being replaced has no anchor worth keeping
        else:
            old = None
        if old is not None:
            write_atomic(self.home.trust_dir / f"previous-{cert_fingerprint(old.anchor)[:16]}.pem",
                         old.anchor.public_bytes(serialization.Encoding.PEM))
        marker = self.home.keys_dir / LOCAL_MARKER
        marker.unlink(missing_ok=True)
        write_private(self.key_path, key_pem)
        write_atomic(self.chain_path, chain_pem)
        if self_issued:
            write_atomic(marker, b"made by synthguard keys init; on no public trust list\n")


class TrustSource(str, Enum):
    """Where a trusted signer's root came from (reported beside every trusted manifest)."""

    OWN_IDENTITY = "own-identity"  # this machine's own SynthGuard identity
    ANCHORS = "your-anchors"  # roots added with `keys add-trust`, named by the policy, or given for one run
    C2PA_TRUST_LIST = "c2pa-trust-list"  # the official C2PA Trust List (provenance.trustlist)

    @property
    def title(self) -> str:
        return {TrustSource.OWN_IDENTITY: "your own identity", TrustSource.ANCHORS: "your anchors",
                TrustSource.C2PA_TRUST_LIST: "the C2PA Trust List"}[self]


@dataclass(frozen=True)
class TrustAnchors:
    """Root certificates whose chains count as *trusted* (PEM bundle handed to the c2pa validator), each with the
    source it came from (``sources[i]`` for ``certificates[i]``)."""

    certificates: tuple[x509.Certificate, ...] = ()
    sources: tuple[TrustSource, ...] = ()
    trust_list: TrustList | None = None  # the C2PA Trust List whose certificates are among these, if any
    tsa_list: TrustList | None = None  # the time-stamp authorities trusted (C2PA TSA Trust List), if any
    products: ConformingProducts | None = None  # the C2PA Conforming Products List in force (None: the shipped one)

    @classmethod
    def from_home(cls, home: Home, *, include_own: bool = True, include_added: bool = True,
                  extra: tuple[Path, ...] = (), trust_list: TrustList | None = None,
                  tsa_list: TrustList | None = None, products: ConformingProducts | None = None) -> TrustAnchors:
        """The anchors of ``home``: its own identity's root, the roots added to it, ``extra`` PEM files, and the
        certificates of ``trust_list`` (the C2PA Trust List). A certificate in several keeps the first source.
        ``tsa_list``: the time-stamp authorities to check time-stamps against."""
        found: list[tuple[x509.Certificate, TrustSource]] = []
        store = IdentityStore(home)
        if include_own and store.exists():
            found.append((store.load().anchor, TrustSource.OWN_IDENTITY))
        if include_added and home.trust_dir.is_dir():
            for pem in sorted(home.trust_dir.glob("*.pem")):
                found.extend((c, TrustSource.ANCHORS) for c in load_anchor_file(pem))
        for pem in extra:
            found.extend((c, TrustSource.ANCHORS) for c in load_anchor_file(pem))
        if trust_list is not None:
            found.extend((c, TrustSource.C2PA_TRUST_LIST) for c in trust_list.certificates)
        unique: dict[str, tuple[x509.Certificate, TrustSource]] = {}
        for cert, source in found:
            unique.setdefault(cert_fingerprint(cert), (cert, source))
        return cls(tuple(c for c, _ in unique.values()), tuple(s for _, s in unique.values()), trust_list, tsa_list,
                   products)

    def pem_bundle(self) -> str:
        return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in self.certificates)

    def of_source(self, source: TrustSource) -> tuple[x509.Certificate, ...]:
        return tuple(c for c, s in zip(self.certificates, self.sources) if s is source)

    def source_of(self, anchor: x509.Certificate) -> TrustSource | None:
        fingerprint = cert_fingerprint(anchor)
        return next((s for c, s in zip(self.certificates, self.sources) if cert_fingerprint(c) == fingerprint), None)

    def __len__(self) -> int:
        return len(self.certificates)


def load_anchor_file(path: Path) -> list[x509.Certificate]:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IdentityError(f"cannot read trust anchor {path}: {exc.strerror}") from None
    try:
        return _load_chain(data)
    except IdentityError as exc:
        raise IdentityError(f"trust anchor {path}: {exc}") from None


def add_trust_anchor(home: Home, pem_path: Path) -> list[x509.Certificate]:
    """Copy a PEM file of anchor certificates into ``trust/`` after checking it parses."""
    certs = load_anchor_file(pem_path)
    home.ensure()
    target = home.trust_dir / f"anchor-{cert_fingerprint(certs[0])[:16]}.pem"
    # Only the parsed certificates: whatever else the file holds (a private key, by mistake) stays out.
    write_atomic(target, b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
    return certs
