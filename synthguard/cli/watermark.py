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
        print_json(result)
    else:
        click.echo(f"marked {output}: payload {data.hex()}, {watermarker.algorithm_id}")


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

    per_file(files, as_json, work, lambda path, signal: {"file": str(path), **signal.to_dict()}, as_text)
