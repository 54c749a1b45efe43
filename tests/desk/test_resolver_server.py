"""The ledger as a C2PA Soft Binding Resolution API: the spec's answer shapes for byBinding (GET and POST),
byContent (a re-encoded copy found by its watermark), manifests and supportedAlgorithms; publishing behind a write
token; reads behind a read token; Host / Origin rules, body limits and the rate limit; the token store; and the real
`synthguard ledger serve` process on a loopback port."""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
from helpers.net import free_port
from PIL import Image

from synthguard.core.samples import procedural_image
from synthguard.errors import InputError
from synthguard.provenance.ledger import Ledger
from synthguard.provenance.manifest import DigitalSourceType, ManifestSpec
from synthguard.provenance.signing import SigningSession
from synthguard.stamp import Stamper
from synthguard.watermark import ImageWatermarker, WatermarkResult, default_image_watermarker

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from synthguard.desk.resolver_server import (  # noqa: E402
    MAX_PENDING,
    MAX_QUERY_BODY,
    RateLimit,
    TokenScope,
    TokenStore,
    create_resolver_app,
    hash_token,
)

ALG = default_image_watermarker().algorithm_id
BASE = "http://127.0.0.1:8790"


@pytest.fixture
def signed(home, identity, tmp_path):
    """A watermarked, signed AI image, its ledger record, and a stripped JPEG re-encode of it."""
    out = tmp_path / "signed.png"
    spec = ManifestSpec(title="t", digital_source_type=DigitalSourceType.TRAINED_ALGORITHMIC_MEDIA)
    with Ledger(home.ledger_path) as ledger, SigningSession(identity, ledger) as session:
        result = Stamper(session, default_image_watermarker()).stamp_pixels(procedural_image(256, 256, seed=5),
                                                                            out, spec)
        record = ledger.find_by_soft_binding(result.payload)[0]
    copy = io.BytesIO()
    Image.open(out).convert("RGB").save(copy, format="JPEG", quality=85)
    return {"path": out, "payload": result.payload, "record": record, "jpeg": copy.getvalue()}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def client(home, signed):
    app = create_resolver_app(home, write_tokens={hash_token("sgl_write")}, rate_limit=None)
    with TestClient(app, base_url=BASE) as c:
        yield c


def test_by_binding_answers_the_spec_shape(client, signed):
    label = signed["record"].manifest_label
    answer = client.get("/matches/byBinding", params={"alg": ALG, "value": b64(signed["payload"])})
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    assert answer.json() == {"matches": [{"manifestId": label, "similarityScore": 100}]}
    assert answer.headers["x-content-type-options"] == "nosniff"
    posted = client.post("/matches/byBinding", json={"alg": ALG, "value": b64(signed["payload"])})
    assert posted.json() == answer.json()
    # A '+' sent unencoded arrives as a space: read as the '+' it was ("++++" is b"\xfb\xef\xbe").
    assert client.get(f"/matches/byBinding?alg={ALG}&value=++++").json() == {"matches": []}
    assert client.get("/matches/byBinding", params={"alg": ALG, "value": b64(b"\0" * 6)}).json() == {"matches": []}
    assert client.get("/matches/byBinding", params={"alg": ALG, "value": b64(signed["payload"]),
                                                    "maxResults": "1"}).json() == answer.json()


@pytest.mark.parametrize("params,why", [
    ({"alg": "com.example.other.1", "value": "AAAA"}, "unsupported soft binding algorithm"),
    ({"alg": ALG, "value": "not base64!"}, "not base64"),
    ({"alg": ALG}, "alg and value are required"),
    ({"alg": ALG, "value": "AAAA", "maxResults": "0"}, "maxResults"),
    ({"alg": ALG, "value": b64(b"x" * 2000)}, "1 to 1024 bytes"),
])
def test_by_binding_refuses_bad_queries(client, params, why):
    answer = client.get("/matches/byBinding", params=params)
    assert answer.status_code == 400 and why in answer.json()["detail"]


def test_post_by_binding_checks_its_json(client):
    for body in (b"{", b'{"alg": 5, "value": "AAAA"}', b'["alg"]'):
        answer = client.post("/matches/byBinding", content=body, headers={"content-type": "application/json"})
        assert answer.status_code == 400 and "invalid SoftBindingQuery JSON" in answer.json()["detail"]
    big = json.dumps({"alg": ALG, "value": "A" * MAX_QUERY_BODY}).encode()
    assert client.post("/matches/byBinding", content=big).status_code == 413


