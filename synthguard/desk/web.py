"""The local web verification desk (``synthguard serve``): drop a file, see its verdict, desk action and evidence,
record a human review.

Same library calls as the CLI (``batch.Verifier.check`` for the verdict, ``report`` for the section and its
pictures, ``audit`` for the log). Safety rules:
- binds to 127.0.0.1 unless told otherwise;
- an upload is read in chunks and refused past the size limit (413) before it is all in memory: a declared
  length over it is refused unread, and the body is counted as it streams (a chunked upload without a length is cut
  off at the limit), so no more than the limit is ever spooled to disk;
- its type is sniffed from content, never trusted from the name or the browser's Content-Type; only images, audio
  (confirmed by ``core.audio.sniff_audio``: an MP3 needs two valid frames in a row, an Ogg stream Opus or Vorbis)
  and text are accepted (415);
- an audio upload's page plays it (``<audio controls>``) from ``/media/<sha256>``, which serves only stored files
  whose content is audio, with their codec's content type and the same security headers (the content security
  policy adds ``media-src 'self'`` and nothing else);
- uploads are stored in the desk's own folder under their SHA-256 and the sniffed extension, never under the
  uploaded name, so no path from the client reaches the file system;
- verification runs on a worker thread, one file at a time, never on the event loop (other pages stay responsive
  during a 100-megapixel check); at most ``MAX_PENDING`` uploads wait, then the desk answers "busy" (503);
- every page escapes what came from the file (names, manifest fields);
- every form carries a random token made at start-up, so another web page open in the same browser cannot submit
  uploads or record reviews on the desk's behalf (cross-site request forgery). A POST names it in its URL
  (``?token=``, the forms' action carries it) or in an ``X-SynthGuard-Token`` header, and it is checked before
  any of the body is read: a forged POST is refused (403) with nothing spooled. The forms keep it as a hidden field
  too, which must match when sent;
- the Host and Origin checks and the security headers are ``desk.http.harden``: a request whose Host is not one of
  the desk's own names, or a POST whose Origin is another site's, is refused (403), so a page on another domain
  that resolves to 127.0.0.1 (DNS rebinding) cannot read or drive the desk; every answer forbids framing and
  outside content (``Content-Security-Policy`` with ``frame-ancestors 'none'``, ``X-Frame-Options: DENY``,
  ``nosniff``; referrers only to itself, so a form it posts carries its Origin, and ``Origin: null`` (a sandboxed
  frame) counts as another site);
- ``synthguard serve`` runs it under ``desk.http.serve_hardened``: headers must arrive within a deadline, a
  stalled body is cut off, and the number of open connections is capped (slowloris).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import os
import secrets
import tempfile
import threading
from dataclasses import replace
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from synthguard.core.home import Home
from synthguard.core.media import MediaKind, sniff
from synthguard.desk.audit import AuditLog
from synthguard.desk.batch import Verifier, VerifyLine, VerifySettings
from synthguard.desk.http import SECURITY_HEADERS, harden
from synthguard.desk.report import STYLE, ReportEntry, file_pictures, section_html
from synthguard.errors import SynthGuardError
from synthguard.policy import DeskAction

DEFAULT_MAX_UPLOAD = 50 * 1024 * 1024
MAX_FILES = 20  # files in one drop
MAX_PENDING = 4  # uploads being verified or waiting; past it the desk answers "busy" (503)
MAX_REVIEW_FORM = 1024 * 1024  # bytes in a review's form (decision, editor, note)
TOKEN_HEADER = "X-SynthGuard-Token"
_CHUNK = 1024 * 1024
_EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp", "image/gif": ".gif",
               "image/tiff": ".tif", "image/avif": ".avif", "image/bmp": ".bmp", "text/plain": ".txt",
               "text/markdown": ".md", "application/json": ".json", "audio/wav": ".wav", "audio/flac": ".flac",
               "audio/mpeg": ".mp3", "audio/ogg": ".ogg", "audio/mp4": ".m4a"}
_KINDS = (MediaKind.IMAGE, MediaKind.AUDIO, MediaKind.TEXT)
# The desk's pages play an uploaded audio file from the desk itself; nothing else is loosened.
_CSP = "Content-Security-Policy"
DESK_HEADERS = {**SECURITY_HEADERS, _CSP: SECURITY_HEADERS[_CSP] + "; media-src 'self'"}

_PAGE = """<!doctype html><html lang=en><head><meta charset=utf-8><title>SynthGuard desk</title>
<style>{style}
form.drop{{border:2px dashed #999;padding:1.2em;margin:1em 0;background:#fafafa}}
.flash{{padding:.5em;background:#fff3cd;border:1px solid #e0c36c}}.ok{{background:#e6f4ea;border-color:#8bc34a}}
</style></head><body><h1>SynthGuard verification desk</h1>
<p>Policy <b>{policy}</b> (sha256 {policy_hash}). Files stay on this machine.</p>
<form class=drop method=post action="/verify?token={token}" enctype="multipart/form-data">
<input type=hidden name=token value="{token}">
<label>Drop or choose files (images, audio or texts, up to {limit} MB in all, {max_files} at a time): <input type=file
name=file id=file multiple required></label>
<button type=submit id=check>Verify</button></form>
{body}</body></html>"""


def _audio_format(path: Path):
    """The audio format of a file sniffed as audio, confirmed by the audio reader's stricter look (None: not audio
    SynthGuard reads)."""
    from synthguard.core.audio import sniff_audio  # noqa: PLC0415 (audio uploads only)

    with open(path, "rb") as handle:
        return sniff_audio(handle)


def _mib(n: int) -> str:
    return f"{n / 1024 / 1024:.0f}"


class Refused(Exception):
    """A request or an upload the desk will not take, with the HTTP status that says why."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def create_app(settings: VerifySettings, *, storage: Path | None = None, max_upload: int = DEFAULT_MAX_UPLOAD,
               hosts: tuple[str, ...] = ()):
    """The FastAPI application. ``storage``: where uploads are kept (default: SYNTHGUARD_HOME/desk-uploads);
    ``hosts``: host names the desk answers to besides 127.0.0.1, localhost and ::1 (the name it is bound to)."""
    home = Home(settings.home)
    store = Path(storage) if storage else home.root / "desk-uploads"
    store.mkdir(mode=0o700, parents=True, exist_ok=True)
    verifier = Verifier(settings)
    lock = threading.Lock()  # one verification at a time: the verifier's models and ledger are not thread-safe
    policy = settings.policy
    app = FastAPI(title="SynthGuard desk", docs_url=None, redoc_url=None, openapi_url=None)
    token = secrets.token_urlsafe(32)
    names: dict[str, str] = {}  # storage digest -> the name it was uploaded under (shown instead of the digest)
    pending = {"n": 0}  # uploads being verified or waiting (changed on the event loop only)

    harden(app, hosts, headers=DESK_HEADERS)

    def token_ok(value) -> bool:
        return isinstance(value, str) and hmac.compare_digest(value.encode(), token.encode())

    def request_token_ok(request: Request) -> bool:
        """The token a POST names before its body (header, or the URL of the desk's own forms)."""
        return token_ok(request.headers.get(TOKEN_HEADER) or request.query_params.get("token"))

    def stale() -> HTMLResponse:
        return flash("this form is stale or did not come from the desk: reload the page", 403)

    async def read_form(request: Request, cap: int, limit: int, **limits):
        """The POST's form, its body counted as it streams and refused past ``cap`` bytes (declared or sent);
        ``limit``: the size named in the refusal; ``limits``: Starlette's form limits."""
        too_large = Refused(f"upload too large: the limit is {_mib(limit)} MB", 413)
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > cap:
            raise too_large
        seen = {"bytes": 0}

        async def counted():
            message = await request.receive()
            seen["bytes"] += len(message.get("body", b""))
            if seen["bytes"] > cap:
                raise too_large
            return message

        try:
            return await Request(request.scope, counted).form(**limits)
        except ClientDisconnect:
            raise Refused("the upload was interrupted", 400) from None

    def page(body: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(_PAGE.format(style=STYLE, policy=html.escape(policy.name),
                                         policy_hash=policy.sha256[:16], limit=_mib(max_upload), body=body,
                                         token=token, max_files=MAX_FILES),
                            status_code=status)

    def flash(message: str, status: int) -> HTMLResponse:
        return page(f"<p class=flash id=error>{html.escape(message)}</p>", status)

    def stored(digest: str) -> Path | None:
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            return None
        found = [p for p in store.iterdir() if p.stem == digest]
        return found[0] if found else None

    def check(path: Path, shown_name: str | None = None) -> VerifyLine:
        with lock:
            line = verifier.check(path)
        shown = shown_name or names.get(path.stem) or path.name
        # Never show the desk's own storage path.
        return replace(line, file=shown, error=None if line.error is None else line.error.replace(str(path), shown))

    def result_page(path: Path, note: str = "", line: VerifyLine | None = None) -> HTMLResponse:
        line = line or check(path)
        heatmap = line.classifier.heatmap if line.classifier is not None else None
        figures = {} if line.error else file_pictures(path, heatmap)
        digest = line.sha256
        player = (f"<p><audio controls preload=metadata id=player src='/media/{digest}'></audio></p>"
                  if line.error is None and line.audio is not None else "")
        # No decision is chosen for the editor: the select starts empty and the form needs one.
        actions = "<option value='' selected disabled>choose...</option>" + "".join(
            f"<option value='{a.value}'>{a.value}</option>" for a in DeskAction)
        review = (f"<form method=post action='/review/{digest}?token={token}' id=review><h3>Record a review</h3>"
                  f"<input type=hidden name=token value='{token}'>"
                  f"<label>Decision <select name=decision id=decision required>{actions}</select></label> "
                  "<label>Editor <input name=editor id=editor required></label> "
                  "<label>Note <input name=note id=note></label> <button type=submit id=save>Record</button></form>")
        with AuditLog.from_home(home) as log:
            history = log.entries(digest)
        rows = "".join(f"<li>{html.escape(e.time)} {html.escape(e.kind)}: {html.escape(str(e.action))}"
                       + (f" by {html.escape(e.editor)}" if e.editor else "") + "</li>" for e in history)
        verdict = "None" if line.verdict is None else line.verdict.value
        body = (note + f"<div id=result data-verdict='{html.escape(verdict)}' "
                f"data-action='{html.escape(line.action.value)}'>"
                + player + section_html(ReportEntry.of_line(line, figures)) + "</div>" + review
                + (f"<h3>Audit trail of this file</h3><ul id=trail>{rows}</ul>" if rows else ""))
        return page(body)

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return page("")

    async def receive(upload) -> tuple[Path, str]:
        """Store one upload under its sha256 (checked: size, content type); returns (path, the name shown)."""
        fd, tmp = tempfile.mkstemp(prefix=".sg-up-", dir=store)
        digest, size = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := await upload.read(_CHUNK):
                    size += len(chunk)
                    if size > max_upload:
                        raise Refused(f"file too large: the limit is {_mib(max_upload)} MB", 413)
                    digest.update(chunk)
                    out.write(chunk)
            if size == 0:
                raise Refused("the file is empty", 400)
            try:
                media = sniff(Path(tmp))
            except SynthGuardError as exc:
                raise Refused(f"not a file the desk checks: {str(exc).replace(tmp, 'the upload')}", 415) from None
            if media.kind not in _KINDS:
                raise Refused(f"not an image, audio or text (content is {media.mime}); the desk checks images, "
                              "audio and texts", 415)
            suffix = _EXTENSIONS.get(media.mime, ".bin")
            if media.kind is MediaKind.AUDIO:
                audio = _audio_format(Path(tmp))
                if audio is None:
                    raise Refused(f"not a file the desk checks: its first bytes look like {media.mime}, but it is "
                                  "not audio the desk reads (WAV, FLAC, MP3, Ogg Opus/Vorbis, M4A)", 415)
                suffix = audio.suffix  # the codec's own (a FLAC behind an ID3 tag is not an MP3)
            final = store / (digest.hexdigest() + suffix)
            os.replace(tmp, final)
            tmp = None
        finally:
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)
        shown = f"{upload.filename or 'upload'} (sha256 {digest.hexdigest()[:12]})"
        names[digest.hexdigest()] = shown
        return final, shown

    def verified(final: Path, shown: str, filename: str) -> VerifyLine:
        line = check(final, shown)
        with AuditLog.from_home(home) as log:
            if policy.audit.record:
                log.record_verification(file=f"desk:{filename}", file_sha256=line.sha256,
                                        policy=policy.name, policy_sha256=policy.sha256,
                                        verdict=None if line.verdict is None else line.verdict.value,
                                        action=line.action.value,
                                        reasons=list(line.reasons) if policy.audit.reasons else None)
        return line

    @app.post("/verify", response_class=HTMLResponse)
    async def verify_upload(request: Request) -> HTMLResponse:
        if not request_token_ok(request):
            return stale()  # before a byte of the body is read
        try:
            # the files, and the form's own fields and boundaries
            form = await read_form(request, max_upload + 64 * 1024, max_upload, max_files=MAX_FILES, max_fields=4,
                                   max_part_size=max_upload + 1)
        except Refused as exc:
            return flash(str(exc), exc.status)
        if "token" in form and not token_ok(form["token"]):
            return stale()
        uploads = [u for u in form.getlist("file") if hasattr(u, "read")]
        if not uploads:
            return flash("no file in the upload", 400)
        if pending["n"] >= MAX_PENDING:
            return flash(f"the desk is busy ({pending['n']} uploads are being verified): try again in a moment", 503)
        pending["n"] += 1
        try:
            return await handle(uploads)
        finally:
            pending["n"] -= 1

    async def handle(uploads: list) -> HTMLResponse:
        if len(uploads) == 1:
            try:
                final, shown = await receive(uploads[0])
            except Refused as exc:
                return flash(str(exc), exc.status)
            name = uploads[0].filename or "upload"
            return await run_in_threadpool(lambda: result_page(final, line=verified(final, shown, name)))
        sections = []
        for upload in uploads:
            name = upload.filename or "upload"
            try:
                final, shown = await receive(upload)
            except Refused as exc:
                sections.append(f"<section class=refused><h2>{html.escape(name)}</h2><p class=errors>refused: "
                                f"{html.escape(str(exc))}</p></section>")
                continue
            line = await run_in_threadpool(verified, final, shown, name)
            verdict = "None" if line.verdict is None else line.verdict.value
            sections.append(f"<div class=result data-verdict='{html.escape(verdict)}' "
                            f"data-action='{html.escape(line.action.value)}'>"
                            + section_html(ReportEntry.of_line(line)) + f"<p><a href='/file/{line.sha256}'>"
                            "review this file</a></p></div>")
        return page(f"<div id=results>{''.join(sections)}</div>")

    @app.get("/media/{digest}")
    def media(digest: str) -> Response:
        """An uploaded audio file's bytes, for its page's player (images and texts are never served)."""
        path = stored(digest)
        audio = _audio_format(path) if path is not None and sniff(path).kind is MediaKind.AUDIO else None
        if audio is None:
            return Response("no such audio file on this desk", status_code=404, media_type="text/plain")
        return FileResponse(path, media_type=audio.mime)

    @app.get("/file/{digest}", response_class=HTMLResponse)
    def show(digest: str) -> HTMLResponse:
        path = stored(digest)
        return result_page(path) if path else flash("no such file on this desk", 404)

    @app.post("/review/{digest}", response_class=HTMLResponse)
    async def review(digest: str, request: Request) -> HTMLResponse:
        if not request_token_ok(request):
            return stale()  # before a byte of the body is read
        try:
            form = await read_form(request, MAX_REVIEW_FORM, MAX_REVIEW_FORM, max_files=0, max_fields=8,
                                   max_part_size=MAX_REVIEW_FORM)
        except Refused as exc:
            return flash(str(exc), exc.status)
        if "token" in form and not token_ok(form["token"]):
            return stale()
        decision, editor, note = form.get("decision"), form.get("editor"), form.get("note", "")
        if not (isinstance(decision, str) and decision and isinstance(editor, str) and isinstance(note, str)):
            return flash("a review needs a decision and the editor's name", 422)
        return await run_in_threadpool(record, digest, decision, editor, note)

    def record(digest: str, decision: str, editor: str, note: str) -> HTMLResponse:
        path = stored(digest)
        if path is None:
            return flash("no such file on this desk", 404)
        if decision not in {a.value for a in DeskAction}:
            return flash(f"unknown decision {decision!r}", 400)
        try:
            with AuditLog.from_home(home) as log:
                log.record_review(file=names.get(digest, path.name), file_sha256=digest, decision=decision,
                                  editor=editor, note=note, policy=policy.name, policy_sha256=policy.sha256)
        except SynthGuardError as exc:
            return flash(str(exc), 400)
        done = (f"<p class='flash ok' id=recorded>Review recorded: {html.escape(decision)} by "
                f"{html.escape(editor.strip())}.</p>")
        return result_page(path, done)

    return app
