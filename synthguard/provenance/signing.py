"""Signing: write a copy of an asset that carries a signed C2PA manifest, and record it in the ledger.

Formats C2PA can embed into (PNG, JPEG, WebP, GIF, TIFF, AVIF, HEIC, WAV, MP3, FLAC, M4A, MP4, MOV, PDF...) get
the manifest inside the output file. Everything else (plain text, Markdown, JSON, Ogg Opus / Vorbis audio...) is
copied unchanged and gets a ``<output>.c2pa`` sidecar holding the manifest store, bound to the bytes by a data hash.

The input is never modified; outputs appear atomically (a failed sign leaves nothing behind). Images and audio are
decoded completely before signing, so a truncated or corrupt file is refused instead of being vouched for.
"""

from __future__ import annotations

import io
import json
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import c2pa

from synthguard.core.fileio import atomic_output, check_output_path
from synthguard.core.media import MediaKind, MediaType, decode_image, file_sha256, mime_for_suffix, read_text, sniff
from synthguard.errors import InputError, LedgerError, ProvenanceError, one_line
from synthguard.provenance.identity import Identity
from synthguard.provenance.ledger import Ledger, LedgerRecord
from synthguard.provenance.manifest import ManifestSpec
from synthguard.provenance.validation import ValidationKinds

SIDECAR_SUFFIX = ".c2pa"
PARENT_INGREDIENT_LABEL = "parent"
_MANIFEST_MARKERS = (b"jumb", b"provenance")


def sidecar_path(asset: Path) -> Path:
    """``photo.txt`` -> ``photo.txt.c2pa`` (the full name is kept so ``a.txt`` and ``a.md`` never collide)."""
    return asset.with_name(asset.name + SIDECAR_SUFFIX)


def builder_context(*, thumbnail: bool = False) -> c2pa.Context:
    # A thumbnail adds signing time and size to every manifest: off unless asked for.
    return c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": thumbnail}}})


@dataclass(frozen=True)
class SignResult:
    output: Path
    sidecar: Path | None
    mime: str
    asset_id: str
    manifest_label: str
    file_sha256: str
    content_sha256: str
    signer: str
    digital_source_type: str | None  # None: the manifest declares none
    has_parent: bool
    manifest_bytes: int

    def to_dict(self) -> dict:
        return {"output": str(self.output), "sidecar": str(self.sidecar) if self.sidecar else None,
                "mime": self.mime, "asset_id": self.asset_id, "manifest_label": self.manifest_label,
                "file_sha256": self.file_sha256, "content_sha256": self.content_sha256, "signer": self.signer,
                "digital_source_type": self.digital_source_type, "has_parent": self.has_parent,
                "manifest_bytes": self.manifest_bytes}


@dataclass(frozen=True)
class _SidecarParent:
    """A parent whose manifest store lives in a sidecar: c2pa takes it as the ingredient's manifest data."""

    store: bytes
    reading: dict  # the reader's JSON: active manifest label and validation results travel with the ingredient


