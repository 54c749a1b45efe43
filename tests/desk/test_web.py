"""The web desk: uploads sniffed and size-limited, the form token checked before the body is read, verdict pages,
reviews in the audit log; a real uvicorn on a loopback port against slow clients (incomplete headers, stalled
bodies, too many connections); and a real headless Chromium driven by Playwright uploading a stamped image, a real
photo and a tampered file."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import socket
import tempfile
import threading
import time

import pytest
from click.testing import CliRunner
from helpers.net import free_port
from PIL import Image

from synthguard.cli import main
from synthguard.desk.audit import AuditLog
from synthguard.desk.batch import VerifySettings
from synthguard.policy import DEFAULT_POLICY

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from synthguard.desk.web import create_app  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def files(home, tmp_path, png):
    """A stamped image, a real photo (no manifest) and a signed file whose pixels changed afterwards."""
    from synthguard.demo import _swap_png_pixels

    runner = CliRunner()
    stamped = tmp_path / "stamped.png"
    assert runner.invoke(main, ["sign", str(png), "-o", str(stamped), "--ai"]).exit_code == 0
    skimage = pytest.importorskip("skimage.data")
    photo = tmp_path / "photo.jpg"
    Image.fromarray(skimage.coffee()).save(photo, quality=90)
    with Image.open(stamped) as img:
        edited = img.copy()
    edited.putpixel((5, 5), (255, 0, 0))
    buf = io.BytesIO()
    edited.save(buf, format="PNG")
    tampered = tmp_path / "tampered.png"
    tampered.write_bytes(_swap_png_pixels(stamped.read_bytes(), buf.getvalue()))
    return {"stamped": stamped, "photo": photo, "tampered": tampered}


@pytest.fixture
def client(home, tmp_path):
    app = create_app(VerifySettings(policy=DEFAULT_POLICY, home=home.root), storage=tmp_path / "store",
                     max_upload=1024 * 1024)
    return TestClient(app, base_url="http://127.0.0.1:8000")


def token(client) -> dict:
    """The form token the desk's own page carries (another site cannot read it); a POST names it in its URL (the
    forms' action) and the forms carry it as a hidden field too."""
    page = client.get("/").text
    value = re.search(r'name=token value="([^"]+)"', page).group(1)
    assert f'action="/verify?token={value}"' in page
    return {"token": value}


def verdict_of(page: str) -> tuple[str, str]:
    m = re.search(r"data-verdict='([^']*)' data-action='([^']*)'", page)
    assert m, page[:500]
    return m.group(1), m.group(2)


def test_upload_verdicts_and_review(home, files, client, tmp_path):
    # files first: the desk starts once the signing identity exists, so it trusts it (a desk started before would
    # read the stamped file's manifest as untrusted, and its mark alone as ai-declared)
    expected = {"stamped": ("ai-generated", "label-ai"), "tampered": ("tampered", "reject")}
    t = token(client)
    for name, want in expected.items():
        page = client.post("/verify", params=t, data=t,
                           files={"file": (f"{name}.png", files[name].read_bytes(), "image/png")}).text
        assert verdict_of(page) == want, name
        assert "classifier heatmap" in page and "spectrum" in page
    photo = client.post("/verify", params=t, data=t,
                        files={"file": ("photo.jpg", files["photo"].read_bytes(), "image/jpeg")}).text
    assert verdict_of(photo)[0] in ("unknown", "likely-synthetic")  # never ai-generated without a declaration
    digest = re.search(r"/review/([0-9a-f]{64})", photo).group(1)
    forged = client.post(f"/review/{digest}", data={"decision": "publish", "editor": "Mallory"})
    assert forged.status_code == 403  # a form without the desk's token (another site posting) is refused
    assert f"action='/review/{digest}?token={t['token']}'" in photo
    done = client.post(f"/review/{digest}", params=t, data={"decision": "publish", "editor": "A. Editor",
                                                            "note": "agency", **t})
    assert "Review recorded: publish by A. Editor" in done.text
    with AuditLog(home.audit_path) as log:
        kinds = [e.kind for e in log.entries(digest)]
    assert kinds == ["verification", "review"]
    assert not list((tmp_path / "store").glob(".sg-up-*"))  # no temp upload left behind
    assert {p.suffix for p in (tmp_path / "store").iterdir()} <= {".png", ".jpg"}


