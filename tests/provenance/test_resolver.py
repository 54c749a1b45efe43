"""The Soft Binding Resolution API client against a real `ledger serve` app on a loopback port (matches, manifests,
algorithms, publish, the per-run cache), and against servers that fail: stopped, hanging, answering a byte at a
time, not HTTP, not JSON, JSON of the wrong shape, too large, an error status, a redirect, a manifest that is not
one. Each is a typed outcome, never an exception, never an empty answer."""

from __future__ import annotations

import hashlib
import json
import socket
import time

import pytest
from helpers.net import free_port
from helpers.resolvers import http

from synthguard.core.samples import procedural_image
from synthguard.errors import InputError
from synthguard.provenance.ledger import Ledger
from synthguard.provenance.manifest import DigitalSourceType, ManifestSpec
from synthguard.provenance.resolver import Match, OutcomeKind, Resolver, ResolverQuery, look_up
from synthguard.provenance.signing import SigningSession
from synthguard.stamp import Stamper
from synthguard.watermark import default_image_watermarker

ALG = default_image_watermarker().algorithm_id


@pytest.fixture
def signed(home, identity, tmp_path):
    spec = ManifestSpec(title="t", digital_source_type=DigitalSourceType.TRAINED_ALGORITHMIC_MEDIA)
    with Ledger(home.ledger_path) as ledger, SigningSession(identity, ledger) as session:
        result = Stamper(session, default_image_watermarker()).stamp_pixels(procedural_image(256, 256, seed=5),
                                                                            tmp_path / "signed.png", spec)
        return ledger.find_by_soft_binding(result.payload)[0]


@pytest.fixture
def ledger_url(home, signed, serve):
    pytest.importorskip("fastapi")
    from synthguard.desk.resolver_server import create_resolver_app, hash_token

    return serve(create_resolver_app(home, write_tokens={hash_token("sgl_write")}, rate_limit=None))


def test_resolves_and_fetches_from_a_real_ledger_server(ledger_url, signed):
    resolver = Resolver(ledger_url, timeout=10)
    found = resolver.resolve_by_binding(ALG, signed.soft_binding_value)
    assert found.ok and found.kind is OutcomeKind.OK and found.status == 200 and not found.cached
    assert found.matches == (Match(signed.manifest_label, 100, None),)
    assert found.describe() == (f"resolver {ledger_url}: 1 match(es)", f"  {signed.manifest_label} (score 100)")
    fetched = resolver.fetch_manifest(found.matches[0].manifest_id)
    assert fetched.ok and fetched.manifest == signed.manifest and fetched.manifest_id == signed.manifest_label
    shown = json.loads(json.dumps(fetched.to_dict()))
    assert shown["manifest_bytes"] == len(signed.manifest) and "manifest" not in shown
    assert shown["manifest_sha256"] == hashlib.sha256(signed.manifest).hexdigest()
    algorithms = resolver.supported_algorithms()
    assert algorithms.ok and algorithms.algorithms == (ALG,)
    none = resolver.resolve_by_binding(ALG, b"\0" * 6)
    assert none.ok and none.matches == () and "no manifest carries" in none.describe()[0]
    # An unknown manifest: the server's 404 and its reason.
    missing = resolver.fetch_manifest("urn:c2pa:00000000-0000-0000-0000-000000000000")
    assert missing.kind is OutcomeKind.HTTP_ERROR and missing.status == 404 and "no such manifest" in missing.detail
    # Another algorithm: the server's 400, said plainly.
    other = resolver.resolve_by_binding("com.example.other.1", b"abc")
    assert other.kind is OutcomeKind.HTTP_ERROR and other.status == 400 and "unsupported" in other.detail


def test_answers_are_cached_per_resolver(ledger_url, signed):
    resolver = Resolver(ledger_url, timeout=10)
    first = resolver.resolve_by_binding(ALG, signed.soft_binding_value)
    again = resolver.resolve_by_binding(ALG, signed.soft_binding_value)
    assert again.cached and again.matches == first.matches
    assert "remembered from earlier in this run" in again.describe()[0]
    assert not Resolver(ledger_url, timeout=10).resolve_by_binding(ALG, signed.soft_binding_value).cached


