"""The train / eval flows behind the CLI: folders in, a saved model and its ``training.json`` out.

The detector flow is also run in a fresh interpreter where scikit-learn, scikit-image and SciPy cannot be imported,
as on a core install (``pip install -e .``, no extras), and its output is loaded by the runtime's detector loader.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from helpers import tiny_models
from PIL import Image

from synthguard.core.samples import procedural_image
from synthguard.errors import Hint, InputError
from synthguard.training.detector import DetectorTrainConfig
from synthguard.training.records import read_training_record
from synthguard.training.runs import (
    evaluate_images,
    holdout_split,
    read_image_folder,
    train_and_save_classifier,
    train_and_save_detector,
    train_and_save_gan,
    train_and_save_vae,
)


def image_folders(root: Path, n: int = 12) -> tuple[Path, Path]:
    """``n`` real-looking (procedural) and ``n`` flat grey 64x64 PNGs, in root/real and root/gan."""
    real, fake = root / "real", root / "gan"
    real.mkdir()
    fake.mkdir()
    for i in range(n):
        Image.fromarray(procedural_image(64, 64, seed=i)).save(real / f"{i:02d}.png")
        Image.fromarray(np.full((64, 64), 60 + 10 * i, np.uint8)).save(fake / f"{i:02d}.png")
    return real, fake


def digit_folder(root: Path, n: int = 32) -> Path:
    folder = root / "digits"
    folder.mkdir()
    for i, digit in enumerate(tiny_models.digits()[:n]):
        Image.fromarray(digit).save(folder / f"{i:02d}.png")
    return folder


def test_train_detector_command_works_without_scikit_learn(tmp_path):
    """`synthguard train detector --real R --fake F -o D` on 12 + 12 tiny images, then the runtime's loader."""
    real, fake = image_folders(tmp_path)
    out = tmp_path / "det"
    script = textwrap.dedent(f"""
        import sys
        for name in ("sklearn", "skimage", "scipy"):
            sys.modules[name] = None  # `import sklearn` now raises ImportError, as on a core install
        from synthguard.cli import main
        try:
            main(["train", "detector", "--real", {str(real)!r}, "--fake", {str(fake)!r}, "-o", {str(out)!r},
                  "--steps", "3", "--global-epochs", "1", "--threads", "1"])
        except SystemExit as done:
            assert done.code == 0, done.code
        import numpy as np
        from synthguard.detect import load_detector
        detector = load_detector({str(out)!r}, num_threads=1)
        print("probability", detector.score(np.full((64, 64), 90, np.uint8)).probability)
        print("loaded", sorted(m for m in sys.modules if m.split(".")[0] in ("sklearn", "skimage", "scipy")
                               and sys.modules[m] is not None))
    """)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "saved the detector" in done.stdout and "loaded []" in done.stdout
    assert 0 <= float(done.stdout.split("probability ")[1].split()[0]) <= 1
    record = read_training_record(out)
    assert record["command"].startswith("synthguard train detector --real") and record["skipped"] == []
    assert record["training"]["n_train_real"] == 12 - 2 and record["training"]["n_calibration_real"] == 2
    assert record["training"]["patch_config"]["max_grid"] == 4 and record["training"]["global_config"]["size"] == 32
    assert {"patch", "global", "calibration.json", "training.json"} <= {p.name for p in out.iterdir()}


def test_detector_run_skips_unreadable_files_and_refuses_what_it_cannot_use(tmp_path):
    real, fake = image_folders(tmp_path, n=4)
    (fake / "notes.txt").write_text("not an image")  # not an image: ignored
    (fake / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # claims to be one: skipped, logged
    lines: list[str] = []
    config = DetectorTrainConfig(steps=2, global_epochs=0)
    run = train_and_save_detector([real], [fake], tmp_path / "det", config=config, num_threads=1, log=lines.append)
    assert run.folder == tmp_path / "det" and len(run.skipped) == 1 and "broken.png" in run.skipped[0]
    assert any(line.startswith("skipped ") and "broken.png" in line for line in lines)
    assert run.detector.global_model is None and len(run.detector.calibration.weights) == 1
    with pytest.raises(InputError, match="not empty") as refused:
        train_and_save_detector([real], [fake], tmp_path / "det")
    assert refused.value.hint is Hint.OVERWRITE
    twin = tmp_path / "other" / "gan"
    twin.mkdir(parents=True)
    for p in fake.glob("0*.png"):
        twin.joinpath(p.name).write_bytes(p.read_bytes())
    with pytest.raises(InputError, match="two fake folders are named 'gan'"):
        train_and_save_detector([real], [fake, twin], tmp_path / "det2")
    few = tmp_path / "few"
    few.mkdir()
    Image.fromarray(procedural_image(64, 64, seed=9)).save(few / "0.png")
    with pytest.raises(InputError, match="at least 2"):
        read_image_folder(few)


def test_holdout_split_keeps_every_image_once():
    train, held = holdout_split(list(range(10)), 0.2, np.random.default_rng(0))
    assert len(held) == 2 and sorted(train + held) == list(range(10))
    assert len(holdout_split([1, 2], 0.2, np.random.default_rng(0))[1]) == 1  # at least one held out
    with pytest.raises(InputError, match="holdout"):
        holdout_split([1, 2], 1.0, np.random.default_rng(0))


def test_gan_and_vae_runs_save_a_loadable_model_with_their_record(tmp_path):
    from synthguard.generate.backends import GANGenerator, VAEGenerator

    digits = digit_folder(tmp_path)
    gan = train_and_save_gan(digits, tmp_path / "gan", model_config={"latent_dim": 8, "width": 8}, epochs=1,
                             batch_size=16, device="cpu", num_threads=1, command="synthguard train gan ...")
    record = json.loads((tmp_path / "gan" / "training.json").read_text())
    assert record["command"] == "synthguard train gan ..." and record["images"] == 32
    assert record["model_config"] == {"latent_dim": 8, "width": 8, "channels": 1, "image_size": 28,
                                     "num_classes": 0}
    assert "width" not in record["config"] and len(record["history"]) == len(gan.history) == 1
    assert GANGenerator.from_pretrained(tmp_path / "gan", output_size=None).model.config.latent_dim == 8
    train_and_save_vae(digits, tmp_path / "vae", model_config={"latent_dim": 4, "width": 4}, epochs=1,
                       batch_size=16, device="cpu", num_threads=1, limit=20)
    assert read_training_record(tmp_path / "vae")["images"] == 20
    assert VAEGenerator.from_pretrained(tmp_path / "vae", output_size=None).model.config.width == 4
    with pytest.raises(InputError, match="not empty"):
        train_and_save_vae(digits, tmp_path / "vae", epochs=1, device="cpu")


def test_classifier_run_needs_labelled_mnist(tmp_path):
    with pytest.raises(InputError, match="labelled MNIST only"):
        train_and_save_classifier(tmp_path / "cls", data=str(tmp_path))
    assert not (tmp_path / "cls").exists()


def test_evaluate_images_of_two_folders(tmp_path):
    digits = digit_folder(tmp_path)
    scores = evaluate_images(digits, digits, limit=16, num_threads=1)
    assert scores.n_generated == scores.n_reference == 16 and abs(scores.fid) < 1e-3  # a set against itself
    assert scores.precision == scores.recall == 1.0
    assert scores.feature_extractor.startswith("mnist-cnn")
