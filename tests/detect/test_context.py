"""The one inspection set-up: what `build` takes from the policy and the home, models loaded on first need and
once, the ledger opened and closed, and `inspect_file` over it (watermark recovery, pixels kept for a report)."""

from __future__ import annotations

import pytest
from PIL import Image

from synthguard.core.samples import procedural_image
from synthguard.detect import InspectionContext, VerdictLabel, inspect_file
from synthguard.detect.signals import ImageWatermarkSignal
from synthguard.errors import InputError
from synthguard.policy import DEFAULT_POLICY, load_policy
from synthguard.provenance.identity import TrustSource
from synthguard.provenance.ledger import Ledger
from synthguard.provenance.manifest import DigitalSourceType, ManifestSpec
from synthguard.provenance.signing import SigningSession
from synthguard.stamp import Stamper
from synthguard.watermark import default_image_watermarker


@pytest.fixture
def signed(home, identity, tmp_path):
    """A watermarked, signed AI image and a copy of its pixels without the manifest."""
    out = tmp_path / "signed.png"
    spec = ManifestSpec(title="t", digital_source_type=DigitalSourceType.TRAINED_ALGORITHMIC_MEDIA)
    with Ledger(home.ledger_path) as ledger, SigningSession(identity, ledger) as session:
        Stamper(session, default_image_watermarker()).stamp_pixels(procedural_image(256, 256, seed=5), out, spec)
    stripped = tmp_path / "stripped.png"
    Image.open(out).convert("RGB").save(stripped)
    return out, stripped


def test_build_takes_the_policy_and_the_home(home, tmp_path):
    with InspectionContext.build(home) as context:  # a home without a ledger: none opened
        assert context.policy is DEFAULT_POLICY and context.ledger is None
        # No identity yet: only the shipped C2PA Trust List.
        assert set(context.trust.sources) == {TrustSource.C2PA_TRUST_LIST} and len(context.trust) == 30
    off = tmp_path / "off.yaml"
    off.write_text("version: 1\ndetection:\n  watermark: false\n  classifier: false\n")
    context = InspectionContext.build(home, policy=load_policy(off))
    assert context.watermarker is None and context.detector is None
    with pytest.raises(InputError, match="does not exist"):
        InspectionContext.build(home, detector=tmp_path / "no-such-detector")


def test_models_load_on_first_need_and_once(home, signed):
    context = InspectionContext.build(home, threads=1)
    assert not {"watermarker", "detector", "text_checks"} & set(vars(context))  # nothing loaded yet
    first = inspect_file(signed[0], context)
    detector = context.detector
    inspect_file(signed[1], context)
    assert context.detector is detector and "text_checks" not in vars(context)  # images only: no text model
    assert first.classifier is not None and first.classifier.model == detector.name
    context.close()


def test_inspect_signed_and_stripped_copies(home, signed):
    with InspectionContext.build(home, classifier=False) as context:
        assert context.ledger is not None and context.owns_ledger
        found = inspect_file(signed[0], context, keep_pixels=True)
        stripped = inspect_file(signed[1], context)
    assert found.verdict.label is VerdictLabel.AI_GENERATED and found.provenance.state.value == "trusted"
    assert found.pixels is not None and found.pixels.shape == (256, 256, 3) and found.classifier is None
    assert isinstance(found.watermark, ImageWatermarkSignal) and found.watermark.detected
    # Same pixels, no manifest: the ledger finds the manifest (its content hash) and the verdict still holds.
    assert stripped.provenance.recovered_from_ledger and stripped.verdict.label is VerdictLabel.AI_GENERATED
    assert stripped.pixels is None
    with InspectionContext.build(home, ledger=False, classifier=False) as context:
        alone = inspect_file(signed[1], context)
    # Without the ledger nothing authenticates the mark: it declares AI, it does not prove it.
    assert alone.provenance.state.value == "absent" and alone.verdict.label is VerdictLabel.AI_DECLARED
    assert alone.verdict.reasons[0].startswith("no C2PA manifest (embedded or sidecar), but a SynthGuard watermark")


def test_an_open_ledger_is_used_and_left_open(home, signed, tmp_path):
    with Ledger(home.ledger_path) as ledger:
        context = InspectionContext.build(home, ledger=ledger, classifier=False, watermark=False)
        assert inspect_file(signed[1], context).provenance.recovered_from_ledger
        context.close()
        assert ledger.find_by_soft_binding(b"\0" * 6) == []  # still open
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(signed[0].read_bytes()[:300])
    with pytest.raises(InputError):
        inspect_file(corrupt, InspectionContext.build(home, ledger=False))


def test_texts_load_the_text_model_once_with_the_scorer_when_named(home, identity, tmp_path):
    note = tmp_path / "note.txt"
    note.write_text("A reporter's note, written by a person, about the council meeting on Tuesday evening.\n")
    with InspectionContext.build(home, text_scorer="builtin", threads=1) as context:
        first = inspect_file(note, context)
        checks = context.text_checks
        inspect_file(note, context)
        assert context.text_checks is checks and "detector" not in vars(context)  # texts only: no image model
    assert first.machine_text is not None and first.machine_text.model == "builtin"
    assert first.watermark.key_id and not first.watermark.detected and first.classifier is None
    assert first.findings().evidence[-2:] == (*first.watermark.describe(), *first.machine_text.describe())
