"""``synthguard train``: train the generators, the MNIST classifier, a detector and a text model.

Each command reads its options, makes one call to ``synthguard.training.runs`` (or ``training.text``) and says
where the model went; the flows, their checks and the ``training.json`` record are the library's.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from synthguard.cli import options


@click.group()
def train() -> None:
    """Train the models SynthGuard ships (the built-in weights were made with these commands).

    \b
    Examples:
      synthguard train gan --data mnist --epochs 25 -o my-gan/
      synthguard train vae --data ./digits/ --epochs 10 -o my-vae/
      synthguard train classifier --epochs 4 -o my-classifier/
    """


def _train_options(func):
    for option in reversed([
        click.option("--data", default="mnist", show_default=True,
                     help="'mnist' (the dataset cache, or $SYNTHGUARD_MNIST) or a folder of images."),
        click.option("--epochs", default=5, show_default=True, type=click.IntRange(1)),
        click.option("--batch-size", default=128, show_default=True, type=click.IntRange(1)),
        click.option("--seed", default=0, show_default=True, type=click.IntRange(0)),
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N."),
        options.threads(),
        click.option("--limit", type=click.IntRange(1), help="Train on the first N images only."),
        click.option("-o", "--output", required=True, type=click.Path(file_okay=False, path_type=Path),
                     help="Folder to save the model in (save_pretrained: config.json + safetensors)."),
        options.force("Write into an existing folder."),
    ]):
        func = option(func)
    return func


def _log(line: str) -> None:
    click.echo(line, err=True)


def _generator_options(func):
    for option in reversed([
        click.option("--conditional", is_flag=True,
                     help="Class-conditional on MNIST's digit labels (--data mnist only); generate a digit with "
                          "`synthguard generate --label K --model FOLDER`."),
        click.option("--width", type=click.IntRange(8), help="Network width (default: the class's, as shipped)."),
    ]):
        func = option(func)
    return func


def _architecture(width: int | None) -> dict | None:
    return {"width": width} if width is not None else None


def _generator_command(kind: str, data, epochs, batch_size, seed, conditional, width) -> str:
    return (f"synthguard train {kind} --data {data} --epochs {epochs} --batch-size {batch_size} --seed {seed}"
            + (" --conditional" if conditional else "") + (f" --width {width}" if width is not None else ""))


@train.command("gan")
@_train_options
@_generator_options
@click.option("--init", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Continue from a saved generator (its architecture; the discriminator starts fresh).")
def train_gan_cmd(data, epochs, batch_size, seed, device, threads, limit, output, force, conditional, width,
                  init) -> None:
    """Train a DCGAN (spectral-norm discriminator); prints losses and mode-collapse diagnostics per epoch, and a
    "warning:" line when the diagnostic shows mode collapse or divergence.

    \b
    Examples:
      synthguard train gan --data mnist --epochs 25 --device cuda -o my-gan/
      synthguard train gan --conditional --epochs 8 --width 32 -o my-cgan/   # projection-discriminator cGAN
    """
    from synthguard.training.runs import train_and_save_gan  # noqa: PLC0415 (keep `--help` free of torch)

    train_and_save_gan(data, output, model_config=_architecture(width), epochs=epochs, batch_size=batch_size,
                       seed=seed, device=device, num_threads=threads, limit=limit, overwrite=force, log=_log,
                       conditional=conditional, init=init,
                       command=_generator_command("gan", data, epochs, batch_size, seed, conditional, width)
                       + (f" --init {init}" if init is not None else ""))
    label = " --label K" if conditional else ""
    click.echo(f"saved the generator to {output}/ (use it with: synthguard generate --model {output}{label})")


@train.command("vae")
@_train_options
@_generator_options
def train_vae_cmd(data, epochs, batch_size, seed, device, threads, limit, output, force, conditional, width) -> None:
    """Train a convolutional VAE (with --conditional a CVAE); prints reconstruction and KL terms per epoch.

    \b
    Examples:
      synthguard train vae --data mnist --epochs 25 -o my-vae/
      synthguard train vae --conditional --epochs 10 -o my-cvae/
    """
    from synthguard.training.runs import train_and_save_vae  # noqa: PLC0415

    train_and_save_vae(data, output, model_config=_architecture(width), epochs=epochs, batch_size=batch_size,
                       seed=seed, device=device, num_threads=threads, limit=limit, overwrite=force, log=_log,
                       conditional=conditional,
                       command=_generator_command("vae", data, epochs, batch_size, seed, conditional, width))
    label = " --label K" if conditional else ""
    click.echo(f"saved the VAE to {output}/ (use it with: synthguard generate --backend vae --model {output}{label})")


@train.command("classifier")
@_train_options
def train_classifier_cmd(data, epochs, batch_size, seed, device, threads, limit, output, force) -> None:
    """Train the MNIST classifier whose features score FID/KID/IS (MNIST only: it needs labels).

    \b
    Example:
      synthguard train classifier --epochs 4 -o my-classifier/
    """
    from synthguard.training.runs import train_and_save_classifier  # noqa: PLC0415

    result = train_and_save_classifier(output, data=data, epochs=epochs, batch_size=batch_size, seed=seed,
                                       device=device, num_threads=threads, limit=limit, overwrite=force, log=_log,
                                       command=f"synthguard train classifier --epochs {epochs} --seed {seed}")
    click.echo(f"saved the classifier to {output}/: test accuracy {result.test_accuracy:.4f}")


@train.command("detector")
@click.option("--real", "real_dirs", multiple=True, required=True, type=click.Path(path_type=Path),
              help="Folder of real images (repeatable).")
@click.option("--fake", "fake_dirs", multiple=True, required=True, type=click.Path(path_type=Path),
              help="Folder of synthetic images, one generator family per folder (repeatable).")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the detector (patch/, global/, calibration.json, training.json).")
@click.option("--steps", default=1500, show_default=True, type=click.IntRange(1), help="Patch-view optimiser steps.")
@click.option("--global-epochs", default=16, show_default=True, type=click.IntRange(0),
              help="Global-view epochs (0: patch view only).")
@click.option("--holdout", default=0.2, show_default=True, type=click.FloatRange(0.05, 0.5),
              help="Share of each folder held out to calibrate probabilities and the threshold.")
@click.option("--target-fpr", default=0.01, show_default=True, type=click.FloatRange(0.0, 0.5, max_open=True),
              help="False-positive rate on held-out real images the threshold is set for.")
@click.option("--backbone", help="Instead of the discriminator: a linear probe on this pretrained vision model's "
                                 "features (transformers hub id or local folder, e.g. a CLIP vision model).")
@click.option("--limit", type=click.IntRange(2), help="At most N images per folder.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0))
@options.threads()
@options.force("Write into an existing folder.")
def train_detector_cmd(real_dirs, fake_dirs, output, steps, global_epochs, holdout, target_fpr, backbone, limit, seed,
                       threads, force) -> None:
    """Train the synthetic-image detector (patch + global discriminator views) on your own folders, calibrate it on
    a held-out share of each folder, and save it; use it with `synthguard detect --detector FOLDER`.

    Both classes get the same JPEG/resize augmentation, so file format is never the cue. The shipped detector was
    trained by `python recipes/train_detector.py` (see synthguard/models/weights/detector/README.md).

    \b
    Examples:
      synthguard train detector --real photos/ --fake gan-out/ --fake diffusion-out/ -o my-detector/
      synthguard train detector --real photos/ --fake gan-out/ --backbone ./clip-vit-base -o clip-probe/
    """
    from synthguard.training.detector import DetectorTrainConfig  # noqa: PLC0415
    from synthguard.training.runs import train_and_save_detector  # noqa: PLC0415

    command = "synthguard train detector " + " ".join(
        [f"--real {d}" for d in real_dirs] + [f"--fake {d}" for d in fake_dirs]
        + ([f"--backbone {backbone}"] if backbone else [])
        + [f"--steps {steps} --global-epochs {global_epochs} --holdout {holdout} --seed {seed}"])
    run = train_and_save_detector(
        real_dirs, fake_dirs, output,
        config=DetectorTrainConfig(steps=steps, global_epochs=global_epochs, target_fpr=target_fpr),
        holdout=holdout, backbone=backbone, limit=limit, seed=seed, num_threads=threads, overwrite=force,
        command=command, log=_log)
    cal = run.detector.calibration
    click.echo(f"saved the detector to {output}/: threshold {cal.threshold:.4f} on P(synthetic), measured FPR "
               f"{100 * cal.measured_fpr:.1f}% on {cal.n_real} held-out real scores (use it with: synthguard detect "
               f"--detector {output} FILE)")
    if cal.n_real < 100:
        click.echo(f"note: the threshold rests on {cal.n_real} held-out real image(s): an FPR measured on so few is "
                   f"coarse (steps of {100 / max(cal.n_real, 1):.0f} %); use 100 or more real images for a threshold "
                   "a newsroom can rely on", err=True)


@train.command("text")
@click.option("--data", required=True,
              help="A UTF-8 plain-text file, or 'tinyshakespeare' (the built-in model's corpus, from the dataset "
                   "cache: see `synthguard data`).")
@click.option("--steps", default=2000, show_default=True, type=click.IntRange(1))
@click.option("--vocab-size", default=1024, show_default=True, type=click.IntRange(260, 65536),
              help="Byte-level BPE vocabulary.")
@click.option("--layers", default=4, show_default=True, type=click.IntRange(1))
@click.option("--width", default=128, show_default=True, type=click.IntRange(16), help="Embedding width.")
@click.option("--context", default=256, show_default=True, type=click.IntRange(16), help="Context in tokens.")
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(1))
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0))
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@options.threads()
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the model, tokenizer and training.json.")
@options.force("Write into an existing folder.")
def train_text_cmd(data, steps, vocab_size, layers, width, context, batch_size, seed, device, threads, output,
                   force) -> None:
    """Train a small GPT-2 (byte-level BPE) from scratch on a text file; 5% is held out for perplexity.

    \b
    Examples:
      synthguard train text --data tinyshakespeare -o my-lm/
      synthguard generate --backend text --model my-lm/ --prompt "JULIET:" -o juliet.txt
    """
    import torch  # noqa: PLC0415
    from tqdm import tqdm  # noqa: PLC0415

    from synthguard.core.torch_utils import resolve_device  # noqa: PLC0415
    from synthguard.training.text import TextTrainConfig, train_text_model  # noqa: PLC0415

    if threads:
        torch.set_num_threads(threads)
    config = TextTrainConfig(vocab_size=vocab_size, steps=steps, batch_size=batch_size, seed=seed)
    architecture = {"n_layer": layers, "n_embd": width, "n_head": max(1, width // 32), "n_positions": context}
    command = (f"synthguard train text --data {Path(data).name} --steps {steps} --vocab-size {vocab_size} "
               f"--layers {layers} --width {width} --context {context} --batch-size {batch_size} --seed {seed}")
    bars: list = []  # the progress bar, opened at the first step (after the library's checks of data and output)

    def progress(step: int, loss: float) -> None:
        if not bars:
            bars.append(tqdm(total=steps, desc="train text", unit="step", file=sys.stderr))
        bars[0].update(1)
        if step % 50 == 0:
            bars[0].set_postfix(loss=f"{loss:.3f}")

    try:
        record = train_text_model(data, output, config, device=resolve_device(device), model_config=architecture,
                                  progress=progress,
                                  command=command, overwrite=force)
    finally:
        for bar in bars:
            bar.close()
    click.echo(f"saved to {output}/: {record['parameters']:,} parameters, held-out perplexity "
               f"{record['heldout_perplexity_per_token']:.2f} per token ({record['heldout_bits_per_character']:.3f} "
               f"bits/char) after {steps} steps in {record['seconds']:.0f} s")


# --- text-vae (the sentence VAE) ---
@train.command("text-vae")
@click.option("--data", default="tinyshakespeare", show_default=True,
              help="A UTF-8 plain-text file (one sentence per line), or 'tinyshakespeare' (the dataset cache).")
@click.option("--steps", default=6000, show_default=True, type=click.IntRange(1))
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1))
@click.option("--lr", default=2e-3, show_default=True, type=click.FloatRange(0, min_open=True))
@click.option("--latent-dim", default=32, show_default=True, type=click.IntRange(1))
@click.option("--hidden", default=256, show_default=True, type=click.IntRange(8), help="Decoder GRU width.")
@click.option("--max-tokens", default=30, show_default=True, type=click.IntRange(1, 512),
              help="Longest line (in tokens) trained on.")
@click.option("--word-dropout", default=0.3, show_default=True, type=click.FloatRange(0, 1, max_open=True))
@click.option("--kl-schedule", type=click.Choice(["logistic", "linear", "none"]), default="logistic",
              show_default=True, help="How the KL weight rises from 0 to 1.")
@click.option("--kl-warmup", default=3000, show_default=True, type=click.IntRange(0), help="Steps of the rise.")
@click.option("--free-bits", default=0.0, show_default=True, type=click.FloatRange(0, 100, max_open=True),
              help="Nats per latent dimension below which the KL is not penalised (0: off).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0))
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@options.threads()
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the model (config.json + safetensors) and training.json.")
@options.force("Write into an existing folder.")
def train_text_vae_cmd(data, steps, batch_size, lr, latent_dim, hidden, max_tokens, word_dropout, kl_schedule,
                       kl_warmup, free_bits, seed, device, threads, output, force) -> None:
    """Train a sentence VAE (Bowman et al. 2016: GRU encoder/decoder, KL annealing, word dropout) on the lines of a
    text file, over the built-in LM's tokenizer; the last 5% of the lines are held out.

    \b
    Examples:
      synthguard train text-vae --steps 6000 --free-bits 0.1 -o my-text-vae/
      synthguard generate --backend text-vae --model my-text-vae/ -n 5 -o samples/
    """
    import torch  # noqa: PLC0415

    from synthguard.core.torch_utils import resolve_device  # noqa: PLC0415
    from synthguard.training.text_vae import TextVAETrainConfig, train_text_vae  # noqa: PLC0415

    if threads:
        torch.set_num_threads(threads)
    config = TextVAETrainConfig(steps=steps, batch_size=batch_size, lr=lr, seed=seed, max_tokens=max_tokens,
                                word_dropout=word_dropout, kl_schedule=kl_schedule, kl_warmup=kl_warmup,
                                free_bits=free_bits)
    command = (f"synthguard train text-vae --data {Path(data).name} --steps {steps} --batch-size {batch_size} "
               f"--lr {lr} --latent-dim {latent_dim} --hidden {hidden} --max-tokens {max_tokens} --word-dropout "
               f"{word_dropout} --kl-schedule {kl_schedule} --kl-warmup {kl_warmup} --free-bits {free_bits} "
               f"--seed {seed}")
    logged = [0]

    def progress(step: int, last: dict) -> None:
        if last and last["step"] != logged[0]:
            logged[0] = last["step"]
            _log(f"step {last['step']}/{steps}: loss {last['loss']:.3f}, NLL {last['nll_per_token']:.3f}/token, KL "
                 f"{last['kl_per_sentence']:.2f}/sentence, beta {last['beta']:.3f}")

    record = train_text_vae(data, output, config, device=resolve_device(device), progress=progress, command=command,
                            model_config={"latent_dim": latent_dim, "decoder_hidden": hidden}, overwrite=force)
    held = record["heldout"]
    click.echo(f"saved to {output}/: {record['parameters']:,} parameters; held-out: reconstruction "
               f"{held['reconstruction_nll_per_token']:.3f} nats/token, KL {held['kl_per_sentence']:.2f} "
               f"nats/sentence, perplexity bound {held['perplexity_bound_per_token']:.2f}, active units "
               f"{held['active_units']}/{held['latent_dim']} ({record['seconds']:.0f} s)")


@train.command("audio")
@click.option("--data", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="A folder of MusicXML / MIDI files (four-part, 4/4); default: the Bach chorales of music21's "
                   "corpus (parsed once, then cached in the dataset cache).")
@click.option("--steps", default=700, show_default=True, type=click.IntRange(1))
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(1))
@click.option("--lr", default=2e-3, show_default=True, type=click.FloatRange(0, min_open=True))
@click.option("--width", default=128, show_default=True, type=click.IntRange(8), help="Transformer width.")
@click.option("--layers", default=4, show_default=True, type=click.IntRange(1))
@click.option("--bars", default=4, show_default=True, type=click.IntRange(1, 32), help="Context, in 4/4 bars.")
@click.option("--limit", type=click.IntRange(2), help="Train on the first N usable pieces only.")
@click.option("--eval-samples", default=16, show_default=True, type=click.IntRange(1),
              help="Pieces of 8 bars sampled after training for the music statistics.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0))
@click.option("--device", default="cpu", show_default=True, help="auto, cpu, cuda or cuda:N.")
@options.threads()
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the model (config.json + safetensors) and training.json.")
@options.force("Write into an existing folder.")
def train_audio_cmd(data, steps, batch_size, lr, width, layers, bars, limit, eval_samples, seed, device, threads,
                    output, force) -> None:
    """Train the chorale transformer (a small decoder-only transformer over a 16th-note grid of four voices) that
    `generate --backend audio` renders; pieces are split by piece (10% held out) and transposed at random.

    \b
    Examples:
      synthguard train audio --threads 2 -o my-chorales/        # the shipped run
      synthguard train audio --data ./my-hymns/ --steps 2000 -o my-hymns-model/
      synthguard generate --backend audio --model my-chorales/ -n 2 -o clips/
    """
    from synthguard.models.audio import HEADER, TOKENS_PER_BAR  # noqa: PLC0415
    from synthguard.training.audio import AudioTrainConfig  # noqa: PLC0415
    from synthguard.training.runs import train_and_save_audio  # noqa: PLC0415

    config = AudioTrainConfig(steps=steps, batch_size=batch_size, lr=lr, seed=seed, eval_samples=eval_samples)
    architecture = {"width": width, "layers": layers, "max_tokens": HEADER + bars * TOKENS_PER_BAR}
    command = (f"synthguard train audio{f' --data {data.name}' if data else ''} --steps {steps} --batch-size "
               f"{batch_size} --lr {lr} --width {width} --layers {layers} --bars {bars} --seed {seed}"
               + (f" --limit {limit}" if limit else "") + f" --eval-samples {eval_samples}")
    result = train_and_save_audio(output, data=data, config=config, model_config=architecture, device=device,
                                  num_threads=threads, limit=limit, overwrite=force, command=command, log=_log)
    figures = result.evaluation
    base = figures["baseline_perplexity"]
    music = figures["music"]
    click.echo(f"saved to {output}/: {figures['parameters']:,} parameters, {result.seconds:.0f} s; validation "
               f"perplexity {figures['validation_perplexity']:.3f} (unigram {base['unigram']:.3f}, bigram "
               f"{base['bigram']:.3f}, voice bigram {base['voice_bigram']:.3f}); sampled pieces: in-key "
               f"{music['sampled']['in_key_share']:.1%} (data {music['validation']['in_key_share']:.1%}), "
               f"pitch-class distance {music['pitch_class_distance']:.3f}")
