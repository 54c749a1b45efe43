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
from synthguard.core.home import Home
from synthguard.errors import Hint, InputError, SynthGuardError

EXIT_INTERNAL = 1
EXIT_INTERRUPTED = 130


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


# How the CLI words each library hint (the library names concepts, not flags).
HINTS = {
    Hint.OVERWRITE: "use --force to replace it",
    Hint.RESUME_OR_OVERWRITE: "--resume to continue that run, or --force to start over",
    Hint.NO_WATERMARK: "use --no-watermark to sign without one",
    Hint.NEEDS_MODEL: "give --model",
    Hint.NEEDS_VAE: "use --backend vae",
    Hint.NEEDS_DATA: "give --data PATH, or set SYNTHGUARD_DATA to the dataset cache",
}


def _with_hint(exc: SynthGuardError) -> str:
    words = HINTS.get(exc.hint)
    return f"{exc} ({words})" if words else str(exc)


def handle_errors(func):
    """Turn library errors into one-line messages and meaningful exit codes; never a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except SynthGuardError as exc:
            _fail(_with_hint(exc), exc.exit_code)
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
      synthguard generate -n 8 -o out/         # built-in GAN; each image watermarked + signed
      synthguard detect out/*                  # provenance, watermark, verdict and reasons
      synthguard sign photo.png -o signed.png  # watermark + sign a copy of any file
      synthguard detect signed.png --json      # one JSON object per file
      synthguard demo                          # what a re-save, a re-post and a pixel edit do to verification

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

    from synthguard.core.fileio import check_output_path, write_atomic  # noqa: PLC0415
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
@click.option("--watermark/--no-watermark", default=True, show_default=True,
              help="Embed SynthGuard's invisible watermark (images) before signing, bound to the manifest.")
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists (the input is never replaced).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@handle_errors
def sign(file: Path, output: Path, title, source_type, model_name, model_version, seed, params, training_mining,
         thumbnail, watermark, force, as_json) -> None:
    """Write a copy of FILE carrying an invisible watermark and a signed C2PA manifest; record it in the ledger.

    Images are watermarked first (the payload goes into the manifest as a c2pa.soft-binding, so a copy that
    loses its manifest can be traced back); other media are signed only. If FILE already has a manifest, it is
    kept as the parent ingredient (opened + edited).

    \b
    Examples:
      synthguard sign render.png -o render-signed.png --model my-gan --model-version 1.2 --seed 7
      synthguard sign photo.jpg -o out.jpg --source-type digitalCapture
      synthguard sign article.md -o out/article.md        # writes out/article.md + out/article.md.c2pa
      synthguard sign chart.png -o chart-signed.png --no-watermark
    """
    from synthguard.core.fileio import check_output_path  # noqa: PLC0415
    from synthguard.core.media import MediaKind, decode_image, sniff  # noqa: PLC0415
    from synthguard.provenance.identity import IdentityStore  # noqa: PLC0415
    from synthguard.provenance.ledger import Ledger  # noqa: PLC0415
    from synthguard.provenance.manifest import DigitalSourceType, ManifestSpec, ModelInfo, TrainingMining  # noqa: PLC0415
    from synthguard.provenance.signing import SigningSession  # noqa: PLC0415
    from synthguard.stamp import Stamper  # noqa: PLC0415
    from synthguard.watermark import default_image_watermarker  # noqa: PLC0415

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
        stamper = Stamper(session, default_image_watermarker() if watermark else None)
        result = stamper.stamp_file(file, output, spec, overwrite=force)
    if as_json:
        _print_json(result.to_dict())
        return
    signed = result.signed
    where = f" (manifest in {signed.sidecar})" if signed.sidecar else ""
    click.echo(f"signed {signed.output}{where}: {spec.digital_source_type.code}, signer '{signed.signer}', "
               f"asset {signed.asset_id}" + (", parent manifest kept as ingredient" if signed.has_parent else ""))
    if result.payload is not None:
        click.echo(f"watermark: {result.algorithm}, payload {result.payload.hex()} (bound to the manifest)")
    else:
        click.echo(f"no watermark: {result.watermark_skipped}", err=True)


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
    w = inspection.watermark
    d = (w.details or {}) if w is not None else {}
    if d.get("kind") == "text" and not w.skipped:
        where = f", characters {d['span'][0]}-{d['span'][1]}" if d.get("span") else ""
        lines.append(f"  text watermark: {'found' if w.detected else 'not found'} ({w.algorithm}, z={d['z']:.2f}, "
                     f"p={w.p_value:.1e}, {d['tokens_scored']} of {d['tokens']} tokens scored{where})")
    elif w is not None:
        if w.detected:
            ai = {True: "declares AI", False: "does not declare AI", None: "unknown payload layout"}[w.ai_declared]
            lines.append(f"  watermark: found, payload {w.payload} ({ai}), p={w.p_value:.1e}, {w.algorithm}")
        else:
            lines.append(f"  watermark: {'not tested (' + w.skipped + ')' if w.skipped else 'none found'}")
    m = inspection.machine_text
    if m is not None:
        lines.append(f"  machine-text score: not computed ({m.skipped})" if m.skipped else
                     f"  machine-text score: {m.score:.2f} (threshold {m.threshold:.2f}, {100 * m.threshold_fpr:.1f}% "
                     f"of held-out human text above it), {m.model}")
    c = inspection.classifier
    if c is not None:
        lines.append(f"  classifier: not run ({c.skipped})" if c.skipped else
                     f"  classifier: P(synthetic) {c.probability:.3f} (threshold {c.threshold:.3f}), {c.model}")
    if v.confidence is not None:
        lines[0] += f" (confidence {v.confidence:.3f})"
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
@click.option("--no-watermark", is_flag=True, help="Skip the watermark test (images).")
@click.option("--no-classifier", is_flag=True, help="Skip the synthetic-image classifier (images).")
@click.option("--detector", "detector_path", type=click.Path(file_okay=False, path_type=Path),
              help="A detector folder from `synthguard train detector` instead of the built-in one.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write an HTML report: verdicts, reasons, classifier heatmap and forensic pictures.")
@click.option("--threads", type=click.IntRange(1), default=lambda: min(4, os.cpu_count() or 1),
              show_default="min(4, CPU count)", help="torch CPU threads for the classifier and text models.")
@click.option("--text-model", default="builtin", show_default=True,
              help="Texts: the model that generated them (its tokenizer re-reads the text for the watermark test): "
                   "'builtin', a model folder, a .gguf file or a hub id.")
@click.option("--text-scorer", help="Texts: also compute the machine-text score (Fast-DetectGPT criterion) under "
                                    "this model ('builtin', folder, .gguf or hub id); calibrated on human text.")
@handle_errors
def detect(files: tuple[Path, ...], as_json: bool, policy_path, trust_paths, no_ledger: bool,
           no_watermark: bool, no_classifier: bool, detector_path: Path | None, report_path: Path | None,
           threads: int, text_model: str, text_scorer: str | None) -> None:
    """Verify FILES: C2PA provenance (embedded, sidecar, or recovered from the ledger), watermark, the
    synthetic-image classifier, and one verdict with its confidence and reasons.

    Texts: the .c2pa sidecar, this identity's text watermarks (SynthID-Text and KGW, whole text and windows, so a
    marked passage inside a longer document is found and located), and with --text-scorer the machine-text score.

    Verdicts: ai-generated, likely-synthetic (classifier only, nothing declared), tampered, authentic-capture,
    edited, unknown. Missing provenance alone is never evidence of fakery. Exit status is 0 when every file was
    inspected, 2 when any file could not be read (it is reported as an error and the others are still inspected).

    \b
    Examples:
      synthguard detect out.jpg
      synthguard detect story.txt                            # sidecar + text watermark (built-in model)
      synthguard detect news.txt --text-model ./SmolLM2.gguf --text-scorer ./SmolLM2.gguf
      synthguard detect *.png --json > results.jsonl
      synthguard detect wire-photo.jpg --trust agency-root.pem
      synthguard detect suspect.png --report suspect.html
    """
    from synthguard.detect import inspect_file  # noqa: PLC0415
    from synthguard.policy import load_policy  # noqa: PLC0415
    from synthguard.provenance.ledger import Ledger  # noqa: PLC0415
    from synthguard.watermark import default_image_watermarker  # noqa: PLC0415

    home = _home()
    policy = load_policy(policy_path)
    rules = policy.detection
    watermarker = None if no_watermark or not rules.watermark else default_image_watermarker()
    detector = None
    if not no_classifier and rules.classifier:
        from synthguard.detect import load_detector  # noqa: PLC0415

        detector = load_detector(detector_path, num_threads=threads)
    trust = policy.trust_anchors(home, extra=tuple(trust_paths))
    if report_path is not None:
        from synthguard.core.fileio import check_output_path  # noqa: PLC0415

        check_output_path(report_path, inputs=files, overwrite=True)
    ledger = None if no_ledger or not home.ledger_path.exists() else Ledger(home.ledger_path)
    done, errors = [], []
    text_checks = []

    def checks_for(path: Path):
        from synthguard.core.media import MediaKind, sniff  # noqa: PLC0415

        if text_checks or not path.is_file() or sniff(path).kind is not MediaKind.TEXT:
            return text_checks[0] if text_checks else None
        text_checks.append(_text_checks(home, text_model, text_scorer, threads, no_watermark or not rules.watermark,
                                        rules.text_watermark_max_p_value))
        return text_checks[0]

    def work(path: Path):
        try:
            inspection = inspect_file(path, trust=trust, ledger=ledger, watermarker=watermarker, detector=detector,
                                      classifier_threshold=rules.classifier_threshold,
                                      keep_pixels=report_path is not None, policy=policy,
                                      text_checks=checks_for(path))
        except InputError as exc:
            errors.append((str(path), str(exc)))
            raise
        if report_path is not None:
            done.append(inspection)
        return inspection

    try:
        _per_file(files, as_json, work, lambda path, inspection: inspection.to_dict(),
                  lambda path, inspection: _human_report(inspection), finish=lambda: _write_report(
                      report_path, done, errors, as_json))
    finally:
        if ledger is not None:
            ledger.close()


def _text_checks(home: Home, text_model: str, text_scorer: str | None, threads: int, no_watermark: bool,
                 max_p_value: float):
    import torch  # noqa: PLC0415

    from synthguard.detect.text_signal import text_checks_for_home  # noqa: PLC0415

    torch.set_num_threads(threads)
    return text_checks_for_home(home, text_model, scorer=text_scorer, watermark=not no_watermark,
                                max_p_value=max_p_value)


def _write_report(report_path: Path | None, done, errors, as_json: bool) -> None:
    if report_path is None:
        return
    from synthguard.desk.report import write_report  # noqa: PLC0415

    write_report(report_path, done, errors)
    if not as_json:
        click.echo(f"report: {report_path}", err=True)


def _per_file(files, as_json: bool, work, as_dict, as_text, finish=None) -> None:
    """Run ``work`` on each file and print its result; a file that fails is reported (as JSON too) and the rest
    still run; the exit status is then 2. ``finish`` runs after the last file, before that exit."""
    failed = 0
    for path in files:
        try:
            result = work(path)
        except InputError as exc:
            failed += 1
            if as_json:
                _print_json({"file": str(path), "error": str(exc)})
            else:
                click.echo(f"error: {exc}", err=True)
            continue
        click.echo(json.dumps(as_dict(path, result)) if as_json else as_text(path, result))
    if finish is not None:
        finish()
    if failed:
        sys.exit(InputError.exit_code)


# ------------------------------------------------------------------------------------------------------- verify
@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--policy", "policy_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Policy YAML (default: the built-in default policy; see policies/).")
@click.option("--jsonl", "jsonl_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write one JSON line per file here (default: print them).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write an HTML report grouped by desk action (thumbnails, heatmaps, forensic pictures).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes (results are identical whatever the number).")
@click.option("--resume", is_flag=True, help="Continue an interrupted run: keep the finished lines in --jsonl.")
@click.option("--force", is_flag=True, help="Replace an existing --jsonl instead of refusing.")
@click.option("--trust", "trust_paths", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Extra trust anchor PEM for this run (repeatable).")
@click.option("--detector", "detector_path", type=click.Path(file_okay=False, path_type=Path),
              help="A detector folder from `synthguard train detector` instead of the built-in one.")
@click.option("--no-ledger", is_flag=True, help="Do not look stripped copies up in the local ledger.")
@click.option("--no-audit", is_flag=True, help="Do not append to the audit log (the policy's audit.record).")
@click.option("--text-model", default="builtin", show_default=True,
              help="Texts: the model whose tokenizer re-reads them for your identity's text watermark.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary at the end instead of text.")
@handle_errors
def verify(paths, policy_path, jsonl_path, report_path, workers, resume, force, trust_paths, detector_path, no_ledger,
           no_audit, text_model, as_json) -> None:
    """Verify every file under PATHS (folders are walked) under a policy: verdict, desk action and evidence per
    file, one JSON line each; unreadable files are listed as errors with the policy's error action.

    Every verification is appended to the audit log ($SYNTHGUARD_HOME/audit.sqlite) unless the policy or
    --no-audit says otherwise; record a person's decision with `synthguard audit review`. Exit status 0 when every
    file was verified, 2 when any was an error (still listed).

    \b
    Examples:
      synthguard verify inbox/ --policy policies/newsroom-default.yaml --jsonl out.jsonl --report out.html
      synthguard verify inbox/ --jsonl out.jsonl --resume --workers 2
      synthguard verify a.jpg b.png --policy policies/newsroom-strict.yaml
    """
    from tqdm import tqdm  # noqa: PLC0415

    from synthguard.core.fileio import check_output_path  # noqa: PLC0415
    from synthguard.desk.batch import VerifySettings, write_batch_report  # noqa: PLC0415
    from synthguard.desk.batch import verify as run_verify
    from synthguard.policy import load_policy  # noqa: PLC0415

    policy = load_policy(policy_path)
    for path in (jsonl_path, report_path):
        if path is not None:
            check_output_path(path, overwrite=True)
    settings = VerifySettings(policy=policy, home=_home().root, trust_extra=tuple(trust_paths),
                              detector=detector_path, use_ledger=not no_ledger, text_model=text_model)
    bar = tqdm(desc="verify", unit="file", file=sys.stderr, disable=None)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        result = run_verify(paths, settings, jsonl=jsonl_path, workers=workers, resume=resume, overwrite=force,
                            audit=False if no_audit else None, progress=progress)
    finally:
        bar.close()
    if jsonl_path is None:
        for line in result.lines[result.resumed:]:
            click.echo(json.dumps(line, sort_keys=True))
    if report_path is not None:
        with tqdm(desc="report", unit="file", file=sys.stderr, disable=None) as rbar:
            def report_progress(done: int, total: int) -> None:
                rbar.total, rbar.n = total, done
                rbar.refresh()

            write_batch_report(report_path, result.lines, policy, progress=report_progress)
    errors = sum(1 for line in result.lines if line.get("error"))
    summary = {"files": len(result.lines), "resumed": result.resumed, "errors": errors, "actions": result.counts,
               "seconds": round(result.seconds, 2), "files_per_second": round(
                   (len(result.lines) - result.resumed) / max(result.seconds, 1e-9), 2),
               "policy": policy.name, "policy_sha256": policy.sha256, "jsonl": str(jsonl_path) if jsonl_path else None,
               "report": str(report_path) if report_path else None}
    if as_json:
        click.echo(json.dumps(summary), err=jsonl_path is None)
    else:
        actions = ", ".join(f"{n} {a}" for a, n in sorted(result.counts.items())) or "nothing"
        click.echo(f"verified {len(result.lines)} file(s) under policy {policy.name!r}: {actions}; {errors} error(s)"
                   + (f"; {result.resumed} from the earlier run" if result.resumed else "")
                   + (f"; lines in {jsonl_path}" if jsonl_path else "")
                   + (f"; report in {report_path}" if report_path else ""), err=True)
    if errors:
        sys.exit(InputError.exit_code)


# -------------------------------------------------------------------------------------------------------- serve
@main.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind (loopback by default: only this machine can reach the desk).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--policy", "policy_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Policy YAML (default: the built-in default policy).")
@click.option("--max-upload-mb", default=50, show_default=True, type=click.IntRange(1, 2048),
              help="Uploads larger than this are refused.")
@click.option("--storage", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for uploaded files (default: $SYNTHGUARD_HOME/desk-uploads).")
@handle_errors
def serve(host: str, port: int, policy_path, max_upload_mb: int, storage) -> None:
    """Run the local web verification desk: drop a file, see its verdict, desk action and evidence (the same
    pictures as the report), and record a human review in the audit log.

    \b
    Examples:
      synthguard serve
      synthguard serve --policy policies/newsroom-strict.yaml --port 8080
    """
    try:
        import uvicorn  # noqa: PLC0415
    except ImportError:
        raise InputError("the desk needs its web extras: pip install -c constraints.txt -e '.[desk]'") from None
    from synthguard.desk.batch import VerifySettings  # noqa: PLC0415
    from synthguard.desk.web import create_app  # noqa: PLC0415
    from synthguard.policy import load_policy  # noqa: PLC0415

    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"warning: binding to {host}: other machines on that network can reach the desk and its "
                   "uploads", err=True)
    settings = VerifySettings(policy=load_policy(policy_path), home=_home().root)
    app = create_app(settings, storage=storage, max_upload=max_upload_mb * 1024 * 1024)
    click.echo(f"SynthGuard desk on http://{host}:{port}/ (policy {settings.policy.name}); Ctrl-C stops it", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")


# ------------------------------------------------------------------------------------------------------- policy
@main.group()
def policy() -> None:
    """Check and explain policy files.

    \b
    Examples:
      synthguard policy check policies/newsroom-strict.yaml
      synthguard policy explain policies/newsroom-default.yaml
    """


@policy.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def policy_check(file: Path, as_json: bool) -> None:
    """Validate a policy file: unknown keys, bad values and missing anchor files are named.

    \b
    Example:
      synthguard policy check policies/newsroom-strict.yaml
    """
    from synthguard.policy import load_policy  # noqa: PLC0415

    loaded = load_policy(file)
    missing = [a for a in loaded.trust.anchors if not ((loaded.base_dir or Path.cwd()) / a).is_file()]
    if missing:
        raise InputError(f"policy {file}: trust.anchors: file(s) not found: {', '.join(missing)}")
    if as_json:
        _print_json({"file": str(file), "valid": True, "name": loaded.name, "sha256": loaded.sha256})
    else:
        click.echo(f"{file}: valid policy {loaded.name!r} (sha256 {loaded.sha256})")


@policy.command("explain")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@handle_errors
def policy_explain(file: Path) -> None:
    """Print a policy in plain words.

    \b
    Example:
      synthguard policy explain policies/platform-labeling.yaml
    """
    from synthguard.policy import load_policy  # noqa: PLC0415

    click.echo(load_policy(file).explain())


# -------------------------------------------------------------------------------------------------------- audit
@main.group()
def audit() -> None:
    """The audit log: every verification, and the reviews editors record.

    \b
    Examples:
      synthguard audit show --last 20
      synthguard audit review photo.jpg --decision publish --editor "A. Editor" --note "checked with the agency"
    """


@audit.command("review")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--decision", required=True, type=click.Choice(["publish", "label-ai", "human-review", "reject"]),
              help="The desk action the editor decided.")
@click.option("--editor", required=True, help="Name of the person taking editorial responsibility.")
@click.option("--note", default="", help="Why (free text).")
@click.option("--policy", "policy_path", type=click.Path(dir_okay=False, path_type=Path),
              help="The policy the review was made under.")
@handle_errors
def audit_review(file: Path, decision: str, editor: str, note: str, policy_path) -> None:
    """Record a person's review of FILE (by its SHA-256) in the audit log.

    \b
    Example:
      synthguard audit review photo.jpg --decision label-ai --editor "A. Editor" --note "AI illustration"
    """
    from synthguard.core.media import file_sha256  # noqa: PLC0415
    from synthguard.desk.audit import AuditLog  # noqa: PLC0415
    from synthguard.policy import load_policy  # noqa: PLC0415

    if not file.is_file():
        raise InputError(f"{file}: no such file")
    loaded = load_policy(policy_path)
    with AuditLog(_home().audit_path) as log:
        entry = log.record_review(file=str(file), file_sha256=file_sha256(file), decision=decision, editor=editor,
                                  note=note, policy=loaded.name, policy_sha256=loaded.sha256)
    click.echo(f"recorded review #{entry}: {decision} by {editor.strip()} for {file}")


@audit.command("show")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--last", type=click.IntRange(1), help="Only the last N entries.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per entry.")
@handle_errors
def audit_show(file: Path | None, last: int | None, as_json: bool) -> None:
    """Show audit entries, oldest first: all, or those of FILE (matched by its SHA-256, so a renamed copy counts).

    \b
    Example:
      synthguard audit show photo.jpg
    """
    from synthguard.core.media import file_sha256  # noqa: PLC0415
    from synthguard.desk.audit import AuditLog  # noqa: PLC0415

    home = _home()
    if not home.audit_path.exists():
        raise InputError(f"no audit log yet ({home.audit_path}); `synthguard verify` starts it")
    digest = None
    if file is not None:
        if not file.is_file():
            raise InputError(f"{file}: no such file")
        digest = file_sha256(file)
    with AuditLog(home.audit_path) as log:
        entries = log.entries(digest, last)
    for e in entries:
        if as_json:
            click.echo(json.dumps(e.to_dict()))
        elif e.kind == "review":
            click.echo(f"#{e.id} {e.time} review  {e.file}: {e.action} by {e.editor}" + (f" ({e.note})" if e.note
                                                                                           else ""))
        else:
            click.echo(f"#{e.id} {e.time} verify  {e.file}: {e.verdict or 'error'} -> {e.action} (policy "
                       f"{e.policy} {str(e.policy_sha256)[:12]}, synthguard {e.tool_version})")


# ----------------------------------------------------------------------------------------------------- generate
def _open_stamper(stack, home: Home, watermark: bool):
    """A Stamper over this home's identity and ledger (entered on ``stack``)."""
    from synthguard.provenance.ledger import Ledger  # noqa: PLC0415
    from synthguard.provenance.signing import SigningSession  # noqa: PLC0415
    from synthguard.stamp import Stamper  # noqa: PLC0415
    from synthguard.watermark import default_image_watermarker  # noqa: PLC0415

    identity = _identity(home)
    ledger = stack.enter_context(Ledger(home.ledger_path))
    session = stack.enter_context(SigningSession(identity, ledger))
    return Stamper(session, default_image_watermarker() if watermark else None)


