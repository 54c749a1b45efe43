"""Train a model and save it with its record: the flows behind ``synthguard train`` and ``synthguard eval images``.

Each function checks the output folder, reads the data, trains, saves with ``save_pretrained`` and writes
``training.json`` (``records.write_training_record``). ``command`` is what the record names as the call that made
the model (the CLI passes its command line; a Python caller may pass anything that says how to repeat the run).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from synthguard.core.media import MediaKind, decode_image, sniff
from synthguard.core.torch_utils import load_model
from synthguard.errors import InputError
from synthguard.models.detector import to_luma
from synthguard.models.gan import DCGANGenerator
from synthguard.training.architecture import architecture_of
from synthguard.training.backbone import train_backbone_detector
from synthguard.training.data import load_images, load_mnist
from synthguard.training.detector import DetectorTrainConfig, train_detector
from synthguard.training.evaluation import (
    ClassifierTraining,
    GenerativeScores,
    builtin_feature_extractor,
    score_images,
    train_mnist_classifier,
)
from synthguard.training.gan import GANTrainConfig, GANTraining, train_gan
from synthguard.training.records import check_output_folder, write_training_record
from synthguard.training.vae import VAETrainConfig, VAETraining, train_vae

Log = Callable[[str], None]


def _quiet(_line: str) -> None:
    """The default ``log``: say nothing."""


def train_and_save_gan(data: str | os.PathLike, output: str | os.PathLike, *, config: GANTrainConfig | None = None,
                       model_config: Mapping[str, Any] | None = None, epochs: int = 5, batch_size: int = 128,
                       seed: int = 0, device: str = "auto", num_threads: int | None = None, limit: int | None = None,
                       overwrite: bool = False, command: str = "", log: Log = _quiet,
                       conditional: bool = False, init: str | os.PathLike | None = None) -> GANTraining:
    """``train_gan`` on ``data`` ("mnist" or a folder of images, see ``data.load_images``), class coverage logged
    with the shipped MNIST classifier; the generator saved to ``output``. Returns the ``GANTraining``.

    ``conditional``: a class-conditional GAN on MNIST's labels (``data`` must be "mnist"), label agreement logged
    with the same classifier. ``init``: a saved generator's folder to continue training from (its architecture; a
    fresh discriminator)."""

    output = check_output_folder(output, overwrite=overwrite)
    start = load_model(DCGANGenerator, init) if init is not None else None
    images, labels = _training_images(data, limit, conditional)
    config = config or GANTrainConfig()
    result = train_gan(images, config, model_config=model_config, epochs=epochs, batch_size=batch_size, seed=seed,
                       device=device, num_threads=num_threads,
                       classifier=builtin_feature_extractor(num_threads=num_threads), log=log, labels=labels,
                       init=start)
    result.generator.save_pretrained(output)
    write_training_record(output, {"command": command, "config": asdict(config),
                                   "model_config": architecture_of(result.generator),
                                   "history": [asdict(e) for e in result.history], "images": len(images),
                                   **({"conditional": True} if conditional else {})})
    return result


def _training_images(data: str | os.PathLike, limit: int | None, conditional: bool
                     ) -> tuple[np.ndarray, np.ndarray | None]:
    """The training images and, for a conditional model, their labels (MNIST's: a folder of images has none)."""
    if not conditional:
        return load_images(data, limit=limit), None
    if str(data) != "mnist":
        raise InputError(f"a class-conditional model trains on labelled MNIST only ('mnist'), not {str(data)!r}: a "
                         "folder of images has no labels")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0):
        raise InputError(f"limit must be a positive integer or None, not {limit!r}")
    train = load_mnist("train")
    return train.images[:limit], train.labels[:limit]


