"""The C2PA Conforming Products List (CPL): what kind of product a signing certificate names, and what it may claim.

The C2PA publishes the list in ``c2pa-org/conformance-public`` (``conforming-products/conforming-products-list.json``;
a dated snapshot ships in ``provenance/data``, CC BY 4.0, "C2PA"). Each record names a product by the subject of
the claim-signing certificates issued to it (``DN``: CN the product's name, O the applicant's legal name, OU, C),
its type (a ``generatorProduct`` signs claims, a ``validatorProduct`` only checks them), its security assurance
level (1 or 2) and attestation methods, its status (``conformant`` or one of the ``revoked`` kinds), and the local
signals of the C2PA Asset Signals Rubric it may *not* emit in the active manifests it signs (``disallowedSignals``:
an editing service that has never seen a sensor may not claim ``capturedMedia``).

A record is found by the certificate subject's CN and O, compared exactly after Unicode NFKC normalisation, case
folding and whitespace collapsing. Several records often share a name (one per submitted version, per platform);
``lookup`` prefers, in order: the same OU when one is given, a conformant record, a generator product (only
generators sign claims), the latest ``lastModification``, the latest conformance date, then the record id.

A certificate subject is only a name: anyone can mint a certificate that says "Pixel Camera, Google LLC". A CPL
record tells what a signer may vouch for *only* when its certificate chains to the C2PA Trust List, whose CAs check
the CPL before issuing; for any other signer the match means nothing and the caller must not use it.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import unicodedata
from dataclasses import dataclass, field
from enum import Enum
from importlib import resources
from pathlib import Path

from synthguard.errors import InputError, one_line

SHIPPED_FILE = "conforming-products-list.json"
MAX_LIST_BYTES = 32 * 1024 * 1024  # the 2026-08 list is about 190 KB for 174 records
SIGNAL_CATEGORIES = ("inception", "transformation")


class ProductType(str, Enum):
    GENERATOR = "generatorProduct"
    VALIDATOR = "validatorProduct"


class ProductStatus(str, Enum):
    CONFORMANT = "conformant"
    REVOKED = "revoked"
    REVOKED_EOL = "revoked_eol"
    REVOKED_VULNERABILITY = "revoked_vulnerability"


def normalise_name(value: str) -> str:
    """The form two DN attribute values are compared in: NFKC, case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", value).casefold().split())


def split_signal_id(signal_id: str) -> tuple[str | None, str]:
    """``inception:signal_capturedMedia`` -> ("inception", "capturedMedia"); ``capturedMedia`` -> (None, ...)."""
    if not isinstance(signal_id, str) or not signal_id.strip():
        raise InputError(f"a signal id must be a non-empty string, not {signal_id!r}")
    category, sep, name = signal_id.strip().rpartition(":")
    name = name.removeprefix("signal_")
    if not name:
        raise InputError(f"signal id {signal_id!r} names no signal")
    return (category if sep else None), name


