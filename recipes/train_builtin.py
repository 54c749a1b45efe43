"""The run that made the shipped generator weights: the MNIST classifier (the feature extractor of FID / KID / IS),
then the GAN and the VAE, each saved with ``save_pretrained`` into ``--out`` (default: the package's
``models/weights/``) with a ``training.json`` record beside it.

    SYNTHGUARD_MNIST=/path/to/mnist.npz python recipes/train_builtin.py --device cuda

The settings below are the shipped run's (on one H200); the architectures are the model classes' defaults, which
are the shipped config.json files.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import time
from pathlib import Path

import torch

from synthguard.training.architecture import architecture_of
from synthguard.training.data import MnistSplit, load_mnist
from synthguard.training.evaluation import FeatureExtractor, train_mnist_classifier
from synthguard.training.gan import GANTrainConfig, train_gan
from synthguard.training.records import write_training_record
from synthguard.training.vae import VAETrainConfig, train_vae

# ------------------------------------------------------------------------------------------ the shipped run's config
OUT = Path(__file__).resolve().parents[1] / "synthguard" / "models" / "weights"
DEVICE = "auto"
SEED = 0
BATCH_SIZE = 128
CLASSIFIER_EPOCHS = 4
GAN_EPOCHS = 25
VAE_EPOCHS = 25
GAN_CONFIG = GANTrainConfig()  # no weight averaging (ema_decay None)
VAE_CONFIG = VAETrainConfig()
# ---------------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--device", default=DEVICE)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (None: torch's default)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--classifier-epochs", type=int, default=CLASSIFIER_EPOCHS)
    parser.add_argument("--gan-epochs", type=int, default=GAN_EPOCHS)
    parser.add_argument("--gan-width", type=int, default=None, help="the generator's width (default: the class's)")
    parser.add_argument("--vae-epochs", type=int, default=VAE_EPOCHS)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--limit", type=int, default=None, help="train on the first N images only (smoke runs)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
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

    # 1. The classifier: its features score the generators, and its class coverage is the GAN's diagnostic.
    classifier = train_mnist_classifier(
        train.images, train.labels, test.images, test.labels,
        epochs=args.classifier_epochs, batch_size=args.batch_size, seed=args.seed, device=args.device,
        num_threads=args.threads, log=print,
    )
    classifier.model.save_pretrained(args.out / "mnist-classifier")
    write_training_record(args.out / "mnist-classifier", {
        "call": f"train_mnist_classifier(train.images, train.labels, test.images, test.labels, "
        f"epochs={args.classifier_epochs}, batch_size={args.batch_size}, seed={args.seed})",
        "model_config": architecture_of(classifier.model),
        "test_accuracy": classifier.test_accuracy,
        "epoch_losses": classifier.epoch_losses,
        "seconds": classifier.seconds,
        **machine,
    })
    extractor = FeatureExtractor(classifier.model, device=args.device)

    # 2. The GAN.
    started = time.perf_counter()
    gan_model = {} if args.gan_width is None else {"width": args.gan_width}
    gan = train_gan(
        train.images, GAN_CONFIG, model_config=gan_model, epochs=args.gan_epochs, batch_size=args.batch_size,
        seed=args.seed, device=args.device, num_threads=args.threads, classifier=extractor, log=print,
    )
    gan.generator.save_pretrained(args.out / "gan")
    write_training_record(args.out / "gan", {
        "call": f"train_gan(train.images, {GAN_CONFIG}, model_config={gan_model}, epochs={args.gan_epochs}, "
        f"batch_size={args.batch_size}, seed={args.seed}, classifier=<mnist-classifier>)",
        "model_config": architecture_of(gan.generator),
        "seconds": time.perf_counter() - started,
        "history": [dataclasses.asdict(e) for e in gan.history],
        **machine,
    })

    # 3. The VAE.
    started = time.perf_counter()
    vae = train_vae(
        train.images, VAE_CONFIG, epochs=args.vae_epochs, batch_size=args.batch_size, seed=args.seed,
        device=args.device, num_threads=args.threads, log=print,
    )
    vae.model.save_pretrained(args.out / "vae")
    write_training_record(args.out / "vae", {
        "call": f"train_vae(train.images, {VAE_CONFIG}, epochs={args.vae_epochs}, batch_size={args.batch_size}, "
        f"seed={args.seed})",
        "model_config": architecture_of(vae.model),
        "seconds": time.perf_counter() - started,
        "history": [dataclasses.asdict(e) for e in vae.history],
        **machine,
    })


if __name__ == "__main__":
    main()
