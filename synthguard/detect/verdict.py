"""One verdict from the signals, with the reasons that led to it.

Labels (``VerdictLabel``):
- ``ai-generated``: trusted provenance declares generative-AI content;
- ``tampered``: a manifest is present but fails validation (content or manifest changed after signing);
- ``authentic-capture``: trusted provenance declares a capture (camera, scan, film) and no later edit;
- ``edited``: trusted provenance records edits of an earlier asset;
- ``unknown``: nothing trustworthy either way. Missing provenance is never, by itself, evidence of fakery, and an
  intact manifest from a signer you do not trust is a claim, not proof (its contents are listed in the reasons).
(``likely-synthetic`` comes with the classifier signal.)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from synthguard.provenance.manifest import DigitalSourceType
from synthguard.provenance.reading import ProvenanceSignal, ProvenanceState

NON_EDIT_ACTIONS = frozenset({"c2pa.created", "c2pa.opened", "c2pa.watermarked", "c2pa.published",
                              "c2pa.repackaged", "c2pa.transcoded"})


class VerdictLabel(str, Enum):
    AI_GENERATED = "ai-generated"
    LIKELY_SYNTHETIC = "likely-synthetic"
    TAMPERED = "tampered"
    AUTHENTIC_CAPTURE = "authentic-capture"
    EDITED = "edited"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Verdict:
    label: VerdictLabel
    reasons: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"label": self.label.value, "reasons": list(self.reasons)}


def _source_code(uri: str | None) -> str | None:
    if not uri:
        return None
    try:
        return DigitalSourceType.parse(uri).code
    except ValueError:
        return uri


def _describe(p: ProvenanceSignal) -> str:
    parts = [f"signed by {p.signer or 'an unnamed signer'}" + (f" ({p.issuer})" if p.issuer else "")]
    if p.digital_source_type:
        parts.append(f"declares {_source_code(p.digital_source_type)}")
    if p.model and p.model.get("name"):
        parts.append(f"model {p.model['name']}" + (f" {p.model['version']}" if p.model.get("version") else ""))
    return ", ".join(parts)


def decide(provenance: ProvenanceSignal) -> Verdict:
    p = provenance
    reasons: list[str] = []
    if p.recovered_from_ledger:
        reasons.append(f"the file carries no manifest; its manifest was recovered from the local ledger by "
                       f"{p.ledger_match} match")
    if p.state is ProvenanceState.ABSENT:
        return Verdict(VerdictLabel.UNKNOWN, ("no C2PA provenance (embedded or sidecar); absence of provenance is "
                                              "not evidence of manipulation or synthesis",))
    if p.state is ProvenanceState.ERROR:
        return Verdict(VerdictLabel.UNKNOWN, (*reasons, f"provenance could not be checked: {p.error}"))
    if p.state is ProvenanceState.INVALID:
        codes = ", ".join(c for c in p.failures if c != "signingCredential.untrusted") or "no detail"
        return Verdict(VerdictLabel.TAMPERED,
                       (*reasons, f"the C2PA manifest fails validation ({codes}): content or manifest was changed "
                                  f"after signing"))
    if p.state is ProvenanceState.VALID:
        reasons.append(f"intact manifest, but the signer is not on your trust list: {_describe(p)}; "
                       "treat its claims as unverified")
        if p.ai_generated:
            reasons.append("the unverified manifest itself declares generative-AI content")
        return Verdict(VerdictLabel.UNKNOWN, tuple(reasons))

    # Trusted from here on.
    reasons.append(f"trusted manifest, {_describe(p)}")
    if p.ai_generated:
        return Verdict(VerdictLabel.AI_GENERATED, tuple(reasons))
    action_names = [a.action for a in p.actions]
    edits = [a for a in action_names if a not in NON_EDIT_ACTIONS]
    declared = _source_code(p.digital_source_type)
    if "c2pa.opened" in action_names or edits:
        reasons.append(f"records edits: {', '.join(edits) or 'opened from an earlier asset'}")
        return Verdict(VerdictLabel.EDITED, tuple(reasons))
    try:
        capture = bool(p.digital_source_type) and DigitalSourceType.parse(p.digital_source_type).is_capture
    except ValueError:
        capture = False
    if capture:
        return Verdict(VerdictLabel.AUTHENTIC_CAPTURE, tuple(reasons))
    reasons.append(f"declared source type {declared or '(none)'} is neither a capture nor generative AI")
    return Verdict(VerdictLabel.UNKNOWN, tuple(reasons))