@main.command()
@click.option("--backend", type=click.Choice(["gan", "vae", "diffusion", "text"]), default="gan", show_default=True,
              help="Model family. gan, vae and text have built-in weights; diffusion needs --model.")
@click.option("-n", "n", type=click.IntRange(1), help="Images to make (default 8); texts: samples per prompt "
                                                     "(default 1).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0), help="Seed of image 0 (image i: seed+i).")
@click.option("--model", help="A folder written by save_pretrained (or a diffusers pipeline folder / hub id); "
                              "text: a causal LM folder, a .gguf file or a hub id.")
@click.option("-o", "--output-dir", default="synthguard-out", show_default=True, type=click.Path(path_type=Path),
              help="Folder for the outputs; text: a .txt file for a single text.")
@click.option("--format", "fmt", type=click.Choice(["png", "jpeg", "webp"]), default="png", show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1))
@click.option("--size", default=256, show_default=True, type=click.IntRange(1, 8192),
              help="Output side in pixels (upsampled from the model's native size); see --native.")
@click.option("--native", is_flag=True, help="Keep the model's native size (28 px for the MNIST models: too small "
                                             "for the watermark, so use with --no-watermark).")
@click.option("--threads", type=click.IntRange(1), help="torch CPU threads (default: torch's choice).")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1),
              help="Threads that embed watermarks in parallel (signing stays in order on one).")
