"""Stamping: invisible watermark first, then a signed C2PA manifest that names the watermark (durable credentials).

The watermark payload (48 bits) is laid out as::

    bits 47..45  layout version (1)
    bit  44      the content declares generative AI (trainedAlgorithmicMedia / compositeWithTrainedAlgorithmicMedia)
    bits 43..0   asset key: random, unique in the local ledger

The manifest carries it as a ``c2pa.soft-binding`` assertion (algorithm id and payload) with a ``c2pa.watermarked``
action, and the ledger records payload -> manifest, so a copy that lost its manifest (re-encoded, metadata
stripped) still leads back to "made by model X, signed by Y". The AI bit makes the watermark itself a
machine-readable AI marking, even where the ledger is out of reach.

This module binds provenance and watermarking; neither of them knows the other.
"""

from __future__ import annotations

import io
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image

from synthguard.core.fileio import check_output_path
from synthguard.core.media import (
    MediaKind,
    array_content_sha256,
    decode_image,
    jpeg_coded_data_sha256,
    mime_for_suffix,
    sniff,
)
from synthguard.errors import Hint, InputError, WatermarkError
from synthguard.provenance.manifest import ManifestSpec, SoftBinding
from synthguard.provenance.signing import SigningSession, SignResult
from synthguard.watermark import ImageWatermarker
from synthguard.watermark.payload import Payload

# Formats a marked image is written back in, with the encoder options that keep the mark (lossless, or JPEG at a
# quality that costs the watermark little). GIF's 256-colour palette would erase it: refused.
_WRITE_OPTIONS = {"image/png": ("PNG", {}), "image/jpeg": ("JPEG", {"quality": 95, "subsampling": 0}),
                  "image/webp": ("WEBP", {"lossless": True, "exact": True}),
                  "image/tiff": ("TIFF", {"compression": "tiff_lzw"})}


@dataclass(frozen=True)
class StampResult:
    signed: SignResult
    payload: bytes | None
    algorithm: str | None
    # Why there is no watermark, when there is none (e.g. "text has no image watermark", "watermarking turned off").
    watermark_skipped: str | None = None
    # Wall time per stage: "watermark" (embed, encode, read-back check) and "sign" (C2PA, write, ledger).
    seconds: dict = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict:
        return {**self.signed.to_dict(), "watermark": {
            "embedded": self.payload is not None, "payload": self.payload.hex() if self.payload else None,
            "algorithm": self.algorithm, "skipped": self.watermark_skipped}}


def _split_alpha(img: Image.Image) -> tuple[np.ndarray, Image.Image | None]:
    """The channels to mark (grey or RGB) and the alpha band to put back, if any."""
    if img.mode in ("L", "LA"):
        return np.asarray(img.getchannel("L")), img.getchannel("A") if img.mode == "LA" else None
    alpha = img.getchannel("A") if "A" in img.getbands() else None
    return np.asarray(img.convert("RGB")), alpha


# Pixel modes the watermark can be embedded in without changing what the picture is. Deeper or other colour
# spaces (16-bit, float, CMYK, LAB, bilevel) would have to be converted, and that is not SynthGuard's to decide.
_MARKABLE_MODES = frozenset({"L", "LA", "RGB", "RGBA", "P", "PA"})
# Metadata that changes how a picture renders or prints, carried over to the marked copy.
_KEPT_INFO = ("exif", "icc_profile", "dpi")


@dataclass(frozen=True)
class MarkableImage:
    pixels: np.ndarray  # (H, W) grey or (H, W, 3) RGB uint8: the channels the watermark goes into
    alpha: Image.Image | None  # put back after marking
    save_options: dict = field(default_factory=dict)  # exif / icc_profile / dpi of the source


def load_for_marking(src: Path) -> MarkableImage:
    """Fully decode ``src`` (refusing corrupt or oversized input) into the channels to mark, its alpha band and
    the metadata to keep; refuse (WatermarkError) what marking would damage."""
    decoded = decode_image(src)
    if decoded.frames > 1:
        raise WatermarkError(f"{src}: an animation ({decoded.frames} frames); the watermark marks still images "
                             "only", hint=Hint.NO_WATERMARK)
    with Image.open(src) as img:
        img.load()
        if img.mode not in _MARKABLE_MODES:
            raise WatermarkError(f"{src}: {img.mode} pixels cannot be watermarked without converting them (8-bit "
                                 "grey or RGB, with or without alpha, can)", hint=Hint.NO_WATERMARK)
        if img.mode in ("P", "PA"):
            transparent = img.mode == "PA" or "transparency" in img.info
            img = img.convert("RGBA" if transparent else "RGB")
        pixels, alpha = _split_alpha(img)
        keep = {k: img.info[k] for k in _KEPT_INFO if img.info.get(k)}
    return MarkableImage(pixels, alpha, keep)


