"""Augment a dataset: a class-conditional generator's images written as an ImageFolder dataset (one folder per
class, named by the digit), every file stamped by ``generate_images`` (watermark, signed manifest, ledger), then a
dataset card (``README.md``) and its machine-readable twin (``dataset.json``).

One function over a typed request, ``augment_dataset(AugmentRequest)``, written as numbered steps. Seeds: image
``i`` of class ``K`` has seed ``seed + K * per_class + i``, so a class's images do not depend on which other classes
were asked for, and ``generate --label K --seed <that> -n 1`` makes one again. The label agreement on the card is
measured on the written files read back from disk (grey, area-downsized to 28x28) by the shipped MNIST classifier.

Atomicity: every image and both card files are written atomically (a temporary file renamed into place); the card
files are written last, so a folder with a ``dataset.json`` holds a finished dataset. A run that fails or is
interrupted removes the files it wrote (their ledger records stay: they were signed).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.resources import as_file, files
from pathlib import Path

import numpy as np
import torch

from synthguard import __version__
from synthguard.core.fileio import write_atomic
from synthguard.core.home import Home
from synthguard.core.media import decode_image
from synthguard.core.torch_utils import load_model, resize_image, torch_threads
from synthguard.errors import Hint, InputError
from synthguard.generate.base import DEFAULT_OUTPUT_SIZE, MAX_SEED, ProgressCallback
from synthguard.generate.runs import MIN_MARKABLE_SIDE, ImageFormat, ImageRequest, generate_images
from synthguard.models.mnist_classifier import MnistClassifier
from synthguard.stamp import IdentitySource, Stamper

AUGMENT_BACKENDS = ("gan", "vae")
MAX_PER_CLASS = 1_000_000
CARD = "README.md"
FACTS = "dataset.json"
MNIST_LICENCE = ("the built-in generators were trained on the MNIST training set (LeCun, Cortes and Burges), "
                 "distributed under CC BY-SA 3.0: attribute MNIST where you share them")


def _check_int(name: str, value, minimum: int, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or (maximum and value > maximum):
        bound = f"in [{minimum}, {maximum}]" if maximum else f"of at least {minimum}"
        raise InputError(f"{name} must be an integer {bound}, not {value!r}")


@dataclass(frozen=True, kw_only=True)
class AugmentRequest:
    """A synthetic labelled dataset: ``per_class`` images of each of ``classes`` (None: every class the model
    has) from a class-conditional GAN or VAE, written into ``output_dir/<class>/``. Checked when made; the
    classes against the model once it has loaded."""

    output_dir: Path
    per_class: int
    backend: str = "gan"  # "gan" or "vae": the built-in "<backend>-conditional" weights unless ``model`` is given
    model: str | None = None  # a class-conditional save_pretrained folder of that backend
    classes: tuple[int, ...] | None = None
    seed: int = 0  # class K, image i: seed + K * per_class + i
    fmt: ImageFormat = ImageFormat.PNG
    size: int = DEFAULT_OUTPUT_SIZE  # output side in pixels (the watermark needs MIN_MARKABLE_SIDE or more)
    device: str = "auto"
    batch_size: int = 64
    threads: int | None = None
    workers: int = 2
    overwrite: bool = False  # write into a non-empty folder (replacing an earlier dataset written there)

    def __post_init__(self):
        object.__setattr__(self, "output_dir", Path(self.output_dir))
        object.__setattr__(self, "fmt", ImageFormat.parse(self.fmt))
        if self.backend not in AUGMENT_BACKENDS:
            raise InputError(f"augmentation needs a class-conditional gan or vae, not backend {self.backend!r}")
        _check_int("per_class", self.per_class, 1, MAX_PER_CLASS)
        _check_int("size", self.size, MIN_MARKABLE_SIDE, 8192)
        if self.classes is not None:
            if isinstance(self.classes, str | bytes) or not isinstance(self.classes, Sequence) or not self.classes:
                raise InputError(f"classes must be a non-empty sequence of class indices, not {self.classes!r}")
            for label in self.classes:
                _check_int("a class", label, 0)
            if len(set(self.classes)) != len(self.classes):
                raise InputError(f"classes are listed twice: {list(self.classes)}")
            object.__setattr__(self, "classes", tuple(sorted(self.classes)))
        _check_int("seed", self.seed, 0, MAX_SEED)

    def seeds_of(self, label: int) -> range:
        """The seeds of class ``label``'s images."""
        start = self.seed + label * self.per_class
        return range(start, start + self.per_class)