def test_publish_with_a_write_token(home, signed, serve, tmp_path):
    pytest.importorskip("fastapi")
    from synthguard.desk.resolver_server import create_resolver_app, hash_token

    url = serve(create_resolver_app(tmp_path / "remote.sqlite", write_tokens={hash_token("sgl_w")},
                                    rate_limit=None))
    asset = (tmp_path / "signed.png").read_bytes()
    refused = Resolver(url).publish(signed, asset)
    assert refused.kind is OutcomeKind.HTTP_ERROR and refused.status == 401 and "write token" in refused.detail
    writer = Resolver(url, token="sgl_w")
    created = writer.publish(signed, asset)
    assert created.ok and created.created is True and created.manifest_id == signed.manifest_label
    assert "recorded manifest" in created.describe()[0]
    assert writer.publish(signed, asset).created is False  # never cached: asked again, already held
    assert Resolver(url).resolve_by_binding(ALG, signed.soft_binding_value).matches[0].manifest_id == \
        signed.manifest_label


def test_a_stopped_server_is_unreachable(signed):
    resolver = Resolver(f"http://127.0.0.1:{free_port()}", timeout=2)
    outcome = resolver.resolve_by_binding(ALG, signed.soft_binding_value)
    assert outcome.kind is OutcomeKind.UNREACHABLE and not outcome.ok and outcome.status is None
    assert "could not be reached" in outcome.describe()[0] and "refused" in outcome.detail.lower()
    # Not asked again in this run: the remembered failure, marked as such, for any question.
    later = resolver.fetch_manifest(signed.manifest_label)
    assert later.kind is OutcomeKind.UNREACHABLE and later.cached and later.query is ResolverQuery.MANIFEST


def test_a_host_name_that_cannot_be_looked_up_is_unreachable():
    outcome = Resolver("http://a..b", timeout=2).supported_algorithms()
    assert outcome.kind is OutcomeKind.UNREACHABLE and "invalid host name" in outcome.detail


def test_a_hanging_server_times_out(canned, signed):
    server = canned(None)  # accepts, reads the request, never answers
    start = time.monotonic()
    outcome = Resolver(server.url, timeout=0.5).resolve_by_binding(ALG, signed.soft_binding_value)
    assert outcome.kind is OutcomeKind.TIMEOUT and "within 0.5 s" in outcome.detail
    assert time.monotonic() - start < 2.0 and server.requests


def test_a_server_that_answers_a_byte_at_a_time_times_out(canned, signed):
    body = json.dumps({"matches": []}).encode()
    server = canned(http("200 OK", body), drip=True)  # the whole answer would take ~6 s
    start = time.monotonic()
    outcome = Resolver(server.url, timeout=0.6).resolve_by_binding(ALG, signed.soft_binding_value)
    assert outcome.kind is OutcomeKind.TIMEOUT
    assert time.monotonic() - start < 2.0  # the whole exchange is bounded, not each read


def test_a_listening_socket_that_never_accepts_times_out(signed):
    with socket.socket() as backlog:
        backlog.bind(("127.0.0.1", 0))
        backlog.listen(1)
        start = time.monotonic()
        outcome = Resolver(f"http://127.0.0.1:{backlog.getsockname()[1]}", timeout=0.5).resolve_by_binding(
            ALG, b"\1" * 6)
    assert outcome.kind is OutcomeKind.TIMEOUT and time.monotonic() - start < 2.0


DEEP = b"[" * 200_000 + b"]" * 200_000


