"""The recipe that trained the shipped weights: MNIST classifier, then GAN and VAE, each saved with
``save_pretrained`` into ``--out`` (default: this package's ``weights/``) with a ``training.json`` record beside it.

    python -m recipes.train_builtin --device cuda --gan-epochs 20 --vae-epochs 20 --classifier-epochs 3
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time
from pathlib import Path

import torch

from synthguard.training.data import MnistSplit, load_mnist
from synthguard.training.evaluation import FeatureExtractor, train_mnist_classifier
from synthguard.training.gan import GANTrainConfig, train_gan
from synthguard.training.vae import VAETrainConfig, train_vae


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "synthguard" / "models" / "weights")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (None: torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--classifier-epochs", type=int, default=3)
    parser.add_argument("--gan-epochs", type=int, default=20)
    parser.add_argument("--gan-width", type=int, default=64)
    parser.add_argument("--vae-epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--limit", type=int, default=None, help="train on the first N images only (smoke runs)")
    args = parser.parse_args(argv)

    train, test = load_mnist("train"), load_mnist("test")
    train = MnistSplit(train.images[: args.limit], train.labels[: args.limit])
    machine = {
        "device": str(args.device),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() and args.device != "cpu" else None,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": args.threads,
        "train_images": len(train.images),
    }

    classifier = train_mnist_classifier(
        train.images, train.labels, test.images, test.labels,
        epochs=args.classifier_epochs, batch_size=args.batch_size, seed=args.seed, device=args.device,
        num_threads=args.threads, log=print,
    )
    classifier.model.save_pretrained(args.out / "mnist-classifier")
    _record(args.out / "mnist-classifier", {
        "call": f"train_mnist_classifier(train.images, train.labels, test.images, test.labels, "
        f"epochs={args.classifier_epochs}, batch_size={args.batch_size}, seed={args.seed})",
        "test_accuracy": classifier.test_accuracy,
        "epoch_losses": classifier.epoch_losses,
        "seconds": classifier.seconds,
        **machine,
    })
    extractor = FeatureExtractor(classifier.model, device=args.device)

    started = time.perf_counter()
    gan_config = GANTrainConfig(width=args.gan_width)
    gan = train_gan(
        train.images, gan_config, epochs=args.gan_epochs, batch_size=args.batch_size, seed=args.seed,
        device=args.device, num_threads=args.threads, classifier=extractor, log=print,
    )
    gan.generator.save_pretrained(args.out / "gan")
    _record(args.out / "gan", {
        "call": f"train_gan(train.images, {gan_config}, epochs={args.gan_epochs}, batch_size={args.batch_size}, "
        f"seed={args.seed}, classifier=<mnist-classifier>)",
        "seconds": time.perf_counter() - started,
        "history": [dataclasses.asdict(e) for e in gan.history],
        **machine,
    })

    started = time.perf_counter()
    vae_config = VAETrainConfig()
    vae = train_vae(
        train.images, vae_config, epochs=args.vae_epochs, batch_size=args.batch_size, seed=args.seed,
        device=args.device, num_threads=args.threads, log=print,
    )
    vae.model.save_pretrained(args.out / "vae")
    _record(args.out / "vae", {
        "call": f"train_vae(train.images, {vae_config}, epochs={args.vae_epochs}, batch_size={args.batch_size}, "
        f"seed={args.seed})",
        "seconds": time.perf_counter() - started,
        "history": [dataclasses.asdict(e) for e in vae.history],
        **machine,
    })


def _record(folder: Path, record: dict) -> None:
    (folder / "training.json").write_text(json.dumps(record, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
