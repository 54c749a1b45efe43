"""``synthguard train``: train the generators, the MNIST classifier, a detector and a text model."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from synthguard.cli import options
from synthguard.errors import InputError


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
                     help="'mnist' (../shared/datasets/mnist.npz or $SYNTHGUARD_MNIST) or a folder of images."),
        click.option("--epochs", default=5, show_default=True, type=click.IntRange(1)),
        click.option("--batch-size", default=128, show_default=True, type=click.IntRange(1)),
        click.option("--seed", default=0, show_default=True, type=click.IntRange(0)),
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N."),
        click.option("--threads", type=click.IntRange(1), help="torch CPU threads."),
        click.option("--limit", type=click.IntRange(1), help="Train on the first N images only."),
        click.option("-o", "--output", required=True, type=click.Path(file_okay=False, path_type=Path),
                     help="Folder to save the model in (save_pretrained: config.json + safetensors)."),
        click.option("--force", is_flag=True, help="Write into an existing folder."),
    ]):
        func = option(func)
    return func


def _prepare_output(output: Path, force: bool) -> None:
    if output.exists() and any(output.iterdir()) and not force:
        raise InputError(f"{output} exists and is not empty (use --force to overwrite the model in it)")


def _training_record(output: Path, record: dict) -> None:
    from synthguard.core.fileio import write_atomic  # noqa: PLC0415

    output.mkdir(parents=True, exist_ok=True)
    write_atomic(output / "training.json", (json.dumps(record, indent=2, default=str) + "\n").encode())


def _save_trained(model, output: Path, command: str, config, history, n_images: int) -> None:
    """``save_pretrained`` plus a ``training.json`` record: the command, config and per-epoch history."""
    import dataclasses  # noqa: PLC0415

    model.save_pretrained(output)
    _training_record(output, {"command": command, "config": dataclasses.asdict(config),
                              "history": [dataclasses.asdict(e) for e in history], "images": n_images})


@train.command("gan")
@_train_options
def train_gan_cmd(data, epochs, batch_size, seed, device, threads, limit, output, force) -> None:
    """Train a DCGAN (spectral-norm discriminator); prints losses and mode-collapse diagnostics per epoch.

    \b
    Example:
      synthguard train gan --data mnist --epochs 25 --device cuda -o my-gan/
    """
    from synthguard.training.data import load_images  # noqa: PLC0415
    from synthguard.training.evaluation import builtin_feature_extractor  # noqa: PLC0415
    from synthguard.training.gan import GANTrainConfig, train_gan  # noqa: PLC0415

    _prepare_output(output, force)
    images = load_images(data, limit=limit)
    config = GANTrainConfig()
    result = train_gan(images, config, epochs=epochs, batch_size=batch_size, seed=seed, device=device,
                       num_threads=threads, classifier=builtin_feature_extractor(num_threads=threads),
                       log=lambda line: click.echo(line, err=True))
    _save_trained(result.generator, output, f"synthguard train gan --data {data} --epochs {epochs} --batch-size "
                  f"{batch_size} --seed {seed}", config, result.history, len(images))
    click.echo(f"saved the generator to {output}/ (use it with: synthguard generate --model {output})")


@train.command("vae")
@_train_options
def train_vae_cmd(data, epochs, batch_size, seed, device, threads, limit, output, force) -> None:
    """Train a convolutional VAE; prints reconstruction and KL terms per epoch.

    \b
    Example:
      synthguard train vae --data mnist --epochs 25 -o my-vae/
    """
    from synthguard.training.data import load_images  # noqa: PLC0415
    from synthguard.training.vae import VAETrainConfig, train_vae  # noqa: PLC0415

    _prepare_output(output, force)
    images = load_images(data, limit=limit)
    config = VAETrainConfig()
    result = train_vae(images, config, epochs=epochs, batch_size=batch_size, seed=seed, device=device,
                       num_threads=threads, log=lambda line: click.echo(line, err=True))
    _save_trained(result.model, output, f"synthguard train vae --data {data} --epochs {epochs} --batch-size "
                  f"{batch_size} --seed {seed}", config, result.history, len(images))
    click.echo(f"saved the VAE to {output}/ (use it with: synthguard generate --backend vae --model {output})")


@train.command("classifier")
@_train_options
def train_classifier_cmd(data, epochs, batch_size, seed, device, threads, limit, output, force) -> None:
    """Train the MNIST classifier whose features score FID/KID/IS (MNIST only: it needs labels).

    \b
    Example:
      synthguard train classifier --epochs 4 -o my-classifier/
    """
    from synthguard.training.data import load_mnist  # noqa: PLC0415
    from synthguard.training.evaluation import train_mnist_classifier  # noqa: PLC0415

    if data != "mnist":
        raise InputError("the classifier trains on labelled MNIST only (--data mnist)")
    _prepare_output(output, force)
    train_split, test_split = load_mnist("train"), load_mnist("test")
    result = train_mnist_classifier(train_split.images[:limit], train_split.labels[:limit], test_split.images,
                                    test_split.labels, epochs=epochs, batch_size=batch_size, seed=seed,
                                    device=device, num_threads=threads, log=lambda line: click.echo(line, err=True))
    result.model.save_pretrained(output)
    _training_record(output, {"command": f"synthguard train classifier --epochs {epochs} --seed {seed}",
                              "test_accuracy": result.test_accuracy, "epoch_losses": result.epoch_losses})
    click.echo(f"saved the classifier to {output}/: test accuracy {result.test_accuracy:.4f}")


def _folder_images(folder: Path, limit: int | None) -> tuple[list, list[str]]:
    """Every readable image in ``folder`` (sorted, not recursive) as RGB; the unreadable ones' messages."""
    from synthguard.core.media import MediaKind, decode_image, sniff  # noqa: PLC0415

    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder of images")
    images, skipped = [], []
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        if limit is not None and len(images) >= limit:
            break
        try:
            if sniff(path).kind is not MediaKind.IMAGE:
                continue
            images.append(decode_image(path, keep_rgb=True).rgb)
        except InputError as exc:
            skipped.append(f"{path}: {exc}")
    if len(images) < 2:
        raise InputError(f"{folder} has {len(images)} usable image(s); each folder needs at least 2 (some are held "
                         "out for calibration)")
    return images, skipped


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
    trained by `python -m synthguard.training.detector` (see synthguard/models/weights/detector/README.md).

    \b
    Examples:
      synthguard train detector --real photos/ --fake gan-out/ --fake diffusion-out/ -o my-detector/
      synthguard train detector --real photos/ --fake gan-out/ --backbone ./clip-vit-base -o clip-probe/
    """
    import dataclasses  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415

    from synthguard.models.detector import to_luma  # noqa: PLC0415
    from synthguard.training.detector import DetectorTrainConfig  # noqa: PLC0415

    _prepare_output(output, force)
    rng = np.random.default_rng(seed)

    def split(images: list) -> tuple[list, list]:
        order = rng.permutation(len(images))
        cut = max(1, round(holdout * len(images)))
        return [images[i] for i in order[cut:]], [images[i] for i in order[:cut]]

    real_train, real_cal, fakes_train, fakes_cal, skipped = [], [], {}, {}, []
    for folder in real_dirs:
        images, bad = _folder_images(folder, limit)
        skipped += bad
        tr, ca = split(images)
        real_train += tr
        real_cal += ca
    for folder in fake_dirs:
        images, bad = _folder_images(folder, limit)
        skipped += bad
        family = folder.resolve().name or "fake"
        if family in fakes_train:
            raise InputError(f"two --fake folders are named {family!r}: the folder name is the family's name")
        fakes_train[family], fakes_cal[family] = split(images)
    for line in skipped:
        click.echo(f"skipped {line}", err=True)
    command = "synthguard train detector " + " ".join(
        [f"--real {d}" for d in real_dirs] + [f"--fake {d}" for d in fake_dirs]
        + ([f"--backbone {backbone}"] if backbone else [])
        + [f"--steps {steps} --global-epochs {global_epochs} --holdout {holdout} --seed {seed}"])
    if backbone:
        from synthguard.models.backbone import train_backbone_detector  # noqa: PLC0415

        detector = train_backbone_detector(backbone, real_train, [im for v in fakes_train.values() for im in v],
                                           real_cal, [im for v in fakes_cal.values() for im in v],
                                           target_fpr=target_fpr, num_threads=threads)
        detector.save_pretrained(output)
        _training_record(output, {"command": command, "backbone": backbone, "skipped": skipped,
                                  "calibration": dataclasses.asdict(detector.calibration)})
    else:
        detector = _train_discriminator_detector(
            [to_luma(im) for im in real_train], {k: [to_luma(im) for im in v] for k, v in fakes_train.items()},
            [to_luma(im) for im in real_cal], {k: [to_luma(im) for im in v] for k, v in fakes_cal.items()},
            DetectorTrainConfig(steps=steps, global_epochs=global_epochs, global_size=32 if global_epochs else 0,
                                target_fpr=target_fpr), seed, threads, output, command, skipped)
    cal = detector.calibration
    click.echo(f"saved the detector to {output}/: threshold {cal.threshold:.4f} on P(synthetic), measured FPR "
               f"{100 * cal.measured_fpr:.1f}% on {cal.n_real} held-out real scores (use it with: synthguard detect "
               f"--detector {output} FILE)")


def _train_discriminator_detector(real_train, fakes_train, real_cal, fakes_cal, config, seed, threads, output,
                                  command, skipped):
    import dataclasses  # noqa: PLC0415

    from synthguard.training.detector import train_detector  # noqa: PLC0415

    detector, record = train_detector(real_train, fakes_train, calibration_real=real_cal,
                                      calibration_fakes_by_family=fakes_cal, config=config, seed=seed,
                                      num_threads=threads, log=lambda line: click.echo(line, err=True))
    detector.save_pretrained(output)
    _training_record(output, {"command": command, "training": dataclasses.asdict(record), "skipped": skipped})
    return detector


@train.command("text")
@click.option("--data", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="A UTF-8 plain-text file (the built-in model: ../shared/datasets/tinyshakespeare.txt).")
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
      synthguard train text --data ../shared/datasets/tinyshakespeare.txt -o my-lm/
      synthguard generate --backend text --model my-lm/ --prompt "JULIET:" -o juliet.txt
    """
    import torch  # noqa: PLC0415
    from tqdm import tqdm  # noqa: PLC0415

    from synthguard.core.torch_utils import resolve_device  # noqa: PLC0415
    from synthguard.training.text import TextTrainConfig, train_text_model  # noqa: PLC0415

    _prepare_output(output, force)
    if threads:
        torch.set_num_threads(threads)
    if not data.is_file():
        raise InputError(f"{data}: no such file")
    config = TextTrainConfig(vocab_size=vocab_size, n_layer=layers, n_embd=width, n_head=max(1, width // 32),
                             context=context, steps=steps, batch_size=batch_size, seed=seed)
    command = (f"synthguard train text --data {data.name} --steps {steps} --vocab-size {vocab_size} --layers {layers} "
               f"--width {width} --context {context} --batch-size {batch_size} --seed {seed}")
    with tqdm(total=steps, desc="train text", unit="step", file=sys.stderr) as bar:
        def progress(step: int, loss: float) -> None:
            bar.update(1)
            if step % 50 == 0:
                bar.set_postfix(loss=f"{loss:.3f}")
        record = train_text_model(data, output, config, device=resolve_device(device), progress=progress,
                                  command=command)
    click.echo(f"saved to {output}/: {record['parameters']:,} parameters, held-out perplexity "
               f"{record['heldout_perplexity_per_token']:.2f} per token ({record['heldout_bits_per_character']:.3f} "
               f"bits/char) after {steps} steps in {record['seconds']:.0f} s")
