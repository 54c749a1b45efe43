"""The ledger as a C2PA Soft Binding Resolution API (``synthguard ledger serve``): another organisation that holds
a stripped, re-encoded copy of an asset reads its watermark and asks this repository for the manifest.

The query and fetch endpoints follow the OpenAPI of the C2PA Soft Binding Resolution API (1.0.0, in the C2PA
specifications' "Soft Binding API" document):
- ``GET /matches/byBinding?alg=&value=&maxResults=`` and ``POST /matches/byBinding`` (JSON ``{"alg", "value"}``):
  ``{"matches": [{"manifestId": ..., "similarityScore": ...}]}``; ``value`` is the base64 of the soft binding's value
  (for SynthGuard's image watermark, the 6-byte payload the manifest's ``c2pa.soft-binding`` assertion carries);
- ``POST /matches/byContent`` (the asset's bytes): sniffed from content, decoded under the pixel budget, the
  watermark read, then looked up as above (``hintAlg`` / ``hintValue`` are hints and are not used);
- ``GET /manifests/{manifestId}``: the stored manifest store, ``application/c2pa``; ``manifestId`` is the manifest's
  label (``urn:c2pa:<uuid>``);
- ``GET /services/supportedAlgorithms``: ``{"watermarks": [{"alg": ...}], "fingerprints": []}``.
The spec defines no way to add manifests, so publishing from another signing machine is SynthGuard's own
``POST /manifests`` (JSON, see ``PublishedRecord``), which needs ``Authorization: Bearer <write token>``.

Nothing here vouches for a manifest: a verifier re-validates what it fetches (signature, trust, soft binding
against the payload it decoded, content). Safety rules:
- tokens are made by ``TokenStore.create`` (``synthguard ledger token``) and only their SHA-256 is kept
  (``$SYNTHGUARD_HOME/ledger-tokens.json``, owner-only); a token is shown once;
- writes always need a write token; reads are open unless the app is given read tokens (a write token reads too);
- the desk's Host and Origin rules (``desk.http.harden``): a request whose Host is not one of the server's names
  is refused (403: DNS rebinding), and so is a write whose Origin is another site's; no CORS headers are sent, so
  another site's page cannot read answers; ``synthguard ledger serve`` runs under ``desk.http.serve_hardened``
  (header deadline, stalled bodies cut off, open connections capped);
- bodies are counted as they stream and refused past their limit (413): 64 KiB for a JSON query, ``max_body`` for
  an asset or a published record; an asset is spooled to a private temporary file, never kept under a client name;
- each client (by address) gets ``rate_limit`` requests, refilled evenly over its period; past it 429 with
  ``Retry-After``;
- one asset is decoded and read at a time on a worker thread, at most ``MAX_PENDING`` wait, then 503.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import io
import json
import math
import os
import secrets
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from synthguard.core.fileio import write_private
from synthguard.core.home import Home
from synthguard.core.media import MediaKind, decode_image, sniff
from synthguard.desk.http import LOCAL_HOSTS, harden
from synthguard.errors import InputError, LedgerError, WatermarkError, one_line
from synthguard.provenance.ledger import Ledger, LedgerRecord
from synthguard.watermark import ImageWatermarker, default_image_watermarker

DEFAULT_PORT = 8790
DEFAULT_MAX_BODY = 50 * 1024 * 1024
MAX_QUERY_BODY = 64 * 1024  # a JSON byBinding query
MAX_VALUE_BYTES = 1024  # a soft binding value (SynthGuard's payload is 6 bytes)
MAX_MANIFEST_ID = 256
MAX_RESULTS = 100  # the most matches one query returns, whatever maxResults asks
DEFAULT_RESULTS = 10  # the spec's default maxResults
MAX_PENDING = 4  # assets being read or waiting; past it 503
MAX_CLIENTS = 10_000  # rate-limit buckets kept; the least recently seen are dropped first
SECURITY_HEADERS = {"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
                    "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
_CHUNK = 1024 * 1024
_TOKEN_PREFIX = "sgl_"


# --- tokens -----------------------------------------------------------------------------------------------------

class TokenScope(str, Enum):
    READ = "read"  # query and fetch
    WRITE = "write"  # publish records, and read


def hash_token(token: str) -> str:
    """The SHA-256 (hex) under which a token is kept: the token itself is never stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class TokenEntry:
    """One token as stored: its scope, the SHA-256 of the secret, and when it was made."""

    scope: TokenScope
    sha256: str
    created_at: str  # ISO 8601, UTC

    @property
    def id(self) -> str:
        """A short name for the token (the start of its hash), safe to print and to revoke by."""
        return self.sha256[:12]

    def to_dict(self) -> dict:
        return {"id": self.id, "scope": self.scope.value, "sha256": self.sha256, "created_at": self.created_at}

    def describe(self) -> tuple[str, ...]:
        return (f"token {self.id}: {self.scope.value}, made {self.created_at}",)


