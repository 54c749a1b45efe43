"""Sample quality and speed of the shipped generators, for the table in ``weights/README.md``.

Quality: FID / KID / IS / precision / recall (the shipped MNIST feature extractor) of ``--samples`` images from the
shipped GAN and VAE against as many held-out MNIST test images, beside three controls: other held-out test images
(the floor a perfect generator reaches; training images will not do, the extractor was trained on them), an
untrained GAN, and the shipped GAN collapsed on purpose (temperature 0.01: every latent near 0, so nearly one
image). Speed: images per second at 256x256 output on the CPU, split into the
network's time (native 28x28) and the bicubic upsampling's.

    python -m synthguard.bench.generator_bench --samples 2000 --threads 1 2
"""

from __future__ import annotations

import argparse
import time

import torch

from synthguard.core.torch_utils import resize_image
from synthguard.generate.backends import GANGenerator, builtin_generator
from synthguard.models.gan import DCGANGenerator
from synthguard.training.data import load_mnist
from synthguard.training.evaluation import builtin_feature_extractor, score_images


def quality(samples: int, threads: int) -> None:
    extractor = builtin_feature_extractor(num_threads=threads)
    reference = load_mnist("test").images[:samples]
    gan = builtin_generator("gan", output_size=None, num_threads=threads)
    torch.manual_seed(0)
    untrained = GANGenerator(DCGANGenerator.from_config(gan.model.config), output_size=None, num_threads=threads)
    vae = builtin_generator("vae", output_size=None, num_threads=threads)
    rows = {
        f"MNIST test[{samples}:{2 * samples}] (real: the floor)": load_mnist("test").images[samples : 2 * samples],
        "shipped GAN": gan.generate(samples, 0, device="cpu").images,
        "shipped VAE": vae.generate(samples, 0, device="cpu").images,
        "shipped GAN at 256 px (scored after area-downsizing)": builtin_generator("gan", num_threads=threads)
        .generate(samples, 0, device="cpu").images,
        "untrained GAN": untrained.generate(samples, 0, device="cpu").images,
        "collapsed GAN (temperature 0.01)": builtin_generator("gan", output_size=None, temperature=0.01)
        .generate(samples, 0, device="cpu").images,
    }
    print(f"reference: MNIST test[:{samples}]; extractor: {extractor.name}")
    print("| set | FID | KID | IS | precision | recall |\n| --- | ---: | ---: | ---: | ---: | ---: |")
    for label, images in rows.items():
        s = score_images(images, reference, extractor)
        print(
            f"| {label} | {s.fid:.1f} | {s.kid:.2f} ± {s.kid_std:.2f} | {s.inception_score:.2f} ± "
            f"{s.inception_score_std:.2f} | {s.precision:.3f} | {s.recall:.3f} |"
        )


def speed(thread_counts: list[int], n: int = 512) -> None:
    print("| model | threads | network img/s (28 px) | upsampling img/s (28 -> 256) | end to end img/s (256 px) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name in ("gan", "vae"):
        for threads in thread_counts:
            native = builtin_generator(name, output_size=None, num_threads=threads)
            full = builtin_generator(name, num_threads=threads)
            native.generate(64, 0, device="cpu")  # warm-up: first-call allocations
            started = time.perf_counter()
            images = native.generate(n, 0, device="cpu").images
            network = time.perf_counter() - started
            started = time.perf_counter()
            for image in images:
                resize_image(image, (256, 256))
            upsampling = time.perf_counter() - started
            started = time.perf_counter()
            full.generate(n, 0, device="cpu")
            total = time.perf_counter() - started
            print(f"| {name} | {threads} | {n / network:.0f} | {n / upsampling:.0f} | {n / total:.0f} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts for the speed table")
    args = parser.parse_args(argv)
    quality(args.samples, args.threads[0])
    speed(args.threads)


if __name__ == "__main__":
    main()
