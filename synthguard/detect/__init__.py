"""Inspecting a file: every signal, then one verdict (the ``inspect`` flow of ARCHITECTURE.md)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from synthguard.detect.verdict import Verdict, VerdictLabel, decide
from synthguard.detect.watermark_signal import WatermarkSignal, score_watermark
from synthguard.media import MediaKind, MediaType, decode_image, sniff
from synthguard.provenance.identity import TrustAnchors
from synthguard.provenance.ledger import Ledger
from synthguard.provenance.reading import (ProvenanceSignal, ProvenanceState, read_provenance,
                                           signal_from_ledger_record, validation_context)
from synthguard.watermark import ImageWatermarker

__all__ = ["Inspection", "Verdict", "VerdictLabel", "WatermarkSignal", "inspect_file"]


@dataclass(frozen=True)
class Inspection:
    file: Path
    media: MediaType
    provenance: ProvenanceSignal
    watermark: WatermarkSignal | None
    verdict: Verdict

    def to_dict(self) -> dict:
        return {"file": str(self.file), "mime": self.media.mime, "provenance": self.provenance.to_dict(),
                "watermark": self.watermark.to_dict() if self.watermark else None,
                "verdict": self.verdict.to_dict()}


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
                 watermarker: ImageWatermarker | None = None) -> Inspection:
    """All signals for one file and the verdict. ``watermarker=None`` skips the watermark test."""
    path = Path(path)
    media = sniff(path)
    content, watermark = None, None
    if media.kind is MediaKind.IMAGE:
        # A corrupt, truncated or oversized image is an input error, not something to give a verdict on.
        decoded = decode_image(path, keep_rgb=watermarker is not None)
        content = decoded.content_sha256
        if watermarker is not None:
            watermark = score_watermark(decoded.rgb, watermarker)
    provenance = read_provenance(path, trust=trust, ledger=ledger, media=media, content_sha256=content)
    if (provenance.state is ProvenanceState.ABSENT and watermark is not None and watermark.detected
            and ledger is not None):
        provenance = _recover_by_watermark(watermark, content, ledger, trust) or provenance
    return Inspection(path, media, provenance, watermark, decide(provenance, watermark))
