"""Unsigned AI declarations that image files carry in their metadata, read without trusting them.

What generators and image services write beside the pixels (see shared/reference/real-world-signals.md, "Metadata
that generators write"):

- the IPTC digital source type (``Iptc4xmpExt:DigitalSourceType``) in XMP: JPEG APP1, PNG ``iTXt``
  ``XML:com.adobe.xmp``, WebP ``XMP `` chunk; the vocabulary of C2PA's ``digitalSourceType``;
- Stable Diffusion web UI (AUTOMATIC1111, Forge): PNG text ``parameters``, or EXIF UserComment in JPEG and WebP;
- ComfyUI: PNG text ``prompt`` (the API graph) and ``workflow`` (the editor graph), both JSON;
- InvokeAI: ``invokeai_metadata`` (older: ``sd-metadata``, ``Dream``); NovelAI: ``Software`` = ``NovelAI`` with
  ``Source`` and ``Comment``; Fooocus: ``parameters`` as JSON, with ``fooocus_scheme``;
- EXIF ``Software`` or XMP ``CreatorTool`` naming a generator: a hint only (editors and converters write these too).

Nothing here is signed: anyone can add, change or strip it. A declaration of AI is a claim worth reporting, never
proof; its absence says nothing. Of the IPTC vocabulary, only ``trainedAlgorithmicMedia`` and
``compositeWithTrainedAlgorithmicMedia`` declare generative AI (``DigitalSourceType.is_generative_ai``):
``algorithmicMedia`` is made by an algorithm not trained on sampled data, ``algorithmicallyEnhanced`` is a minor
algorithmic correction, ``compositeSynthetic`` may contain any synthetic element.

The containers are walked chunk by chunk (no pixel is decoded, nothing executed or unpickled); what is read is capped
(``MAX_BLOCK_BYTES`` a block, ``MAX_TOTAL_BYTES`` a file, ``MAX_BLOCKS`` chunks walked), compressed text is inflated
to the cap only, XML with a DOCTYPE or ENTITY is refused and its nesting bounded, JSON too deep is refused; whatever
was cut or refused is named in the signal's ``notes``.
"""

from __future__ import annotations

import json
import os
import re
import struct
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import BinaryIO
from xml.parsers import expat

from synthguard.core.media import MediaType, check_input_file, sniff
from synthguard.errors import InputError
from synthguard.provenance.manifest import DigitalSourceType, source_type_is_ai

MAX_BLOCK_BYTES = 2 * 1024 * 1024  # one metadata block (a text chunk after inflating, an XMP packet, an EXIF block)
MAX_TOTAL_BYTES = 8 * 1024 * 1024  # all metadata blocks of one file together
MAX_BLOCKS = 100_000  # chunks or segments walked in one file (a 100 MP PNG has some 40,000 IDAT chunks of 8 KiB)
MAX_VALUES = 16  # source types or creator tools kept from one XMP packet
MAX_LISTED = 100  # blocks named in a signal's blocks_read
MAX_NOTES = 20  # notes kept for one file
MAX_XML_DEPTH = 64  # an XMP packet is about 6 elements deep
MAX_FIELD_CHARS = 200  # a model, generator, key or source type as reported
MAX_SETTINGS_LINE = 64 * 1024  # the web UI's "Steps: ..." line

IPTC_EXT = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
XMP_BASIC = "http://ns.adobe.com/xap/1.0/"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_SOURCE_TYPE = f"{IPTC_EXT} DigitalSourceType"  # expat's "namespace localname" form
_CREATOR_TOOL = f"{XMP_BASIC} CreatorTool"
_RESOURCE = f"{RDF} resource"

# A Software / CreatorTool value naming one of these is a hint (whole words, any case).
_GENERATOR_NAMES = re.compile(r"\b(NovelAI|ComfyUI|AUTOMATIC1111|Stable Diffusion|Fooocus|InvokeAI|Midjourney"
                              r"|DALL[-\u00b7 ]?E|Adobe Firefly|Draw Things|DiffusionBee|Imagen|Leonardo\.?Ai"
                              r"|Ideogram|SD\.Next)\b", re.IGNORECASE)


class MetadataFormat(str, Enum):
    """Which convention a declaration follows."""

    IPTC_SOURCE_TYPE = "iptc-digital-source-type"
    SD_WEBUI = "sd-webui-parameters"
    COMFYUI_PROMPT = "comfyui-prompt"
    COMFYUI_WORKFLOW = "comfyui-workflow"
    INVOKEAI = "invokeai-metadata"
    INVOKEAI_LEGACY = "invokeai-legacy"  # sd-metadata (JSON) or Dream (a command line)
    NOVELAI = "novelai"
    FOOOCUS = "fooocus"
    SOFTWARE_TAG = "software-tag"  # EXIF Software / XMP CreatorTool / PNG Software naming a generator: a hint


