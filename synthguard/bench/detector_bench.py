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
import json
from dataclasses import asdict, replace
from importlib.resources import as_file, files
from pathlib import Path

from synthguard.errors import InputError
from synthguard.models.detector import PatchDetector, builtin_detector

INSTALL = "pip install -c constraints.txt -e '.[bench]'"


def _builtin_folder_file(name: str) -> dict | None:
    with as_file(files("synthguard.models") / "weights" / "detector" / name) as path:
        return json.loads(Path(path).read_text()) if Path(path).is_file() else None


def _builtin_ddpm(num_threads: int | None):
    from diffusers import UNet2DModel  # noqa: PLC0415

    from synthguard.core.torch_utils import load_model

    with as_file(files("synthguard.models") / "weights" / "detector" / "ddpm") as folder:
        return load_model(UNet2DModel, folder) if Path(folder).is_dir() else None


def run(n: int = 100, detector_path: Path | None = None, num_threads: int | None = None, log=print,
        threshold: float | None = None) -> dict:
    """Evaluate on ``n`` test images per family and per real domain; returns a JSON-ready dict with a table.

    ``threshold``: measure the detection and false-positive rates at this P(synthetic) instead of the detector's
    calibrated threshold (what a policy's ``classifier_threshold`` would do); the AUCs do not depend on it."""
    if threshold is not None and not 0 < threshold < 1:
        raise InputError(f"threshold must be between 0 and 1, not {threshold!r}")
    if importlib.util.find_spec("skimage") is None or importlib.util.find_spec("sklearn") is None:
        raise InputError(f"bench detector needs scikit-image and scikit-learn (the real photos): {INSTALL}")
    from synthguard.training.detector import build_dataset, evaluate_detector, photo_sources, stress_real, table  # noqa: PLC0415

    if detector_path is None:
        detector = builtin_detector(num_threads=num_threads)
        record = _builtin_folder_file("training.json")
    else:
        detector = PatchDetector.from_pretrained(detector_path, name=str(detector_path), num_threads=num_threads)
        path = Path(detector_path) / "training.json"
        record = json.loads(path.read_text()) if path.is_file() else None
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
