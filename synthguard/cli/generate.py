"""``synthguard generate``: make images or texts, each watermarked and signed."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import click
from click.core import ParameterSource

from synthguard.cli import options
from synthguard.cli.context import Env, pass_env, results_only_on_stdout
from synthguard.cli.render import print_json
from synthguard.errors import InputError


@click.command()
@click.option("--backend", type=click.Choice(["gan", "vae", "diffusion", "text", "text-vae", "audio"]), default="gan",
              show_default=True,
              help="Model family. gan, vae, text, text-vae (a sentence VAE) and audio (chorale-style music) have "
                   "built-in weights; diffusion needs --model.")
@click.option("-n", "n", type=click.IntRange(1), help="Images to make (default 8); texts: samples per prompt "
                                                     "(default 1).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0), help="Seed of image 0 (image i: seed+i).")
@click.option("--label", type=click.IntRange(0), metavar="K",
              help="gan, vae: make digit K (0-9) with a class-conditional model: the built-in gan-conditional / "
                   "vae-conditional weights, or a --model trained with `synthguard train gan --conditional`.")
@click.option("--model", help="A folder written by save_pretrained (or a diffusers pipeline folder / hub id); "
                              "text: a causal LM folder, a .gguf file or a hub id.")
@click.option("-o", "--output-dir", default="synthguard-out", show_default=True, type=click.Path(path_type=Path),
              help="Folder for the outputs; text: a .txt file for a single text.")
@click.option("--format", "fmt", type=click.Choice(["png", "jpeg", "webp", "wav", "flac", "mp3", "opus", "m4a"]),
              help="Images: png (default), jpeg, webp; audio: wav (default), flac, mp3, opus, m4a.")
@click.option("--seconds", default=8.0, show_default=True, type=click.FloatRange(0, min_open=True),
              help="Audio: length of each clip (at least the audio watermark's minimum).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1))
@click.option("--size", type=click.IntRange(1, 8192),
              help="Output side in pixels, resized from the model's native size (default: 256 for gan and vae; "
                   "diffusion keeps the pipeline's size); see --native.")
@click.option("--native", is_flag=True, help="Keep the model's native size (28 px for the MNIST models: too small "
                                             "for the watermark, so use with --no-watermark).")
@click.option("--threads", type=click.IntRange(1),
              help="torch CPU threads (default: torch's choice; 1 for --backend audio on a CPU).")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1),
              help="Threads that embed watermarks in parallel (signing stays in order on one); with --engine ray: "
                   "the number of actors (default: one per CPU of the cluster).")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="Where images are made: this process, or a Ray cluster's actors (the ray extra), each sampling, "
                   "stamping and writing its share. On Ray the output folder must be on a filesystem every node "
                   "mounts at the same path, and a cluster past this machine needs a PostgreSQL ledger "
                   "(SYNTHGUARD_DATABASE_URL).")
@click.option("--address", help="With --engine ray: the cluster to run on (auto, host:port or ray://host:port; "
                                "default: start a local Ray instance for the run).")
@click.option("--interpolate", nargs=2, metavar="A B",
              help="VAE: morph between two seeds or two image files instead of sampling (see --steps); text-vae: "
                   "two sentences.")
@click.option("--steps", default=8, show_default=True, type=click.IntRange(2, 1000), help="Frames of --interpolate.")
@click.option("--decoding", type=click.Choice(["sample", "greedy"]),
              help="text-vae: draw each token (watermarked) or take the likeliest (unmarked by construction); "
                   "default: sample for prior draws, greedy for --interpolate.")
@click.option("--inference-steps", type=click.IntRange(1), help="Diffusion: denoising steps (default: the "
                                                                 "pipeline's).")
@click.option("--prompt", help="Diffusion: the prompt, for text-to-image pipelines; text: the text to continue; "
                               "audio: a key (\"D minor\"), a soprano melody (\"C4 D4 E4:2\") or both "
                               "(\"G major: G4 A4 B4\").")
@click.option("--negative-prompt", help="Diffusion: what the image should not show (text-to-image pipelines).")
@click.option("--guidance-scale", type=click.FloatRange(0, 100), help="Diffusion: classifier-free guidance scale "
                                                                      "(default: the pipeline's).")
@click.option("--width", type=click.IntRange(8, 8192), help="Diffusion: image width, a multiple of 8 (default: the "
                                                            "pipeline's).")
@click.option("--height", type=click.IntRange(8, 8192), help="Diffusion: image height, a multiple of 8 (default: "
                                                             "the pipeline's).")
@click.option("--scheduler", help="Diffusion: a diffusers scheduler class compatible with the pipeline's, e.g. "
                                  "EulerDiscreteScheduler (default: the pipeline's).")
@click.option("--record-prompt", is_flag=True, help="Diffusion: record the prompts in the manifest in clear "
                                                    "(default: their sha256 only).")
@click.option("--prompts-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Text: one prompt per line (a batch).")
@click.option("--max-new-tokens", default=100, show_default=True, type=click.IntRange(1, 4096), help="Text.")
@click.option("--temperature", default=1.0, show_default=True, type=click.FloatRange(0, min_open=True), help="Text.")
@click.option("--top-p", default=0.95, show_default=True, type=click.FloatRange(0, 1, min_open=True), help="Text.")
@click.option("--top-k", default=0, show_default=True, type=click.IntRange(0), help="Text (0: off).")
@click.option("--text-watermark", type=click.Choice(["synthid", "kgw"]), default="synthid", show_default=True,
              help="Text: the watermark scheme, keyed by your identity.")
@click.option("--chat/--no-chat", default=None,
              help="Text: each prompt is a user's message through the model's chat template, and the file holds the "
                   "answer (default: on when the model has a chat template, e.g. --model smollm2).")
@click.option("--system", help="Text, with --chat: the system message (default: the template's own).")
@click.option("--watermark/--no-watermark", default=True, show_default=True,
              help="Embed the invisible watermark (the manifest is signed and declares AI either way).")
@options.force("Replace existing output files.")
@options.json_output("Print a JSON report (files, timings per stage).")
@pass_env
def generate(env: Env, backend, n, seed, model, output_dir, fmt, device, batch_size, size, native, threads, workers,
             engine, address, interpolate, steps, inference_steps, prompt, negative_prompt, guidance_scale, width,
             height, scheduler, record_prompt, prompts_file, max_new_tokens, temperature, top_p, top_k, text_watermark,
             watermark, force, as_json, chat, system, decoding, label, seconds) -> None:
    """Generate images or text; every output is watermarked, signed as trainedAlgorithmicMedia and recorded in the
    ledger (texts: a signed .c2pa sidecar beside each file).

    \b
    Examples:
      synthguard generate -n 16 --seed 42 -o out/            # built-in MNIST GAN, 256 px PNG
      synthguard generate --backend vae --interpolate 3 17 --steps 8 -o morph/
      synthguard generate --label 3 -n 16 -o threes/   # built-in class-conditional GAN: sixteen 3s
      synthguard generate --backend diffusion --model ./my-ddpm-pipeline -n 4 --device cuda
      synthguard generate --backend diffusion --model ./sd-pipeline --prompt "a red fox" --width 768 --height 512
      synthguard generate --model ./my-gan --format jpeg --batch-size 256
      SYNTHGUARD_DATABASE_URL=postgresql://sg@db/ledger \\
          synthguard generate -n 2000 --engine ray --address auto -o /shared/out/   # on a Ray cluster
      synthguard generate --backend text --prompt "ROMEO:" -o romeo.txt   # built-in Shakespeare LM
      synthguard generate --backend text --model ./SmolLM2-135M-Instruct.Q4_1.gguf --prompts-file prompts.txt \\
          --max-new-tokens 200 -o texts/
      synthguard generate --backend text --model smollm2 --prompt "Explain what a watermark is." -o answer.txt
      synthguard generate --backend audio -n 4 --seconds 10 --prompt "D minor" --format mp3 -o clips/
    """
    if backend == "audio":
        from synthguard.cli.generate_audio import generate_audio_clips  # noqa: PLC0415

        generate_audio_clips(env, n=n, seed=seed, model=model, output_dir=output_dir, fmt=fmt, device=device,
                             threads=threads, prompt=prompt, temperature=temperature, top_k=top_k, seconds=seconds,
                             force=force, as_json=as_json, watermark=watermark)
        return
    if fmt in ("wav", "flac", "mp3", "opus", "m4a"):
        raise InputError(f"--format {fmt} is an audio format: it applies to --backend audio only")
    if click.get_current_context().get_parameter_source("seconds") is ParameterSource.COMMANDLINE:
        raise InputError("--seconds applies to --backend audio only")
    fmt = fmt or "png"
    if address is not None and engine != "ray":
        raise InputError("--address applies to --engine ray only")
    if engine == "ray" and (backend == "text" or interpolate):
        raise InputError("--engine ray makes sampled images: not texts, not --interpolate")
    if label is not None and (backend not in ("gan", "vae") or interpolate):
        raise InputError("--label applies to sampling with --backend gan or vae (class-conditional models), not "
                         + ("--interpolate" if interpolate else f"--backend {backend}"))
    if backend == "text-vae":
        _generate_text_vae(env, engine=engine, given={"--prompt": prompt, "--prompts-file": prompts_file,
                                                      "--chat": chat, "--system": system}, interpolate=interpolate,
                           n=n, steps=steps, seed=seed, model=model, output_dir=output_dir, device=device,
                           threads=threads, decoding=decoding, temperature=temperature, top_p=top_p, top_k=top_k,
                           max_new_tokens=max_new_tokens, scheme=text_watermark, watermark=watermark, force=force,
                           as_json=as_json)
        return
    if decoding is not None:
        raise InputError("--decoding applies to --backend text-vae only")
    if backend == "text":
        from synthguard.generate.text import TextRequest, read_prompts  # noqa: PLC0415

        if prompt is not None and prompts_file is not None:
            raise InputError("give --prompt or --prompts-file, not both")
        prompts = read_prompts(prompts_file) if prompts_file is not None else (prompt or "",)
        request = TextRequest(output=output_dir, prompts=prompts, n=n or 1, model=model, seed=seed, device=device,
                              batch_size=min(batch_size, 64), threads=threads, max_new_tokens=max_new_tokens,
                              temperature=temperature, top_p=top_p, top_k=top_k, scheme=text_watermark,
                              watermark=watermark, overwrite=force, chat=chat, system=system)
        _generate_texts(env, request, as_json)
        return
    if prompts_file:
        raise InputError("--prompts-file applies to --backend text only")
    if chat is not None or system is not None:
        raise InputError(f"{'--system' if system is not None else '--chat'} applies to --backend text only")
    diffusion_only = {"--inference-steps": inference_steps, "--prompt": prompt, "--negative-prompt": negative_prompt,
                      "--guidance-scale": guidance_scale, "--width": width, "--height": height,
                      "--scheduler": scheduler, "--record-prompt": record_prompt or None}
    given = [flag for flag, value in diffusion_only.items() if value is not None and value != ""]
    if given and (backend != "diffusion" or interpolate):
        raise InputError(f"{' and '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to --backend diffusion only")
    size = None if native else (size if size is not None else (None if backend == "diffusion" else 256))
    if interpolate:
        from synthguard.generate.runs import InterpolationRequest  # noqa: PLC0415

        start, end = (int(v) if v.isdigit() else Path(v) for v in interpolate)
        request = InterpolationRequest(output_dir=output_dir, start=start, end=end, steps=steps, backend=backend,
                                       model=model, fmt=fmt, size=size, threads=threads, workers=workers,
                                       overwrite=force, watermark=watermark)
    else:
        from synthguard.generate.runs import ImageRequest  # noqa: PLC0415

        request = ImageRequest(output_dir=output_dir, backend=backend, model=model, n=8 if n is None else n,
                               seed=seed, fmt=fmt, device=device, batch_size=batch_size, size=size, threads=threads,
                               workers=workers, inference_steps=inference_steps, prompt=prompt,
                               negative_prompt=negative_prompt, guidance_scale=guidance_scale, width=width,
                               height=height, scheduler=scheduler, record_prompt=record_prompt, overwrite=force,
                               watermark=watermark, label=label)
    ray = None
    if engine == "ray":
        explicit = click.get_current_context().get_parameter_source("workers") is not ParameterSource.DEFAULT
        ray = {"address": address, "actors": workers if explicit else None}
    _generate_images(env, request, as_json, ray)


def _generate_images(env: Env, request, as_json: bool, ray: dict | None = None) -> None:
    from tqdm import tqdm  # noqa: PLC0415

    from synthguard.generate.runs import ImageRequest, generate_images, interpolate_images  # noqa: PLC0415

    if not request.watermark:
        click.echo("note: --no-watermark: images carry no invisible watermark; their signed manifests still declare "
                   "them AI-generated (trainedAlgorithmicMedia)", err=True)
    if ray is not None:
        from synthguard.generate.ray_engine import generate_images_on_ray  # noqa: PLC0415

        flow, count = functools.partial(generate_images_on_ray, **ray), request.n
    elif isinstance(request, ImageRequest):
        flow, count = generate_images, request.n
    else:
        flow, count = interpolate_images, request.steps
    with tqdm(total=count, desc="generate+stamp", unit="img", file=sys.stderr,
              disable=None if count > 4 else True) as bar, results_only_on_stdout("ray" if ray else "local"):
        report = flow(request, env.home, identity=env.identity, progress=bar.update)
    if as_json:
        print_json(report.to_dict())
        return
    shares, count, folder = report.stage_share, len(report.files), request.output_dir
    click.echo(f"wrote {count} image{'s' if count != 1 else ''} to {folder}/ with {report.model} {report.version} "
               f"({report.device}): {report.images_per_second:.1f} images/s; share of the work: model "
               f"{100 * shares['model']:.0f}%, watermark {100 * shares['watermark']:.0f}%, "
               f"sign {100 * shares['sign']:.0f}%")
    if report.cluster is not None:
        click.echo(f"on Ray: {'; '.join(report.cluster.describe())}")
    click.echo("each is signed (trainedAlgorithmicMedia, model assertion)"
               + (" and watermarked, bound by c2pa.soft-binding" if request.watermark else "")
               + f"; verify with: synthguard detect {folder}/*")


def _generate_texts(env: Env, request, as_json: bool) -> None:
    from tqdm import tqdm  # noqa: PLC0415

    from synthguard.generate.text import generate_texts  # noqa: PLC0415

    if not request.watermark:
        click.echo("note: --no-watermark: the texts carry no text watermark; their signed sidecars still declare "
                   "them AI-generated (trainedAlgorithmicMedia)", err=True)
    streaming = request.count == 1 and not as_json and sys.stdout.isatty()
    with tqdm(total=request.count, desc="generate", unit="text", file=sys.stderr,
              disable=None if request.count > 1 else True) as bar:
        report = generate_texts(request, env.home, identity=env.identity, progress=bar.update,
                                stream=(lambda text, end: click.echo(text, nl=end)) if streaming else None)
    if as_json:
        print_json(report.to_dict())
        return
    for o in report.outputs:
        if o.warning:
            click.echo(f"warning: {o.file}: {o.warning}", err=True)
        if o.empty_seeds:
            click.echo(f"note: {o.file}: seed {', '.join(map(str, o.empty_seeds))} gave no text; made with seed "
                       f"{o.seed}", err=True)
    for failure in report.failed:
        click.echo(f"warning: {failure.describe()[0]}", err=True)
    if not streaming and len(report.outputs) == 1:
        click.echo(report.outputs[0].file.read_text(encoding="utf-8"))
    count = len(report.outputs)
    where = report.outputs[0].file if count == 1 else f"{request.output}/"
    click.echo(f"wrote {count} text{'s' if count != 1 else ''} to {where} with {report.model} {report.version} "
               f"({report.device}, {report.tokens_per_second:.1f} tokens/s)", err=True)
    watermark = report.outputs[0].watermark
    click.echo("each is signed (.c2pa sidecar: trainedAlgorithmicMedia, model assertion)"
               + (f" and watermarked ({watermark['algorithm']}, key {watermark['key_id']})" if watermark else "")
               + f"; verify with: synthguard detect {where}", err=True)


# --- text-vae (the sentence VAE) ---
def _generate_text_vae(env: Env, *, engine, given, interpolate, n, steps, seed, model, output_dir, device, threads,
                       decoding, temperature, top_p, top_k, max_new_tokens, scheme, watermark, force, as_json) -> None:
    from synthguard.generate.text_vae import TextVAERequest, generate_text_vae  # noqa: PLC0415

    if engine == "ray":
        raise InputError("--engine ray makes sampled images: not texts")
    wrong = [flag for flag, value in given.items() if value is not None]
    if wrong:
        raise InputError(f"{' and '.join(wrong)} appl{'ies' if len(wrong) == 1 else 'y'} to --backend text only")
    if interpolate and n is not None:
        raise InputError("-n makes prior samples; --interpolate makes --steps texts: give one of them")
    explicit = click.get_current_context().get_parameter_source("max_new_tokens") is not ParameterSource.DEFAULT
    request = TextVAERequest(output=output_dir, n=n or 1, interpolate=tuple(interpolate) if interpolate else None,
                             steps=steps, model=model, seed=seed, decoding=decoding, temperature=temperature,
                             top_p=top_p, top_k=top_k, max_tokens=max_new_tokens if explicit else None,
                             scheme=scheme, watermark=watermark, device=device, threads=threads, overwrite=force)
    report = generate_text_vae(request, env.home, identity=env.identity)
    if as_json:
        print_json(report.to_dict())
        return
    for o in report.outputs:
        if o.warning:
            click.echo(f"warning: {o.file}: {o.warning}", err=True)
        click.echo(f"{o.file.name}: {o.file.read_text(encoding='utf-8')}")
    count = len(report.outputs)
    where = report.outputs[0].file if count == 1 else f"{request.output}/"
    click.echo(f"wrote {count} text{'s' if count != 1 else ''} to {where} with {report.model} {report.version} "
               f"({request.decoding.value} decoding)", err=True)
    mark = report.outputs[0].watermark
    click.echo("each is signed (.c2pa sidecar: trainedAlgorithmicMedia, model assertion)"
               + (f" and watermarked ({mark['algorithm']}, key {mark['key_id']})" if mark else
                  ": greedy decoding leaves it unmarked by construction" if request.decoding.value == "greedy"
                  else ", unmarked (--no-watermark)")
               + f"; verify with: synthguard detect {where}", err=True)