class TokenStore:
    """The bearer tokens a ledger server accepts, kept as hashes in one owner-only JSON file."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @classmethod
    def of_home(cls, home: Home) -> TokenStore:
        return cls(home.ledger_tokens_path)

    def entries(self) -> tuple[TokenEntry, ...]:
        if not self.path.exists():
            return ()
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return tuple(TokenEntry(TokenScope(t["scope"]), str(t["sha256"]), str(t["created_at"]))
                         for t in data["tokens"])
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{self.path}: not a readable token file ({one_line(exc)}); make new tokens after "
                             "moving it away") from None

    def hashes(self, scope: TokenScope) -> frozenset[str]:
        """The hashes of the tokens of ``scope``."""
        return frozenset(e.sha256 for e in self.entries() if e.scope is scope)

    def create(self, scope: TokenScope) -> tuple[str, TokenEntry]:
        """A new token of ``scope``: returns the secret (shown once, never stored) and its stored entry."""
        token = _TOKEN_PREFIX + secrets.token_urlsafe(32)
        entry = TokenEntry(TokenScope(scope), hash_token(token), datetime.now(UTC).isoformat(timespec="seconds"))
        self._write((*self.entries(), entry))
        return token, entry

    def revoke(self, token_id: str) -> TokenEntry:
        """Remove the token whose id (or a longer start of its hash) is ``token_id``."""
        entries = self.entries()
        found = [e for e in entries if len(token_id) >= 12 and e.sha256.startswith(token_id.lower())]
        if len(found) != 1:
            raise InputError(f"no token with id {token_id!r} in {self.path}")
        self._write(tuple(e for e in entries if e is not found[0]))
        return found[0]

    def _write(self, entries: tuple[TokenEntry, ...]) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        data = {"version": 1, "tokens": [{"scope": e.scope.value, "sha256": e.sha256, "created_at": e.created_at}
                                         for e in entries]}
        write_private(self.path, (json.dumps(data, indent=1) + "\n").encode())


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _holds(request: Request, hashes: Collection[str]) -> bool:
    token = _bearer(request)
    if token is None:
        return False
    digest = hash_token(token)
    return any(hmac.compare_digest(digest, h) for h in hashes)


# --- rate limit -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RateLimit:
    """``requests`` per client in any ``per_s`` seconds (a token bucket: a burst of ``requests``, refilled evenly)."""

    requests: int = 600
    per_s: float = 60.0

    def __post_init__(self):
        if self.requests < 1 or not self.per_s > 0:
            raise InputError(f"a rate limit needs at least 1 request per a positive period, not {self.requests} "
                             f"per {self.per_s} s")


class _Buckets:
    """One token bucket per client address (thread-safe); the least recently seen clients are forgotten first."""

    def __init__(self, limit: RateLimit):
        self.limit = limit
        self._rate = limit.requests / limit.per_s
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client -> (tokens, last time)
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        """0 when the client may go on, else the seconds until it may."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.pop(client, (float(self.limit.requests), now))
            tokens = min(float(self.limit.requests), tokens + (now - last) * self._rate)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / self._rate
            self._buckets[client] = (tokens - 1 if wait == 0 else tokens, now)
            while len(self._buckets) > MAX_CLIENTS:
                self._buckets.popitem(last=False)
        return wait


# --- request bodies ---------------------------------------------------------------------------------------------

class SoftBindingQuery(BaseModel):
    """The spec's ``c2pa.softBindingQuery``."""

    model_config = ConfigDict(frozen=True)
    alg: str = Field(min_length=1, max_length=200)
    value: str = Field(min_length=1, max_length=4 * MAX_VALUE_BYTES)