def _existing_manifest(src: Path, media: MediaType) -> _SidecarParent | bytes | None:
    """The manifest store already attached to the input (embedded or sidecar), or None.

    A manifest that exists but cannot be read (remote, prerelease, corrupt) is an error: signing over it would
    silently drop the asset's history.
    """
    side = sidecar_path(src)
    try:
        if side.is_file():
            store = side.read_bytes()
            with open(src, "rb") as stream, c2pa.Reader(media.mime, stream, store) as reader:
                reading = json.loads(reader.json())
            kinds = ValidationKinds.of(f.get("code") for f in reading.get("validation_results", {})
                                       .get("activeManifest", {}).get("failure", []))
            # Only a hash or signature that does not match says the sidecar is not this file's; an expired or
            # untrusted credential does not (an unknown code is treated as a mismatch, to be safe).
            failures = kinds.integrity + kinds.unclassified
            if failures:
                raise InputError(f"{side}: this sidecar does not validate against {src.name} "
                                 f"({', '.join(sorted(failures))}): it belongs to another file or the file was "
                                 "changed; move it away to sign the file without it")
            return _SidecarParent(store, reading)
        if not media.embeddable:
            return None
        with open(src, "rb") as stream:
            # Fast path: an embedded manifest is a JUMBF box labelled c2pa, and a remote one is referenced from XMP
            # (dcterms:provenance); a file holding none of these byte strings has no manifest to keep.
            data = stream.read()
            if not any(marker in data for marker in _MANIFEST_MARKERS):
                return None
            stream.seek(0)
            reader = c2pa.Reader.try_create(media.mime, stream)
            if reader is None:
                return None
            reader.close()
            return b"embedded"
    except c2pa.C2paError as exc:
        if "ManifestNotFound" in str(exc) or "JumbfNotFound" in str(exc):
            return None
        raise ProvenanceError(f"{src}: carries a C2PA manifest that cannot be read ({one_line(exc)}); "
                              "refusing to sign over it") from None


def _audio_content_sha256(path: Path) -> str:
    """Audio is decoded whole (refusing truncated, corrupt or over-budget files) and keyed by its samples."""
    from synthguard.core.audio import audio_content_sha256, decode_audio  # noqa: PLC0415 (soundfile / av)

    return audio_content_sha256(decode_audio(path))


def _fingerprint(path: Path) -> tuple[int, int, int]:
    info = os.stat(path)
    return info.st_size, info.st_mtime_ns, info.st_ino


