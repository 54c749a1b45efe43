"""``synthguard policy``: check and explain a newsroom policy file."""

from __future__ import annotations

from pathlib import Path

import click

from synthguard.cli import options
from synthguard.cli.context import Env, pass_env
from synthguard.cli.render import print_json


@click.group()
def policy() -> None:
    """Check and explain policy files.

    \b
    Examples:
      synthguard policy check policies/newsroom-strict.yaml
      synthguard policy explain policies/newsroom-default.yaml
    """


@policy.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@options.json_output()
def policy_check(file: Path, as_json: bool) -> None:
    """Validate a policy file: unknown keys, bad values and missing anchor files are named.

    \b
    Example:
      synthguard policy check policies/newsroom-strict.yaml
    """
    from synthguard.policy import check_policy  # noqa: PLC0415

    loaded = check_policy(file)
    if as_json:
        print_json({"file": str(file), "valid": True, "name": loaded.name, "sha256": loaded.sha256})
    else:
        click.echo(f"{file}: valid policy {loaded.name!r} (sha256 {loaded.sha256})")


@policy.command("explain")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@pass_env
def policy_explain(env: Env, file: Path) -> None:
    """Print a policy in plain words, with the C2PA trust lists in force on this machine.

    \b
    Example:
      synthguard policy explain policies/platform-labeling.yaml
    """
    from synthguard.policy import load_policy  # noqa: PLC0415
    from synthguard.provenance.trustlist import TrustListKind, trust_list  # noqa: PLC0415

    click.echo(load_policy(file).explain(trust_list(env.home, TrustListKind.CLAIM_SIGNERS),
                                         trust_list(env.home, TrustListKind.TIME_STAMPS)))
