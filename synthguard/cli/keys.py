"""``synthguard keys``: the signing identity and trust anchors."""

from __future__ import annotations

from pathlib import Path

import click

from synthguard.cli import options
from synthguard.cli.context import Env, pass_env
from synthguard.cli.render import print_json
from synthguard.errors import InputError


@click.group()
def keys() -> None:
    """Manage the signing identity and trust anchors.

    \b
    Examples:
      synthguard keys init
      synthguard keys show --json
      synthguard keys import --chain chain.pem --key key.pem
      synthguard keys export-trust -o my-root.pem
      synthguard keys add-trust partner-root.pem
    """


@keys.command("init")
@click.option("--name", help="Common name of the signing certificate (default: SynthGuard local identity "
                             "(user@host)).")
@click.option("--org", help="Organization name in the certificates.")
@options.force("Replace an existing identity (its root stays a trust anchor).")
@pass_env
def keys_init(env: Env, name: str | None, org: str | None, force: bool) -> None:
    """Create a local, self-issued signing identity (root CA + ES256 signing certificate).

    \b
    Example:
      synthguard keys init --name "Example Newsroom generator" --org "Example News"
    """
    from synthguard.provenance.identity import IdentityStore  # noqa: PLC0415

    home = env.home
    identity = IdentityStore(home).init(name, org, force=force)
    summary = identity.summary()
    click.echo(f"created signing identity '{summary['common_name']}' in {home.keys_dir}")
    click.echo(f"  valid until {summary['not_after']}; key file mode 0600; self-issued (on no public trust list)")
    click.echo("  share its root with verifiers: synthguard keys export-trust -o root.pem")


@keys.command("show")
@options.json_output()
@pass_env
def keys_show(env: Env, as_json: bool) -> None:
    """Show the signing identity and trust anchors (never the private key).

    \b
    Example:
      synthguard keys show --json
    """
    from synthguard.provenance.identity import IdentityStore, TrustAnchors, cert_fingerprint  # noqa: PLC0415

    home = env.home
    store = IdentityStore(home)
    identity = store.load()
    anchors = TrustAnchors.from_home(home)
    data = {"home": str(home.root), "identity": identity.summary(), "self_issued": store.is_self_issued(),
            "key_file": str(store.key_path), "key_file_mode": oct(store.key_path.stat().st_mode & 0o777),
            "trust_anchors": [{"subject": c.subject.rfc4514_string(), "sha256_fingerprint": cert_fingerprint(c),
                               "not_after": c.not_valid_after_utc.isoformat()} for c in anchors.certificates]}
    if as_json:
        print_json(data)
        return
    ident = data["identity"]
    click.echo(f"identity:  {ident['common_name']} ({ident['organization']})")
    click.echo(f"issuer:    {ident['issuer']}{'  [self-issued]' if data['self_issued'] else ''}")
    click.echo(f"algorithm: {ident['algorithm']}; valid {ident['not_before']} .. {ident['not_after']}")
    click.echo(f"key file:  {data['key_file']} (mode {data['key_file_mode']})")
    click.echo(f"trust anchors ({len(data['trust_anchors'])}):")
    for anchor in data["trust_anchors"]:
        click.echo(f"  - {anchor['subject']}  sha256:{anchor['sha256_fingerprint'][:16]}…")