def train_and_save_vae(data: str | os.PathLike, output: str | os.PathLike, *, config: VAETrainConfig | None = None,
                       model_config: Mapping[str, Any] | None = None, epochs: int = 5, batch_size: int = 128,
                       seed: int = 0, device: str = "auto", num_threads: int | None = None, limit: int | None = None,
                       overwrite: bool = False, command: str = "", log: Log = _quiet,
                       conditional: bool = False) -> VAETraining:
    """``train_vae`` on ``data`` ("mnist" or a folder of images); the model saved to ``output``. Returns the
    ``VAETraining``. ``conditional``: a conditional VAE on MNIST's labels (``data`` must be "mnist")."""

    output = check_output_folder(output, overwrite=overwrite)
    images, labels = _training_images(data, limit, conditional)
    config = config or VAETrainConfig()
    result = train_vae(images, config, model_config=model_config, epochs=epochs, batch_size=batch_size, seed=seed,
                       device=device, num_threads=num_threads, log=log, labels=labels)
    result.model.save_pretrained(output)
    write_training_record(output, {"command": command, "config": asdict(config),
                                   "model_config": architecture_of(result.model),
                                   "history": [asdict(e) for e in result.history], "images": len(images),
                                   **({"conditional": True} if conditional else {})})
    return result


def train_and_save_classifier(output: str | os.PathLike, *, data: str = "mnist",
                              model_config: Mapping[str, Any] | None = None, epochs: int = 5, batch_size: int = 128,
                              seed: int = 0, device: str = "auto", num_threads: int | None = None,
                              limit: int | None = None, overwrite: bool = False, command: str = "",
                              log: Log = _quiet) -> ClassifierTraining:
    """``train_mnist_classifier`` on the first ``limit`` MNIST training images, tested on all of MNIST test; saved
    to ``output``. ``data`` must be "mnist": the classifier needs labels. Returns the ``ClassifierTraining``."""

    if str(data) != "mnist":
        raise InputError(f"the classifier trains on labelled MNIST only ('mnist'), not {str(data)!r}")
    output = check_output_folder(output, overwrite=overwrite)
    train, test = load_mnist("train"), load_mnist("test")
    result = train_mnist_classifier(train.images[:limit], train.labels[:limit], test.images, test.labels,
                                    model_config=model_config, epochs=epochs, batch_size=batch_size, seed=seed,
                                    device=device, num_threads=num_threads, log=log)
    result.model.save_pretrained(output)
    write_training_record(output, {"command": command, "test_accuracy": result.test_accuracy,
                                   "epoch_losses": result.epoch_losses,
                                   "model_config": architecture_of(result.model)})
    return result


# ------------------------------------------------------------------------------------------- detector on folders
@dataclass(frozen=True)
class DetectorRun:
    """A detector trained on folders and saved: the detector (a ``PatchDetector``, or a ``BackboneDetector`` with a
    backbone), where it was saved, and the files that were skipped as unreadable ("path: reason")."""

    detector: Any
    folder: Path
    skipped: tuple[str, ...]


def read_image_folder(folder: str | os.PathLike, limit: int | None = None) -> tuple[list[np.ndarray], list[str]]:
    """Every readable image in ``folder`` (sorted by name, not recursive, at most ``limit``) as uint8 RGB, and a
    "path: reason" line for each file that claims to be an image but does not decode. At least 2 are needed (some
    are held out for calibration)."""

    folder = Path(folder)
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


def holdout_split(images: Sequence, holdout: float, rng: np.random.Generator) -> tuple[list, list]:
    """(train, held out): a random ``holdout`` share of ``images`` (at least one) held out."""
    if not 0 < holdout < 1:
        raise InputError(f"holdout must be a share between 0 and 1, not {holdout!r}")
    order = rng.permutation(len(images))
    cut = max(1, round(holdout * len(images)))
    return [images[i] for i in order[cut:]], [images[i] for i in order[:cut]]


