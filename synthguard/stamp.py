"""Stamping: invisible watermark first, then a signed C2PA manifest that names the watermark (durable credentials).

The watermark payload (48 bits) is laid out as::

    bits 47..45  layout version (1)
    bit  44      the content declares generative AI (trainedAlgorithmicMedia / compositeWithTrainedAlgorithmicMedia)
    bits 43..0   asset key: random, reserved in the ledger (unique across every signer writing to it)

The manifest carries it as a ``c2pa.soft-binding`` assertion (algorithm id and payload) with a ``c2pa.watermarked``
action, and the ledger records payload -> manifest, so a copy that lost its manifest (re-encoded, metadata
stripped) still leads back to "made by model X, signed by Y". The AI bit makes the watermark itself a
machine-readable AI marking, even where the ledger is out of reach.

Audio (``Stamper.stamp_audio`` for samples made in memory, ``stamp_file`` for an audio file) follows the images'
path with the audio watermark of ``synthguard.watermark.audio``: the same payload, embedded, encoded, read back
from the encoded bytes, then signed (embedded in WAV, FLAC, MP3, M4A; a ``.c2pa`` sidecar for Ogg Opus / Vorbis).

Texts are marked while they are sampled (the watermark is in the sampling loop, see
``synthguard.generate.sampling``), so ``Stamper.stamp_text`` takes a text already sampled with the stamper's
``text_watermarker`` and binds it: a ``.c2pa`` sidecar whose soft binding names the scheme and the key id.

This module binds provenance and watermarking; neither of them knows the other.
"""

from __future__ import annotations

import contextlib
import io
import struct
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, PngImagePlugin

from synthguard.core.audio import AudioFormat
from synthguard.core.fileio import check_output_path, write_atomic
from synthguard.core.home import Home
from synthguard.core.media import (
    MediaKind,
    array_content_sha256,
    decode_image,
    jpeg_coded_data_sha256,
    mime_for_suffix,
    sniff,
)
from synthguard.errors import Hint, InputError, WatermarkError
from synthguard.provenance.identity import Identity, IdentityStore
from synthguard.provenance.ledger import Ledger
from synthguard.provenance.manifest import ManifestSpec, SoftBinding
from synthguard.provenance.signing import SigningSession, SignResult, sidecar_path
from synthguard.watermark import ImageWatermarker, default_image_watermarker
from synthguard.watermark.payload import Payload

if TYPE_CHECKING:
    from synthguard.core.audio import AudioClip
    from synthguard.watermark.audio import AudioWatermarker
    from synthguard.watermark.text import TextWatermarker

# Where a Stamper opened from a home gets its signing identity: given, made on demand by a callable (so a caller can
# load its model before an identity is created), or the home's own (created on first use).
IdentitySource = Identity | Callable[[], Identity] | None

# Formats a marked image is written back in, with the encoder options that keep the mark (lossless, or JPEG at a
# quality that costs the watermark little). GIF's 256-colour palette would erase it: refused.
_WRITE_OPTIONS = {"image/png": ("PNG", {}), "image/jpeg": ("JPEG", {"quality": 95, "subsampling": 0}),
                  "image/webp": ("WEBP", {"lossless": True, "exact": True}),
                  "image/tiff": ("TIFF", {"compression": "tiff_lzw"})}


@dataclass(frozen=True)
class StampResult:
    signed: SignResult
    # The soft binding's value: an image's watermark payload, or a text watermark's key id.
    payload: bytes | None
    algorithm: str | None
    # Why there is no watermark, when there is none (e.g. "text has no image watermark", "watermarking turned off").
    watermark_skipped: str | None = None
    # Wall time per stage: "watermark" (embed, encode, read-back check) and "sign" (C2PA, write, ledger).
    seconds: dict = field(default_factory=dict, compare=False)
    # What the encoding changed beyond the mark (an audio file resampled, or re-encoded at a lossy bit rate).
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {**self.signed.to_dict(), "watermark": {
            "embedded": self.payload is not None, "payload": self.payload.hex() if self.payload else None,
            "algorithm": self.algorithm, "skipped": self.watermark_skipped}, "notes": list(self.notes)}


def _split_alpha(img: Image.Image) -> tuple[np.ndarray, Image.Image | None]:
    """The channels to mark (grey or RGB) and the alpha band to put back, if any."""
    if img.mode in ("L", "LA"):
        return np.asarray(img.getchannel("L")), img.getchannel("A") if img.mode == "LA" else None
    alpha = img.getchannel("A") if "A" in img.getbands() else None
    return np.asarray(img.convert("RGB")), alpha