@click.option("--interpolate", nargs=2, metavar="A B",
              help="VAE: morph between two seeds or two image files instead of sampling (see --steps).")
@click.option("--steps", default=8, show_default=True, type=click.IntRange(2, 1000), help="Frames of --interpolate.")
@click.option("--inference-steps", type=click.IntRange(1), help="Diffusion: denoising steps (default: the "
                                                                 "pipeline's).")
@click.option("--prompt", help="Diffusion: the prompt, for text-to-image pipelines; text: the text to continue.")
@click.option("--prompts-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Text: one prompt per line (a batch).")
@click.option("--max-new-tokens", default=100, show_default=True, type=click.IntRange(1, 4096), help="Text.")
@click.option("--temperature", default=1.0, show_default=True, type=click.FloatRange(0, min_open=True), help="Text.")
@click.option("--top-p", default=0.95, show_default=True, type=click.FloatRange(0, 1, min_open=True), help="Text.")
@click.option("--top-k", default=0, show_default=True, type=click.IntRange(0), help="Text (0: off).")
@click.option("--text-watermark", type=click.Choice(["synthid", "kgw"]), default="synthid", show_default=True,
              help="Text: the watermark scheme, keyed by your identity.")
@click.option("--watermark/--no-watermark", default=True, show_default=True,
              help="Embed the invisible watermark (the manifest is signed and declares AI either way).")
@click.option("--force", is_flag=True, help="Replace existing output files.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report (files, timings per stage).")
@handle_errors
def generate(backend, n, seed, model, output_dir, fmt, device, batch_size, size, native, threads, workers, interpolate,
             steps, inference_steps, prompt, prompts_file, max_new_tokens, temperature, top_p, top_k, text_watermark,
             watermark, force, as_json) -> None:
    """Generate images or text; every output is watermarked, signed as trainedAlgorithmicMedia and recorded in the
    ledger (texts: a signed .c2pa sidecar beside each file).

    \b
    Examples:
      synthguard generate -n 16 --seed 42 -o out/            # built-in MNIST GAN, 256 px PNG
      synthguard generate --backend vae --interpolate 3 17 --steps 8 -o morph/
      synthguard generate --backend diffusion --model ./my-ddpm-pipeline -n 4 --device cuda
      synthguard generate --model ./my-gan --format jpeg --batch-size 256
      synthguard generate --backend text --prompt "ROMEO:" -o romeo.txt   # built-in Shakespeare LM
      synthguard generate --backend text --model ./SmolLM2-135M-Instruct.Q4_1.gguf --prompts-file prompts.txt \\
          --max-new-tokens 200 -o texts/
    """
    if backend == "text":
        _generate_text(model, prompt, prompts_file, n or 1, seed, output_dir, device, batch_size, threads,
                       max_new_tokens, temperature, top_p, top_k, text_watermark, watermark, force, as_json)
        return
    if prompts_file:
        raise InputError("--prompts-file applies to --backend text only")
    n = 8 if n is None else n
    if output_dir.exists() and not output_dir.is_dir():
        raise InputError(f"-o {output_dir} is a file; image backends write into a folder")
    import contextlib  # noqa: PLC0415

    from tqdm import tqdm  # noqa: PLC0415

    from synthguard.generate.backends import load_generator  # noqa: PLC0415
    from synthguard.generate.runs import generate_and_stamp, interpolate_and_stamp  # noqa: PLC0415

    if not watermark:
        click.echo("note: --no-watermark: images carry no invisible watermark; their signed manifests still declare "
                   "them AI-generated (trainedAlgorithmicMedia)", err=True)
    if (inference_steps or prompt) and backend != "diffusion":
        raise InputError("--inference-steps and --prompt apply to --backend diffusion only")
    generator = load_generator(backend, model, output_size=None if native else size, num_threads=threads,
                               inference_steps=inference_steps, prompt=prompt)
    count = steps if interpolate else n
    with contextlib.ExitStack() as stack:
        stamper = _open_stamper(stack, _home(), watermark)
        bar = stack.enter_context(tqdm(total=count, desc="generate+stamp", unit="img", file=sys.stderr,
                                       disable=None if count > 4 else True))
        if interpolate:
            report = interpolate_and_stamp(generator, interpolate[0], interpolate[1], steps, output_dir, stamper,
                                           fmt=fmt, overwrite=force, workers=workers, progress=bar.update)
        else:
            report = generate_and_stamp(generator, n, seed, output_dir, stamper, fmt=fmt, device=device,
                                        batch_size=batch_size, overwrite=force, workers=workers,
                                        progress=bar.update)
    if as_json:
        _print_json(report.to_dict())
        return
    shares = report.to_dict()["stage_share"]
    count = len(report.files)
    click.echo(f"wrote {count} image{'s' if count != 1 else ''} to {output_dir}/ with {report.model} {report.version} "
               f"({report.device}): {report.images_per_second:.1f} images/s; share of the work: model "
               f"{100 * shares['model']:.0f}%, watermark {100 * shares['watermark']:.0f}%, "
               f"sign {100 * shares['sign']:.0f}%")
    click.echo("each is signed (trainedAlgorithmicMedia, model assertion)"
               + (" and watermarked, bound by c2pa.soft-binding" if watermark else "")
               + f"; verify with: synthguard detect {output_dir}/*")


