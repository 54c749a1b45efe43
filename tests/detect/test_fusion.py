"""The provenance part of the fusion table: each state/declaration maps to the documented label."""

import pytest

from synthguard.detect.fusion import VerdictLabel, decide
from synthguard.detect.signals import ClassifierSignal, ImageWatermarkSignal
from synthguard.provenance.manifest import DigitalSourceType as D
from synthguard.provenance.reading import ActionRecord, ProvenanceSignal
from synthguard.provenance.reading import ProvenanceState as S


def signal(state, source_type=None, actions=("c2pa.created",), **kw):
    acts = tuple(ActionRecord(a, source_type.value if (source_type and a in ("c2pa.created", "c2pa.edited"))
                              else None) for a in actions)
    return ProvenanceSignal(present=state is not S.ABSENT, state=state, signer="Desk", issuer="Org",
                            digital_source_type=source_type.value if source_type else None,
                            ai_generated=None if source_type is None else source_type.is_generative_ai,
                            actions=acts, **kw)


@pytest.mark.parametrize("sig,label", [
    (signal(S.TRUSTED, D.TRAINED_ALGORITHMIC_MEDIA), VerdictLabel.AI_GENERATED),
    (signal(S.TRUSTED, D.COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA, ("c2pa.opened", "c2pa.edited")),
     VerdictLabel.AI_GENERATED),
    (signal(S.TRUSTED, D.DIGITAL_CAPTURE), VerdictLabel.AUTHENTIC_CAPTURE),
    (signal(S.TRUSTED, D.DIGITAL_CAPTURE, ("c2pa.created", "c2pa.color_adjustments")), VerdictLabel.EDITED),
    (signal(S.TRUSTED, None, ("c2pa.opened", "c2pa.cropped")), VerdictLabel.EDITED),
    (signal(S.TRUSTED, D.ALGORITHMIC_MEDIA), VerdictLabel.UNKNOWN),
    # Valid is not trusted: never authentic, and an unverified AI claim is a declaration, not ai-generated.
    (signal(S.VALID, D.DIGITAL_CAPTURE, failures=("signingCredential.untrusted",)), VerdictLabel.UNKNOWN),
    (signal(S.VALID, D.TRAINED_ALGORITHMIC_MEDIA), VerdictLabel.AI_DECLARED),
    (signal(S.INVALID, D.DIGITAL_CAPTURE, failures=("assertion.dataHash.mismatch",)), VerdictLabel.TAMPERED),
    (signal(S.ABSENT), VerdictLabel.UNKNOWN),
    (ProvenanceSignal(present=True, state=S.ERROR, error="remote"), VerdictLabel.UNKNOWN),
])
def test_fusion_table(sig, label):
    verdict = decide(sig)
    assert verdict.label is label
    assert verdict.reasons  # never a verdict without its evidence


def test_reasons_name_the_evidence():
    v = decide(signal(S.INVALID, D.DIGITAL_CAPTURE, failures=("signingCredential.untrusted",
                                                              "claimSignature.mismatch")))
    assert "claimSignature.mismatch" in v.reasons[0]
    v = decide(signal(S.VALID, D.TRAINED_ALGORITHMIC_MEDIA))
    assert any("not on your trust list" in r for r in v.reasons)
    assert any("declares generative-AI" in r for r in v.reasons)
    v = decide(signal(S.ABSENT))
    assert "not evidence" in v.reasons[0]
    v = decide(signal(S.TRUSTED, D.TRAINED_ALGORITHMIC_MEDIA, recovered_from_ledger=True, ledger_match="content-hash"))
    assert v.label is VerdictLabel.AI_GENERATED and "ledger" in v.reasons[0]


def test_watermark_recovery_with_different_content_never_vouches_for_this_file():
    recovered = signal(S.TRUSTED, D.DIGITAL_CAPTURE, recovered_from_ledger=True, ledger_match="soft-binding",
                       ledger_content_match=False)
    copied = ImageWatermarkSignal(True, "io.synthguard.tilemark.4", "000000000001", 1e-30, 0, False)
    v = decide(recovered, copied)
    assert v.label is VerdictLabel.UNKNOWN and "differs" in v.reasons[0]
    marked_ai = ImageWatermarkSignal(True, "io.synthguard.tilemark.4", "100000000001", 1e-30, 0, True)
    assert decide(recovered, marked_ai).label is VerdictLabel.AI_DECLARED  # the mark alone: anyone can embed it
    same = signal(S.TRUSTED, D.DIGITAL_CAPTURE, recovered_from_ledger=True, ledger_match="soft-binding",
                  ledger_content_match=True)
    assert decide(same, copied).label is VerdictLabel.AUTHENTIC_CAPTURE