# Pixel modes the watermark can be embedded in without changing what the picture is. Deeper or other colour
# spaces (16-bit, float, CMYK, LAB, bilevel) would have to be converted, and that is not SynthGuard's to decide.
_MARKABLE_MODES = frozenset({"L", "LA", "RGB", "RGBA", "P", "PA"})
# Metadata that changes how a picture renders or prints, carried over to the marked copy: EXIF (orientation), the
# ICC profile and the resolution in every format; PNG's gamma, chromaticities, sRGB intent and the transparent colour
# of a grey or RGB image in PNG output (``_png_rendering``).
_KEPT_INFO = ("exif", "icc_profile", "dpi", "gamma", "chromaticity", "srgb", "transparency")
_PNG_ONLY = ("gamma", "chromaticity", "srgb", "transparency")


_TIFF_BITS_PER_SAMPLE = 258


def _bits_per_sample(img: Image.Image, src: Path) -> int:
    """The file's bits per sample, which Pillow's mode does not always show: it opens a 48-bit or 64-bit PNG or TIFF
    as 8-bit RGB / RGBA, dropping the low bits."""
    if img.format == "PNG":
        # IHDR is the first chunk (a PNG whose first chunk is not IHDR does not open): its bit depth is byte 8.
        with open(src, "rb") as handle:
            header = handle.read(33)
        return header[24] if len(header) == 33 and header[12:16] == b"IHDR" else 8
    if img.format == "TIFF":
        bits = img.tag_v2.get(_TIFF_BITS_PER_SAMPLE)
        return max((b for b in (bits if isinstance(bits, tuple) else (bits,)) if isinstance(b, int)), default=8)
    return 8


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
        bits = _bits_per_sample(img, src)
        if bits > 8:
            raise WatermarkError(f"{src}: {bits}-bit {img.mode} pixels cannot be watermarked without reducing them "
                                 "to 8 bits (8-bit grey or RGB, with or without alpha, can)", hint=Hint.NO_WATERMARK)
        if img.mode in ("P", "PA"):
            transparent = img.mode == "PA" or "transparency" in img.info
            img = img.convert("RGBA" if transparent else "RGB")
        pixels, alpha = _split_alpha(img)
        keep = {k: img.info[k] for k in _KEPT_INFO if img.info.get(k) is not None and img.info.get(k) != b""}
        if img.mode in ("RGBA", "LA"):
            keep.pop("transparency", None)  # the alpha band already carries it
    return MarkableImage(pixels, alpha, keep)


@dataclass(frozen=True)
class MarkResult:
    """A watermarked, unsigned copy."""

    output: Path
    payload: bytes
    algorithm: str

    def to_dict(self) -> dict:
        return {"output": str(self.output), "payload": self.payload.hex(), "algorithm": self.algorithm}


def mark_file(src: Path, dst: Path, *, payload: bytes | None = None, ai_generated: bool = True,
              watermarker: ImageWatermarker | None = None, overwrite: bool = False) -> MarkResult:
    """Write a copy of the image ``src`` to ``dst`` carrying the watermark, in the format ``dst``'s extension names,
    and sign nothing: ``Stamper.stamp_file`` binds the mark to a manifest. ``payload`` defaults to a fresh
    SynthGuard payload with the AI bit ``ai_generated``; ``watermarker`` to SynthGuard's image watermark."""
    src, dst = Path(src), Path(dst)
    check_output_path(dst, inputs=(src,), overwrite=overwrite)
    watermarker = watermarker or default_image_watermarker()
    if payload is None:
        payload = Payload.new(ai_generated, None).to_bytes()
    mime = mime_for_suffix(dst.suffix)
    if mime not in _WRITE_OPTIONS:
        raise InputError(f"{dst}: unknown output format; use one of .png, .jpg, .jpeg, .webp, .tif, .tiff")
    image = load_for_marking(src)
    data, _ = mark_and_check(watermarker, image.pixels, image.alpha, payload, mime, image.save_options)
    write_atomic(dst, data, overwrite=overwrite)
    return MarkResult(dst, payload, watermarker.algorithm_id)


