"""``synthguard audit``: editorial reviews and the audit log."""

from __future__ import annotations

import json
from pathlib import Path

import click

from synthguard.cli import options
from synthguard.cli.context import Env, pass_env
from synthguard.errors import InputError


@click.group()
def audit() -> None:
    """The audit log: every verification, and the reviews editors record.

    \b
    Examples:
      synthguard audit show --last 20
      synthguard audit verify
      synthguard audit review photo.jpg --decision publish --editor "A. Editor" --note "checked with the agency"
    """


@audit.command("review")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--decision", required=True, type=click.Choice(["publish", "label-ai", "human-review", "reject"]),
              help="The desk action the editor decided.")
@click.option("--editor", required=True, help="Name of the person taking editorial responsibility.")
@click.option("--note", default="", help="Why (free text).")
@options.policy("The policy the review was made under.")
@pass_env
def audit_review(env: Env, file: Path, decision: str, editor: str, note: str, policy_path) -> None:
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
    with AuditLog.from_home(env.home) as log:
        entry = log.record_review(file=str(file), file_sha256=file_sha256(file), decision=decision, editor=editor,
                                  note=note, policy=loaded.name, policy_sha256=loaded.sha256)
    click.echo(f"recorded review #{entry}: {decision} by {editor.strip()} for {file}")


@audit.command("show")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--last", type=click.IntRange(1), help="Only the last N entries.")
@options.json_output("One JSON object per entry.")
@pass_env
def audit_show(env: Env, file: Path | None, last: int | None, as_json: bool) -> None:
    """Show audit entries, oldest first: all, or those of FILE (matched by its SHA-256, so a renamed copy counts).

    \b
    Example:
      synthguard audit show photo.jpg
    """
    from synthguard.core.media import file_sha256  # noqa: PLC0415
    from synthguard.desk.audit import AuditLog  # noqa: PLC0415

    location = _existing(env)
    digest = None
    if file is not None:
        if not file.is_file():
            raise InputError(f"{file}: no such file")
        digest = file_sha256(file)
    with AuditLog(location) as log:
        entries = log.entries(digest, last)
    click.echo(f"audit log: {location.masked()} ({len(entries)} entries shown)", err=True)
    for e in entries:
        if as_json:
            click.echo(json.dumps(e.to_dict()))
        elif e.kind == "review":
            click.echo(f"#{e.id} {e.time} review  {e.file}: {e.action} by {e.editor}" + (f" ({e.note})" if e.note
                                                                                           else ""))
        else:
            click.echo(f"#{e.id} {e.time} verify  {e.file}: {e.verdict or 'error'} -> {e.action} (policy "
                       f"{e.policy} {str(e.policy_sha256)[:12]}, synthguard {e.tool_version})")


@audit.command("verify")
@options.json_output("Print the result as one JSON object.")
@pass_env
def audit_verify(env: Env, as_json: bool) -> None:
    """Check the audit log's hash chain: exit 0 when every entry is as written, 2 naming the first entry that was
    edited, follows a deleted entry, or was inserted out of order.

    \b
    Example:
      synthguard audit verify
    """
    from synthguard.desk.audit import AuditLog  # noqa: PLC0415

    location = _existing(env)
    with AuditLog(location) as log:
        chain = log.verify()
    if as_json:
        click.echo(json.dumps(chain.to_dict()))
    else:
        for line in chain.describe()[1:]:
            click.echo(f"note: {line}", err=True)
    if not chain.intact:
        raise InputError(f"the audit log {location.masked()} is {chain.describe()[0]}")
    if not as_json:
        click.echo(f"audit log: {location.masked()}", err=True)
        click.echo(chain.describe()[0])


def _existing(env: Env):
    """Where the audit log of the home is (``SYNTHGUARD_DATABASE_URL`` or the home's file); an InputError when
    there is none yet."""
    from synthguard.desk.audit import AuditLog  # noqa: PLC0415

    location = AuditLog.location_for(env.home)
    if not location.exists():
        raise InputError(f"no audit log yet ({location.masked()}); `synthguard verify` starts it")
    return location