@dataclass(frozen=True)
class ClassSummary:
    """One class folder: its label, the files written, their seeds and the classifier's agreement with the label."""

    label: int
    folder: str  # relative to the dataset folder
    files: tuple[str, ...]  # relative to the dataset folder
    seeds: range
    label_agreement: float
    predicted: dict[int, int]  # the classifier's reading of the files: digit -> count

    def to_dict(self) -> dict:
        return {"label": self.label, "folder": self.folder, "count": len(self.files),
                "seeds": {"first": self.seeds.start, "last": self.seeds.stop - 1}, "label_agreement":
                self.label_agreement, "predicted": {str(k): v for k, v in sorted(self.predicted.items())},
                "files": list(self.files)}


@dataclass(frozen=True)
class AugmentReport:
    """What ``augment_dataset`` wrote and measured."""

    output_dir: Path
    classes: tuple[ClassSummary, ...]
    model: str
    version: str
    config_hash: str
    num_classes: int  # the classes the model knows
    native_size: int  # the model's own image side, upsampled to ``size``
    builtin: bool  # the shipped "<backend>-conditional" weights (else the request's model)
    backend: str
    modes: tuple[str, ...]  # the PIL modes of the written files, as decoded ("L": grey)
    classifier: str  # the name of the classifier that measured the label agreement (architecture @ weight hash)
    label_agreement: float  # over every file
    seed: int
    per_class: int
    size: int
    fmt: ImageFormat
    signer: str
    device: str
    card: Path
    facts: Path
    created: str  # ISO 8601 UTC
    warnings: tuple[str, ...] = ()
    seconds: dict = field(default_factory=dict)  # "generate" (sampling and stamping), "label_check"

    @property
    def images(self) -> int:
        return sum(len(c.files) for c in self.classes)

    def to_dict(self) -> dict:
        return {"output_dir": str(self.output_dir), **self.facts_dict(), "device": self.device,
                "warnings": list(self.warnings), "seconds": self.seconds, "card": str(self.card),
                "facts": str(self.facts)}

    def facts_dict(self) -> dict:
        """What ``dataset.json`` holds: the facts of the card, with no local path."""
        return {"images": self.images, "per_class": self.per_class,
                "classes": [c.to_dict() for c in self.classes], "model": {"name": self.model, "version":
                self.version, "config_hash": self.config_hash, "num_classes": self.num_classes,
                "native_size": self.native_size, "builtin": self.builtin, "backend": self.backend},
                "seed": self.seed, "seed_scheme": "class K, image i: seed + K * per_class + i",
                "size": [self.size, self.size], "format": self.fmt.value, "label_agreement": self.label_agreement,
                "classifier": self.classifier, "label_check": "the written files read back, made grey and "
                "area-downsized to 28x28, classified by the shipped MNIST classifier", "stamped": {
                "watermark": True, "manifest": "signed C2PA, trainedAlgorithmicMedia", "signer": self.signer,
                "ledger": True}, "modes": list(self.modes), "licence": self.licence,
                "synthguard": __version__, "created": self.created}

    @property
    def licence(self) -> str:
        if self.builtin:
            return f"AI-generated; {MNIST_LICENCE}"
        return "AI-generated by a model given to augment: its training data's licence applies (not known here)"

    @property
    def remake(self) -> str:
        """The command that makes one image again (the model as named in the manifest)."""
        model = "" if self.builtin else f" --model {self.model}"
        return f"synthguard generate --backend {self.backend}{model} --label K --seed <seed> -n 1"

    def describe(self) -> tuple[str, ...]:
        per = ", ".join(f"{c.label}: {c.label_agreement:.2f}" for c in self.classes)
        return (f"wrote {self.images} images ({self.per_class} per class, classes "
                f"{_span([c.label for c in self.classes])}) to {self.output_dir}/ with {self.model} {self.version}",
                f"label agreement: {self.label_agreement:.2f} (per class {per}; classifier {self.classifier})",
                f"every image watermarked and signed by {self.signer}; dataset card {self.card}",
                *(f"warning: {w}" for w in self.warnings))