def mark_and_check(watermarker: ImageWatermarker, pixels: np.ndarray, alpha: Image.Image | None, payload: bytes,
                   mime: str, save_options: dict | None = None) -> tuple[bytes, str | None]:
    """Embed, encode, and check that the encoded file really carries the payload; returns (bytes, content hash)
    (see ``encode_image``).

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
                 save_options: dict | None = None) -> tuple[bytes, str | None]:
    """Encode (marked) pixels in a format that keeps the mark; returns (file bytes, the ledger's content hash).

    The hash is None when the file carries what changes its rendering beyond the pixels (an ICC profile, an EXIF
    orientation): the content hash covers those too, so signing hashes the encoded file itself."""
    if mime not in _WRITE_OPTIONS:
        raise WatermarkError(f"cannot write a watermarked {mime} (supported: "
                             f"{', '.join(sorted(_WRITE_OPTIONS))})", hint=Hint.NO_WATERMARK)
    fmt, options = _WRITE_OPTIONS[mime]
    img = Image.fromarray(marked)
    if alpha is not None:
        img.putalpha(alpha)
    kept = {k: v for k, v in (save_options or {}).items() if k not in _PNG_ONLY}
    if fmt == "PNG":
        kept.update(_png_rendering(save_options or {}))
    buf = io.BytesIO()
    img.save(buf, format=fmt, **options, **kept)
    data = buf.getvalue()
    if fmt == "JPEG":
        return data, jpeg_coded_data_sha256(data)
    if kept.keys() & {"icc_profile", "exif", "pnginfo", "transparency"}:
        return data, None
    if alpha is not None:
        return data, array_content_sha256(np.asarray(img))
    return data, array_content_sha256(marked)


def _png_rendering(info: dict) -> dict:
    """PNG save options carrying gAMA, cHRM, sRGB (as raw chunks: Pillow writes none of them itself) and tRNS."""
    chunks = PngImagePlugin.PngInfo()
    if info.get("srgb") is not None:
        chunks.add(b"sRGB", bytes([int(info["srgb"]) & 0xFF]))
    if info.get("gamma") is not None:
        chunks.add(b"gAMA", struct.pack(">I", round(float(info["gamma"]) * 100000)))
    chroma = info.get("chromaticity")
    if chroma is not None and len(chroma) == 8:
        chunks.add(b"cHRM", struct.pack(">8I", *(round(float(v) * 100000) for v in chroma)))
    options: dict = {"pnginfo": chunks} if chunks.chunks else {}
    if info.get("transparency") is not None:
        options["transparency"] = info["transparency"]
    return options


# An MP3 or M4A re-encode of a marked file keeps the source's bit rate, rounded down to one of these steps (so
# signing a signed copy again does not creep upwards), from 128 to 320 kbps. Opus has no nominal bit rate in its
# header and libopus's VBR overshoots its target on dense content: Opus is re-encoded at the default rate.
_AUDIO_BITRATE_STEPS = (128_000, 160_000, 192_000, 224_000, 256_000, 320_000)
# Sample codings a lossless audio file is written back in; others (A-law, mu-law, ADPCM, 8-bit FLAC) become 16-bit.
_AUDIO_KEPT_SUBTYPES = {AudioFormat.WAV: ("PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"),
                        AudioFormat.FLAC: ("PCM_16", "PCM_24")}


def mark_audio_and_check(watermarker: AudioWatermarker, samples: np.ndarray, rate: int, payload: bytes,
                         fmt: AudioFormat, *, bitrate: int | None = None, subtype: str | None = None,
                         unmarked_allowed: bool = True) -> tuple[bytes, AudioClip]:
    """Embed, encode in ``fmt``, decode the encoded bytes and check the payload reads back from them; returns the
    file's bytes and its decoded clip (whose ``audio_content_sha256`` is the ledger's content key).

    A mark the detector cannot read back after the codec would be a silent skip: it is refused with a
    WatermarkError instead, before anything is written or signed. ``unmarked_allowed``: the caller may sign the
    content without a watermark instead (an existing file), and the error says so; a generator's output may not."""
    from synthguard.core.audio import decode_audio, encode_audio  # noqa: PLC0415 (soundfile / av)

    data = encode_audio(watermarker.embed(samples, rate, payload), rate, fmt, bitrate=bitrate, subtype=subtype)
    clip = decode_audio(data)
    check = watermarker.detect(clip.samples[:, 0] if clip.channels == 1 else clip.samples, clip.rate)
    if not (check.detected and check.payload == payload):
        raise WatermarkError(
            f"the audio watermark does not read back from this {clip.seconds:.1f} s {fmt.value.upper()} "
            f"(p={check.p_value:.1e}" + ("" if check.detected else ", not detected")
            + ("" if not check.detected or check.payload == payload else ", another payload")
            + "); it is too short, too quiet or too narrow-band to carry it reliably through this codec: use a "
            + ("longer or louder clip, a lossless format, or sign without a watermark (the manifest still declares "
               "the content)" if unmarked_allowed else "longer or louder clip or a lossless format"),
            hint=Hint.NO_WATERMARK if unmarked_allowed else None)
    return data, clip