def test_manifests_serve_the_stored_store(client, signed):
    record = signed["record"]
    answer = client.get(f"/manifests/{record.manifest_label}")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/c2pa"
    assert answer.content == record.manifest
    assert client.get("/manifests/urn:c2pa:00000000-0000-0000-0000-000000000000").status_code == 404
    # The same asset id under another label is not that manifest.
    assert client.get(f"/manifests/urn:other:{record.asset_id}").status_code == 404
    assert client.get(f"/manifests/{record.manifest_label}",
                      params={"returnActiveManifest": "true"}).status_code == 400
    assert client.get("/manifests/" + "x" * 300).status_code == 400


def test_supported_algorithms(client):
    assert client.get("/services/supportedAlgorithms").json() == {"watermarks": [{"alg": ALG}], "fingerprints": []}


def test_by_content_finds_a_reencoded_copy_by_its_watermark(client, signed, tmp_path):
    answer = client.post("/matches/byContent", content=signed["jpeg"], headers={"content-type": "image/jpeg"})
    assert answer.status_code == 200
    assert answer.json() == {"matches": [{"manifestId": signed["record"].manifest_label, "similarityScore": 100}]}
    unmarked = io.BytesIO()
    Image.fromarray(procedural_image(256, 256, seed=9)).save(unmarked, format="PNG")
    assert client.post("/matches/byContent", content=unmarked.getvalue()).json() == {"matches": []}


@pytest.mark.parametrize("body,status,why", [
    (b"", 400, "empty"),
    (b"plain words, not a picture\n", 415, "not an image (content is text/plain)"),
    (b"\x00\x01\x02\x03" * 64, 415, "not a file this repository reads"),
    (None, 422, "could not be read"),  # a truncated PNG
])
def test_by_content_refuses_what_it_cannot_read(client, signed, body, status, why):
    if body is None:
        body = signed["path"].read_bytes()[:2000]
    answer = client.post("/matches/byContent", content=body)
    assert answer.status_code == status and why in answer.json()["detail"]
    assert "/tmp" not in answer.json()["detail"] and "asset-" not in answer.json()["detail"]


def test_by_content_body_limit(home, signed):
    app = create_resolver_app(home, write_tokens=(), max_body=1000, rate_limit=None)
    with TestClient(app, base_url=BASE) as small:
        assert small.post("/matches/byContent", content=signed["jpeg"]).status_code == 413

        def stream():  # no Content-Length: counted as it streams
            yield signed["jpeg"][:800]
            yield signed["jpeg"][800:1600]
        assert small.post("/matches/byContent", content=stream()).status_code == 413