def augment_dataset(request: AugmentRequest, home: Stamper | Home, *, identity: IdentitySource = None,
                    progress: ProgressCallback | None = None) -> AugmentReport:
    """Generate and stamp the request's dataset, measure its label agreement, write its card.

    ``home``: a Home to open a Stamper from (signing as ``identity`` once the model has loaded), or an open
    watermarking Stamper. ``progress(k)``: ``k`` more images stamped."""
    # 1. Check the output folder: refuse a non-empty one unless asked to write into it.
    folder = request.output_dir
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder} is a file; a dataset is written into a folder")
    existed = folder.exists()
    if existed and any(folder.iterdir()) and not request.overwrite:
        raise InputError(f"{folder} exists and is not empty", hint=Hint.OVERWRITE)

    # 2. Load the generator once to check it is class-conditional and knows the classes.
    generator = _conditional_generator(request)
    classes = request.classes if request.classes is not None else tuple(range(generator.num_classes))
    unknown = [k for k in classes if k >= generator.num_classes]
    if unknown:
        raise InputError(f"class{'es' if len(unknown) > 1 else ''} {_span(unknown)} out of range: {generator.name} "
                         f"knows classes 0-{generator.num_classes - 1}")
    if request.seeds_of(max(classes)).stop - 1 > MAX_SEED:
        raise InputError(f"seed {request.seed} is too large for {request.per_class} images per class")
    previous = _previous_files(folder) if existed else set()
    # The card files this run may remove if it fails: new ones, or those of an earlier dataset it writes over.
    card_files = [p for p in (folder / CARD, folder / FACTS) if previous or not p.exists()]
    before = {p.resolve() for k in classes if (folder / str(k)).is_dir() for p in (folder / str(k)).iterdir()}
    created_folders = [p for p in (folder, *(folder / str(k) for k in classes)) if not p.exists()]

    try:
        # 3. Open the stamper once (the identity is made now, the model having loaded); 4. generate and stamp each
        # class through the one image flow.
        started = time.perf_counter()
        reports = []
        with _stamper(home, identity) as stamper:
            for label in classes:
                image_request = ImageRequest(
                    output_dir=folder / str(label), backend=request.backend, model=request.model,
                    n=request.per_class, seed=request.seeds_of(label).start, fmt=request.fmt, device=request.device,
                    batch_size=request.batch_size, size=request.size, threads=request.threads,
                    workers=request.workers, overwrite=request.overwrite, label=label)
                reports.append(generate_images(image_request, stamper, progress=progress))
        generate_seconds = time.perf_counter() - started

        # 5. Remove the files of an earlier dataset here that this one did not replace; note foreign files.
        kept = {f.signed.output.resolve() for report in reports for f in report.files}
        for stale in sorted(previous - kept):
            stale.unlink(missing_ok=True)
        warnings = _foreign_files(folder, classes, kept)

        # 6. Measure the label agreement on the files as written.
        checking = time.perf_counter()
        summaries, classifier, modes = _label_check(folder, classes, reports, request, request.threads)
        label_seconds = time.perf_counter() - checking

        # 7. Write the facts and the card, last.
        agreeing = sum(round(s.label_agreement * len(s.files)) for s in summaries)
        first = reports[0]
        result = AugmentReport(
            output_dir=folder, classes=tuple(summaries), model=first.model, version=first.version,
            config_hash=first.config_hash, num_classes=generator.num_classes,
            native_size=int(generator.model.config.image_size), builtin=request.model is None,
            backend=request.backend, modes=modes, classifier=classifier,
            label_agreement=agreeing / sum(len(s.files) for s in summaries), seed=request.seed,
            per_class=request.per_class, size=request.size, fmt=request.fmt, signer=first.files[0].signed.signer,
            device=first.device, card=folder / CARD, facts=folder / FACTS,
            created=datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat(),
            warnings=tuple(warnings), seconds={"generate": generate_seconds, "label_check": label_seconds})
        write_atomic(folder / CARD, dataset_card(result).encode())
        write_atomic(folder / FACTS, (json.dumps(result.facts_dict(), indent=2) + "\n").encode())
    except BaseException:
        for path in card_files:
            path.unlink(missing_ok=True)
        _remove_new(folder, classes, before, created_folders)
        raise
    return result


