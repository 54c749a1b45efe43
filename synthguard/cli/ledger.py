"""``synthguard ledger``: share the ledger over the C2PA Soft Binding Resolution API (serve, tokens, publish)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import click

from synthguard.cli import options
from synthguard.cli.context import Env, pass_env
from synthguard.errors import InputError, LedgerError, missing_extra

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _server_module():
    try:
        from synthguard.desk import resolver_server  # noqa: PLC0415 (FastAPI, the desk extra)
    except ImportError as exc:
        raise missing_extra(exc.name or "fastapi", "desk", "the ledger server") from None
    return resolver_server


@click.group()
def ledger() -> None:
    """Share this machine's ledger so that others can look up stripped copies by their watermark.

    `ledger serve` answers the C2PA Soft Binding Resolution API (matches by soft binding or by content, manifests,
    supported algorithms); verifiers elsewhere ask it with `--resolver URL`. Writes need a token from
    `ledger token --write`; reads are open unless served with --read-token.

    \b
    Examples:
      synthguard ledger serve                                   # http://127.0.0.1:8790/, reads open
      synthguard ledger token --write                           # for a signing machine that publishes here
      synthguard ledger publish out/img-0.png --to http://ledger.example:8790 --token sgl_...
    """


@ledger.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind (loopback by default: only this machine can reach it).")
@click.option("--port", default=8790, show_default=True, type=click.IntRange(1, 65535))
@click.option("--read-token", "read_token", is_flag=True,
              help="Reads (lookups, manifests) need a token from `ledger token --read` (or a write token).")
@click.option("--allow-host", "allow_hosts", multiple=True,
              help="Another host name it answers to (repeatable), e.g. the machine's DNS name when bound to a network "
                   "address; requests for any other Host are refused.")
@click.option("--max-body-mb", default=50, show_default=True, type=click.IntRange(1, 2048),
              help="Assets (byContent) and published records larger than this are refused.")
@click.option("--rate-limit", default=600, show_default=True, type=click.IntRange(0),
              help="Requests per minute per client address (0: no limit); past it the answer is 429.")
@click.option("--header-timeout", default=10.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Seconds a connection has to send its request headers; a slower one is closed (slowloris).")
@click.option("--max-connections", default=64, show_default=True, type=click.IntRange(1, 10_000),
              help="Open connections at most; a new one past it is answered 503 (busy).")
@pass_env
def ledger_serve(env: Env, host: str, port: int, read_token: bool, allow_hosts, max_body_mb: int,
                 rate_limit: int, header_timeout: float, max_connections: int) -> None:
    """Serve the ledger in $SYNTHGUARD_HOME as a C2PA Soft Binding Resolution API.

    Tokens are read once at start: restart after making or revoking one.

    \b
    Examples:
      synthguard ledger serve
      synthguard ledger serve --host 0.0.0.0 --allow-host ledger.example.org --read-token
    """
    server = _server_module()
    from synthguard.desk.http import ConnectionLimits, serve_hardened  # noqa: PLC0415 (uvicorn, as the server)

    tokens = server.TokenStore.of_home(env.home)
    reads = tokens.hashes(server.TokenScope.READ) if read_token else None
    limit = server.RateLimit(rate_limit, 60.0) if rate_limit else None
    app = server.create_resolver_app(env.home, write_tokens=tokens.hashes(server.TokenScope.WRITE),
                                     read_tokens=reads, hosts=(host, *allow_hosts),
                                     max_body=max_body_mb * 1024 * 1024, rate_limit=limit)
    settings = app.state.settings
    if host not in _LOOPBACK and not read_token:
        click.echo(f"warning: binding to {host} with open reads: anyone who can reach it can look manifests up",
                   err=True)
    if read_token and reads is not None and not (reads or settings.write_tokens):
        click.echo("warning: no read or write token exists yet, so every read is refused: "
                   "run `synthguard ledger token --read`", err=True)
    for line in settings.describe():
        click.echo(line, err=True)
    click.echo(f"SynthGuard ledger on http://{host}:{port}/ ; Ctrl-C stops it", err=True)
    serve_hardened(app, host, port, limits=ConnectionLimits(header_timeout=header_timeout,
                                                            max_connections=max_connections))


@ledger.command("token")
@click.option("--write", "scope", flag_value="write", default=True, help="A token that may publish (and read).")
@click.option("--read", "scope", flag_value="read", help="A token that may only read (for --read-token servers).")
@click.option("--list", "list_tokens", is_flag=True, help="List the tokens kept (ids and scopes, never secrets).")
@click.option("--revoke", "revoke_id", metavar="ID", help="Remove the token with this id.")
@options.json_output()
@pass_env
def ledger_token(env: Env, scope: str, list_tokens: bool, revoke_id: str | None, as_json: bool) -> None:
    """Make a bearer token for `ledger serve` (printed once; only its SHA-256 is kept in $SYNTHGUARD_HOME), list
    the tokens, or revoke one.

    \b
    Examples:
      synthguard ledger token --write
      synthguard ledger token --read --json
      synthguard ledger token --list
      synthguard ledger token --revoke 3fa4c2d19e0b
    """
    server = _server_module()
    store = server.TokenStore.of_home(env.home)
    if list_tokens and revoke_id:
        raise InputError("give either --list or --revoke, not both")
    if list_tokens or revoke_id:
        entries = (store.revoke(revoke_id),) if revoke_id else store.entries()
        for entry in entries:
            if as_json:
                click.echo(json.dumps({**entry.to_dict(), "revoked": bool(revoke_id)}))
            else:
                click.echo(("revoked " if revoke_id else "") + entry.describe()[0])
        if not entries and not as_json:
            click.echo(f"no tokens in {store.path}", err=True)
        return
    token, entry = store.create(server.TokenScope(scope))
    if as_json:
        click.echo(json.dumps({**entry.to_dict(), "token": token}))
        return
    click.echo(token)
    click.echo(f"note: {entry.describe()[0]}; it is shown only now (only its hash is kept in {store.path}); a "
               "running `ledger serve` needs a restart to accept it", err=True)


@ledger.command("publish")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--to", "url", required=True, help="The ledger server's base URL, e.g. http://ledger.example:8790.")
@click.option("--token", envvar="SYNTHGUARD_LEDGER_TOKEN", required=True,
              help="A write token of that server (or set SYNTHGUARD_LEDGER_TOKEN, which keeps it out of ps).")
@click.option("--timeout", default=10.0, show_default=True, type=click.FloatRange(0.1, 600),
              help="Seconds for each request.")
@options.json_output("One JSON object per file.")
@pass_env
def ledger_publish(env: Env, files, url: str, token: str, timeout: float, as_json: bool) -> None:
    """Send the local ledger records of signed FILES (found by their SHA-256) to a remote ledger server.

    Exit status 0 when every file was recorded there (or already was), 6 when any was not.

    \b
    Examples:
      SYNTHGUARD_LEDGER_TOKEN=sgl_... synthguard ledger publish out/*.png --to http://ledger.example:8790
    """
    from synthguard.provenance.ledger import Ledger  # noqa: PLC0415
    from synthguard.provenance.resolver import Resolver  # noqa: PLC0415

    location = Ledger.location_for(env.home)
    if not location.exists():
        raise InputError(f"no local ledger yet ({location.masked()}): sign something first")
    remote = Resolver(url, timeout=timeout, token=token)
    failed = 0
    with Ledger.from_home(env.home) as book:
        for file in files:
            if not file.is_file():
                raise InputError(f"{file}: no such file")
            asset = file.read_bytes()
            records = book.find_by_file_hash(hashlib.sha256(asset).hexdigest())
            if not records:
                raise InputError(f"{file}: not in the local ledger (only files signed on this machine can be "
                                 "published)")
            outcome = remote.publish(records[0], asset)
            failed += not outcome.ok
            if as_json:
                click.echo(json.dumps({"file": str(file), **outcome.to_dict()}))
            else:
                click.echo(f"{file}: " + outcome.describe()[0], err=not outcome.ok)
    if failed:
        raise LedgerError(f"{failed} of {len(files)} file(s) were not published to {remote.url}")
