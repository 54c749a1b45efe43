"""The ``synthguard`` command line: thin click commands over the library.

Exit codes: 0 done; 1 internal error; 2 bad input (missing, empty, corrupt, unsupported, refused);
3 signing identity or trust anchor problem; 4 C2PA signing/reading failure; 5 watermark; 6 ledger; 130 interrupted.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

import click

from synthguard import __version__
from synthguard.errors import InputError, SynthGuardError
from synthguard.home import Home

EXIT_INTERNAL = 1
EXIT_INTERRUPTED = 130


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def handle_errors(func):
    """Turn library errors into one-line messages and meaningful exit codes; never a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except SynthGuardError as exc:
            _fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted", EXIT_INTERRUPTED)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:  # noqa: BLE001 (the last line of defence: report, don't dump)
            if os.environ.get("SYNTHGUARD_DEBUG"):
                raise
            _fail(f"internal error: {type(exc).__name__}: {exc} (rerun with SYNTHGUARD_DEBUG=1 for details, "
                  "and please report it)", EXIT_INTERNAL)

    return wrapper


def _home() -> Home:
    return Home.from_env()


def _identity(home: Home):
    """The signing identity, created on first use, saying so plainly."""
    from synthguard.provenance.identity import IdentityStore  # noqa: PLC0415 (keep `--help` fast)

    identity, created = IdentityStore(home).ensure()
    if created:
        click.echo(
            f"note: created a new local signing identity '{identity.common_name}' in {home.keys_dir}.\n"
            "      It is self-issued and on no public trust list: its signatures read as trusted only where its "
            "root is trusted\n      (here by default; elsewhere after `synthguard keys export-trust`). "
            "Import a CA-issued identity with `synthguard keys import`.", err=True)
    return identity


def _print_json(data) -> None:
    click.echo(json.dumps(data, indent=None, sort_keys=False))


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="synthguard")
def main() -> None:
    """SynthGuard: watermark and sign what you generate, verify what you receive.

    \b
    Examples:
      synthguard demo                          # sign, strip, tamper and verify a built-in image
      synthguard sign photo.png -o signed.png  # sign a copy with a C2PA manifest
      synthguard detect signed.png --json      # provenance, verdict and reasons as JSON

    State lives in $SYNTHGUARD_HOME (default ~/.synthguard): keys/, trust/, ledger.sqlite.
    """


# --------------------------------------------------------------------------------------------------------- keys
@main.group()
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
@click.option("--force", is_flag=True, help="Replace an existing identity (its root stays a trust anchor).")
@handle_errors
def keys_init(name: str | None, org: str | None, force: bool) -> None:
    """Create a local, self-issued signing identity (root CA + ES256 signing certificate).

    \b
    Example:
      synthguard keys init --name "Example Newsroom generator" --org "Example News"
    """
    from synthguard.provenance.identity import IdentityStore  # noqa: PLC0415

    home = _home()
    identity = IdentityStore(home).init(name, org, force=force)
    summary = identity.summary()
    click.echo(f"created signing identity '{summary['common_name']}' in {home.keys_dir}")
    click.echo(f"  valid until {summary['not_after']}; key file mode 0600; self-issued (on no public trust list)")
    click.echo("  share its root with verifiers: synthguard keys export-trust -o root.pem")


