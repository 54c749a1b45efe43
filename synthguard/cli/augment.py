"""``synthguard augment`` (a stamped, labelled synthetic dataset with a dataset card) and ``synthguard bench
augment`` (what such a dataset is worth to an MNIST classifier; registered on the ``bench`` group by
``cli.bench``)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from synthguard.cli import options
from synthguard.cli.context import Env, pass_env
from synthguard.cli.render import print_json


def _classes(ctx, param, value: str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        classes = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"expected class indices separated by commas, e.g. 0,1,7, not {value!r}") from None
    if not classes or any(k < 0 for k in classes):
        raise click.BadParameter(f"expected non-negative class indices, e.g. 0,1,7, not {value!r}")
    return classes


@click.command()
@click.option("--per-class", required=True, type=click.IntRange(1, 1_000_000), metavar="N",
              help="Images per class.")
@click.option("-o", "--output-dir", required=True, type=click.Path(path_type=Path),
              help="The dataset folder: one subfolder per class (named by the digit), a README.md card and "
                   "dataset.json.")
@click.option("--backend", type=click.Choice(["gan", "vae"]), default="gan", show_default=True,
              help="Class-conditional model family: the built-in gan-conditional / vae-conditional weights.")
@click.option("--model", help="A class-conditional save_pretrained folder of that backend (`synthguard train gan "
                              "--conditional`) instead of the built-in weights.")
@click.option("--classes", callback=_classes, metavar="K,K,...", help="The classes to make (default: all the "
                                                                       "model has, 0-9 for the built-ins).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0),
              help="Base seed: image i of class K has seed SEED + K*N + i.")
@click.option("--format", "fmt", type=click.Choice(["png", "jpeg", "webp"]), default="png", show_default=True)
@click.option("--size", default=256, show_default=True, type=click.IntRange(128, 8192),
              help="Output side in pixels (the watermark needs 128 or more).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1))
@options.threads(help="torch CPU threads (default: torch's choice).")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1),
              help="Threads that embed watermarks in parallel (signing stays in order on one).")
@options.force("Write into a non-empty folder, replacing an earlier dataset written there.")
@options.json_output("Print a JSON report (classes, label agreement, files, timings).")
@pass_env
def augment(env: Env, per_class, output_dir, backend, model, classes, seed, fmt, size, device, batch_size, threads,
            workers, force, as_json) -> None:
    """Write a labelled synthetic dataset, ImageFolder style (DIR/<class>/...), from a class-conditional GAN or VAE:
    every image watermarked, signed as trainedAlgorithmicMedia and recorded in the ledger; then a dataset card
    (DIR/README.md: counts, model, seeds, the label agreement measured by the shipped MNIST classifier) and
    DIR/dataset.json.

    \b
    Examples:
      synthguard augment --per-class 100 -o synthetic-mnist/
      synthguard augment --per-class 500 --backend vae --classes 3,5,8 --seed 7 -o hard-digits/
      synthguard verify synthetic-mnist/
    """
    from tqdm import tqdm  # noqa: PLC0415

    from synthguard.generate.augment import AugmentRequest, augment_dataset  # noqa: PLC0415

    request = AugmentRequest(output_dir=output_dir, per_class=per_class, backend=backend, model=model,
                             classes=classes, seed=seed, fmt=fmt, size=size, device=device, batch_size=batch_size,
                             threads=threads, workers=workers, overwrite=force)
    # The built-ins have ten classes; a given model's count is known once it has loaded.
    count = len(classes) if classes else (10 if model is None else None)
    total = per_class * count if count else None
    with tqdm(total=total, desc="augment", unit="img", file=sys.stderr, disable=None) as bar:
        report = augment_dataset(request, env.home, identity=env.identity, progress=bar.update)
    if as_json:
        print_json(report.to_dict())
        return
    for line in report.describe():
        click.echo(line)
    click.echo(f"verify with: synthguard verify {output_dir}")


def _list(ctx, param, value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def _fractions(ctx, param, value: str) -> tuple[float, ...]:
    try:
        fractions = tuple(float(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"expected fractions separated by commas, e.g. 0.01,0.1, not {value!r}") from None
    if not fractions or any(not 0 < f <= 1 for f in fractions):
        raise click.BadParameter(f"fractions must lie in (0, 1], not {value!r}")
    return fractions


@click.command("augment")
@click.option("--backend", "backends", default="gan,vae", show_default=True, callback=_list,
              help="Built-in class-conditional generators whose images augment the real ones (generated in memory "
                   "at their native 28 px), separated by commas; 'none' for --from folders only.")
@click.option("--from", "from_dirs", multiple=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A folder written by `synthguard augment` (its stamped files, downsized to 28 px) as one more "
                   "synthetic set (repeatable).")
@click.option("--per-class", default=100, show_default=True, type=click.IntRange(1),
              help="Synthetic images per class added to each real subset.")
@click.option("--fractions", default="0.01,0.05,0.1", show_default=True, callback=_fractions,
              help="Shares of the 60,000 real training images (stratified by class).")
@click.option("--seeds", default=3, show_default=True, type=click.IntRange(1, 100),
              help="Training seeds per configuration (real subset, initial weights, batch order).")
@click.option("--steps", default=250, show_default=True, type=click.IntRange(1),
              help="Adam steps of 64 images per training run, the same with and without synthetic images.")
@options.threads(default=1)
@click.option("--data", type=click.Path(exists=True, path_type=Path),
              help="MNIST as an mnist.npz or a folder of the idx files (default: the dataset cache).")
@click.option("--quick", is_flag=True, help="A smoke run: the first fraction only, 2 seeds, 20 steps.")
@options.json_output()
def bench_augment(backends, from_dirs, per_class, fractions, seeds, steps, threads, data, quick, as_json) -> None:
    """Test accuracy (10,000 MNIST test images) of an MNIST classifier trained on 1 %, 5 % and 10 % of the real
    training set, with and without N synthetic images per class: mean and 95 % t-interval over the training seeds,
    and the paired difference with its interval.

    \b
    Examples:
      synthguard bench augment                       # gan and vae built-ins, 100 per class (about 15 min on 2 cores)
      synthguard bench augment --backend none --from synthetic-mnist/ --per-class 100
      synthguard bench augment --seeds 5 --steps 500 --json > augment.json
    """
    from synthguard.bench.augment_bench import run  # noqa: PLC0415

    if quick:
        fractions, seeds, steps = fractions[:1], 2, 20
    chosen = tuple(b for b in backends if b != "none")
    unknown = [b for b in chosen if b not in ("gan", "vae")]
    if unknown:
        raise click.BadParameter(f"unknown backend {unknown[0]!r}: choose gan, vae or none", param_hint="--backend")
    result = run(backends=chosen, from_dirs=from_dirs, per_class=per_class, fractions=fractions, seeds=seeds,
                 steps=steps, threads=threads, data=data, log=lambda line: click.echo(line, err=True))
    if as_json:
        print_json(result.to_dict())
        return
    for line in result.describe():
        click.echo(line)