def _read_prompts(prompt: str | None, prompts_file: Path | None) -> list[str]:
    if prompt is not None and prompts_file is not None:
        raise InputError("give --prompt or --prompts-file, not both")
    if prompts_file is not None:
        from synthguard.core.media import read_text  # noqa: PLC0415

        if not prompts_file.is_file():
            raise InputError(f"{prompts_file}: no such file")
        prompts = [line.strip() for line in read_text(prompts_file).splitlines() if line.strip()]
        if not prompts:
            raise InputError(f"{prompts_file}: no prompt in it (one per line)")
        return prompts
    return [prompt if prompt is not None else ""]


def _generate_text(model, prompt, prompts_file, n, seed, output, device, batch_size, threads, max_new_tokens,
                   temperature, top_p, top_k, scheme, watermark, force, as_json) -> None:
    import contextlib  # noqa: PLC0415

    import torch  # noqa: PLC0415
    from tqdm import tqdm  # noqa: PLC0415

    from synthguard.generate.text_runs import generate_and_stamp_text  # noqa: PLC0415
    from synthguard.models.text import load_text_model  # noqa: PLC0415
    from synthguard.provenance.ledger import Ledger  # noqa: PLC0415
    from synthguard.provenance.signing import SigningSession  # noqa: PLC0415
    from synthguard.watermark.text.schemes import make_watermarker  # noqa: PLC0415

    if threads:
        torch.set_num_threads(threads)
    prompts = [p for p in _read_prompts(prompt, prompts_file) for _ in range(n)]
    if not watermark:
        click.echo("note: --no-watermark: the texts carry no text watermark; their signed sidecars still declare "
                   "them AI-generated (trainedAlgorithmicMedia)", err=True)
    tm = load_text_model(model, device=device)
    home = _home()
    identity = _identity(home)
    wm = make_watermarker(scheme, identity.text_watermark_secret()) if watermark else None
    streamer = None
    if len(prompts) == 1 and not as_json and sys.stdout.isatty():
        from transformers import TextStreamer  # noqa: PLC0415

        streamer = TextStreamer(tm.tokenizer, skip_prompt=False, skip_special_tokens=True)
    with contextlib.ExitStack() as stack:
        ledger = stack.enter_context(Ledger(home.ledger_path))
        session = stack.enter_context(SigningSession(identity, ledger))
        bar = stack.enter_context(tqdm(total=len(prompts), desc="generate", unit="text", file=sys.stderr,
                                       disable=None if len(prompts) > 1 else True))
        report = generate_and_stamp_text(tm, prompts, output, session, wm, max_new_tokens=max_new_tokens,
                                         temperature=temperature, top_p=top_p, top_k=top_k, seed=seed,
                                         batch_size=min(batch_size, 64), overwrite=force,
                                         progress=lambda done: bar.update(done - bar.n), streamer=streamer)
    if as_json:
        _print_json(report.to_dict())
        return
    for o in report.outputs:
        if o.warning:
            click.echo(f"warning: {o.file}: {o.warning}", err=True)
    if streamer is None and len(report.outputs) == 1:
        click.echo(Path(report.outputs[0].file).read_text(encoding="utf-8"))
    count = len(report.outputs)
    where = report.outputs[0].file if count == 1 else f"{output}/"
    click.echo(f"wrote {count} text{'s' if count != 1 else ''} to {where} with {report.model} {report.version} "
               f"({report.device}, {report.tokens_per_second:.1f} tokens/s)", err=True)
    click.echo("each is signed (.c2pa sidecar: trainedAlgorithmicMedia, model assertion)"
               + (f" and watermarked ({wm.algorithm_id}, key {wm.key_id})" if wm else "")
               + f"; verify with: synthguard detect {where}", err=True)


# -------------------------------------------------------------------------------------------------------- train
@main.group()
def train() -> None:
    """Train the models SynthGuard ships (the built-in weights were made with these commands).

    \b
    Examples:
      synthguard train gan --data mnist --epochs 25 -o my-gan/
      synthguard train vae --data ./digits/ --epochs 10 -o my-vae/
      synthguard train classifier --epochs 4 -o my-classifier/
    """


def _train_options(func):
    for option in reversed([
        click.option("--data", default="mnist", show_default=True,
                     help="'mnist' (../shared/datasets/mnist.npz or $SYNTHGUARD_MNIST) or a folder of images."),
        click.option("--epochs", default=5, show_default=True, type=click.IntRange(1)),
        click.option("--batch-size", default=128, show_default=True, type=click.IntRange(1)),
        click.option("--seed", default=0, show_default=True, type=click.IntRange(0)),
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N."),
        click.option("--threads", type=click.IntRange(1), help="torch CPU threads."),
        click.option("--limit", type=click.IntRange(1), help="Train on the first N images only."),
        click.option("-o", "--output", required=True, type=click.Path(file_okay=False, path_type=Path),
                     help="Folder to save the model in (save_pretrained: config.json + safetensors)."),
        click.option("--force", is_flag=True, help="Write into an existing folder."),
    ]):
        func = option(func)
    return func


def _prepare_output(output: Path, force: bool) -> None:
    if output.exists() and any(output.iterdir()) and not force:
        raise InputError(f"{output} exists and is not empty (use --force to overwrite the model in it)")


def _training_record(output: Path, record: dict) -> None:
    from synthguard.core.fileio import write_atomic  # noqa: PLC0415

    output.mkdir(parents=True, exist_ok=True)
    write_atomic(output / "training.json", (json.dumps(record, indent=2, default=str) + "\n").encode())


def _save_trained(model, output: Path, command: str, config, history, n_images: int) -> None:
    """``save_pretrained`` plus a ``training.json`` record: the command, config and per-epoch history."""
    import dataclasses  # noqa: PLC0415

    model.save_pretrained(output)
    _training_record(output, {"command": command, "config": dataclasses.asdict(config),
                              "history": [dataclasses.asdict(e) for e in history], "images": n_images})


@train.command("gan")
@_train_options
@handle_errors
def train_gan_cmd(data, epochs, batch_size, seed, device, threads, limit, output, force) -> None:
    """Train a DCGAN (spectral-norm discriminator); prints losses and mode-collapse diagnostics per epoch.

    \b
    Example:
      synthguard train gan --data mnist --epochs 25 --device cuda -o my-gan/
    """
    from synthguard.training.data import load_images  # noqa: PLC0415
    from synthguard.training.evaluation import builtin_feature_extractor  # noqa: PLC0415
    from synthguard.training.gan import GANTrainConfig, train_gan  # noqa: PLC0415

    _prepare_output(output, force)
    images = load_images(data, limit=limit)
    config = GANTrainConfig()
    result = train_gan(images, config, epochs=epochs, batch_size=batch_size, seed=seed, device=device,
                       num_threads=threads, classifier=builtin_feature_extractor(num_threads=threads),
                       log=lambda line: click.echo(line, err=True))
    _save_trained(result.generator, output, f"synthguard train gan --data {data} --epochs {epochs} --batch-size "
                  f"{batch_size} --seed {seed}", config, result.history, len(images))
    click.echo(f"saved the generator to {output}/ (use it with: synthguard generate --model {output})")