@keys.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def keys_show(as_json: bool) -> None:
    """Show the signing identity and trust anchors (never the private key).

    \b
    Example:
      synthguard keys show --json
    """
    from synthguard.provenance.identity import IdentityStore, TrustAnchors, cert_fingerprint  # noqa: PLC0415

    home = _home()
    store = IdentityStore(home)
    identity = store.load()
    anchors = TrustAnchors.from_home(home)
    data = {"home": str(home.root), "identity": identity.summary(), "self_issued": store.is_self_issued(),
            "key_file": str(store.key_path), "key_file_mode": oct(store.key_path.stat().st_mode & 0o777),
            "trust_anchors": [{"subject": c.subject.rfc4514_string(), "sha256_fingerprint": cert_fingerprint(c),
                               "not_after": c.not_valid_after_utc.isoformat()} for c in anchors.certificates]}
    if as_json:
        _print_json(data)
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
@click.option("--force", is_flag=True, help="Replace an existing identity (its root stays a trust anchor).")
@handle_errors
def keys_import(chain_path: Path, key_path: Path, force: bool) -> None:
    """Import a CA-issued identity; it is test-signed and validated before it is saved.

    \b
    Example:
      synthguard keys import --chain newsroom-chain.pem --key newsroom-key.pem
    """
    from synthguard.provenance.identity import IdentityStore  # noqa: PLC0415

    for p in (chain_path, key_path):
        if not p.is_file():
            raise InputError(f"{p}: no such file")
    home = _home()
    identity = IdentityStore(home).import_identity(chain_path.read_bytes(), key_path.read_bytes(), force=force)
    click.echo(f"imported signing identity '{identity.common_name}' (issuer "
               f"{identity.certificate.issuer.rfc4514_string()}); a test signature validated")


@keys.command("export-trust")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the PEM here (default: print it).")
@click.option("--force", is_flag=True, help="Replace an existing output file.")
@handle_errors
def keys_export_trust(output: Path | None, force: bool) -> None:
    """Export the identity's root certificate (public) for verifiers to trust.

    \b
    Example:
      synthguard keys export-trust -o newsroom-root.pem
    """
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    from synthguard.fileio import check_output_path, write_atomic  # noqa: PLC0415
    from synthguard.provenance.identity import IdentityStore  # noqa: PLC0415

    pem = IdentityStore(_home()).load().anchor.public_bytes(serialization.Encoding.PEM)
    if output is None:
        click.echo(pem.decode(), nl=False)
        return
    write_atomic(check_output_path(output, overwrite=force), pem)
    click.echo(f"wrote trust anchor to {output}")


@keys.command("add-trust")
@click.argument("pem", type=click.Path(dir_okay=False, path_type=Path))
@handle_errors
def keys_add_trust(pem: Path) -> None:
    """Trust signatures that chain to the root certificate(s) in PEM.

    \b
    Example:
      synthguard keys add-trust partner-root.pem
    """
    from synthguard.provenance.identity import add_trust_anchor  # noqa: PLC0415

    if not pem.is_file():
        raise InputError(f"{pem}: no such file")
    for cert in add_trust_anchor(_home(), pem):
        click.echo(f"trusted: {cert.subject.rfc4514_string()}")


# --------------------------------------------------------------------------------------------------------- sign
def _parse_params(values: tuple[str, ...]) -> dict:
    params = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise InputError(f"--param {item!r}: expected KEY=VALUE")
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw
    return params


def _source_type_choice():
    from synthguard.provenance.manifest import DigitalSourceType  # noqa: PLC0415

    return click.Choice([m.code for m in DigitalSourceType], case_sensitive=False)


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path),
              help="Signed copy to write (text and other non-embeddable files also get OUTPUT.c2pa).")
@click.option("--title", help="Title in the manifest (default: the output file name).")
@click.option("--source-type", default="trainedAlgorithmicMedia", show_default=True, type=_source_type_choice(),
              help="IPTC digital source type declared for the content.")
@click.option("--model", "model_name", help="Name of the model that made the content.")
@click.option("--model-version", help="Version of that model.")
@click.option("--seed", type=int, help="Seed used to generate the content.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Generation parameter (repeatable).")
@click.option("--training-mining", type=click.Choice(["allowed", "notAllowed", "constrained"]),
              default="notAllowed", show_default=True, help="CAWG permission for AI training and data mining.")
