"""``synthguard augment`` and ``synthguard bench augment`` from the command line: JSON on stdout, errors as exit 2
with one line and no traceback."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from synthguard.cli import main
from synthguard.models.gan import DCGANGenerator


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def tiny_gan(tmp_path):
    torch.manual_seed(0)
    DCGANGenerator(latent_dim=8, width=8, num_classes=3).save_pretrained(tmp_path / "tiny-cgan")
    return tmp_path / "tiny-cgan"


def augment(out, model, *extra):
    return run("augment", "--per-class", "1", "--model", model, "--size", "128", "--threads", "1", "--workers", "1",
               "-o", out, *extra)


def test_augment_json_and_text(home, tmp_path, tiny_gan):
    result = augment(tmp_path / "ds", tiny_gan, "--classes", "0,2", "--seed", "4", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["images"] == 2 and [c["label"] for c in report["classes"]] == [0, 2]
    assert [c["seeds"]["first"] for c in report["classes"]] == [4, 6]
    assert 0 <= report["label_agreement"] <= 1 and report["classifier"].startswith("mnist-cnn(")
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == ["0", "2", "README.md", "dataset.json"]

    text = augment(tmp_path / "ds2", tiny_gan, "--classes", "1")
    assert text.exit_code == 0, text.output
    assert "label agreement:" in text.stdout and "verify with: synthguard verify" in text.stdout


@pytest.mark.parametrize("extra, message", [
    (("--classes", "0,x"), "class indices"),
    (("--classes", "0,7"), "class 7 out of range"),
    (("--size", "64"), "128"),
])
def test_bad_input_exits_2_without_a_traceback(home, tmp_path, tiny_gan, extra, message):
    result = augment(tmp_path / "ds", tiny_gan, *extra)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "ds").exists()


def test_existing_folder_and_unconditional_model_exit_2(home, tmp_path, tiny_gan):
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "x.png").write_bytes(b"x")
    result = augment(tmp_path / "ds", tiny_gan)
    assert result.exit_code == 2 and "not empty (use --force" in result.output
    DCGANGenerator(latent_dim=8, width=8).save_pretrained(tmp_path / "plain")
    result = augment(tmp_path / "other", tmp_path / "plain")
    assert result.exit_code == 2 and "unconditional" in result.output and "Traceback" not in result.output


def test_bench_augment_quick_from_an_augment_folder(home, tmp_path, tiny_gan):
    assert augment(tmp_path / "ds", tiny_gan).exit_code == 0
    rng = np.random.default_rng(0)
    data = tmp_path / "mnist.npz"
    np.savez(data, train_images=rng.integers(0, 255, (60, 28, 28), dtype=np.uint8),
             train_labels=np.arange(60) % 3, test_images=rng.integers(0, 255, (20, 28, 28), dtype=np.uint8),
             test_labels=np.arange(20) % 3)
    result = run("bench", "augment", "--backend", "none", "--from", tmp_path / "ds", "--per-class", "1",
                 "--fractions", "0.1", "--data", data, "--quick", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [(r["synthetic"], r["real_images"]) for r in report["rows"]] == [(None, 6), ("tiny-cgan", 6)]
    assert report["steps"] == 20 and report["seeds"] == [0, 1] and len(report["deltas"]) == 1
    assert report["synthetic"][0]["images"] == 3


@pytest.mark.parametrize("args, message", [
    (("--backend", "gan,foo"), "unknown backend 'foo'"),
    (("--fractions", "0,0.1"), "fractions must lie in (0, 1]"),
])
def test_bench_augment_bad_options_exit_2(args, message):
    result = run("bench", "augment", *args)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
