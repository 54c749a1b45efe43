"""``synthguard sign``: watermark and sign a copy of a file."""

from __future__ import annotations

import json
from pathlib import Path

import click

from synthguard.cli import options
from synthguard.cli.context import Env, pass_env
from synthguard.cli.render import print_json
from synthguard.errors import InputError


def _parse_params(values: tuple[str, ...]) -> dict:
    params = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise InputError(f"--param {item!r}: expected KEY=VALUE")
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw
    return params


def _source_type_choice():
    from synthguard.provenance.manifest import DigitalSourceType  # noqa: PLC0415

    return click.Choice([m.code for m in DigitalSourceType], case_sensitive=False)


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path),
              help="Signed copy to write (text and other non-embeddable files also get OUTPUT.c2pa).")
@click.option("--title", help="Title in the manifest (default: the output file name).")
@click.option("--source-type", type=_source_type_choice(),
              help="IPTC digital source type to declare for the content (default: none is declared).")
@click.option("--ai", "declare_ai", is_flag=True,
              help="Declare the content AI-generated: --source-type trainedAlgorithmicMedia.")
@click.option("--model", "model_name", help="Name of the model that made the content.")
@click.option("--model-version", help="Version of that model.")
@click.option("--seed", type=int, help="Seed used to generate the content.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Generation parameter (repeatable).")
@click.option("--training-mining", type=click.Choice(["allowed", "notAllowed", "constrained"]),
              default="notAllowed", show_default=True, help="CAWG permission for AI training and data mining.")
@click.option("--thumbnail", is_flag=True, help="Embed a thumbnail in the manifest (~100 ms, ~180 KB).")
@click.option("--watermark/--no-watermark", default=True, show_default=True,
              help="Embed SynthGuard's invisible watermark (images and audio) before signing, bound to the manifest.")
@options.force("Replace OUTPUT if it exists (the input is never replaced).")
@options.json_output("Print the result as JSON.")
@pass_env
def sign(env: Env, file: Path, output: Path, title, source_type, declare_ai, model_name, model_version, seed,
         params, training_mining, thumbnail, watermark, force, as_json) -> None:
    """Write a copy of FILE carrying an invisible watermark and a signed C2PA manifest; record it in the ledger.

    The manifest declares only what you say: a digital source type with --source-type or --ai, none otherwise.
    Images and audio are watermarked first (the payload goes into the manifest as a c2pa.soft-binding, so a copy
    that loses its manifest can be traced back; its AI bit is set only when generative AI is declared); audio is
    decoded, marked and re-encoded in its own format (lossy formats at their bit rate: the notes say so); other
    media are signed only. If FILE already has a manifest, it is kept as the parent ingredient (opened + edited).

    \b
    Examples:
      synthguard sign render.png -o render-signed.png --ai --model my-gan --model-version 1.2 --seed 7
      synthguard sign photo.jpg -o out.jpg --source-type digitalCapture  # a capture, as claimed by your key
      synthguard sign article.md -o out/article.md        # declares nothing; writes out/article.md + .c2pa
      synthguard sign chart.png -o chart-signed.png --no-watermark    # declares nothing, no watermark
      synthguard sign voice.wav -o voice-signed.wav --ai --model my-tts  # audio: marked, manifest embedded
    """
    from synthguard.provenance.manifest import DigitalSourceType, ManifestSpec, ModelInfo, TrainingMining  # noqa: PLC0415
    from synthguard.stamp import stamp_copy  # noqa: PLC0415

    ai_type = DigitalSourceType.TRAINED_ALGORITHMIC_MEDIA

    if (seed is not None or params or model_version) and not model_name:
        raise InputError("--seed, --param and --model-version describe a model: give --model NAME too")
    if declare_ai and source_type and DigitalSourceType.parse(source_type) is not ai_type:
        raise InputError(f"--ai declares trainedAlgorithmicMedia, --source-type {source_type}: give one of them")
    declared = ai_type if declare_ai else (DigitalSourceType.parse(source_type) if source_type else None)
    model = ModelInfo(model_name, model_version, seed=seed, parameters=_parse_params(params)) if model_name else None
    spec = ManifestSpec(title=title or output.name, digital_source_type=declared, model=model,
                        training_mining=TrainingMining(training_mining))
    result = stamp_copy(file, output, spec, env.home, identity=env.identity, image_watermark=watermark,
                        thumbnail=thumbnail, overwrite=force)
    if as_json:
        print_json(result.to_dict())
        return
    signed = result.signed
    where = f" (manifest in {signed.sidecar})" if signed.sidecar else ""
    what = "no source type declared" if declared is None else declared.code
    click.echo(f"signed {signed.output}{where}: {what}, signer '{signed.signer}', "
               f"asset {signed.asset_id}" + (", parent manifest kept as ingredient" if signed.has_parent else ""))
    if result.payload is not None:
        click.echo(f"watermark: {result.algorithm}, payload {result.payload.hex()} (bound to the manifest)")
    else:
        click.echo(f"no watermark: {result.watermark_skipped}", err=True)
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