# What each format is called in a sentence, and the verb that agrees with it.
_WORDS = {MetadataFormat.SD_WEBUI: ("parameters", "declare"), MetadataFormat.FOOOCUS: ("parameters", "declare"),
          MetadataFormat.COMFYUI_PROMPT: ("prompt graph", "declares"),
          MetadataFormat.COMFYUI_WORKFLOW: ("workflow graph", "declares"),
          MetadataFormat.INVOKEAI: ("metadata", "declares"), MetadataFormat.INVOKEAI_LEGACY: ("metadata", "declares"),
          MetadataFormat.NOVELAI: ("metadata", "declares")}
_UNSIGNED = "anyone can add or remove such metadata, so it proves nothing by itself"


@dataclass(frozen=True)
class Declaration:
    """One finding: where it sits, which convention, what it says."""

    format: MetadataFormat
    location: str  # the container block: "PNG tEXt 'parameters'", "JPEG APP1 XMP", "WebP EXIF UserComment", ...
    declares_ai: bool  # the block says the image was made by generative AI (never for a hint)
    generator: str | None = None  # "Stable Diffusion web UI", "ComfyUI", ... or the tag's value for a hint
    model: str | None = None  # the checkpoint or model named (the first one, for graphs that load several)
    seed: int | None = None  # the first seed given
    source_type: str | None = None  # the IPTC digital source type as written (a URI, usually)
    truncated: bool = False  # the block was cut at a cap; this was read from its start

    @property
    def hint(self) -> bool:
        """A software tag naming a generator: weaker than a declaration, and not one."""
        return self.format is MetadataFormat.SOFTWARE_TAG

    def to_dict(self) -> dict:
        return {"format": self.format.value, "location": self.location, "declares_ai": self.declares_ai,
                "hint": self.hint, "generator": self.generator, "model": self.model, "seed": self.seed,
                "source_type": self.source_type, "truncated": self.truncated}

    @classmethod
    def from_dict(cls, data: dict) -> Declaration:
        return cls(MetadataFormat(data["format"]), data["location"], data["declares_ai"], data["generator"],
                   data["model"], data["seed"], data["source_type"], data["truncated"])

    def describe(self) -> str:
        cut = " (from a block cut short)" if self.truncated else ""
        if self.hint:
            return (f"unsigned metadata: {self.location} names {self.generator!r}, a known image generator{cut}: a "
                    "hint only, not an AI declaration (editors and converters write such tags too)")
        if self.format is MetadataFormat.IPTC_SOURCE_TYPE:
            try:
                code = DigitalSourceType.parse(self.source_type).code
            except ValueError:
                code = repr(self.source_type)
            kind = "generative AI" if self.declares_ai else "not generative AI"
            tail = _UNSIGNED if self.declares_ai else "unsigned, so it proves nothing by itself"
            return f"unsigned metadata: {self.location} declares IPTC digital source type {code} ({kind}){cut}; {tail}"
        noun, verb = _WORDS[self.format]
        facts = ", ".join(([f"model {self.model}"] if self.model else [])
                          + ([f"seed {self.seed}"] if self.seed is not None else []))
        what = f"{self.generator} {noun} in {self.location}" + (f" ({facts})" if facts else "") + cut
        if self.declares_ai:
            return f"unsigned metadata: {what} {verb} AI generation; {_UNSIGNED}"
        # Only a ComfyUI graph is read without declaring: one that loads and saves images but samples nothing.
        return f"unsigned metadata: {what} has no sampler node (an upscale or edit graph): no AI generation declared"


@dataclass(frozen=True)
class MetadataSignal:
    """The unsigned declarations of one file: what was found, which blocks were read, what could not be read."""

    declarations: tuple[Declaration, ...] = ()
    blocks_read: tuple[str, ...] = ()  # the metadata blocks read, e.g. ("JPEG APP1 EXIF", "JPEG APP1 XMP")
    truncated: bool = False  # a cap was reached or the file ended inside a block (the notes say where)
    notes: tuple[str, ...] = ()  # every block cut, refused or unreadable, and why
    skipped: str | None = None  # why nothing was read (a format this reader does not know)

    @property
    def declares_ai(self) -> bool:
        """Some block declares generative AI (hints do not count)."""
        return any(d.declares_ai for d in self.declarations)

    @property
    def hints(self) -> tuple[Declaration, ...]:
        return tuple(d for d in self.declarations if d.hint)

    def to_dict(self) -> dict:
        return {"declares_ai": self.declares_ai, "declarations": [d.to_dict() for d in self.declarations],
                "blocks_read": list(self.blocks_read), "truncated": self.truncated, "notes": list(self.notes),
                "skipped": self.skipped}

    @classmethod
    def from_dict(cls, data: dict | None) -> MetadataSignal | None:
        if data is None:
            return None
        return cls(tuple(Declaration.from_dict(d) for d in data["declarations"]), tuple(data["blocks_read"]),
                   data["truncated"], tuple(data["notes"]), data["skipped"])

    def describe(self) -> tuple[str, ...]:
        if self.skipped:
            return (f"metadata not read: {self.skipped}",)
        lines = [d.describe() for d in self.declarations]
        if not lines:
            kinds = Counter(location.split(" '")[0] for location in self.blocks_read)  # "PNG tEXt 'date'" -> "PNG tEXt"
            read = ("read " + ", ".join(k + (f" ({n})" if n > 1 else "") for k, n in kinds.items())
                    if kinds else "no EXIF, XMP or text metadata")
            lines.append(f"unsigned metadata: no AI declaration or generator tag ({read}); metadata is easily "
                         "stripped, so its absence proves nothing")
        if self.notes:
            lines.append("metadata not fully read: " + "; ".join(self.notes))
        return tuple(lines)


