"""The ``synthguard`` command line: thin click commands over the library.

Each command lives in its own module, imported only when it runs (or when ``--help`` lists it), so the CLI starts
without importing torch. Every command body builds a request, makes one library call and renders the result; errors
are turned into messages and exit codes in one place, ``SynthGuardCLI.invoke``.

Exit codes: 0 done; 1 internal error; 2 bad input (missing, empty, corrupt, unsupported, refused);
3 signing identity or trust anchor problem; 4 C2PA signing/reading failure; 5 watermark; 6 ledger; 130 interrupted.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from synthguard import __version__
from synthguard.cli.context import Env
from synthguard.errors import Hint, SynthGuardError

EXIT_INTERNAL = 1
EXIT_INTERRUPTED = 130

# command name -> "module:attribute" below synthguard.cli
COMMANDS = {
    "audit": "audit:audit",
    "augment": "augment:augment",
    "bench": "bench:bench",
    "data": "data:data",
    "demo": "demo:demo",
    "detect": "detect:detect",
    "eval": "eval:eval_group",
    "generate": "generate:generate",
    "keys": "keys:keys",
    "ledger": "ledger:ledger",
    "policy": "policy:policy",
    "serve": "verify:serve",
    "sign": "sign:sign",
    "train": "train:train",
    "verify": "verify:verify",
    "watermark": "watermark:watermark",
}

# How the CLI words each library hint (the library names concepts, not flags).
HINTS = {
    Hint.OVERWRITE: "use --force to replace it",
    Hint.RESUME_OR_OVERWRITE: "--resume to continue that run, or --force to start over",
    Hint.NO_WATERMARK: "use --no-watermark to sign without one",
    Hint.NEEDS_MODEL: "give --model",
    Hint.NEEDS_VAE: "use --backend vae",
    Hint.NEEDS_DATA: "give --data PATH, or set SYNTHGUARD_DATA to the dataset cache",
    Hint.NEEDS_IDENTITY: "run: synthguard keys init",
}


def error_message(exc: SynthGuardError) -> str:
    """The library's message, with the CLI's words for its hint."""
    words = HINTS.get(exc.hint)
    return f"{exc} ({words})" if words else str(exc)


def fail(message: str, code: int):
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


class SynthGuardCLI(click.Group):
    """A group whose commands are imported on demand, with the one error boundary of the CLI."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(f"synthguard.cli.{module}"), attr)

    def invoke(self, ctx: click.Context):
        """Library errors become one-line messages with their exit codes; never a traceback."""
        try:
            return super().invoke(ctx)
        except SynthGuardError as exc:
            fail(error_message(exc), exc.exit_code)
        except KeyboardInterrupt:
            fail("interrupted", EXIT_INTERRUPTED)
        except BrokenPipeError:
            # The reader went away (`synthguard audit show | head -1`): stop writing, quietly, as `cat` would.
            # stdout now points at /dev/null so the interpreter's final flush of what is buffered cannot fail too.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(0)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:  # noqa: BLE001 (the last line of defence: report, don't dump)
            if os.environ.get("SYNTHGUARD_DEBUG"):
                raise
            fail(f"internal error: {type(exc).__name__}: {exc} (rerun with SYNTHGUARD_DEBUG=1 for details, "
                 "and please report it)", EXIT_INTERNAL)


@click.group(cls=SynthGuardCLI, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="synthguard")
@click.pass_context
def main(ctx: click.Context) -> None:
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
    ctx.ensure_object(Env)