def _stamper(target: Stamper | Home, identity: IdentitySource):
    """An open watermarking Stamper (left open), or one opened from the Home (closed after the block)."""
    if isinstance(target, Stamper):
        if target.watermarker is None:
            raise InputError("a dataset's images are all watermarked: the stamper has no image watermarker")
        return contextlib.nullcontext(target)
    if not isinstance(target, Home):
        raise InputError(f"home must be a Home or a Stamper, not {type(target).__name__}")
    return Stamper.from_home(target, identity=identity)


def _conditional_generator(request: AugmentRequest):
    from synthguard.generate.backends import load_generator  # noqa: PLC0415

    generator = load_generator(request.backend, request.model, output_size=None, num_threads=request.threads,
                               conditional=True)
    if not generator.num_classes:
        raise InputError(f"{generator.name} is unconditional: augmentation needs a class-conditional "
                         f"{request.backend} (trained with class labels)")
    return generator


def _previous_files(folder: Path) -> set[Path]:
    """The image files an earlier ``augment_dataset`` listed in ``folder``'s dataset.json (none when unreadable)."""
    try:
        facts = json.loads((folder / FACTS).read_text(encoding="utf-8"))
        names = [name for c in facts["classes"] for name in c["files"]]
    except (OSError, ValueError, KeyError, TypeError):
        return set()
    paths = set()
    for name in names:
        path = (folder / str(name)).resolve()
        if isinstance(name, str) and path.parent.parent == folder.resolve() and path.is_file():
            paths.add(path)
    return paths


def _foreign_files(folder: Path, classes: tuple[int, ...], kept: set[Path]) -> list[str]:
    warnings = []
    for label in classes:
        others = [p for p in (folder / str(label)).iterdir() if p.resolve() not in kept]
        if others:
            warnings.append(f"{folder / str(label)} also holds {len(others)} file{'s' if len(others) > 1 else ''} "
                            "not written by this run (not counted, not checked)")
    return warnings


def _remove_new(folder: Path, classes: tuple[int, ...], before: set[Path], created_folders: list[Path]) -> None:
    """Undo a failed run: the files it added to the class folders, the card files, the folders it made."""
    for label in classes:
        if (folder / str(label)).is_dir():
            for path in (folder / str(label)).iterdir():
                if path.resolve() not in before and path.is_file():
                    path.unlink(missing_ok=True)
    for created in reversed(created_folders):
        if created.is_dir() and not any(created.iterdir()):
            created.rmdir()


def builtin_classifier() -> tuple[MnistClassifier, str]:
    """The shipped MNIST classifier and its name (architecture @ first 12 hex of its weights' sha256, the name
    ``training.evaluation.FeatureExtractor`` gives it too)."""
    with as_file(files("synthguard.models") / "weights" / "mnist-classifier") as path:
        model = load_model(MnistClassifier, path).eval()
    return model, model.weights_name()


def classify_files(paths: Sequence[Path], model: MnistClassifier, *, threads: int | None = None,
                   batch_size: int = 500) -> tuple[np.ndarray, set[str]]:
    """The classifier's digit for each image file, decoded from disk, made grey (channel mean) and area-resized to
    28x28: int64 (N,); and the PIL modes the files decoded in."""
    predictions, modes = [], set()
    with torch_threads(threads), torch.inference_mode():
        for start in range(0, len(paths), batch_size):
            batch = []
            for path in paths[start:start + batch_size]:
                decoded = decode_image(path, keep_rgb=True)
                modes.add(decoded.mode)
                batch.append(resize_image(decoded.rgb.mean(axis=2).round().astype(np.uint8), (28, 28)))
            x = torch.from_numpy(np.stack(batch)).float().div(255).unsqueeze(1)  # (B, 1, 28, 28)
            predictions.append(model.cpu()(x).argmax(1).numpy())
    return np.concatenate(predictions).astype(np.int64), modes