def read_declarations(path: Path, *, media: MediaType | None = None) -> MetadataSignal:
    """The unsigned AI declarations in ``path`` (PNG, JPEG or WebP; other types give a signal with ``skipped``).
    ``media``: the type already sniffed from the file's content, if the caller has it. A missing or unreadable file
    raises ``InputError``; a damaged or hostile container gives a signal whose ``notes`` say what was not read."""
    path = Path(path)
    check_input_file(path)
    media = media or sniff(path)
    walk = {"image/png": _png_blocks, "image/jpeg": _jpeg_blocks, "image/webp": _webp_blocks}.get(media.mime)
    if walk is None:
        return MetadataSignal(skipped=f"declarations are read from PNG, JPEG and WebP files, not {media.mime}")
    try:
        with open(path, "rb") as handle:
            source = _Source(handle)
            blocks = list(walk(source))
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    found = sorted(_interpret(blocks, source), key=lambda d: d.hint)  # declarations first, then hints
    listed = tuple(b.location for b in blocks[:MAX_LISTED])
    if len(blocks) > MAX_LISTED:
        listed += (f"and {len(blocks) - MAX_LISTED} more",)
    return MetadataSignal(tuple(found), listed, source.truncated, source.all_notes())


# ------------------------------------------------------------------------------------------------- containers
@dataclass(frozen=True)
class _Block:
    location: str  # "PNG tEXt 'parameters'", "JPEG APP1 EXIF", "WebP XMP"
    kind: str  # "text" (key + str), "xmp" (bytes), "exif" (bytes: a TIFF structure)
    data: bytes | str
    key: str = ""
    cut: bool = False


class _Source:
    """The file being walked, with the caps on what may still be read and the notes of what was not."""

    def __init__(self, handle: BinaryIO):
        self.handle = handle
        self.size = os.fstat(handle.fileno()).st_size
        self.left = MAX_TOTAL_BYTES
        self.walked = 0
        self.stopped = False  # the file ended inside a block, or the per-file cap was reached
        self.truncated = False
        self.notes: list[str] = []

    def note(self, line: str, *, truncated: bool = False) -> None:
        self.notes.append(line)
        self.truncated = self.truncated or truncated

    def all_notes(self) -> tuple[str, ...]:
        more = len(self.notes) - MAX_NOTES
        return tuple(self.notes[:MAX_NOTES]) + ((f"and {more} more notes",) if more > 0 else ())

    def step(self, container: str) -> bool:
        """Count one more chunk walked; False (with a note) once the cap is reached."""
        self.walked += 1
        if self.walked > MAX_BLOCKS:
            self.note(f"{container}: more than {MAX_BLOCKS} chunks; the rest was not read", truncated=True)
            return False
        return True

    def read(self, size: int, what: str) -> tuple[bytes, bool]:
        """Up to ``size`` bytes from here, cut at the caps; (data, cut), with a note when cut."""
        want = min(size, MAX_BLOCK_BYTES, self.left)
        data = self.handle.read(want)
        self.left -= len(data)
        if len(data) < want:
            self.stopped = True
            self.note(f"{what}: the file ends inside it", truncated=True)
            return data, True
        if want < size and self.left == 0:  # nothing more will be read from this file
            self.stopped = True
            self.note(f"{what}: {size} bytes, read to the per-file cap; the rest of the file was not read",
                      truncated=True)
            return data, True
        if want < size:
            self.note(f"{what}: {size} bytes, read to the {MAX_BLOCK_BYTES // 2**20} MiB cap", truncated=True)
            return data, True
        return data, False

    def inflate(self, data: bytes, what: str) -> tuple[bytes, bool] | None:
        """zlib data inflated to the caps (a compression bomb stops there); None when corrupt."""
        inflater = zlib.decompressobj()
        try:
            out = inflater.decompress(data, max(1, min(MAX_BLOCK_BYTES, self.left)))
        except zlib.error as exc:
            self.note(f"{what}: corrupt compressed text ({exc})")
            return None
        self.left -= len(out)
        if inflater.unconsumed_tail:
            self.note(f"{what}: inflated text cut at {len(out)} bytes", truncated=True)
            return out, True
        if not inflater.eof:
            self.note(f"{what}: compressed text ends early", truncated=True)
            return out, True
        return out, False


