"""Class-conditional generation: ``generate(..., labels=)``, ``ImageRequest(label=)`` and ``generate --label``,
on tiny conditional models saved to a temp folder (the shipped ones are checked in tests/models/test_weights.py)."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from synthguard.cli import main
from synthguard.errors import InputError
from synthguard.generate.backends import GANGenerator, VAEGenerator, builtin_generator, load_generator
from synthguard.generate.runs import ImageRequest, generate_images
from synthguard.models.gan import DCGANGenerator
from synthguard.models.vae import ConvVAE


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def cgan() -> GANGenerator:
    torch.manual_seed(0)
    return GANGenerator(DCGANGenerator(latent_dim=8, width=8, num_classes=10), name="tiny-cgan", output_size=None,
                        num_threads=1)


@pytest.fixture
def cvae() -> VAEGenerator:
    torch.manual_seed(0)
    return VAEGenerator(ConvVAE(latent_dim=4, width=4, num_classes=10), name="tiny-cvae", output_size=None,
                        num_threads=1)


@pytest.fixture
def cgan_folder(tmp_path, cgan):
    cgan.model.save_pretrained(tmp_path / "cgan")
    return tmp_path / "cgan"


@pytest.mark.parametrize("name", ["cgan", "cvae"])
def test_each_image_depends_on_its_seed_and_label_only(request, name):
    generator = request.getfixturevalue(name)
    assert generator.num_classes == 10
    mixed = generator.generate(3, 10, labels=[1, 2, 3], device="cpu", batch_size=2)
    assert mixed.parameters["labels"] == [1, 2, 3] and mixed.parameters["image_seeds"] == [10, 11, 12]
    alone = generator.generate(1, 11, labels=2, device="cpu")
    assert np.array_equal(mixed.images[1], alone.images[0])
    assert alone.parameters["labels"] == [2]
    relabelled = generator.generate(1, 11, labels=7, device="cpu")
    assert not np.array_equal(relabelled.images[0], alone.images[0])
    assert generator.generate(4, 0, labels=np.int64(5), device="cpu").parameters["labels"] == [5] * 4


@pytest.mark.parametrize(("labels", "match"), [
    (None, "class-conditional: give a label"),
    (10, r"integers in \[0, 10\)"),
    (-1, r"integers in \[0, 10\)"),
    ([1, 2], "one label per image: 2 labels for 3 images"),
    ("3", "an int or a sequence of ints"),
    ([1, 2.0, 3], r"integers in \[0, 10\)"),
    (True, "an int or a sequence"),
])
def test_bad_labels_are_refused(cgan, labels, match):
    with pytest.raises(InputError, match=match):
        cgan.generate(3, 0, labels=labels, device="cpu")


def test_an_unconditional_generator_takes_no_labels():
    gan = builtin_generator("gan", output_size=None, num_threads=1)
    assert gan.num_classes == 0
    assert "labels" not in gan.generate(1, 0, device="cpu").parameters
    with pytest.raises(InputError, match="unconditional"):
        gan.generate(1, 0, labels=3, device="cpu")


def test_cvae_interpolates_within_a_class(cvae):
    path = cvae.interpolate_seeds(3, 9, 4, label=6)
    assert np.array_equal(path[0], cvae.generate(1, 3, labels=6, device="cpu").images[0])
    with pytest.raises(InputError, match="class-conditional"):
        cvae.interpolate_seeds(3, 9, 4)
    digit = cvae.generate(1, 0, labels=1, device="cpu").images[0]
    assert cvae.reconstruct(digit, label=1).shape == (28, 28)


def test_load_generator_conditional(cgan_folder):
    loaded = load_generator("gan", str(cgan_folder), output_size=None, num_threads=1, conditional=True)
    assert loaded.num_classes == 10
    with pytest.raises(InputError, match="unconditional: it takes no class label"):
        load_generator("vae", str(_plain_vae(cgan_folder.parent)), output_size=None, num_threads=1, conditional=True)
    with pytest.raises(InputError, match="gan and vae backends only"):
        load_generator("diffusion", "x", output_size=None, num_threads=1, conditional=True)


def _plain_vae(tmp_path):
    torch.manual_seed(0)
    ConvVAE(latent_dim=4, width=4).save_pretrained(tmp_path / "vae")
    return tmp_path / "vae"


def test_image_request_label_is_checked(tmp_path):
    with pytest.raises(InputError, match="label must be an integer of at least 0"):
        ImageRequest(output_dir=tmp_path, label=-1)
    with pytest.raises(InputError, match="gan and vae backends only"):
        ImageRequest(output_dir=tmp_path, backend="diffusion", model="x", label=2)
    assert ImageRequest(output_dir=tmp_path).label is None


def test_generate_images_with_a_label(home, tmp_path, cgan_folder):
    request = ImageRequest(output_dir=tmp_path / "out", model=str(cgan_folder), n=2, seed=4, label=3, threads=1,
                           size=128, device="cpu")
    report = generate_images(request, home)
    assert [f.signed.output.name for f in report.files] == ["cgan-l3-000004.png", "cgan-l3-000005.png"]
    with pytest.raises(InputError, match=r"integers in \[0, 10\)"):
        generate_images(ImageRequest(output_dir=tmp_path / "bad", model=str(cgan_folder), n=1, label=12,
                                     threads=1), home)
    assert not (tmp_path / "bad").exists()


def test_generate_label_through_the_cli(home, tmp_path, cgan_folder):
    out = tmp_path / "out"
    result = run("generate", "--model", cgan_folder, "--label", "7", "-n", "2", "--seed", "1", "--size", "128",
                 "--threads", "1", "-o", out, "--json")
    assert result.exit_code == 0, result.output
    files = sorted(out.iterdir())
    assert [f.name for f in files] == ["cgan-l7-000001.png", "cgan-l7-000002.png"]
    detected = json.loads(run("detect", files[0], "--json").stdout)
    model = detected["provenance"]["model"]
    assert model["seed"] == 1 and json.loads(str(model["parameters"]["label"])) == 7
    assert "labels" not in model["parameters"]


@pytest.mark.parametrize(("args", "match"), [
    (["--backend", "diffusion", "--model", "x"], "--label applies to sampling with --backend gan or vae"),
    (["--backend", "text"], "not --backend text"),
    (["--backend", "vae", "--interpolate", "1", "2"], "not --interpolate"),
])
def test_label_with_other_backends_is_refused(home, tmp_path, args, match):
    result = CliRunner().invoke(main, ["generate", "--label", "3", *args, "-o", str(tmp_path / "o")])
    assert result.exit_code != 0 and match in result.output


def test_an_unconditional_model_refuses_a_label(home, tmp_path):
    result = CliRunner().invoke(main, ["generate", "--backend", "vae", "--model", str(_plain_vae(tmp_path)),
                                       "--label", "3", "-o", str(tmp_path / "o")])
    assert result.exit_code != 0 and "unconditional" in result.output
