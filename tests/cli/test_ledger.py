"""`synthguard ledger`: tokens made, listed and revoked (secrets shown once, never stored), and `publish` of signed
files to a real ledger server on a loopback port (recorded, already held, unreachable, unknown file)."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
from click.testing import CliRunner

from synthguard.cli import main
from synthguard.provenance.ledger import Ledger

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

from synthguard.desk.resolver_server import TokenScope, TokenStore, create_resolver_app, hash_token  # noqa: E402


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_token_made_listed_and_revoked(home):
    made = run("ledger", "token")  # --write is the default
    assert made.exit_code == 0, made.output
    secret = made.stdout.strip()
    assert secret.startswith("sgl_") and "shown only now" in made.stderr
    assert secret not in home.ledger_tokens_path.read_text()
    read = json.loads(run("ledger", "token", "--read", "--json").stdout)
    assert read["scope"] == "read" and read["sha256"] == hash_token(read["token"])
    listed = [json.loads(line) for line in run("ledger", "token", "--list", "--json").stdout.splitlines()]
    assert [t["scope"] for t in listed] == ["write", "read"] and all("token" not in t for t in listed)
    assert TokenStore.of_home(home).hashes(TokenScope.WRITE) == {hash_token(secret)}
    revoked = run("ledger", "token", "--revoke", listed[0]["id"])
    assert revoked.exit_code == 0 and revoked.stdout.startswith(f"revoked token {listed[0]['id']}")
    assert TokenStore.of_home(home).hashes(TokenScope.WRITE) == frozenset()
    unknown = run("ledger", "token", "--revoke", "000000000000")
    assert unknown.exit_code == 2 and "no token with id" in unknown.stderr


def _serve(app) -> tuple[str, uvicorn.Server, threading.Thread]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive()
        time.sleep(0.02)
    return f"http://127.0.0.1:{port}", server, thread


def test_publish_sends_signed_files_to_a_remote_ledger(home, identity, png, tmp_path, monkeypatch):
    signed = tmp_path / "signed.png"
    assert run("sign", str(png), "-o", str(signed), "--ai").exit_code == 0
    remote = tmp_path / "remote.sqlite"
    url, server, thread = _serve(create_resolver_app(remote, write_tokens={hash_token("sgl_w")}, rate_limit=None))
    try:
        monkeypatch.setenv("SYNTHGUARD_LEDGER_TOKEN", "sgl_w")
        first = run("ledger", "publish", str(signed), "--to", url, "--json")
        assert first.exit_code == 0, first.output
        answer = json.loads(first.stdout)
        assert answer["kind"] == "ok" and answer["created"] is True and answer["file"] == str(signed)
        again = run("ledger", "publish", str(signed), "--to", url)
        assert again.exit_code == 0 and "already held manifest" in again.stdout
        wrong = run("ledger", "publish", str(signed), "--to", url, "--token", "sgl_nope")
        assert wrong.exit_code == 6 and "HTTP 401" in wrong.stderr and "1 of 1 file(s) were not published" in \
            wrong.stderr
        assert run("ledger", "publish", str(png), "--to", url).exit_code == 2  # never signed here
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    from synthguard.core.media import file_sha256

    with Ledger(remote) as ledger, Ledger(home.ledger_path) as local:
        [mine] = local.find_by_file_hash(file_sha256(signed))
        [theirs] = ledger.find_by_file_hash(file_sha256(signed))
        assert ledger.count() == 1 and theirs.manifest == mine.manifest and theirs.asset_id == mine.asset_id
        assert answer["manifest_id"] == mine.manifest_label
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    down = run("ledger", "publish", str(signed), "--to", closed, "--timeout", "2")
    assert down.exit_code == 6 and "could not be reached" in down.stderr


def test_ledger_help_has_examples():
    for command in (["ledger"], ["ledger", "serve"], ["ledger", "token"], ["ledger", "publish"]):
        result = run(*command, "--help")
        assert result.exit_code == 0 and "Example" in result.output