def test_refusals(client, tmp_path):
    t = token(client)
    no_token = client.post("/verify", files={"file": ("a.png", b"\x89PNG", "image/png")})
    assert no_token.status_code == 403
    only_in_the_body = client.post("/verify", data=t, files={"file": ("a.png", b"\x89PNG", "image/png")})
    assert only_in_the_body.status_code == 403  # the token must be known before the body is read
    too_big = client.post("/verify", params=t, data=t,
                          files={"file": ("big.png", b"\x89PNG" + b"0" * (2 * 1024 * 1024), "image/png")})
    assert too_big.status_code == 413 and "too large" in too_big.text
    lies = {"file": ("photo.png", os.urandom(4096), "image/png")}
    exe = client.post("/verify", params=t, data=t, files=lies)
    assert exe.status_code == 415 and "not a file the desk checks" in exe.text and ".sg-up-" not in exe.text
    empty = client.post("/verify", params=t, data=t, files={"file": ("e.png", b"", "image/png")})
    assert empty.status_code == 400
    review = {"decision": "publish", "editor": "E", **t}
    assert client.post("/review/" + "0" * 64, params=t, data=review).status_code == 404
    assert client.post("/review/..%2F..%2Fetc", params=t, data=review).status_code == 404
    assert client.post("/review/" + "0" * 64, data=review).status_code == 403  # token only in the body
    huge_note = client.post("/review/" + "0" * 64, params=t, data={**review, "note": "n" * (2 * 1024 * 1024)})
    assert huge_note.status_code == 413
    assert not [p for p in (tmp_path / "store").iterdir()]


def test_declared_length_over_the_limit_is_refused_before_reading(client):
    def body():
        yield b"x" * 1024
        raise AssertionError("the desk read the body of an upload it should have refused")

    response = client.post("/verify", params=token(client), content=body(), headers={
        "content-type": "multipart/form-data; boundary=xyz", "content-length": str(200 * 1024 * 1024)})
    assert response.status_code == 413


def test_other_hosts_other_origins_and_framing_are_refused(client):
    page = client.get("/")
    assert page.status_code == 200
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY" and page.headers["x-content-type-options"] == "nosniff"
    # DNS rebinding: another name resolving to 127.0.0.1 reaches the desk with its own Host header.
    rebound = client.get("/", headers={"host": "attacker.example:8000"})
    assert rebound.status_code == 403 and "x-frame-options" in rebound.headers
    assert client.get("/", headers={"host": "localhost:8000"}).status_code == 200
    assert client.get("/", headers={"host": "[::1]:8000"}).status_code == 200
    t = token(client)
    crossed = client.post("/verify", params=t, data=t, headers={"origin": "https://attacker.example"},
                          files={"file": ("a.png", b"\x89PNG", "image/png")})
    assert crossed.status_code == 403 and "another site" in crossed.text
    sandboxed = client.post("/verify", params=t, data=t, headers={"origin": "null"},
                            files={"file": ("a.png", b"\x89PNG", "image/png")})
    assert sandboxed.status_code == 403


def test_a_review_starts_undecided_and_names_the_upload(home, files, client):
    t = token(client)
    photo = client.post("/verify", headers={"X-SynthGuard-Token": t["token"]},
                        files={"file": ("wire-photo.jpg", files["photo"].read_bytes(), "image/jpeg")}).text
    select = re.search(r"<select name=decision id=decision required>(.*?)</select>", photo).group(1)
    assert select.startswith("<option value='' selected disabled>") and select.count("selected") == 1
    digest = re.search(r"/review/([0-9a-f]{64})", photo).group(1)
    assert client.post(f"/review/{digest}", params=t, data={"editor": "E", **t}).status_code == 422  # no decision
    done = client.post(f"/review/{digest}", params=t, data={"decision": "human-review", "editor": "E", **t})
    assert "Review recorded" in done.text and "wire-photo.jpg" in done.text
    with AuditLog(home.audit_path) as log:
        assert log.entries(digest)[-1].file.startswith("wire-photo.jpg")


def test_several_files_dropped_at_once_each_get_a_result(files, client):
    t = token(client)
    page = client.post("/verify", params=t, data=t, files=[
        ("file", ("stamped.png", files["stamped"].read_bytes(), "image/png")),
        ("file", ("tampered.png", files["tampered"].read_bytes(), "image/png")),
        ("file", ("bad.png", os.urandom(4096), "image/png"))]).text
    verdicts = re.findall(r"class=result data-verdict='([^']*)'", page)
    assert verdicts == ["ai-generated", "tampered"]
    assert "bad.png" in page and "refused: not a file the desk checks" in page
    assert page.count("review this file") == 2