@train.command("vae")
@_train_options
@handle_errors
def train_vae_cmd(data, epochs, batch_size, seed, device, threads, limit, output, force) -> None:
    """Train a convolutional VAE; prints reconstruction and KL terms per epoch.

    \b
    Example:
      synthguard train vae --data mnist --epochs 25 -o my-vae/
    """
    from synthguard.training.data import load_images  # noqa: PLC0415
    from synthguard.training.vae import VAETrainConfig, train_vae  # noqa: PLC0415

    _prepare_output(output, force)
    images = load_images(data, limit=limit)
    config = VAETrainConfig()
    result = train_vae(images, config, epochs=epochs, batch_size=batch_size, seed=seed, device=device,
                       num_threads=threads, log=lambda line: click.echo(line, err=True))
    _save_trained(result.model, output, f"synthguard train vae --data {data} --epochs {epochs} --batch-size "
                  f"{batch_size} --seed {seed}", config, result.history, len(images))
    click.echo(f"saved the VAE to {output}/ (use it with: synthguard generate --backend vae --model {output})")


@train.command("classifier")
@_train_options
@handle_errors
def train_classifier_cmd(data, epochs, batch_size, seed, device, threads, limit, output, force) -> None:
    """Train the MNIST classifier whose features score FID/KID/IS (MNIST only: it needs labels).

    \b
    Example:
      synthguard train classifier --epochs 4 -o my-classifier/
    """
    from synthguard.training.data import load_mnist  # noqa: PLC0415
    from synthguard.training.evaluation import train_mnist_classifier  # noqa: PLC0415

    if data != "mnist":
        raise InputError("the classifier trains on labelled MNIST only (--data mnist)")
    _prepare_output(output, force)
    train_split, test_split = load_mnist("train"), load_mnist("test")
    result = train_mnist_classifier(train_split.images[:limit], train_split.labels[:limit], test_split.images,
                                    test_split.labels, epochs=epochs, batch_size=batch_size, seed=seed,
                                    device=device, num_threads=threads, log=lambda line: click.echo(line, err=True))
    result.model.save_pretrained(output)
    _training_record(output, {"command": f"synthguard train classifier --epochs {epochs} --seed {seed}",
                              "test_accuracy": result.test_accuracy, "epoch_losses": result.epoch_losses})
    click.echo(f"saved the classifier to {output}/: test accuracy {result.test_accuracy:.4f}")


def _folder_images(folder: Path, limit: int | None) -> tuple[list, list[str]]:
    """Every readable image in ``folder`` (sorted, not recursive) as RGB; the unreadable ones' messages."""
    from synthguard.core.media import MediaKind, decode_image, sniff  # noqa: PLC0415

    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder of images")
    images, skipped = [], []
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        if limit is not None and len(images) >= limit:
            break
        try:
            if sniff(path).kind is not MediaKind.IMAGE:
                continue
            images.append(decode_image(path, keep_rgb=True).rgb)
        except InputError as exc:
            skipped.append(f"{path}: {exc}")
    if len(images) < 2:
        raise InputError(f"{folder} has {len(images)} usable image(s); each folder needs at least 2 (some are held "
                         "out for calibration)")
    return images, skipped


@train.command("detector")
@click.option("--real", "real_dirs", multiple=True, required=True, type=click.Path(path_type=Path),
              help="Folder of real images (repeatable).")
@click.option("--fake", "fake_dirs", multiple=True, required=True, type=click.Path(path_type=Path),
              help="Folder of synthetic images, one generator family per folder (repeatable).")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the detector (patch/, global/, calibration.json, training.json).")
@click.option("--steps", default=1500, show_default=True, type=click.IntRange(1), help="Patch-view optimiser steps.")
@click.option("--global-epochs", default=16, show_default=True, type=click.IntRange(0),
              help="Global-view epochs (0: patch view only).")
@click.option("--holdout", default=0.2, show_default=True, type=click.FloatRange(0.05, 0.5),
              help="Share of each folder held out to calibrate probabilities and the threshold.")
@click.option("--target-fpr", default=0.01, show_default=True, type=click.FloatRange(0.0, 0.5, max_open=True),
              help="False-positive rate on held-out real images the threshold is set for.")
@click.option("--backbone", help="Instead of the discriminator: a linear probe on this pretrained vision model's "
                                 "features (transformers hub id or local folder, e.g. a CLIP vision model).")
