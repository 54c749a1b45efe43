"""The run that made the shipped detector (synthguard/models/weights/detector): a tiny DDPM fake family, the offline
data set, the patch and global views, their calibration, the held-out evaluation and the leave-one-family-out
models, saved with ``training.json`` and ``evaluation.md``.

    python recipes/train_detector.py --out /tmp/det/weights

The settings below are the shipped run's; every one can be changed on the command line (``--help``). The views'
architecture is the model classes' defaults (``PatchDiscriminator``, ``GlobalDiscriminator``), which are the shipped
config.json files.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

from synthguard.core.fileio import write_atomic
from synthguard.training.data import load_mnist
from synthguard.training.ddpm import train_tiny_ddpm
from synthguard.training.detector import (
    FAMILIES,
    TRAINED_FAMILIES,
    DetectorData,
    DetectorTrainConfig,
    build_dataset,
    build_global_extra,
    for_training,
    photo_sources,
    stress_real,
    train_detector,
)
from synthguard.training.detector_evaluation import evaluate_detector, leave_one_family_out, table
from synthguard.training.records import write_training_record

# ------------------------------------------------------------------------------------------ the shipped run's config
THREADS = 2
STEPS = 1500  # patch-view optimiser steps
GLOBAL_EPOCHS = 24  # global-view epochs (`synthguard train detector` defaults to 16)
DDPM_STEPS = 400
N_TRAIN = 250  # images per fake family and per real domain in the train split
N_TEST = 100  # the same for the calibration and test splits
N_GLOBAL = 6000  # extra real digits and GAN samples (and half as many VAE samples) for the global view
SOFT_REAL = 250  # enlarged and as many soft real photos added to the real class of the train split
LOFO_STEPS = 300  # patch steps of each leave-one-family-out model (0: skip them)
LOFO_GLOBAL_EPOCHS = 3
FAMILIES_TRAINED = TRAINED_FAMILIES  # every family but "upsampled"
# ---------------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, help="folder for the weights (patch/, global/, ddpm/, "
                                                                "calibration.json, training.json, evaluation.md)")
    parser.add_argument("--threads", type=int, default=THREADS)
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--lofo-steps", type=int, default=LOFO_STEPS,
                        help="patch steps of each leave-one-family-out model (0: skip); an in-family model of the "
                             "same budget is trained for comparison")
    parser.add_argument("--ddpm-steps", type=int, default=DDPM_STEPS)
    parser.add_argument("--n-train", type=int, default=N_TRAIN, help="images per fake family and per real domain")
    parser.add_argument("--n-test", type=int, default=N_TEST)
    parser.add_argument("--global-epochs", type=int, default=GLOBAL_EPOCHS)
    parser.add_argument("--n-global", type=int, default=N_GLOBAL,
                        help="extra real digits and GAN samples (and half as many VAE samples) for the global view")
    parser.add_argument("--lofo-global-epochs", type=int, default=LOFO_GLOBAL_EPOCHS)
    parser.add_argument("--families", default=",".join(FAMILIES_TRAINED),
                        help="fake families to train and calibrate on, comma-separated, from "
                             f"{', '.join(FAMILIES)} (the test split keeps every family, so one left out here is "
                             "measured as unseen; default: all but upsampled)")
    parser.add_argument("--soft-real", type=int, default=SOFT_REAL,
                        help="add this many enlarged and as many soft real photos, at random strengths, to the real "
                             "class of the train split (n-test/n-train as many to calibration); 0: none "
                             "(default: %(default)s)")
    args = parser.parse_args(argv)
    args.families = [f.strip() for f in args.families.split(",") if f.strip()]
    if not args.families or set(args.families) - set(FAMILIES):
        parser.error(f"--families: choose from {', '.join(FAMILIES)}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:6.0f} s] {msg}", flush=True)

    # 1. The tiny DDPM fake family, kept for `synthguard bench detector`.
    torch.manual_seed(0)
    ddpm = train_tiny_ddpm(load_mnist("train").images, steps=args.ddpm_steps, num_threads=args.threads, log=log)
    ddpm.save_pretrained(out / "ddpm", safe_serialization=True)

    # 2. The data: train / calibration / test splits, the trained families, soft real photos, the global extra.
    sources = photo_sources()
    n, m = args.n_train, args.n_test
    data = {split: build_dataset(split, n_photo=size, n_digit=size, n_per_family=size, ddpm=ddpm, sources=sources,
                                 num_threads=args.threads)
            for split, size in (("train", n), ("calibration", m), ("test", m))}
    for split, soft in (("train", args.soft_real), ("calibration", args.soft_real * m // n)):
        data[split] = for_training(data[split], split, families=args.families, soft_real=soft, sources=sources)
    extra = build_global_extra("train", n_digit=args.n_global, n_gan=args.n_global, n_vae=args.n_global // 2,
                               num_threads=args.threads)
    log("data built")

    # 3. Train and calibrate both views; save.
    config = DetectorTrainConfig(steps=args.steps, global_epochs=args.global_epochs)
    detector, record = train_detector(data["train"].real_images, data["train"].fakes,
                                      calibration_real=data["calibration"].real_images,
                                      calibration_fakes_by_family=data["calibration"].fakes,
                                      config=config, global_extra=extra, num_threads=args.threads, log=log)
    detector.save_pretrained(out)
    log(f"trained in {record.seconds} s; calibration {record.calibration}")

    # 4. Held-out evaluation, with the harder real photos apart.
    evaluation = evaluate_detector(detector, data["test"].real, data["test"].fakes,
                                   stress=stress_real("test", n=m, sources=sources))
    log("evaluated")

    # 5. Leave-one-family-out models, and an in-family model of the same budget to read them against.
    lofo, same_budget = None, None
    if args.lofo_steps:
        small = DetectorTrainConfig(steps=args.lofo_steps, global_epochs=args.lofo_global_epochs)
        third = args.n_global // 3
        small_extra = DetectorData(real={"digit": extra.real["digit"][:third]},
                                   fakes={k: v[:third] for k, v in extra.fakes.items()})
        lofo = leave_one_family_out(data["train"], data["calibration"], data["test"], config=small,
                                    global_extra=small_extra, num_threads=args.threads, log=log)
        reference, _ = train_detector(data["train"].real_images, data["train"].fakes,
                                      calibration_real=data["calibration"].real_images,
                                      calibration_fakes_by_family=data["calibration"].fakes,
                                      config=small, global_extra=small_extra, num_threads=args.threads,
                                      log=lambda _msg: None)
        same_budget = {row.family: row.auc for row in
                       evaluate_detector(reference, data["test"].real, data["test"].fakes, perturbations=("none",)
                                         ).families}

    # 6. The table and the record.
    text = table(evaluation, lofo, trained=args.families)
    if same_budget is not None:
        text += ("\n\nIn-family AUC of a model with the leave-one-out budget "
                 f"({args.lofo_steps} steps): " + ", ".join(f"{k} {v:.3f}" for k, v in same_budget.items()
                                                             if k in args.families))
    log("done\n" + text)
    write_atomic(out / "evaluation.md", (text + "\n").encode())
    write_training_record(out, {
        "call": "python recipes/train_detector.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "training": asdict(record),
        "evaluation": asdict(evaluation),
        "leave_one_family_out_auc": lofo,
        "same_budget_in_family_auc": same_budget,
        "total_seconds": round(time.perf_counter() - t0, 1),
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
                    "device": "cpu", "threads": args.threads},
    })


if __name__ == "__main__":
    main()
