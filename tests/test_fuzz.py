"""Fuzz targets for what reads untrusted bytes: the image decoders, the manifest reader, the metadata reader and
the text reader. Each is fed mutations of real files (hypothesis; deterministic by default so CI is repeatable,
``SYNTHGUARD_FUZZ_EXAMPLES`` raises the count and ``SYNTHGUARD_FUZZ_RANDOM=1`` draws new cases). The only outcome
allowed besides an answer is a SynthGuardError with a message: never another exception, never a hang."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from helpers.files import INTEROP
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synthguard.core.media import MediaKind, decode_image, read_text, sniff
from synthguard.detect.metadata import read_declarations
from synthguard.errors import SynthGuardError
from synthguard.provenance.identity import TrustAnchors
from synthguard.provenance.reading import read_provenance

EXAMPLES = int(os.environ.get("SYNTHGUARD_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=not os.environ.get("SYNTHGUARD_FUZZ_RANDOM"),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], database=None)
SEEDS = {name: (INTEROP / name).read_bytes() for name in ("C.jpg", "sample1.png", "XCA.jpg")}
SEEDS["small.png"] = (INTEROP / "sample1.png").read_bytes()[:4096]
SEEDS["notes.txt"] = "Café – a short note\n".encode() * 20


@st.composite
def mutated(draw) -> tuple[str, bytes]:
    """A seed file with a few bytes flipped, a slice removed or repeated, or cut short."""
    name = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(SEEDS[name])
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "cut", "drop", "repeat"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del data[at:]
        elif kind == "drop":
            del data[at:at + draw(st.integers(1, 512))]
        else:
            data[at:at] = data[at:at + draw(st.integers(1, 512))] * draw(st.integers(1, 4))
    return name, bytes(data)


@FUZZ
@given(mutated())
def test_the_readers_answer_or_refuse_with_a_message(case):
    name, data = case
    with tempfile.TemporaryDirectory(prefix="sg-fuzz-") as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        _check(path, data)


def _check(path: Path, data: bytes) -> None:
    try:
        media = sniff(path)
    except SynthGuardError as exc:
        assert str(exc)
        return
    for read in (lambda: decode_image(path, keep_rgb=True) if media.kind is MediaKind.IMAGE else read_text(path),
                 lambda: read_declarations(path, media=media),
                 lambda: read_provenance(path, trust=TrustAnchors(), media=media)):
        try:
            read()
        except SynthGuardError as exc:
            assert str(exc)
    assert path.read_bytes() == data  # nothing was written into the input