def test_a_slow_verification_leaves_other_pages_responsive_and_a_full_queue_says_busy(home, files, tmp_path,
                                                                                     monkeypatch):
    import concurrent.futures

    from synthguard.desk import web
    from synthguard.desk.batch import Verifier

    slow, original = threading.Event(), Verifier.check

    def check(self, path):
        slow.wait(10)  # held until the test lets it go
        return original(self, path)

    monkeypatch.setattr(Verifier, "check", check)
    monkeypatch.setattr(web, "MAX_PENDING", 1)
    app = create_app(VerifySettings(policy=DEFAULT_POLICY, home=home.root), storage=tmp_path / "store")
    with TestClient(app, base_url="http://127.0.0.1:8000") as desk, concurrent.futures.ThreadPoolExecutor(2) as pool:
        t = token(desk)
        upload = pool.submit(desk.post, "/verify", params=t, data=t,
                             files={"file": ("photo.jpg", files["photo"].read_bytes(), "image/jpeg")})
        deadline = time.monotonic() + 10
        while not list((tmp_path / "store").glob("*.jpg")) and time.monotonic() < deadline:
            time.sleep(0.02)  # until the upload is stored and its verification is under way
        start = time.monotonic()
        assert desk.get("/").status_code == 200 and time.monotonic() - start < 2  # not blocked behind it
        busy = desk.post("/verify", params=t, data=t,
                         files={"file": ("b.jpg", files["photo"].read_bytes(), "image/jpeg")})
        assert busy.status_code == 503 and "busy" in busy.text
        slow.set()
        assert upload.result(timeout=60).status_code == 200


@pytest.fixture
def spooled(monkeypatch) -> dict:
    """``{"bytes": N}``: how many upload bytes the desk's form parser wrote to its spool files."""
    from starlette.datastructures import UploadFile

    counted = {"bytes": 0}
    write = UploadFile.write

    async def counting_write(self, data):
        counted["bytes"] += len(data)
        return await write(self, data)

    monkeypatch.setattr(UploadFile, "write", counting_write)
    return counted


