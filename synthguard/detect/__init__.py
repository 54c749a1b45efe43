"""Inspecting a file: every signal, then one verdict (the ``inspect`` flow of ARCHITECTURE.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from synthguard.detect.verdict import Verdict, VerdictLabel, decide
from synthguard.media import MediaKind, MediaType, decode_image, sniff
from synthguard.provenance.identity import TrustAnchors
from synthguard.provenance.ledger import Ledger
from synthguard.provenance.reading import ProvenanceSignal, read_provenance

__all__ = ["Inspection", "Verdict", "VerdictLabel", "inspect_file"]


@dataclass(frozen=True)
class Inspection:
    file: Path
    media: MediaType
    provenance: ProvenanceSignal
    verdict: Verdict

    def to_dict(self) -> dict:
        return {"file": str(self.file), "mime": self.media.mime, "provenance": self.provenance.to_dict(),
                "verdict": self.verdict.to_dict()}


def inspect_file(path: Path, *, trust: TrustAnchors, ledger: Ledger | None = None) -> Inspection:
    path = Path(path)
    media = sniff(path)
    # A corrupt, truncated or oversized image is an input error, not something to give a verdict on.
    content = decode_image(path).content_sha256 if media.kind is MediaKind.IMAGE else None
    provenance = read_provenance(path, trust=trust, ledger=ledger, media=media, content_sha256=content)
    return Inspection(path, media, provenance, decide(provenance))
