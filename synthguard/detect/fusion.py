"""One verdict from the signals, with a confidence and the reasons that led to it.

The fusion table, first matching row wins ("trusted manifest" means: trusted signer, intact, and about this very
file; a manifest recovered through a watermark for different content is not about this file):

| signals | label | confidence |
| --- | --- | --- |
| manifest fails validation | ``tampered`` | 1.0 |
| trusted manifest declares generative AI | ``ai-generated`` | 1.0 |
| trusted manifest records edits | ``edited`` | 1.0 |
| trusted manifest declares a capture (camera, scan, film) | ``authentic-capture`` | 1.0 |
| trusted manifest declares another source type | ``unknown`` | none |
| no trusted manifest; watermark found: AI bit set (images), this identity's (texts) | ``ai-generated`` | 1 - p-value |
| no trusted manifest; classifier at or above its threshold | ``likely-synthetic`` | P(synthetic) |
| no trusted manifest; machine-text score (texts) at or above its threshold | ``likely-synthetic`` | 1 - empirical p |
| anything else | ``unknown`` | none |

The empirical p of a machine-text score is the share of human reference text scoring that high. Where a reason
describes one signal, it is that signal's own ``describe()`` (``signals``), the words every renderer prints.

A trusted manifest outranks the watermark and the classifier; when they disagree with it, the reasons say so.
Missing provenance is never, by itself, evidence of fakery; an intact manifest from a signer you do not trust is a
claim, not proof (its contents are listed in the reasons); a classifier score is a statistical signal with a
stated error rate, never proof, which is why it only ever gives ``likely-synthetic``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from synthguard.detect.signals import (
    ClassifierSignal,
    ImageWatermarkSignal,
    MachineTextSignal,
    WatermarkSignal,
    provenance_claims,
    source_type_code,
)
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
    confidence: float | None = None  # see the fusion table; None for "unknown"

    def to_dict(self) -> dict:
        return {"label": self.label.value, "confidence": self.confidence, "reasons": list(self.reasons)}


def _watermark_reasons(p: ProvenanceSignal, w: WatermarkSignal | None) -> list[str]:
    if w is None:
        return []
    reasons = list(w.describe())
    bound = (p.soft_binding or {}).get("value")
    if isinstance(w, ImageWatermarkSignal) and w.detected and p.source != "ledger" and bound and bound != w.payload:
        reasons.append(f"the watermark payload differs from the manifest's soft binding ({bound})")
    return reasons


def _trusted_here(p: ProvenanceSignal) -> bool:
    """A trusted manifest that speaks about this file's content (not one recovered for a different asset)."""
    copied = p.recovered_from_ledger and p.ledger_match == "soft-binding" and p.ledger_content_match is not True
    return p.state is ProvenanceState.TRUSTED and not copied


def decide(provenance: ProvenanceSignal, watermark: WatermarkSignal | None = None,
           classifier: ClassifierSignal | None = None, machine_text: MachineTextSignal | None = None) -> Verdict:
    """The verdict from the provenance signal and the watermark, classifier (images) and machine-text (texts)
    signals."""
    label, reasons = _decide_provenance(provenance, watermark)
    reasons = (*reasons, *_watermark_reasons(provenance, watermark), *(classifier.describe() if classifier else ()),
               *(machine_text.describe() if machine_text else ()))
    flagged = classifier is not None and classifier.synthetic and not classifier.skipped
    text_flagged = machine_text is not None and machine_text.flagged and not machine_text.skipped
    confidence: float | None = None
    if label is VerdictLabel.TAMPERED or (_trusted_here(provenance) and label is not VerdictLabel.UNKNOWN):
        confidence = 1.0
        if flagged and label in (VerdictLabel.AUTHENTIC_CAPTURE, VerdictLabel.EDITED):
            reasons += ("the classifier's score conflicts with the trusted manifest; the signed record outranks a "
                        "statistical score, but a human may want to look",)
    elif label is VerdictLabel.AI_GENERATED:  # the watermark's AI bit, without a trusted manifest here
        confidence = 1.0 - watermark.p_value
    elif label is VerdictLabel.UNKNOWN and flagged and not _trusted_here(provenance):
        label, confidence = VerdictLabel.LIKELY_SYNTHETIC, classifier.probability
    elif label is VerdictLabel.UNKNOWN and text_flagged and not _trusted_here(provenance):
        label, confidence = VerdictLabel.LIKELY_SYNTHETIC, 1.0 - machine_text.empirical_p
    return Verdict(label, reasons, confidence)


