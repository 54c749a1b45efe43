"""The one context object of a CLI invocation: the SynthGuard home, the signing identity on first use, output."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from functools import cached_property

import click

from synthguard.core.home import Home


class Env:
    """Made once per invocation by the top-level group; commands receive it with ``@pass_env``."""

    @cached_property
    def home(self) -> Home:
        return Home.from_env()

    def identity(self):
        """The signing identity, created on first use, saying so plainly."""
        from synthguard.provenance.identity import IdentityStore  # noqa: PLC0415 (keep `--help` fast)

        identity, created = IdentityStore(self.home).ensure()
        if created:
            click.echo(
                f"note: created a new local signing identity '{identity.common_name}' in {self.home.keys_dir}.\n"
                "      It is self-issued and on no public trust list: its signatures read as trusted only where its "
                "root is trusted\n      (here by default; elsewhere after `synthguard keys export-trust`). "
                "Import a CA-issued identity with `synthguard keys import`.", err=True)
        return identity

    @staticmethod
    def print_json(data) -> None:
        click.echo(json.dumps(data, indent=None, sort_keys=False))


pass_env = click.make_pass_decorator(Env, ensure=True)


@contextlib.contextmanager
def results_only_on_stdout(engine: str) -> Iterator[None]:
    """With ``engine`` "ray": whatever is written to this process's standard output while the block runs (Ray
    prints its cluster's warnings there from its own threads) goes to standard error instead, so that standard
    output holds the command's results only (one JSON document with --json). Nothing changes for other engines."""
    if engine != "ray":
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