def _audio_encoding(clip: AudioClip, source: Path) -> tuple[dict, tuple[str, ...]]:
    """The encode_audio options that write ``clip`` back in its own format (lossless: the same sample coding where
    it can hold one; lossy: the source's bit rate within bounds), and notes saying what differs."""
    from synthguard.core.audio import DEFAULT_BITRATES, audio_info  # noqa: PLC0415

    fmt = clip.format
    if fmt.lossless:
        kept = _AUDIO_KEPT_SUBTYPES[fmt]
        if clip.subtype in kept:
            return {"subtype": clip.subtype}, ()
        return {"subtype": "PCM_16"}, (f"{source.name}: its {clip.subtype} samples were written back as 16-bit PCM",)
    if fmt is AudioFormat.VORBIS:
        return {}, (f"{source.name}: re-encoded as Ogg Vorbis at libsndfile's default quality (a lossy file "
                    "cannot carry a new mark without re-encoding)",)
    bitrate = DEFAULT_BITRATES[fmt.value]
    declared = audio_info(source).bitrate if fmt is not AudioFormat.OPUS else None
    if declared:
        # 2 % of slack: a container's overhead or an encoder's rounding must not drop a step.
        bitrate = max([step for step in _AUDIO_BITRATE_STEPS if step <= declared * 1.02], default=128_000)
    return {"bitrate": bitrate}, (f"{source.name}: re-encoded as {fmt.value.upper()} at {bitrate // 1000} kbps "
                                  "(a lossy file cannot carry a new mark without re-encoding)",)