def _png_blocks(src: _Source) -> Iterator[_Block]:
    src.handle.seek(8)
    keys: set[str] = set()
    while src.step("PNG"):
        head = src.handle.read(8)
        if len(head) < 8:
            src.note("PNG: the file ends before IEND", truncated=True)
            return
        length, kind = struct.unpack(">I4s", head)
        if length > 0x7FFFFFFF:
            src.note(f"PNG: a {_clean(kind.decode('latin-1'))!r} chunk declares {length} bytes, over PNG's limit; "
                     "the rest was not read", truncated=True)
            return
        start = src.handle.tell()
        if kind in (b"tEXt", b"zTXt", b"iTXt"):
            data, cut = src.read(length, f"PNG {kind.decode()} chunk")
            text = _png_text(kind.decode(), data, cut, src)
            if text is not None:
                key, value, cut = text
                if key in keys:
                    src.note(f"PNG: another {kind.decode()} chunk named {key!r}; the first was read")
                else:
                    keys.add(key)
                    kind_of = "xmp" if key == "XML:com.adobe.xmp" else "text"
                    payload = value.encode("utf-8") if kind_of == "xmp" else value
                    yield _Block(f"PNG {kind.decode()} {key!r}", kind_of, payload, key, cut)
        elif kind == b"eXIf":
            data, cut = src.read(length, "PNG eXIf chunk")
            yield _Block("PNG eXIf", "exif", data, cut=cut)
        elif kind == b"IEND":
            return
        if src.stopped:
            return
        src.handle.seek(start + length + 4)  # the chunk and its CRC


def _png_text(kind: str, data: bytes, cut: bool, src: _Source) -> tuple[str, str, bool] | None:
    """(key, text, cut) of a tEXt / zTXt / iTXt chunk; None with a note when malformed."""
    raw_key, sep, rest = data.partition(b"\0")
    if not sep or not 1 <= len(raw_key) <= 79:
        src.note(f"PNG {kind} chunk without a valid keyword; skipped")
        return None
    key = _clean(raw_key.decode("latin-1"))
    where = f"PNG {kind} {key!r}"
    if kind == "tEXt":
        return key, _decode(rest, where, src, latin1=True), cut
    if kind == "zTXt":
        inflated = src.inflate(rest[1:], where)
        return None if inflated is None else (key, _decode(inflated[0], where, src, latin1=True), cut or inflated[1])
    parts = rest[2:].split(b"\0", 2)  # after the compression flag and method: language, translated key, text
    if len(rest) < 2 or len(parts) < 3:
        src.note(f"{where}: malformed iTXt header; skipped")
        return None
    body = parts[2]
    if rest[0]:  # compressed
        inflated = src.inflate(body, where)
        if inflated is None:
            return None
        body, cut = inflated[0], cut or inflated[1]
    return key, _decode(body, where, src), cut


def _jpeg_blocks(src: _Source) -> Iterator[_Block]:
    src.handle.seek(2)
    while src.step("JPEG"):
        byte = src.handle.read(1)
        if byte != b"\xff":
            if byte:
                src.note(f"JPEG: no marker at offset {src.handle.tell() - 1}; the rest was not read")
            else:
                src.note("JPEG: the file ends before the image data", truncated=True)
            return
        code = src.handle.read(1)
        if code == b"\xff":  # a fill byte: the marker code follows
            src.handle.seek(-1, os.SEEK_CUR)
            continue
        if code in (b"", b"\xd9", b"\xda"):  # end of file, EOI, SOS: metadata segments come before the scan
            if not code:
                src.note("JPEG: the file ends before the image data", truncated=True)
            return
        if code in (b"\x01", b"\xd8") or 0xD0 <= code[0] <= 0xD7:  # markers without a length
            continue
        size = src.handle.read(2)
        if len(size) < 2 or struct.unpack(">H", size)[0] < 2:
            src.note("JPEG: a segment with a malformed length; the rest was not read", truncated=len(size) < 2)
            return
        length = struct.unpack(">H", size)[0] - 2
        start = src.handle.tell()
        if code == b"\xe1":
            yield from _app1(src, length)
        if src.stopped:
            return
        src.handle.seek(start + length)