def train_and_save_detector(real_dirs: Sequence[str | os.PathLike], fake_dirs: Sequence[str | os.PathLike],
                            output: str | os.PathLike, *, config: DetectorTrainConfig | None = None,
                            holdout: float = 0.2,
                            backbone: str | None = None, limit: int | None = None, seed: int = 0,
                            num_threads: int | None = None, overwrite: bool = False, command: str = "",
                            log: Log = _quiet) -> DetectorRun:
    """Train a detector on folders of real images and of fakes (one generator family per folder, named after it),
    calibrated on a held-out ``holdout`` share of each folder, and save it to ``output``.

    Without ``backbone``: the patch and global discriminator views (``detector.train_detector`` with ``config``, a
    ``DetectorTrainConfig``; the views' architecture is their classes' defaults). With ``backbone`` (a transformers
    vision model's hub id or folder): a linear probe on its features, calibrated for ``config.target_fpr``.
    Unreadable files are skipped and logged."""

    output = check_output_folder(output, overwrite=overwrite)
    config = config or DetectorTrainConfig()
    rng = np.random.default_rng(seed)
    real_train, real_cal, fakes_train, fakes_cal, skipped = [], [], {}, {}, []
    for folder in real_dirs:
        images, bad = read_image_folder(folder, limit)
        skipped += bad
        train, held = holdout_split(images, holdout, rng)
        real_train += train
        real_cal += held
    for folder in fake_dirs:
        images, bad = read_image_folder(folder, limit)
        skipped += bad
        family = Path(folder).resolve().name or "fake"
        if family in fakes_train:
            raise InputError(f"two fake folders are named {family!r}: the folder name is the family's name")
        fakes_train[family], fakes_cal[family] = holdout_split(images, holdout, rng)
    for line in skipped:
        log(f"skipped {line}")
    if backbone:
        detector = train_backbone_detector(backbone, real_train, [im for v in fakes_train.values() for im in v],
                                           real_cal, [im for v in fakes_cal.values() for im in v],
                                           target_fpr=config.target_fpr, num_threads=num_threads)
        detector.save_pretrained(output)
        record = {"command": command, "backbone": backbone, "skipped": skipped,
                  "calibration": asdict(detector.calibration)}
    else:
        detector, training = train_detector(
            [to_luma(im) for im in real_train], {k: [to_luma(im) for im in v] for k, v in fakes_train.items()},
            calibration_real=[to_luma(im) for im in real_cal],
            calibration_fakes_by_family={k: [to_luma(im) for im in v] for k, v in fakes_cal.items()},
            config=config, seed=seed, num_threads=num_threads, log=log)
        detector.save_pretrained(output)
        record = {"command": command, "training": asdict(training), "skipped": skipped}
    write_training_record(output, record)
    return DetectorRun(detector=detector, folder=output, skipped=tuple(skipped))


# ------------------------------------------------------------------------------------------------------ eval
def evaluate_images(real: str | os.PathLike, fake: str | os.PathLike, *, limit: int = 2000,
                    num_threads: int | None = None, resamples: int = 200, fid_infinity: bool = False,
                    seed: int = 0) -> GenerativeScores:
    """FID, KID, IS and precision / recall (``evaluation.score_images``, the shipped MNIST feature extractor) of
    at most ``limit`` images of the folder ``fake`` against ``real`` ("mnist": its test split, or a folder), with
    95 % intervals from ``resamples`` bootstrap draws seeded by ``seed`` (0: none), the sample-size warnings, and
    with ``fid_infinity`` Chong & Forsyth's FID_inf."""

    reference = load_images(real, split="test", limit=limit)
    generated = load_images(fake, limit=limit)
    return score_images(generated, reference, builtin_feature_extractor(num_threads=num_threads),
                        resamples=resamples, fid_infinity=fid_infinity, seed=seed)


# ---------------------------------------------------------------------------------------- the chorale audio model
def train_and_save_audio(output: str | os.PathLike, *, data: str | os.PathLike | None = None,
                         config: Any = None, model_config: Mapping[str, Any] | None = None, device: str = "cpu",
                         num_threads: int | None = None, limit: int | None = None, overwrite: bool = False,
                         command: str = "", log: Log = _quiet) -> Any:
    """``training.audio.train_audio`` on music21's Bach chorales (``data=None``) or a folder of MusicXML / MIDI
    files (the first ``limit`` usable pieces); the model saved to ``output`` with its ``training.json``. Returns the
    ``AudioTraining``."""
    from synthguard.training.audio import AudioTrainConfig, load_chorales, train_audio, training_record  # noqa: PLC0415

    output = check_output_folder(output, overwrite=overwrite)
    config = config or AudioTrainConfig()
    pieces = load_chorales(data, limit=limit, progress=log)
    result = train_audio(pieces, config, model_config=dict(model_config or {}), device=device,
                         num_threads=num_threads, log=log)
    result.model.save_pretrained(output)
    source = "music21 corpus: Bach chorales" if data is None else Path(data).name
    write_training_record(output, training_record(result, config, command=command, data=source, pieces=len(pieces)))
    return result