@click.option("--thumbnail", is_flag=True, help="Embed a thumbnail in the manifest (~100 ms, ~180 KB).")
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists (the input is never replaced).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@handle_errors
def sign(file: Path, output: Path, title, source_type, model_name, model_version, seed, params, training_mining,
         thumbnail, force, as_json) -> None:
    """Write a copy of FILE carrying a signed C2PA manifest, and record it in the ledger.

    If FILE already has a manifest, it is kept as the parent ingredient (opened + edited).

    \b
    Examples:
      synthguard sign render.png -o render-signed.png --model my-gan --model-version 1.2 --seed 7
      synthguard sign photo.jpg -o out.jpg --source-type digitalCapture
      synthguard sign article.md -o out/article.md        # writes out/article.md + out/article.md.c2pa
    """
    from synthguard.fileio import check_output_path  # noqa: PLC0415
    from synthguard.media import MediaKind, decode_image, sniff  # noqa: PLC0415
    from synthguard.provenance.identity import IdentityStore  # noqa: PLC0415
    from synthguard.provenance.ledger import Ledger  # noqa: PLC0415
    from synthguard.provenance.manifest import (DigitalSourceType, ManifestSpec, ModelInfo,  # noqa: PLC0415
                                                TrainingMining)
    from synthguard.provenance.signing import SigningSession  # noqa: PLC0415

    if (seed is not None or params or model_version) and not model_name:
        raise InputError("--seed, --param and --model-version describe a model: give --model NAME too")
    home = _home()
    model = ModelInfo(model_name, model_version, seed=seed, parameters=_parse_params(params)) if model_name else None
    spec = ManifestSpec(title=title or output.name, digital_source_type=DigitalSourceType.parse(source_type),
                        model=model, training_mining=TrainingMining(training_mining))
    check_output_path(output, inputs=(file,), overwrite=force)
    if not IdentityStore(home).exists() and sniff(file).kind is MediaKind.IMAGE:
        decode_image(file)  # refuse unusable input before creating an identity for it
    identity = _identity(home)
    with Ledger(home.ledger_path) as ledger, SigningSession(identity, ledger, thumbnail=thumbnail) as session:
        result = session.sign_file(file, output, spec, overwrite=force)
    if as_json:
        _print_json(result.to_dict())
        return
    where = f" (manifest in {result.sidecar})" if result.sidecar else ""
    click.echo(f"signed {result.output}{where}: {spec.digital_source_type.code}, signer '{result.signer}', "
               f"asset {result.asset_id}" + (", parent manifest kept as ingredient" if result.has_parent else ""))