def _app1(src: _Source, length: int) -> Iterator[_Block]:
    data, cut = src.read(length, "JPEG APP1 segment")
    if data.startswith(b"Exif\0"):
        yield _Block("JPEG APP1 EXIF", "exif", data[6:], cut=cut)
    elif data.startswith(b"http://ns.adobe.com/xap/1.0/\0"):
        yield _Block("JPEG APP1 XMP", "xmp", data[29:], cut=cut)
    elif data.startswith(b"http://ns.adobe.com/xmp/extension/\0"):
        src.note("JPEG: extended XMP (a continuation in further APP1 segments) not read")


def _webp_blocks(src: _Source) -> Iterator[_Block]:
    src.handle.seek(4)
    end = min(src.size, 8 + struct.unpack("<I", src.handle.read(4))[0])
    src.handle.seek(12)
    while src.handle.tell() < end and src.step("WebP"):
        head = src.handle.read(8)
        if len(head) < 8:
            src.note("WebP: the file ends inside a chunk header", truncated=True)
            return
        fourcc, length = struct.unpack("<4sI", head)
        start = src.handle.tell()
        if fourcc == b"EXIF":
            data, cut = src.read(length, "WebP EXIF chunk")
            yield _Block("WebP EXIF", "exif", data[6:] if data.startswith(b"Exif\0") else data, cut=cut)
        elif fourcc == b"XMP ":
            data, cut = src.read(length, "WebP XMP chunk")
            yield _Block("WebP XMP", "xmp", data, cut=cut)
        if src.stopped:
            return
        src.handle.seek(start + length + (length & 1))  # chunks are padded to an even size


# -------------------------------------------------------------------------------------------------- decoding
def _clean(value: str, limit: int = MAX_FIELD_CHARS) -> str:
    """A value from the file made safe for one report line: control characters out, whitespace folded, capped."""
    value = " ".join("".join(c if c.isprintable() else " " for c in value[: 4 * limit]).split())
    return value if len(value) <= limit else value[: limit - 1] + "\u2026"


def _decode(data: bytes, where: str, src: _Source, *, latin1: bool = False) -> str:
    """UTF-8 text (tEXt is Latin-1 by the PNG rules; valid UTF-8 there is what its writer meant); invalid bytes are
    replaced, with a note."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if latin1:
            return data.decode("latin-1")
        src.note(f"{where}: invalid UTF-8 at byte {exc.start} (replaced)")
        return data.decode("utf-8", errors="replace")


_TIFF_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
_SOFTWARE, _EXIF_IFD, _USER_COMMENT, _MAKER_NOTE = 0x0131, 0x8769, 0x9286, 0x927C


def _ifd(tiff: bytes, order: str, offset: int) -> dict[int, bytes]:
    """tag -> raw value bytes of the IFD at ``offset``, bounds-checked (entries pointing outside are dropped)."""
    if not 8 <= offset <= len(tiff) - 2:
        return {}
    count = struct.unpack_from(order + "H", tiff, offset)[0]
    entries = {}
    for i in range(min(count, (len(tiff) - offset - 2) // 12)):
        tag, kind, n, value = struct.unpack_from(order + "HHI4s", tiff, offset + 2 + 12 * i)
        size = _TIFF_SIZES.get(kind, 0) * n
        if size <= 4:
            entries[tag] = value[:size]
        else:
            at = struct.unpack(order + "I", value)[0]
            if at + size <= len(tiff):
                entries[tag] = tiff[at:at + size]
    return entries


def _exif_texts(block: _Block, src: _Source) -> dict[str, str]:
    """An EXIF block's Software, UserComment and a short MakerNote, under the PNG text keys they stand for."""
    tiff = block.data
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None or len(tiff) < 8 or struct.unpack_from(order + "H", tiff, 2)[0] != 42:
        src.note(f"{block.location}: not a TIFF structure; skipped")
        return {}
    top = _ifd(tiff, order, struct.unpack_from(order + "I", tiff, 4)[0])
    pointer = top.get(_EXIF_IFD)
    sub = _ifd(tiff, order, struct.unpack(order + "I", pointer)[0]) if pointer and len(pointer) == 4 else {}
    texts = {}
    if _SOFTWARE in top:
        texts["Software"] = top[_SOFTWARE].rstrip(b"\0").decode("utf-8", errors="replace")
    comment = sub.get(_USER_COMMENT) or top.get(_USER_COMMENT)  # Fooocus writes it in IFD0
    if comment:
        texts["parameters"] = _user_comment(comment, order, f"{block.location} UserComment", src)
    scheme = sub.get(_MAKER_NOTE) or top.get(_MAKER_NOTE) or b""
    if scheme.rstrip(b"\0") in (b"fooocus", b"a1111"):  # Fooocus names its metadata scheme here
        texts["fooocus_scheme"] = scheme.rstrip(b"\0").decode()
    return texts