def embed_file(src: Path, dst: Path, payload: bytes, watermarker: ImageWatermarker) -> bytes:
    """Marked image bytes for ``dst``, in the format its extension names (the caller writes them)."""
    mime = mime_for_suffix(Path(dst).suffix)
    if mime not in _WRITE_OPTIONS:
        raise InputError(f"{dst}: unknown output format; use one of .png, .jpg, .jpeg, .webp, .tif, .tiff")
    image = load_for_marking(src)
    data, _ = mark_and_check(watermarker, image.pixels, image.alpha, payload, mime, image.save_options)
    return data


def mark_and_check(watermarker: ImageWatermarker, pixels: np.ndarray, alpha: Image.Image | None, payload: bytes,
                   mime: str, save_options: dict | None = None) -> tuple[bytes, str]:
    """Embed, encode, and check that the encoded file really carries the payload; returns (bytes, content hash).

    A mark the detector cannot read back (a small or nearly black image, a lossy re-encode) would be a silent
    skip: it is refused with a WatermarkError instead, before anything is written or signed.
    """
    data, content = encode_image(watermarker.embed(pixels, payload), alpha, mime, save_options)
    with Image.open(io.BytesIO(data)) as img:
        written, _ = _split_alpha(img)
    check = watermarker.detect(written)
    if not (check.detected and check.payload == payload):
        raise WatermarkError(
            f"the watermark does not read back from this {pixels.shape[1]}x{pixels.shape[0]} image "
            f"(p={check.p_value:.1e}); it is too small, too dark or too flat to carry it reliably: use a larger "
            "image, or sign without a watermark (the manifest still declares the content)", hint=Hint.NO_WATERMARK)
    return data, content


def encode_image(marked: np.ndarray, alpha: Image.Image | None, mime: str,
                 save_options: dict | None = None) -> tuple[bytes, str]:
    """Encode (marked) pixels in a format that keeps the mark; returns (file bytes, the ledger's content hash)."""
    if mime not in _WRITE_OPTIONS:
        raise WatermarkError(f"cannot write a watermarked {mime} (supported: "
                             f"{', '.join(sorted(_WRITE_OPTIONS))})", hint=Hint.NO_WATERMARK)
    fmt, options = _WRITE_OPTIONS[mime]
    img = Image.fromarray(marked)
    if alpha is not None:
        img.putalpha(alpha)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **options, **(save_options or {}))
    data = buf.getvalue()
    if fmt == "JPEG":
        return data, jpeg_coded_data_sha256(data)
    if alpha is not None:
        return data, array_content_sha256(np.asarray(img))
    return data, array_content_sha256(marked)