# ----------------------------------------------------------------------------------- watermark x classifier rows

ALG = "io.synthguard.tilemark.4"
WATERMARKS = {
    "none": None,
    "absent": ImageWatermarkSignal(False, ALG, p_value=0.7),
    "ai": ImageWatermarkSignal(True, ALG, "900000000001", 1e-20, 0, True),
    "not-ai": ImageWatermarkSignal(True, ALG, "100000000001", 1e-20, 0, False),
}
CLASSIFIERS = {
    "none": None,
    "low": ClassifierSignal("tiny", 0.10, 0.8, 0.01, False, 4),
    "high": ClassifierSignal("tiny", 0.95, 0.8, 0.01, True, 4),
    "skipped": ClassifierSignal("tiny", skipped="image smaller than 32x32"),
}
PROVENANCE = {
    "absent": signal(S.ABSENT),
    "error": ProvenanceSignal(present=True, state=S.ERROR, error="remote manifest"),
    "invalid": signal(S.INVALID, D.DIGITAL_CAPTURE, failures=("assertion.dataHash.mismatch",)),
    "untrusted-ai": signal(S.VALID, D.TRAINED_ALGORITHMIC_MEDIA),
    "trusted-ai": signal(S.TRUSTED, D.TRAINED_ALGORITHMIC_MEDIA),
    "trusted-capture": signal(S.TRUSTED, D.DIGITAL_CAPTURE),
    "trusted-edit": signal(S.TRUSTED, D.DIGITAL_CAPTURE, ("c2pa.opened", "c2pa.cropped")),
    "trusted-other": signal(S.TRUSTED, D.ALGORITHMIC_MEDIA),
    "copied": signal(S.TRUSTED, D.DIGITAL_CAPTURE, recovered_from_ledger=True, ledger_match="soft-binding",
                     ledger_content_match=False),
}
TRUSTED_LABEL = {"invalid": VerdictLabel.TAMPERED, "trusted-ai": VerdictLabel.AI_GENERATED,
                 "trusted-capture": VerdictLabel.AUTHENTIC_CAPTURE, "trusted-edit": VerdictLabel.EDITED,
                 "trusted-other": VerdictLabel.UNKNOWN}


def expected(prov: str, wm: str, cls: str) -> tuple[VerdictLabel, float | None]:
    """The fusion table of verdict.py's docstring, written out independently of the code."""
    if prov in TRUSTED_LABEL:
        label = TRUSTED_LABEL[prov]
        return label, (None if label is VerdictLabel.UNKNOWN else 1.0)
    if wm == "ai" or prov == "untrusted-ai":  # an unsigned mark, an unauthenticated AI claim: declarations
        return VerdictLabel.AI_DECLARED, None
    if cls == "high":
        return VerdictLabel.LIKELY_SYNTHETIC, 0.95
    return VerdictLabel.UNKNOWN, None


@pytest.mark.parametrize("prov", list(PROVENANCE))
@pytest.mark.parametrize("wm", list(WATERMARKS))
@pytest.mark.parametrize("cls", list(CLASSIFIERS))
def test_full_fusion_table(prov, wm, cls):
    verdict = decide(PROVENANCE[prov], WATERMARKS[wm], CLASSIFIERS[cls])
    label, confidence = expected(prov, wm, cls)
    assert verdict.label is label
    assert verdict.confidence == (None if confidence is None else pytest.approx(confidence))
    assert verdict.reasons
    if CLASSIFIERS[cls] is not None:  # the classifier's evidence is always named, whatever the label
        assert any("classifier" in r for r in verdict.reasons)
    if verdict.label is VerdictLabel.LIKELY_SYNTHETIC:
        assert any("not proof" in r for r in verdict.reasons)


def test_missing_provenance_alone_is_never_fakery():
    for cls in ("none", "low", "skipped"):
        assert decide(PROVENANCE["absent"], WATERMARKS["absent"], CLASSIFIERS[cls]).label is VerdictLabel.UNKNOWN


def test_classifier_conflicting_with_a_trusted_capture_is_reported_not_adopted():
    v = decide(PROVENANCE["trusted-capture"], None, CLASSIFIERS["high"])
    assert v.label is VerdictLabel.AUTHENTIC_CAPTURE
    assert any("conflicts" in r for r in v.reasons)