@click.option("--limit", type=click.IntRange(2), help="At most N images per folder.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0))
@click.option("--threads", type=click.IntRange(1), help="torch CPU threads.")
@click.option("--force", is_flag=True, help="Write into an existing folder.")
@handle_errors
def train_detector_cmd(real_dirs, fake_dirs, output, steps, global_epochs, holdout, target_fpr, backbone, limit, seed,
                       threads, force) -> None:
    """Train the synthetic-image detector (patch + global discriminator views) on your own folders, calibrate it on
    a held-out share of each folder, and save it; use it with `synthguard detect --detector FOLDER`.

    Both classes get the same JPEG/resize augmentation, so file format is never the cue. The shipped detector was
    trained by `python -m synthguard.training.detector` (see synthguard/models/weights/detector/README.md).

    \b
    Examples:
      synthguard train detector --real photos/ --fake gan-out/ --fake diffusion-out/ -o my-detector/
      synthguard train detector --real photos/ --fake gan-out/ --backbone ./clip-vit-base -o clip-probe/
    """
    import dataclasses  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415

    from synthguard.models.detector import to_luma  # noqa: PLC0415
    from synthguard.training.detector import DetectorTrainConfig  # noqa: PLC0415

    _prepare_output(output, force)
    rng = np.random.default_rng(seed)

    def split(images: list) -> tuple[list, list]:
        order = rng.permutation(len(images))
        cut = max(1, round(holdout * len(images)))
        return [images[i] for i in order[cut:]], [images[i] for i in order[:cut]]

    real_train, real_cal, fakes_train, fakes_cal, skipped = [], [], {}, {}, []
    for folder in real_dirs:
        images, bad = _folder_images(folder, limit)
        skipped += bad
        tr, ca = split(images)
        real_train += tr
        real_cal += ca
    for folder in fake_dirs:
        images, bad = _folder_images(folder, limit)
        skipped += bad
        family = folder.resolve().name or "fake"
        if family in fakes_train:
            raise InputError(f"two --fake folders are named {family!r}: the folder name is the family's name")
        fakes_train[family], fakes_cal[family] = split(images)
    for line in skipped:
        click.echo(f"skipped {line}", err=True)
    command = "synthguard train detector " + " ".join(
        [f"--real {d}" for d in real_dirs] + [f"--fake {d}" for d in fake_dirs]
        + ([f"--backbone {backbone}"] if backbone else [])
        + [f"--steps {steps} --global-epochs {global_epochs} --holdout {holdout} --seed {seed}"])
    if backbone:
        from synthguard.models.backbone import train_backbone_detector  # noqa: PLC0415

        detector = train_backbone_detector(backbone, real_train, [im for v in fakes_train.values() for im in v],
                                           real_cal, [im for v in fakes_cal.values() for im in v],
                                           target_fpr=target_fpr, num_threads=threads)
        detector.save_pretrained(output)
        _training_record(output, {"command": command, "backbone": backbone, "skipped": skipped,
                                  "calibration": dataclasses.asdict(detector.calibration)})
    else:
        detector = _train_discriminator_detector(
            [to_luma(im) for im in real_train], {k: [to_luma(im) for im in v] for k, v in fakes_train.items()},
            [to_luma(im) for im in real_cal], {k: [to_luma(im) for im in v] for k, v in fakes_cal.items()},
            DetectorTrainConfig(steps=steps, global_epochs=global_epochs, global_size=32 if global_epochs else 0,
                                target_fpr=target_fpr), seed, threads, output, command, skipped)
    cal = detector.calibration
    click.echo(f"saved the detector to {output}/: threshold {cal.threshold:.4f} on P(synthetic), measured FPR "
               f"{100 * cal.measured_fpr:.1f}% on {cal.n_real} held-out real scores (use it with: synthguard detect "
               f"--detector {output} FILE)")


def _train_discriminator_detector(real_train, fakes_train, real_cal, fakes_cal, config, seed, threads, output,
                                  command, skipped):
    import dataclasses  # noqa: PLC0415

    from synthguard.training.detector import train_detector  # noqa: PLC0415

    detector, record = train_detector(real_train, fakes_train, calibration_real=real_cal,
                                      calibration_fakes_by_family=fakes_cal, config=config, seed=seed,
                                      num_threads=threads, log=lambda line: click.echo(line, err=True))
    detector.save_pretrained(output)
    _training_record(output, {"command": command, "training": dataclasses.asdict(record), "skipped": skipped})
    return detector


# --------------------------------------------------------------------------------------------------------- eval
@train.command("text")
@click.option("--data", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="A UTF-8 plain-text file (the built-in model: ../shared/datasets/tinyshakespeare.txt).")
@click.option("--steps", default=2000, show_default=True, type=click.IntRange(1))
@click.option("--vocab-size", default=1024, show_default=True, type=click.IntRange(260, 65536),
              help="Byte-level BPE vocabulary.")
@click.option("--layers", default=4, show_default=True, type=click.IntRange(1))
@click.option("--width", default=128, show_default=True, type=click.IntRange(16), help="Embedding width.")
@click.option("--context", default=256, show_default=True, type=click.IntRange(16), help="Context in tokens.")
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(1))
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0))
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--threads", type=click.IntRange(1), help="torch CPU threads.")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the model, tokenizer and training.json.")
@click.option("--force", is_flag=True, help="Write into an existing folder.")
@handle_errors
def train_text_cmd(data, steps, vocab_size, layers, width, context, batch_size, seed, device, threads, output,
                   force) -> None:
    """Train a small GPT-2 (byte-level BPE) from scratch on a text file; 5% is held out for perplexity.

    \b
    Examples:
      synthguard train text --data ../shared/datasets/tinyshakespeare.txt -o my-lm/
      synthguard generate --backend text --model my-lm/ --prompt "JULIET:" -o juliet.txt
    """
    import torch  # noqa: PLC0415
    from tqdm import tqdm  # noqa: PLC0415

    from synthguard.core.torch_utils import resolve_device
    from synthguard.training.text import TextTrainConfig, train_text_model  # noqa: PLC0415

    _prepare_output(output, force)
    if threads:
        torch.set_num_threads(threads)
    if not data.is_file():
        raise InputError(f"{data}: no such file")
    config = TextTrainConfig(vocab_size=vocab_size, n_layer=layers, n_embd=width, n_head=max(1, width // 32),
                             context=context, steps=steps, batch_size=batch_size, seed=seed)
    command = (f"synthguard train text --data {data.name} --steps {steps} --vocab-size {vocab_size} --layers {layers} "
               f"--width {width} --context {context} --batch-size {batch_size} --seed {seed}")
    with tqdm(total=steps, desc="train text", unit="step", file=sys.stderr) as bar:
        def progress(step: int, loss: float) -> None:
            bar.update(1)
            if step % 50 == 0:
                bar.set_postfix(loss=f"{loss:.3f}")
        record = train_text_model(data, output, config, device=resolve_device(device), progress=progress,
                                  command=command)
    click.echo(f"saved to {output}/: {record['parameters']:,} parameters, held-out perplexity "
               f"{record['heldout_perplexity_per_token']:.2f} per token ({record['heldout_bits_per_character']:.3f} "
               f"bits/char) after {steps} steps in {record['seconds']:.0f} s")


@main.group(name="eval")
def eval_group() -> None:
    """Evaluate generative models (FID, KID, Inception Score, precision/recall).

    \b
    Example:
      synthguard eval images --real mnist --fake out/
    """


@eval_group.command("images")
@click.option("--real", default="mnist", show_default=True,
              help="'mnist' (held-out test split) or a folder of real images.")
@click.option("--fake", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder of generated images.")
@click.option("--limit", default=2000, show_default=True, type=click.IntRange(2), help="Images per set at most.")
@click.option("--threads", type=click.IntRange(1), help="torch CPU threads.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def eval_images(real, fake, limit, threads, as_json) -> None:
    """Score generated images against real ones with the shipped MNIST feature extractor.

    The extractor is named in the output: scores compare only between runs with the same one.

    \b
    Examples:
      synthguard eval images --real mnist --fake out/
      synthguard eval images --real ./real-digits --fake ./fake-digits --json
    """
    import dataclasses  # noqa: PLC0415

    from synthguard.training.data import load_images  # noqa: PLC0415
    from synthguard.training.evaluation import (
        builtin_feature_extractor,  # noqa: PLC0415
        score_images,  # noqa: PLC0415
    )

    reference = load_images(real, split="test", limit=limit)
    generated = load_images(fake, limit=limit)
    scores = score_images(generated, reference, builtin_feature_extractor(num_threads=threads))
    if as_json:
        _print_json(dataclasses.asdict(scores))
        return
    click.echo(f"feature extractor: {scores.feature_extractor}  ({scores.n_generated} generated vs "
               f"{scores.n_reference} reference images)")
    click.echo(f"FID {scores.fid:.2f}   KID {scores.kid:.3f} ± {scores.kid_std:.3f}   IS {scores.inception_score:.2f} "
               f"± {scores.inception_score_std:.2f}   precision {scores.precision:.3f}   recall {scores.recall:.3f}")


# ---------------------------------------------------------------------------------------------------- watermark
@main.group()
def watermark() -> None:
    """Embed and detect SynthGuard's invisible image watermark on its own (no manifest).

    \b
    Examples:
      synthguard watermark embed render.png -o marked.png
      synthguard watermark detect marked.png --json
    """


@watermark.command("embed")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path),
              help="Marked image to write (format from its extension: .png, .jpg, .webp, .tif).")
@click.option("--payload", help="The 6-byte payload as 12 hex digits (default: a fresh SynthGuard payload).")
@click.option("--ai/--not-ai", default=True, show_default=True,
              help="For a fresh payload: set its AI-generated bit.")
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@handle_errors
def watermark_embed(file: Path, output: Path, payload: str | None, ai: bool, force: bool, as_json: bool) -> None:
    """Write a copy of FILE carrying the invisible watermark.

    Use `synthguard sign` to watermark *and* sign with the payload bound to the manifest; this command marks only.

    \b
    Examples:
      synthguard watermark embed render.png -o marked.png
      synthguard watermark embed render.png -o marked.jpg --payload 2a0000c0ffee
    """
    from synthguard.core.fileio import check_output_path, write_atomic  # noqa: PLC0415
    from synthguard.core.media import decode_image, sniff  # noqa: PLC0415
    from synthguard.stamp import embed_file  # noqa: PLC0415
    from synthguard.watermark import default_image_watermarker  # noqa: PLC0415
    from synthguard.watermark.payload import Payload  # noqa: PLC0415

    check_output_path(output, inputs=(file,), overwrite=force)
    if payload is not None:
        try:
            data = bytes.fromhex(payload)
        except ValueError:
            raise InputError(f"--payload {payload!r} is not hex") from None
    else:
        data = Payload.new(ai, None).to_bytes()
    sniff(file)
    decode_image(file)
    watermarker = default_image_watermarker()
    encoded = embed_file(file, output, data, watermarker)
    write_atomic(output, encoded)
    result = {"output": str(output), "payload": data.hex(), "algorithm": watermarker.algorithm_id}
    if as_json:
        _print_json(result)
    else:
        click.echo(f"marked {output}: payload {data.hex()}, {watermarker.algorithm_id}")


@watermark.command("detect")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per input, one per line.")
@handle_errors
def watermark_detect(files: tuple[Path, ...], as_json: bool) -> None:
    """Look for the watermark in FILES and decode its payload, with the chance it is a false alarm (p-value).

    \b
    Examples:
      synthguard watermark detect marked.png
      synthguard watermark detect *.jpg --json
    """
    from synthguard.core.media import MediaKind, decode_image, sniff  # noqa: PLC0415
    from synthguard.detect.watermark_signal import score_watermark  # noqa: PLC0415
    from synthguard.watermark import default_image_watermarker  # noqa: PLC0415

    watermarker = default_image_watermarker()

    def work(path: Path):
        if sniff(path).kind is not MediaKind.IMAGE:
            raise InputError(f"{path}: not an image; the image watermark applies to images only")
        return score_watermark(decode_image(path, keep_rgb=True).rgb, watermarker)

    def as_text(path: Path, signal) -> str:
        if signal.detected:
            return (f"{path}: watermark found, payload {signal.payload}, p={signal.p_value:.1e}, "
                    f"{signal.bit_errors} bit(s) corrected, {signal.algorithm}")
        return f"{path}: " + (f"not tested ({signal.skipped})" if signal.skipped else "no watermark found")

    _per_file(files, as_json, work, lambda path, signal: {"file": str(path), **signal.to_dict()}, as_text)


# -------------------------------------------------------------------------------------------------------- bench
@eval_group.command("text")
@click.option("--model", default="builtin", show_default=True,
              help="The model to evaluate (and to generate with): 'builtin', folder, .gguf file or hub id.")
@click.option("--data", type=click.Path(dir_okay=False, path_type=Path),
              help="UTF-8 text to measure perplexity on (default: the Python standard library's docstrings).")
@click.option("--windows", default=100, show_default=True, type=click.IntRange(1), help="Text windows to score.")
@click.option("--window-words", default=150, show_default=True, type=click.IntRange(5))
@click.option("--watermark-cost", is_flag=True,
              help="Also generate unmarked and marked continuations (both schemes, same seeds), compare their "
                   "perplexity under the model, and report the exact expected perplexity cost per marked token.")
@click.option("--prompts", "n_prompts", default=20, show_default=True, type=click.IntRange(1),
              help="--watermark-cost: prompts (the built-in news prompts, repeated as needed).")
@click.option("--max-new-tokens", default=100, show_default=True, type=click.IntRange(1, 4096))
@click.option("--top-p", default=0.95, show_default=True, type=click.FloatRange(0, 1, min_open=True))
@click.option("--keys", "n_keys", default=1, show_default=True, type=click.IntRange(1, 100),
              help="--watermark-cost: measurement keys per scheme. A scheme that is distortion-free in expectation "
                   "over keys can still cost (or gain) a little for one key; with 2 or more, the spread over keys "
                   "and a 95%% interval of the mean are reported.")
@click.option("--scheme", "schemes", multiple=True, type=click.Choice(["synthid", "kgw"]),
              help="--watermark-cost: schemes to measure (repeatable; default both).")
@click.option("--threads", type=click.IntRange(1), help="torch CPU threads.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def eval_text(model, data, windows, window_words, watermark_cost, n_prompts, max_new_tokens, top_p, n_keys, schemes,
              threads, as_json) -> None:
    """Perplexity of a causal LM on text, and with --watermark-cost the watermarks' perplexity cost.

    \b
    Examples:
      synthguard eval text --data ../shared/datasets/tinyshakespeare.txt
      synthguard eval text --model ./SmolLM2-135M-Instruct.Q4_1.gguf --watermark-cost --max-new-tokens 200
      synthguard eval text --model ./SmolLM2-135M-Instruct.Q4_1.gguf --watermark-cost --scheme synthid --keys 8
    """
    import torch  # noqa: PLC0415

    from synthguard.bench.text_watermark_bench import default_prompts  # noqa: PLC0415
    from synthguard.models.text import load_text_model, perplexity  # noqa: PLC0415
    from synthguard.watermark.text.human import load_corpus  # noqa: PLC0415

    if threads:
        torch.set_num_threads(threads)
    tm = load_text_model(model, device="cpu")
    texts = load_corpus(data if data is not None else "stdlib-docstrings", words=window_words, limit=windows)
    ppl, tokens = perplexity(tm, [("", t) for t in texts])
    result = {"model": tm.name, "data": str(data or "stdlib-docstrings"), "windows": len(texts), "tokens": tokens,
              "perplexity": ppl}
    if watermark_cost:
        prompts = (default_prompts() * (n_prompts // 50 + 1))[:n_prompts]
        result["watermark_cost"] = _watermark_cost(tm, prompts, max_new_tokens=max_new_tokens, top_p=top_p,
                                                   n_keys=n_keys, schemes=schemes or ("synthid", "kgw"))
    if as_json:
        _print_json(result)
        return
    click.echo(f"{tm.name}: perplexity {ppl:.2f} on {tokens} tokens ({len(texts)} windows of {result['data']})")
    if watermark_cost:
        c = result["watermark_cost"]
        click.echo(f"generations ({c['prompts']} prompts x {max_new_tokens} tokens, top-p {top_p}, {n_keys} key(s) "
                   f"per scheme), perplexity under {tm.name}: unmarked {c['unmarked']['perplexity']:.2f}"
                   + "".join(f"; {s} {c[s]['perplexity']:.2f} ({100 * c[s]['increase']:+.1f}%)"
                             for s in c["schemes"]))
        for s in c["schemes"]:
            x = c[s]["expected"]
            lo, hi = x["perplexity_increase_95ci"]
            click.echo(f"{s}: exact expected perplexity cost per marked token {100 * x['perplexity_increase']:+.2f}% "
                       f"(95% CI over samples {100 * lo:+.2f}% to {100 * hi:+.2f}%)")
            if "over_keys" in c[s]:
                k = c[s]["over_keys"]
                per_key = ", ".join(f"{100 * e['expected']['perplexity_increase']:+.2f}%" for e in c[s]["keys"])
                click.echo(f"  over {n_keys} keys: mean {100 * k['mean']:+.2f}% (95% CI {100 * k['95ci'][0]:+.2f}% "
                           f"to {100 * k['95ci'][1]:+.2f}%), per key {per_key}")


def _watermark_cost(tm, prompts: list[str], *, max_new_tokens: int, top_p: float, n_keys: int,
                    schemes: tuple[str, ...]) -> dict:
    """Unmarked and marked continuations of the same prompts with the same seeds, for each scheme and measurement
    key: the sampled perplexity under ``tm`` and the exact expected cost per marked token (``ExpectedCostMeter``)."""
    import numpy as np  # noqa: PLC0415

    from synthguard.bench.text_watermark_bench import expected_cost  # noqa: PLC0415
    from synthguard.models.text import ExpectedCostMeter, generate_text, perplexity  # noqa: PLC0415
    from synthguard.watermark.text.schemes import make_watermarker  # noqa: PLC0415

    def measure(wm) -> tuple[list, list]:
        meter = ExpectedCostMeter()
        samples = generate_text(tm, prompts, max_new_tokens=max_new_tokens, top_p=top_p, seed=0, watermarker=wm,
                                batch_size=min(len(prompts), 50), cost_meter=meter)
        return [(tm.encode(s.prompt), s.token_ids) for s in samples], meter.samples

    plain, _ = measure(None)
    plain_ppl, plain_tokens = perplexity(tm, plain)
    out: dict = {"prompts": len(prompts), "max_new_tokens": max_new_tokens, "top_p": top_p, "keys": n_keys,
                 "schemes": list(schemes), "unmarked": {"perplexity": plain_ppl, "tokens": plain_tokens}}
    for scheme in schemes:
        pairs, costs, per_key = [], [], []
        for k in range(n_keys):
            # Fixed measurement keys, not anyone's identity (key 0 is the one earlier releases used).
            secret = b"synthguard eval text watermark cost" + (f" {k}".encode() if k else b"")
            wm = make_watermarker(scheme, secret)
            marked, cost = measure(wm)
            pairs += marked
            costs += cost
            per_key.append({"key_id": wm.key_id, "expected": expected_cost(cost)})
        value, count = perplexity(tm, pairs)
        entry = {"perplexity": value, "tokens": count, "increase": value / plain_ppl - 1,
                 "expected": expected_cost(costs), "keys": per_key}
        if n_keys >= 2:
            rises = np.array([e["expected"]["perplexity_increase"] for e in per_key])
            se = rises.std(ddof=1) / np.sqrt(len(rises))
            entry["over_keys"] = {"mean": float(rises.mean()), "sd": float(rises.std(ddof=1)),
                                  "95ci": [float(rises.mean() - 1.96 * se), float(rises.mean() + 1.96 * se)]}
        out[scheme] = entry
    return out


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


@bench.command("detector")
@click.option("-n", "n", default=100, show_default=True, type=click.IntRange(5),
              help="Test images per generator family and per real domain (photos, digits).")
@click.option("--detector", "detector_path", type=click.Path(file_okay=False, path_type=Path),
              help="A detector folder from `synthguard train detector` (default: the built-in one).")
@click.option("--threshold", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Measure detection and false-positive rates at this P(synthetic) instead of the calibrated "
                   "threshold (e.g. a policy's classifier_threshold).")
@click.option("--threads", type=click.IntRange(1), default=1, show_default=True, help="torch CPU threads.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def bench_detector(n, detector_path, threshold, threads, as_json) -> None:
    """AUC, detection rate at the threshold, FPR on real images and time per image of the synthetic-image
    detector, per generator family, clean and after JPEG 75 / resize 0.5, on held-out test data.

    \b
    Examples:
      synthguard bench detector
      synthguard bench detector -n 200 --json > detector.json
      synthguard bench detector --threshold 0.5   # the rates under policies/newsroom-strict.yaml
    """
    from synthguard.bench.detector_bench import run  # noqa: PLC0415

    result = run(n, detector_path, threads, log=lambda line: click.echo(line, err=True), threshold=threshold)
    if as_json:
        _print_json(result)
    else:
        click.echo(result["table"])


@bench.command("text-watermark")
@click.option("--model", default="builtin", show_default=True,
              help="Generating and scoring model: 'builtin', folder, .gguf file (e.g. SmolLM2) or hub id.")
@click.option("--prompts", "n_prompts", default=50, show_default=True, type=click.IntRange(1),
              help="Prompts (the built-in news prompts, repeated as needed).")
@click.option("--max-new-tokens", default=300, show_default=True, type=click.IntRange(50, 4096))
@click.option("--human", "human_sources", multiple=True,
              help="Human text for the false-positive rates: stdlib-docstrings, python-help and/or text files (repeatable; "
                   "default: stdlib-docstrings).")
@click.option("--human-windows", default=1000, show_default=True, type=click.IntRange(30))
@click.option("--scheme", "schemes", multiple=True, type=click.Choice(["synthid", "kgw"]),
              help="Schemes to measure (repeatable; default both).")
@click.option("--kgw-delta", default=2.0, show_default=True, type=click.FloatRange(0, min_open=True))
@click.option("--synthid-depth", default=30, show_default=True, type=click.IntRange(1, 64))
@click.option("--synthid-ngram", "synthid_ngrams", multiple=True, type=click.IntRange(2, 8),
              help="SynthID n-gram length (repeatable: one scheme each; default 4, the generator's default).")
@click.option("--top-p", default=1.0, show_default=True, type=click.FloatRange(0, 1, min_open=True))
@click.option("--batch-size", default=50, show_default=True, type=click.IntRange(1))
@click.option("--key-seed", default=0, show_default=True, type=click.IntRange(0),
              help="Seed of the measurement key (not anyone's identity).")
@click.option("--attack-model", help="Model whose proposals replace words in the substitution attacks (default: the "
                                     "generating model).")
@click.option("--null-keys", default=5, show_default=True, type=click.IntRange(0),
              help="Also measure the false-positive rate on human text for this many other keys.")
@click.option("--threads", type=click.IntRange(1), help="torch CPU threads.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def bench_text_watermark(model, n_prompts, max_new_tokens, human_sources, human_windows, schemes, kgw_delta,
                         synthid_depth, synthid_ngrams, top_p, batch_size, key_seed, attack_model, null_keys, threads,
                         as_json) -> None:
    """TPR of the text watermarks at p <= 1e-2 / 1e-3 for 50-300 tokens, empirical FPR on human text at the same
    thresholds, after attacks (word deletion, model or word-list substitution, insertion into human text), and
    the perplexity and speed cost, in one run on one model.

    \b
    Examples:
      synthguard bench text-watermark --prompts 10 --max-new-tokens 100 --human-windows 100   # built-in, quick
      synthguard bench text-watermark --model ./SmolLM2-135M-Instruct.Q4_1.gguf \\
          --human stdlib-docstrings --human ../shared/datasets/tinyshakespeare.txt
    """
    import torch  # noqa: PLC0415

    from synthguard.bench import text_watermark_bench as tb  # noqa: PLC0415
    from synthguard.models.text import load_text_model  # noqa: PLC0415
    from synthguard.watermark.text.schemes import DEFAULT_SYNTHID_NGRAM, KGWText, SynthIDText, derive_key  # noqa: PLC0415

    if threads:
        torch.set_num_threads(threads)
    tm = load_text_model(model, device="auto")
    secret = f"synthguard bench key {key_seed}".encode()
    chosen = schemes or ("synthid", "kgw")
    wms = {}
    synthid_ngrams = synthid_ngrams or (DEFAULT_SYNTHID_NGRAM,)
    if "synthid" in chosen:
        for n in synthid_ngrams:
            name = "synthid" if n == synthid_ngrams[0] else f"synthid-{n}gram"
            wms[name] = SynthIDText(derive_key(secret, "synthid"), depth=synthid_depth, ngram_len=n)
    if "kgw" in chosen:
        wms["kgw"] = KGWText(derive_key(secret, "kgw"), delta=kgw_delta)
    prompts = (tb.default_prompts() * (n_prompts // 50 + 1))[:n_prompts]

    def other_key(scheme: str, k: int) -> bytes:
        return derive_key(f"synthguard bench null key {k}".encode(), scheme)

    makers = {"synthid": lambda k: SynthIDText(other_key("synthid", k), depth=synthid_depth,
                                               ngram_len=synthid_ngrams[0]),
              "kgw": lambda k: KGWText(other_key("kgw", k), delta=kgw_delta)}
    result = tb.run(tm, wms, prompts=prompts, human_source=list(human_sources) or ["stdlib-docstrings"],
                    max_new_tokens=max_new_tokens, batch_size=batch_size, top_p=top_p, human_windows=human_windows,
                    null_keys=makers, n_null_keys=null_keys,
                    attack_model=load_text_model(attack_model, device="auto") if attack_model else None,
                    progress=lambda msg: click.echo(f"[bench] {msg}", err=True))
    if as_json:
        _print_json(result)
    else:
        click.echo(tb.render(result))


@bench.command("verify")
@click.option("-n", "n", default=1000, show_default=True, type=click.IntRange(1), help="Images in the folder.")
@click.option("--workers", "worker_list", default="1,2", show_default=True, help="Comma-separated worker counts.")
@click.option("--policy", "policy_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Policy YAML (default: the built-in default: watermark and classifier on).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def bench_verify(n, worker_list, policy_path, as_json) -> None:
    """Throughput of `synthguard verify` on a folder of N 512 px images (written to a temp folder), with each
    worker count, peak memory, and whether the JSONL is identical across worker counts.

    \b
    Examples:
      synthguard bench verify
      synthguard bench verify -n 200 --workers 1,2,4 --json
    """
    from synthguard.bench.verify_bench import run  # noqa: PLC0415
    from synthguard.policy import load_policy  # noqa: PLC0415

    try:
        workers = [int(w) for w in worker_list.split(",") if w.strip()]
    except ValueError:
        raise InputError(f"--workers must be comma-separated integers, not {worker_list!r}") from None
    if not workers or min(workers) < 1:
        raise InputError("--workers needs at least one count >= 1")
    result = run(n, workers, load_policy(policy_path), _home().root, log=lambda line: click.echo(line, err=True))
    if as_json:
        _print_json(result)
        return
    for r in result["runs"]:
        click.echo(f"{r['workers']} worker(s): {r['files_per_second']:.1f} files/s ({r['seconds']:.1f} s for "
                   f"{n} files), peak RSS main {r['peak_rss_mb_main']:.0f} MB, workers {r['peak_rss_mb_workers']:.0f} "
                   f"MB, {r['errors']} error(s)")
    click.echo(f"identical JSONL across worker counts: {result['identical_jsonl_across_workers']}")


@bench.command("watermark")
@click.option("--images", "images_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Add the images in this folder to the default photo set.")
@click.option("--no-default-photos", is_flag=True, help="Use only --images (no scikit-image/scikit-learn set).")
@click.option("--size", default=512, show_default=True, type=click.IntRange(128, 8192),
              help="Side of the square each image is cropped and resized to.")
@click.option("--peers/--no-peers", default=True, show_default=True,
              help="Run invisible-watermark's dwtDctSvd and rivaGan beside SynthGuard's (when installed).")
@click.option("--peer-images", default=6, show_default=True, type=click.IntRange(0),
              help="Images for the peers (rivaGan takes seconds per decode on a CPU); 0 = all.")
@click.option("--attacks", "attack_names", help="Comma-separated attack names (default: the whole suite).")
@click.option("--seed", default=0, show_default=True, help="Seed of the random payloads.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def bench_watermark(images_dir, no_default_photos, size, peers, peer_images, attack_names, seed, as_json) -> None:
    """Robustness, quality, speed and false positives of the image watermark, beside peer watermarks.

    Runs every attack (JPEG 90/75/50, WebP 80, resize, rescale, crops, blur, brightness, contrast, rotation,
    noise, chains) on marked and on unmarked images; one thread (cv2) for comparable timings.

    \b
    Examples:
      synthguard bench watermark
      synthguard bench watermark --images ~/photos --no-peers --json > wm.json
      synthguard bench watermark --attacks jpeg50,crop80 --size 1024
    """
    import cv2  # noqa: PLC0415
    from tqdm import tqdm  # noqa: PLC0415

    from synthguard.bench.watermark_bench import PEERS_INSTALL, default_photos, folder_photos, iter_methods, run_method  # noqa: PLC0415
    from synthguard.watermark.image.attacks import ATTACKS  # noqa: PLC0415

    cv2.setNumThreads(1)
    attacks = {"none": lambda im: im, **ATTACKS}
    if attack_names:
        unknown = [a for a in attack_names.split(",") if a not in attacks]
        if unknown:
            raise InputError(f"unknown attack(s) {', '.join(unknown)}; known: {', '.join(attacks)}")
        attacks = {a: attacks[a] for a in attack_names.split(",")}
    if no_default_photos and not images_dir:
        raise InputError("--no-default-photos needs --images DIR")
    photos = ([] if no_default_photos else default_photos(size)) + (folder_photos(images_dir, size)
                                                                    if images_dir else [])
    methods = list(iter_methods(peers))
    if peers and len(methods) == 1:
        click.echo(f"note: peer watermarks not installed; to compare, run: {PEERS_INSTALL}", err=True)
    reports = []
    for method in methods:
        subset = photos if method.name.startswith("synthguard") or not peer_images else photos[:peer_images]
        with tqdm(total=len(subset) * len(attacks), desc=method.name, unit="test", file=sys.stderr,
                  disable=None) as bar:
            reports.append(run_method(method, subset, attacks, seed=seed, tick=bar.update).summary())
    if as_json:
        _print_json({"size": size, "reports": reports})
        return
    _print_watermark_table(reports, list(attacks))


def _pct(value) -> str:
    return "   -  " if value is None else f"{100 * value:5.1f}%"


def _print_watermark_table(reports: list[dict], attacks: list[str]) -> None:
    names = [r["method"] for r in reports]
    click.echo("exact payload recovery / mean bit accuracy / false positives on unmarked images, per attack")
    click.echo(f"{'attack':<26}" + "".join(f" | {n[:30]:<30}" for n in names))
    for attack in attacks:
        cells = []
        for r in reports:
            a = r["attacks"][attack]
            cells.append(f" | {_pct(a['exact'])} {_pct(a['bit_accuracy'])} {a['false_positives']:>3d} FP      ")
        tag = " *" if reports[0]["attacks"][attack]["report_only"] else ""
        click.echo(f"{attack + tag:<26}" + "".join(c[:33] for c in cells))
    click.echo("(* outside the acceptance bar, reported for completeness)")
    for r in reports:
        click.echo(f"{r['method']}: {r['payload_bits']} bits, {r['images']} images, PSNR {r['psnr_mean']:.2f} dB "
                   f"(min {r['psnr_min']:.2f}), SSIM {r['ssim_mean']:.4f}, embed {r['embed_ms_per_mp']:.0f} ms/MP, "
                   f"decode {r['decode_ms_per_mp']:.0f} ms/MP, false positives {r['false_positives_total']}/"
                   f"{r['unmarked_tests']}")


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
