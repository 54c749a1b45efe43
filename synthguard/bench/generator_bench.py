"""Sample quality and speed of the shipped generators, for the table in ``weights/README.md``.

Quality: FID / KID / IS / precision / recall (the shipped MNIST feature extractor) of ``--samples`` images from the
shipped GAN and VAE against as many held-out MNIST test images, beside three controls: other held-out test images
(the floor a perfect generator reaches; training images will not do, the extractor was trained on them), an
untrained GAN, and the shipped GAN collapsed on purpose (temperature 0.01: every latent near 0, so nearly one
image). Speed: images per second at 256x256 output on the CPU, split into the
network's time (native 28x28) and the bicubic upsampling's.

    python -m synthguard.bench.generator_bench --samples 2000 --threads 1 2

FID against sample size (``--sample-sizes``, instead of the two tables above): for each N and seed, FID of two
disjoint random N-image draws from MNIST test (real against real: the true FID is 0, so the mean is FID's bias at N)
and of N shipped-GAN samples against N test images, with the 95 % bootstrap interval of each; the mean and spread
over seeds, the interval's mean width, and how often it covers the mean FID at that N. Features are extracted once
(10,000 test images, 10,000 GAN samples), then drawn from.

    python -m synthguard.bench.generator_bench --sample-sizes 50,100,250,500,1000,2000 --seeds 10 --threads 1

The class-conditional built-ins (``--conditional``, instead): label agreement per class (the shipped classifier's
digit equals the asked label, ``--per-class`` samples of each label, seeds 0..per-class-1) and the quality scores of
``--samples`` samples with labels cycling 0..9 against MNIST ``test[:samples]``; ``--weights DIR`` scores the
``gan-conditional/`` and ``vae-conditional/`` folders of a training run instead of the shipped ones.

    python -m synthguard.bench.generator_bench --conditional --per-class 1000 --threads 1
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from synthguard.core.torch_utils import resize_image
from synthguard.generate.backends import GANGenerator, VAEGenerator, builtin_generator
from synthguard.models.gan import DCGANGenerator
from synthguard.training.data import load_mnist
from synthguard.training.evaluation import (
    builtin_feature_extractor,
    fid_infinity_estimate,
    fid_interval,
    frechet_distance,
    kernel_inception_distance,
    kid_interval,
    precision_recall,
    precision_recall_intervals,
    score_images,
)


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
    scores = {label: score_images(images, reference, extractor) for label, images in rows.items()}
    for label, s in scores.items():
        print(
            f"| {label} | {s.fid:.1f} | {s.kid:.2f} ± {s.kid_std:.2f} | {s.inception_score:.2f} ± "
            f"{s.inception_score_std:.2f} | {s.precision:.3f} | {s.recall:.3f} |"
        )
    print("\n95 % intervals (FID, KID: bootstrap of both sets, 200 resamples; precision, recall: of the scored "
          "images, the manifolds fixed; IS: t interval over its 10 splits):")
    print("| set | FID | KID | IS | precision | recall |\n| --- | ---: | ---: | ---: | ---: | ---: |")
    for label, s in scores.items():
        cells = [s.fid_ci, s.kid_ci, s.inception_score_ci, s.precision_ci, s.recall_ci]
        print(f"| {label} | " + " | ".join(f"{lo:.2f} to {hi:.2f}" for lo, hi in cells) + " |")


def fid_versus_sample_size(sizes: list[int], seeds: int, threads: int, resamples: int = 200) -> None:
    torch.set_num_threads(threads)
    extractor = builtin_feature_extractor(num_threads=threads)
    test, _ = extractor(load_mnist("test").images)
    gan_images = builtin_generator("gan", output_size=None, num_threads=threads).generate(len(test), 0, device="cpu")
    gan, _ = extractor(gan_images.images)
    full = frechet_distance(gan, test)
    full_inf = fid_infinity_estimate(gan, test)
    print(f"extractor: {extractor.name}; {seeds} seeds per N; {resamples} bootstrap resamples per interval")
    print(f"shipped GAN, all {len(gan)} samples vs all {len(test)} test images: FID {full:.2f}, FID_inf {full_inf:.2f}")
    print("| N | real vs real FID: mean ± sd | 95% CI width | CI covers mean | GAN vs real FID: mean ± sd "
          "| 95% CI width | CI covers mean | GAN FID_inf: mean ± sd |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n in sizes:
        rows: dict[str, list[tuple[float, float, float]]] = {"real": [], "gan": []}
        infinities = []
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            order = rng.permutation(len(test))
            pairs = {"real": (test[order[:n]], test[order[n : 2 * n]]),
                     "gan": (gan[rng.choice(len(gan), n, replace=False)], test[order[:n]])}
            for kind, (a, b) in pairs.items():
                rows[kind].append((frechet_distance(a, b), *fid_interval(a, b, resamples=resamples, seed=seed)))
            if n >= 4 * gan.shape[1]:
                infinities.append(fid_infinity_estimate(*pairs["gan"], seed=seed))
        cells = [f"{n}"]
        for kind in ("real", "gan"):
            fids, lows, highs = (np.array(column) for column in zip(*rows[kind]))
            cells += [f"{fids.mean():.1f} ± {fids.std(ddof=1):.1f}", f"{(highs - lows).mean():.1f}",
                      f"{((lows <= fids.mean()) & (fids.mean() <= highs)).mean():.0%}"]
        cells.append(f"{np.mean(infinities):.1f} ± {np.std(infinities, ddof=1):.1f}" if infinities else "n/a")
        print("| " + " | ".join(cells) + " |", flush=True)
    print("\nThe other intervals, shipped GAN vs real (same draws): mean ± sd over seeds, the 95% interval's mean "
          "width (3.92 sd would be exact for a normal spread) and how often it covers the mean")
    print("| N | KID | KID CI width | covers | precision | precision CI width | covers | recall | recall CI width "
          "| covers |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n in sizes:
        columns: list[list[tuple[float, float, float]]] = [[], [], []]
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            order = rng.permutation(len(test))
            a, b = gan[rng.choice(len(gan), n, replace=False)], test[order[:n]]
            kid, _ = kernel_inception_distance(a, b, 1 if n <= 1000 else 10, 1000, seed)
            columns[0].append((kid, *kid_interval(a, b, kid, resamples=resamples, seed=seed)))
            intervals = precision_recall_intervals(a, b, resamples=resamples, seed=seed)
            for column, point, interval in zip(columns[1:], precision_recall(a, b), intervals):
                column.append((point, *interval))
        cells = [f"{n}"]
        for column, digits in zip(columns, (2, 3, 3)):
            points, lows, highs = (np.array(c) for c in zip(*column))
            cells += [f"{points.mean():.{digits}f} ± {points.std(ddof=1):.{digits}f}",
                      f"{(highs - lows).mean():.{digits}f}",
                      f"{((lows <= points.mean()) & (points.mean() <= highs)).mean():.0%}"]
        print("| " + " | ".join(cells) + " |", flush=True)


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


def conditional(per_class: int, samples: int, threads: int, weights: str | None = None) -> None:
    torch.set_num_threads(threads)
    extractor = builtin_feature_extractor(num_threads=threads)
    reference = load_mnist("test").images[:samples]
    print(f"extractor {extractor.name}; {per_class} samples per label (seeds 0..{per_class - 1}); quality: {samples} "
          f"samples (labels cycling 0..9) vs MNIST test[:{samples}]")
    for name, cls in (("gan-conditional", GANGenerator), ("vae-conditional", VAEGenerator)):
        if weights:
            generator = cls.from_pretrained(f"{weights}/{name}", output_size=None, num_threads=threads)
        else:
            generator = builtin_generator(name, output_size=None, num_threads=threads)
        started = time.perf_counter()
        agreement = []
        for label in range(generator.num_classes):
            images = generator.generate(per_class, 0, labels=label, device="cpu", batch_size=500).images
            agreement.append(float((extractor(images)[1].argmax(1) == label).mean()))
        mixed = generator.generate(samples, 0, labels=[i % generator.num_classes for i in range(samples)],
                                   device="cpu").images
        s = score_images(mixed, reference, extractor)
        print(f"\n{name} ({generator.name}): label agreement {np.mean(agreement):.3f}, per class "
              + " ".join(f"{k}:{a:.3f}" for k, a in enumerate(agreement)) + f"; lowest {min(agreement):.3f}")
        low, high = s.fid_ci
        print(f"  FID {s.fid:.1f} (95% CI {low:.1f} to {high:.1f}), KID {s.kid:.2f} ± {s.kid_std:.2f}, "
              f"IS {s.inception_score:.2f} ± {s.inception_score_std:.2f}, precision {s.precision:.3f}, "
              f"recall {s.recall:.3f} | {time.perf_counter() - started:.0f}s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts for the speed table")
    parser.add_argument("--sample-sizes", help="comma-separated N: the FID-vs-sample-size table instead")
    parser.add_argument("--seeds", type=int, default=10, help="--sample-sizes: random draws per N")
    parser.add_argument("--conditional", action="store_true",
                        help="label agreement and quality of the class-conditional built-ins instead")
    parser.add_argument("--per-class", type=int, default=1000, help="--conditional: samples per label")
    parser.add_argument("--weights", help="--conditional: a folder with gan-conditional/ and vae-conditional/")
    args = parser.parse_args(argv)
    if args.conditional:
        conditional(args.per_class, args.samples, args.threads[0], args.weights)
        return
    if args.sample_sizes:
        fid_versus_sample_size([int(n) for n in args.sample_sizes.split(",")], args.seeds, args.threads[0])
        return
    quality(args.samples, args.threads[0])
    speed(args.threads)


if __name__ == "__main__":
    main()
