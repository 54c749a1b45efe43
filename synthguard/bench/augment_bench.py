"""What synthetic augmentation is worth: an MNIST classifier trained on a stratified 1 %, 5 % and 10 % of the real
training set, with and without N synthetic images per class from a class-conditional generator, scored on the
full MNIST test set (10,000 images).

Every run trains the same network as ``training.evaluation.train_mnist_classifier`` (``MnistClassifier``, Adam,
cross-entropy) for the same fixed number of optimiser steps, so "with" and "without" differ in their data only,
not in how long they train (epochs would give the larger set more steps). Over ``seeds`` training seeds (seed
``s`` draws the real subset, the initial weights and the batch order), the table gives the mean test accuracy and
its 95 % Student t-interval; the difference with minus without is paired by seed (same real subset, same initial
weights) and has its own t-interval. The Wilson interval of one run's accuracy (10,000 test images) shows how much
of the spread the test set alone explains.

The synthetic images are either read from an ``augment`` folder (the stamped files users get, 256 px with the
watermark, made grey and area-downsized to 28x28 as the classifier reads them) or generated in memory at the
model's native 28 px with augment's seed scheme (class K, image i: seed + K * N + i), i.e. the same digits before
upsampling and watermarking. One synthetic set serves every run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from synthguard.core.torch_utils import torch_threads
from synthguard.errors import InputError
from synthguard.models.mnist_classifier import MnistClassifier

DEFAULT_FRACTIONS = (0.01, 0.05, 0.10)
DEFAULT_PER_CLASS = 100
DEFAULT_SEEDS = 3
DEFAULT_STEPS = 250
BATCH_SIZE = 64
LEARNING_RATE = 1e-3

# Two-sided 95 % quantiles of Student's t, t_{0.975, df}, for df = 1..30 (standard tables).
_T975 = (12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281, 2.2010, 2.1788, 2.1604,
         2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860, 2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555,
         2.0518, 2.0484, 2.0452, 2.0423)
Z975 = 1.959964


def t_quantile_975(df: int) -> float:
    """t_{0.975, df}: the table for df <= 30, past it the Cornish-Fisher expansion in 1/df around the normal
    quantile (error below 1e-4 there)."""
    if isinstance(df, bool) or not isinstance(df, int) or df < 1:
        raise InputError(f"degrees of freedom must be an integer >= 1, not {df!r}")
    if df <= len(_T975):
        return _T975[df - 1]
    z = Z975
    return (z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3))


@dataclass(frozen=True)
class Interval:
    """A mean over ``n`` values and its two-sided 95 % interval (None bounds when ``n`` < 2)."""

    mean: float
    low: float | None
    high: float | None
    n: int

    @property
    def half_width(self) -> float | None:
        return None if self.low is None else (self.high - self.low) / 2

    def to_dict(self) -> dict:
        return {"mean": self.mean, "low": self.low, "high": self.high, "n": self.n}

    def describe(self) -> tuple[str, ...]:
        if self.low is None:
            return (f"{self.mean:.4f} (one value: no interval)",)
        return (f"{self.mean:.4f} [{self.low:.4f}, {self.high:.4f}] (95 % t-interval over {self.n})",)


def t_interval(values: Sequence[float]) -> Interval:
    """Mean and 95 % Student t-interval, mean +- t_{0.975, n-1} * s / sqrt(n) (s the sample standard deviation)."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or len(x) == 0 or not np.isfinite(x).all():
        raise InputError(f"need one or more finite values, not {values!r}")
    mean = float(x.mean())
    if len(x) < 2:
        return Interval(mean, None, None, 1)
    half = t_quantile_975(len(x) - 1) * float(x.std(ddof=1)) / math.sqrt(len(x))
    return Interval(mean, mean - half, mean + half, len(x))


