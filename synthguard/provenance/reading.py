"""Reading and validating C2PA provenance into one typed signal.

States (``ProvenanceState``):
- ``trusted``: the manifest is intact, its credential holds and its signer chains to one of *your* trust anchors;
- ``valid``: intact (no integrity failure), but not authenticated: the signer is not one you trust (anyone can make
  a certificate: this is never "authentic"), the signature's credential no longer holds (expired, revoked), or
  something could not be checked here; the failure kinds say which (``provenance.validation``);
- ``invalid``: the manifest or the content was changed after signing, or the manifest is malformed (an integrity
  failure code says which; or c2pa reports Invalid and names no failure at all);
- ``absent``: no manifest (embedded or sidecar); absence is not evidence of anything;
- ``error``: a manifest is there but cannot be read or checked here (remote and unreachable, unsupported...).

c2pa's own ``validation_state`` is kept (``c2pa_state``) and never upgraded to trusted: a manifest is trusted only
when no failure remains and c2pa found the signer's chain ends at one of your anchors.

When the file has no manifest, the local ledger is consulted: a file whose bytes or decoded pixels match a signed
asset gets that asset's manifest back (``recovered_from_ledger``), re-validated for signature and trust.
"""

from __future__ import annotations

import base64
import io
import json
import re
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from pathlib import Path

import c2pa

from synthguard.core.media import MediaKind, MediaType, decode_image, file_sha256, sniff
from synthguard.errors import InputError, one_line
from synthguard.provenance.chain import RenderedDetails, StoreDetails, read_details
from synthguard.provenance.identity import TrustAnchors
from synthguard.provenance.jumbf import read_store_jumbf
from synthguard.provenance.ledger import Ledger, LedgerRecord
from synthguard.provenance.manifest import MODEL_ASSERTION, source_type_is_ai
from synthguard.provenance.signing import sidecar_path
from synthguard.provenance.timestamps import TimestampSignal
from synthguard.provenance.trustlist import stale_warning
from synthguard.provenance.validation import ValidationKind, ValidationKinds, classify

# Without the asset, a manifest's data hash cannot be checked: for a ledger recovery the ledger's own content hash
# takes its place, so this one code is expected and set aside.
_UNBOUND_CODES = frozenset({"assertion.dataHash.mismatch", "assertion.boxesHash.mismatch",
                            "assertion.bmffHash.mismatch"})


class ProvenanceState(str, Enum):
    TRUSTED = "trusted"
    VALID = "valid"
    INVALID = "invalid"
    ABSENT = "absent"
    ERROR = "error"


@dataclass(frozen=True)
class ActionRecord:
    action: str
    digital_source_type: str | None = None
    software_agent: str | None = None


