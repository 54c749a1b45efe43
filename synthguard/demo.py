"""The built-in demo: the whole stamp-and-verify loop on content made on the spot (no download, no GPU).

The content is a procedural render, so it is declared honestly as IPTC ``algorithmicMedia`` (made by an algorithm,
not a trained model): its verdict is ``unknown`` with the trusted manifest's claims as reasons.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from synthguard.core.fileio import atomic_output, write_atomic
from synthguard.core.home import Home
from synthguard.core.samples import procedural_image
from synthguard.detect import Inspection, InspectionContext, inspect_file
from synthguard.provenance.identity import Identity
from synthguard.provenance.ledger import Ledger
from synthguard.provenance.manifest import DigitalSourceType, ManifestSpec, ModelInfo
from synthguard.provenance.signing import SigningSession
from synthguard.stamp import Stamper
from synthguard.watermark import default_image_watermarker


def _save(img: Image.Image, path: Path, fmt: str, **options) -> None:
    with atomic_output(path) as out:
        img.save(out, format=fmt, **options)


def run_demo(folder: Path, home: Home, identity: Identity) -> list[tuple[str, Inspection]]:
    """Render, watermark, sign and verify an image; then verify what a platform or a forger would make of it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    watermarker = default_image_watermarker()
    signed = folder / "render-signed.png"
    spec = ManifestSpec(title="SynthGuard demo render", digital_source_type=DigitalSourceType.ALGORITHMIC_MEDIA,
                        model=ModelInfo("synthguard-procedural-waves", "1", seed=7, parameters={"size": 512}))
    with Ledger.from_home(home) as ledger:
        with SigningSession(identity, ledger) as session:
            Stamper(session, watermarker).stamp_pixels(procedural_image(512, 512, seed=7), signed, spec,
                                                       overwrite=True)
        with Image.open(signed) as img:
            pixels = img.convert("RGB")

        # A lossless re-save drops the manifest but keeps every pixel.
        stripped = folder / "render-resaved.png"
        _save(pixels, stripped, "PNG")
        # A platform re-encodes to JPEG: manifest gone, pixels changed; the watermark remains.
        reencoded = folder / "render-reposted.jpg"
        _save(pixels, reencoded, "JPEG", quality=80)
        # Someone changes pixels but keeps the signed file's manifest: its data hash no longer matches.
        edited = pixels.copy()
        edited.putpixel((10, 10), (255, 0, 0))
        buf = io.BytesIO()
        edited.save(buf, format="PNG")
        tampered = folder / "render-tampered.png"
        write_atomic(tampered, _swap_png_pixels(signed.read_bytes(), buf.getvalue()))

        with InspectionContext.build(home, ledger=ledger, classifier=False) as context:
            return [(title, inspect_file(path, context)) for title, path in (
                ("signed output (watermark + C2PA manifest)", signed),
                ("same pixels, manifest stripped by a lossless re-save", stripped),
                ("re-encoded to JPEG by a platform, manifest gone", reencoded),
                ("signed file with its pixels changed afterwards", tampered))]


def _swap_png_pixels(signed: bytes, edited: bytes) -> bytes:
    """The signed PNG's chunks (manifest included) with the IDAT chunks taken from another PNG of the same size."""
    def chunks(png: bytes):
        pos, out = 8, []
        while pos < len(png):
            length = int.from_bytes(png[pos:pos + 4], "big")
            out.append((png[pos + 4:pos + 8], png[pos:pos + 12 + length]))
            pos += 12 + length
        return out

    new_idat = b"".join(raw for kind, raw in chunks(edited) if kind == b"IDAT")
    result, placed = [signed[:8]], False
    for kind, raw in chunks(signed):
        if kind == b"IDAT":
            if not placed:
                result.append(new_idat)
                placed = True
            continue
        result.append(raw)
    return b"".join(result)
