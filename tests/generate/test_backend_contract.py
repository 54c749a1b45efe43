"""The ``Generator`` contract, checked on the GAN and VAE backends with tiny models built from config."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import tiny_models

from synthguard.core.torch_utils import resolve_device
from synthguard.errors import InputError
from synthguard.generate.backends import GANGenerator, VAEGenerator
from synthguard.generate.base import GenerationResult


@pytest.fixture
def tiny_gan():
    return tiny_models.tiny_gan()


@pytest.fixture
def tiny_vae():
    return tiny_models.tiny_vae()


@pytest.fixture(params=["gan", "vae"])
def generator(request, tiny_gan, tiny_vae):
    return {"gan": tiny_gan, "vae": tiny_vae}[request.param]


def test_result_shape_and_record(generator):
    result = generator.generate(3, 7, batch_size=2, device="cpu")
    assert isinstance(result, GenerationResult)
    size = generator.output_size or (28, 28)
    assert [im.shape for im in result.images] == [size] * 3
    assert all(im.dtype == np.uint8 for im in result.images)
    assert result.seed == 7 and result.parameters["image_seeds"] == [7, 8, 9]
    assert len(result.config_hash) == 16 and result.model == generator.name
    with pytest.raises(AttributeError):
        result.seed = 1  # frozen


def test_same_seed_same_images_and_batch_size_does_not_matter(generator):
    a = generator.generate(5, 3, batch_size=5, device="cpu").images
    b = generator.generate(5, 3, batch_size=2, device="cpu").images
    c = generator.generate(1, 6, device="cpu").images  # image 3 of seed 3 is seed 6
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert np.array_equal(a[3], c[0])
    assert not np.array_equal(a[0], generator.generate(1, 4, device="cpu").images[0])


def test_progress_is_called_per_batch(generator):
    done = []
    generator.generate(5, 0, batch_size=2, device="cpu", progress=done.append)
    assert done == [2, 4, 5]


def test_upsampled_output_is_smooth_not_blocky(tiny_gan):
    native = GANGenerator(tiny_gan.model, output_size=None).generate(1, 0, device="cpu").images[0]
    big = GANGenerator(tiny_gan.model, output_size=(112, 112)).generate(1, 0, device="cpu").images[0]
    assert native.shape == (28, 28) and big.shape == (112, 112)
    # Nearest-neighbour would repeat each pixel 4x4: neighbouring rows inside a block would be identical.
    assert np.mean(big[0::4] == big[1::4]) < 0.9


def test_save_load_round_trip(tmp_path, tiny_gan, tiny_vae):
    for generator, cls in ((tiny_gan, GANGenerator), (tiny_vae, VAEGenerator)):
        generator.model.save_pretrained(tmp_path / generator.name)
        assert {p.name for p in (tmp_path / generator.name).iterdir()} == {
            "config.json",
            "diffusion_pytorch_model.safetensors",
        }
        loaded = cls.from_pretrained(tmp_path / generator.name, output_size=generator.output_size)
        a, b = generator.generate(4, 11, device="cpu"), loaded.generate(4, 11, device="cpu")
        assert all(np.array_equal(x, y) for x, y in zip(a.images, b.images))
        assert a.config_hash == b.config_hash


@pytest.mark.parametrize("n", [0, -1, 1.5, True])
def test_bad_count(tiny_gan, n):
    with pytest.raises(InputError, match="positive integer"):
        tiny_gan.generate(n, 0, device="cpu")


@pytest.mark.parametrize("seed", [-1, 2**63])
def test_bad_seed(tiny_gan, seed):
    with pytest.raises(InputError, match="seed"):
        tiny_gan.generate(1, seed, device="cpu")


@pytest.mark.parametrize("device", ["tpu", "gpu0", "cuda:99", ""])
def test_bad_device(tiny_gan, device):
    with pytest.raises(InputError, match="device"):
        tiny_gan.generate(1, 0, device=device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_cuda_without_cuda():
    with pytest.raises(InputError, match="no CUDA"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


def test_bad_model_path(tmp_path):
    with pytest.raises(InputError, match="no config.json"):
        GANGenerator.from_pretrained(tmp_path / "missing")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text('{"_class_name": "DCGANGenerator", "width": 8}')
    with pytest.raises(InputError, match="cannot load"):
        GANGenerator.from_pretrained(tmp_path / "broken")


def test_weights_of_another_model_are_refused(tmp_path, tiny_gan, tiny_vae):
    tiny_vae.model.save_pretrained(tmp_path / "vae")
    with pytest.raises(InputError, match="holds a 'ConvVAE'"):
        GANGenerator.from_pretrained(tmp_path / "vae")
    tiny_gan.model.save_pretrained(tmp_path / "gan")
    config = tmp_path / "gan" / "config.json"
    config.write_text(config.read_text().replace('"width": 8', '"width": 16'))
    with pytest.raises(InputError, match="cannot load|do not fit"):
        GANGenerator.from_pretrained(tmp_path / "gan")


def test_bad_output_size(tiny_gan):
    with pytest.raises(InputError, match="output_size"):
        GANGenerator(tiny_gan.model, output_size=0)