class Stamper:
    """Watermark (images) + sign + ledger, in that order, for files or in-memory pixels."""

    def __init__(self, session: SigningSession, watermarker: ImageWatermarker | None):
        self.session = session
        self.watermarker = watermarker

    def _key_taken(self, payload: bytes) -> bool:
        ledger = self.session.ledger
        return ledger is not None and bool(ledger.find_by_soft_binding(payload))

    def _binding(self, spec: ManifestSpec) -> tuple[bytes, ManifestSpec]:
        payload = Payload.new(spec.digital_source_type.is_generative_ai, self._key_taken).to_bytes()
        return payload, replace(spec, soft_binding=SoftBinding(self.watermarker.algorithm_id, payload))

    def stamp_file(self, src: Path, dst: Path, spec: ManifestSpec, *, overwrite: bool = False) -> StampResult:
        src, dst = Path(src), Path(dst)
        media = sniff(src)
        check_output_path(dst, inputs=(src,), overwrite=overwrite)
        if self.watermarker is None:
            return StampResult(self.session.sign_file(src, dst, spec, overwrite=overwrite), None, None,
                               "watermarking turned off")
        if media.kind is not MediaKind.IMAGE:
            return StampResult(self.session.sign_file(src, dst, spec, overwrite=overwrite), None, None,
                               f"{media.mime} has no image watermark; the manifest alone marks it")
        image = load_for_marking(src)
        payload, spec = self._binding(spec)
        data, content = mark_and_check(self.watermarker, image.pixels, image.alpha, payload, media.mime,
                                       image.save_options)
        signed = self._sign_encoded(data, content, dst, spec, overwrite=overwrite, parent_source=src)
        return StampResult(signed, payload, self.watermarker.algorithm_id)

    def stamp_pixels(self, pixels: np.ndarray, dst: Path, spec: ManifestSpec, *, mime: str = "image/png",
                     overwrite: bool = False) -> StampResult:
        """Watermark, encode and sign pixels made in memory (a generator's output): nothing to decode, and the
        content hash comes from the pixels themselves."""
        dst = Path(dst)
        check_output_path(dst, overwrite=overwrite)
        start = time.perf_counter()
        if self.watermarker is None:
            payload, algorithm, skipped = None, None, "watermarking turned off"
            data, content = encode_image(pixels, None, mime)
        else:
            payload, spec = self._binding(spec)
            algorithm, skipped = self.watermarker.algorithm_id, None
            data, content = mark_and_check(self.watermarker, pixels, None, payload, mime)
        marked = time.perf_counter()
        signed = self._sign_encoded(data, content, dst, spec, overwrite=overwrite)
        seconds = {"watermark": marked - start, "sign": time.perf_counter() - marked}
        return StampResult(signed, payload, algorithm, skipped, seconds)

    def stamp_many(self, images: list[np.ndarray], paths: list[Path], specs: list[ManifestSpec], *,
                   mime: str = "image/png", overwrite: bool = False, workers: int = 2,
                   progress: Callable[[int], None] | None = None) -> list[StampResult]:
        """``stamp_pixels`` for many images. Marking (the costly part: numpy and OpenCV release the GIL) runs on
        ``workers`` threads, each with its own watermarker; payloads, signing and the ledger stay on this thread, in
        order. Falls back to one thread when the watermarker cannot make independent copies."""
        copies_ok = self.watermarker is not None and self.watermarker.fresh() is not None
        if not copies_ok or workers <= 1 or len(images) < 2:
            results = []
            for image, path, spec in zip(images, paths, specs, strict=True):
                results.append(self.stamp_pixels(image, path, spec, mime=mime, overwrite=overwrite))
                if progress is not None:
                    progress(1)
            return results
        for path in paths:
            check_output_path(path, overwrite=overwrite)
        bound = [self._binding(spec) for spec in specs]  # reads the ledger: on this thread
        local = threading.local()

        def mark(job: tuple[np.ndarray, bytes]) -> tuple[bytes, str, float]:
            pixels, payload = job
            if not hasattr(local, "watermarker"):
                local.watermarker = self.watermarker.fresh()
            start = time.perf_counter()
            data, content = mark_and_check(local.watermarker, pixels, None, payload, mime)
            return data, content, time.perf_counter() - start

        results = []
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="synthguard-mark") as pool:
            marked = pool.map(mark, [(image, payload) for image, (payload, _) in zip(images, bound, strict=True)])
            for (payload, spec), path, (data, content, mark_seconds) in zip(bound, paths, marked, strict=True):
                start = time.perf_counter()
                signed = self._sign_encoded(data, content, path, spec, overwrite=overwrite)
                results.append(StampResult(signed, payload, self.watermarker.algorithm_id, None,
                                           {"watermark": mark_seconds, "sign": time.perf_counter() - start}))
                if progress is not None:
                    progress(1)
        return results

    def _sign_encoded(self, data: bytes, content: str, dst: Path, spec: ManifestSpec, *, overwrite: bool,
                      parent_source: Path | None = None) -> SignResult:
        # The encoded image goes through the one signing path (which sniffs and embeds); a private temp folder
        # beside the output keeps it on the same filesystem and removes it whatever happens.
        with tempfile.TemporaryDirectory(prefix=".synthguard-", dir=dst.parent if dst.parent.exists() else None) \
                as tmp:
            encoded = Path(tmp) / f"encoded{dst.suffix or '.img'}"
            encoded.write_bytes(data)
            return self.session.sign_file(encoded, dst, spec, overwrite=overwrite, content_sha256=content,
                                          parent_source=parent_source)
