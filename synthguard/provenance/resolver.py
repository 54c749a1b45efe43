"""A client of the C2PA Soft Binding Resolution API: which manifests does a manifest repository hold for a soft
binding (a watermark payload), and their bytes.

The queries follow the spec's OpenAPI (C2PA "Soft Binding API", 1.0.0): ``GET /matches/byBinding?alg=&value=``
answers ``{"matches": [{"manifestId", "endpoint"?, "similarityScore"?}]}``, ``GET /manifests/{manifestId}`` the
manifest store (``application/c2pa``), ``GET /services/supportedAlgorithms`` ``{"watermarks": [{"alg"}],
"fingerprints": [...]}``; publishing is SynthGuard's ``POST /manifests`` (``synthguard ledger serve``).

It trusts nothing it is told. It checks that an answer has the spec's shape and stays within its size limit, and
hands back a manifest's bytes only; the verifier re-validates them exactly like a local manifest (signature, trust,
the soft binding against the payload it decoded, the content). A match naming another repository (``endpoint``) is
reported, never followed: only the repositories the user listed are asked.

Every failure is a typed outcome (``ResolverOutcome``, ``kind`` one of ``OutcomeKind``), never an exception and
never an empty answer: a repository refused or not found (``unreachable``), one that does not answer in time,
connection, request and answer together (``timeout``: a socket that accepts and never answers, or answers a byte at
a time), one whose answer is not HTTP, not JSON, of another shape or too large (``invalid-answer``), and an HTTP
error status (``http-error``). Answers are cached for the life of the ``Resolver`` (one run); after a repository
was unreachable or timed out it is not asked again for ``retry_s`` seconds, and the remembered failure is the
answer, marked ``cached``.

The transport is the standard library's ``http.client`` (no proxy settings are read): one code path wherever the
package is installed.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import socket
import threading
import time
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode, urlsplit

from synthguard.errors import InputError
from synthguard.provenance.ledger import LedgerRecord

if TYPE_CHECKING:
    import http.client

DEFAULT_TIMEOUT_S = 5.0
DEFAULT_RETRY_S = 30.0
MAX_ANSWER = 1024 * 1024  # a JSON answer
MAX_MANIFEST = 32 * 1024 * 1024  # a manifest store (thumbnails included)
MAX_RESULTS = 100
MAX_MANIFEST_ID = 256
MAX_ENDPOINT = 2048
_DETAIL_CHARS = 200
_CHUNK = 64 * 1024
_USER_AGENT = "synthguard-resolver/1"


class OutcomeKind(str, Enum):
    OK = "ok"
    UNREACHABLE = "unreachable"  # no connection: refused, no such host, network down, TLS refused
    TIMEOUT = "timeout"  # connected or not, no complete answer within the timeout
    INVALID_ANSWER = "invalid-answer"  # not HTTP, not JSON, another shape, too large, not a manifest store
    HTTP_ERROR = "http-error"  # an HTTP status other than success (404, 401, 500, a redirect...)


class ResolverQuery(str, Enum):
    BY_BINDING = "matches/byBinding"
    MANIFEST = "manifests"
    SUPPORTED_ALGORITHMS = "services/supportedAlgorithms"
    PUBLISH = "publish"  # SynthGuard's POST /manifests


@dataclass(frozen=True)
class Match:
    """One manifest a repository says carries the soft binding (its word only, until the verifier checks it)."""

    manifest_id: str
    similarity_score: int | None = None  # 0-100, when the repository gives one
    endpoint: str | None = None  # another repository to fetch it from: reported, never followed

    def to_dict(self) -> dict:
        return {"manifest_id": self.manifest_id, "similarity_score": self.similarity_score,
                "endpoint": self.endpoint}


@dataclass(frozen=True)
class ResolverOutcome:
    """What one question to one repository gave: ``kind`` says whether there is an answer; ``detail`` why not."""

    resolver: str  # the repository's base URL
    query: ResolverQuery
    kind: OutcomeKind
    detail: str = ""  # plain English, for every kind but ok
    status: int | None = None  # the HTTP status, when an answer came
    matches: tuple[Match, ...] = ()  # BY_BINDING
    manifest_id: str | None = None  # MANIFEST, PUBLISH
    manifest: bytes | None = field(default=None, repr=False)  # MANIFEST: the bytes, not yet validated
    algorithms: tuple[str, ...] = ()  # SUPPORTED_ALGORITHMS
    created: bool | None = None  # PUBLISH: a new record (False: the same one was there already)
    elapsed_ms: float = 0.0
    cached: bool = False  # the answer was remembered from earlier in this run

    @property
    def ok(self) -> bool:
        return self.kind is OutcomeKind.OK

    def to_dict(self) -> dict:
        return {"resolver": self.resolver, "query": self.query.value, "kind": self.kind.value,
                "detail": self.detail or None, "status": self.status,
                "matches": [m.to_dict() for m in self.matches], "manifest_id": self.manifest_id,
                "manifest_bytes": None if self.manifest is None else len(self.manifest),
                "manifest_sha256": None if self.manifest is None else hashlib.sha256(self.manifest).hexdigest(),
                "algorithms": list(self.algorithms), "created": self.created,
                "elapsed_ms": round(self.elapsed_ms, 1), "cached": self.cached}

    def describe(self) -> tuple[str, ...]:
        again = " (remembered from earlier in this run)" if self.cached else ""
        where = f"resolver {self.resolver}"
        if self.kind is OutcomeKind.OK:
            if self.query is ResolverQuery.BY_BINDING:
                if not self.matches:
                    return (f"{where}: no manifest carries this soft binding{again}",)
                lines = [f"{where}: {len(self.matches)} match(es){again}"]
                lines += [f"  {m.manifest_id}" + (f" (score {m.similarity_score})" if m.similarity_score is not None
                                                  else "")
                          + (f", held at {m.endpoint}: not followed" if m.endpoint else "") for m in self.matches]
                return tuple(lines)
            if self.query is ResolverQuery.MANIFEST:
                return (f"{where}: manifest {self.manifest_id} ({len(self.manifest or b'')} bytes, to be "
                        f"validated){again}",)
            if self.query is ResolverQuery.PUBLISH:
                return (f"{where}: {'recorded' if self.created else 'already held'} manifest {self.manifest_id}",)
            return (f"{where}: resolves {', '.join(self.algorithms) or 'no algorithm'}{again}",)
        what = {OutcomeKind.UNREACHABLE: "could not be reached", OutcomeKind.TIMEOUT: "did not answer in time",
                OutcomeKind.INVALID_ANSWER: "gave an invalid answer (nothing from it is used)",
                OutcomeKind.HTTP_ERROR: f"answered HTTP {self.status}"}[self.kind]
        return (f"{where} {what}: {self.detail}{again}",)


def _clean(text: str) -> str:
    """Text from a remote server, safe to print: one line, printable, bounded."""
    line = "".join(c if c.isprintable() else " " for c in " ".join(text.split()))
    return line[:_DETAIL_CHARS] + ("..." if len(line) > _DETAIL_CHARS else "")


def _json_type(content_type: str | None) -> bool:
    mime = (content_type or "").split(";")[0].strip().lower()
    return mime == "application/json" or mime.endswith("+json")


class _Failed(Exception):
    """Internal: a failed exchange, carried to the one place that turns it into an outcome."""

    def __init__(self, kind: OutcomeKind, detail: str, status: int | None = None):
        super().__init__(detail)
        self.kind, self.detail, self.status = kind, detail, status


@dataclass(frozen=True)
class _Answer:
    status: int
    content_type: str | None
    body: bytes


class Resolver:
    """One Soft Binding Resolution API repository at ``url`` (``http://`` or ``https://``, with its base path).

    ``timeout``: seconds for a whole exchange (connect, request, answer); ``token``: a bearer token sent with every
    request (a read token, or a write token to publish). An unusable ``url``, token or question is an
    ``InputError``; whatever the repository does (or fails to do), each question gives a ``ResolverOutcome``.
    """

    def __init__(self, url: str, *, timeout: float = DEFAULT_TIMEOUT_S, token: str | None = None,
                 retry_s: float = DEFAULT_RETRY_S, max_answer: int = MAX_ANSWER, max_manifest: int = MAX_MANIFEST):
        parts = urlsplit(str(url).strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InputError(f"resolver URL {url!r} is not an http:// or https:// address")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise InputError(f"resolver URL {url!r} must be a plain base address (no credentials, query or "
                             "fragment; a token is given separately)")
        try:
            port = parts.port
        except ValueError:
            raise InputError(f"resolver URL {url!r} has an invalid port") from None
        if not timeout > 0:
            raise InputError(f"resolver timeout must be positive, not {timeout}")
        if token is not None and (not token or not token.isascii() or not token.isprintable() or " " in token):
            raise InputError("a resolver token must be one printable ASCII word")
        self.url = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
        self.timeout, self.retry_s = float(timeout), float(retry_s)
        self.max_answer, self.max_manifest = max_answer, max_manifest
        self._https, self._host, self._port = parts.scheme == "https", parts.hostname, port
        self._base_path = parts.path.rstrip("/")
        self._token = token
        self._cache: dict[tuple, ResolverOutcome] = {}
        self._down: tuple[float, ResolverOutcome] | None = None  # (monotonic time, the failure)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Resolver({self.url!r}, timeout={self.timeout})"

    # --- the questions ----------------------------------------------------------------------------------------

    def resolve_by_binding(self, alg: str, value: bytes, *, max_results: int = 10) -> ResolverOutcome:
        """The manifests the repository says carry soft binding ``alg`` with ``value`` (raw bytes: for SynthGuard's
        image watermark, the payload)."""
        if not alg or not value:
            raise InputError("a soft binding query needs an algorithm and a non-empty value")
        if not 1 <= max_results <= MAX_RESULTS:
            raise InputError(f"max_results must be 1 to {MAX_RESULTS}, not {max_results}")
        encoded = base64.b64encode(bytes(value)).decode()
        target = "/matches/byBinding?" + urlencode({"alg": alg, "value": encoded, "maxResults": max_results})
        return self._ask(ResolverQuery.BY_BINDING, ("GET", target),
                         lambda answer: self._matches(answer, max_results))

    def fetch_manifest(self, manifest_id: str) -> ResolverOutcome:
        """The manifest store ``manifest_id`` from this repository (bytes only: validating it is the caller's)."""
        if not manifest_id or len(manifest_id) > MAX_MANIFEST_ID:
            raise InputError(f"invalid manifest id {manifest_id!r}")
        target = "/manifests/" + quote(manifest_id, safe="")
        return self._ask(ResolverQuery.MANIFEST, ("GET", target), lambda answer: self._manifest(answer, manifest_id),
                         limit=self.max_manifest)

    def supported_algorithms(self) -> ResolverOutcome:
        """The soft binding algorithms the repository resolves."""
        return self._ask(ResolverQuery.SUPPORTED_ALGORITHMS, ("GET", "/services/supportedAlgorithms"),
                         self._algorithms)

    def publish(self, record: LedgerRecord, asset: bytes) -> ResolverOutcome:
        """Send a local ledger record's manifest and its signed asset (the file as signed: the repository computes
        the hashes it is found by and checks the manifest binds it) to the repository (needs a write token); never
        cached."""
        body = json.dumps({"manifest": base64.b64encode(record.manifest).decode(),
                           "asset": base64.b64encode(asset).decode()}).encode()
        return self._ask(ResolverQuery.PUBLISH, ("POST", "/manifests", body), self._published, cache=False)

    # --- the exchange -----------------------------------------------------------------------------------------

    def _ask(self, query: ResolverQuery, request: tuple, read, *, limit: int | None = None,
             cache: bool = True) -> ResolverOutcome:
        key = (query, *request)
        with self._lock:
            if cache and key in self._cache:
                return replace(self._cache[key], cached=True)
            if cache and self._down is not None and time.monotonic() - self._down[0] < self.retry_s:
                failure = self._down[1]
                return replace(failure, query=query, cached=True, elapsed_ms=0.0)
        start = time.monotonic()
        try:
            answer = self._exchange(*request, limit=limit or self.max_answer)
            try:
                outcome = ResolverOutcome(self.url, query, OutcomeKind.OK, status=answer.status, **read(answer))
            except _Failed:
                raise
            except Exception as exc:  # noqa: BLE001 (whatever the answer holds, reading it never raises)
                raise _Failed(OutcomeKind.INVALID_ANSWER, f"the answer cannot be read ({type(exc).__name__}: "
                                                          f"{_clean(str(exc))})", answer.status) from None
        except _Failed as failed:
            outcome = ResolverOutcome(self.url, query, failed.kind, failed.detail, failed.status)
        outcome = replace(outcome, elapsed_ms=(time.monotonic() - start) * 1000)
        with self._lock:
            if outcome.kind in (OutcomeKind.UNREACHABLE, OutcomeKind.TIMEOUT):
                self._down = (time.monotonic(), outcome)
            else:
                self._down = None
                transient = outcome.status is not None and (outcome.status >= 500 or outcome.status in (408, 429))
                # A manifest's bytes are not kept (up to max_manifest each): only answers that are small.
                if cache and not transient and outcome.manifest is None:
                    self._cache[key] = outcome
        return outcome

    def _exchange(self, method: str, target: str, body: bytes | None = None, *, limit: int) -> _Answer:
        """One request; the whole exchange ends by ``timeout`` (a watchdog shuts the socket down at the deadline,
        so a server that answers a byte at a time cannot hold it)."""
        import http.client  # noqa: PLC0415 (the transport: only a run that asks a resolver pays its import)
        import ssl  # noqa: PLC0415 (as above)

        headers = {"Accept": "application/json, application/c2pa", "User-Agent": _USER_AGENT}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        if body is not None:
            headers["Content-Type"] = "application/json"
        if self._https:
            conn = http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout,
                                               context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        expired = threading.Event()

        def watchdog() -> None:
            expired.set()
            sock = conn.sock
            if sock is not None:
                with contextlib.suppress(OSError):  # already closed: the exchange has ended anyway
                    sock.shutdown(socket.SHUT_RDWR)

        timer = threading.Timer(self.timeout, watchdog)
        timer.daemon = True
        timer.start()
        late = f"no complete answer within {self.timeout:g} s"
        try:
            try:
                conn.connect()
            except TimeoutError:
                raise _Failed(OutcomeKind.TIMEOUT, f"no connection within {self.timeout:g} s") from None
            except ssl.SSLError as exc:
                raise _Failed(OutcomeKind.UNREACHABLE, f"TLS failed: {_clean(str(exc))}") from None
            except OSError as exc:
                if expired.is_set():
                    raise _Failed(OutcomeKind.TIMEOUT, late) from None
                raise _Failed(OutcomeKind.UNREACHABLE, _clean(exc.strerror or str(exc)) or type(exc).__name__
                              ) from None
            except ValueError as exc:  # a host name that cannot be encoded (an empty IDNA label...)
                raise _Failed(OutcomeKind.UNREACHABLE, f"invalid host name ({_clean(str(exc))})") from None
            try:
                conn.request(method, self._base_path + target, body=body, headers=headers)
                response = conn.getresponse()
                data = self._read(response, limit, expired)
            except _Failed:
                raise
            except TimeoutError:
                raise _Failed(OutcomeKind.TIMEOUT, late) from None
            except (http.client.HTTPException, OSError, ValueError) as exc:
                if expired.is_set():
                    raise _Failed(OutcomeKind.TIMEOUT, late) from None
                raise _Failed(OutcomeKind.INVALID_ANSWER, f"not an HTTP answer ({type(exc).__name__}: "
                                                          f"{_clean(str(exc))})") from None
        finally:
            timer.cancel()
            conn.close()
        if expired.is_set():
            raise _Failed(OutcomeKind.TIMEOUT, late)
        content_type = response.getheader("content-type")
        if response.status not in (200, 201):
            raise _Failed(OutcomeKind.HTTP_ERROR, self._error_detail(response, content_type, data), response.status)
        return _Answer(response.status, content_type, data)

    def _read(self, response: http.client.HTTPResponse, limit: int, expired: threading.Event) -> bytes:
        declared = response.getheader("content-length")
        if declared and declared.strip().isdigit() and int(declared) > limit:
            raise _Failed(OutcomeKind.INVALID_ANSWER, f"the answer announces {int(declared)} bytes, over the "
                                                      f"{limit}-byte limit")
        chunks, size = [], 0
        while chunk := response.read(min(_CHUNK, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise _Failed(OutcomeKind.INVALID_ANSWER, f"the answer is over the {limit}-byte limit")
        if expired.is_set():
            raise _Failed(OutcomeKind.TIMEOUT, f"no complete answer within {self.timeout:g} s")
        return b"".join(chunks)

    @staticmethod
    def _error_detail(response: http.client.HTTPResponse, content_type: str | None, data: bytes) -> str:
        if 300 <= response.status < 400:
            return f"a redirect to {_clean(response.getheader('location') or '?')}, not followed"
        said = ""
        if _json_type(content_type):
            try:
                parsed = json.loads(data)
                said = parsed.get("detail", "") if isinstance(parsed, dict) else ""
            except (ValueError, RecursionError):
                said = ""
        elif (content_type or "").lower().startswith("text/plain"):
            said = data[:_DETAIL_CHARS * 4].decode("utf-8", errors="replace")
        reason = _clean(str(said)) if said else _clean(response.reason or "")
        return reason or f"HTTP {response.status}"

    # --- reading answers (each raises _Failed for anything off the spec) ----------------------------------------

    @staticmethod
    def _json(answer: _Answer) -> dict:
        if not _json_type(answer.content_type):
            raise _Failed(OutcomeKind.INVALID_ANSWER, f"the answer is {_clean(answer.content_type or 'untyped')}, "
                                                      "not JSON", answer.status)
        try:
            parsed = json.loads(answer.body)
        except (ValueError, RecursionError) as exc:
            raise _Failed(OutcomeKind.INVALID_ANSWER, f"the answer is not JSON ({_clean(str(exc))})",
                          answer.status) from None
        if not isinstance(parsed, dict):
            raise _Failed(OutcomeKind.INVALID_ANSWER, f"the answer is a JSON {type(parsed).__name__}, not an object",
                          answer.status)
        return parsed

    def _matches(self, answer: _Answer, asked: int) -> dict:
        parsed = self._json(answer)

        def wrong(why: str) -> _Failed:
            return _Failed(OutcomeKind.INVALID_ANSWER, why, answer.status)

        # "matches" is not marked required in the schema, but an answer that does not say it is not read as
        # "no match": a 200 with some other object would otherwise hide a broken repository.
        items = parsed.get("matches")
        if not isinstance(items, list):
            raise wrong("the answer has no \"matches\" list")
        if len(items) > asked:
            raise wrong(f"{len(items)} matches, more than the {asked} asked for")
        found = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise wrong(f"match {i} is not an object")
            manifest_id, score, endpoint = item.get("manifestId"), item.get("similarityScore"), item.get("endpoint")
            if not isinstance(manifest_id, str) or not 0 < len(manifest_id) <= MAX_MANIFEST_ID \
                    or not manifest_id.isprintable():
                raise wrong(f"match {i} has no valid manifestId")
            if score is not None and (type(score) is not int or not 0 <= score <= 100):
                raise wrong(f"match {i}: similarityScore {_clean(repr(score))} is not an integer from 0 to 100")
            if endpoint is not None:
                try:
                    scheme = urlsplit(endpoint).scheme if isinstance(endpoint, str) else None
                except ValueError:
                    scheme = None
                if scheme not in ("http", "https") or len(endpoint) > MAX_ENDPOINT:
                    raise wrong(f"match {i}: endpoint is not an http(s) address")
                endpoint = None if endpoint.rstrip("/") == self.url else endpoint
            found.append(Match(manifest_id, score, endpoint))
        return {"matches": tuple(found)}

    @staticmethod
    def _manifest(answer: _Answer, manifest_id: str) -> dict:
        mime = (answer.content_type or "").split(";")[0].strip().lower()
        if mime not in ("application/c2pa", "application/octet-stream"):
            raise _Failed(OutcomeKind.INVALID_ANSWER, f"the manifest came as {_clean(mime or 'untyped')}, not "
                                                      "application/c2pa", answer.status)
        # A manifest store is a JUMBF superbox: 4 bytes of length, then the box type "jumb".
        if len(answer.body) < 8 or answer.body[4:8] != b"jumb":
            raise _Failed(OutcomeKind.INVALID_ANSWER, "the answer is not a C2PA manifest store (no JUMBF box)",
                          answer.status)
        return {"manifest_id": manifest_id, "manifest": answer.body}

    def _algorithms(self, answer: _Answer) -> dict:
        parsed = self._json(answer)
        names = []
        if not any(isinstance(parsed.get(k), list) for k in ("watermarks", "fingerprints")):
            raise _Failed(OutcomeKind.INVALID_ANSWER, "the answer lists neither watermarks nor fingerprints",
                          answer.status)
        for kind in ("watermarks", "fingerprints"):
            for item in parsed.get(kind) or []:
                alg = item.get("alg") if isinstance(item, dict) else None
                if not isinstance(alg, str) or not alg or not alg.isprintable():
                    raise _Failed(OutcomeKind.INVALID_ANSWER, f"an entry of {kind} has no alg", answer.status)
                names.append(alg)
        return {"algorithms": tuple(names)}

    def _published(self, answer: _Answer) -> dict:
        parsed = self._json(answer)
        manifest_id, created = parsed.get("manifestId"), parsed.get("created")
        if not isinstance(manifest_id, str) or not isinstance(created, bool):
            raise _Failed(OutcomeKind.INVALID_ANSWER, "the answer to a publish has no manifestId and created",
                          answer.status)
        return {"manifest_id": manifest_id, "created": created}


@dataclass(frozen=True)
class RemoteManifest:
    """A manifest store one repository gave for a match: bytes only, not yet validated."""

    resolver: str
    manifest_id: str
    manifest: bytes = field(repr=False)
    similarity_score: int | None = None

    def to_dict(self) -> dict:
        return {"resolver": self.resolver, "manifest_id": self.manifest_id, "manifest_bytes": len(self.manifest),
                "similarity_score": self.similarity_score}


@dataclass(frozen=True)
class RemoteLookup:
    """One soft binding asked of every listed repository: each question's outcome, in the order asked (a
    repository's matches, then its manifest fetches), and the manifests that came back."""

    alg: str
    value: bytes
    outcomes: tuple[ResolverOutcome, ...]
    manifests: tuple[RemoteManifest, ...]
    notes: tuple[str, ...] = ()  # what was left unasked (matches past max_manifests)

    @property
    def failures(self) -> tuple[ResolverOutcome, ...]:
        """The questions that got no usable answer (each one is reported)."""
        return tuple(o for o in self.outcomes if not o.ok)

    def to_dict(self) -> dict:
        return {"alg": self.alg, "value": self.value.hex(), "outcomes": [o.to_dict() for o in self.outcomes],
                "manifests": [m.to_dict() for m in self.manifests], "notes": list(self.notes)}

    def describe(self) -> tuple[str, ...]:
        return (*(line for o in self.outcomes for line in o.describe()), *self.notes)


def look_up(resolvers, alg: str, value: bytes, *, max_manifests: int = 3) -> RemoteLookup:
    """Ask each of ``resolvers`` (``Resolver`` objects, in order) for soft binding ``alg`` / ``value`` and fetch
    up to ``max_manifests`` of each one's matches from that repository (a match held elsewhere is not fetched; its
    outcome says so). Never raises for a repository's failure: every outcome is in the result."""
    outcomes: list[ResolverOutcome] = []
    manifests: list[RemoteManifest] = []
    notes: list[str] = []
    for resolver in resolvers:
        found = resolver.resolve_by_binding(alg, value)
        outcomes.append(found)
        held = [m for m in found.matches if m.endpoint is None]
        if len(held) > max_manifests:
            notes.append(f"resolver {resolver.url} listed {len(held)} matches; only the first {max_manifests} were "
                         "fetched")
        for match in held[:max_manifests]:
            fetched = resolver.fetch_manifest(match.manifest_id)
            outcomes.append(fetched)
            if fetched.ok and fetched.manifest is not None:
                manifests.append(RemoteManifest(resolver.url, match.manifest_id, fetched.manifest,
                                                match.similarity_score))
    return RemoteLookup(alg, bytes(value), tuple(outcomes), tuple(manifests), tuple(notes))
