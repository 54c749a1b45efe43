"""``synthguard verify`` (batch folders) and ``synthguard serve`` (the local web desk)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from synthguard.cli import options
from synthguard.cli.context import Env, pass_env, results_only_on_stdout
from synthguard.errors import InputError, missing_extra


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@options.policy()
@options.verification(text_model_help="Texts: the model whose tokenizer re-reads them for your identity's "
                                      "text watermark.")
@click.option("--jsonl", "jsonl_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write one JSON line per file here (default: print them).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write an HTML report grouped by desk action (thumbnails, heatmaps, forensic pictures).")
@click.option("--workers", type=click.IntRange(1, 4096),
              help="Worker processes (default 1), or with --engine ray the actor pool's size (default: the "
                   "cluster's CPUs). Results are identical whatever the number.")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: worker processes on this machine; ray: a Ray Data actor pool on a Ray cluster (the ray "
                   "extra). Both write the same lines.")
@click.option("--address", help="With --engine ray: the Ray cluster to use ('auto', HOST:PORT or ray://HOST:PORT; "
                                "default: a local Ray instance started for the run).")
@click.option("--resume", is_flag=True,
              help="Continue an interrupted run: keep the finished lines in --jsonl (refused when they were written "
                   "under another policy, detector or version; a file changed since its line is verified again).")
@options.force("Replace an existing --jsonl instead of refusing.")
@click.option("--no-audit", is_flag=True, help="Do not append to the audit log (the policy's audit.record).")
@options.json_output("Print a JSON summary at the end instead of text.")
@pass_env
def verify(env: Env, paths, policy_path, jsonl_path, report_path, workers, engine, address, resume, force,
           trust_paths, detector_path, no_ledger, resolvers, no_audit, text_model, as_json) -> None:
    """Verify every file under PATHS (folders are walked) under a policy: verdict, desk action and evidence per
    file, one JSON line each; unreadable files (no permission, FIFOs, broken or looping links) are listed as
    errors with the policy's error action, and names that are not UTF-8 are shown with their bytes escaped. Each
    file is read once: the verdict is about the bytes of its sha256. Only one run at a time writes a --jsonl (a lock
    file beside it, NAME.lock).

    With --engine ray the files are read and checked by a Ray Data actor pool (each actor loads the models once) on
    the cluster at --address, or on a local Ray instance; every node must see the files at the same paths. The
    lines are byte-identical to the local engine's, and the summary names the cluster and each actor's memory.

    Every verification is appended to the audit log ($SYNTHGUARD_HOME/audit.sqlite) unless the policy or
    --no-audit says otherwise; record a person's decision with `synthguard audit review`. Exit status 0 when every
    file was verified, 2 when any was an error (still listed).

    \b
    Examples:
      synthguard verify inbox/ --policy policies/newsroom-default.yaml --jsonl out.jsonl --report out.html
      synthguard verify inbox/ --jsonl out.jsonl --resume --workers 2
      synthguard verify a.jpg b.png --policy policies/newsroom-strict.yaml
      synthguard verify /shared/inbox --engine ray --address 10.0.0.5:6379 --jsonl out.jsonl
    """
    from tqdm import tqdm  # noqa: PLC0415

    from synthguard.core.fileio import check_output_path  # noqa: PLC0415
    from synthguard.desk.batch import VerifySettings, write_batch_report  # noqa: PLC0415
    from synthguard.desk.batch import verify as run_verify  # noqa: PLC0415
    from synthguard.policy import load_policy  # noqa: PLC0415

    if address is not None and engine != "ray":
        raise click.UsageError("--address needs --engine ray")
    if engine == "local" and workers is not None and workers > 64:
        raise click.UsageError("--workers: at most 64 worker processes with the local engine")
    policy = load_policy(policy_path)
    for path in (jsonl_path, report_path):
        if path is not None:
            check_output_path(path, overwrite=True)
    settings = VerifySettings(policy=policy, home=env.home.root, trust_extra=tuple(trust_paths),
                              detector=detector_path, use_ledger=not no_ledger, text_model=text_model,
                              resolvers=tuple(resolvers))
    with tqdm(desc="verify", unit="file", file=sys.stderr, disable=None) as bar, results_only_on_stdout(engine):
        result = run_verify(paths, settings, jsonl=jsonl_path, workers=workers, resume=resume, overwrite=force,
                            audit=False if no_audit else None, progress=_progress(bar), engine=engine,
                            address=address)
    if jsonl_path is None:
        for line in result.lines[result.resumed:]:
            click.echo(line.to_json())
    if report_path is not None:
        with tqdm(desc="report", unit="file", file=sys.stderr, disable=None) as bar:
            write_batch_report(report_path, result.lines, policy, progress=_progress(bar), notes=result.resources())
    if as_json:
        click.echo(json.dumps(result.summary(policy, jsonl_path, report_path)), err=jsonl_path is None)
    else:
        actions = ", ".join(f"{n} {a}" for a, n in sorted(result.counts.items())) or "nothing"
        click.echo(f"verified {len(result.lines)} file(s) under policy {policy.name!r}: {actions}; "
                   f"{result.errors} error(s)"
                   + (f"; {result.resumed} from the earlier run" if result.resumed else "")
                   + (f"; lines in {jsonl_path}" if jsonl_path else "")
                   + (f"; report in {report_path}" if report_path else ""), err=True)
        for note in result.resources():
            click.echo(note, err=True)
    if result.errors:
        sys.exit(InputError.exit_code)


def _progress(bar):
    """A ``progress(done, total)`` callback that moves a tqdm bar."""
    def update(done: int, total: int) -> None:
        bar.total, bar.n = total, done
        bar.refresh()
    return update


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind (loopback by default: only this machine can reach the desk).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@options.policy("Policy YAML (default: the built-in default policy).")
@click.option("--max-upload-mb", default=50, show_default=True, type=click.IntRange(1, 2048),
              help="Uploads larger than this are refused.")
@click.option("--storage", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for uploaded files (default: $SYNTHGUARD_HOME/desk-uploads).")
@click.option("--allow-host", "allow_hosts", multiple=True,
              help="Another host name the desk answers to (repeatable), e.g. the machine's name when bound to a "
                   "network address; requests for any other Host are refused.")
@click.option("--header-timeout", default=10.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Seconds a connection has to send its request headers; a slower one is closed (slowloris).")
@click.option("--body-timeout", default=30.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Seconds an upload may go without sending a byte before it is cut off (a slow upload that keeps "
                   "moving is not).")
@click.option("--max-connections", default=64, show_default=True, type=click.IntRange(1, 10_000),
              help="Open connections at most; past it a new one closes the connection that has waited longest for "
                   "its headers, or is answered 503 (busy) when all are mid-request.")
@options.resolver()
@pass_env
def serve(env: Env, host: str, port: int, policy_path, max_upload_mb: int, storage, allow_hosts,
          header_timeout: float, body_timeout: float, max_connections: int, resolvers) -> None:
    """Run the local web verification desk: drop a file, see its verdict, desk action and evidence (the same
    pictures as the report), and record a human review in the audit log. Connections that do not send their
    headers within --header-timeout, or stall an upload for --body-timeout, are closed.

    \b
    Examples:
      synthguard serve
      synthguard serve --policy policies/newsroom-strict.yaml --port 8080
      synthguard serve --header-timeout 5 --max-connections 32
    """
    try:
        from synthguard.desk.http import ConnectionLimits, serve_hardened  # noqa: PLC0415 (uvicorn)
        from synthguard.desk.web import create_app  # noqa: PLC0415 (FastAPI)
    except ImportError as exc:
        raise missing_extra(exc.name or "fastapi", "desk", "the web desk") from None
    from synthguard.desk.batch import VerifySettings  # noqa: PLC0415
    from synthguard.policy import load_policy  # noqa: PLC0415

    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"warning: binding to {host}: other machines on that network can reach the desk and its "
                   "uploads", err=True)
    settings = VerifySettings(policy=load_policy(policy_path), home=env.home.root, resolvers=tuple(resolvers))
    app = create_app(settings, storage=storage, max_upload=max_upload_mb * 1024 * 1024,
                     hosts=(host, *allow_hosts))
    click.echo(f"SynthGuard desk on http://{host}:{port}/ (policy {settings.policy.name}); Ctrl-C stops it", err=True)
    limits = ConnectionLimits(header_timeout=header_timeout, body_timeout=body_timeout,
                              max_connections=max_connections)
    serve_hardened(app, host, port, limits=limits)
