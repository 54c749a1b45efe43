"""``synthguard watermark``: embed or detect the invisible image watermark alone."""

from __future__ import annotations

from pathlib import Path

import click

from synthguard.cli import options
from synthguard.cli.render import per_file, print_json
from synthguard.errors import InputError


@click.group()
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
@options.force()
@options.json_output("Print the result as JSON.")
def watermark_embed(file: Path, output: Path, payload: str | None, ai: bool, force: bool, as_json: bool) -> None:
    """Write a copy of FILE carrying the invisible watermark.

    Use `synthguard sign` to watermark *and* sign with the payload bound to the manifest; this command marks only.

    \b
    Examples:
      synthguard watermark embed render.png -o marked.png
      synthguard watermark embed render.png -o marked.jpg --payload 2a0000c0ffee
    """
    from synthguard.stamp import mark_file  # noqa: PLC0415

    data = None
    if payload is not None:
        try:
            data = bytes.fromhex(payload)
        except ValueError:
            raise InputError(f"--payload {payload!r} is not hex") from None
    result = mark_file(file, output, payload=data, ai_generated=ai, overwrite=force)
    if as_json:
        print_json(result.to_dict())
    else:
        click.echo(f"marked {output}: payload {result.payload.hex()}, {result.algorithm}")


@watermark.command("detect")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@options.json_output("One JSON object per input, one per line.")
def watermark_detect(files: tuple[Path, ...], as_json: bool) -> None:
    """Look for the watermark in FILES and decode its payload, with the chance it is a false alarm (p-value).

    \b
    Examples:
      synthguard watermark detect marked.png
      synthguard watermark detect *.jpg --json
    """
    from synthguard.detect.image import score_watermark_file  # noqa: PLC0415
    from synthguard.watermark import default_image_watermarker  # noqa: PLC0415

    watermarker = default_image_watermarker()
    per_file(files, as_json, lambda path: score_watermark_file(path, watermarker),
             lambda path, signal: {"file": str(path), **signal.to_dict()},
             lambda path, signal: f"{path}: " + "; ".join(signal.describe()))
