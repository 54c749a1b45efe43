"""Safe loading of untrusted files: type sniffed from content, size limits checked before decoding, full decodes.

Every file SynthGuard touches comes through here first. The extension is never trusted: the type comes from the
first bytes of the file. Images are decoded completely (a truncated or corrupt image is refused, never half-read),
and their declared size is checked against a pixel budget *before* any pixel is decompressed, so a decompression
bomb costs nothing.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
import warnings
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageSequence, UnidentifiedImageError

from synthguard.errors import InputError

# Images above this many pixels are refused before decoding (a 20000x20000 PNG is 400 MP). 100 MP covers the
# largest camera sensors in common use. Override with SYNTHGUARD_MAX_PIXELS.
DEFAULT_MAX_PIXELS = 100_000_000
# Animated images: refuse more frames than this (each frame is decoded and hashed).
MAX_FRAMES = 1000
# Text is read whole; larger text files are refused rather than processed without bound.
MAX_TEXT_BYTES = 64 * 1024 * 1024

ImageFile.LOAD_TRUNCATED_IMAGES = False
_SNIFF_BYTES = 4096


class MediaKind(str, Enum):
    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"
    DOCUMENT = "document"
    TEXT = "text"


@dataclass(frozen=True)
class MediaType:
    mime: str
    kind: MediaKind
    # True when C2PA can embed a manifest in the file itself; otherwise the manifest goes into a .c2pa sidecar.
    embeddable: bool


def _ftyp_brand(head: bytes) -> bytes | None:
    return head[8:12] if len(head) >= 12 and head[4:8] == b"ftyp" else None


def _sniff_binary(head: bytes) -> MediaType | None:
    img, vid, aud, doc = MediaKind.IMAGE, MediaKind.VIDEO, MediaKind.AUDIO, MediaKind.DOCUMENT
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return MediaType("image/png", img, True)
    if head.startswith(b"\xff\xd8\xff"):
        return MediaType("image/jpeg", img, True)
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return MediaType("image/gif", img, True)
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return MediaType("image/webp", img, True)
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return MediaType("audio/wav", aud, True)
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return MediaType("video/avi", vid, True)
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return MediaType("image/tiff", img, True)
    if head.startswith(b"%PDF-"):
        return MediaType("application/pdf", doc, True)
    if head.startswith(b"fLaC"):
        return MediaType("audio/flac", aud, True)
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0
                                   and head[1] & 0x06 != 0):
        return MediaType("audio/mpeg", aud, True)
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0:
        # ADTS: the MPEG sync with layer 0, raw AAC frames (C2PA has no container to embed into).
        return MediaType("audio/aac", aud, False)
    if head.startswith(b"OggS"):
        # Ogg (Opus, Vorbis, ...): C2PA defines no embedding, so the manifest goes into a sidecar.
        return MediaType("audio/ogg", aud, False)
    if head.startswith(b"\xff\x0a") or head.startswith(b"\x00\x00\x00\x0cJXL "):
        return MediaType("image/jxl", img, True)
    brand = _ftyp_brand(head)
    if brand is not None:
        if brand in (b"avif", b"avis"):
            return MediaType("image/avif", img, True)
        if brand in (b"heic", b"heix", b"mif1", b"msf1", b"heim", b"heis"):
            return MediaType("image/heic", img, True)
        if brand == b"qt  ":
            return MediaType("video/quicktime", vid, True)
        if brand in (b"M4A ", b"M4B "):
            return MediaType("audio/mp4", aud, True)
        return MediaType("video/mp4", vid, True)
    return None


# MP4 boxes walked to find the tracks' handler types, and how much of a moov box is read for it.
_MP4_CONTAINERS = (b"moov", b"trak", b"mdia")
_MAX_MOOV_BYTES = 64 * 1024 * 1024


def mp4_handler_types(handle) -> frozenset[bytes] | None:
    """The handler types of an MP4's tracks (b"soun" for sound, b"vide" for video, ...), from moov/trak/mdia/hdlr;
    None when there is no readable moov box (truncated, or over 64 MiB). ``handle``: a seekable binary file."""
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    pos = 0
    while pos + 8 <= size:
        handle.seek(pos)
        header = handle.read(16)
        length, kind = int.from_bytes(header[:4], "big"), header[4:8]
        start = 8
        if length == 1 and len(header) == 16:
            length, start = int.from_bytes(header[8:16], "big"), 16
        elif length == 0:
            length = size - pos
        if length < start:
            return None
        if kind == b"moov":
            if length > _MAX_MOOV_BYTES or pos + length > size:
                return None
            handle.seek(pos)
            return frozenset(_hdlr_types(handle.read(length), 0, length))
        pos += length
    return None


def _hdlr_types(data: bytes, pos: int, end: int):
    while pos + 8 <= end:
        length, kind = int.from_bytes(data[pos:pos + 4], "big"), data[pos + 4:pos + 8]
        if length < 8 or pos + length > end:
            return
        if kind in _MP4_CONTAINERS:
            yield from _hdlr_types(data, pos + 8, pos + length)
        elif kind == b"hdlr" and length >= 24:
            # version/flags (4 bytes), pre_defined (4), then the handler type.
            yield data[pos + 16:pos + 20]
        pos += length


_TEXT_MIMES = {".md": "text/markdown", ".markdown": "text/markdown", ".json": "application/json",
               ".csv": "text/csv", ".html": "text/html", ".htm": "text/html", ".xml": "application/xml"}


_SUFFIX_MIMES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
                 ".gif": "image/gif", ".tif": "image/tiff", ".tiff": "image/tiff", ".avif": "image/avif",
                 ".wav": "audio/wav", ".mp4": "video/mp4", ".mov": "video/quicktime", ".pdf": "application/pdf",
                 ".mp3": "audio/mpeg", ".flac": "audio/flac", ".ogg": "audio/ogg", ".oga": "audio/ogg",
                 ".opus": "audio/ogg", ".m4a": "audio/mp4", ".aac": "audio/aac"}


def mime_for_suffix(suffix: str) -> str | None:
    """The media type a file name's extension promises (None for extensions without a fixed binary format)."""
    return _SUFFIX_MIMES.get(suffix.lower())


