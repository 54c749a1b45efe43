"""Safe loading of untrusted files: type sniffed from content, size limits checked before decoding, full decodes.

Every file SynthGuard touches comes through here first. The extension is never trusted: the type comes from the
first bytes of the file. Images are decoded completely (a truncated or corrupt image is refused, never half-read),
and their declared size is checked against a pixel budget *before* any pixel is decompressed, so a decompression
bomb costs nothing.
"""

from __future__ import annotations

import hashlib
import os
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
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return MediaType("audio/wav", aud, True)
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return MediaType("video/avi", vid, True)
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return MediaType("image/tiff", img, True)
    if head.startswith(b"%PDF-"):
        return MediaType("application/pdf", doc, True)
    if head.startswith(b"fLaC"):
        return MediaType("audio/flac", aud, True)
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return MediaType("audio/mpeg", aud, True)
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


_TEXT_MIMES = {".md": "text/markdown", ".markdown": "text/markdown", ".json": "application/json",
               ".csv": "text/csv", ".html": "text/html", ".htm": "text/html", ".xml": "application/xml"}


_SUFFIX_MIMES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
                 ".gif": "image/gif", ".tif": "image/tiff", ".tiff": "image/tiff", ".avif": "image/avif",
                 ".wav": "audio/wav", ".mp4": "video/mp4", ".mov": "video/quicktime", ".pdf": "application/pdf",
                 ".mp3": "audio/mpeg", ".flac": "audio/flac"}


def mime_for_suffix(suffix: str) -> str | None:
    """The media type a file name's extension promises (None for extensions without a fixed binary format)."""
    return _SUFFIX_MIMES.get(suffix.lower())


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of a full sniffing window is still text; anywhere else it is not.
        if len(head) < _SNIFF_BYTES or exc.reason != "unexpected end of data":
            return False
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13))
    return controls <= len(head) // 100


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
    found = _sniff_binary(head)
    if found is not None:
        return found
    if _looks_like_text(head):
        return MediaType(_TEXT_MIMES.get(path.suffix.lower(), "text/plain"), MediaKind.TEXT, False)
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
    # The ledger's lookup key for stripped copies (see content_sha256 of JPEG vs other images below): unchanged when
    # only metadata (a C2PA manifest, EXIF, XMP) is added or removed.
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


def _update_pixel_digest(digest, mode: str, width: int, height: int, data) -> None:
    digest.update(f"|{mode}|{width}x{height}|".encode())
    digest.update(data)


def array_content_sha256(rgb: np.ndarray) -> str:
    """The content hash :func:`decode_image` gives a lossless (PNG/WebP-lossless/TIFF) file of these pixels."""
    if rgb.dtype != np.uint8 or rgb.ndim not in (2, 3):
        raise InputError(f"expected a uint8 (H, W) or (H, W, C) array, got {rgb.dtype} {rgb.shape}")
    mode = "L" if rgb.ndim == 2 else {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}.get(rgb.shape[2])
    if mode is None:
        raise InputError(f"expected 1 to 4 channels, got {rgb.shape[2]}")
    digest = _pixel_digest()
    _update_pixel_digest(digest, mode, rgb.shape[1], rgb.shape[0], np.ascontiguousarray(rgb).reshape(-1).data)
    return digest.hexdigest()


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
                    rgb = np.asarray(img.convert("RGB")) if keep_rgb else None
                    try:
                        content = jpeg_coded_data_sha256(path.read_bytes())
                    except InputError as exc:
                        raise InputError(f"{path}: {exc}") from None
                    return DecodedImage(width, height, mode, 1, content, rgb)
                digest = _pixel_digest()
                mode, rgb = None, None
                for frame in ImageSequence.Iterator(img):
                    frame.load()
                    canon = _canonical_frame(frame)
                    if mode is None and keep_rgb:
                        rgb = np.asarray(canon.convert("RGB"))
                    mode = mode or canon.mode
                    _update_pixel_digest(digest, canon.mode, canon.size[0], canon.size[1], canon.tobytes())
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
    """Read a UTF-8 text file whole, refusing binary content and sizes past MAX_TEXT_BYTES."""
    size = check_input_file(path)
    if size > MAX_TEXT_BYTES:
        raise InputError(f"{path}: {size / 1e6:.0f} MB of text, over the {MAX_TEXT_BYTES / 1e6:.0f} MB limit")
    data = Path(path).read_bytes()
    if b"\x00" in data:
        raise InputError(f"{path}: binary content (NUL bytes), not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (invalid byte at offset {exc.start})") from None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