class PublishedRecord(BaseModel):
    """What ``POST /manifests`` takes: a signed asset (the file as signed) and its manifest store.

    Nothing the client says about them is taken on trust: the type is sniffed from the asset, its file and content
    hashes (the keys a stripped copy is found by) are computed here, the manifest's hard binding must validate
    against the asset, and its label, signer and soft binding are read from the manifest itself. So a write token
    can add a signed asset, never point someone else's manifest at other content.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    manifest: str = Field(min_length=1, description="base64 of the manifest store (application/c2pa)")
    asset: str = Field(min_length=1, description="base64 of the signed asset, as signed")

    @classmethod
    def of_record(cls, record: LedgerRecord, asset: bytes) -> PublishedRecord:
        return cls(manifest=base64.b64encode(record.manifest).decode(), asset=base64.b64encode(asset).decode())


class _Refused(Exception):
    """An answer other than 200, with its status and the one-line reason sent as ``{"detail": ...}``."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.headers = status, headers or {}


async def _spool(request: Request, cap: int, out) -> int:
    """Copy the body into ``out`` (a binary file or a list of chunks), refusing it past ``cap`` bytes (413)."""
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > cap:
        raise _Refused(413, f"body too large: the limit is {cap} bytes")
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise _Refused(413, f"body too large: the limit is {cap} bytes")
        out.append(chunk) if isinstance(out, list) else out.write(chunk)
    return size


async def _json_body(request: Request, cap: int, model: type[BaseModel]):
    chunks: list[bytes] = []
    await _spool(request, cap, chunks)
    try:
        return model.model_validate_json(b"".join(chunks))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors())
        raise _Refused(400, f"invalid {model.__name__} JSON: {problems}") from None


def _decode_value(value: str) -> bytes:
    # A '+' sent unencoded in a query string arrives as a space; a space is never base64, so it is put back.
    try:
        raw = base64.b64decode(value.replace(" ", "+"), validate=True)
    except (binascii.Error, ValueError):
        raise _Refused(400, "value is not base64") from None
    if not raw or len(raw) > MAX_VALUE_BYTES:
        raise _Refused(400, f"value must decode to 1 to {MAX_VALUE_BYTES} bytes, not {len(raw)}")
    return raw


def _max_results(value: str | None) -> int:
    if value is None:
        return DEFAULT_RESULTS
    if not value.isdigit() or int(value) < 1:
        raise _Refused(400, f"maxResults must be an integer of at least 1, not {value!r}")
    return min(int(value), MAX_RESULTS)


def _asset_id(manifest_label: str) -> str:
    # The ledger keys a record by the last part of its manifest label, as signing records it.
    return manifest_label.rsplit(":", 1)[-1]


@dataclass(frozen=True)
class _ManifestFacts:
    label: str
    signer: str
    soft_binding_alg: str | None
    soft_binding_value: bytes | None


def _bound_asset(asset: bytes, manifest: bytes) -> tuple[str, str, str]:
    """(mime, file sha256, content sha256) of a published asset whose manifest's hard binding holds on it;
    ``_Refused`` otherwise."""
    import c2pa  # noqa: PLC0415

    from synthguard.provenance.validation import ValidationKind, classify  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="synthguard-publish-") as tmp:
        spooled = Path(tmp) / "asset"
        spooled.write_bytes(asset)
        try:
            media = sniff(spooled)
            content = decode_image(spooled).content_sha256 if media.kind is MediaKind.IMAGE else None
        except InputError as exc:
            raise _Refused(422, f"the asset cannot be read: {str(exc).replace(str(spooled), 'the asset')}") from None
    try:
        with c2pa.Reader(media.mime, io.BytesIO(asset), manifest) as reader:
            store = json.loads(reader.json())
    except (c2pa.C2paError, ValueError) as exc:
        raise _Refused(422, f"the manifest cannot be checked against the asset: {one_line(exc)}") from None
    failures = [f.get("code", "") for f in
                ((store.get("validation_results") or {}).get("activeManifest") or {}).get("failure", [])]
    broken = [code for code in failures if classify(code) is ValidationKind.INTEGRITY]
    if broken:
        raise _Refused(422, f"the manifest does not bind this asset ({', '.join(dict.fromkeys(broken))}): publish "
                            "the file as it was signed")
    digest = hashlib.sha256(asset).hexdigest()
    return media.mime, digest, content or digest


