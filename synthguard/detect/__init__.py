"""Inspecting a file: every signal, then one verdict (the ``inspect`` flow of ARCHITECTURE.md)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from synthguard.core.media import MediaKind, MediaType, decode_image, read_text, sniff
from synthguard.detect.classifier_signal import ClassifierSignal, score_classifier
from synthguard.detect.fusion import Verdict, VerdictLabel, decide
from synthguard.detect.machine_text import MachineTextSignal
from synthguard.detect.text_signal import TextChecks
from synthguard.detect.watermark_signal import WatermarkSignal, score_watermark
from synthguard.models.detector import PatchDetector
from synthguard.policy import Policy
from synthguard.provenance.identity import TrustAnchors
from synthguard.provenance.ledger import Ledger
from synthguard.provenance.reading import (
    ProvenanceSignal,
    ProvenanceState,
    read_provenance,
    signal_from_ledger_record,
    validation_context,
)
from synthguard.watermark import ImageWatermarker

__all__ = ["ClassifierSignal", "Inspection", "load_detector", "Verdict", "VerdictLabel", "WatermarkSignal", "inspect_file"]


@dataclass(frozen=True)
class Inspection:
    file: Path
    media: MediaType
    provenance: ProvenanceSignal
    watermark: WatermarkSignal | None
    verdict: Verdict
    classifier: ClassifierSignal | None = None
    machine_text: MachineTextSignal | None = None
    pixels: np.ndarray | None = field(default=None, repr=False, compare=False)  # decoded RGB, when kept for a report

    def to_dict(self) -> dict:
        return {"file": str(self.file), "mime": self.media.mime, "provenance": self.provenance.to_dict(),
                "watermark": self.watermark.to_dict() if self.watermark else None,
                "classifier": self.classifier.to_dict() if self.classifier else None,
                "machine_text": self.machine_text.to_dict() if self.machine_text else None,
                "verdict": self.verdict.to_dict()}


def load_detector(folder: Path | None = None, *, num_threads: int | None = None):
    """The built-in detector (``folder=None``), or one saved by ``synthguard train detector``: a discriminator
    detector (``patch/``, ``global/``) or a backbone probe (``backbone.json``)."""
    from synthguard.models.backbone import BACKBONE_FILE, BackboneDetector  # noqa: PLC0415
    from synthguard.models.detector import builtin_detector  # noqa: PLC0415

    if folder is None:
        return builtin_detector(num_threads=num_threads)
    folder = Path(folder)
    if (folder / BACKBONE_FILE).is_file():
        return BackboneDetector.from_pretrained(folder, name=str(folder), num_threads=num_threads)
    return PatchDetector.from_pretrained(folder, name=str(folder), num_threads=num_threads)


def _recover_by_watermark(watermark: WatermarkSignal, content_sha256: str | None, ledger: Ledger,
                          trust: TrustAnchors) -> ProvenanceSignal | None:
    """A watermark payload found, no manifest: the ledger's manifest for that payload, checked against this file."""
    records = ledger.find_by_soft_binding(bytes.fromhex(watermark.payload))
    if not records:
        return None
    record = records[0]
    signal = signal_from_ledger_record(record, "soft-binding", validation_context(trust))
    return replace(signal, ledger_content_match=content_sha256 == record.content_sha256)


def inspect_file(path: Path, *, trust: TrustAnchors, ledger: Ledger | None = None,
                 watermarker: ImageWatermarker | None = None, detector: PatchDetector | None = None,
                 classifier_threshold: float | None = None, keep_pixels: bool = False,
                 policy: Policy | None = None, text_checks: TextChecks | None = None) -> Inspection:
    """All signals for one file and the verdict. ``watermarker=None`` skips the watermark test, ``detector=None``
    the classifier (``classifier_threshold``: a policy's threshold instead of the detector's calibrated one);
    ``keep_pixels`` keeps the decoded image on the result (for a report's pictures); ``policy`` reads the signals
    by its rules (signers, AI source types, watermark p-value) before the verdict; ``text_checks`` tests text files
    (the identity's text watermarks, and the machine-text score when it has a scoring model)."""
    path = Path(path)
    media = sniff(path)
    content, watermark, classifier, pixels, machine = None, None, None, None, None
    if media.kind is MediaKind.IMAGE:
        # A corrupt, truncated or oversized image is an input error, not something to give a verdict on.
        decoded = decode_image(path, keep_rgb=watermarker is not None or detector is not None or keep_pixels)
        content = decoded.content_sha256
        pixels = decoded.rgb if keep_pixels else None
        if watermarker is not None:
            watermark = score_watermark(decoded.rgb, watermarker)
            if policy is not None:
                watermark = policy.apply_watermark(watermark)
        if detector is not None:
            classifier = score_classifier(decoded.rgb, detector, classifier_threshold)
    elif media.kind is MediaKind.TEXT and text_checks is not None:
        watermark, machine = text_checks.score(read_text(path))
        if policy is not None:
            watermark = policy.apply_watermark(watermark)
    provenance = read_provenance(path, trust=trust, ledger=ledger, media=media, content_sha256=content)
    if (provenance.state is ProvenanceState.ABSENT and watermark is not None and watermark.detected
            and watermark.payload is not None and ledger is not None):
        provenance = _recover_by_watermark(watermark, content, ledger, trust) or provenance
    if policy is not None:
        provenance = policy.apply_provenance(provenance)
    return Inspection(path, media, provenance, watermark, decide(provenance, watermark, classifier, machine),
                      classifier, machine, pixels)