class Stamper:
    """Watermark + sign + ledger, in that order: files, pixels made in memory, and texts sampled with
    ``text_watermarker`` in the loop, and audio. ``watermarker`` (images), ``audio_watermarker`` or
    ``text_watermarker`` None: that kind of content is signed without a watermark, and the result says so.

    Built over an open ``SigningSession``, or opened from a home with ``Stamper.from_home``; as a context manager
    it closes what it opened itself (never a session it was given).
    """

    def __init__(self, session: SigningSession, watermarker: ImageWatermarker | None, *,
                 text_watermarker: TextWatermarker | None = None, audio_watermarker: AudioWatermarker | None = None):
        self.session = session
        self.watermarker = watermarker
        self.text_watermarker = text_watermarker
        self.audio_watermarker = audio_watermarker
        self._opened = contextlib.ExitStack()

    @classmethod
    def from_home(cls, home: Home, *, identity: IdentitySource = None, image_watermark: bool = True,
                  text_watermark: str | None = None, thumbnail: bool = False,
                  audio_watermark: bool = True) -> Stamper:
        """A Stamper over ``home``'s ledger, signing as ``identity`` (see ``IdentitySource``); close it, or use it
        as a context manager. ``image_watermark``: embed SynthGuard's image watermark; ``text_watermark``: the text
        scheme ("synthid" or "kgw") keyed from the identity, for texts sampled through this stamper (None: texts
        unmarked); ``thumbnail``: embed a thumbnail in image manifests; ``audio_watermark``: embed SynthGuard's
        audio watermark in audio."""
        if callable(identity):
            identity = identity()
        elif identity is None:
            identity, _ = IdentityStore(home).ensure()
        text_watermarker = None
        if text_watermark is not None:
            from synthguard.watermark.text import make_watermarker  # noqa: PLC0415 (imports torch)

            text_watermarker = make_watermarker(text_watermark, identity.text_watermark_secret())
        watermarker = default_image_watermarker() if image_watermark else None
        audio_watermarker = None
        if audio_watermark:
            from synthguard.watermark.audio import default_audio_watermarker  # noqa: PLC0415

            audio_watermarker = default_audio_watermarker()
        with contextlib.ExitStack() as opened:
            ledger = opened.enter_context(Ledger.from_home(home))
            session = opened.enter_context(SigningSession(identity, ledger, thumbnail=thumbnail))
            stamper = cls(session, watermarker, text_watermarker=text_watermarker,
                          audio_watermarker=audio_watermarker)
            stamper._opened = opened.pop_all()
        return stamper

    def close(self) -> None:
        """Close the signing session and ledger this stamper opened (``from_home``); nothing else."""
        self._opened.close()

    def __enter__(self) -> Stamper:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _key_taken(self, payload: bytes) -> bool:
        # Reserving (not looking up) the key: two signers on one ledger never draw the same one.
        ledger = self.session.ledger
        return ledger is not None and not ledger.reserve_soft_binding(payload)

    def _binding(self, spec: ManifestSpec, algorithm: str | None = None) -> tuple[bytes, ManifestSpec]:
        # The AI bit follows the declaration: set only when the manifest declares generative AI.
        ai = spec.digital_source_type is not None and spec.digital_source_type.is_generative_ai
        payload = Payload.new(ai, self._key_taken).to_bytes()
        algorithm = algorithm or self.watermarker.algorithm_id
        return payload, replace(spec, soft_binding=SoftBinding(algorithm, payload))

    def stamp_file(self, src: Path, dst: Path, spec: ManifestSpec, *, overwrite: bool = False) -> StampResult:
        src, dst = Path(src), Path(dst)
        media = sniff(src)
        check_output_path(dst, inputs=(src,), overwrite=overwrite)
        if media.kind is MediaKind.AUDIO:
            return self._stamp_audio_file(src, dst, spec, overwrite=overwrite)
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

    def _stamp_audio_file(self, src: Path, dst: Path, spec: ManifestSpec, *, overwrite: bool) -> StampResult:
        """An audio file decoded, marked, re-encoded in its own format (see ``_audio_encoding``), read back and
        signed with the source's manifest (if any) as the parent ingredient."""
        if self.audio_watermarker is None:
            return StampResult(self.session.sign_file(src, dst, spec, overwrite=overwrite), None, None,
                               "watermarking turned off")
        from synthguard.core.audio import audio_content_sha256, decode_audio  # noqa: PLC0415

        start = time.perf_counter()
        clip = decode_audio(src)
        options, notes = _audio_encoding(clip, src)
        payload, spec = self._binding(spec, self.audio_watermarker.algorithm_id)
        samples = clip.samples[:, 0] if clip.channels == 1 else clip.samples
        data, written = mark_audio_and_check(self.audio_watermarker, samples, clip.rate, payload, clip.format,
                                             **options)
        marked = time.perf_counter()
        signed = self._sign_encoded(data, audio_content_sha256(written), dst, spec, overwrite=overwrite,
                                    parent_source=src)
        return StampResult(signed, payload, self.audio_watermarker.algorithm_id, None,
                           {"watermark": marked - start, "sign": time.perf_counter() - marked}, notes)

    def stamp_audio(self, samples: np.ndarray, rate: int, dst: Path, spec: ManifestSpec, *,
                    fmt: AudioFormat = AudioFormat.WAV, overwrite: bool = False) -> StampResult:
        """Watermark, encode in ``fmt`` and sign audio made in memory (float32 ``(frames,)`` or ``(frames,
        channels)`` in [-1, 1] at ``rate`` Hz): the mark is read back from the encoded bytes before anything is
        written; WAV, FLAC, MP3 and M4A carry the manifest inside, Opus / Vorbis in ``dst``'s ``.c2pa`` sidecar.
        ``dst``'s extension must name ``fmt`` (``fmt.suffix``, or another of its own: .ogg for Opus)."""
        from synthguard.core.audio import (  # noqa: PLC0415 (soundfile / av)
            audio_content_sha256,
            decode_audio,
            encode_audio,
            output_rate,
        )

        dst, fmt = Path(dst), AudioFormat(fmt)
        promised = mime_for_suffix(dst.suffix)
        if promised != fmt.mime:
            raise InputError(f"{dst}: the name says {promised or 'no known type'} but the audio is written as "
                             f"{fmt.value} ({fmt.mime}): name it *{fmt.suffix}")
        check_output_path(dst, overwrite=overwrite)
        if not fmt.embeddable:
            check_output_path(sidecar_path(dst), overwrite=overwrite)
        notes: tuple[str, ...] = ()
        if output_rate(fmt, int(rate)) != rate:
            notes = (f"resampled from {rate} Hz to {output_rate(fmt, int(rate))} Hz for {fmt.value}",)
        start = time.perf_counter()
        if self.audio_watermarker is None:
            payload, algorithm, skipped = None, None, "watermarking turned off"
            data = encode_audio(samples, rate, fmt)
            written = decode_audio(data)
        else:
            payload, spec = self._binding(spec, self.audio_watermarker.algorithm_id)
            algorithm, skipped = self.audio_watermarker.algorithm_id, None
            data, written = mark_audio_and_check(self.audio_watermarker, samples, rate, payload, fmt,
                                                 unmarked_allowed=False)
        marked = time.perf_counter()
        signed = self._sign_encoded(data, audio_content_sha256(written), dst, spec, overwrite=overwrite)
        seconds = {"watermark": marked - start, "sign": time.perf_counter() - marked}
        return StampResult(signed, payload, algorithm, skipped, seconds, notes)

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

    def stamp_text(self, text: str, dst: Path, spec: ManifestSpec, *, overwrite: bool = False) -> StampResult:
        """Write ``text`` to ``dst`` with a signed ``.c2pa`` sidecar and record it in the ledger.

        A text watermark cannot be added to a finished text: ``text`` must have been sampled with
        ``self.text_watermarker`` in the loop (``generate_text(watermarker=stamper.text_watermarker)``). The
        manifest then binds that watermark (soft binding: its algorithm and key id); with no text watermarker the
        text is signed unmarked, and the result says so.
        """
        dst = Path(dst)
        if not text.strip():
            raise InputError(f"{dst}: no text to sign (it is empty or only white space)")
        check_output_path(dst, overwrite=overwrite)
        check_output_path(sidecar_path(dst), overwrite=overwrite)
        wm = self.text_watermarker
        if wm is None:
            payload, algorithm, skipped = None, None, "watermarking turned off"
        else:
            payload, algorithm, skipped = bytes.fromhex(wm.key_id), wm.algorithm_id, None
            spec = replace(spec, soft_binding=SoftBinding(algorithm, payload))
        start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=".synthguard-", dir=dst.parent) as tmp:
            src = Path(tmp) / f"text{dst.suffix}"
            src.write_text(text, encoding="utf-8")
            signed = self.session.sign_file(src, dst, spec, overwrite=overwrite)
        return StampResult(signed, payload, algorithm, skipped, {"sign": time.perf_counter() - start})

    def _sign_encoded(self, data: bytes, content: str | None, dst: Path, spec: ManifestSpec, *, overwrite: bool,
                      parent_source: Path | None = None) -> SignResult:
        # The encoded image goes through the one signing path (which sniffs and embeds); a private temp folder
        # beside the output keeps it on the same filesystem and removes it whatever happens.
        with tempfile.TemporaryDirectory(prefix=".synthguard-", dir=dst.parent if dst.parent.exists() else None) \
                as tmp:
            encoded = Path(tmp) / f"encoded{dst.suffix or '.img'}"
            encoded.write_bytes(data)
            return self.session.sign_file(encoded, dst, spec, overwrite=overwrite, content_sha256=content,
                                          parent_source=parent_source)


