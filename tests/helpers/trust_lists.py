"""A locally minted certificate authority, and LoTE trust-list files that list it (the C2PA Trust List format)."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from synthguard.provenance.identity import create_local_identity


def minted_identity(common_name: str = "Example Wire Camera",
                    organization: str = "Example Wire") -> tuple[bytes, bytes]:
    """A fresh CA and a signing certificate it issued: (chain PEM end-entity first, key PEM)."""
    return create_local_identity(common_name, organization)


def ca_of(chain_pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificates(chain_pem)[-1]


def write_trust_list(folder: Path, certificates: list[x509.Certificate], *, name: str = "C2PA Trust List",
                     issued: dt.datetime = dt.datetime(2026, 11, 30, tzinfo=dt.UTC),
                     next_update: dt.datetime | None = dt.datetime(2027, 11, 30, tzinfo=dt.UTC),
                     file_name: str = "C2PA-TRUST-LIST", entity: str = "Example Wire", pem: bool = True,
                     status: str = "http://c2pa.org/conformance/trust-list/trusted") -> Path:
    """A LoTE JSON list of ``certificates`` (one entity, one service each), with its PEM bundle beside it."""
    services = [{"ServiceInformation": {
        "ServiceName": [{"lang": "en", "value": f"{entity} CA {i}"}],
        "ServiceDigitalIdentity": {"X509Certificates": [
            {"val": base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode()}]},
        "ServiceStatus": status, "StatusStartingTime": issued.isoformat()}} for i, c in enumerate(certificates)]
    info = {"LoTEVersionIdentifier": 1, "LoTESequenceNumber": 2, "SchemeName": [{"lang": "en", "value": name}],
            "SchemeOperatorName": [{"lang": "en", "value": "test operator"}],
            "ListIssueDateTime": issued.isoformat().replace("+00:00", "Z")}
    if next_update is not None:
        info["NextUpdate"] = next_update.isoformat().replace("+00:00", "Z")
    doc = {"LoTE": {"ListAndSchemeInformation": info, "TrustedEntitiesList": [
        {"TrustedEntityInformation": {"TEName": [{"lang": "en", "value": entity}]},
         "TrustedEntityServices": services}]}}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{file_name}.json"
    path.write_text(json.dumps(doc, indent=1))
    if pem:
        (folder / f"{file_name}.pem").write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM)
                                                           for c in certificates))
    return path


def signed_capture(folder: Path, chain: bytes, key: bytes, name: str = "photo") -> Path:
    """A small PNG signed by the identity (chain, key) with a digitalCapture claim: ``folder/NAME-signed.png``."""
    from PIL import Image

    from synthguard.provenance.identity import Identity
    from synthguard.provenance.manifest import DigitalSourceType, ManifestSpec
    from synthguard.provenance.signing import SigningSession

    src, out = folder / f"{name}.png", folder / f"{name}-signed.png"
    Image.new("RGB", (48, 48), (40, 90, 160)).save(src)
    with SigningSession(Identity.from_pem(chain, key), None) as session:
        session.sign_file(src, out, ManifestSpec(title="wire photo",
                                                 digital_source_type=DigitalSourceType.DIGITAL_CAPTURE))
    return out
