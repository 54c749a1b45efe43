"""One verdict from the signals, with a confidence and the reasons that led to it.

The fusion table, first matching row wins ("trusted manifest" means: trusted signer, intact, and about this very
file; a manifest recovered through a watermark for different content is not about this file):

| signals | label | confidence |
| --- | --- | --- |
| integrity failure: changed after signing, or malformed (an expired credential is not) | ``tampered`` | 1.0 |
| trusted manifest declares generative AI | ``ai-generated`` | 1.0 |
| trusted manifest records edits (or was opened from an asset with its own manifest) | ``edited`` | 1.0 |
| trusted manifest declares a capture; its signer is named in ``trust.capture_signers`` | ``authentic-capture`` | 1.0 |
| trusted capture claim from any other signer (yours too), or outside its CPL product's scope | the rows below | |
| trusted manifest declares another source type, or none | ``unknown`` | none |
| no trusted manifest; this identity's text watermark found (texts) | ``ai-generated`` | 1 - p-value |
| an intact, untrusted manifest (unknown signer, expired credential) declares generative AI | ``ai-declared`` | none |
| no trusted manifest; SynthGuard image or audio watermark found, its AI bit set | ``ai-declared`` | none |
| no trusted manifest; unsigned metadata declares AI (IPTC source type, generator parameters) | ``ai-declared`` | none |
| no trusted manifest; a Stable Diffusion 1.x / 2.x / XL invisible mark (``detect.sd_marks``) | ``ai-declared`` | none |
| no trusted manifest; classifier at or above its threshold | ``likely-synthetic`` | P(synthetic) |
| no trusted manifest; machine-text score (texts) at or above its threshold | ``likely-synthetic`` | 1 - empirical p |
| anything else | ``unknown`` | none |

Labels follow what the evidence authenticates. ``ai-declared`` means: something says AI, nothing authenticates it.
A SynthGuard image watermark is not signed: anyone with SynthGuard can embed one with its AI bit set in any
picture (``synthguard watermark embed``), so it gives ``ai-declared``, never ``ai-generated``, unless a trusted
manifest about this file stands behind it (embedded, sidecar, or recovered from the ledger through the payload with
this very content): then that manifest's row applies. Its confidence is none: the watermark's p-value measures that
the mark is there (the watermark's own line gives it), not that the content is AI, and a number beside the label
would read as the latter. SynthGuard's audio watermark carries the same payload and is as public as the image
one: every row treats the two alike (``signals.PayloadWatermarkSignal``). A mark with the AI bit clear
(``--not-ai``) changes nothing: the rows below it apply as if no mark were there. This identity's text watermark
is keyed by the identity's secret: only its own generator can write it, so it authenticates "made by this
identity's generator" and gives ``ai-generated``, 1 - p-value.

Unsigned metadata (``detect.metadata``: IPTC ``DigitalSourceType`` in XMP, Stable Diffusion web UI, ComfyUI, InvokeAI,
NovelAI and Fooocus parameters) that declares AI also gives ``ai-declared``: anyone can add or remove it. A generator
name in EXIF ``Software`` or XMP ``CreatorTool`` is a hint only and never changes the label.

A capture claim is a claim about the world (a camera, film or a scan made this picture) that only some signers
are in a position to vouch for, so a policy names them (``trust.capture_signers``, ``synthguard.policy``); any
trusted signer can sign ``digitalCapture`` over a downloaded photo. ``detect.rules`` marks a capture claim from
any other signer (``CAPTURE_NOT_VOUCHED``); its manifest then settles nothing and the rows below it apply.

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

from synthguard.detect.metadata import MetadataSignal
from synthguard.detect.sd_marks import SDMarkSignal
from synthguard.detect.signals import (
    SIGNER_NOT_TRUSTED,
    ClassifierSignal,
    MachineTextSignal,
    PayloadWatermarkSignal,
    WatermarkSignal,
    describe_validation,
    provenance_claims,
    source_type_code,
)
from synthguard.provenance.manifest import DigitalSourceType
from synthguard.provenance.reading import ProvenanceSignal, ProvenanceState
from synthguard.provenance.rubric import CAPTURE_SIGNALS

NON_EDIT_ACTIONS = frozenset({"c2pa.created", "c2pa.opened", "c2pa.watermarked", "c2pa.published",
                              "c2pa.repackaged", "c2pa.transcoded"})


# The informational code ``detect.rules`` adds to a trusted manifest whose capture claim the policy does not accept
# from its signer (the manifest did not fail: the policy does not take that claim from that signer).
CAPTURE_NOT_VOUCHED = "policy.captureSignerNotListed"

UNSIGNED_MARK = ("an unsigned SynthGuard watermark declares AI-generated content; anyone with SynthGuard can embed "
                 "this mark, so it proves nothing by itself")
UNVERIFIED_AI_CLAIM = ("the manifest declares generative-AI content, but its signature is not authenticated here: "
                       "a declaration, not proof")
TEXT_MARK = ("this identity's text watermark is keyed by its secret, so only its own generator writes it: it "
             "authenticates the text as made by that generator")


class VerdictLabel(str, Enum):
    AI_GENERATED = "ai-generated"
    AI_DECLARED = "ai-declared"
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
    if (isinstance(w, PayloadWatermarkSignal) and w.detected and p.source != "ledger" and bound
            and bound != w.payload):
        reasons.append(f"the watermark payload differs from the manifest's soft binding ({bound})")
    return reasons


def _trusted_here(p: ProvenanceSignal) -> bool:
    """A trusted manifest that speaks about this file's content (not one recovered for a different asset)."""
    copied = p.recovered_from_ledger and p.ledger_match == "soft-binding" and p.ledger_content_match is not True
    return p.state is ProvenanceState.TRUSTED and not copied


