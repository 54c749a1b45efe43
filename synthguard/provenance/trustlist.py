"""The official C2PA trust lists: a dated snapshot ships with the package, a newer one can be installed.

The C2PA publishes two lists in the ETSI TS 119 602 "List of Trusted Entities" (LoTE) JSON form (with a PEM bundle
of the same certificates beside each):

- the **C2PA Trust List**: the CA certificates whose chains may sign C2PA claims (``C2PA-TRUST-LIST.json``);
- the **C2PA TSA Trust List**: the time-stamp authorities trusted for C2PA (``C2PA-TSA-TRUST-LIST.json``).

Each list names its issue date and its next update; a list used past its next update is *stale* (still used, and
reported as such: a newer list may have withdrawn a certificate). Only services whose status is ``.../trusted``
count. The certificates are read from the JSON (the authoritative form); a PEM bundle given beside it must hold the
same certificates.

The shipped snapshot lives in ``provenance/data`` (CC BY 4.0, "C2PA", README there). ``install_trust_lists``
copies a newer snapshot into ``SYNTHGUARD_HOME/trust-lists``; the newer of the two (by issue date, then sequence
number) is the one in force. The C2PA Conforming Products List (``provenance.products``) can be installed the same
way, beside the lists; it has no issue date, so the newer of two is the one whose latest record changed last.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from enum import Enum
from importlib import resources
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from synthguard.core.fileio import write_atomic
from synthguard.core.home import Home
from synthguard.errors import InputError
from synthguard.provenance.products import SHIPPED_FILE as PRODUCTS_FILE
from synthguard.provenance.products import ConformingProducts

TRUSTED_STATUS = "http://c2pa.org/conformance/trust-list/trusted"
MAX_LIST_BYTES = 16 * 1024 * 1024  # the 2026 lists are 50-70 KB


class TrustListKind(str, Enum):
    CLAIM_SIGNERS = "C2PA-TRUST-LIST"
    TIME_STAMPS = "C2PA-TSA-TRUST-LIST"

    @property
    def title(self) -> str:
        return "C2PA Trust List" if self is TrustListKind.CLAIM_SIGNERS else "C2PA TSA Trust List"


@dataclass(frozen=True)
class TrustListEntry:
    entity: str  # the trusted entity's name (e.g. "Adobe Inc")
    service: str  # the service's name (often the CA's name)
    certificate: x509.Certificate
    status: str
    since: str | None = None

    @property
    def trusted(self) -> bool:
        return self.status == TRUSTED_STATUS


@dataclass(frozen=True)
class TrustList:
    kind: TrustListKind
    name: str  # the list's SchemeName
    operator: str | None
    issued: dt.datetime
    next_update: dt.datetime | None
    sequence: int
    entries: tuple[TrustListEntry, ...]
    origin: str  # "shipped snapshot" or the installed file's path
    sha256: str  # of the list's JSON bytes

    @property
    def certificates(self) -> tuple[x509.Certificate, ...]:
        """The certificates of the services in force (status trusted)."""
        return tuple(e.certificate for e in self.entries if e.trusted)

    @property
    def entities(self) -> tuple[str, ...]:
        return tuple(sorted({e.entity for e in self.entries if e.trusted}))

    def entity_of(self, certificate: x509.Certificate) -> str | None:
        """The trusted entity a certificate of this list belongs to."""
        der = certificate.public_bytes(serialization.Encoding.DER)
        for e in self.entries:
            if e.trusted and e.certificate.public_bytes(serialization.Encoding.DER) == der:
                return e.entity
        return None

    def is_stale(self, now: dt.datetime | None = None) -> bool:
        """Used past its next-update date: a newer list exists or is overdue."""
        return self.next_update is not None and (now or dt.datetime.now(dt.UTC)) > self.next_update

    def summary(self) -> str:
        """``C2PA Trust List issued 2026-08-05 (next update 2027-08-05): 30 certificates from 17 entities``."""
        nxt = f" (next update {self.next_update.date()})" if self.next_update else ""
        stale = ", STALE: past its next update" if self.is_stale() else ""
        return (f"{self.name} issued {self.issued.date()}{nxt}: {len(self.certificates)} certificates from "
                f"{len(self.entities)} entities ({self.origin}{stale})")

    def to_dict(self) -> dict:
        return {"kind": self.kind.value, "name": self.name, "operator": self.operator,
                "issued": self.issued.isoformat(), "next_update": self.next_update.isoformat() if self.next_update
                else None, "sequence": self.sequence, "certificates": len(self.certificates),
                "entities": list(self.entities), "stale": self.is_stale(), "origin": self.origin,
                "sha256": self.sha256}


def stale_warning(listed: TrustList | None, now: dt.datetime | None = None) -> str | None:
    """The line a report prints beside a signer trusted via ``listed`` when that list is past its next update (None
    when it is not, or when there is no list)."""
    if listed is None or not listed.is_stale(now):
        return None
    return (f"the {listed.name} used (issued {listed.issued.date()}) is past its next update "
            f"({listed.next_update.date()}): a newer list may have withdrawn this signer's CA; install a newer one "
            "with `synthguard keys trust-list update`")


def _text(values, key: str = "value") -> str | None:
    """The English (else first) text of a LoTE multilingual field."""
    if not isinstance(values, list) or not values:
        return None
    english = [v for v in values if isinstance(v, dict) and v.get("lang") == "en"]
    chosen = (english or [v for v in values if isinstance(v, dict)] or [None])[0]
    value = chosen.get(key) if chosen else None
    return str(value) if value is not None else None


def _time(value, what: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{what} is not a date-time: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _certificate(value, where: str) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(base64.b64decode(str(value), validate=True))
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"{where}: not a base64 DER certificate ({exc})") from None


def parse_trust_list(data: bytes, kind: TrustListKind, *, origin: str) -> TrustList:
    """A LoTE JSON trust list; any structural problem is an InputError naming where it is."""
    if len(data) > MAX_LIST_BYTES:
        raise InputError(f"{origin}: {len(data)} bytes, over the {MAX_LIST_BYTES} byte limit for a trust list")
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{origin}: not JSON ({exc})") from None
    lote = doc.get("LoTE") if isinstance(doc, dict) else None
    info = lote.get("ListAndSchemeInformation") if isinstance(lote, dict) else None
    if not isinstance(info, dict) or not isinstance(lote.get("TrustedEntitiesList"), list):
        raise InputError(f"{origin}: not a LoTE trust list (no LoTE.ListAndSchemeInformation / TrustedEntitiesList)")
    name = _text(info.get("SchemeName")) or kind.title
    if name != kind.title:
        raise InputError(f"{origin}: this is the {name!r}, expected the {kind.title!r}")
    if "ListIssueDateTime" not in info:
        raise InputError(f"{origin}: the list has no issue date (ListIssueDateTime)")
    issued = _time(info["ListIssueDateTime"], f"{origin}: ListIssueDateTime")
    next_update = _time(info["NextUpdate"], f"{origin}: NextUpdate") if info.get("NextUpdate") else None
    entries = []
    for i, entity in enumerate(lote["TrustedEntitiesList"]):
        where = f"{origin}: TrustedEntitiesList[{i}]"
        if not isinstance(entity, dict):
            raise InputError(f"{where}: not an object")
        entity_name = _text((entity.get("TrustedEntityInformation") or {}).get("TEName")) or f"entity {i}"
        for j, service in enumerate(entity.get("TrustedEntityServices") or []):
            information = service.get("ServiceInformation") if isinstance(service, dict) else None
            if not isinstance(information, dict):
                raise InputError(f"{where}.TrustedEntityServices[{j}]: no ServiceInformation")
            identity = information.get("ServiceDigitalIdentity") or {}
            for k, cert in enumerate(identity.get("X509Certificates") or []):
                value = cert.get("val") if isinstance(cert, dict) else None
                entries.append(TrustListEntry(
                    entity_name, _text(information.get("ServiceName")) or entity_name,
                    _certificate(value, f"{where}.TrustedEntityServices[{j}].X509Certificates[{k}]"),
                    str(information.get("ServiceStatus", "")), information.get("StatusStartingTime")))
    if not any(e.trusted for e in entries):
        raise InputError(f"{origin}: the list holds no certificate in force")
    return TrustList(kind, name, _text(info.get("SchemeOperatorName")), issued, next_update,
                     int(info.get("LoTESequenceNumber") or 0), tuple(entries), origin,
                     hashlib.sha256(data).hexdigest())


def check_pem_matches(trust_list: TrustList, pem: bytes, *, origin: str) -> None:
    """A PEM bundle published beside a list must hold the same certificates as the list's JSON."""
    try:
        bundle = x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise InputError(f"{origin}: not a PEM certificate bundle ({exc})") from None

    def ders(certs) -> set[bytes]:
        return {c.public_bytes(serialization.Encoding.DER) for c in certs}

    listed = ders(e.certificate for e in trust_list.entries)
    if ders(bundle) != listed:
        raise InputError(f"{origin}: the PEM bundle ({len(bundle)} certificates) does not hold the same certificates "
                         f"as the list's JSON ({len(listed)})")


