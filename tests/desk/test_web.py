"""The web desk: uploads sniffed and size-limited, verdict pages, reviews in the audit log; and a real headless
Chromium driven by Playwright uploading a stamped image, a real photo and a tampered file."""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import threading
import time

import pytest
from click.testing import CliRunner
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
    """The form token the desk's own page carries (another site cannot read it)."""
    return {"token": re.search(r'name=token value="([^"]+)"', client.get("/").text).group(1)}


def verdict_of(page: str) -> tuple[str, str]:
    m = re.search(r"data-verdict='([^']*)' data-action='([^']*)'", page)
    assert m, page[:500]
    return m.group(1), m.group(2)


def test_upload_verdicts_and_review(home, files, client, tmp_path):
    # files first: the desk starts once the signing identity exists, so it trusts it (a desk started before would
    # read the stamped file's manifest as untrusted, and its mark alone as ai-declared)
    expected = {"stamped": ("ai-generated", "label-ai"), "tampered": ("tampered", "reject")}
    for name, want in expected.items():
        page = client.post("/verify", data=token(client),
                           files={"file": (f"{name}.png", files[name].read_bytes(), "image/png")}).text
        assert verdict_of(page) == want, name
        assert "classifier heatmap" in page and "spectrum" in page
    photo = client.post("/verify", data=token(client),
                        files={"file": ("photo.jpg", files["photo"].read_bytes(), "image/jpeg")}).text
    assert verdict_of(photo)[0] in ("unknown", "likely-synthetic")  # never ai-generated without a declaration
    digest = re.search(r"/review/([0-9a-f]{64})", photo).group(1)
    forged = client.post(f"/review/{digest}", data={"decision": "publish", "editor": "Mallory"})
    assert forged.status_code == 403  # a form without the desk's token (another site posting) is refused
    done = client.post(f"/review/{digest}", data={"decision": "publish", "editor": "A. Editor", "note": "agency",
                                                  **token(client)})
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
    too_big = client.post("/verify", data=t,
                          files={"file": ("big.png", b"\x89PNG" + b"0" * (2 * 1024 * 1024), "image/png")})
    assert too_big.status_code == 413 and "too large" in too_big.text
    exe = client.post("/verify", data=t, files={"file": ("photo.png", os.urandom(4096), "image/png")})  # lies
    assert exe.status_code == 415 and "not a file the desk checks" in exe.text and ".sg-up-" not in exe.text
    empty = client.post("/verify", data=t, files={"file": ("e.png", b"", "image/png")})
    assert empty.status_code == 400
    assert client.post("/review/" + "0" * 64, data={"decision": "publish", "editor": "E", **t}).status_code == 404
    assert client.post("/review/..%2F..%2Fetc", data={"decision": "publish", "editor": "E", **t}).status_code == 404
    assert not [p for p in (tmp_path / "store").iterdir()]


def test_declared_length_over_the_limit_is_refused_before_reading(client):
    def body():
        yield b"x" * 1024
        raise AssertionError("the desk read the body of an upload it should have refused")

    response = client.post("/verify", content=body(), headers={
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
    crossed = client.post("/verify", data=token(client), headers={"origin": "https://attacker.example"},
                          files={"file": ("a.png", b"\x89PNG", "image/png")})
    assert crossed.status_code == 403 and "another site" in crossed.text
    sandboxed = client.post("/verify", data=token(client), headers={"origin": "null"},
                            files={"file": ("a.png", b"\x89PNG", "image/png")})
    assert sandboxed.status_code == 403


def test_a_review_starts_undecided_and_names_the_upload(home, files, client):
    photo = client.post("/verify", data=token(client),
                        files={"file": ("wire-photo.jpg", files["photo"].read_bytes(), "image/jpeg")}).text
    select = re.search(r"<select name=decision id=decision required>(.*?)</select>", photo).group(1)
    assert select.startswith("<option value='' selected disabled>") and select.count("selected") == 1
    digest = re.search(r"/review/([0-9a-f]{64})", photo).group(1)
    assert client.post(f"/review/{digest}", data={"editor": "E", **token(client)}).status_code == 422  # no decision
    done = client.post(f"/review/{digest}", data={"decision": "human-review", "editor": "E", **token(client)})
    assert "Review recorded" in done.text and "wire-photo.jpg" in done.text
    with AuditLog(home.audit_path) as log:
        assert log.entries(digest)[-1].file.startswith("wire-photo.jpg")


def test_several_files_dropped_at_once_each_get_a_result(files, client):
    page = client.post("/verify", data=token(client), files=[
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
        upload = pool.submit(desk.post, "/verify", data=t,
                             files={"file": ("photo.jpg", files["photo"].read_bytes(), "image/jpeg")})
        deadline = time.monotonic() + 10
        while not list((tmp_path / "store").glob("*.jpg")) and time.monotonic() < deadline:
            time.sleep(0.02)  # until the upload is stored and its verification is under way
        start = time.monotonic()
        assert desk.get("/").status_code == 200 and time.monotonic() - start < 2  # not blocked behind it
        busy = desk.post("/verify", data=t, files={"file": ("b.jpg", files["photo"].read_bytes(), "image/jpeg")})
        assert busy.status_code == 503 and "busy" in busy.text
        slow.set()
        assert upload.result(timeout=60).status_code == 200


def test_a_chunked_upload_without_a_length_is_cut_off_at_the_limit(client, monkeypatch):
    from starlette.datastructures import UploadFile

    spooled = {"bytes": 0}
    write = UploadFile.write

    async def counting_write(self, data):
        spooled["bytes"] += len(data)
        return await write(self, data)

    monkeypatch.setattr(UploadFile, "write", counting_write)

    def body():
        yield b"--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.png\"\r\n\r\n"
        for _ in range(160):  # 10 MB, no Content-Length: sent chunked
            yield b"0" * (64 * 1024)

    response = client.post("/verify", content=body(), headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert response.status_code == 413 and "too large" in response.text
    assert spooled["bytes"] <= 1024 * 1024 + 64 * 1024  # no more than the 1 MB limit reached the disk


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_browser_uploads_and_reads_the_verdicts(home, files, tmp_path):
    if CHROMIUM is None:
        if os.environ.get("SYNTHGUARD_REQUIRE_BROWSER"):
            pytest.fail("SYNTHGUARD_REQUIRE_BROWSER is set but chromium is not installed")
        pytest.skip("needs Debian's chromium (apt-get install chromium); CI installs it")
    uvicorn = pytest.importorskip("uvicorn")
    sync_api = pytest.importorskip("playwright.sync_api")
    app = create_app(VerifySettings(policy=DEFAULT_POLICY, home=home.root), storage=tmp_path / "store")
    port = _free_port()
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