def test_a_chunked_upload_without_a_length_is_cut_off_at_the_limit(client, spooled):
    def body():
        yield b"--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.png\"\r\n\r\n"
        for _ in range(160):  # 10 MB, no Content-Length: sent chunked
            yield b"0" * (64 * 1024)

    response = client.post("/verify", params=token(client), content=body(),
                           headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert response.status_code == 413 and "too large" in response.text
    assert spooled["bytes"] <= 1024 * 1024 + 64 * 1024  # no more than the 1 MB limit reached the disk


def test_a_forged_post_is_refused_before_its_body_is_read(client, tmp_path, spooled):
    t = token(client)
    head = (b'--xyz\r\nContent-Disposition: form-data; name="token"\r\n\r\n' + t["token"].encode()
            + b'\r\n--xyz\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n\r\n')
    read = {"chunks": 0}

    def body():  # 5 MB, sent chunked; the right token is in the form, a wrong one (or none) before the body
        yield head
        for _ in range(80):
            read["chunks"] += 1
            yield b"\x89PNG" + bytes(64 * 1024 - 4)

    before = set(os.listdir(tempfile.gettempdir()))
    for params, headers in (({"token": "wrong"}, {}), ({}, {"X-SynthGuard-Token": "wrong"}), ({}, {})):
        response = client.post("/verify", params=params, content=body(),
                               headers={"content-type": "multipart/form-data; boundary=xyz", **headers})
        assert response.status_code == 403 and "stale" in response.text
    sized = client.post("/verify", params={"token": "wrong"}, data=t,
                        files={"file": ("big.png", b"\x89PNG" + bytes(5 * 1024 * 1024), "image/png")})
    assert sized.status_code == 403
    assert read["chunks"] == 0 and spooled["bytes"] == 0  # not a byte of the file was read, none spooled
    assert not list((tmp_path / "store").iterdir())
    assert not set(os.listdir(tempfile.gettempdir())) - before
    # the same upload with the token in its URL or header gets past the check (and is then judged by content)
    for params, headers in ((t, {}), ({}, {"X-SynthGuard-Token": t["token"]})):
        judged = client.post("/verify", params=params, headers=headers, data=t,
                             files={"file": ("big.png", b"\x89PNG" + bytes(64 * 1024), "image/png")})
        assert judged.status_code == 415 and spooled["bytes"] > 0


@contextlib.contextmanager
def _serving(app, limits):
    """A real uvicorn on a loopback port in a thread, hardened as ``synthguard serve`` runs it."""
    uvicorn = pytest.importorskip("uvicorn")
    from synthguard.desk.http import hardened_config

    server = uvicorn.Server(hardened_config(app, "127.0.0.1", free_port(), limits=limits))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    try:
        yield ("127.0.0.1", server.config.port)
    finally:
        server.should_exit = True
        thread.join(10)


def _ends(sock: socket.socket, within: float) -> bytes | None:
    """What the server sent before it closed the connection, or None when it is still open after ``within`` s."""
    data, deadline = b"", time.monotonic() + within
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return None
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk
    return None


def _response(sock: socket.socket) -> bytes:
    """One whole response (it has a Content-Length) read from a kept-alive connection."""
    sock.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_slow_clients_are_cut_off_and_honest_ones_served(home, tmp_path):
    from synthguard.desk.http import ConnectionLimits

    app = create_app(VerifySettings(policy=DEFAULT_POLICY, home=home.root), storage=tmp_path / "store",
                     max_upload=1024 * 1024)
    with _serving(app, ConnectionLimits(header_timeout=0.5, body_timeout=0.5, max_connections=64)) as addr:
        started = time.monotonic()
        slow = [socket.create_connection(addr) for _ in range(20)]
        for s in slow:
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and nothing more (slowloris)
        slow.append(socket.create_connection(addr))  # sends nothing at all
        with socket.create_connection(addr) as honest:  # served while they wait
            honest.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            page = _response(honest)
            assert page.startswith(b"HTTP/1.1 200")
            honest.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # a kept-alive connection's next request...
            assert (_ends(honest, 5) or b"").startswith(b"HTTP/1.1 408")  # ...has the same deadline
        for s in slow:
            assert (_ends(s, 5) or b"").startswith(b"HTTP/1.1 408")
            s.close()
        assert time.monotonic() - started < 5

        with socket.create_connection(addr) as trickle:  # one header line every 0.2 s: the deadline is in all
            t0, ended = time.monotonic(), None
            for i in range(30):
                try:
                    trickle.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n" if i == 0 else b"X-A: b\r\n")
                except OSError:
                    ended = b""
                ended = ended if ended is not None else _ends(trickle, 0.2)
                if ended is not None:
                    break
            assert ended is not None and time.monotonic() - t0 < 4

        token = re.search(rb'name=token value="([^"]+)"', page).group(1)
        content = os.urandom(4096)  # not an image: refused by content (415) once the whole body is in
        body = (b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n' + content
                + b"\r\n--xyz--\r\n")
        head = (b"POST /verify?token=" + token + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                b"Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: " + str(len(body)).encode()
                + b"\r\n\r\n")
        with socket.create_connection(addr) as upload:  # 2 s in all, a piece every 0.2 s: never cut
            upload.sendall(head)
            for i in range(0, len(body), len(body) // 10 + 1):
                time.sleep(0.2)
                upload.sendall(body[i:i + len(body) // 10 + 1])
            assert (_ends(upload, 10) or b"").startswith(b"HTTP/1.1 415")
        with socket.create_connection(addr) as stalled:  # a third of the body, then nothing
            stalled.sendall(head + body[:len(body) // 3])
            t0 = time.monotonic()
            assert _ends(stalled, 5) is not None and time.monotonic() - t0 < 5
    assert not [p for p in (tmp_path / "store").iterdir()]


def test_past_the_cap_the_slowest_connection_makes_room_and_busy_ones_are_kept(home, tmp_path):
    from synthguard.desk.http import ConnectionLimits

    app = create_app(VerifySettings(policy=DEFAULT_POLICY, home=home.root), storage=tmp_path / "store")
    with _serving(app, ConnectionLimits(header_timeout=30, body_timeout=30, max_connections=3)) as addr:
        slow = []
        for _ in range(3):
            slow.append(socket.create_connection(addr))
            slow[-1].sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            time.sleep(0.1)
        with socket.create_connection(addr) as honest:  # a fourth: the slow client that waited longest goes
            honest.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            page = _ends(honest, 5) or b""
        assert page.startswith(b"HTTP/1.1 200")
        assert (_ends(slow[0], 5) or b"").startswith(b"HTTP/1.1 503")
        assert _ends(slow[1], 0.3) is None and _ends(slow[2], 0.1) is None
        for s in slow:
            s.close()
        time.sleep(0.3)
        token = re.search(rb'name=token value="([^"]+)"', page).group(1)
        uploads = []  # three connections in the middle of an upload are not cut to make room
        for _ in range(3):
            uploads.append(socket.create_connection(addr))
            uploads[-1].sendall(b"POST /verify?token=" + token + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                b"Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: 100000\r\n"
                                b"\r\n--xyz\r\n")
        time.sleep(0.3)
        with socket.create_connection(addr) as extra:
            assert (_ends(extra, 5) or b"").startswith(b"HTTP/1.1 503")
        assert all(_ends(u, 0.1) is None for u in uploads)
        for u in uploads:
            u.close()
        deadline, answer = time.monotonic() + 5, b""
        while not answer.startswith(b"HTTP/1.1 200") and time.monotonic() < deadline:
            with socket.create_connection(addr) as s:  # once they are gone, a request is served again
                s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                answer = _ends(s, 5) or b""
        assert answer.startswith(b"HTTP/1.1 200")


def test_connection_limits_are_checked():
    from synthguard.desk.http import ConnectionLimits
    from synthguard.errors import InputError

    for bad in ({"header_timeout": 0}, {"body_timeout": -1.0}, {"max_connections": 0}, {"max_connections": 2.5},
                {"header_timeout": "5"}):
        with pytest.raises(InputError):
            ConnectionLimits(**bad)


def test_serve_runs_the_desk_hardened_with_its_limits(home, tmp_path, monkeypatch):
    from synthguard.desk import http

    seen = {}
    monkeypatch.setattr(http, "serve_hardened", lambda app, host, port, *, limits: seen.update(
        app=app, host=host, port=port, limits=limits))
    result = CliRunner().invoke(main, ["serve", "--port", "8123", "--storage", str(tmp_path / "s"),
                                       "--header-timeout", "0.5", "--body-timeout", "2", "--max-connections", "7"])
    assert result.exit_code == 0, result.output
    assert (seen["host"], seen["port"]) == ("127.0.0.1", 8123)
    assert seen["limits"] == http.ConnectionLimits(header_timeout=0.5, body_timeout=2.0, max_connections=7)
    defaults = CliRunner().invoke(main, ["serve", "--storage", str(tmp_path / "s")])
    assert defaults.exit_code == 0 and seen["limits"] == http.ConnectionLimits(10.0, 30.0, 64)
    refused = CliRunner().invoke(main, ["serve", "--header-timeout", "0"])
    assert refused.exit_code == 2 and "header-timeout" in refused.output


def test_browser_uploads_and_reads_the_verdicts(home, files, tmp_path):
    if CHROMIUM is None:
        if os.environ.get("SYNTHGUARD_REQUIRE_BROWSER"):
            pytest.fail("SYNTHGUARD_REQUIRE_BROWSER is set but chromium is not installed")
        pytest.skip("needs Debian's chromium (apt-get install chromium); CI installs it")
    uvicorn = pytest.importorskip("uvicorn")
    sync_api = pytest.importorskip("playwright.sync_api")
    app = create_app(VerifySettings(policy=DEFAULT_POLICY, home=home.root), storage=tmp_path / "store")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page()
            seen = {}
            for name in ("stamped", "photo", "tampered"):
                page.goto(f"http://127.0.0.1:{port}/")
                page.set_input_files("#file", str(files[name]))
                page.click("#check")
                page.wait_for_selector("#result")
                seen[name] = (page.get_attribute("#result", "data-verdict"), page.inner_text("#result .label"))
                assert page.locator("figcaption", has_text="classifier heatmap").count() == 1
            assert seen["stamped"] == ("ai-generated", "ai-generated")
            assert seen["tampered"] == ("tampered", "tampered")
            assert seen["photo"][0] in ("unknown", "likely-synthetic")
            page.fill("#editor", "A. Editor")
            page.select_option("#decision", "reject")
            page.click("#save")
            page.wait_for_selector("#recorded")
            assert "reject by A. Editor" in page.inner_text("#recorded")
            browser.close()
    finally:
        server.should_exit = True
        thread.join(10)