@keys.command("import")
@click.option("--chain", "chain_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="PEM certificate chain, signing (end-entity) certificate first.")
@click.option("--key", "key_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Unencrypted PKCS#8 PEM private key of the signing certificate.")
@options.force("Replace an existing identity (its root stays a trust anchor).")
@pass_env
def keys_import(env: Env, chain_path: Path, key_path: Path, force: bool) -> None:
    """Import a CA-issued identity; it is test-signed and validated before it is saved.

    \b
    Example:
      synthguard keys import --chain newsroom-chain.pem --key newsroom-key.pem
    """
    from synthguard.provenance.identity import IdentityStore  # noqa: PLC0415

    for p in (chain_path, key_path):
        if not p.is_file():
            raise InputError(f"{p}: no such file")
    home = env.home
    identity = IdentityStore(home).import_identity(chain_path.read_bytes(), key_path.read_bytes(), force=force)
    click.echo(f"imported signing identity '{identity.common_name}' (issuer "
               f"{identity.certificate.issuer.rfc4514_string()}); a test signature validated")


@keys.command("export-trust")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the PEM here (default: print it).")
@options.force("Replace an existing output file.")
@pass_env
def keys_export_trust(env: Env, output: Path | None, force: bool) -> None:
    """Export the identity's root certificate (public) for verifiers to trust.

    \b
    Example:
      synthguard keys export-trust -o newsroom-root.pem
    """
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    from synthguard.core.fileio import check_output_path, write_atomic  # noqa: PLC0415
    from synthguard.provenance.identity import IdentityStore  # noqa: PLC0415

    pem = IdentityStore(env.home).load().anchor.public_bytes(serialization.Encoding.PEM)
    if output is None:
        click.echo(pem.decode(), nl=False)
        return
    write_atomic(check_output_path(output, overwrite=force), pem)
    click.echo(f"wrote trust anchor to {output}")


@keys.command("add-trust")
@click.argument("pem", type=click.Path(dir_okay=False, path_type=Path))
@pass_env
def keys_add_trust(env: Env, pem: Path) -> None:
    """Trust signatures that chain to the root certificate(s) in PEM.

    \b
    Example:
      synthguard keys add-trust partner-root.pem
    """
    from synthguard.provenance.identity import add_trust_anchor  # noqa: PLC0415

    if not pem.is_file():
        raise InputError(f"{pem}: no such file")
    for cert in add_trust_anchor(env.home, pem):
        click.echo(f"trusted: {cert.subject.rfc4514_string()}")


@keys.group("trust-list")
def keys_trust_list() -> None:
    """The official C2PA trust lists (claim signers and time-stamp authorities).

    \b
    A dated snapshot ships with SynthGuard; a policy counts the list with trust.c2pa_trust_list.
    Examples:
      synthguard keys trust-list show
      synthguard keys trust-list update --from conformance-public/trust-list/
    """


def _echo_list(listed) -> None:
    click.echo(listed.summary())
    click.echo(f"  sha256 {listed.sha256}; operator {listed.operator or 'not named'}")


@keys_trust_list.command("show")
@click.option("--entities", is_flag=True, help="Also list the trusted entities.")
@options.json_output()
@pass_env
def keys_trust_list_show(env: Env, entities: bool, as_json: bool) -> None:
    """Show the C2PA Trust List and TSA Trust List in force: issue date, next update, certificates, staleness.

    \b
    Example:
      synthguard keys trust-list show --entities
    """
    from synthguard.provenance.trustlist import TrustListKind, conforming_products, trust_list  # noqa: PLC0415

    lists = [trust_list(env.home, kind) for kind in TrustListKind]
    products = conforming_products(env.home)
    if as_json:
        print_json({"lists": [listed.to_dict() for listed in lists], "products": products.to_dict()})
        return
    for listed in lists:
        _echo_list(listed)
        if entities:
            for name in listed.entities:
                click.echo(f"  - {name}")
    click.echo(products.describe()[0])
    if any(listed.is_stale() for listed in lists):
        click.echo("warning: a list is past its next update: install a newer snapshot with "
                   "`synthguard keys trust-list update --from FOLDER`", err=True)


@keys_trust_list.command("update")
@click.option("--from", "source", required=True, type=click.Path(path_type=Path),
              help="A folder holding C2PA-TRUST-LIST.json, C2PA-TSA-TRUST-LIST.json (each with its .pem, if "
                   "published) and/or conforming-products-list.json, or one of those files: e.g. from "
                   "c2pa-org/conformance-public.")
@options.json_output()
@pass_env
def keys_trust_list_update(env: Env, source: Path, as_json: bool) -> None:
    """Install a newer snapshot of the C2PA trust lists (checked: LoTE JSON, PEM bundle, newer than in force).

    \b
    Example:
      synthguard keys trust-list update --from ~/Downloads/conformance-public/trust-list
    """
    from synthguard.provenance.trustlist import conforming_products, install_trust_lists  # noqa: PLC0415

    lists = install_trust_lists(env.home, source)
    products = conforming_products(env.home)
    if as_json:
        print_json({"lists": [listed.to_dict() for listed in lists], "products": products.to_dict()})
        return
    for listed in lists:
        click.echo("in force: ", nl=False)
        _echo_list(listed)
    click.echo(f"in force: {products.describe()[0]}")
