"""The image flows end to end: requests checked when made, every output watermarked, signed as AI and in the
ledger, the identity made only once the model has loaded; the ``generate`` command over them; training and eval
CLIs that feed it."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from synthguard.cli import main
from synthguard.errors import Hint, InputError, WatermarkError
from synthguard.generate.runs import (
    GenerateReport,
    ImageFormat,
    ImageRequest,
    InterpolationRequest,
    generate_images,
    interpolate_images,
)
from synthguard.provenance.identity import IdentityStore
from synthguard.provenance.ledger import Ledger
from synthguard.stamp import Stamper


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
    # A diffusion pipeline keeps its own size (16 px here) unless a size is asked: 256 px is enough for the mark.
    result = run("generate", "--backend", "diffusion", "--model", folder, "-n", "1", "--inference-steps", "2",
                 "--size", "256", "-o", tmp_path / "d", "--threads", "1")
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
    assert not (tmp_path / "n").exists()
    assert run("generate", "--native", "-n", "1", "-o", tmp_path / "n", "--threads", "1",
               "--no-watermark").exit_code == 0


# ------------------------------------------------------------------------------------------------- the library
def test_generate_images_from_a_home_reports_each_stamped_file(home, tmp_path):
    request = ImageRequest(output_dir=tmp_path / "out", n=2, seed=3, fmt="jpeg", threads=1, workers=1)
    done = []
    report = generate_images(request, home, progress=done.append)
    assert isinstance(report, GenerateReport) and report.model == "synthguard/mnist-dcgan" and sum(done) == 2
    assert [Path(f.signed.output).name for f in report.files] == ["mnist-dcgan-000003.jpg", "mnist-dcgan-000004.jpg"]
    assert all(f.payload is not None and f.signed.mime == "image/jpeg" for f in report.files)
    assert set(report.seconds) == {"model", "watermark", "sign"} and report.wall_seconds > 0
    assert report.to_dict()["images"] == 2 and IdentityStore(home).exists()
    with Ledger(home.ledger_path) as ledger:
        assert ledger.count() == 2
        assert all(ledger.find_by_soft_binding(f.payload) for f in report.files)


def test_a_given_stamper_is_used_and_left_open(home, identity, tmp_path):
    with Stamper.from_home(home, identity=identity, image_watermark=False) as stamper:
        request = ImageRequest(output_dir=tmp_path / "a", n=1, threads=1, watermark=False)
        first = generate_images(request, stamper)
        second = generate_images(ImageRequest(output_dir=tmp_path / "b", n=1, threads=1, watermark=False), stamper)
        assert first.files[0].watermark_skipped == "watermarking turned off" and second.files[0].payload is None
        with pytest.raises(InputError, match="watermark=True"):
            generate_images(ImageRequest(output_dir=tmp_path / "c", n=1, threads=1), stamper)
    assert not (tmp_path / "c").exists()


def test_the_identity_is_made_only_once_the_model_has_loaded(home, tmp_path):
    asked = []

    def identity():
        asked.append(True)
        return IdentityStore(home).ensure()[0]

    with pytest.raises(InputError, match="does not exist"):
        generate_images(ImageRequest(output_dir=tmp_path / "o", model=str(tmp_path / "no-such-model")), home,
                        identity=identity)
    assert not asked and not IdentityStore(home).exists()
    generate_images(ImageRequest(output_dir=tmp_path / "o", n=1, threads=1), home, identity=identity)
    assert asked == [True]


def test_existing_outputs_are_refused_before_sampling(home, tmp_path):
    generate_images(ImageRequest(output_dir=tmp_path / "o", n=1, threads=1), home)
    with pytest.raises(InputError, match="already exists") as exc:
        generate_images(ImageRequest(output_dir=tmp_path / "o", n=2, threads=1), home)
    assert exc.value.hint is Hint.OVERWRITE
    again = generate_images(ImageRequest(output_dir=tmp_path / "o", n=2, threads=1, overwrite=True), home)
    assert len(again.files) == 2


def test_images_too_small_to_mark_are_refused_with_a_way_out(home, tmp_path):
    with pytest.raises(WatermarkError, match="28x28") as exc:
        generate_images(ImageRequest(output_dir=tmp_path / "n", n=1, size=None, threads=1), home)
    assert exc.value.hint is Hint.NO_WATERMARK and not (tmp_path / "n").exists()


def test_interpolate_images_between_seeds_and_between_images(home, tmp_path):
    seeds = interpolate_images(InterpolationRequest(output_dir=tmp_path / "s", start=3, end=17, steps=3, threads=1),
                               home)
    assert [Path(f.signed.output).name for f in seeds.files] == [f"interp-{i:06d}.png" for i in range(3)]
    assert seeds.model == "synthguard/mnist-vae" and all(f.payload is not None for f in seeds.files)
    ends = [seeds.files[0].signed.output, seeds.files[-1].signed.output]
    images = interpolate_images(InterpolationRequest(output_dir=tmp_path / "i", start=ends[0], end=str(ends[1]),
                                                     steps=2, threads=1), home)
    assert len(images.files) == 2
    with pytest.raises(InputError) as exc:
        interpolate_images(InterpolationRequest(output_dir=tmp_path / "g", start=1, end=2, backend="gan"), home)
    assert exc.value.hint is Hint.NEEDS_VAE and not (tmp_path / "g").exists()


@pytest.mark.parametrize("kwargs,fragment", [
    ({"n": 0}, "number of images"),
    ({"seed": -1}, "seed"),
    ({"batch_size": 0}, "batch_size"),
    ({"fmt": "gif"}, "unknown format 'gif'"),
    ({"backend": "text"}, "unknown backend"),
    ({"size": 0}, "output_size"),
    ({"workers": 0}, "workers"),
    ({"threads": 0}, "threads"),
    ({"inference_steps": 4}, "diffusion backend only"),
    ({"prompt": "a cat"}, "diffusion backend only"),
])
def test_image_requests_are_checked_when_made(tmp_path, kwargs, fragment):
    with pytest.raises(InputError, match=fragment):
        ImageRequest(output_dir=tmp_path, **kwargs)


def test_requests_normalise_what_they_are_given(tmp_path):
    request = ImageRequest(output_dir=str(tmp_path), fmt="webp", backend="diffusion", model="m", prompt="a cat")
    assert request.output_dir == tmp_path and request.fmt is ImageFormat.WEBP and request.fmt.suffix == ".webp"
    assert ImageFormat.JPEG.suffix == ".jpg" and ImageFormat.JPEG.mime == "image/jpeg"
    morph = InterpolationRequest(output_dir=tmp_path, start="a.png", end=Path("b.png"))
    assert morph.start == Path("a.png") and morph.end == Path("b.png")
    for start, end, steps in ((1, Path("b.png"), 4), (-1, 2, 4), (1, 2, 1)):
        with pytest.raises(InputError):
            InterpolationRequest(output_dir=tmp_path, start=start, end=end, steps=steps)
    with pytest.raises(InputError, match="Stamper or a Home"):
        generate_images(ImageRequest(output_dir=tmp_path / "x"), str(tmp_path))
