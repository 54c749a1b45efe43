"""Options that several commands share, written once as decorators (same flag, same meaning everywhere)."""

from __future__ import annotations

from pathlib import Path

import click


def json_output(help: str = "Print JSON."):
    return click.option("--json", "as_json", is_flag=True, help=help)


def force(help: str = "Replace OUTPUT if it exists."):
    return click.option("--force", is_flag=True, help=help)


def threads(default=None, help: str = "torch CPU threads."):
    extra = {"default": default, "show_default": True} if isinstance(default, int) else {}
    return click.option("--threads", type=click.IntRange(1), help=help, **extra)


def policy(help: str = "Policy YAML (default: the built-in default policy; see policies/)."):
    return click.option("--policy", "policy_path", type=click.Path(dir_okay=False, path_type=Path), help=help)


def detector(help: str = "A detector folder from `synthguard train detector` instead of the built-in one."):
    return click.option("--detector", "detector_path", type=click.Path(file_okay=False, path_type=Path), help=help)


def resolver():
    return click.option("--resolver", "resolvers", multiple=True, metavar="URL",
                        help="A C2PA Soft Binding Resolution API (e.g. another organisation's `synthguard ledger "
                             "serve`) asked for the manifest of a watermarked file that carries none, after the "
                             "policy's `resolvers:` (repeatable). What it returns is validated here.")


def verification(text_model_help: str):
    """The options that say what a verification trusts and runs: ``detect`` and ``verify`` share them."""
    def apply(func):
        for option in reversed((
            click.option("--trust", "trust_paths", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
                         help="Extra trust anchor PEM for this run (repeatable)."),
            detector(),
            click.option("--no-ledger", is_flag=True, help="Do not look stripped copies up in the local ledger."),
            resolver(),
            click.option("--text-model", default="builtin", show_default=True, help=text_model_help),
        )):
            func = option(func)
        return func
    return apply