def _manifest_facts(data: bytes) -> _ManifestFacts:
    """The active manifest's label, signer and soft binding, read from a manifest store (InputError if it is not
    one). Read as a detached store, without trust: this only files the record; verifiers validate it."""
    import c2pa  # noqa: PLC0415 (loaded on the first publish, not for every lookup server start)

    try:
        with c2pa.Reader("application/c2pa", io.BytesIO(data)) as reader:
            store = json.loads(reader.json())
    except (c2pa.C2paError, ValueError) as exc:
        raise InputError(f"not a readable C2PA manifest store: {one_line(exc)}") from None
    label = store.get("active_manifest")
    active = store.get("manifests", {}).get(label) if isinstance(label, str) else None
    if not isinstance(active, dict):
        raise InputError("the manifest store names no active manifest")
    signature = active.get("signature_info") or {}
    alg, value = None, None
    for assertion in active.get("assertions", []):
        if assertion.get("label") == "c2pa.soft-binding":
            binding = assertion.get("data") or {}
            blocks = binding.get("blocks") or [{}]
            try:
                alg, value = str(binding["alg"]), base64.b64decode(blocks[0]["value"], validate=True)
            except (KeyError, TypeError, binascii.Error, ValueError):
                raise InputError("the manifest's soft-binding assertion has no readable alg and value") from None
    return _ManifestFacts(label, str(signature.get("common_name") or signature.get("issuer") or "unknown signer"),
                          alg, value)


@dataclass(frozen=True)
class ServerSettings:
    """What a resolver app was built with (for the start-up line and tests)."""

    ledger: str
    algorithms: tuple[str, ...]
    reads_need_token: bool
    write_tokens: int
    hosts: tuple[str, ...]
    max_body: int
    rate_limit: RateLimit | None

    def to_dict(self) -> dict:
        data = asdict(self)
        data["rate_limit"] = None if self.rate_limit is None else asdict(self.rate_limit)
        return data

    def describe(self) -> tuple[str, ...]:
        reads = "need a read or write token" if self.reads_need_token else "open to anyone who can reach it"
        limit = ("none" if self.rate_limit is None
                 else f"{self.rate_limit.requests} requests per {self.rate_limit.per_s:g} s per client")
        writes = (f"writes need one of {self.write_tokens} write token(s)" if self.write_tokens
                  else "no write token exists, so publishing is refused")
        return (f"ledger {self.ledger}; soft binding algorithms: {', '.join(self.algorithms)}",
                f"reads {reads}; {writes}",
                f"answers to host names: {', '.join(self.hosts)}; body limit {self.max_body} bytes; rate limit "
                f"{limit}")