# ------------------------------------------------------------------------------------------------------- detect
def _human_report(inspection) -> str:
    p, v = inspection.provenance, inspection.verdict
    lines = [f"{inspection.file}: {v.label.value}"]
    source = f" ({p.source})" if p.source else ""
    line = f"  provenance: {p.state.value}{source}"
    if p.signer:
        line += f", signed by {p.signer}" + (f" / {p.issuer}" if p.issuer else "")
    lines.append(line)
    if p.present or p.recovered_from_ledger:
        ai = {True: "yes", False: "no", None: "not declared"}[p.ai_generated]
        declared = p.digital_source_type.rsplit("/", 1)[-1] if p.digital_source_type else "(no source type)"
        lines.append(f"  declares: {declared}; AI-generated: {ai}")
        if p.actions:
            lines.append(f"  actions: {', '.join(a.action for a in p.actions)}; ingredients: {p.ingredients}")
        if p.model:
            lines.append(f"  model: {json.dumps(p.model, sort_keys=True)}")
        if p.failures:
            lines.append(f"  failures: {', '.join(p.failures)}")
    for reason in v.reasons:
        lines.append(f"  - {reason}")
    return "\n".join(lines)


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per input, one per line.")
@click.option("--policy", "policy_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Policy YAML (default: policies/default.yaml rules: trust your own identity and added anchors).")
@click.option("--trust", "trust_paths", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Extra trust anchor PEM for this run (repeatable).")
@click.option("--no-ledger", is_flag=True, help="Do not look stripped copies up in the local ledger.")
@handle_errors
def detect(files: tuple[Path, ...], as_json: bool, policy_path, trust_paths, no_ledger: bool) -> None:
    """Verify FILES: C2PA provenance (embedded, sidecar, or recovered from the ledger) and a verdict.

    Exit status is 0 when every file was inspected, 2 when any file could not be read (it is reported as an
    error and the others are still inspected).

    \b
    Examples:
      synthguard detect out.jpg
      synthguard detect *.png --json > results.jsonl
      synthguard detect wire-photo.jpg --trust agency-root.pem
    """
    from synthguard.detect import inspect_file  # noqa: PLC0415
    from synthguard.policy import load_policy  # noqa: PLC0415
    from synthguard.provenance.ledger import Ledger  # noqa: PLC0415

    home = _home()
    trust = load_policy(policy_path).trust_anchors(home, extra=tuple(trust_paths))
    ledger = None if no_ledger or not home.ledger_path.exists() else Ledger(home.ledger_path)
    failed = 0
    try:
        for path in files:
            try:
                inspection = inspect_file(path, trust=trust, ledger=ledger)
            except InputError as exc:
                failed += 1
                if as_json:
                    _print_json({"file": str(path), "error": str(exc)})
                else:
                    click.echo(f"error: {exc}", err=True)
                continue
            click.echo(json.dumps(inspection.to_dict()) if as_json else _human_report(inspection))
    finally:
        if ledger is not None:
            ledger.close()
    if failed:
        sys.exit(InputError.exit_code)


# -------------------------------------------------------------------------------------------------------- bench
@main.group()
def bench() -> None:
    """Benchmarks that print figures, side by side with peers.

    \b
    Example:
      synthguard bench sign --repeat 30
    """


@bench.command("sign")
@click.option("--repeat", default=30, show_default=True, type=click.IntRange(3, 10_000),
              help="Timed runs per file and method.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def bench_sign(repeat: int, as_json: bool) -> None:
    """Median sign+write time per file: SynthGuard vs raw c2pa-python, same files, same run.

    \b
    Example:
      synthguard bench sign --repeat 50 --json
    """
    from synthguard.bench.sign_bench import run_sign_benchmark  # noqa: PLC0415

    rows = run_sign_benchmark(repeat=repeat)
    if as_json:
        _print_json(rows)
        return
    click.echo(f"{'file':<22} {'bytes':>8} {'raw c2pa':>9} {'sign FILE':>10} {'ratio':>6} {'own render':>11} "
               f"{'ratio':>6} {'(decode)':>9}   [median ms]")
    for r in rows:
        click.echo(f"{r['file']:<22} {r['bytes']:>8} {r['raw_ms']:>9.2f} {r['synthguard_ms']:>10.2f} "
                   f"{r['ratio']:>6.2f} {r['own_render_ms']:>11.2f} {r['own_render_ratio']:>6.2f} "
                   f"{r['validate_decode_ms']:>9.2f}")
    click.echo("sign FILE: `synthguard sign` of an external file (fully decoded and pixel-hashed, beside signing); "
               "own render: a file SynthGuard wrote from known pixels (generate path); (decode): the full decode "
               "alone.")


# --------------------------------------------------------------------------------------------------------- demo
@main.command()
@click.option("-o", "--output-dir", default="synthguard-demo", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Folder for the demo files.")
@handle_errors
def demo(output_dir: Path) -> None:
    """Run the main flow on built-in content: render, sign, verify; then strip and tamper, and verify again.

    Needs no download, no GPU. Uses (and on first run creates) your identity in $SYNTHGUARD_HOME.

    \b
    Example:
      synthguard demo -o /tmp/sg-demo
    """
    from synthguard.demo import run_demo  # noqa: PLC0415

    home = _home()
    identity = _identity(home)
    for title, inspection in run_demo(output_dir, home, identity):
        click.echo(f"== {title}")
        click.echo(_human_report(inspection))
    click.echo(f"files are in {output_dir}/; inspect any of them with: synthguard detect FILE --json")


if __name__ == "__main__":
    main()
