"""One training step of the GAN and the VAE runs and moves the weights; VAE reconstruction and interpolation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import tiny_models

from synthguard.errors import InputError
from synthguard.models.vae import ConvVAE
from synthguard.training.gan import GANTrainConfig, train_gan
from synthguard.training.vae import VAETrainConfig, train_vae


@pytest.fixture
def tiny_vae():
    return tiny_models.tiny_vae()


@pytest.fixture
def digits():
    return tiny_models.digits()


def _snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _changed(before: dict[str, torch.Tensor], model: torch.nn.Module) -> bool:
    return any(not torch.equal(before[k], v) for k, v in model.state_dict().items() if v.is_floating_point())


TINY_GAN = {"latent_dim": 8, "width": 8}
TINY_VAE = {"latent_dim": 4, "width": 4}


def test_gan_one_step_moves_both_networks(digits):
    config = GANTrainConfig(diagnostic_samples=16)
    initial = train_gan(digits, config, model_config=TINY_GAN, epochs=1, batch_size=16, seed=1, device="cpu",
                        num_threads=1, max_steps=0)
    trained = train_gan(digits, config, model_config=TINY_GAN, epochs=1, batch_size=16, seed=1, device="cpu",
                        num_threads=1, max_steps=1)
    assert trained.steps == 1 and len(trained.history) == 1
    assert _changed(_snapshot(initial.generator), trained.generator)
    assert _changed(_snapshot(initial.discriminator), trained.discriminator)
    epoch = trained.history[0]
    assert np.isfinite([epoch.loss_discriminator, epoch.loss_generator]).all()
    assert 0 <= epoch.diversity.duplicate_share <= 1 and epoch.diversity.classes_covered is None


def test_gan_weight_average_follows_the_trained_generator(digits):
    config = GANTrainConfig(diagnostic_samples=16, ema_decay=0.5)
    initial = train_gan(digits, config, model_config=TINY_GAN, epochs=1, batch_size=16, seed=1, device="cpu",
                        num_threads=1, max_steps=0)
    trained = train_gan(digits, config, model_config=TINY_GAN, epochs=1, batch_size=16, seed=1, device="cpu",
                        num_threads=1, max_steps=2)
    assert _changed(_snapshot(initial.generator), trained.generator)


def test_gan_training_is_seeded(digits):
    config = GANTrainConfig(diagnostic_samples=16)
    a = train_gan(digits, config, model_config=TINY_GAN, epochs=1, batch_size=16, seed=2, device="cpu",
                  num_threads=1, max_steps=2)
    b = train_gan(digits, config, model_config=TINY_GAN, epochs=1, batch_size=16, seed=2, device="cpu",
                  num_threads=1, max_steps=2)
    assert not _changed(_snapshot(a.generator), b.generator)


def test_the_architecture_comes_from_the_model_config(digits):
    gan = train_gan(digits, GANTrainConfig(diagnostic_samples=16), model_config=TINY_GAN, epochs=1, batch_size=16,
                    device="cpu", num_threads=1, max_steps=0)
    assert (gan.generator.config.latent_dim, gan.generator.config.width, gan.generator.config.image_size) == (8, 8, 28)
    assert gan.discriminator.config.width == 8  # the discriminator mirrors the generator's width
    vae = train_vae(digits, model_config=TINY_VAE, epochs=1, device="cpu", num_threads=1, max_steps=0)
    assert (vae.model.config.latent_dim, vae.model.config.width) == (4, 4)
    with pytest.raises(InputError, match="28x28 images, the data are 1x14x14"):
        train_gan(digits[:, :14, :14], model_config={**TINY_GAN, "image_size": 28}, epochs=1, device="cpu")
    with pytest.raises(InputError, match="no setting"):
        train_vae(digits, model_config={"latent": 4}, epochs=1, device="cpu")
    with pytest.raises(TypeError):
        GANTrainConfig(width=8)  # the training settings hold no architecture


def test_vae_one_step_moves_the_weights(digits):
    config = VAETrainConfig()
    initial = train_vae(digits, config, model_config=TINY_VAE, epochs=1, batch_size=16, seed=1, device="cpu",
                        num_threads=1, max_steps=0)
    trained = train_vae(digits, config, model_config=TINY_VAE, epochs=1, batch_size=16, seed=1, device="cpu",
                        num_threads=1, max_steps=1)
    assert trained.steps == 1
    assert _changed(_snapshot(initial.model), trained.model)
    epoch = trained.history[0]
    assert epoch.loss == pytest.approx(epoch.reconstruction + epoch.kl, rel=1e-5) and epoch.kl >= 0


def test_training_rejects_bad_data():
    with pytest.raises(InputError, match="uint8"):
        train_gan(np.zeros((4, 28, 28), np.float32), epochs=1, device="cpu")
    with pytest.raises(InputError, match="uint8"):
        train_vae(np.zeros((28, 28), np.uint8), epochs=1, device="cpu")


def test_interpolation_ends_are_the_reconstructions(tiny_vae, digits):
    path = tiny_vae.interpolate(digits[0], digits[1], 5)
    assert len(path) == 5
    assert np.array_equal(path[0], tiny_vae.reconstruct(digits[0]))
    assert np.array_equal(path[-1], tiny_vae.reconstruct(digits[1]))
    rgb = np.repeat(digits[2][..., None], 3, axis=2)  # RGB input is made grey
    assert np.array_equal(tiny_vae.reconstruct(rgb), tiny_vae.reconstruct(digits[2]))


def test_seed_interpolation_ends_are_the_seeds_images(tiny_vae):
    path = tiny_vae.interpolate_seeds(3, 9, 4)
    assert np.array_equal(path[0], tiny_vae.generate(1, 3, device="cpu").images[0])
    assert np.array_equal(path[-1], tiny_vae.generate(1, 9, device="cpu").images[0])
    with pytest.raises(InputError, match="steps"):
        tiny_vae.interpolate_seeds(3, 9, 1)


def test_vae_round_trip_keeps_reconstructions(tmp_path, tiny_vae, digits):
    from synthguard.generate.backends import VAEGenerator

    tiny_vae.model.save_pretrained(tmp_path / "vae")
    loaded = VAEGenerator.from_pretrained(tmp_path / "vae", output_size=None)
    assert isinstance(loaded.model, ConvVAE)
    assert np.array_equal(loaded.reconstruct(digits[5]), tiny_vae.reconstruct(digits[5]))