def _decide_provenance(provenance: ProvenanceSignal,
                       watermark: WatermarkSignal | None) -> tuple[VerdictLabel, tuple[str, ...]]:
    p = provenance
    marked_ai = watermark is not None and watermark.detected and watermark.ai_declared
    reasons: list[str] = []
    if p.recovered_from_ledger:
        if p.ledger_match == "soft-binding":
            if p.ledger_content_match is not True:
                # The recovered manifest describes the asset that was signed, not this different content: a
                # re-encode, an edit, or a watermark copied onto another picture (anyone can read a payload and
                # embed it). Its claims are reported, never adopted; only the watermark's own AI bit counts.
                reasons.append("the file carries no manifest; the watermark payload leads to a manifest in the "
                               f"local ledger ({provenance_claims(p)}), but this file's content differs from that "
                               "signed asset (a re-encoded or edited copy, or a copied watermark): its claims are "
                               "about the original, not proof about this file")
                return (VerdictLabel.AI_GENERATED if marked_ai else VerdictLabel.UNKNOWN), tuple(reasons)
            reasons.append("the file carries no manifest; its manifest was recovered from the local ledger through "
                           "the watermark payload, and this file's content is identical to the signed asset")
        else:
            reasons.append(f"the file carries no manifest; its manifest was recovered from the local ledger by "
                           f"{p.ledger_match} match")
    if p.state is ProvenanceState.ABSENT:
        if marked_ai:
            return VerdictLabel.AI_GENERATED, ("no C2PA manifest, but the SynthGuard watermark marks the content "
                                               "as AI-generated",)
        return VerdictLabel.UNKNOWN, ("no C2PA provenance (embedded or sidecar); absence of provenance is not "
                                      "evidence of manipulation or synthesis",)
    if p.state is ProvenanceState.ERROR:
        reasons.append(f"provenance could not be checked: {p.error}")
        return (VerdictLabel.AI_GENERATED if marked_ai else VerdictLabel.UNKNOWN), tuple(reasons)
    if p.state is ProvenanceState.INVALID:
        codes = ", ".join(c for c in p.failures if c != "signingCredential.untrusted") or "no detail"
        reasons.append(f"the C2PA manifest fails validation ({codes}): content or manifest was changed after "
                       "signing")
        return VerdictLabel.TAMPERED, tuple(reasons)
    if p.state is ProvenanceState.VALID:
        reasons.append(f"intact manifest, but the signer is not on your trust list: {provenance_claims(p)}; "
                       "treat its claims as unverified")
        if p.ai_generated:
            reasons.append("the unverified manifest itself declares generative-AI content")
        return (VerdictLabel.AI_GENERATED if marked_ai else VerdictLabel.UNKNOWN), tuple(reasons)

    # Trusted from here on.
    reasons.append(f"trusted manifest, {provenance_claims(p)}")
    if p.ai_generated:
        return VerdictLabel.AI_GENERATED, tuple(reasons)
    action_names = [a.action for a in p.actions]
    edits = [a for a in action_names if a not in NON_EDIT_ACTIONS]
    declared = source_type_code(p.digital_source_type)
    if "c2pa.opened" in action_names or edits:
        reasons.append(f"records edits: {', '.join(edits) or 'opened from an earlier asset'}")
        return VerdictLabel.EDITED, tuple(reasons)
    try:
        capture = bool(p.digital_source_type) and DigitalSourceType.parse(p.digital_source_type).is_capture
    except ValueError:
        capture = False
    if capture:
        return VerdictLabel.AUTHENTIC_CAPTURE, tuple(reasons)
    reasons.append(f"declared source type {declared or '(none)'} is neither a capture nor generative AI")
    return VerdictLabel.UNKNOWN, tuple(reasons)