@dataclass(frozen=True)
class ProvenanceSignal:
    present: bool
    state: ProvenanceState
    source: str | None = None  # "embedded", "sidecar" or "ledger"
    signer: str | None = None
    issuer: str | None = None
    signed_at: str | None = None
    claim_generator: str | None = None
    title: str | None = None
    manifest_label: str | None = None
    digital_source_type: str | None = None
    ai_generated: bool | None = None
    actions: tuple[ActionRecord, ...] = ()
    ingredients: int = 0
    manifests: int = 0
    failures: tuple[str, ...] = ()
    ingredient_failures: tuple[str, ...] = ()
    model: dict | None = None
    soft_binding: dict | None = None
    recovered_from_ledger: bool = False
    ledger_match: str | None = None  # "file-hash", "content-hash" or "soft-binding"
    # For a soft-binding (watermark) recovery: is this file's content identical to the signed asset's? (False for
    # a re-encoded or edited copy: the manifest describes the original, not every change since.)
    ledger_content_match: bool | None = None
    remote_url: str | None = None
    # What the Soft Binding Resolution repositories were asked about this file's watermark and what each answered
    # (one plain line per question, failures included); empty when none was asked.
    resolver_log: tuple[str, ...] = ()
    error: str | None = None
    informational: tuple[str, ...] = ()  # the active manifest's informational codes (never failures)
    c2pa_state: str | None = None  # c2pa's own validation_state: "Invalid", "Valid" or "Trusted"
    # Where trust in a trusted signer comes from (identity.TrustSource value), the anchor its chain ends at, and
    # the C2PA Trust List entity of that anchor; None unless the manifest is trusted.
    trust_source: str | None = None
    trust_anchor: str | None = None
    trust_entity: str | None = None
    trust_list_stale: str | None = None  # a warning when that trust came from a C2PA Trust List past its next update
    # The store beyond the active claim (provenance.chain): each manifest's signer, trust source, time-stamp and
    # validation kind; CAWG identities; the C2PA Asset Rubric's signals; the signer's Conforming Products entry.
    details: StoreDetails | RenderedDetails | None = field(default=None, compare=False)

    @property
    def kinds(self) -> ValidationKinds:
        """The failure codes by kind (``provenance.validation``)."""
        return ValidationKinds.of(self.failures)

    @property
    def integrity_failures(self) -> tuple[str, ...]:
        """Changed after signing, or malformed: the only failures that make a manifest invalid."""
        return self.kinds.integrity

    @property
    def credential_failures(self) -> tuple[str, ...]:
        """The signature's credential no longer holds (expired, revoked...)."""
        return self.kinds.credential

    @property
    def trust_failures(self) -> tuple[str, ...]:
        """The signer, time-stamp authority or named identity is not on the verifier's lists."""
        return self.kinds.trust

    @property
    def unchecked(self) -> tuple[str, ...]:
        """What could not be checked here: not-checked failure codes, then not-checked informational ones."""
        return ValidationKinds.of((*self.kinds.not_checked, *self.informational)).not_checked

    @property
    def unclassified(self) -> tuple[str, ...]:
        """Failure codes of no known kind: not authenticated, but not proof of tampering."""
        return self.kinds.unclassified

    @property
    def timestamp(self) -> TimestampSignal | None:
        """The active manifest's time-stamp, checked against the C2PA TSA Trust List."""
        return self.details.timestamp if isinstance(self.details, StoreDetails) else None

    @property
    def outside_scope(self) -> tuple[str, ...]:
        """Signals the manifest claims that its signer's Conforming Products entry disallows."""
        return self.details.outside_scope if self.details is not None else ()

    def to_dict(self) -> dict:
        data = asdict(replace(self, details=None))
        data.pop("details")
        details = self.details.to_dict() if self.details is not None else {}
        data["timestamp"] = (self.timestamp.to_dict() if self.timestamp else
                             ((details.get("chain") or [{}])[0].get("timestamp") if details else None))
        data["details"] = details or None
        data["state"] = self.state.value
        data["actions"] = [asdict(a) for a in self.actions]
        for name in ("failures", "ingredient_failures", "informational", "resolver_log", "integrity_failures",
                     "credential_failures", "trust_failures", "unchecked", "unclassified"):
            data[name] = list(getattr(self, name))
        return data


# Validation contexts made for trust anchors, newest last: c2pa lets readers share a context, and making one (the
# PEM bundle of every anchor, parsed by c2pa) costs more than reading a small file. Keyed by the anchors' identity,
# each kept alive by its entry (an id is never reused while it is cached).
_CONTEXTS: dict[int, tuple[TrustAnchors, c2pa.Context]] = {}
_MAX_CONTEXTS = 8


def validation_context(trust: TrustAnchors) -> c2pa.Context:
    """The c2pa context that validates against ``trust`` (made once per anchors object, then shared)."""
    cached = _CONTEXTS.get(id(trust))
    if cached is not None and cached[0] is trust:
        return cached[1]
    settings: dict = {}
    if len(trust):
        settings["trust"] = {"trust_anchors": trust.pem_bundle()}
    context = c2pa.Context.from_dict(settings)
    if len(_CONTEXTS) >= _MAX_CONTEXTS:
        _CONTEXTS.pop(next(iter(_CONTEXTS)))
    _CONTEXTS[id(trust)] = (trust, context)
    return context


def _agent_name(agent) -> str | None:
    if isinstance(agent, dict):
        return " ".join(str(agent[k]) for k in ("name", "version") if agent.get(k)) or None
    return str(agent) if agent else None


def _actions(manifest: dict) -> list[ActionRecord]:
    found = []
    for assertion in manifest.get("assertions", []):
        if assertion.get("label", "").split(".v")[0] not in ("c2pa.actions",):
            continue
        for action in assertion.get("data", {}).get("actions", []):
            found.append(ActionRecord(action=str(action.get("action")),
                                      digital_source_type=action.get("digitalSourceType"),
                                      software_agent=_agent_name(action.get("softwareAgent"))))
    return found


