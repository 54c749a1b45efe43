"""``synthguard demo``: the stamp-and-verify loop on content made on the spot."""

from __future__ import annotations

from pathlib import Path

import click

from synthguard.cli.context import Env, pass_env
from synthguard.cli.render import human_report


@click.command()
@click.option("-o", "--output-dir", default="synthguard-demo", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Folder for the demo files.")
@pass_env
def demo(env: Env, output_dir: Path) -> None:
    """Run the main flow on built-in content: render, sign, verify; then strip and tamper, and verify again.

    Needs no download, no GPU. Uses (and on first run creates) your identity in $SYNTHGUARD_HOME.

    \b
    Example:
      synthguard demo -o /tmp/sg-demo
    """
    from synthguard.demo import run_demo  # noqa: PLC0415

    home = env.home
    identity = env.identity()
    for title, inspection in run_demo(output_dir, home, identity):
        click.echo(f"== {title}")
        click.echo(human_report(inspection))
    click.echo(f"files are in {output_dir}/; inspect any of them with: synthguard detect FILE --json")
