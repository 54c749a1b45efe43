"""Looking stripped copies up at another organisation's ledger: a producer and a verifier with separate homes, the
producer's `ledger serve` on loopback, the verifier trusting the producer's root. A manifest recovered over HTTP is
validated like a local one; a repository that is stopped, hangs, answers garbage or gives a manifest bound to other
content is reported on the file and never trusted."""

from __future__ import annotations

import functools
import json
from dataclasses import replace

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from helpers.net import free_port
from helpers.resolvers import http
from PIL import Image

from synthguard.cli import main
from synthguard.core.home import Home
from synthguard.core.samples import procedural_image
from synthguard.detect import InspectionContext, VerdictLabel, inspect_file
from synthguard.errors import InputError
from synthguard.provenance.identity import IdentityStore, add_trust_anchor
from synthguard.provenance.ledger import Ledger
from synthguard.provenance.manifest import DigitalSourceType, ManifestSpec
from synthguard.provenance.reading import ProvenanceState
from synthguard.provenance.resolver import Resolver
from synthguard.provenance.signing import SigningSession
from synthguard.stamp import Stamper
from synthguard.watermark import default_image_watermarker

pytest.importorskip("fastapi")
from fastapi import FastAPI, Response  # noqa: E402

from synthguard.desk.resolver_server import create_resolver_app  # noqa: E402

AI = ManifestSpec(title="render", digital_source_type=DigitalSourceType.TRAINED_ALGORITHMIC_MEDIA)


def stamp(home: Home, out, seed: int):
    identity = IdentityStore(home).init("Example Provider signer", "Example Provider")
    with Ledger.from_home(home) as ledger, SigningSession(identity, ledger) as session:
        result = Stamper(session, default_image_watermarker()).stamp_pixels(procedural_image(320, 320, seed=seed),
                                                                            out, AI)
    return result, identity


@pytest.fixture
def producer(tmp_path):
    """The provider's home: one stamped image in its ledger, and its root certificate for the verifier."""
    home = Home(tmp_path / "producer")
    result, identity = stamp(home, tmp_path / "render.png", seed=21)
    root = tmp_path / "provider-root.pem"
    root.write_bytes(identity.anchor.public_bytes(serialization.Encoding.PEM))
    return home, tmp_path / "render.png", root


@pytest.fixture
def reposted(producer, tmp_path, home):
    """What the newsroom received: the render without its manifest, re-encoded as JPEG; the verifier (this test's
    own home) trusts the provider's root."""
    _, render, root = producer
    add_trust_anchor(home, root)
    copy = tmp_path / "reposted.jpg"
    Image.open(render).convert("RGB").save(copy, quality=90)
    return copy


def check(home, path, *urls):
    with InspectionContext.build(home, resolvers=urls) as context:
        return inspect_file(path, context)


def test_a_stripped_reencoded_copy_is_recovered_over_http_as_trusted(producer, reposted, home, serve):
    url = serve(create_resolver_app(producer[0], write_tokens=set(), rate_limit=None))
    alone = check(home, reposted)
    assert alone.provenance.state is ProvenanceState.ABSENT and alone.verdict.label is VerdictLabel.AI_DECLARED
    found = check(home, reposted, url)
    p = found.provenance
    assert p.state is ProvenanceState.TRUSTED and p.recovered_from_ledger and p.source == "resolver"
    assert p.remote_url == url and p.ledger_match == "soft-binding" and p.ledger_content_match is False
    # The trusted manifest is about the signed original; this copy's pixels differ from it (a re-encode, or a mark
    # copied onto another picture), so what speaks for the copy is its mark: declared, the manifest reported.
    assert found.verdict.label is VerdictLabel.AI_DECLARED
    assert any(f"the ledger at {url}" in r and "Example Provider signer" in r for r in found.verdict.reasons)
    assert any("validates and is bound to this payload" in line for line in p.resolver_log)
    result = CliRunner().invoke(main, ["detect", str(reposted), "--resolver", url, "--json"])
    data = json.loads(result.output)
    assert result.exit_code == 0 and data["verdict"]["label"] == "ai-declared"
    assert data["provenance"]["state"] == "trusted" and data["provenance"]["recovered_from_ledger"] is True
    text = CliRunner().invoke(main, ["detect", str(reposted), "--resolver", url]).output
    assert "resolver:" in text and url in text