@dataclass(frozen=True)
class Product:
    """One record of the Conforming Products List."""

    record_id: str
    applicant: str
    product_type: ProductType
    name: str  # the certificate subject's CN, as the list gives it
    organization: str  # the certificate subject's O
    organizational_unit: str | None
    country: str | None
    status: ProductStatus
    assurance_level: int | None  # 1 or 2; None for a validator product
    attestation_methods: tuple[str, ...]
    disallowed_inception: tuple[str, ...]  # rubric signal names, e.g. "capturedMedia"
    disallowed_transformation: tuple[str, ...]
    generate_containers: tuple[str, ...]  # MIME types it signs
    validate_containers: tuple[str, ...]  # MIME types it validates
    spec_versions: tuple[str, ...]
    min_version: str | None
    conformance_date: dt.date
    last_modified: dt.date

    @property
    def conformant(self) -> bool:
        return self.status is ProductStatus.CONFORMANT

    @property
    def is_generator(self) -> bool:
        return self.product_type is ProductType.GENERATOR

    def disallowed(self, category: str | None = None) -> tuple[str, ...]:
        """The disallowed signal names of one category ("inception", "transformation"), or of both."""
        if category == "inception":
            return self.disallowed_inception
        if category == "transformation":
            return self.disallowed_transformation
        if category is None:
            return self.disallowed_inception + self.disallowed_transformation
        return ()

    def may_claim(self, signal_id: str) -> bool:
        """May this product emit this rubric signal in a manifest it signs?

        ``signal_id`` is the rubric's id (``inception:signal_capturedMedia``) or the list's name
        (``capturedMedia``). Only a conformant generator product may claim anything: a validator product does not
        sign claims, and a revoked product's conformance no longer covers what it signs.
        """
        category, name = split_signal_id(signal_id)
        if not (self.conformant and self.is_generator):
            return False
        return name not in self.disallowed(category)

    def to_dict(self) -> dict:
        return {"record_id": self.record_id, "applicant": self.applicant, "product_type": self.product_type.value,
                "name": self.name, "organization": self.organization,
                "organizational_unit": self.organizational_unit, "country": self.country,
                "status": self.status.value, "assurance_level": self.assurance_level,
                "attestation_methods": list(self.attestation_methods),
                "disallowed_signals": {"inception": list(self.disallowed_inception),
                                       "transformation": list(self.disallowed_transformation)},
                "generate_containers": list(self.generate_containers),
                "validate_containers": list(self.validate_containers),
                "spec_versions": list(self.spec_versions), "min_version": self.min_version,
                "conformance_date": self.conformance_date.isoformat(),
                "last_modified": self.last_modified.isoformat()}

    def describe(self) -> tuple[str, ...]:
        kind = "generator product" if self.is_generator else "validator product (validates claims, signs none)"
        status = "conformant" if self.conformant else f"conformance withdrawn ({self.status.value})"
        lines = [f"{self.name} ({self.organization}): C2PA {kind}, {status} (conformance date "
                 f"{self.conformance_date.isoformat()}, record {self.record_id})"]
        if self.assurance_level is not None:
            methods = ", ".join(self.attestation_methods) or "no attestation method listed"
            lines.append(f"assurance level {self.assurance_level} ({methods})")
        if self.is_generator:
            disallowed = [f"{c}:{n}" for c in SIGNAL_CATEGORIES for n in self.disallowed(c)]
            lines.append("may not claim: " + ", ".join(disallowed) if disallowed
                         else "no signal is disallowed for it")
        return tuple(lines)


