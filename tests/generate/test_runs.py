"""The generate flow end to end: every output watermarked, signed as AI, in the ledger; training and eval CLIs."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from synthguard.cli import main
from synthguard.provenance.ledger import Ledger


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_generate_with_the_builtin_gan_stamps_every_image(home, tmp_path):
    out = tmp_path / "out"
    result = run("generate", "-n", "3", "--seed", "5", "-o", out, "--threads", "1", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["images"] == 3 and set(report["seconds"]) == {"model", "watermark", "sign"}
    files = sorted(out.iterdir())
    assert [f.name for f in files] == ["mnist-dcgan-000005.png", "mnist-dcgan-000006.png", "mnist-dcgan-000007.png"]
    with Image.open(files[0]) as img:
        assert img.size == (256, 256)
    for i, path in enumerate(files):
        detected = json.loads(run("detect", path, "--json").stdout)
        assert detected["verdict"]["label"] == "ai-generated"
        assert detected["provenance"]["state"] == "trusted" and detected["provenance"]["ai_generated"]
        assert detected["watermark"]["detected"]
        model = detected["provenance"]["model"]
        assert model["name"] == "synthguard/mnist-dcgan" and model["seed"] == 5 + i
        assert json.loads(model["parameters"]["output_size"]) == [256, 256]  # see manifest._plain_json
    with Ledger(home.ledger_path) as ledger:
        assert ledger.count() == 3


def test_same_seed_same_pixels_before_the_watermark(home, tmp_path):
    from synthguard.generate.backends import builtin_generator
    a = builtin_generator("gan", num_threads=1).generate(2, 11, device="cpu")
    b = builtin_generator("gan", num_threads=1).generate(2, 11, device="cpu")
    assert all(np.array_equal(x, y) for x, y in zip(a.images, b.images, strict=True))


def test_no_watermark_says_so_and_still_declares_ai(home, tmp_path):
    result = run("generate", "-n", "1", "-o", tmp_path / "o", "--no-watermark", "--threads", "1")
    assert result.exit_code == 0 and "--no-watermark" in result.stderr
    detected = json.loads(run("detect", next((tmp_path / "o").iterdir()), "--json").stdout)
    assert detected["provenance"]["ai_generated"] and not detected["watermark"]["detected"]
    assert detected["verdict"]["label"] == "ai-generated"


def test_vae_interpolation_writes_the_morph(home, tmp_path):
    result = run("generate", "--backend", "vae", "--interpolate", "3", "17", "--steps", "4", "-o", tmp_path / "m",
                 "--threads", "1")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [f"interp-{i:06d}.png" for i in range(4)]
    assert run("generate", "--interpolate", "1", "2", "-o", tmp_path / "g").exit_code == 2  # GAN: no encoder


def test_diffusion_backend_with_a_tiny_local_pipeline(home, tmp_path):
    from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel
    torch.manual_seed(0)
    unet = UNet2DModel(sample_size=16, in_channels=1, out_channels=1, block_out_channels=(8, 16),
                       down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                       layers_per_block=1, norm_num_groups=4)
    folder = tmp_path / "tiny-ddpm"
    DDPMPipeline(unet=unet, scheduler=DDPMScheduler(num_train_timesteps=50)).save_pretrained(folder)
    result = run("generate", "--backend", "diffusion", "--model", folder, "-n", "1", "--inference-steps", "2",
                 "-o", tmp_path / "d", "--threads", "1")
    assert result.exit_code == 0, result.output
    detected = json.loads(run("detect", next((tmp_path / "d").iterdir()), "--json").stdout)
    assert detected["verdict"]["label"] == "ai-generated" and detected["provenance"]["model"]["name"] == "tiny-ddpm"


@pytest.mark.parametrize("args,fragment", [
    (("--model", "/no/such/model"), "does not exist"),
    (("--device", "tpu"), "device"),
    (("--device", "cuda:7"), "cuda"),
    (("-n", "0"), "x>=1"),
    (("--backend", "diffusion"), "needs a model: a diffusers pipeline folder or hub id (give --model)"),
])
def test_generate_errors(home, tmp_path, args, fragment):
    result = run("generate", *args, "-o", tmp_path / "e")
    assert result.exit_code == 2, result.output
    assert fragment in result.stderr and "Traceback" not in result.output


def test_generate_refuses_to_overwrite(home, tmp_path):
    assert run("generate", "-n", "1", "-o", tmp_path / "o", "--threads", "1").exit_code == 0
    again = run("generate", "-n", "1", "-o", tmp_path / "o", "--threads", "1")
    assert again.exit_code == 2 and "already exists" in again.stderr


def test_train_then_generate_with_the_trained_model(home, tmp_path):
    model = tmp_path / "my-gan"
    result = run("train", "gan", "--epochs", "1", "--limit", "256", "--batch-size", "64", "--threads", "1",
                 "--device", "cpu", "-o", model)
    assert result.exit_code == 0, result.output
    assert (model / "config.json").exists() and json.loads((model / "training.json").read_text())["history"]
    assert "epoch 1" in result.stderr
    made = run("generate", "--model", model, "-n", "1", "-o", tmp_path / "g", "--threads", "1", "--json")
    assert made.exit_code == 0 and json.loads(made.stdout)["model"] == "my-gan"


def test_eval_images_names_its_feature_extractor(home, tmp_path):
    run("generate", "-n", "6", "-o", tmp_path / "fake", "--threads", "1", "--no-watermark")
    result = run("eval", "images", "--real", "mnist", "--fake", tmp_path / "fake", "--limit", "50", "--json")
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert scores["feature_extractor"].startswith("mnist-cnn") and scores["n_generated"] == 6
    assert scores["fid"] > 0


def test_a_hub_id_that_cannot_be_fetched_is_a_clear_error(home, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    result = run("generate", "--model", "someone/mnist-gan", "-o", tmp_path / "o")
    assert result.exit_code == 2 and "Hugging Face hub" in result.stderr


def test_a_hub_id_loads_from_the_local_hub_cache(home, tmp_path, monkeypatch):
    """The hub-id path, offline: a model already in the Hugging Face cache loads by its id."""
    import shutil
    from importlib.resources import files
    hf_home = tmp_path / "hf"
    repo = hf_home / "hub" / "models--someone--mnist-gan"
    snapshot = repo / "snapshots" / "0123456789abcdef0123456789abcdef01234567"
    snapshot.mkdir(parents=True)
    for name in ("config.json", "diffusion_pytorch_model.safetensors"):
        shutil.copyfile(files("synthguard.models") / "weights" / "gan" / name, snapshot / name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(snapshot.name)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(hf_home))
    result = run("generate", "--model", "someone/mnist-gan", "-n", "1", "-o", tmp_path / "o", "--threads", "1",
                 "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["images"] == 1


def test_native_size_is_too_small_to_watermark_and_says_what_to_do(home, tmp_path):
    result = run("generate", "--native", "-n", "1", "-o", tmp_path / "n", "--threads", "1")
    assert result.exit_code == 5 and "--no-watermark" in result.stderr and "28x28" in result.stderr
    assert not list((tmp_path / "n").iterdir())
    assert run("generate", "--native", "-n", "1", "-o", tmp_path / "n", "--threads", "1",
               "--no-watermark").exit_code == 0
