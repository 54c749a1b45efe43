"""Detector benchmark: the shipped (or a given) detector on the held-out test split, one run.

Per generator family: AUC against the real test images, detection rate at the stored threshold, balanced accuracy;
the same after JPEG 75 and after a 0.5x resize (applied to both classes alike); FPR on real photos and real digits
at the threshold, and apart from those on harder real photos (``stress_real``: enlarged, soft, denoised);
milliseconds per 512x512 image; with ``threshold``, the rates at a threshold of the caller's choosing.
Leave-one-family-out AUCs need retraining without each family, so they are read from the detector's training
record (``training.json``) and labelled as such.
"""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, replace
from importlib.resources import as_file, files
from pathlib import Path

from synthguard.errors import InputError, missing_extra
from synthguard.models.detector import PatchDetector, builtin_detector
from synthguard.training.records import read_training_record


def _builtin_record() -> dict | None:
    with as_file(files("synthguard.models") / "weights" / "detector") as folder:
        return read_training_record(folder)


def _builtin_ddpm(num_threads: int | None):
    from diffusers import UNet2DModel  # noqa: PLC0415

    from synthguard.core.torch_utils import load_model  # noqa: PLC0415

    with as_file(files("synthguard.models") / "weights" / "detector" / "ddpm") as folder:
        return load_model(UNet2DModel, folder) if Path(folder).is_dir() else None


def run(n: int = 100, detector_path: Path | None = None, num_threads: int | None = None, log=print,
        threshold: float | None = None) -> dict:
    """Evaluate on ``n`` test images per family and per real domain; returns a JSON-ready dict with a table.

    ``threshold``: measure the detection and false-positive rates at this P(synthetic) instead of the detector's
    calibrated threshold (what a policy's ``classifier_threshold`` would do); the AUCs do not depend on it."""
    if threshold is not None and not 0 < threshold < 1:
        raise InputError(f"threshold must be between 0 and 1, not {threshold!r}")
    for package, module in (("scikit-image", "skimage"), ("scikit-learn", "sklearn")):
        if importlib.util.find_spec(module) is None:
            raise missing_extra(package, "bench", "the detector benchmark's real photos")
    from synthguard.training.detector import build_dataset, photo_sources, stress_real  # noqa: PLC0415
    from synthguard.training.detector_evaluation import evaluate_detector, table  # noqa: PLC0415

    if detector_path is None:
        detector = builtin_detector(num_threads=num_threads)
        record = _builtin_record()
    else:
        detector = PatchDetector.from_pretrained(detector_path, name=str(detector_path), num_threads=num_threads)
        record = read_training_record(detector_path)
    calibrated = detector.calibration.threshold
    if threshold is not None:
        detector.calibration = replace(detector.calibration, threshold=threshold)
    ddpm = _builtin_ddpm(num_threads)
    log(f"building the test split ({n} per family{'' if ddpm is not None else '; no DDPM weights: family skipped'})")
    sources = photo_sources()
    data = build_dataset("test", n_photo=n, n_digit=n, n_per_family=n, ddpm=ddpm, sources=sources,
                         num_threads=num_threads)
    log("scoring")
    evaluation = evaluate_detector(detector, data.real, data.fakes, stress=stress_real("test", n=n, sources=sources))
    lofo = (record or {}).get("leave_one_family_out_auc")
    text = table(evaluation, lofo, trained=((record or {}).get("training") or {}).get("families"))
    if lofo:
        text += "\n\n(AUC left out: from the detector's training record, a model retrained without that family)"
    if threshold is not None:
        text += f"\n\nRates at the threshold {threshold:g} given by --threshold (calibrated: {calibrated:.4f})"
    return {"detector": detector.name, "calibration": asdict(detector.calibration),
            "calibrated_threshold": calibrated, "evaluation": asdict(evaluation), "leave_one_family_out_auc": lofo,
            "table": text}