def wilson_interval(successes: int, n: int) -> tuple[float, float]:
    """The 95 % Wilson score interval of a binomial proportion ``successes / n``."""
    if n < 1 or not 0 <= successes <= n:
        raise InputError(f"need 0 <= successes <= n and n >= 1, not {successes}/{n}")
    p, z2 = successes / n, Z975**2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z975 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def stratified_subset(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Indices of a seeded stratified sample: round(fraction * n_k) of each class k (at least one), sorted."""
    labels = np.asarray(labels)
    if not isinstance(fraction, int | float) or isinstance(fraction, bool) or not 0 < fraction <= 1:
        raise InputError(f"fraction must be in (0, 1], not {fraction!r}")
    if labels.ndim != 1 or len(labels) == 0:
        raise InputError("need a non-empty 1-D array of labels")
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        take = max(1, round(fraction * len(members)))
        chosen.append(rng.choice(members, take, replace=False))
    return np.sort(np.concatenate(chosen))


@dataclass(frozen=True)
class SyntheticSet:
    """Labelled synthetic digits: uint8 (N, 28, 28) ``images``, int64 (N,) ``labels``; ``model`` made them,
    ``how`` says how they were obtained."""

    name: str  # the table's name for the set, e.g. "gan"
    images: np.ndarray
    labels: np.ndarray
    model: str
    how: str

    @property
    def per_class(self) -> int:
        return int(np.bincount(self.labels).max()) if len(self.labels) else 0

    def to_dict(self) -> dict:
        return {"name": self.name, "images": len(self.images), "per_class": self.per_class, "model": self.model,
                "how": self.how}


def synthetic_from_builtin(backend: str, per_class: int, *, seed: int = 0, classes: Sequence[int] = range(10),
                           threads: int | None = 1) -> SyntheticSet:
    """``per_class`` images of each class from the built-in ``<backend>-conditional`` at its native 28 px, seeds
    as ``augment`` gives them (class K, image i: seed + K * per_class + i)."""
    from synthguard.generate.backends import builtin_generator  # noqa: PLC0415

    generator = builtin_generator(f"{backend}-conditional", output_size=None, num_threads=threads)
    images, labels = [], []
    for label in classes:
        result = generator.generate(per_class, seed + label * per_class, labels=label, device="cpu")
        images += result.images
        labels += [label] * per_class
    how = f"generated in memory at native 28 px, seeds {seed} + K x {per_class} + i"
    return SyntheticSet(backend, np.stack(images).astype(np.uint8), np.asarray(labels, np.int64),
                        f"{generator.name} {generator.version}", how)


def synthetic_from_folder(folder: Path, per_class: int | None = None) -> SyntheticSet:
    """The images of an ``augment`` output folder (its dataset.json lists them), the first ``per_class`` of each
    class (None: all), made grey and area-downsized to 28x28."""
    import json  # noqa: PLC0415

    from synthguard.core.media import decode_image  # noqa: PLC0415
    from synthguard.training.evaluation import to_mnist_input  # noqa: PLC0415

    folder = Path(folder)
    try:
        facts = json.loads((folder / "dataset.json").read_text(encoding="utf-8"))
        listed = [(int(c["label"]), [str(f) for f in c["files"]]) for c in facts["classes"]]
        model = f"{facts['model']['name']} {facts['model']['version']}"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{folder} is not a dataset written by augment (its dataset.json: {exc})") from None
    images, labels = [], []
    for label, names in listed:
        for name in names[:per_class]:
            path = folder / name
            if folder.resolve() not in path.resolve().parents:
                raise InputError(f"{folder}/dataset.json lists a file outside the folder: {name!r}")
            images.append(decode_image(path, keep_rgb=True).rgb)
            labels.append(label)
    if not images:
        raise InputError(f"{folder} lists no images")
    counts = np.bincount(labels)
    if per_class is not None and counts[counts > 0].min() < per_class:
        raise InputError(f"{folder} has fewer than {per_class} images in some class ({counts.tolist()})")
    how = f"read from {folder.name}/ (stamped files, grey, area-downsized to 28x28)"
    return SyntheticSet(f"{facts['model']['name'].rsplit('/', 1)[-1]}", to_mnist_input(images),
                        np.asarray(labels, np.int64), model, how)


def train_classifier(images: np.ndarray, labels: np.ndarray, *, steps: int, seed: int,
                     batch_size: int = BATCH_SIZE, lr: float = LEARNING_RATE) -> MnistClassifier:
    """``train_mnist_classifier``'s network and optimiser for exactly ``steps`` Adam steps of ``batch_size``
    (passes over a seeded shuffle of uint8 (N, 28, 28) ``images``), on the CPU."""
    torch.manual_seed(seed)
    model = MnistClassifier()
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    x_all = torch.from_numpy(np.ascontiguousarray(images))
    y_all = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    order = torch.Generator().manual_seed(seed)
    model.train()
    done = 0
    while done < steps:
        for index in torch.randperm(len(x_all), generator=order).split(batch_size):
            if done == steps:
                break
            x = (x_all[index].float() / 255).unsqueeze(1)  # (B, 1, 28, 28)
            loss = F.cross_entropy(model(x), y_all[index])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            done += 1
    return model.eval()


def correct_predictions(model: MnistClassifier, images: np.ndarray, labels: np.ndarray,
                        batch_size: int = 500) -> int:
    correct = 0
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size])).float().div(255)
            predicted = model(x.unsqueeze(1)).argmax(1).numpy()
            correct += int((predicted == labels[start:start + batch_size]).sum())
    return correct


@dataclass(frozen=True)
class AugmentRow:
    """One table row: a real fraction, with one synthetic set or none, over the training seeds."""

    fraction: float
    real_images: int
    synthetic: str | None  # the synthetic set's name; None: real images only
    synthetic_per_class: int
    accuracies: tuple[float, ...]  # one per training seed
    accuracy: Interval
    test_images: int

    @property
    def one_run_interval(self) -> tuple[float, float]:
        """The Wilson interval of one run at the mean accuracy (the test set's own sampling error)."""
        return wilson_interval(round(self.accuracy.mean * self.test_images), self.test_images)

    def to_dict(self) -> dict:
        return {"fraction": self.fraction, "real_images": self.real_images, "synthetic": self.synthetic,
                "synthetic_per_class": self.synthetic_per_class, "accuracies": list(self.accuracies),
                "accuracy": self.accuracy.to_dict(), "one_run_wilson_95": list(self.one_run_interval),
                "test_images": self.test_images}


@dataclass(frozen=True)
class AugmentDelta:
    """With minus without, per seed (paired), for one fraction and one synthetic set."""

    fraction: float
    synthetic: str
    differences: tuple[float, ...]
    difference: Interval

    def to_dict(self) -> dict:
        return {"fraction": self.fraction, "synthetic": self.synthetic, "differences": list(self.differences),
                "difference": self.difference.to_dict()}


@dataclass(frozen=True)
class AugmentBenchResult:
    rows: tuple[AugmentRow, ...]
    deltas: tuple[AugmentDelta, ...]
    synthetic: tuple[SyntheticSet, ...]
    seeds: tuple[int, ...]
    steps: int
    batch_size: int
    threads: int | None
    seconds: float

    def to_dict(self) -> dict:
        return {"rows": [r.to_dict() for r in self.rows], "deltas": [d.to_dict() for d in self.deltas],
                "synthetic": [s.to_dict() for s in self.synthetic], "seeds": list(self.seeds), "steps": self.steps,
                "batch_size": self.batch_size, "learning_rate": LEARNING_RATE, "threads": self.threads,
                "seconds": self.seconds, "interval": "mean and 95 % Student t-interval over the training seeds; "
                "differences paired by seed"}

    def describe(self) -> tuple[str, ...]:
        w = max([8, *(len(s.name) for s in self.synthetic)])
        lines = [f"{'fraction':>8} {'real':>6} {'synth/class':>11} {'backend':<{w}} {'accuracy':>8} "
                 f"{'95% CI':>17} {'one run +-':>10} {'seeds':>5}"]
        for r in self.rows:
            ci = _ci(r.accuracy)
            low, high = r.one_run_interval
            lines.append(f"{100 * r.fraction:>7.0f}% {r.real_images:>6} {r.synthetic_per_class:>11} "
                         f"{r.synthetic or 'none':<{w}} {r.accuracy.mean:>8.4f} {ci:>17} {(high - low) / 2:>10.4f} "
                         f"{r.accuracy.n:>5}")
        lines.append("")
        lines.append(f"{'fraction':>8} {'backend':<{w}} {'with - without':>14} {'95% CI (paired)':>17}")
        for d in self.deltas:
            lines.append(f"{100 * d.fraction:>7.0f}% {d.synthetic:<{w}} {d.difference.mean:>+14.4f} "
                         f"{_ci(d.difference, signed=True):>17}")
        lines.append("")
        lines.append(f"every run: {self.steps} Adam steps of {self.batch_size} images (lr {LEARNING_RATE}), "
                     f"MnistClassifier, CPU; seeds {list(self.seeds)}; {self.seconds:.0f} s")
        lines += [f"synthetic {s.name}: {s.model}, {s.per_class} per class, {s.how}" for s in self.synthetic]
        lines.append("one run +-: half-width of the 95 % Wilson interval of a single run's accuracy on the test set")
        return tuple(lines)


def _ci(interval: Interval, signed: bool = False) -> str:
    if interval.low is None:
        return "n/a"
    fmt = "{:+.4f}" if signed else "{:.4f}"
    return f"[{fmt.format(interval.low)}, {fmt.format(interval.high)}]"


def run_augment_benchmark(train_images: np.ndarray, train_labels: np.ndarray, test_images: np.ndarray,
                          test_labels: np.ndarray, synthetic: Sequence[SyntheticSet], *,
                          fractions: Sequence[float] = DEFAULT_FRACTIONS, seeds: int = DEFAULT_SEEDS,
                          steps: int = DEFAULT_STEPS, batch_size: int = BATCH_SIZE, threads: int | None = 1,
                          log: Callable[[str], None] | None = None) -> AugmentBenchResult:
    """Train and score every (fraction, synthetic set or none, seed); see the module comment."""
    for name, images, labels in (("train", train_images, train_labels), ("test", test_images, test_labels),
                                 *((s.name, s.images, s.labels) for s in synthetic)):
        _check_split(name, images, labels)
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise InputError(f"seeds must be an integer >= 1, not {seeds!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InputError(f"steps must be an integer >= 1, not {steps!r}")
    test_labels = np.asarray(test_labels, np.int64)
    started = time.perf_counter()
    rows, deltas = [], []
    variants: list[SyntheticSet | None] = [None, *synthetic]
    with torch_threads(threads):
        for fraction in fractions:
            accuracy: dict[str | None, list[float]] = {}
            real_count = 0
            for variant in variants:
                key = variant.name if variant is not None else None
                accuracy[key] = []
                for seed in range(seeds):
                    index = stratified_subset(train_labels, fraction, seed)
                    real_count = len(index)
                    images, labels = train_images[index], np.asarray(train_labels)[index]
                    if variant is not None:
                        images = np.concatenate([images, variant.images])
                        labels = np.concatenate([labels, variant.labels])
                    model = train_classifier(images, labels, steps=steps, seed=seed, batch_size=batch_size)
                    accuracy[key].append(correct_predictions(model, test_images, test_labels) / len(test_labels))
                    if log:
                        log(f"fraction {fraction:g} ({real_count} real) + {key or 'none'}, seed {seed}: "
                            f"accuracy {accuracy[key][-1]:.4f} ({time.perf_counter() - started:.0f} s)")
                rows.append(AugmentRow(fraction, real_count, key, variant.per_class if variant else 0,
                                       tuple(accuracy[key]), t_interval(accuracy[key]), len(test_labels)))
            for variant in synthetic:
                diffs = tuple(w - b for w, b in zip(accuracy[variant.name], accuracy[None], strict=True))
                deltas.append(AugmentDelta(fraction, variant.name, diffs, t_interval(diffs)))
    return AugmentBenchResult(tuple(rows), tuple(deltas), tuple(synthetic), tuple(range(seeds)), steps, batch_size,
                              threads, time.perf_counter() - started)


def _check_split(name: str, images, labels) -> None:
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (
            28, 28):
        raise InputError(f"{name} images must be a uint8 (N, 28, 28) array, not {getattr(images, 'shape', images)}")
    if len(images) == 0 or len(images) != len(labels):
        raise InputError(f"{name}: {len(images)} images and {len(labels)} labels")


def run(*, backends: Sequence[str] = ("gan", "vae"), from_dirs: Sequence[Path] = (),
        per_class: int = DEFAULT_PER_CLASS, fractions: Sequence[float] = DEFAULT_FRACTIONS, seeds: int = DEFAULT_SEEDS,
        steps: int = DEFAULT_STEPS, threads: int | None = 1, data: Path | None = None, synthetic_seed: int = 0,
        log: Callable[[str], None] | None = None) -> AugmentBenchResult:
    """The benchmark on MNIST from the dataset cache (or ``data``): synthetic sets from the built-in conditional
    ``backends`` (in memory) and from ``augment`` folders ``from_dirs``."""
    from synthguard.training.data import load_mnist  # noqa: PLC0415

    train, test = load_mnist("train", data), load_mnist("test", data)
    sets: list[SyntheticSet] = []
    with torch_threads(threads):
        for backend in backends:
            sets.append(synthetic_from_builtin(backend, per_class, seed=synthetic_seed, threads=threads))
    for folder in from_dirs:
        sets.append(synthetic_from_folder(folder, per_class))
    names = [s.name for s in sets]
    if len(set(names)) != len(names):
        raise InputError(f"two synthetic sets share a name: {names}")
    if log:
        log(f"MNIST: {len(train.images)} train, {len(test.images)} test; synthetic: "
            + (", ".join(f"{s.name} ({len(s.images)})" for s in sets) or "none"))
    return run_augment_benchmark(train.images, train.labels, test.images, test.labels, sets, fractions=fractions,
                                 seeds=seeds, steps=steps, threads=threads, log=log)

