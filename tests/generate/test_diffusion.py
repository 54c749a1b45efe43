"""The diffusers backend, with a tiny DDPM pipeline saved to a temporary folder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

from synthguard.errors import InputError
from synthguard.generate.diffusion import DiffusionGenerator


@pytest.fixture(scope="module")
def pipeline_folder(tmp_path_factory):
    torch.manual_seed(0)
    unet = UNet2DModel(
        sample_size=16,
        in_channels=1,
        out_channels=1,
        block_out_channels=(8, 16),
        layers_per_block=1,
        norm_num_groups=4,
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
    )
    folder = tmp_path_factory.mktemp("ddpm") / "tiny-ddpm"
    DDPMPipeline(unet=unet, scheduler=DDPMScheduler(num_train_timesteps=50)).save_pretrained(folder)
    return folder


def test_generates_seeded_grey_images(pipeline_folder):
    generator = DiffusionGenerator.from_pretrained(pipeline_folder, num_inference_steps=3, num_threads=1)
    result = generator.generate(3, 5, batch_size=2, device="cpu")
    assert result.model == "tiny-ddpm" and len(result.config_hash) == 16
    assert [im.shape for im in result.images] == [(16, 16)] * 3 and result.images[0].dtype == np.uint8
    assert result.parameters["image_seeds"] == [5, 6, 7] and result.parameters["num_inference_steps"] == 3
    again = generator.generate(3, 5, batch_size=3, device="cpu")
    assert all(np.array_equal(a, b) for a, b in zip(result.images, again.images))
    alone = generator.generate(1, 6, device="cpu")
    assert np.array_equal(alone.images[0], result.images[1])


def test_output_size(pipeline_folder):
    generator = DiffusionGenerator.from_pretrained(pipeline_folder, num_inference_steps=2, output_size=40)
    assert generator.generate(1, 0, device="cpu").images[0].shape == (40, 40)


def test_missing_folder_and_offline_hub_id(tmp_path):
    with pytest.raises(InputError, match="no model_index.json"):
        DiffusionGenerator.from_pretrained(tmp_path / "nothing-here")
    with pytest.raises(InputError, match="hub id"):
        DiffusionGenerator.from_pretrained("synthguard-tests/no-such-model", local_files_only=True)


def test_rejects_reserved_kwargs(pipeline_folder):
    with pytest.raises(InputError, match="generator"):
        DiffusionGenerator.from_pretrained(pipeline_folder, call_kwargs={"generator": None})
