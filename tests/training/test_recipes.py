"""The recipes (recipes/: not a package, not installed) run as the scripts they are: loaded by path here."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from helpers import tiny_models

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def recipe(name: str) -> ModuleType:
    """recipes/<name>.py as a module (its ``main`` not run)."""
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", RECIPES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_detector_recipe_defaults_are_the_shipped_run_and_unknown_families_stop_it(tmp_path, capsys):
    """Every generator family but "upsampled" (resampled real photos), plus soft and enlarged real photos; an
    unknown family stops the run before anything is made."""
    from synthguard.training.detector import FAMILIES

    train_detector = recipe("train_detector")
    args = train_detector.parse_args(["--out", str(tmp_path / "run")])
    assert set(FAMILIES) - set(args.families) == {"upsampled"} and args.soft_real > 0
    assert (args.steps, args.global_epochs, args.threads) == (1500, 24, 2)
    with pytest.raises(SystemExit) as exit_info:
        train_detector.main(["--out", str(tmp_path / "run"), "--families", "gan,bogus"])
    assert exit_info.value.code == 2 and "choose from" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_builtin_recipe_runs_small_and_writes_loadable_weights_with_records(tmp_path, monkeypatch):
    from synthguard.generate.backends import GANGenerator, VAEGenerator

    digits = tiny_models.digits()
    rng = np.random.default_rng(0)
    mnist = tmp_path / "mnist.npz"
    np.savez(mnist, train_images=digits, train_labels=rng.integers(0, 10, len(digits)),
             test_images=digits[:16], test_labels=rng.integers(0, 10, 16))
    monkeypatch.setenv("SYNTHGUARD_MNIST", str(mnist))
    out = tmp_path / "weights"
    recipe("train_builtin").main(["--out", str(out), "--device", "cpu", "--threads", "1", "--classifier-epochs", "1",
                                  "--gan-epochs", "1", "--vae-epochs", "1", "--batch-size", "32",
                                  "--gan-width", "8"])
    gan = json.loads((out / "gan" / "training.json").read_text())
    assert gan["call"].startswith("train_gan(train.images, GANTrainConfig(")
    assert "model_config={'width': 8}" in gan["call"]
    assert gan["model_config"]["width"] == 8 and len(gan["history"]) == 1 and gan["train_images"] == 64
    assert GANGenerator.from_pretrained(out / "gan", output_size=None).model.config.width == 8
    assert VAEGenerator.from_pretrained(out / "vae", output_size=None).model.config.latent_dim == 16  # the default
    classifier = json.loads((out / "mnist-classifier" / "training.json").read_text())
    assert 0 <= classifier["test_accuracy"] <= 1 and len(classifier["epoch_losses"]) == 1