def stamp_copy(src: Path, dst: Path, spec: ManifestSpec, home: Home, *, identity: IdentitySource = None,
               image_watermark: bool = True, thumbnail: bool = False, overwrite: bool = False,
               audio_watermark: bool | None = None) -> StampResult:
    """``Stamper.stamp_file`` for one file, over a stamper opened from ``home`` (see ``Stamper.from_home``) and
    closed after it. An output that may not be written, an image or audio file that does not decode, or (with
    ``image_watermark``) an image the watermark cannot mark, is refused before an identity is created for it.
    ``audio_watermark`` follows ``image_watermark`` unless given: turning the watermark off turns it off for
    every medium."""
    src, dst = Path(src), Path(dst)
    audio_watermark = image_watermark if audio_watermark is None else audio_watermark
    check_output_path(dst, inputs=(src,), overwrite=overwrite)
    kind = sniff(src).kind
    if not isinstance(identity, Identity) and not IdentityStore(home).exists() and kind is MediaKind.IMAGE:
        # An image the watermark would refuse is refused here too, before the identity is made.
        if image_watermark:
            load_for_marking(src)
        else:
            decode_image(src)
    if not isinstance(identity, Identity) and not IdentityStore(home).exists() and kind is MediaKind.AUDIO:
        from synthguard.core.audio import decode_audio  # noqa: PLC0415

        decode_audio(src)
    with Stamper.from_home(home, identity=identity, image_watermark=image_watermark, thumbnail=thumbnail,
                           audio_watermark=audio_watermark) as stamper:
        return stamper.stamp_file(src, dst, spec, overwrite=overwrite)