@pytest.mark.parametrize("answer,why", [
    (http("200 OK", b"{oops"), "not JSON"),
    (http("200 OK", DEEP), "not JSON"),
    (http("200 OK", b'{"matches": []}', "text/html"), "is text/html, not JSON"),
    (http("200 OK", b"[]"), "a JSON list, not an object"),
    (http("200 OK", b'{"results": []}'), "no \"matches\" list"),
    (http("200 OK", b'{"matches": "urn:c2pa:x"}'), "no \"matches\" list"),
    (http("200 OK", b'{"matches": ["urn:c2pa:x"]}'), "match 0 is not an object"),
    (http("200 OK", b'{"matches": [{"manifestId": 5}]}'), "no valid manifestId"),
    (http("200 OK", b'{"matches": [{"manifestId": ""}]}'), "no valid manifestId"),
    (http("200 OK", b'{"matches": [{"manifestId": "a", "similarityScore": 101}]}'), "0 to 100"),
    (http("200 OK", b'{"matches": [{"manifestId": "a", "similarityScore": true}]}'), "0 to 100"),
    (http("200 OK", b'{"matches": [{"manifestId": "a", "endpoint": "file:///etc/passwd"}]}'), "endpoint"),
    (http("200 OK", b'{"matches": [{"manifestId": "a", "endpoint": "http://["}]}'), "endpoint"),
    (http("200 OK", b'{"matches": [{"manifestId": "a", "endpoint": 7}]}'), "endpoint"),
    (http("200 OK", json.dumps({"matches": [{"manifestId": f"m{i}"} for i in range(11)]}).encode()),
     "11 matches, more than the 10 asked for"),
    (b"this is not HTTP at all\r\n\r\n", "not an HTTP answer"),
    (b"", "not an HTTP answer"),  # closes without a word
    (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5000000\r\n\r\n{",
     "announces 5000000 bytes"),
    (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" + b" " * (1024 * 1024 + 10),
     "over the 1048576-byte limit"),
])
def test_invalid_answers_are_reported_and_nothing_is_used(canned, answer, why):
    server = canned(answer)
    outcome = Resolver(server.url, timeout=5).resolve_by_binding(ALG, b"\1" * 6)
    assert outcome.kind is OutcomeKind.INVALID_ANSWER and outcome.matches == ()
    assert why in outcome.detail, outcome.detail
    assert "nothing from it is used" in outcome.describe()[0]


@pytest.mark.parametrize("answer,status,why", [
    (http("500 Internal Server Error", b'{"detail": "service failure: the ledger could not be read"}'), 500,
     "service failure"),
    (http("503 Service Unavailable", b"<html>\x1b[31mdown</html>", "text/html"), 503, "Service Unavailable"),
    (http("403 Forbidden", b"refused: this server answers only to its own host name", "text/plain"), 403,
     "refused: this server answers only to its own host name"),  # desk.http's refusal, in its words
    (http("302 Found", b"", extra="Location: http://169.254.169.254/latest\r\n"), 302,
     "redirect to http://169.254.169.254/latest, not followed"),
])
def test_error_statuses_are_http_errors(canned, answer, status, why):
    outcome = Resolver(canned(answer).url, timeout=5).resolve_by_binding(ALG, b"\1" * 6)
    assert outcome.kind is OutcomeKind.HTTP_ERROR and outcome.status == status and why in outcome.detail
    assert "\x1b" not in outcome.describe()[0]


def test_transient_errors_are_asked_again_and_others_are_cached(canned):
    failing = Resolver(canned(http("500 Internal Server Error", b"{}")).url, timeout=5)
    assert not failing.resolve_by_binding(ALG, b"\1" * 6).cached
    assert not failing.resolve_by_binding(ALG, b"\1" * 6).cached
    garbage = Resolver(canned(http("200 OK", b"{oops")).url, timeout=5)
    garbage.resolve_by_binding(ALG, b"\1" * 6)
    assert garbage.resolve_by_binding(ALG, b"\1" * 6).cached


@pytest.mark.parametrize("answer,why", [
    (http("200 OK", b'{"manifest": "..."}'), "came as application/json, not application/c2pa"),
    (http("200 OK", b"<html>hello</html>", "application/c2pa"), "not a C2PA manifest store"),
])
def test_a_manifest_that_is_not_one_is_invalid(canned, answer, why):
    outcome = Resolver(canned(answer).url, timeout=5).fetch_manifest("urn:c2pa:x")
    assert outcome.kind is OutcomeKind.INVALID_ANSWER and outcome.manifest is None and why in outcome.detail


def test_a_match_held_elsewhere_is_reported_not_followed(canned):
    body = json.dumps({"matches": [{"manifestId": "urn:c2pa:a", "endpoint": "https://other.example/v1",
                                    "similarityScore": 90}]}).encode()
    server = canned(http("200 OK", body))
    outcome = Resolver(server.url, timeout=5).resolve_by_binding(ALG, b"\1" * 6)
    assert outcome.matches == (Match("urn:c2pa:a", 90, "https://other.example/v1"),)
    assert "held at https://other.example/v1: not followed" in outcome.describe()[1]
    assert len(server.requests) == 1  # nothing was asked of the other repository


def test_the_query_is_the_spec_query(canned):
    server = canned(http("200 OK", b'{"matches": []}'))
    Resolver(server.url + "/api/c2pa/", timeout=5, token="sgl_t").resolve_by_binding(ALG, b"\xfb\xef\xbe",
                                                                                     max_results=3)
    request = server.requests[0].decode()
    assert request.startswith(f"GET /api/c2pa/matches/byBinding?alg={ALG}&value=%2B%2B%2B%2B&maxResults=3 ")
    assert "Authorization: Bearer sgl_t" in request


def test_bad_settings_are_input_errors():
    for url in ("ftp://x", "http://", "x", "http://u:p@host/", "http://host/?q=1", "http://host:99999/"):
        with pytest.raises(InputError, match="resolver URL"):
            Resolver(url)
    with pytest.raises(InputError, match="timeout"):
        Resolver("http://h", timeout=0)
    for token in ("two words", "", "sgl_\u00e9", "sgl_\n"):
        with pytest.raises(InputError, match="token"):
            Resolver("http://h", token=token)
    resolver = Resolver("http://h")
    with pytest.raises(InputError):
        resolver.resolve_by_binding(ALG, b"")
    with pytest.raises(InputError):
        resolver.resolve_by_binding(ALG, b"x", max_results=0)


def test_look_up_asks_every_resolver_and_reports_each(ledger_url, signed, canned):
    down = Resolver(f"http://127.0.0.1:{free_port()}", timeout=1)
    # Answers every question with the same matches: its "manifest" is JSON, and one match is held elsewhere.
    liar = canned(http("200 OK", json.dumps({"matches": [
        {"manifestId": "urn:c2pa:a"}, {"manifestId": "urn:c2pa:b", "endpoint": "https://x.example/v1"}]}).encode()))
    mine = Resolver(ledger_url, timeout=10)
    result = look_up([down, Resolver(liar.url, timeout=5), mine], ALG, signed.soft_binding_value)
    Q, K = ResolverQuery, OutcomeKind
    assert [(o.resolver, o.query, o.kind) for o in result.outcomes] == [
        (down.url, Q.BY_BINDING, K.UNREACHABLE),
        (liar.url, Q.BY_BINDING, K.OK), (liar.url, Q.MANIFEST, K.INVALID_ANSWER),
        (mine.url, Q.BY_BINDING, K.OK), (mine.url, Q.MANIFEST, K.OK)]
    assert [(m.resolver, m.manifest_id, m.manifest) for m in result.manifests] == [
        (mine.url, signed.manifest_label, signed.manifest)]
    assert [o.kind for o in result.failures] == [K.UNREACHABLE, K.INVALID_ANSWER]
    assert len(liar.requests) == 2  # its matches, and one fetch: the match held elsewhere is not followed
    assert any("not followed" in line for line in result.describe())
    assert json.loads(json.dumps(result.to_dict()))["manifests"][0]["manifest_bytes"] == len(signed.manifest)


@pytest.mark.parametrize("body", [b'{"watermarks": [], "fingerprints": 5}', b'{"watermarks": [7]}',
                                  b'{"watermarks": [{"alg": []}]}'])
def test_no_answer_makes_the_client_raise(canned, body):
    """Whatever shape an answer has, reading it gives an outcome, never an exception."""
    outcome = Resolver(canned(http("200 OK", body)).url, timeout=5).supported_algorithms()
    assert outcome.kind is OutcomeKind.INVALID_ANSWER and outcome.detail