class SigningSession:
    """One identity, one ledger, one c2pa Signer reused for many files."""

    def __init__(self, identity: Identity, ledger: Ledger | None, *, thumbnail: bool = False):
        self.identity = identity
        self.ledger = ledger
        self.context = builder_context(thumbnail=thumbnail)
        self._signer = identity.signer()
        # Validating the input (a full decode) runs beside the native c2pa signing, which releases the GIL.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="synthguard-validate")

    def __enter__(self) -> SigningSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._signer.close()
        self._pool.shutdown()

    def sign_file(self, src: Path, dst: Path, spec: ManifestSpec, *, overwrite: bool = False,
                  content_sha256: str | None = None, parent_source: Path | None = None) -> SignResult:
        """Sign a copy of ``src`` into ``dst``.

        ``content_sha256`` may be given by a caller that wrote ``src`` itself from known pixels (a generator, the
        watermark stamper: see ``media.array_content_sha256``); otherwise the input is fully decoded and hashed
        here, and an image that does not decode completely is refused before anything is written.
        ``parent_source`` is the file whose manifest (if any) becomes the parent ingredient, when ``src`` is a
        derived copy of it (a watermarked re-encode); by default ``src`` itself.
        """
        src, dst = Path(src), Path(dst)
        parent_source = Path(parent_source) if parent_source is not None else src
        media = sniff(src)  # refuses a missing, empty or unreadable input first
        promised = mime_for_suffix(dst.suffix)
        if promised and promised != media.mime:
            raise InputError(f"{dst}: the name says {promised} but the signed copy is {media.mime} (signing keeps "
                             "the input's format): give the output the input's extension")
        before = _fingerprint(src)
        inputs = (src, sidecar_path(src), parent_source, sidecar_path(parent_source))
        check_output_path(dst, inputs=inputs, overwrite=overwrite)
        if not media.embeddable:
            check_output_path(sidecar_path(dst), inputs=inputs, overwrite=overwrite)
        if content_sha256 is not None:
            validation = None
        elif media.kind is MediaKind.IMAGE:
            validation = self._pool.submit(lambda: decode_image(src).content_sha256)
        elif media.kind is MediaKind.AUDIO:
            validation = self._pool.submit(_audio_content_sha256, src)
        elif media.kind is MediaKind.TEXT:
            # The whole text must be UTF-8 without NUL bytes and within the size limit, not just its first bytes.
            validation = self._pool.submit(lambda: (read_text(src), file_sha256(src))[1])
        else:
            validation = self._pool.submit(file_sha256, src)

        try:
            parent_media = media if parent_source == src else sniff(parent_source)
            parent = _existing_manifest(parent_source, parent_media)
            label = f"urn:c2pa:{uuid.uuid4()}"
            definition = spec.to_manifest(parent_ingredient=PARENT_INGREDIENT_LABEL if parent else None)
            definition["label"] = label
            with c2pa.Builder(definition, context=self.context) as builder, open(src, "rb") as source:
                if parent is not None:
                    ingredient = {"title": parent_source.name, "relationship": "parentOf",
                                  "label": PARENT_INGREDIENT_LABEL}
                    if isinstance(parent, _SidecarParent):
                        ingredient |= {"format": parent_media.mime,
                                       "active_manifest": parent.reading["active_manifest"],
                                       "validation_results": parent.reading.get("validation_results", {}),
                                       "manifest_data": {"format": "application/c2pa",
                                                         "identifier": "parent-manifest.c2pa"}}
                        builder.add_resource("parent-manifest.c2pa", io.BytesIO(parent.store))
                    with open(parent_source, "rb") as parent_stream:
                        builder.add_ingredient(ingredient, parent_media.mime, parent_stream)
                if media.embeddable:
                    with atomic_output(dst, overwrite=overwrite) as out:
                        manifest = builder.sign(self._signer, media.mime, source, out)
                        # Inside the block: an input that fails validation leaves no output behind.
                        content_sha256 = validation.result() if validation else content_sha256
                    sidecar = None
                else:
                    builder.set_no_embed()
                    manifest = builder.sign(self._signer, media.mime, source, io.BytesIO())
                    content_sha256 = validation.result() if validation else content_sha256
                    sidecar = sidecar_path(dst)
                    source.seek(0)
                    # Both files appear together or not at all (a failure removes both temp files).
                    with atomic_output(dst, overwrite=overwrite) as out, \
                            atomic_output(sidecar, overwrite=overwrite) as side:
                        out.write(source.read())
                        side.write(manifest)
        except c2pa.C2paError as exc:
            if validation is not None:
                validation.result()  # a corrupt input is an input error first (raises InputError)
            raise ProvenanceError(f"{src}: c2pa could not sign this {media.mime} file: {one_line(exc)}") from None
        except OSError as exc:
            raise InputError(f"{exc.filename or dst}: {exc.strerror or exc}") from None
        finally:
            if validation is not None:
                validation.cancel()

        if _fingerprint(src) != before:
            # Validated bytes and signed bytes must be the same bytes: the file changed while we worked on it.
            for path in (dst, sidecar):
                if path is not None:
                    path.unlink(missing_ok=True)
            raise InputError(f"{src}: the file changed while it was being signed; nothing was written")
        result = SignResult(
            output=dst, sidecar=sidecar, mime=media.mime, asset_id=label.rsplit(":", 1)[-1], manifest_label=label,
            file_sha256=file_sha256(dst), content_sha256=content_sha256, signer=self.identity.common_name,
            digital_source_type=None if spec.digital_source_type is None else spec.digital_source_type.value,
            has_parent=parent is not None,
            manifest_bytes=len(manifest))
        if self.ledger is not None:
            binding = spec.soft_binding
            try:
                self.ledger.record(LedgerRecord(
                    asset_id=result.asset_id, created_at=time.time(), mime=media.mime,
                    file_sha256=result.file_sha256, content_sha256=content_sha256, manifest_label=label,
                    manifest=bytes(manifest), signer=result.signer, output_path=str(dst.resolve()),
                    soft_binding_alg=binding.alg if binding else None,
                    soft_binding_value=binding.value if binding else None))
            except LedgerError:
                # An output the ledger does not know could never be traced back: take it away again.
                for path in (dst, sidecar):
                    if path is not None:
                        path.unlink(missing_ok=True)
                raise
        return result