def create_resolver_app(ledger: Home | Path | str, *, write_tokens: Collection[str],
                        read_tokens: Collection[str] | None = None, hosts: Collection[str] = (),
                        max_body: int = DEFAULT_MAX_BODY, rate_limit: RateLimit | None = RateLimit(),
                        watermarker: ImageWatermarker | None = None) -> FastAPI:
    """The Soft Binding Resolution API over a ledger (a ``Home``: its ledger, ``Ledger.from_home``; or a ledger
    file or database URL).

    ``write_tokens`` / ``read_tokens``: SHA-256 hashes (``hash_token``) of the accepted bearer tokens
    (``TokenStore.hashes``); ``read_tokens=None`` leaves reads open, a collection (even empty) puts them behind a
    read or write token. ``hosts``: host names it answers to besides 127.0.0.1, localhost and ::1 (the name it is
    bound to, the machine's DNS name). ``rate_limit=None``: no limit.
    ``watermarker``: the image watermark read by ``byContent`` and named by ``supportedAlgorithms`` (default:
    SynthGuard's TileMark).
    """
    if max_body < 1:
        raise InputError(f"max_body must be a positive number of bytes, not {max_body}")
    book = Ledger.from_home(ledger) if isinstance(ledger, Home) else Ledger(ledger)
    # One connection; publishing checks then inserts, and no other request may come between the two.
    book_lock = threading.Lock()
    reader = watermarker or default_image_watermarker()
    reader_lock = threading.Lock()  # one asset decoded and read at a time: bounded memory, watermarker state
    algorithm = reader.algorithm_id
    writers = frozenset(write_tokens)
    readers = None if read_tokens is None else frozenset(read_tokens) | writers
    buckets = _Buckets(rate_limit) if rate_limit is not None else None
    pending = {"n": 0}  # byContent requests in progress (changed on the event loop only)
    spool_dir = tempfile.mkdtemp(prefix="synthguard-resolver-")  # 0700, removed when the app shuts down

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        book.close()
        with contextlib.suppress(OSError):
            os.rmdir(spool_dir)

    app = FastAPI(title="SynthGuard ledger: C2PA Soft Binding Resolution API", docs_url=None, redoc_url=None,
                  openapi_url=None, lifespan=lifespan)
    names = tuple(dict.fromkeys(h.lower().strip("[]") for h in (*LOCAL_HOSTS, *hosts) if h))
    app.state.settings = ServerSettings(book.location.masked(), (algorithm,), readers is not None, len(writers),
                                        names, max_body, rate_limit)

    @app.exception_handler(_Refused)
    async def refused(_request: Request, exc: _Refused) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status, headers=exc.headers)

    @app.middleware("http")
    async def rate_limited(request: Request, call_next):
        client = request.client.host if request.client else "unknown"
        wait = buckets.take(client) if buckets is not None else 0.0
        if wait > 0:
            return JSONResponse({"detail": "too many requests: slow down"}, 429,
                                headers={"Retry-After": str(math.ceil(wait))})
        return await call_next(request)

    # Added last, so outermost: Host and Origin are checked before anything else runs.
    harden(app, hosts, headers=SECURITY_HEADERS)

    def check_read(request: Request) -> None:
        if readers is not None and not _holds(request, readers):
            raise _Refused(401, "this ledger's reads need a bearer token", {"WWW-Authenticate": "Bearer"})

    def matches(alg: str, value: bytes, limit: int) -> dict:
        if alg != algorithm:
            raise _Refused(400, f"unsupported soft binding algorithm {alg!r}: this repository resolves {algorithm}")
        try:
            with book_lock:
                records = book.find_by_soft_binding(value)
        except LedgerError:
            raise _Refused(500, "service failure: the ledger could not be read") from None
        # An exact value match: the strongest match the spec's score can say.
        return {"matches": [{"manifestId": r.manifest_label, "similarityScore": 100}
                            for r in records if r.soft_binding_alg == alg][:limit]}

    @app.get("/matches/byBinding")
    def by_binding(request: Request) -> dict:
        check_read(request)
        alg, value = request.query_params.get("alg"), request.query_params.get("value")
        if not alg or not value:
            raise _Refused(400, "alg and value are required")
        return matches(alg, _decode_value(value), _max_results(request.query_params.get("maxResults")))

    @app.post("/matches/byBinding")
    async def by_large_binding(request: Request) -> dict:
        check_read(request)
        limit = _max_results(request.query_params.get("maxResults"))
        query = await _json_body(request, MAX_QUERY_BODY, SoftBindingQuery)
        return await run_in_threadpool(matches, query.alg, _decode_value(query.value), limit)

    def read_asset(spooled: Path) -> bytes | None:
        """The watermark payload in an uploaded asset (None: no watermark); _Refused when it cannot be read."""
        shown = str(spooled)
        try:
            media = sniff(spooled)
        except InputError as exc:
            raise _Refused(415, f"not a file this repository reads: {str(exc).replace(shown, 'the asset')}") from None
        if media.kind is not MediaKind.IMAGE:
            raise _Refused(415, f"not an image (content is {media.mime}); this repository reads image watermarks")
        try:
            with reader_lock:
                found = reader.detect(decode_image(spooled, keep_rgb=True).rgb)
        except (InputError, WatermarkError) as exc:
            # Refused, not "no match": an asset that could not be read was not checked.
            raise _Refused(422, f"the asset could not be read: {str(exc).replace(shown, 'the asset')}") from None
        return found.payload if found.detected else None

    @app.post("/matches/byContent")
    async def by_content(request: Request) -> dict:
        check_read(request)
        alg = request.query_params.get("alg")
        if alg is not None and alg != algorithm:
            raise _Refused(400, f"unsupported soft binding algorithm {alg!r}: this repository reads {algorithm}")
        limit = _max_results(request.query_params.get("maxResults"))
        if pending["n"] >= MAX_PENDING:
            raise _Refused(503, "busy: assets are being read; try again in a moment", {"Retry-After": "1"})
        pending["n"] += 1
        fd, name = tempfile.mkstemp(prefix="asset-", dir=spool_dir)
        try:
            with os.fdopen(fd, "wb") as out:
                size = await _spool(request, max_body, out)
            if size == 0:
                raise _Refused(400, "the body is empty: send the asset's bytes")
            payload = await run_in_threadpool(read_asset, Path(name))
            return {"matches": []} if payload is None else await run_in_threadpool(matches, algorithm, payload,
                                                                                    limit)
        finally:
            pending["n"] -= 1
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)

    @app.get("/manifests/{manifest_id}")
    def manifest(manifest_id: str, request: Request) -> Response:
        check_read(request)
        if request.query_params.get("returnActiveManifest", "false").lower() not in ("false", "0"):
            raise _Refused(400, "this repository serves whole manifest stores only (returnActiveManifest=false)")
        if not manifest_id or len(manifest_id) > MAX_MANIFEST_ID or not manifest_id.isprintable():
            raise _Refused(400, "invalid manifest id")
        try:
            with book_lock:
                record = book.get(_asset_id(manifest_id))
        except LedgerError:
            raise _Refused(500, "service failure: the ledger could not be read") from None
        if record is None or record.manifest_label != manifest_id:
            raise _Refused(404, "no such manifest in this repository")
        return Response(record.manifest, media_type="application/c2pa")

    @app.get("/services/supportedAlgorithms")
    def supported_algorithms() -> dict:
        return {"watermarks": [{"alg": algorithm}], "fingerprints": []}

    def publish(body: PublishedRecord) -> tuple[int, dict]:
        try:
            data = base64.b64decode(body.manifest, validate=True)
            asset = base64.b64decode(body.asset, validate=True)
        except (binascii.Error, ValueError):
            raise _Refused(400, "manifest or asset is not base64") from None
        try:
            facts = _manifest_facts(data)
        except InputError as exc:
            raise _Refused(422, str(exc)) from None
        mime, file_sha256, content_sha256 = _bound_asset(asset, data)
        asset_id = _asset_id(facts.label)
        answer = {"manifestId": facts.label}

        def already(existing: LedgerRecord) -> tuple[int, dict]:
            if existing.manifest == data:
                return 200, {**answer, "created": False}
            raise _Refused(409, f"manifest {facts.label} is already recorded with other content")

        with book_lock:
            try:
                existing = book.get(asset_id)
                if existing is not None:
                    return already(existing)
                # Watermark payload keys are unique in a ledger (a text watermark's key id is shared by every
                # text of its identity, so only the image watermark's values are checked).
                if facts.soft_binding_alg == algorithm and facts.soft_binding_value is not None:
                    taken = [r for r in book.find_by_soft_binding(facts.soft_binding_value)
                             if r.soft_binding_alg == facts.soft_binding_alg]
                    if taken:
                        raise _Refused(409, f"soft binding value already bound to manifest {taken[0].manifest_label}")
                book.record(LedgerRecord(
                    asset_id=asset_id, created_at=time.time(), mime=mime, file_sha256=file_sha256,
                    content_sha256=content_sha256, manifest_label=facts.label, manifest=data,
                    signer=facts.signer, soft_binding_alg=facts.soft_binding_alg,
                    soft_binding_value=facts.soft_binding_value))
            except LedgerError:
                # Another server of a shared database may have recorded it between the check and the insert.
                with contextlib.suppress(LedgerError):
                    existing = book.get(asset_id)
                    if existing is not None:
                        return already(existing)
                raise _Refused(500, "service failure: the ledger could not be written") from None
        return 201, {**answer, "created": True}

    @app.post("/manifests")
    async def publish_record(request: Request) -> JSONResponse:
        if not _holds(request, writers):
            raise _Refused(401, "publishing needs a write token (Authorization: Bearer ...)",
                           {"WWW-Authenticate": "Bearer"})
        body = await _json_body(request, max_body, PublishedRecord)
        status, answer = await run_in_threadpool(publish, body)
        return JSONResponse(answer, status_code=status)

    return app