def trust_lists_dir(home: Home) -> Path:
    return home.root / "trust-lists"


def shipped_trust_list(kind: TrustListKind) -> TrustList:
    data = resources.files("synthguard.provenance").joinpath("data", f"{kind.value}.json").read_bytes()
    return parse_trust_list(data, kind, origin="shipped snapshot")


def installed_trust_list(home: Home, kind: TrustListKind) -> TrustList | None:
    path = trust_lists_dir(home) / f"{kind.value}.json"
    if not path.is_file():
        return None
    return parse_trust_list(_read(path, "the installed trust list"), kind, origin=str(path))


def installed_products(home: Home) -> Path | None:
    """The Conforming Products List installed on ``home`` (the file), None when only the shipped snapshot is there."""
    path = trust_lists_dir(home) / PRODUCTS_FILE
    return path if path.is_file() else None


def conforming_products(home: Home) -> ConformingProducts:
    """The Conforming Products List in force: the installed one when its latest record is newer than the shipped
    snapshot's, else the snapshot."""
    shipped = ConformingProducts.shipped()
    path = installed_products(home)
    installed = ConformingProducts.from_file(path) if path is not None else None
    return installed if installed is not None and installed.newest > shipped.newest else shipped


def _newer(a: TrustList, b: TrustList) -> bool:
    return (a.issued, a.sequence) > (b.issued, b.sequence)


