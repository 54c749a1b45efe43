"""What a manifest store says beyond its active manifest's claims: each manifest's signer and where trust in it
comes from, its time-stamp, the CAWG identities it names, the C2PA Asset Rubric's local signals, and the C2PA
Conforming Products List entry of its signer.

``read_details`` runs on an open store (``reader.json()`` and, when c2pa gives them, the store's JUMBF and its
crJSON); ``StoreDetails`` is the typed result, with ``to_dict()`` and ``describe()``. A step that cannot run (an
unreadable signature box, a crJSON c2pa cannot produce) is reported as not checked, never dropped.

Trust in a signer is attributed by re-walking its certificate chain (``jumbf.chain_anchor``, every link verified) to
the anchor it ends at, and naming that anchor's source (``identity.TrustSource``): the C2PA Trust List (with the
listed entity), your anchors, or your own identity. The Conforming Products List is consulted only for a signer
trusted via the C2PA Trust List: anyone can make a certificate with any name, so a CPL match on an untrusted
signer would mean nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.x509.oid import NameOID

from synthguard.errors import InputError
from synthguard.provenance.cawg import CawgIdentity, identities_from_store
from synthguard.provenance.identity import TrustAnchors, TrustSource
from synthguard.provenance.jumbf import CoseSignature, Superbox, chain_anchor, manifest_store, signature_in
from synthguard.provenance.products import ConformingProducts, Product
from synthguard.provenance.rubric import RubricReport, claims_outside_scope, evaluate_local_signals
from synthguard.provenance.timestamps import TimestampSignal, TimestampStatus, validate_timestamp
from synthguard.provenance.validation import ValidationKinds

_LABEL = re.compile(r"self#jumbf=/c2pa/([^/]+)(/.*)?$")


@dataclass(frozen=True)
class ManifestLink:
    """One manifest of the store (the active one first, then the ingredients' manifests in store order)."""

    label: str
    active: bool
    title: str | None = None
    signer: str | None = None
    issuer: str | None = None
    signed_at: str | None = None
    claim_generator: str | None = None
    trust_source: str | None = None  # identity.TrustSource value: the chain ends at one of those anchors
    trust_anchor: str | None = None  # that anchor's subject
    trust_entity: str | None = None  # the C2PA Trust List entity the anchor belongs to
    timestamp: TimestampSignal | None = None
    failures: tuple[str, ...] = ()  # this manifest's failure codes (all kinds)

    @property
    def kinds(self) -> ValidationKinds:
        return ValidationKinds.of(self.failures)

    @property
    def validation(self) -> str:
        """The worst kind of failure of this manifest ("intact" when none): integrity, credential, trust, ..."""
        kinds = self.kinds
        for name in ("integrity", "credential", "unclassified", "trust", "not_checked"):
            if getattr(kinds, name):
                return name.replace("_", "-")
        return "intact"

    def to_dict(self) -> dict:
        return {"label": self.label, "active": self.active, "title": self.title, "signer": self.signer,
                "issuer": self.issuer, "signed_at": self.signed_at, "claim_generator": self.claim_generator,
                "trust_source": self.trust_source, "trust_anchor": self.trust_anchor,
                "trust_entity": self.trust_entity, "validation": self.validation, "failures": list(self.failures),
                "timestamp": self.timestamp.to_dict() if self.timestamp else None}

    def describe(self) -> str:
        role = "this file's manifest" if self.active else "an ingredient's manifest"
        who = f"signed by {self.signer or 'an unnamed signer'}" + (f" ({self.issuer})" if self.issuer else "")
        if self.trust_source:
            via = TrustSource(self.trust_source).title + (f": {self.trust_entity}" if self.trust_entity else "")
            trust = f"its chain ends at a root of {via}"
        else:
            trust = "its chain ends at none of your trust roots"
        stamp = self.timestamp.describe()[0] if self.timestamp else "Time-stamp: not read"
        stamp = stamp.replace("Time-stamp: ", "time-stamp ", 1)
        codes = f" ({', '.join(self.failures)})" if self.failures else ""
        return f"{role} {self.title or self.label}: {who}; {trust}; {stamp}; validation: {self.validation}{codes}"


@dataclass(frozen=True)
class StoreDetails:
    """The typed details of one store (see the module docstring); ``notes``: what could not be checked, and why."""

    chain: tuple[ManifestLink, ...] = ()
    identities: tuple[CawgIdentity, ...] = ()
    rubric: RubricReport | None = None
    product: Product | None = None
    outside_scope: tuple[str, ...] = ()  # rubric signals of the active manifest its CPL product may not claim
    notes: tuple[str, ...] = ()

    @property
    def active(self) -> ManifestLink | None:
        return self.chain[0] if self.chain and self.chain[0].active else None

    @property
    def timestamp(self) -> TimestampSignal | None:
        return self.active.timestamp if self.active else None

    def to_dict(self) -> dict:
        return {"chain": [link.to_dict() for link in self.chain],
                "identities": [i.to_dict() for i in self.identities],
                "rubric": self.rubric.to_dict() if self.rubric else None,
                "product": self.product.to_dict() if self.product else None,
                "outside_scope": list(self.outside_scope), "notes": list(self.notes),
                "lines": list(self.describe())}

    def describe(self) -> tuple[str, ...]:
        lines = [f"provenance chain: {link.describe()}" for link in self.chain]
        for identity in self.identities:
            lines += identity.describe()
        if self.product is not None:
            lines += [f"C2PA Conforming Products List: {line}" for line in self.product.describe()]
        if self.outside_scope:
            lines.append(f"the manifest claims what its conforming product may not claim: "
                         f"{', '.join(self.outside_scope)} (its Conforming Products List entry disallows it)")
        if self.rubric is not None:
            lines += self.rubric.describe()
        lines += [f"not checked: {note}" for note in self.notes]
        return tuple(lines)


@dataclass(frozen=True)
class RenderedDetails:
    """``StoreDetails`` read back from its JSON (a ``verify`` line of an earlier run): its lines and fields."""

    data: dict

    @property
    def outside_scope(self) -> tuple[str, ...]:
        return tuple(self.data.get("outside_scope") or ())

    def to_dict(self) -> dict:
        return self.data

    def describe(self) -> tuple[str, ...]:
        return tuple(self.data.get("lines") or ())


def _codes_by_manifest(store: Mapping) -> dict[str, dict[str, list[tuple[str, str]]]]:
    """label -> kind (success / informational / failure) -> [(code, the rest of its URL)], over the active
    manifest's results and the ingredients' deltas."""
    results = store.get("validation_results") or {}
    groups = [results.get("activeManifest") or {}]
    groups += [(delta or {}).get("validationDeltas") or {} for delta in results.get("ingredientDeltas") or []]
    found: dict[str, dict[str, list[tuple[str, str]]]] = {}
    for group in groups:
        for kind in ("success", "informational", "failure"):
            for item in group.get(kind) or []:
                match = _LABEL.match(str(item.get("url", ""))) if isinstance(item, Mapping) else None
                if match and isinstance(item.get("code"), str):
                    found.setdefault(match.group(1), {}).setdefault(kind, []).append(
                        (item["code"], match.group(2) or ""))
    return found


def _signature_codes(codes: Mapping[str, list[tuple[str, str]]]) -> dict[str, list[str]]:
    return {kind: [code for code, rest in codes.get(kind, []) if rest.endswith("/c2pa.signature")]
            for kind in ("success", "informational", "failure")}


def _attribute(signature: CoseSignature | None, trust: TrustAnchors) -> tuple[str | None, str | None, str | None]:
    """(trust source, anchor subject, trust-list entity) of the anchor the signature's chain ends at."""
    if signature is None or not signature.certificates or not len(trust):
        return None, None, None
    anchor = chain_anchor(signature.certificates, trust.certificates)
    source = trust.source_of(anchor) if anchor is not None else None
    if source is None:
        return None, None, None
    entity = trust.trust_list.entity_of(anchor) if source is TrustSource.C2PA_TRUST_LIST and trust.trust_list \
        else None
    return source.value, anchor.subject.rfc4514_string(), entity


def _parsed_store(jumbf: bytes | None, notes: list[str]) -> Superbox | None:
    """The store's bytes parsed once (None when there are none or they cannot be parsed: ``notes`` says why)."""
    if jumbf is None:
        return None
    try:
        return manifest_store(jumbf)
    except InputError as exc:
        notes.append(f"the manifest store's bytes cannot be parsed: {exc}")
        return None


def _signatures(store: Superbox | None, labels: list[str], notes: list[str]) -> dict[str, CoseSignature | None]:
    """Each manifest's claim signature, from the parsed store (a label is missing when its signature cannot be
    read, and ``notes`` says why)."""
    if store is None:
        return {}
    found: dict[str, CoseSignature | None] = {}
    for label in labels:
        try:
            found[label] = signature_in(store, label)
        except InputError as exc:
            notes.append(f"the signature of manifest {label} cannot be read: {exc}")
    return found


def _link(label: str, manifest: Mapping, *, active: bool, readable: bool, signature: CoseSignature | None,
          trust: TrustAnchors, codes: Mapping[str, list[tuple[str, str]]], set_aside: frozenset[str]) -> ManifestLink:
    """One manifest's link; ``readable``: the store's bytes were read (else its time-stamp is not checked)."""
    info = manifest.get("signature_info") or {}
    generator = (manifest.get("claim_generator_info") or [{}])[0] or {}
    trusted_here = not any(code in ("signingCredential.untrusted",) for code, _ in codes.get("failure", []))
    source, anchor, entity = _attribute(signature, trust) if trusted_here else (None, None, None)
    tsa = trust.tsa_list
    if not readable:
        timestamp = TimestampSignal(TimestampStatus.NOT_CHECKED, time=info.get("time"),
                                    reason="the manifest store's bytes could not be read here")
    else:
        timestamp = validate_timestamp(signature, tsa.certificates if tsa else (),
                                       c2pa_codes=_signature_codes(codes), signed_at=info.get("time"),
                                       source=f"the {tsa.name}" if tsa else "no time-stamp list")
    failures = tuple(dict.fromkeys(code for code, _ in codes.get("failure", []) if code not in set_aside))
    name = generator.get("name") if isinstance(generator, Mapping) else None
    return ManifestLink(label, active, manifest.get("title"), info.get("common_name"), info.get("issuer"),
                        info.get("time"), str(name) if name else manifest.get("claim_generator"), source, anchor,
                        entity, timestamp, failures)


def read_details(store: Mapping, *, trust: TrustAnchors, jumbf: bytes | None, crjson: str | None,
                 set_aside: frozenset[str] = frozenset()) -> StoreDetails:
    """The details of a store read by c2pa: ``store`` is ``reader.json()``; ``jumbf`` the store's bytes
    (``jumbf.read_store_jumbf``) and ``crjson`` ``reader.crjson()``, None when c2pa could not give them."""
    notes: list[str] = []
    if jumbf is None:
        notes.append("the manifest store's bytes could not be read: signer chains and time-stamps are unverified here")
    manifests = store.get("manifests") or {}
    active_label = store.get("active_manifest")
    codes = _codes_by_manifest(store)
    parsed = _parsed_store(jumbf, notes)
    # The ingredients' manifests in the order the store's bytes hold them (c2pa's JSON map has no stable order),
    # any the bytes lack after them by label: the same file always gives the same chain.
    position = {box.label: i for i, box in enumerate(parsed.superboxes)} if parsed is not None else {}
    order = [active_label] if active_label in manifests else []
    order += sorted((label for label in manifests if label != active_label),
                    key=lambda label: (position.get(label, len(position)), label))
    signatures = _signatures(parsed, order, notes)
    chain = tuple(_link(label, manifests[label], active=label == active_label, readable=jumbf is not None,
                        signature=signatures.get(label), trust=trust, codes=codes.get(label, {}),
                        set_aside=set_aside) for label in order)
    rubric = None
    if crjson is None:
        notes.append("c2pa gave no crJSON for this store: the C2PA Asset Rubric's signals are not evaluated")
    else:
        try:
            rubric = evaluate_local_signals(crjson)
        except InputError as exc:
            notes.append(f"the C2PA Asset Rubric's signals cannot be evaluated: {exc}")
    product, outside = None, ()
    active = chain[0] if chain and chain[0].active else None
    if active is not None and active.trust_source == TrustSource.C2PA_TRUST_LIST.value:
        signature = signatures.get(active.label)
        subject = signature.signer_certificate.subject if signature and signature.signer_certificate else None
        if subject is not None:
            cn, org, unit = (_first(subject, oid) for oid in (NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME,
                                                             NameOID.ORGANIZATIONAL_UNIT_NAME))
            product = (trust.products or ConformingProducts.shipped()).lookup(cn, org, organizational_unit=unit)
            if product is not None and rubric is not None:
                outside = claims_outside_scope(rubric, product)
    return StoreDetails(chain, identities_from_store(store), rubric, product, outside, tuple(notes))


def _first(subject, oid) -> str | None:
    values = subject.get_attributes_for_oid(oid)
    return str(values[0].value) if values else None