def _assertion(manifest: dict, label: str) -> dict | None:
    for assertion in manifest.get("assertions", []):
        if assertion.get("label") == label:
            return assertion.get("data")
    return None


def _codes(results: dict, kind: str) -> list[str]:
    return [item["code"] for item in results.get(kind, []) if "code" in item]


def _state(raw_state: str | None, reported: list[str], failures: tuple[str, ...],
           successes: set[str]) -> ProvenanceState:
    """Our state from c2pa's: only an integrity failure makes a manifest invalid, and nothing upgrades c2pa's."""
    if any(classify(code) is ValidationKind.INTEGRITY for code in failures):
        return ProvenanceState.INVALID
    if raw_state == "Invalid" and not reported:
        return ProvenanceState.INVALID  # c2pa says invalid and names no failure: nothing to weigh, never upgrade it
    if failures:
        return ProvenanceState.VALID  # a credential, trust, not-checked or unclassified failure: not authenticated
    if raw_state == "Trusted" or "signingCredential.trusted" in successes:
        # Trusted means no failure is left and the chain ends at one of our anchors (c2pa reports Invalid for a
        # ledger recovery only because of the set-aside data hash, which the ledger's content hash replaces).
        return ProvenanceState.TRUSTED
    return ProvenanceState.VALID


def signal_from_store(store: dict, *, source: str, set_aside: frozenset[str] = frozenset(),
                      trust: TrustAnchors | None = None, jumbf: bytes | None = None,
                      crjson: str | None = None) -> ProvenanceSignal:
    """Turn a reader's JSON (``reader.json()``) into a signal; ``set_aside`` codes do not count as failures.

    The state weighs each failure by its kind (``provenance.validation``): an integrity failure gives ``invalid``;
    a credential, trust, not-checked or unclassified one leaves the manifest ``valid`` (not authenticated).
    With ``trust`` (the anchors the store was validated against), the store's details are read too
    (``provenance.chain``: ``jumbf`` the store's bytes, ``crjson`` c2pa's crJSON of it) and a trusted signer's trust
    source is named.
    """
    manifests = store.get("manifests", {})
    active = manifests.get(store.get("active_manifest"), {})
    results = store.get("validation_results", {})
    reported = _codes(results.get("activeManifest", {}), "failure")
    failures = tuple(c for c in reported if c not in set_aside)
    ingredient_failures = tuple(
        code for delta in results.get("ingredientDeltas", [])
        for code in _codes(delta.get("validationDeltas", {}), "failure"))
    successes = set(_codes(results.get("activeManifest", {}), "success"))
    raw_state = store.get("validation_state")
    state = _state(raw_state, reported, failures, successes)

    active_actions = _actions(active)
    all_types = [a.digital_source_type for m in manifests.values() for a in _actions(m) if a.digital_source_type]
    ai_flags = [source_type_is_ai(t) for t in all_types]
    ai_generated = True if any(ai_flags) else (False if any(f is False for f in ai_flags) else None)
    declared = next((a.digital_source_type for a in active_actions if a.digital_source_type), None)

    signature = active.get("signature_info", {}) or {}
    generator = (active.get("claim_generator_info") or [{}])[0]
    binding = _assertion(active, "c2pa.soft-binding")
    soft_binding = None
    if binding:
        blocks = binding.get("blocks") or [{}]
        try:
            value = base64.b64decode(blocks[0].get("value", "")).hex()
        except (ValueError, TypeError):
            value = None
        soft_binding = {"alg": binding.get("alg"), "value": value}
    details = read_details(store, trust=trust, jumbf=jumbf, crjson=crjson, set_aside=set_aside) \
        if trust is not None else None
    link = details.active if details is not None and state is ProvenanceState.TRUSTED else None
    return ProvenanceSignal(
        trust_source=link.trust_source if link else None, trust_anchor=link.trust_anchor if link else None,
        trust_entity=link.trust_entity if link else None, details=details,
        trust_list_stale=stale_warning(trust.trust_list) if link and link.trust_source == "c2pa-trust-list" else None,
        present=source != "ledger", state=state, source=source,
        signer=signature.get("common_name"), issuer=signature.get("issuer"), signed_at=signature.get("time"),
        claim_generator=_agent_name(generator) or active.get("claim_generator"), title=active.get("title"),
        manifest_label=active.get("label") or store.get("active_manifest"), digital_source_type=declared,
        ai_generated=ai_generated, actions=tuple(active_actions), ingredients=len(active.get("ingredients", [])),
        manifests=len(manifests), failures=failures, ingredient_failures=ingredient_failures,
        model=_assertion(active, MODEL_ASSERTION), soft_binding=soft_binding,
        informational=tuple(_codes(results.get("activeManifest", {}), "informational")), c2pa_state=raw_state)