def _user_comment(raw: bytes, order: str, where: str, src: _Source) -> str:
    """EXIF UserComment: an 8-byte charset prefix (ASCII, UNICODE, JIS or undefined), then the text."""
    prefix, body = raw[:8], raw[8:]
    if prefix == b"UNICODE\0":
        body = body[: len(body) // 2 * 2]
        if body[:2] in (b"\xff\xfe", b"\xfe\xff"):
            codec = "utf-16"
        else:  # no BOM: the byte order with the zero bytes of mostly-ASCII text; else the TIFF's
            even, odd = body[0::2].count(0), body[1::2].count(0)
            codec = "utf-16-be" if even > odd else "utf-16-le" if odd > even else \
                {"<": "utf-16-le", ">": "utf-16-be"}[order]
        return body.decode(codec, errors="replace").rstrip("\0")
    if prefix == b"JIS\0\0\0\0\0":
        src.note(f"{where}: JIS-encoded text not read")
        return ""
    if prefix not in (b"ASCII\0\0\0", b"\0" * 8):
        body = raw  # no charset prefix at all (some writers store the bare text)
    return _decode(body.rstrip(b"\0"), where, src)


class _Refused(Exception):
    """XML this reader will not parse (a DTD, entities, nesting too deep)."""


def _xmp_values(block: _Block, src: _Source) -> tuple[list[str], list[str]]:
    """(DigitalSourceType values, CreatorTool values) of an XMP packet, attribute and element forms. The parser is
    expat with every DTD refused (so no entity can be declared, let alone expanded) and the nesting bounded."""
    found: dict[str, list[str]] = {_SOURCE_TYPE: [], _CREATOR_TOOL: []}
    open_texts: list[tuple[str, int, list[str]]] = []
    depth = 0

    def start(name, attrs):
        nonlocal depth
        depth += 1
        if depth > MAX_XML_DEPTH:
            raise _Refused(f"nested deeper than {MAX_XML_DEPTH} elements")
        for key in found:
            if key in attrs:
                found[key].append(attrs[key])
        if name in found:
            if _RESOURCE in attrs:
                found[name].append(attrs[_RESOURCE])
            else:
                open_texts.append((name, depth, []))

    def end(name):
        nonlocal depth
        if open_texts and open_texts[-1][:2] == (name, depth):
            _, _, parts = open_texts.pop()
            if "".join(parts).strip():
                found[name].append("".join(parts))
        depth -= 1

    def text(data):
        if open_texts and sum(map(len, open_texts[-1][2])) < 4 * MAX_FIELD_CHARS:
            open_texts[-1][2].append(data)

    def refuse(*_):
        raise _Refused("it declares a DOCTYPE or entities")

    parser = expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartElementHandler, parser.EndElementHandler, parser.CharacterDataHandler = start, end, text
    parser.StartDoctypeDeclHandler = parser.EntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    data = block.data
    try:
        for at in range(0, len(data), 65536):
            parser.Parse(data[at:at + 65536], False)
        parser.Parse(b"", True)
    except _Refused as exc:
        src.note(f"{block.location}: XML refused: {exc}")
        return [], []
    except expat.ExpatError as exc:
        if not block.cut:  # a cut packet ends mid-element by construction; its notes say so already
            src.note(f"{block.location}: XMP is not well-formed XML ({exc}); read up to there")
    return found[_SOURCE_TYPE], found[_CREATOR_TOOL]


def _json(text: str, where: str, src: _Source) -> object | None:
    """JSON without limits on size (the block is capped already) but with the parser's nesting limit: a file
    nested deeper than Python's recursion limit is refused, with a note."""
    try:
        return json.loads(text)
    except RecursionError:
        src.note(f"{where}: JSON nested too deep; not read")
    except ValueError as exc:
        src.note(f"{where}: not valid JSON ({_clean(str(exc), 80)})")
    return None


def _seed(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**64:
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,20}", value.strip()):
        return int(value)
    return None


def _name(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    return _clean(value) or None


# ---------------------------------------------------------------------------------------------- interpreting
@dataclass
class _Texts:
    """A file's text blocks by key (PNG text chunks, or the EXIF fields that stand for them)."""

    values: dict[str, tuple[str, str, bool]] = field(default_factory=dict)  # key -> (text, location, cut)

    def add(self, key: str, text: str, location: str, cut: bool) -> None:
        self.values.setdefault(key, (text, location, cut))

    def get(self, key: str) -> str | None:
        return self.values[key][0] if key in self.values else None


def _interpret(blocks: list[_Block], src: _Source) -> list[Declaration]:
    found: list[Declaration] = []
    for group in _text_groups(blocks, src):
        found += _from_texts(group, src)
    for block in blocks:
        if block.kind == "xmp":
            types, tools = _xmp_values(block, src)
            if max(len(types), len(tools)) > MAX_VALUES:
                src.note(f"{block.location}: more than {MAX_VALUES} values of one property; the first were kept")
            types, tools = list(dict.fromkeys(types))[:MAX_VALUES], list(dict.fromkeys(tools))[:MAX_VALUES]
            for value in types:
                found.append(Declaration(MetadataFormat.IPTC_SOURCE_TYPE, block.location,
                                         source_type_is_ai(value) is True, source_type=_clean(value),
                                         truncated=block.cut))
            found += [Declaration(MetadataFormat.SOFTWARE_TAG, f"{block.location} CreatorTool", False, _clean(tool),
                                  truncated=block.cut) for tool in tools if _GENERATOR_NAMES.search(_clean(tool))]
    return found


def _text_groups(blocks: list[_Block], src: _Source) -> list[_Texts]:
    """The PNG text chunks as one group, each EXIF block as another (its fields are read like PNG keys)."""
    png, groups = _Texts(), []
    for block in blocks:
        if block.kind == "text":
            png.add(block.key, block.data, block.location, block.cut)
        elif block.kind == "exif":
            group = _Texts()
            for key, text in _exif_texts(block, src).items():
                where = {"Software": "Software", "parameters": "UserComment"}.get(key, "MakerNote")
                group.add(key, text, f"{block.location} {where}", block.cut)
            groups.append(group)
    return [png, *groups]


def _from_texts(texts: _Texts, src: _Source) -> list[Declaration]:
    found: list[Declaration] = []
    software = texts.get("Software")
    novelai = _novelai(texts, src) if software is not None and software.strip() == "NovelAI" else None
    if novelai is not None:
        found.append(novelai)
    elif software is not None and _GENERATOR_NAMES.search(_clean(software)):
        _, where, cut = texts.values["Software"]
        found.append(Declaration(MetadataFormat.SOFTWARE_TAG, where, False, _clean(software), truncated=cut))
    readers = {"parameters": _parameters, "prompt": _comfy, "invokeai_metadata": _invokeai,
               "sd-metadata": _invokeai_legacy, "Dream": _dream}
    for key, read in readers.items():
        if key in texts.values:
            text, where, cut = texts.values[key]
            declaration = read(text, where, cut, texts, src)
            if declaration is not None:
                found.append(declaration)
    # The editor graph is read only when the API graph is missing or unreadable (they describe the same run).
    if "workflow" in texts.values and not any(d.format is MetadataFormat.COMFYUI_PROMPT for d in found):
        declaration = _comfy(*texts.values["workflow"], texts, src, editor=True)
        if declaration is not None:
            found.append(declaration)
    return found


def _novelai(texts: _Texts, src: _Source) -> Declaration | None:
    """``Software`` = ``NovelAI`` with its ``Source`` (the model) or its ``Comment`` (JSON settings with the seed);
    None for the tag alone (then it is a hint like any other)."""
    comment = _json(*texts.values["Comment"][:2], src) if "Comment" in texts.values else None
    comment = comment if isinstance(comment, dict) else {}
    source = _name(texts.get("Source"))
    if not comment and not source:
        return None
    _, where, cut = texts.values["Software"]
    return Declaration(MetadataFormat.NOVELAI, where, True, "NovelAI", source, _seed(comment.get("seed")),
                       truncated=cut)


def _parameters(text: str, where: str, cut: bool, texts: _Texts, src: _Source) -> Declaration | None:
    """The web UI's text layout, or Fooocus's JSON."""
    if text.lstrip().startswith("{"):
        data = _json(text, where, src)
        if not isinstance(data, dict):
            return None
        version = data.get("version") if isinstance(data.get("version"), str) else ""
        if not (texts.get("fooocus_scheme") or "fooocus_scheme" in data or version.startswith("Fooocus")):
            src.note(f"{where}: JSON of no known generator")
            return None
        return Declaration(MetadataFormat.FOOOCUS, where, True, _clean(version) or "Fooocus",
                           _name(data.get("base_model")), _seed(data.get("seed")), truncated=cut)
    settings = _settings_line(text, where, src)
    if settings is None:
        return None
    version = settings.get("Version", "")
    generator = ("Fooocus" if version.startswith("Fooocus") else
                 "Stable Diffusion web UI Forge" if re.match(r"f\d", version) else "Stable Diffusion web UI")
    model = _name(settings.get("Model")) or (f"hash {_clean(settings['Model hash'])}"
                                             if settings.get("Model hash") else None)
    return Declaration(MetadataFormat.SD_WEBUI, where, True, generator, model, _seed(settings.get("Seed", "")),
                       truncated=cut)


def _settings_line(text: str, where: str, src: _Source) -> dict[str, str] | None:
    """The web UI's last line, ``Steps: 20, Sampler: Euler a, ..., Model: name`` as a dict (values in double quotes
    may hold commas); None unless it has Steps and at least two other settings."""
    at = text.rfind("Steps: ")
    if at < 0 or (at > 0 and text[at - 1] != "\n"):
        return None
    stop = text.find("\n", at)
    line = text[at:stop if stop >= 0 else len(text)]
    if len(line) > MAX_SETTINGS_LINE:
        src.note(f"{where}: settings line of {len(line)} characters not read")
        return None
    settings, piece, quoted = {}, [], False
    for ch in line + ",":  # one pass: split on commas outside double quotes
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            key, sep, value = "".join(piece).partition(":")
            if sep and key.strip():
                settings.setdefault(key.strip(), value.strip().strip('"'))
            piece = []
        else:
            piece.append(ch)
    return settings if len(settings) >= 3 else None


_CHECKPOINT_INPUTS = {"CheckpointLoaderSimple": "ckpt_name", "CheckpointLoader": "ckpt_name",
                      "ImageOnlyCheckpointLoader": "ckpt_name", "UNETLoader": "unet_name"}
# Where a workflow node keeps its seed among its widget values.
_WORKFLOW_SEED = {"KSampler": 0, "KSamplerAdvanced": 1, "RandomNoise": 0}


def _comfy(text: str, where: str, cut: bool, texts: _Texts, src: _Source, *, editor: bool = False
           ) -> Declaration | None:
    """ComfyUI's API graph ``{id: {"class_type": ..., "inputs": {...}}}`` or, with ``editor``, its editor graph
    ``{"nodes": [{"type": ..., "widgets_values": [...]}, ...]}``. It declares AI when a sampler node is in it."""
    graph = _json(text, where, src)
    if editor:
        nodes = graph.get("nodes") if isinstance(graph, dict) else None
        nodes = [(n["type"], n.get("widgets_values")) for n in (nodes if isinstance(nodes, list) else ())
                 if isinstance(n, dict) and isinstance(n.get("type"), str)]
    else:
        nodes = [(n["class_type"], n.get("inputs")) for n in (graph.values() if isinstance(graph, dict) else ())
                 if isinstance(n, dict) and isinstance(n.get("class_type"), str)]
    models, seeds = [], []
    for kind, values in nodes:
        if editor and isinstance(values, list):
            models.append(_name(values[0]) if kind in _CHECKPOINT_INPUTS and values else None)
            if kind in _WORKFLOW_SEED and len(values) > _WORKFLOW_SEED[kind]:
                seeds.append(_seed(values[_WORKFLOW_SEED[kind]]))
        elif not editor and isinstance(values, dict):
            models.append(_name(values.get(_CHECKPOINT_INPUTS.get(kind, ""))))
            seeds.append(_seed(values.get("seed", values.get("noise_seed"))))
    if not nodes:
        return None
    return Declaration(MetadataFormat.COMFYUI_WORKFLOW if editor else MetadataFormat.COMFYUI_PROMPT, where,
                       any("Sampler" in kind for kind, _ in nodes), "ComfyUI", next(filter(None, models), None),
                       next((seed for seed in seeds if seed is not None), None), truncated=cut)


def _invokeai(text: str, where: str, cut: bool, texts: _Texts, src: _Source) -> Declaration | None:
    """InvokeAI 3 and later: a JSON object of generation settings; ``model`` a name or an object naming one."""
    data = _json(text, where, src)
    if not isinstance(data, dict) or not {"model", "seed", "positive_prompt", "generation_mode"} & data.keys():
        return None
    model = data.get("model")
    if isinstance(model, dict):
        model = model.get("name") or model.get("model_name")
    version = data.get("app_version")
    return Declaration(MetadataFormat.INVOKEAI, where, True, "InvokeAI" + (f" {_clean(version)}" if isinstance(
        version, str) else ""), _name(model), _seed(data.get("seed")), truncated=cut)


def _invokeai_legacy(text: str, where: str, cut: bool, texts: _Texts, src: _Source) -> Declaration | None:
    """InvokeAI 2 ``sd-metadata``: ``{"model_weights": ..., "image": {"seed": ...}}``."""
    data = _json(text, where, src)
    if not isinstance(data, dict) or not {"model_weights", "image"} & data.keys():
        return None
    image = data.get("image") if isinstance(data.get("image"), dict) else {}
    return Declaration(MetadataFormat.INVOKEAI_LEGACY, where, True, "InvokeAI", _name(data.get("model_weights")),
                       _seed(image.get("seed")), truncated=cut)


def _dream(text: str, where: str, cut: bool, texts: _Texts, src: _Source) -> Declaration | None:
    """InvokeAI's first format, ``Dream``: the prompt and its command-line switches (``-s`` steps, ``-S`` seed)."""
    if not re.search(r"(?:^|\s)-[sS] ?\d", text):
        return None
    seed = re.search(r"(?:^|\s)-S ?(\d{1,20})\b", text)
    return Declaration(MetadataFormat.INVOKEAI_LEGACY, where, True, "InvokeAI", None,
                       int(seed.group(1)) if seed else None, truncated=cut)