def test_publish_needs_a_write_token_and_files_the_record(home, signed, tmp_path):
    record = signed["record"]
    remote = tmp_path / "remote" / "ledger.sqlite"
    app = create_resolver_app(remote, write_tokens={hash_token("sgl_write")}, read_tokens=set(), rate_limit=None)
    asset = (tmp_path / "signed.png").read_bytes()
    body = {"manifest": b64(record.manifest), "asset": b64(asset)}
    write = {"authorization": "Bearer sgl_write"}
    with TestClient(app, base_url=BASE) as c:
        refused = c.post("/manifests", json=body)
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert c.post("/manifests", json=body, headers={"authorization": "Bearer sgl_other"}).status_code == 401
        assert c.post("/manifests", json=body, headers={"authorization": "Basic sgl_write"}).status_code == 401
        created = c.post("/manifests", json=body, headers=write)
        assert created.status_code == 201 and created.json() == {"manifestId": record.manifest_label, "created": True}
        again = c.post("/manifests", json=body, headers=write)
        assert again.status_code == 200 and again.json()["created"] is False
        # Reads behind a token (read_tokens given): a write token reads too.
        query = {"alg": ALG, "value": b64(signed["payload"])}
        assert c.get("/matches/byBinding", params=query).status_code == 401
        found = c.get("/matches/byBinding", params=query, headers=write).json()
        assert found == {"matches": [{"manifestId": record.manifest_label, "similarityScore": 100}]}
        assert c.get(f"/manifests/{record.manifest_label}", headers=write).content == record.manifest
        for bad, status, why in [
            ({**body, "manifest": "%%%"}, 400, "not base64"),
            ({**body, "manifest": b64(b"hello, not a manifest")}, 422, "not a readable C2PA manifest store"),
            ({**body, "asset": b64(asset[:-30] + bytes(30))}, 422, "does not bind this asset"),
            ({**body, "asset": b64(asset[:300])}, 422, "the asset cannot be read"),
            ({**body, "asset": b64(b"a text, not the signed image")}, 422, "does not bind this asset"),
            ({**body, "mime": "image/png"}, 400, "mime"),
            ({**body, "extra": 1}, 400, "extra"),
        ]:
            answer = c.post("/manifests", json=bad, headers=write)
            assert answer.status_code == status and why in answer.json()["detail"], answer.json()
    with Ledger(remote) as ledger:
        [stored] = ledger.find_by_soft_binding(signed["payload"])
    # Label, signer and soft binding come from the manifest itself.
    assert (stored.manifest_label, stored.signer, stored.soft_binding_alg, stored.soft_binding_value) == (
        record.manifest_label, record.signer, ALG, signed["payload"])
    assert stored.output_path is None and stored.manifest == record.manifest
    # The keys a stripped copy is found by are computed by the repository from the asset, never taken from the
    # client (a write token cannot point a manifest at other content).
    assert (stored.mime, stored.file_sha256, stored.content_sha256) == (
        record.mime, record.file_sha256, record.content_sha256)


def test_reads_need_a_read_token_when_given(home, signed):
    app = create_resolver_app(home, write_tokens=(), read_tokens={hash_token("sgl_read")}, rate_limit=None)
    query = {"alg": ALG, "value": b64(signed["payload"])}
    with TestClient(app, base_url=BASE) as c:
        assert c.get("/matches/byBinding", params=query).status_code == 401
        assert c.post("/matches/byContent", content=signed["jpeg"]).status_code == 401
        assert c.get("/matches/byBinding", params=query, headers={"authorization": "Bearer sgl_read"}).json()[
            "matches"]
        # No write tokens at all: nothing can be published, not even with the read token.
        assert c.post("/manifests", json={}, headers={"authorization": "Bearer sgl_read"}).status_code == 401
        assert c.get("/services/supportedAlgorithms").status_code == 200  # the spec puts no security on it


def test_host_and_origin_rules(home, signed):
    app = create_resolver_app(home, write_tokens=(), hosts=("ledger.example",), rate_limit=None)
    query = {"alg": ALG, "value": b64(signed["payload"])}
    with TestClient(app, base_url=BASE) as c:
        rebound = c.get("/matches/byBinding", params=query, headers={"host": "evil.example:8790"})
        assert rebound.status_code == 403 and "own host name" in rebound.text
        assert rebound.headers["x-frame-options"] == "DENY"
        assert c.get("/matches/byBinding", params=query, headers={"host": "ledger.example:8790"}).status_code == 200
        post = {"alg": ALG, "value": b64(signed["payload"])}
        for origin in ("http://evil.example", "null"):
            assert c.post("/matches/byBinding", json=post, headers={"origin": origin}).status_code == 403
        assert c.post("/matches/byBinding", json=post, headers={"origin": "http://ledger.example"}).status_code == 200
    assert app.state.settings.hosts == ("127.0.0.1", "localhost", "::1", "ledger.example")