def _label_check(folder: Path, classes: tuple[int, ...], reports, request: AugmentRequest,
                 threads: int | None) -> tuple[list[ClassSummary], str, tuple[str, ...]]:
    model, name = builtin_classifier()
    summaries, modes = [], set()
    for label, report in zip(classes, reports, strict=True):
        paths = [f.signed.output for f in report.files]
        predicted, file_modes = classify_files(paths, model, threads=threads)
        modes |= file_modes
        counts = np.bincount(predicted, minlength=model.config.num_classes)
        summaries.append(ClassSummary(
            label=label, folder=str(label), files=tuple(str(p.relative_to(folder)) for p in paths),
            seeds=request.seeds_of(label), label_agreement=float((predicted == label).mean()),
            predicted={int(k): int(v) for k, v in enumerate(counts) if v}))
    return summaries, name, tuple(sorted(modes))


def _span(labels: Sequence[int]) -> str:
    labels = sorted(labels)
    if len(labels) > 2 and labels == list(range(labels[0], labels[-1] + 1)):
        return f"{labels[0]}-{labels[-1]}"
    return ",".join(str(k) for k in labels)


def _misread(summary: ClassSummary) -> str:
    """The digit the classifier most often read instead of the label, with its count; "-" when none."""
    others = {k: v for k, v in summary.predicted.items() if k != summary.label}
    if not others:
        return "-"
    digit = max(others, key=lambda k: (others[k], -k))
    return f"{digit} ({others[digit]} of {len(summary.files)})"


def dataset_card(report: AugmentReport) -> str:
    """The dataset's README: what is in it, how it was made and remade, what was measured, how to verify it."""
    n, s = report.per_class, report.seed
    rows = "\n".join(f"| {c.label} | `{c.folder}/` | {len(c.files)} | {c.seeds.start}-{c.seeds.stop - 1} | "
                     f"{c.label_agreement:.2f} | {_misread(c)} |" for c in report.classes)
    warnings = "".join(f"\n> warning: {w}\n" for w in report.warnings)
    colour = "grey" if report.modes == ("L",) else f"PIL mode {'/'.join(report.modes)}"
    return f"""# Synthetic handwritten digits from {report.model}

Made by `synthguard augment` (SynthGuard {__version__}) on {report.created}.
{warnings}
- images: {report.images} ({n} per class, classes {_span([c.label for c in report.classes])}), \
{report.fmt.value.upper()}, {report.size}x{report.size} px, {colour}
- layout: ImageFolder, `<class>/<file>`; the folder name is the class the generator was conditioned on
- model: `{report.model}` version {report.version}, config hash `{report.config_hash}` \
({report.num_classes} classes), upsampled from its native {report.native_size} px to {report.size} px
- seeds: image i of class K has seed {s} + K x {n} + i; `{report.remake}` makes it again (before the \
watermark; bit for bit on the CPU with the same torch)
- label agreement: {report.label_agreement:.2f} (the share of images that the shipped MNIST classifier \
`{report.classifier}` reads as the digit they were generated for; measured on the files as written, read back, \
made grey and area-downsized to 28x28)

| class | folder | images | seeds | label agreement | most often read instead |
|---|---|---|---|---|---|
{rows}

## Provenance

Every image carries SynthGuard's invisible image watermark and a signed C2PA manifest that declares it
trainedAlgorithmicMedia, names the model and the image's seed and label, and is signed by {report.signer}; each
is recorded in the signer's ledger. Verify with `synthguard verify <this folder>` (or `synthguard detect <file>`).
This card and `{FACTS}` (the same facts, machine-readable) are not signed.

## Licence

{report.licence}. Keep this card with the images.
"""