def _str(value, where: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise InputError(f"{where} must be a string, not {type(value).__name__}")
    return value


def _strings(value, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(f"{where} must be a list of strings")
    return tuple(value)


def _date(value, where: str) -> dt.date:
    try:
        return dt.date.fromisoformat(_str(value, where))
    except ValueError:
        raise InputError(f"{where} {value!r} is not an ISO date (YYYY-MM-DD)") from None


def _enum(enum, value, where: str):
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(m.value for m in enum)
        raise InputError(f"{where} {value!r} is not one of: {allowed}") from None


def _containers(value, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise InputError(f"{where} must be an object of media kinds")
    return tuple(mime for kind in sorted(value) for mime in _strings(value[kind], f"{where}.{kind}"))


def parse_record(record, index: int) -> Product:
    """One CPL record as a ``Product``; a malformed record is an InputError naming it and the bad field."""
    where = f"conforming products list record {index}"
    if not isinstance(record, dict):
        raise InputError(f"{where} is not an object")
    record_id = _str(record.get("recordId"), f"{where} recordId")
    where = f"{where} ({record_id})"
    product = record.get("product")
    if not isinstance(product, dict):
        raise InputError(f"{where} has no product object")
    dn = product.get("DN")
    if not isinstance(dn, dict):
        raise InputError(f"{where} has no product.DN object")
    assurance = product.get("assurance") or {}
    signals = product.get("disallowedSignals") or {}
    containers = record.get("containers") or {}
    dates = record.get("dates")
    if not isinstance(assurance, dict) or not isinstance(signals, dict) or not isinstance(containers, dict):
        raise InputError(f"{where}: assurance, disallowedSignals and containers must be objects")
    if not isinstance(dates, dict):
        raise InputError(f"{where} has no dates object")
    level = assurance.get("maxAssuranceLevel")
    if level is not None and (isinstance(level, bool) or not isinstance(level, int)):
        raise InputError(f"{where} maxAssuranceLevel {level!r} is not an integer")
    name = _str(dn.get("CN"), f"{where} DN.CN").strip()
    organization = _str(dn.get("O"), f"{where} DN.O").strip()
    if not name or not organization:
        raise InputError(f"{where} has an empty DN CN or O")
    unit = (_str(dn.get("OU"), f"{where} DN.OU", optional=True) or "").strip() or None
    country = (_str(dn.get("C"), f"{where} DN.C", optional=True) or "").strip() or None
    return Product(
        record_id=record_id, applicant=_str(record.get("applicant"), f"{where} applicant"),
        product_type=_enum(ProductType, product.get("productType"), f"{where} productType"),
        name=name, organization=organization, organizational_unit=unit, country=country,
        status=_enum(ProductStatus, record.get("status"), f"{where} status"),
        assurance_level=level, attestation_methods=_strings(assurance.get("attestationMethods"),
                                                            f"{where} attestationMethods"),
        disallowed_inception=_strings(signals.get("inception"), f"{where} disallowedSignals.inception"),
        disallowed_transformation=_strings(signals.get("transformation"),
                                           f"{where} disallowedSignals.transformation"),
        generate_containers=_containers(containers.get("generate"), f"{where} containers.generate"),
        validate_containers=_containers(containers.get("validate"), f"{where} containers.validate"),
        spec_versions=_strings(record.get("specVersion"), f"{where} specVersion"),
        min_version=_str(product.get("minVersion"), f"{where} minVersion", optional=True) or None,
        conformance_date=_date(dates.get("conformance"), f"{where} dates.conformance"),
        last_modified=_date(dates.get("lastModification"), f"{where} dates.lastModification"))


@dataclass(frozen=True)
class ConformingProducts:
    """A snapshot of the Conforming Products List, indexed by certificate subject (CN, O)."""

    products: tuple[Product, ...]
    source: str  # "shipped snapshot" or the file it was read from
    sha256: str
    _index: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        index: dict[tuple[str, str], list[Product]] = {}
        for product in self.products:
            index.setdefault((normalise_name(product.name), normalise_name(product.organization)), []).append(product)
        object.__setattr__(self, "_index", {key: tuple(value) for key, value in index.items()})

    @classmethod
    def from_bytes(cls, data: bytes, *, source: str) -> ConformingProducts:
        if len(data) > MAX_LIST_BYTES:
            raise InputError(f"the conforming products list {source} is {len(data)} bytes, over the "
                             f"{MAX_LIST_BYTES} byte limit")
        try:
            records = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise InputError(f"the conforming products list {source} is not valid JSON: {one_line(exc)}") from None
        if not isinstance(records, list) or not records:
            raise InputError(f"the conforming products list {source} must be a non-empty JSON array of records")
        products = tuple(parse_record(record, i) for i, record in enumerate(records))
        return cls(products, source, hashlib.sha256(data).hexdigest())

    @classmethod
    def from_file(cls, path: str | Path) -> ConformingProducts:
        """A (newer) list downloaded from c2pa-org/conformance-public."""
        path = Path(path)
        try:
            size = path.stat().st_size
            if size > MAX_LIST_BYTES:
                raise InputError(f"the conforming products list {path} is {size} bytes, over the "
                                 f"{MAX_LIST_BYTES} byte limit")
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read the conforming products list {path}: {one_line(exc)}") from None
        return cls.from_bytes(data, source=str(path))

    @classmethod
    @functools.cache
    def shipped(cls) -> ConformingProducts:
        """The snapshot shipped in ``provenance/data`` (loaded once per process)."""
        data = resources.files("synthguard.provenance").joinpath("data", SHIPPED_FILE).read_bytes()
        return cls.from_bytes(data, source="shipped snapshot")

    @property
    def count(self) -> int:
        return len(self.products)

    @property
    def newest(self) -> dt.date:
        """The latest ``lastModification`` of any record: how recent this snapshot is."""
        return max(p.last_modified for p in self.products)

    def matches(self, common_name: str | None, organization: str | None, *,
                organizational_unit: str | None = None) -> tuple[Product, ...]:
        """Every record whose CN and O match, best first (the order ``lookup`` picks from)."""
        if not isinstance(common_name, str) or not isinstance(organization, str):
            return ()
        found = self._index.get((normalise_name(common_name), normalise_name(organization)), ())
        unit = normalise_name(organizational_unit) if isinstance(organizational_unit, str) else None

        def rank(p: Product):
            same_unit = unit is not None and normalise_name(p.organizational_unit or "") == unit
            return (same_unit, p.conformant, p.is_generator, p.last_modified, p.conformance_date, p.record_id)

        return tuple(sorted(found, key=rank, reverse=True))

    def lookup(self, common_name: str | None, organization: str | None, *,
               organizational_unit: str | None = None) -> Product | None:
        """The record for a certificate subject's CN and O (both needed), or None when the list has none.

        Meaningful only for a signer whose certificate chains to the C2PA Trust List (see the module docstring).
        """
        found = self.matches(common_name, organization, organizational_unit=organizational_unit)
        return found[0] if found else None

    def to_dict(self) -> dict:
        return {"source": self.source, "sha256": self.sha256, "count": self.count,
                "generators": sum(p.is_generator for p in self.products),
                "validators": sum(not p.is_generator for p in self.products),
                "newest": self.newest.isoformat()}

    def describe(self) -> tuple[str, ...]:
        generators = sum(p.is_generator for p in self.products)
        return (f"C2PA Conforming Products List ({self.source}): {self.count} records ({generators} generator "
                f"products), newest record {self.newest.isoformat()}",)