def trust_list(home: Home, kind: TrustListKind = TrustListKind.CLAIM_SIGNERS) -> TrustList:
    """The list in force: the installed one when it is newer than the shipped snapshot, else the snapshot."""
    shipped = shipped_trust_list(kind)
    installed = installed_trust_list(home, kind)
    return installed if installed is not None and _newer(installed, shipped) else shipped


def _found_in(source: Path) -> tuple[list[tuple[TrustListKind, Path]], Path | None]:
    """The trust lists and the Conforming Products List that ``source`` (a folder, or one such file) holds."""
    expected = (*(f"{k.value}.json" for k in TrustListKind), PRODUCTS_FILE)
    if source.is_dir():
        lists = [(k, source / f"{k.value}.json") for k in TrustListKind if (source / f"{k.value}.json").is_file()]
        products = source / PRODUCTS_FILE if (source / PRODUCTS_FILE).is_file() else None
        if not lists and products is None:
            raise InputError(f"{source}: holds none of {', '.join(expected)}")
        return lists, products
    if source.is_file():
        if source.name == PRODUCTS_FILE:
            return [], source
        kind = next((k for k in TrustListKind if source.name == f"{k.value}.json"), None)
        if kind is None:
            raise InputError(f"{source}: expected a file named {' or '.join(expected)}")
        return [(kind, source)], None
    raise InputError(f"{source}: no such file or folder")


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror}") from None


def _products_to_install(home: Home, path: Path) -> bytes | None:
    """The bytes of the Conforming Products List at ``path`` when it is newer than the one in force, None when it is
    the one in force; an older one is refused."""
    new = ConformingProducts.from_file(path)
    current = conforming_products(home)
    if new.sha256 == current.sha256:
        return None
    if new.newest <= current.newest:
        raise InputError(f"{path}: its latest record changed {new.newest} ({new.count} records), not after the "
                         f"Conforming Products List in force ({current.newest}, {current.source})")
    data = _read(path, "the conforming products list")
    if hashlib.sha256(data).hexdigest() != new.sha256:
        raise InputError(f"{path}: changed while it was being installed")
    return data


def install_trust_lists(home: Home, source: Path) -> list[TrustList]:
    """Install the lists found in ``source``: a folder holding ``C2PA-TRUST-LIST.json`` and/or
    ``C2PA-TSA-TRUST-LIST.json`` (each optionally with its ``.pem``) and/or ``conforming-products-list.json``, or one
    such JSON file. A list that is not newer than the one in force is refused (the same list is accepted and changes
    nothing); every list is checked before any is written. Returns the trust lists now in force (the Conforming
    Products List in force: ``conforming_products``)."""
    source = Path(source)
    found, products_path = _found_in(source)
    parsed = []
    for kind, path in found:
        data = _read(path, "the trust list")
        new = parse_trust_list(data, kind, origin=str(path))
        pem_path = path.with_suffix(".pem")
        pem = _read(pem_path, "the PEM bundle") if pem_path.is_file() else None
        if pem is not None:
            check_pem_matches(new, pem, origin=str(pem_path))
        current = trust_list(home, kind)
        if new.sha256 == current.sha256:
            continue  # already the list in force
        if not _newer(new, current):
            raise InputError(f"{path}: issued {new.issued.date()} (sequence {new.sequence}), not newer than the "
                             f"{kind.title} in force (issued {current.issued.date()}, {current.origin})")
        parsed.append((kind, data, pem, new))
    products = _products_to_install(home, products_path) if products_path is not None else None
    folder = trust_lists_dir(home)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for kind, data, pem, _new in parsed:
        write_atomic(folder / f"{kind.value}.json", data)
        pem_target = folder / f"{kind.value}.pem"
        if pem is not None:
            write_atomic(pem_target, pem)
        else:
            pem_target.unlink(missing_ok=True)
    if products is not None:
        write_atomic(folder / PRODUCTS_FILE, products)
    return [trust_list(home, kind) for kind, _path in found]
