"""The built-in demo: the whole stamp-and-verify loop on content made on the spot (no download, no GPU)."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from synthguard.detect import Inspection, inspect_file
from synthguard.fileio import atomic_output, write_atomic
from synthguard.home import Home
from synthguard.policy import DEFAULT_POLICY
from synthguard.provenance.identity import Identity
from synthguard.provenance.ledger import Ledger
from synthguard.provenance.manifest import DigitalSourceType, ManifestSpec, ModelInfo
from synthguard.provenance.signing import SigningSession
from synthguard.samples import procedural_image


def _save(img: Image.Image, path: Path, fmt: str) -> None:
    with atomic_output(path) as out:
        img.save(out, format=fmt)


def run_demo(folder: Path, home: Home, identity: Identity) -> list[tuple[str, Inspection]]:
    """Render, sign and verify an image; then verify a stripped copy and a tampered copy. Returns what was seen."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "render.png"
    _save(Image.fromarray(procedural_image(512, 512, seed=7)), source, "PNG")
    signed = folder / "render-signed.png"
    spec = ManifestSpec(title="SynthGuard demo render", digital_source_type=DigitalSourceType.ALGORITHMIC_MEDIA,
                        model=ModelInfo("synthguard-procedural-waves", "1", seed=7, parameters={"size": 512}))
    with Ledger(home.ledger_path) as ledger:
        with SigningSession(identity, ledger) as session:
            session.sign_file(source, signed, spec, overwrite=True)

        # A platform re-saves the file: the manifest is gone, the pixels are the same.
        stripped = folder / "render-stripped.png"
        with Image.open(signed) as img:
            _save(img.copy(), stripped, "PNG")

        # Someone changes pixels but keeps the signed file's manifest: its data hash no longer matches.
        tampered = folder / "render-tampered.png"
        with Image.open(signed) as img:
            pixels = img.copy()
        pixels.putpixel((10, 10), (255, 0, 0))
        edited = io.BytesIO()
        pixels.save(edited, format="PNG")
        write_atomic(tampered, _swap_png_pixels(signed.read_bytes(), edited.getvalue()))

        trust = DEFAULT_POLICY.trust_anchors(home)
        return [(title, inspect_file(path, trust=trust, ledger=ledger)) for title, path in (
            ("signed output", signed),
            ("same picture, manifest stripped by a re-save", stripped),
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