def _error_signal(exc: Exception) -> ProvenanceSignal:
    message = one_line(exc)
    if message.startswith("ManifestNotFound") or "JumbfNotFound" in message:
        return ProvenanceSignal(present=False, state=ProvenanceState.ABSENT)
    if message.startswith("Remote"):
        url = re.search(r"url \((\S+?)\)", message)
        return ProvenanceSignal(
            present=True, state=ProvenanceState.ERROR, source="remote", remote_url=url.group(1) if url else None,
            error="the manifest is remote and could not be fetched (offline or unreachable): "
                  "its claims cannot be checked")
    return ProvenanceSignal(present=True, state=ProvenanceState.ERROR, error=f"manifest cannot be read: {message}")


def _find_sidecar(path: Path) -> Path | None:
    # Only NAME.EXT.c2pa: a bare NAME.c2pa could belong to any of NAME.png, NAME.txt, NAME.jpg...
    candidate = sidecar_path(path)
    return candidate if candidate.is_file() else None


def _read(reader: c2pa.Reader, *, source: str, trust: TrustAnchors,
          set_aside: frozenset[str] = frozenset()) -> ProvenanceSignal:
    """The signal of an open reader: its JSON, and the store's bytes and crJSON for the details."""
    store = json.loads(reader.json())
    label = store.get("active_manifest")
    try:
        jumbf = read_store_jumbf(reader, label) if label else None
    except InputError:
        jumbf = None  # the details say the store's bytes could not be read
    try:
        crjson = reader.crjson()
    except c2pa.C2paError:
        crjson = None  # the details say the rubric was not evaluated
    return signal_from_store(store, source=source, set_aside=set_aside, trust=trust, jumbf=jumbf, crjson=crjson)


def read_provenance(path: Path, *, trust: TrustAnchors, ledger: Ledger | None = None,
                    media: MediaType | None = None, content_sha256: str | None = None,
                    file_digest: str | None = None) -> ProvenanceSignal:
    """The provenance signal of one file (embedded manifest, else sidecar, else ledger match).

    ``content_sha256`` (from ``media.decode_image``) saves a second decode, and ``file_digest`` (the sha256 of the
    file's bytes) a second hash, when the caller already has them.
    """
    path = Path(path)
    media = media or sniff(path)
    context = validation_context(trust)
    signal = ProvenanceSignal(present=False, state=ProvenanceState.ABSENT)
    sidecar = _find_sidecar(path)
    try:
        if media.embeddable:
            with open(path, "rb") as stream, c2pa.Reader(media.mime, stream, context=context) as reader:
                signal = _read(reader, source="embedded", trust=trust)
    except c2pa.C2paError as exc:
        signal = _error_signal(exc)
    if signal.state is ProvenanceState.ABSENT and sidecar is not None:
        try:
            with open(path, "rb") as stream, c2pa.Reader(media.mime, stream, sidecar.read_bytes(),
                                                         context=context) as reader:
                signal = _read(reader, source="sidecar", trust=trust)
        except c2pa.C2paError as exc:
            signal = _error_signal(exc)
            if signal.state is ProvenanceState.ABSENT:
                signal = ProvenanceSignal(present=True, state=ProvenanceState.ERROR, source="sidecar",
                                          error=f"sidecar {sidecar.name} holds no readable manifest")
    if signal.state is ProvenanceState.ABSENT and ledger is not None:
        recovered = recover_from_ledger(path, media, ledger, trust, content_sha256, file_digest)
        if recovered is not None:
            return recovered
    return signal