# Byte-order marks, longest first (the UTF-32LE mark begins with the UTF-16LE one), with the codec that decodes
# the text after the mark.
_BOMS = ((b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xef\xbb\xbf", "utf-8"),
         (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
# UTF-16 without a mark is told from binary by its zero bytes: text in the Latin range has one in (nearly) every
# high byte and none in the low bytes.
_UTF16_ZERO_SHARE = 0.9


def _bom(data: bytes) -> tuple[str, int] | None:
    for mark, codec in _BOMS:
        if data.startswith(mark):
            return codec, len(mark)
    return None


# Control characters that plain text does not use (tab, line feed, form feed and carriage return it does).
_CONTROLS = re.compile("[\x00-\x08\x0b\x0e-\x1f]")


def _plain_text(text: str) -> bool:
    """No NUL, and at most 1% other control characters."""
    if "\x00" in text:
        return False
    limit = len(text) // 100
    # Stops at the first control character past the limit.
    return all(count <= limit for count, _ in enumerate(_CONTROLS.finditer(text), 1))


def _decodes(data: bytes, codec: str, complete: bool) -> str | None:
    """``data`` decoded; a character cut at the end is allowed when ``data`` is only the start of a file."""
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        if complete or exc.reason not in ("unexpected end of data", "truncated data"):
            return None
        return data[:exc.start].decode(codec, errors="strict")


def text_encoding(data: bytes, *, complete: bool = True) -> str | None:
    """The text encoding of ``data`` (the whole file when ``complete``, else its first bytes), as a Python codec
    name ("utf-8", "utf-8-sig", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"), or None when it is not text
    in one of them: UTF-8, or UTF-16/32 with a byte-order mark, or UTF-16 without one when its zero bytes say so."""
    bom = _bom(data)
    if bom is not None:
        codec, skip = bom
        text = _decodes(data[skip:], codec, complete)
        if codec == "utf-8":
            return "utf-8-sig" if text is not None and _plain_text(text) else None
        # Binary data after FF FE or FE FF is all but never valid UTF-16 (a lone surrogate comes within a few dozen
        # characters), so marked UTF-16/32 text needs only to decode and to hold no NUL.
        return codec if text is not None and "\x00" not in text else None
    if b"\x00" not in data:
        text = _decodes(data, "utf-8", complete)
        return "utf-8" if text is not None and _plain_text(text) else None
    pairs = len(data) // 2
    if pairs == 0:
        return None
    low, high = data[0:2 * pairs:2], data[1:2 * pairs:2]
    for codec, zeros, others in (("utf-16-le", high, low), ("utf-16-be", low, high)):
        if zeros.count(0) >= _UTF16_ZERO_SHARE * pairs and others.count(0) == 0:
            text = _decodes(data, codec, complete)
            if text is not None and _plain_text(text):
                return codec
    return None


def check_input_file(path: Path) -> int:
    """Refuse what is not a readable, non-empty regular file; return its size."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a file")
    if not path.is_file():
        raise InputError(f"{path}: not a regular file")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: not readable (permission denied)")
    size = path.stat().st_size
    if size == 0:
        raise InputError(f"{path}: empty file")
    return size


def sniff(path: Path) -> MediaType:
    """The media type of ``path`` from its content (the extension only picks among text flavours)."""
    path = Path(path)
    check_input_file(path)
    with open(path, "rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    text = MediaType(_TEXT_MIMES.get(path.suffix.lower(), "text/plain"), MediaKind.TEXT, False)
    encoding = text_encoding(head, complete=len(head) < _SNIFF_BYTES)
    # UTF-16 and UTF-32 text first: the UTF-16LE byte-order mark (FF FE) is also an MPEG audio frame sync. UTF-8
    # after the binary formats, whose headers may be plain ASCII.
    if encoding is not None and not encoding.startswith("utf-8"):
        return text
    found = _sniff_binary(head)
    if found is not None and found.mime == "audio/mpeg" and head.startswith(b"ID3") and len(head) >= 10:
        # An ID3v2 tag also precedes FLAC: what follows the tag (its size is four 7-bit bytes) decides.
        tag_end = 10 + (head[6] << 21 | head[7] << 14 | head[8] << 7 | head[9]) + (10 if head[5] & 0x10 else 0)
        with open(path, "rb") as handle:
            handle.seek(tag_end)
            if handle.read(4) == b"fLaC":
                return MediaType("audio/flac", MediaKind.AUDIO, True)
    if found is not None and found.mime == "video/mp4":
        with open(path, "rb") as handle:
            handlers = mp4_handler_types(handle)
        if handlers and handlers <= {b"soun"}:
            return MediaType("audio/mp4", MediaKind.AUDIO, True)
    if found is not None:
        return found
    if encoding is not None:
        return text
    ext = f" (its name says {path.suffix})" if path.suffix else ""
    raise InputError(f"{path}: not a recognised media type{ext}: content matches no supported format")


def max_pixels() -> int:
    value = os.environ.get("SYNTHGUARD_MAX_PIXELS")
    if not value:
        return DEFAULT_MAX_PIXELS
    try:
        return int(value)
    except ValueError:
        raise InputError(f"SYNTHGUARD_MAX_PIXELS={value!r} is not an integer") from None


@dataclass(frozen=True)
class DecodedImage:
    width: int
    height: int
    mode: str
    frames: int
    # The ledger's lookup key for stripped copies (see decode_image): unchanged when only metadata that does not
    # change how the picture renders (a C2PA manifest, XMP, text chunks, EXIF fields other than orientation) is
    # added or removed; changed with the pixels and with anything that changes rendering (colour profile, gamma,
    # chromaticities, sRGB intent, transparency key, orientation).
    content_sha256: str
    # (H, W, 3) uint8 RGB of the first frame, only when asked for (decode_image(..., keep_rgb=True)).
    rgb: np.ndarray | None = field(default=None, repr=False, compare=False)


def _canonical_frame(frame: Image.Image) -> Image.Image:
    if frame.mode in ("P", "PA"):
        return frame.convert("RGBA")
    if frame.mode == "1":
        return frame.convert("L")
    return frame


def _pixel_digest():
    return hashlib.sha256(b"synthguard-pixels-v1")


# Rows per strip when an image is copied out of Pillow: about this many pixels at a time (a whole-image tobytes()
# would hold its pieces and their join at once: several bytes per pixel more at the peak).
_STRIP_PIXELS = 1 << 22


def _row_strips(image: Image.Image):
    """The image's raw bytes (``tobytes()``) in full-width strips of rows, top to bottom: concatenated, exactly
    ``image.tobytes()``."""
    width, height = image.size
    step = max(1, _STRIP_PIXELS // max(width, 1))
    for top in range(0, height, step):
        yield image.crop((0, top, width, min(height, top + step))).tobytes()


def _rgb_array(image: Image.Image) -> np.ndarray:
    """(H, W, 3) uint8 of a loaded RGB image, filled strip by strip."""
    width, height = image.size
    out = np.empty((height, width, 3), np.uint8)
    top = 0
    for strip in _row_strips(image):
        rows = len(strip) // (3 * width) if width else 0
        out[top:top + rows] = np.frombuffer(strip, np.uint8).reshape(rows, width, 3)
        top += rows
    return out


def _update_pixel_digest(digest, mode: str, width: int, height: int, chunks) -> None:
    """One frame into the content hash: its mode and size, then its raw bytes (``chunks``, in order)."""
    digest.update(f"|{mode}|{width}x{height}|".encode())
    for chunk in chunks:
        digest.update(chunk)


def array_content_sha256(rgb: np.ndarray) -> str:
    """The content hash :func:`decode_image` gives a lossless (PNG/WebP-lossless/TIFF) file of these pixels that
    carries none of the rendering properties (no colour profile, gamma, chromaticities, sRGB intent, transparency
    key, nor an orientation other than 1): a file written from ``rgb`` with an ICC profile or an EXIF orientation
    hashes differently, as it renders differently."""
    if rgb.dtype != np.uint8 or rgb.ndim not in (2, 3):
        raise InputError(f"expected a uint8 (H, W) or (H, W, C) array, got {rgb.dtype} {rgb.shape}")
    mode = "L" if rgb.ndim == 2 else {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}.get(rgb.shape[2])
    if mode is None:
        raise InputError(f"expected 1 to 4 channels, got {rgb.shape[2]}")
    digest = _pixel_digest()
    _update_pixel_digest(digest, mode, rgb.shape[1], rgb.shape[0], (np.ascontiguousarray(rgb).reshape(-1).data,))
    return digest.hexdigest()


# Rendering properties of lossless images, hashed after the pixels (see decode_image). The trailer's tag can never
# be read as a frame header ("|mode|WxH|"), and every value is length-prefixed, so the encoding is unambiguous.
_RENDERING_TAG = b"|rendering-v1|"
# PNG chunks Pillow does not read that set the colour space (cICP) or HDR tone mapping (mDCv, cLLi), with the
# length the PNG specification (third edition) gives them; renderers read them only before the image data.
_PNG_RAW_RENDERING_CHUNKS = {b"cICP": 4, b"mDCv": 24, b"cLLi": 8}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TIFF_ORIENTATION = 0x0112
_TIFF_ICC_PROFILE = 34675


def _png_raw_rendering_chunks(path: Path) -> list[tuple[str, bytes]]:
    """cICP / mDCv / cLLi before the first IDAT (the first of each), read from the chunk headers: each chunk's data
    is skipped unread unless it is one of these. One whose length is not the specified one renders as if absent in
    a conforming decoder, but is kept apart (as "<name>-malformed" with its length) rather than trusted to."""
    found: dict[bytes, bytes] = {}
    malformed: dict[bytes, int] = {}
    with open(path, "rb") as handle:
        if handle.read(8) != _PNG_SIGNATURE:
            return []
        while True:
            header = handle.read(8)
            if len(header) < 8:
                break
            length, kind = int.from_bytes(header[:4], "big"), header[4:]
            if kind in (b"IDAT", b"IEND"):
                break
            expected = _PNG_RAW_RENDERING_CHUNKS.get(kind)
            if expected is not None and kind not in found and kind not in malformed:
                if length == expected:
                    found[kind] = handle.read(length)
                    handle.seek(4, os.SEEK_CUR)
                    continue
                malformed[kind] = length
            handle.seek(length + 4, os.SEEK_CUR)
    props = []
    for kind in _PNG_RAW_RENDERING_CHUNKS:  # a fixed order, whatever the file's
        if kind in found:
            props.append((kind.decode(), found[kind]))
        elif kind in malformed:
            props.append((f"{kind.decode()}-malformed", str(malformed[kind]).encode()))
    return props


class _UnreadableExif(ValueError):
    pass


def _exif_orientation(exif: bytes) -> int | None:
    """The Orientation tag of IFD0 of a raw EXIF block (with or without the "Exif\\0\\0" prefix), None when absent;
    _UnreadableExif when the block is not a TIFF structure this can walk. Read here rather than with
    Image.getexif(), which also takes an orientation from XMP (metadata, not rendering)."""
    data = re.sub(b"^(Exif\x00\x00){1,2}", b"", exif)
    if not data:
        return None
    order = {b"II*\x00": "<", b"MM\x00*": ">"}.get(data[:4])
    if order is None:
        raise _UnreadableExif("no TIFF header")
    try:
        (ifd,) = struct.unpack_from(order + "I", data, 4)
        (count,) = struct.unpack_from(order + "H", data, ifd)
        if ifd + 2 + 12 * count > len(data):
            raise _UnreadableExif("IFD0 runs past the end of the block")
        for i in range(count):
            entry = ifd + 2 + 12 * i
            tag, kind, n = struct.unpack_from(order + "HHI", data, entry)
            if tag != _TIFF_ORIENTATION:
                continue
            if n >= 1 and kind in (3, 4):  # SHORT (the specified type) or LONG
                return struct.unpack_from(order + ("H" if kind == 3 else "I"), data, entry + 8)[0]
            raise _UnreadableExif(f"orientation of type {kind} x {n}")
    except struct.error as exc:
        raise _UnreadableExif(str(exc)) from None
    return None


def _plain(value) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value).encode()
    return str(value).encode()


def _rendering_properties(frame: Image.Image, image_format: str | None, path: Path) -> list[tuple[str, bytes]]:
    """What changes how this (loaded) frame renders beyond its decoded pixels, as (name, canonical bytes), in a
    fixed order; empty when it carries none of them."""
    info = frame.info
    props: list[tuple[str, bytes]] = []
    # PNG gAMA / cHRM (Pillow gives value / 100000; the file's integers are restored) and the sRGB intent.
    if "gamma" in info:
        props.append(("gAMA", str(round(info["gamma"] * 100000)).encode()))
    if "chromaticity" in info:
        props.append(("cHRM", ",".join(str(round(v * 100000)) for v in info["chromaticity"]).encode()))
    if "srgb" in info:
        props.append(("sRGB", str(info["srgb"]).encode()))
    if image_format == "PNG":
        props += _png_raw_rendering_chunks(path)
    # The colour profile. A TIFF page's own tag: Pillow's info keeps an earlier page's profile for a page without one.
    if image_format == "TIFF":
        icc, has_icc = frame.tag_v2.get(_TIFF_ICC_PROFILE), _TIFF_ICC_PROFILE in frame.tag_v2
    else:
        icc, has_icc = info.get("icc_profile"), "icc_profile" in info
    if isinstance(icc, bytes) and icc:
        props.append(("icc", icc))
    elif has_icc:
        # Pillow keeps the key with None when a PNG iCCP profile does not decompress; an empty or mistyped one is no
        # profile a renderer can use either, but not proof that it renders as none.
        props.append(("icc-unreadable", b"" if icc is None else _plain(icc)))
    # A transparency key outside the pixels: palette transparency is already in the RGBA conversion.
    if frame.mode not in ("P", "PA") and info.get("transparency") is not None:
        props.append(("tRNS", _plain(info["transparency"])))
    # Orientation (1 and absent render alike). Pillow applies a TIFF page's own tag when it loads the page (the
    # pixels carry it) and then drops the tag; a tag still there was not applied.
    if image_format == "TIFF":
        orientation = frame.tag_v2.get(_TIFF_ORIENTATION)
        if orientation not in (None, 1):
            props.append(("orientation", _plain(orientation)))
    elif info.get("exif"):
        exif = bytes(info["exif"])
        try:
            orientation = _exif_orientation(exif)
        except _UnreadableExif:
            props.append(("exif-unreadable", exif))
        else:
            if orientation not in (None, 1):
                props.append(("orientation", str(orientation).encode()))
    return props


def _update_rendering_digest(digest, frame_index: int, props: list[tuple[str, bytes]]) -> None:
    digest.update(_RENDERING_TAG + f"{frame_index}|".encode())
    for name, value in props:
        digest.update(f"{name}={len(value)}:".encode())
        digest.update(value)


_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"


def _is_provenance_metadata(marker: int, head: bytes) -> bool:
    """Segments that say things *about* the image without changing how it renders: C2PA/JUMBF (APP11), XMP (APP1
    with the XMP header) and comments. APP0 (JFIF), EXIF (orientation), ICC (APP2) and Adobe (APP14, colour
    transform) all change the rendered picture, so they stay in the hash."""
    return marker in (0xEB, 0xFE) or (marker == 0xE1 and head.startswith(_XMP_HEADER))


def jpeg_coded_data_sha256(data: bytes) -> str:
    """sha256 of a JPEG's coded image data: every segment but C2PA, XMP and comments, then the scans up to EOI.

    A JPEG cannot be re-saved losslessly, so for JPEG the useful "same picture" key is its coded data: it survives
    adding or removing a C2PA manifest or XMP, and changes with any re-encode, pixel edit, or a change of a
    segment that alters rendering (orientation, colour profile, colour transform).
    """
    digest = hashlib.sha256(b"synthguard-jpeg-coded-v1")
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise InputError("corrupt JPEG: marker expected")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker == 0xDA:  # start of scan: the rest is coded data (and further tables/scans) up to the last EOI
            end = data.rfind(b"\xff\xd9")
            if end < pos:
                raise InputError("truncated JPEG: no end-of-image marker")
            digest.update(data[pos:end + 2])
            return digest.hexdigest()
        if not _is_provenance_metadata(marker, data[pos + 4:pos + 4 + 32]):
            digest.update(data[pos:pos + 2 + length])
        pos += 2 + length
    raise InputError("truncated JPEG: no image data")


def decode_image(path: Path, *, keep_rgb: bool = False) -> DecodedImage:
    """Decode an image completely and hash its content; refuse bombs, truncation and corruption with InputError.

    JPEG without ``keep_rgb`` is decoded at 1/8 scale: libjpeg still entropy-decodes every block (so truncation and
    corrupt scans are caught), but skips most of the inverse DCT; its content hash is the coded-data hash.

    Other images (PNG, WebP, TIFF, GIF, ...): sha256 over ``synthguard-pixels-v1``, then each frame's
    ``|mode|WxH|`` and decoded pixels (palette images as RGBA, so palette transparency is in the pixels), then,
    only when there is any, the rendering trailer of the first frame (of every page for TIFF, whose pages each carry
    their own tags): ``|rendering-v1|<frame>|`` and ``name=<length>:<value>`` for each property present, in this
    order: ``gAMA``, ``cHRM`` (the file's integers), ``sRGB`` (intent), ``cICP`` / ``mDCv`` / ``cLLi`` (PNG, raw
    bytes), ``icc`` (the decompressed profile), ``tRNS`` (the transparency key of a non-palette image),
    ``orientation`` (when not 1); ``icc-unreadable``, ``exif-unreadable`` and ``<chunk>-malformed`` (below) take
    their property's place. So an image with none of them hashes exactly as its pixels do
    (:func:`array_content_sha256`), and one whose gamma, profile or orientation changed does not.

    Not hashed, as it does not change rendering: a C2PA manifest (caBX), XMP, text chunks (tEXt, zTXt, iTXt), tIME,
    pHYs, and every EXIF field but the orientation. The orientation comes from the EXIF block (PNG eXIf, WebP EXIF,
    ...); a block that cannot be walked is hashed whole as ``exif-unreadable`` (it cannot be told what a renderer
    would read there, so a changed one is not the same content); a profile Pillow could not decompress counts as
    ``icc-unreadable``; a cICP, mDCv or cLLi of the wrong length counts by its length as ``<chunk>-malformed``. A
    PNG profile that decompresses past Pillow's 1 MiB limit is refused (InputError). A TIFF page's orientation is
    applied to its pixels by Pillow when it loads them; only one Pillow left unapplied is hashed as a property.
    """
    path = Path(path)
    budget = max_pixels()
    try:
        with warnings.catch_warnings():
            # Our own budget below decides; Pillow's warning would only add noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = img.size
                if width <= 0 or height <= 0:
                    raise InputError(f"{path}: image declares an empty size {width}x{height}")
                n_frames = getattr(img, "n_frames", 1)
                if n_frames > MAX_FRAMES:
                    raise InputError(f"{path}: {n_frames} frames, over the limit of {MAX_FRAMES}")
                # Every frame is decoded: an animation's frames share one budget.
                if width * height * n_frames > budget:
                    raise InputError(
                        f"{path}: image is {width}x{height}" + (f" x {n_frames} frames" if n_frames > 1 else "")
                        + f" ({width * height * n_frames / 1e6:.0f} MP), over the {budget / 1e6:.0f} MP limit (a "
                        "decompression bomb or a very large image; raise SYNTHGUARD_MAX_PIXELS to allow it)")
                if img.format == "JPEG":
                    mode = img.mode
                    if not keep_rgb:
                        img.draft(img.mode, (max(1, width // 8), max(1, height // 8)))
                    img.load()
                    rgb = _rgb_array(img if img.mode == "RGB" else img.convert("RGB")) if keep_rgb else None
                    try:
                        content = jpeg_coded_data_sha256(path.read_bytes())
                    except InputError as exc:
                        raise InputError(f"{path}: {exc}") from None
                    return DecodedImage(width, height, mode, 1, content, rgb)
                digest = _pixel_digest()
                mode, rgb = None, None
                rendering: list[tuple[int, list[tuple[str, bytes]]]] = []
                for index, frame in enumerate(ImageSequence.Iterator(img)):
                    frame.load()
                    if index == 0 or img.format == "TIFF":
                        props = _rendering_properties(frame, img.format, path)
                        if props:
                            rendering.append((index, props))
                    canon = _canonical_frame(frame)
                    if mode is None and keep_rgb:
                        rgb = _rgb_array(canon if canon.mode == "RGB" else canon.convert("RGB"))
                    mode = mode or canon.mode
                    # An RGB first frame's bytes are the array's, already copied out once.
                    shared = rgb is not None and canon.mode == "RGB" and index == 0
                    _update_pixel_digest(digest, canon.mode, canon.size[0], canon.size[1],
                                         (rgb.data,) if shared else _row_strips(canon))
                for index, props in rendering:
                    _update_rendering_digest(digest, index, props)
    except InputError:
        raise
    except Image.DecompressionBombError as exc:
        raise InputError(f"{path}: refused before decoding, a decompression bomb or a very large image ({exc})"
                         ) from None
    except UnidentifiedImageError as exc:
        raise InputError(f"{path}: cannot decode image: {exc}") from None
    except Exception as exc:  # noqa: BLE001 (Pillow's decoders report corruption as OSError, ValueError,
        # SyntaxError, EOFError, zlib.error, MemoryError, and RuntimeError from the AVIF plugin: all bad input)
        raise InputError(f"{path}: corrupt or truncated image ({type(exc).__name__}: {exc})") from None
    return DecodedImage(width, height, mode or "", n_frames, digest.hexdigest(), rgb)


def read_text(path: Path) -> str:
    """Read a text file whole (UTF-8, or UTF-16/32 as ``text_encoding`` finds it; a byte-order mark is not part of
    the text), refusing binary content, other encodings and sizes past MAX_TEXT_BYTES."""
    size = check_input_file(path)
    if size > MAX_TEXT_BYTES:
        raise InputError(f"{path}: {size / 1e6:.0f} MB of text, over the {MAX_TEXT_BYTES / 1e6:.0f} MB limit")
    data = Path(path).read_bytes()
    bom = _bom(data)
    codec = bom[0] if bom is not None else text_encoding(data) if b"\x00" in data else "utf-8"
    if codec is None:
        raise InputError(f"{path}: binary content (NUL bytes), not text")
    # A view past the byte-order mark: the text is decoded without first copying the file's bytes.
    body = memoryview(data)[bom[1]:] if bom is not None else data
    try:
        text = str(body, codec)
    except UnicodeDecodeError as exc:
        offset = exc.start + (bom[1] if bom is not None else 0)
        name = "UTF-8" if codec == "utf-8" else codec.upper()
        raise InputError(f"{path}: not {name} text (invalid byte at offset {offset})") from None
    if "\x00" in text:
        raise InputError(f"{path}: binary content (NUL characters), not text")
    return text


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