def _records_edits(p: ProvenanceSignal) -> list[str] | None:
    """The edit actions of the manifest (``[]`` when it was opened from an asset with its own manifest); None when
    it records no edit."""
    names = [a.action for a in p.actions]
    edits = [a for a in names if a not in NON_EDIT_ACTIONS]
    # Opened from a file without credentials (manifests == 1): the manifest only says that file was signed as is.
    return edits if edits or ("c2pa.opened" in names and p.manifests != 1) else None


def declares_capture(p: ProvenanceSignal) -> bool:
    """Does the manifest declare a capture (digitalCapture, film, print...)?"""
    try:
        return bool(p.digital_source_type) and DigitalSourceType.parse(p.digital_source_type).is_capture
    except ValueError:
        return False


def capture_out_of_scope(p: ProvenanceSignal) -> bool:
    """Does the manifest claim a capture that its signer's C2PA Conforming Products entry disallows?"""
    return bool(set(p.outside_scope) & set(CAPTURE_SIGNALS))


def _vouched(p: ProvenanceSignal) -> bool:
    """A trusted manifest about this file whose claim settles the verdict: not a capture claim the policy does not
    accept from its signer (``CAPTURE_NOT_VOUCHED``; an AI claim or recorded edits still settle it)."""
    unvouched = CAPTURE_NOT_VOUCHED in p.informational and not p.ai_generated and _records_edits(p) is None
    return _trusted_here(p) and not unvouched


def decide(provenance: ProvenanceSignal, watermark: WatermarkSignal | None = None,
           classifier: ClassifierSignal | None = None, machine_text: MachineTextSignal | None = None, *,
           metadata: MetadataSignal | None = None, sd_marks: SDMarkSignal | None = None) -> Verdict:
    """The verdict from the provenance signal and the watermark, classifier (images) and machine-text (texts)
    signals."""
    label, reasons = _decide_provenance(provenance, watermark)
    reasons = (*reasons, *_watermark_reasons(provenance, watermark), *(classifier.describe() if classifier else ()),
               *(machine_text.describe() if machine_text else ()))
    flagged = classifier is not None and classifier.synthetic and not classifier.skipped
    text_flagged = machine_text is not None and machine_text.flagged and not machine_text.skipped
    declared_by_metadata = metadata is not None and metadata.declares_ai
    declared_by_mark = sd_marks is not None and sd_marks.declares_ai
    declared = declared_by_metadata or declared_by_mark
    confidence: float | None = None
    if label is VerdictLabel.TAMPERED or (_vouched(provenance) and label is not VerdictLabel.UNKNOWN):
        confidence = 1.0
        if flagged and label in (VerdictLabel.AUTHENTIC_CAPTURE, VerdictLabel.EDITED):
            reasons += ("the classifier's score conflicts with the trusted manifest; the signed record outranks a "
                        "statistical score, but a human may want to look",)
        if declared and label in (VerdictLabel.AUTHENTIC_CAPTURE, VerdictLabel.EDITED):
            what = "a Stable Diffusion invisible mark" if declared_by_mark else "unsigned metadata"
            reasons += (f"{what} declares AI generation, which the trusted manifest does not; the signed record "
                        "outranks it, but a human may want to look",)
    elif label is VerdictLabel.AI_GENERATED and isinstance(watermark, PayloadWatermarkSignal):
        # The image or audio watermark's AI bit, with no trusted manifest behind it: a declaration, not proof.
        label, reasons = VerdictLabel.AI_DECLARED, (*reasons, UNSIGNED_MARK)
    elif label is VerdictLabel.AI_GENERATED:  # this identity's text watermark, without a trusted manifest here
        confidence, reasons = 1.0 - watermark.p_value, (*reasons, TEXT_MARK)
    elif label is VerdictLabel.UNKNOWN and declared and not _vouched(provenance):
        # Unsigned metadata that says AI (IPTC source type, generator parameters) or a Stable Diffusion invisible
        # mark: a declaration, not proof.
        label = VerdictLabel.AI_DECLARED
        if declared_by_mark:
            reasons += sd_marks.describe()
        if declared_by_metadata:
            reasons += tuple(d.describe() for d in metadata.declarations if d.declares_ai)
    elif label is VerdictLabel.UNKNOWN and flagged and not _vouched(provenance):
        label, confidence = VerdictLabel.LIKELY_SYNTHETIC, classifier.probability
    elif label is VerdictLabel.UNKNOWN and text_flagged and not _vouched(provenance):
        label, confidence = VerdictLabel.LIKELY_SYNTHETIC, 1.0 - machine_text.empirical_p
    return Verdict(label, reasons, confidence)


