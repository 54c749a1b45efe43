"""``synthguard generate --backend audio``: chorale-style music clips from the built-in (or a given) chorale
transformer, each watermarked, signed and recorded; the options are ``generate``'s, this module the audio branch."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from click.core import ParameterSource

from synthguard.cli.context import Env
from synthguard.cli.render import print_json
from synthguard.errors import InputError

IMAGE_FORMATS = ("png", "jpeg", "webp")
AUDIO_FORMATS = ("wav", "flac", "mp3", "opus", "m4a")
# generate's options that the audio backend uses; any other given explicitly is refused.
AUDIO_OPTIONS = frozenset({"backend", "n", "seed", "model", "output_dir", "fmt", "device", "threads", "prompt",
                           "temperature", "top_k", "seconds", "force", "as_json", "watermark"})


def refuse_foreign_options(ctx: click.Context) -> None:
    """An option of another backend given on the command line is an error, not silently ignored."""
    wrong = [f"--{name.replace('_', '-')}" for name in ctx.params
             if name not in AUDIO_OPTIONS and ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE]
    if wrong:
        raise InputError(f"{' and '.join(wrong)} do{'es' if len(wrong) == 1 else ''} not apply to --backend audio")


def generate_audio_clips(env: Env, *, n, seed, model, output_dir: Path, fmt, device, threads, prompt, temperature,
                         top_k, seconds, force, as_json, watermark) -> None:
    from tqdm import tqdm  # noqa: PLC0415

    from synthguard.generate.audio import AudioRequest, generate_audio  # noqa: PLC0415

    refuse_foreign_options(click.get_current_context())
    if not watermark:
        raise InputError("--no-watermark does not apply to --backend audio: generated audio is always watermarked")
    if fmt in IMAGE_FORMATS:
        raise InputError(f"--format {fmt} is an image format; audio is written as {', '.join(AUDIO_FORMATS)}")
    request = AudioRequest(output_dir=output_dir, n=n or 1, seed=seed, seconds=seconds, prompt=prompt,
                           fmt=fmt or "wav", model=model, temperature=temperature, top_k=top_k or None,
                           device=device, threads=threads, overwrite=force)
    with tqdm(total=request.n, desc="generate+stamp", unit="clip", file=sys.stderr,
              disable=None if request.n > 2 else True) as bar:
        report = generate_audio(request, env.home, identity=env.identity, progress=bar.update)
    if as_json:
        print_json(report.to_dict())
        return
    for line in report.describe()[1:]:
        click.echo(line)
    count = len(report.clips)
    click.echo(f"wrote {count} clip{'s' if count != 1 else ''} to {output_dir}/ with {report.model} "
               f"{report.version} in {report.wall_seconds:.1f} s (model {report.seconds['model']:.1f} s, render "
               f"{report.seconds['render']:.1f} s, stamp {report.seconds['stamp']:.1f} s)", err=True)
    click.echo("each is watermarked, signed (trainedAlgorithmicMedia, model assertion) and in the ledger; verify "
               f"with: synthguard detect {output_dir}/*", err=True)