def _content_hash(path: Path, media: MediaType) -> str | None:
    try:
        if media.kind is MediaKind.AUDIO:
            from synthguard.core.audio import audio_content_sha256, decode_audio  # noqa: PLC0415 (soundfile / av)

            return audio_content_sha256(decode_audio(path))
        if media.kind is not MediaKind.IMAGE:
            return None
        return decode_image(path).content_sha256
    except InputError:
        return None


def recover_from_ledger(path: Path, media: MediaType, ledger: Ledger, trust: TrustAnchors,
                        content_sha256: str | None = None, file_digest: str | None = None) -> ProvenanceSignal | None:
    """Match a manifest-less file to a signed asset by exact bytes, then by decoded pixels. ``file_digest``: the
    sha256 of the file's bytes when the caller hashed them already (read once)."""
    match: tuple[str, LedgerRecord] | None = None
    records = ledger.find_by_file_hash(file_digest or file_sha256(path))
    if records:
        match = ("file-hash", records[0])
    else:
        content = content_sha256 or _content_hash(path, media)
        records = ledger.find_by_content_hash(content) if content else []
        if records:
            match = ("content-hash", records[0])
    if match is None:
        return None
    how, record = match
    return signal_from_ledger_record(record, how, trust)


def signal_from_ledger_record(record: LedgerRecord, how: str, trust: TrustAnchors) -> ProvenanceSignal:
    """The manifest a ledger record holds, re-validated against ``trust`` (its data hash is set aside: the ledger's
    own content match takes its place)."""
    try:
        with c2pa.Reader("application/c2pa", io.BytesIO(record.manifest), context=validation_context(trust)) \
                as reader:
            signal = _read(reader, source="ledger", trust=trust, set_aside=_UNBOUND_CODES)
    except c2pa.C2paError as exc:
        return ProvenanceSignal(present=False, state=ProvenanceState.ERROR, source="ledger",
                                recovered_from_ledger=True, ledger_match=how,
                                error=f"the ledger's manifest for asset {record.asset_id} cannot be read: "
                                      f"{one_line(exc)}")
    return replace(signal, recovered_from_ledger=True, ledger_match=how,
                   ledger_content_match=True if how in ("file-hash", "content-hash") else None)


def signal_from_remote_manifest(path: Path, media: MediaType, manifest: bytes, payload_hex: str, trust: TrustAnchors,
                                url: str) -> tuple[ProvenanceSignal | None, str]:
    """A manifest store a Soft Binding Resolution repository at ``url`` gave for this file's watermark payload,
    validated here exactly like a local one, or ``None`` and why it is not used.

    Nothing the repository says is taken on trust: the store is validated against this file first (its hard binding
    holds when the file is the signed asset itself), else on its own (signature and trust, the data hash set aside:
    the file is a different encoding), and then only a store whose signature validates and whose soft binding is
    this payload is used. A repository answering with a broken or foreign store changes nothing about the file:
    it is never evidence of tampering."""
    context = validation_context(trust)
    signal = None
    try:
        with open(path, "rb") as stream, c2pa.Reader(media.mime, stream, manifest, context=context) as reader:
            bound = _read(reader, source="resolver", trust=trust)
        if bound.state in (ProvenanceState.TRUSTED, ProvenanceState.VALID) and not bound.integrity_failures:
            signal = replace(bound, ledger_content_match=True)
    except (c2pa.C2paError, OSError):
        signal = None
    if signal is None:
        try:
            with c2pa.Reader("application/c2pa", io.BytesIO(manifest), context=context) as reader:
                signal = replace(_read(reader, source="resolver", trust=trust, set_aside=_UNBOUND_CODES),
                                 ledger_content_match=False)
        except c2pa.C2paError as exc:
            return None, f"the manifest from {url} cannot be read ({one_line(exc)}): not used"
    if signal.state not in (ProvenanceState.TRUSTED, ProvenanceState.VALID) or signal.integrity_failures:
        why = ", ".join(signal.failures) or signal.state.value
        return None, f"the manifest from {url} does not validate ({why}): not used"
    bound_value = (signal.soft_binding or {}).get("value")
    if bound_value != payload_hex:
        return None, (f"the manifest from {url} is bound to another watermark payload "
                      f"({bound_value or 'none'}, not {payload_hex}): not used")
    return replace(signal, present=False, recovered_from_ledger=True, ledger_match="soft-binding",
                   remote_url=url), f"the manifest from {url} validates and is bound to this payload"
