"""Labels follow what the evidence authenticates: an unsigned image watermark declares (``ai-declared``), a trusted
manifest behind it or this identity's text watermark authenticates (``ai-generated``), a ``--not-ai`` mark changes
nothing, and a capture claim settles the verdict only from a signer the policy names as a capture source."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from helpers.files import INTEROP, REPO
from PIL import Image

from synthguard.detect.fusion import CAPTURE_NOT_VOUCHED, TEXT_MARK, UNSIGNED_MARK, VerdictLabel, decide
from synthguard.detect.signals import ClassifierSignal, ImageWatermarkSignal, TextWatermarkSignal
from synthguard.provenance.manifest import DigitalSourceType as D
from synthguard.provenance.reading import ActionRecord, ProvenanceSignal
from synthguard.provenance.reading import ProvenanceState as S

ALG = "io.synthguard.tilemark.4"
AI_MARK = ImageWatermarkSignal(True, ALG, "900000000001", 1e-40, 0, True)
NOT_AI_MARK = ImageWatermarkSignal(True, ALG, "100000000001", 1e-40, 0, False)
HIGH = ClassifierSignal("tiny", 0.95, 0.8, 0.01, True, 4)
ABSENT = ProvenanceSignal(present=False, state=S.ABSENT)


def manifest(state, source_type=None, actions=("c2pa.created",), **kw) -> ProvenanceSignal:
    acts = tuple(ActionRecord(a, source_type.value if source_type and a == "c2pa.created" else None) for a in actions)
    return ProvenanceSignal(present=True, state=state, signer="Desk", issuer="Org",
                            digital_source_type=source_type.value if source_type else None,
                            ai_generated=None if source_type is None else source_type.is_generative_ai, actions=acts,
                            **kw)


def test_an_unsigned_image_mark_declares_and_says_anyone_can_embed_it():
    v = decide(ABSENT, AI_MARK)
    assert v.label is VerdictLabel.AI_DECLARED and v.confidence is None
    assert UNSIGNED_MARK in v.reasons and AI_MARK.describe()[0] in v.reasons
    # It sits above the classifier: the classifier's line is still among the reasons.
    v = decide(ABSENT, AI_MARK, HIGH)
    assert v.label is VerdictLabel.AI_DECLARED and any("classifier" in r for r in v.reasons)
    # An untrusted manifest or an unreadable one behind the mark authenticates nothing either.
    for behind in (manifest(S.VALID, D.TRAINED_ALGORITHMIC_MEDIA, failures=("signingCredential.untrusted",)),
                   ProvenanceSignal(present=True, state=S.ERROR, error="remote manifest")):
        assert decide(behind, AI_MARK).label is VerdictLabel.AI_DECLARED


def test_an_untrusted_manifest_that_declares_ai_is_a_declaration():
    from synthguard.detect.fusion import UNVERIFIED_AI_CLAIM

    for failures in (("signingCredential.untrusted",), ("signingCredential.expired",)):
        v = decide(manifest(S.VALID, D.TRAINED_ALGORITHMIC_MEDIA, failures=failures), None, HIGH)
        assert v.label is VerdictLabel.AI_DECLARED and v.confidence is None and UNVERIFIED_AI_CLAIM in v.reasons
    # Declaring something else, or nothing, leaves it unknown (the classifier may still speak).
    assert decide(manifest(S.VALID, D.DIGITAL_CAPTURE, failures=("signingCredential.untrusted",))).label \
        is VerdictLabel.UNKNOWN


def test_a_trusted_manifest_behind_the_mark_authenticates_it():
    bound = {"alg": ALG, "value": AI_MARK.payload}
    embedded = manifest(S.TRUSTED, D.TRAINED_ALGORITHMIC_MEDIA, source="embedded", soft_binding=bound)
    v = decide(embedded, AI_MARK)
    assert v.label is VerdictLabel.AI_GENERATED and v.confidence == 1.0 and UNSIGNED_MARK not in v.reasons
    ledger = dict(source="ledger", soft_binding=bound, recovered_from_ledger=True, ledger_match="soft-binding")
    same = manifest(S.TRUSTED, D.TRAINED_ALGORITHMIC_MEDIA, ledger_content_match=True, **ledger)
    assert decide(same, AI_MARK).label is VerdictLabel.AI_GENERATED
    # Recovered through the payload, but for other content: the manifest is about the original, not this file.
    other = manifest(S.TRUSTED, D.TRAINED_ALGORITHMIC_MEDIA, ledger_content_match=False, **ledger)
    v = decide(other, AI_MARK)
    assert v.label is VerdictLabel.AI_DECLARED and UNSIGNED_MARK in v.reasons


def test_the_text_watermark_of_this_identity_authenticates():
    text = TextWatermarkSignal(True, "io.synthguard.synthid-text.1", 1e-9, True, key_id="k", z=6.0, tokens=80,
                               tokens_scored=70, schemes_tested=("io.synthguard.synthid-text.1",))
    v = decide(ABSENT, text)
    assert v.label is VerdictLabel.AI_GENERATED and v.confidence == pytest.approx(1 - 1e-9)
    assert TEXT_MARK in v.reasons and UNSIGNED_MARK not in v.reasons


@pytest.mark.parametrize("provenance", [
    ABSENT,
    ProvenanceSignal(present=True, state=S.ERROR, error="remote manifest"),
    manifest(S.VALID, D.TRAINED_ALGORITHMIC_MEDIA, failures=("signingCredential.untrusted",)),
    manifest(S.TRUSTED, D.TRAINED_ALGORITHMIC_MEDIA),
    manifest(S.TRUSTED, D.DIGITAL_CAPTURE),
    manifest(S.TRUSTED, D.DIGITAL_CAPTURE, informational=(CAPTURE_NOT_VOUCHED,)),
    manifest(S.INVALID, D.DIGITAL_CAPTURE, failures=("assertion.dataHash.mismatch",)),
], ids=["absent", "error", "untrusted-ai", "trusted-ai", "trusted-capture", "unvouched-capture", "invalid"])
@pytest.mark.parametrize("classifier", [None, HIGH], ids=["no-classifier", "classifier-high"])
def test_a_not_ai_mark_never_lowers_another_signal(provenance, classifier):
    with_mark, without = decide(provenance, NOT_AI_MARK, classifier), decide(provenance, None, classifier)
    assert (with_mark.label, with_mark.confidence) == (without.label, without.confidence)


def test_a_capture_claim_settles_the_verdict_only_from_a_named_capture_signer():
    vouched = decide(manifest(S.TRUSTED, D.DIGITAL_CAPTURE))
    assert vouched.label is VerdictLabel.AUTHENTIC_CAPTURE and vouched.confidence == 1.0
    claimed = manifest(S.TRUSTED, D.DIGITAL_CAPTURE, informational=(CAPTURE_NOT_VOUCHED,))
    v = decide(claimed)
    assert v.label is VerdictLabel.UNKNOWN and v.confidence is None
    assert ("a capture is claimed by Desk, which this policy does not name as a capture source "
            "(trust.capture_signers)") in v.reasons
    # Its manifest settles nothing, so the rows below it apply.
    assert decide(claimed, None, HIGH).label is VerdictLabel.LIKELY_SYNTHETIC
    assert decide(claimed, AI_MARK).label is VerdictLabel.AI_DECLARED
    # Recorded edits are still a trusted record of edits.
    edited = manifest(S.TRUSTED, D.DIGITAL_CAPTURE, ("c2pa.created", "c2pa.cropped"),
                      informational=(CAPTURE_NOT_VOUCHED,))
    assert decide(edited).label is VerdictLabel.EDITED and decide(edited).confidence == 1.0
    for film in (D.NEGATIVE_FILM, D.POSITIVE_FILM, D.PRINT):
        assert decide(manifest(S.TRUSTED, film, informational=(CAPTURE_NOT_VOUCHED,))).label is VerdictLabel.UNKNOWN


def test_a_manifest_that_declares_nothing_says_so():
    # What `sign` writes without a declaration: the input opened as an ingredient without a manifest of its own.
    opened = manifest(S.TRUSTED, None, ("c2pa.opened", "c2pa.watermarked"), manifests=1, ingredients=1)
    v = decide(opened, NOT_AI_MARK)
    assert v.label is VerdictLabel.UNKNOWN and v.confidence is None
    assert "the manifest declares no digital source type: it does not say how the content was made" in v.reasons
    with_history = manifest(S.TRUSTED, None, ("c2pa.opened", "c2pa.watermarked"), manifests=2, ingredients=1)
    assert decide(with_history).label is VerdictLabel.EDITED


# ------------------------------------------------------------------------------------- forged marks, end to end

def _real_photo_crops(folder: Path, count: int = 20, side: int = 512) -> list[Path]:
    """``count`` crops of the C2PA sample photographs (two offsets each), written without their manifests."""
    crops = []
    for photo in sorted(INTEROP.glob("*.jpg")):
        with Image.open(photo) as img:
            pixels = img.copy() if img.mode in ("RGB", "L") else img.convert("RGB")
        width, height = pixels.size
        edge = min(side, width, height)
        for n, (fx, fy) in enumerate(((0.1, 0.2), (0.6, 0.5))):
            x, y = int((width - edge) * fx), int((height - edge) * fy)
            crops.append(folder / f"{photo.stem}-{n}.png")
            pixels.crop((x, y, x + edge, y + edge)).save(crops[-1])
    assert len(crops) >= count
    return crops[:count]


def test_forged_marks_on_real_photos_are_declared_never_generated(home, tmp_path):
    import hashlib

    from synthguard.detect import InspectionContext, inspect_file
    from synthguard.policy import DeskAction, load_policy
    from synthguard.stamp import mark_file
    from synthguard.watermark.payload import PAYLOAD_LAYOUT_VERSION, Payload

    strict = load_policy(REPO / "policies" / "newsroom-strict.yaml")
    verdicts = []
    with InspectionContext.build(home, policy=strict, classifier=False) as context:
        for crop in _real_photo_crops(tmp_path):
            # What `synthguard watermark embed` writes (a SynthGuard payload, AI bit set), with a fixed asset key.
            key = int.from_bytes(hashlib.sha256(crop.name.encode()).digest()[:6], "big") >> 4
            forged = Payload(PAYLOAD_LAYOUT_VERSION, True, key).to_bytes()
            marked = mark_file(crop, crop.with_name(f"{crop.stem}-marked.png"), payload=forged).output
            with Image.open(marked) as img:  # a re-post: decoded and encoded again, metadata gone
                img.convert("RGB").save(crop.with_name(f"{crop.stem}-repost.png"))
                img.convert("RGB").save(crop.with_name(f"{crop.stem}-repost.jpg"), quality=85)
            for suffix in (".png", ".jpg"):
                verdicts.append(inspect_file(crop.with_name(f"{crop.stem}-repost{suffix}"), context).verdict)
    labels = Counter(v.label for v in verdicts)
    assert len(verdicts) == 40 and labels == {VerdictLabel.AI_DECLARED: 40}, labels
    assert all(UNSIGNED_MARK in v.reasons and v.confidence is None for v in verdicts)
    assert strict.actions.for_label(VerdictLabel.AI_DECLARED.value) is DeskAction.HUMAN_REVIEW  # never reject


def test_stable_diffusion_marks_on_real_photos_are_declared_and_the_unmarked_ones_are_not(home, tmp_path):
    import skimage.data

    from synthguard.bench.sd_marks_bench import embed_as_generator
    from synthguard.detect import InspectionContext, inspect_file
    from synthguard.detect.sd_marks import Reading

    photos = {"astronaut": skimage.data.astronaut(), "coffee": skimage.data.coffee(),
              "chelsea": skimage.data.chelsea(), "rocket": skimage.data.rocket()}
    with InspectionContext.build(home, classifier=False) as context:
        for (name, rgb), reading in zip(photos.items(), (Reading.SDXL_BGR, Reading.SD1, Reading.SDXL_RGB,
                                                         Reading.SD2)):
            crop = tmp_path / f"{name}.png"
            Image.fromarray(rgb).save(crop)
            marked = crop.with_name(f"{crop.stem}-{reading.value}.png")
            Image.fromarray(embed_as_generator(rgb, reading)).save(marked)
            found, clean = inspect_file(marked, context), inspect_file(crop, context)
            assert found.verdict.label is VerdictLabel.AI_DECLARED, (crop, reading, found.sd_marks)
            assert found.sd_marks.families[0] is reading.family
            assert any("anyone with the public invisible-watermark library" in r for r in found.verdict.reasons)
            assert found.to_dict()["sd_marks"]["declares_ai"] is True and found.verdict.confidence is None
            assert clean.verdict.label is VerdictLabel.UNKNOWN and not clean.sd_marks.declares_ai