def _decide_provenance(provenance: ProvenanceSignal,
                       watermark: WatermarkSignal | None) -> tuple[VerdictLabel, tuple[str, ...]]:
    p = provenance
    marked_ai = watermark is not None and watermark.detected and watermark.ai_declared
    reasons: list[str] = []
    ledger = f"the ledger at {p.remote_url} (a Soft Binding Resolution repository)" if p.source == "resolver" \
        else "the local ledger"
    if p.recovered_from_ledger:
        if p.ledger_match == "soft-binding":
            if p.ledger_content_match is not True:
                # The recovered manifest describes the asset that was signed, not this different content: a
                # re-encode, an edit, or a watermark copied onto another picture (anyone can read a payload and
                # embed it). Its claims are reported, never adopted; only the watermark's own AI bit counts.
                reasons.append("the file carries no manifest; the watermark payload leads to a manifest in "
                               f"{ledger} ({provenance_claims(p)}), but this file's content differs from that "
                               "signed asset (a re-encoded or edited copy, or a copied watermark): its claims are "
                               "about the original, not proof about this file")
                return (VerdictLabel.AI_GENERATED if marked_ai else VerdictLabel.UNKNOWN), tuple(reasons)
            reasons.append(f"the file carries no manifest; its manifest was recovered from {ledger} through "
                           "the watermark payload, and this file's content is identical to the signed asset")
        else:
            reasons.append(f"the file carries no manifest; its manifest was recovered from the local ledger by "
                           f"{p.ledger_match} match")
    if p.state is ProvenanceState.ABSENT:
        if marked_ai:
            return VerdictLabel.AI_GENERATED, ("no C2PA manifest (embedded or sidecar), but a SynthGuard watermark "
                                               "declares AI-generated content",)
        return VerdictLabel.UNKNOWN, ("no C2PA provenance (embedded or sidecar); absence of provenance is not "
                                      "evidence of manipulation or synthesis",)
    if p.state is ProvenanceState.ERROR:
        reasons.append(f"provenance could not be checked: {p.error}")
        return (VerdictLabel.AI_GENERATED if marked_ai else VerdictLabel.UNKNOWN), tuple(reasons)
    if p.state is ProvenanceState.INVALID:
        codes = ", ".join(p.integrity_failures) or "c2pa names no failure code"
        reasons.append(f"the C2PA manifest fails validation ({codes}): content or manifest was changed after "
                       "signing, or is malformed")
        return VerdictLabel.TAMPERED, (*reasons, *describe_validation(p))
    if p.state is ProvenanceState.VALID:
        # Not authenticated, never tampered: an untrusted signer, a credential that no longer holds, or codes
        # that could not be checked here or are of no known kind (describe_validation says which).
        if set(p.failures) & SIGNER_NOT_TRUSTED or not p.failures:
            lead = "the signer is not on your trust list" if p.unclassified else \
                "intact manifest, but the signer is not on your trust list"
        else:
            lead = "the manifest is not authenticated"
        reasons += [f"{lead}: {provenance_claims(p)}; treat its claims as unverified", *describe_validation(p)]
        if p.ai_generated:
            # A declaration nobody authenticated: the same standing as unsigned metadata.
            reasons.append(UNVERIFIED_AI_CLAIM)
            if not marked_ai:
                return VerdictLabel.AI_DECLARED, tuple(reasons)
        return (VerdictLabel.AI_GENERATED if marked_ai else VerdictLabel.UNKNOWN), tuple(reasons)

    # Trusted from here on.
    reasons += [f"trusted manifest, {provenance_claims(p)}", *describe_validation(p)]
    if p.ai_generated:
        return VerdictLabel.AI_GENERATED, tuple(reasons)
    edits = _records_edits(p)
    if edits is not None:
        reasons.append(f"records edits: {', '.join(edits) or 'opened from an earlier asset'}")
        return VerdictLabel.EDITED, tuple(reasons)
    if declares_capture(p) and CAPTURE_NOT_VOUCHED in p.informational:
        if capture_out_of_scope(p):
            reasons.append(f"a capture is claimed by {p.signer or 'an unnamed signer'}, whose C2PA Conforming "
                           "Products List entry may not claim captured media: the claim is outside what that "
                           "product is certified to vouch for")
        else:
            reasons.append(f"a capture is claimed by {p.signer or 'an unnamed signer'}, which this policy does not "
                           "name as a capture source (trust.capture_signers)")
        return (VerdictLabel.AI_GENERATED if marked_ai else VerdictLabel.UNKNOWN), tuple(reasons)
    if declares_capture(p):
        return VerdictLabel.AUTHENTIC_CAPTURE, tuple(reasons)
    declared = source_type_code(p.digital_source_type)
    if declared is None:
        reasons.append("the manifest declares no digital source type: it does not say how the content was made")
    else:
        reasons.append(f"declared source type {declared} is neither a capture nor generative AI")
    return VerdictLabel.UNKNOWN, tuple(reasons)