def foreign_app(manifest: bytes) -> FastAPI:
    """A repository that answers every soft binding with a match, and that match with another asset's manifest."""
    app = FastAPI()

    @app.get("/matches/byBinding")
    def matches(alg: str, value: str):
        return {"matches": [{"manifestId": "urn:c2pa:00000000-0000-4000-8000-000000000000"}]}

    @app.get("/manifests/{manifest_id}")
    def manifest_of(manifest_id: str):
        return Response(manifest, media_type="application/c2pa")

    return app


@pytest.mark.parametrize("kind", ["stopped", "hanging", "invalid-json", "foreign-manifest"])
def test_a_failing_repository_is_reported_and_never_trusted(kind, producer, reposted, home, serve, canned,
                                                            tmp_path, monkeypatch):
    if kind == "stopped":
        url, expect = f"http://127.0.0.1:{free_port()}", "could not be reached"
    elif kind == "hanging":
        monkeypatch.setattr("synthguard.detect.context.Resolver", functools.partial(Resolver, timeout=1.0))
        url, expect = canned(None).url, "did not answer in time"
    elif kind == "invalid-json":
        url, expect = canned(http("200 OK", b"{not json")).url, "invalid"
    else:  # a manifest that validates, signed by a trusted key, but bound to another image's watermark
        other, _ = stamp(home, tmp_path / "other.png", seed=99)
        with Ledger.from_home(home) as ledger:
            manifest = ledger.find_by_soft_binding(other.payload)[0].manifest
        (home.root / "ledger.sqlite").unlink()  # the verifier holds no local record of it
        url, expect = serve(foreign_app(manifest)), "bound to another watermark payload"
    found = check(home, reposted, url)
    p = found.provenance
    assert p.state is ProvenanceState.ABSENT and not p.recovered_from_ledger
    assert found.verdict.label is VerdictLabel.AI_DECLARED  # the unsigned watermark alone, as without a resolver
    assert p.resolver_log and any(expect in line for line in p.resolver_log), p.resolver_log
    assert url in p.resolver_log[0]


def test_policy_resolvers_are_used_and_bad_urls_refused(producer, reposted, home, serve, tmp_path):
    url = serve(create_resolver_app(producer[0], write_tokens=set(), rate_limit=None))
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"name: wire\nresolvers: ['{url}']\n")
    result = CliRunner().invoke(main, ["detect", str(reposted), "--policy", str(policy), "--json"])
    assert json.loads(result.output)["provenance"]["source"] == "resolver"
    assert "Soft Binding Resolution" in CliRunner().invoke(main, ["policy", "explain", str(policy)]).output
    policy.write_text("name: wire\nresolvers: ['file:///etc/passwd']\n")
    bad = CliRunner().invoke(main, ["detect", str(reposted), "--policy", str(policy)])
    assert bad.exit_code == 2 and "not an http:// or https:// URL" in bad.output
    bad = CliRunner().invoke(main, ["detect", str(reposted), "--resolver", "ftp://x"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    with pytest.raises(InputError):
        InspectionContext.build(home, resolvers=("not a url",))


def test_a_manifest_that_breaks_the_reader_is_reported_not_raised(producer, reposted, home, serve, monkeypatch):
    url = serve(create_resolver_app(producer[0], write_tokens=set(), rate_limit=None))

    def broken(*args, **kwargs):
        raise KeyError("blocks")
    monkeypatch.setattr("synthguard.detect.context.signal_from_remote_manifest", broken)
    found = check(home, reposted, url)
    assert found.provenance.state is ProvenanceState.ABSENT
    assert any("cannot be read (KeyError): not used" in line for line in found.provenance.resolver_log)


def test_the_best_backed_answer_wins_whatever_the_order(producer, reposted, home, serve, monkeypatch):
    """An earlier repository's merely intact (untrusted) answer never hides a later one's trusted answer."""
    import synthguard.detect.context as context_module

    first = serve(create_resolver_app(producer[0], write_tokens=set(), rate_limit=None))
    second = serve(create_resolver_app(producer[0], write_tokens=set(), rate_limit=None))
    real = context_module.signal_from_remote_manifest

    def weaker_first(path, media, manifest, payload, trust, url):
        signal, why = real(path, media, manifest, payload, trust, url)
        return (replace(signal, state=ProvenanceState.VALID) if url == first else signal), why
    monkeypatch.setattr(context_module, "signal_from_remote_manifest", weaker_first)
    found = check(home, reposted, first, second)
    assert found.provenance.state is ProvenanceState.TRUSTED and found.provenance.remote_url == second
    assert any(f"used the one from {second} (trusted)" in line for line in found.provenance.resolver_log)