def test_rate_limit_per_client(home):
    app = create_resolver_app(home, write_tokens=(), rate_limit=RateLimit(3, 60.0))
    with TestClient(app, base_url=BASE) as c:
        codes = [c.get("/services/supportedAlgorithms").status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        limited = c.get("/services/supportedAlgorithms")
        assert limited.status_code == 429 and 1 <= int(limited.headers["retry-after"]) <= 20
    with pytest.raises(InputError, match="rate limit"):
        RateLimit(0, 60.0)


def test_token_store_keeps_only_hashes(home):
    store = TokenStore.of_home(home)
    assert store.entries() == () and store.hashes(TokenScope.WRITE) == frozenset()
    write, entry = store.create(TokenScope.WRITE)
    read, _ = store.create(TokenScope.READ)
    assert write.startswith("sgl_") and len(write) > 40 and write != read
    text = home.ledger_tokens_path.read_text()
    assert write not in text and read not in text and hash_token(write) in text
    assert home.ledger_tokens_path.stat().st_mode & 0o777 == 0o600
    assert store.hashes(TokenScope.WRITE) == {hash_token(write)} and store.hashes(TokenScope.READ) == {
        hash_token(read)}
    assert store.revoke(entry.id) == entry and store.hashes(TokenScope.WRITE) == frozenset()
    with pytest.raises(InputError, match="no token with id"):
        store.revoke(entry.id)
    with pytest.raises(InputError, match="no token with id"):
        store.revoke("")  # a short prefix never matches
    home.ledger_tokens_path.write_text("{not json")
    with pytest.raises(InputError, match="not a readable token file"):
        store.entries()


def test_ledger_serve_process_answers_on_loopback(home, signed, tmp_path):
    """The real `synthguard ledger serve` (uvicorn) in its own process, asked over a socket."""
    from click.testing import CliRunner

    from synthguard.cli import main

    made = CliRunner().invoke(main, ["ledger", "token", "--write", "--json"])
    assert made.exit_code == 0, made.output
    token = json.loads(made.output)["token"]
    port = free_port()
    env = {**os.environ, "SYNTHGUARD_HOME": str(home.root), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "synthguard.cli", "ledger", "serve", "--port", str(port),
                                "--read-token"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert process.poll() is None, process.stderr.read().decode()
                assert time.monotonic() < deadline, "ledger serve did not start"
                time.sleep(0.1)
        query = f"{base}/matches/byBinding?alg={ALG}&value={b64(signed['payload']).replace('+', '%2B')}"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(query, timeout=10)
        assert refused.value.code == 401
        asked = urllib.request.Request(query, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(asked, timeout=10) as answer:
            matches = json.loads(answer.read())["matches"]
        assert [m["manifestId"] for m in matches] == [signed["record"].manifest_label]
        fetch = urllib.request.Request(f"{base}/manifests/{matches[0]['manifestId']}",
                                       headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(fetch, timeout=10) as answer:
            assert answer.headers["content-type"] == "application/c2pa"
            assert answer.read() == signed["record"].manifest
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            stream.close()


class Blocking(ImageWatermarker):
    """A watermark reader that waits for ``release`` before saying "no watermark" (to hold assets in flight)."""

    name, version, payload_bytes = "blocking", "1", 6

    def __init__(self):
        self.release, self.entered = threading.Event(), threading.Event()

    def embed(self, image, payload):
        raise NotImplementedError

    def detect(self, image) -> WatermarkResult:
        self.entered.set()
        self.release.wait(30)
        return WatermarkResult(False, None, None, 0.0, 1.0, self.algorithm_id)


def test_at_most_max_pending_assets_wait_then_busy(home, signed):
    uvicorn = pytest.importorskip("uvicorn")
    from synthguard.desk.http import hardened_config

    reader = Blocking()
    app = create_resolver_app(home, write_tokens=(), rate_limit=None, watermarker=reader)
    port = free_port()
    server = uvicorn.Server(hardened_config(app, "127.0.0.1", port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    statuses: list[int] = []

    def post() -> None:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/matches/byContent", data=signed["jpeg"])
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                statuses.append(answer.status)
        except urllib.error.HTTPError as exc:
            statuses.append(exc.code)

    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/services/supportedAlgorithms", timeout=10) as named:
            assert json.loads(named.read()) == {"watermarks": [{"alg": "io.synthguard.blocking.1"}],
                                                "fingerprints": []}
        first = threading.Thread(target=post)
        first.start()
        assert reader.entered.wait(30)  # one asset is being read, and holds its place
        waiting = [threading.Thread(target=post) for _ in range(MAX_PENDING - 1)]
        for t in waiting:
            t.start()
        time.sleep(1.0)  # they are spooled and wait for the reader
        post()  # one too many
        assert statuses == [503]
        reader.release.set()
        for t in (first, *waiting):
            t.join(30)
        assert sorted(statuses) == [200] * MAX_PENDING + [503]
    finally:
        reader.release.set()
        server.should_exit = True
        thread.join(timeout=10)
