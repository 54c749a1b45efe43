"""Sign+write overhead: SynthGuard's full ``sign`` path vs raw c2pa-python signing of the same files.

Both sides use the same identity, Signer, settings (thumbnails off) and manifest assertions, and write a file. The
SynthGuard side adds what makes it safe: type sniffing, a full decode and pixel hash of the image (refusing
truncated or corrupt input), a check for an existing manifest, an atomic write, the output's hash and a ledger
insert. Runs alternate between the two methods so drift on a shared machine hits both alike.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import c2pa
from PIL import Image

from synthguard.core.home import Home
from synthguard.core.media import array_content_sha256, decode_image, jpeg_coded_data_sha256
from synthguard.core.samples import procedural_image
from synthguard.provenance.identity import IdentityStore
from synthguard.provenance.ledger import Ledger
from synthguard.provenance.manifest import ManifestSpec, ModelInfo
from synthguard.provenance.signing import SigningSession, builder_context

CASES = (("procedural-512.png", 512, "PNG", {}), ("procedural-2048.jpg", 2048, "JPEG", {"quality": 90}))


def run_sign_benchmark(repeat: int = 30) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="synthguard-bench-") as tmp:
        root = Path(tmp)
        home = Home(root / "home").ensure()
        identity = IdentityStore(home).init("SynthGuard bench identity", "SynthGuard bench")
        spec = ManifestSpec(title="bench", model=ModelInfo("bench-model", "1", seed=1))
        rows = []
        with Ledger(home.ledger_path) as ledger, SigningSession(identity, ledger) as session:
            raw_signer = identity.signer()
            raw_context = builder_context()
            for name, size, fmt, options in CASES:
                src = root / name
                pixels = procedural_image(size, size, seed=size)
                Image.fromarray(pixels).save(src, format=fmt, **options)
                mime = "image/png" if fmt == "PNG" else "image/jpeg"
                # Default arguments bind this iteration's file and pixels to the function.
                if fmt == "JPEG":
                    own_hash = lambda src=src: jpeg_coded_data_sha256(src.read_bytes())  # noqa: E731
                else:
                    own_hash = lambda pixels=pixels: array_content_sha256(pixels)  # noqa: E731
                raw_times, sg_times, own_times, decode_times = [], [], [], []
                for i in range(repeat + 1):  # the first round warms caches and is not counted
                    t0 = time.perf_counter()
                    definition = spec.to_manifest()
                    with c2pa.Builder(definition, context=raw_context) as builder, open(src, "rb") as s, \
                            open(root / f"raw-{i}-{name}", "w+b") as d:
                        builder.sign(raw_signer, mime, s, d)
                    t1 = time.perf_counter()
                    session.sign_file(src, root / f"sg-{i}-{name}", spec)
                    t2 = time.perf_counter()
                    session.sign_file(src, root / f"own-{i}-{name}", spec, content_sha256=own_hash())
                    t3 = time.perf_counter()
                    decode_image(src)
                    t4 = time.perf_counter()
                    if i:
                        raw_times.append(t1 - t0)
                        sg_times.append(t2 - t1)
                        own_times.append(t3 - t2)
                        decode_times.append(t4 - t3)
                raw_ms, sg_ms, own_ms, decode_ms = (statistics.median(t) * 1e3 for t in
                                                    (raw_times, sg_times, own_times, decode_times))
                rows.append({"file": name, "bytes": src.stat().st_size, "repeat": repeat, "raw_ms": raw_ms,
                             "synthguard_ms": sg_ms, "ratio": sg_ms / raw_ms, "own_render_ms": own_ms,
                             "own_render_ratio": own_ms / raw_ms, "validate_decode_ms": decode_ms})
            raw_signer.close()
        return rows
