"""Class-conditional GAN (projection discriminator) and CVAE: the model classes, conditional training on a tiny
labelled set, and the GAN's mode-collapse / divergence warnings."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
import torch

from synthguard.errors import InputError
from synthguard.models.gan import DCGANGenerator, SNDiscriminator
from synthguard.models.vae import ConvVAE
from synthguard.training.evaluation import DiversityReport, builtin_feature_extractor
from synthguard.training.gan import CollapseThresholds, GANTrainConfig, train_gan, training_warnings
from synthguard.training.vae import train_vae

TINY_GAN = {"latent_dim": 8, "width": 8}
TINY_VAE = {"latent_dim": 4, "width": 4}


@pytest.fixture
def digits() -> tuple[np.ndarray, np.ndarray]:
    """40 stroke images (28, 28) uint8 and labels 0..9 cycling, seeded."""
    rng = np.random.default_rng(0)
    images = np.zeros((40, 28, 28), np.uint8)
    for i, image in enumerate(images):
        r0, c0 = rng.integers(4, 12, size=2)
        image[r0 : r0 + 8 + i % 10, c0 : c0 + 3] = 255
    return images, np.arange(40) % 10


# ----------------------------------------------------------------------------------------------- model classes
def test_conditional_generator_and_discriminator_take_labels():
    torch.manual_seed(0)
    generator, discriminator = DCGANGenerator(num_classes=10, **TINY_GAN).eval(), SNDiscriminator(8, num_classes=10)
    z = torch.randn(4, 8)
    threes, sevens = generator(z, torch.full((4,), 3)), generator(z, torch.full((4,), 7))
    assert threes.shape == (4, 1, 28, 28) and not torch.equal(threes, sevens)  # the label changes the image
    scores = discriminator(threes, torch.tensor([3, 3, 7, 7]))
    assert scores.shape == (4,)
    assert not torch.equal(scores, discriminator(threes, torch.tensor([7, 7, 3, 3])))  # the projection term


def test_label_errors_of_the_model_classes():
    torch.manual_seed(0)
    conditional, plain = DCGANGenerator(num_classes=10, **TINY_GAN), DCGANGenerator(**TINY_GAN)
    z = torch.randn(2, 8)
    with pytest.raises(InputError, match="class-conditional .* needs labels"):
        conditional(z)
    with pytest.raises(InputError, match="unconditional: it takes no labels"):
        plain(z, torch.tensor([1, 2]))
    with pytest.raises(InputError, match=r"lie in \[0, 10\)"):
        conditional(z, torch.tensor([1, 10]))
    with pytest.raises(InputError, match=r"shape \(2,\)"):
        conditional(z, torch.tensor([1.0, 2.0]))
    with pytest.raises(InputError, match="num_classes"):
        ConvVAE(num_classes=-1)
    with pytest.raises(InputError, match="needs labels"):
        ConvVAE(num_classes=10, **TINY_VAE)(torch.rand(2, 1, 28, 28))


def test_cvae_conditions_encoder_and_decoder(tmp_path):
    torch.manual_seed(0)
    vae = ConvVAE(num_classes=10, **TINY_VAE).eval()
    x, labels = torch.rand(3, 1, 28, 28), torch.tensor([0, 5, 9])
    logits, mu, logvar = vae(x, labels)
    assert logits.shape == (3, 1, 28, 28) and mu.shape == logvar.shape == (3, 4)
    assert not torch.equal(vae.encode(x, labels)[0], vae.encode(x, torch.tensor([1, 1, 1]))[0])
    z = torch.zeros(3, 4)
    assert not torch.equal(vae.decode(z, labels), vae.decode(z, torch.tensor([1, 1, 1])))
    vae.save_pretrained(tmp_path / "cvae")
    loaded = ConvVAE.from_pretrained(tmp_path / "cvae").eval()
    assert loaded.config.num_classes == 10 and torch.equal(loaded.decode(z, labels), vae.decode(z, labels))


def test_unconditional_configs_load_as_before():
    shipped = Path(str(files("synthguard.models") / "weights"))
    assert "num_classes" not in json.loads((shipped / "gan" / "config.json").read_text())
    assert DCGANGenerator.from_pretrained(shipped / "gan").config.num_classes == 0
    assert not hasattr(DCGANGenerator(), "embed") and not hasattr(SNDiscriminator(), "embed")


# ------------------------------------------------------------------------------------------ conditional training
def test_conditional_gan_trains_and_reports_label_agreement(digits):
    images, labels = digits
    lines: list[str] = []
    result = train_gan(images, GANTrainConfig(diagnostic_samples=20), model_config=TINY_GAN, epochs=1,
                       batch_size=10, seed=0, device="cpu", num_threads=1, max_steps=2, labels=labels,
                       classifier=builtin_feature_extractor(num_threads=1), log=lines.append)
    assert result.steps == 2
    assert result.generator.config.num_classes == 10 and result.discriminator.config.num_classes == 10
    epoch = result.history[0]
    assert epoch.label_agreement is not None and 0 <= epoch.label_agreement <= 1
    assert "label agreement" in lines[0]
    assert result.generator(torch.zeros(2, 8), torch.tensor([0, 9])).shape == (2, 1, 28, 28)


def test_unconditional_gan_reports_no_label_agreement(digits):
    result = train_gan(digits[0], GANTrainConfig(diagnostic_samples=16), model_config=TINY_GAN, epochs=1,
                       batch_size=16, device="cpu", num_threads=1, max_steps=1,
                       classifier=builtin_feature_extractor(num_threads=1))
    assert result.history[0].label_agreement is None and result.generator.config.num_classes == 0


def test_conditional_vae_step_moves_the_weights(digits):
    images, labels = digits
    initial = train_vae(images, model_config=TINY_VAE, epochs=1, batch_size=10, seed=1, device="cpu",
                        num_threads=1, max_steps=0, labels=labels)
    trained = train_vae(images, model_config=TINY_VAE, epochs=1, batch_size=10, seed=1, device="cpu",
                        num_threads=1, max_steps=1, labels=labels)
    assert trained.model.config.num_classes == 10
    assert any(not torch.equal(a, b) for a, b in zip(initial.model.state_dict().values(),
                                                     trained.model.state_dict().values(), strict=True))
    assert np.isfinite(trained.history[0].loss)


def test_num_classes_comes_from_the_model_config(digits):
    images, labels = digits
    twelve = train_vae(images, model_config={**TINY_VAE, "num_classes": 12}, epochs=1, device="cpu", num_threads=1,
                     max_steps=0, labels=labels)
    assert twelve.model.config.num_classes == 12
    with pytest.raises(InputError, match=r"lie in \[0, 5\)"):
        train_vae(images, model_config={**TINY_VAE, "num_classes": 5}, epochs=1, device="cpu", labels=labels)


@pytest.mark.parametrize(("labels", "match"), [
    (np.arange(39) % 10, "40 integers, one per image"),
    (np.full(40, 0.5), "40 integers"),
    (np.full(40, -1), r"lie in \[0, 10\)"),
])
def test_training_rejects_bad_labels(digits, labels, match):
    with pytest.raises(InputError, match=match):
        train_gan(digits[0], model_config=TINY_GAN, epochs=1, device="cpu", labels=labels)
    with pytest.raises(InputError, match=match):
        train_vae(digits[0], model_config=TINY_VAE, epochs=1, device="cpu", labels=labels)


def test_a_conditional_config_needs_labels(digits):
    with pytest.raises(InputError, match="needs labels"):
        train_gan(digits[0], model_config={**TINY_GAN, "num_classes": 10}, epochs=1, device="cpu")


def test_conditional_training_needs_labelled_mnist(tmp_path):
    from synthguard.training.runs import train_and_save_gan, train_and_save_vae

    (tmp_path / "folder").mkdir()
    with pytest.raises(InputError, match="folder of images has no labels"):
        train_and_save_gan(tmp_path / "folder", tmp_path / "out", conditional=True)
    with pytest.raises(InputError, match="labelled MNIST only"):
        train_and_save_vae(tmp_path / "folder", tmp_path / "out", conditional=True)


def test_conditional_run_saves_a_conditional_model(tmp_path):
    """On the committed MNIST subset (the tests' MNIST): 32 labelled digits, one epoch."""
    from synthguard.generate.backends import GANGenerator
    from synthguard.training.runs import train_and_save_gan

    train_and_save_gan("mnist", tmp_path / "cgan", config=GANTrainConfig(diagnostic_samples=16),
                       model_config=TINY_GAN, epochs=1, batch_size=16, limit=32, num_threads=1, device="cpu",
                       conditional=True, command="test")
    record = json.loads((tmp_path / "cgan" / "training.json").read_text())
    assert record["conditional"] is True and record["model_config"]["num_classes"] == 10
    assert record["history"][0]["label_agreement"] is not None and "warnings" in record["history"][0]
    generator = GANGenerator.from_pretrained(tmp_path / "cgan", output_size=None)
    assert generator.num_classes == 10 and len(generator.generate(2, 0, labels=4).images) == 2


# ------------------------------------------------------------------------------------------- collapse warnings
def test_a_degenerate_run_warns_of_mode_collapse(digits):
    """One step on a tiny set: the generator still draws its initial "grid of dots" for every latent."""
    lines: list[str] = []
    result = train_gan(digits[0], GANTrainConfig(diagnostic_samples=32), model_config=TINY_GAN, epochs=1,
                       batch_size=16, seed=0, device="cpu", num_threads=1, max_steps=1,
                       classifier=builtin_feature_extractor(num_threads=1), log=lines.append)
    warnings = result.history[0].warnings
    assert any(w.startswith("mode collapse: samples are") for w in warnings)
    assert any("near-duplicates" in w for w in warnings)
    assert [line for line in lines if line.startswith("warning: gan epoch 1: mode collapse")]


def _report(ratio: float = 1.0, duplicates: float = 0.0, classes: int | None = 10) -> DiversityReport:
    return DiversityReport(pairwise_distance=10 * ratio, reference_pairwise_distance=10.0, distance_ratio=ratio,
                           duplicate_share=duplicates, duplicate_threshold=2.0, classes_covered=classes,
                           class_entropy_bits=3.2 if classes else None)


def test_the_shipped_gans_healthy_run_gives_no_warning():
    record = json.loads((Path(str(files("synthguard.models") / "weights")) / "gan" / "training.json").read_text())
    for epoch in record["history"]:
        diversity = DiversityReport(**epoch["diversity"])
        assert training_warnings(epoch["loss_discriminator"], epoch["loss_generator"], epoch["real_score"],
                                 epoch["fake_score"], diversity) == ()


@pytest.mark.parametrize(("losses", "report", "expected"), [
    ((1.6, 0.3, 0.15, -0.2), _report(classes=None), []),
    ((float("nan"), 0.3, 0.15, -0.2), _report(), ["divergence: a loss or score is not finite"]),
    ((0.0, 12.0, 15.0, -12.0), _report(), ["divergence: loss_G 12.00", "divergence: D(real) - D(fake) = 27.00"]),
    ((1.6, 0.3, 0.15, -0.2), _report(ratio=0.2), ["mode collapse: samples are 0.20x"]),
    ((1.6, 0.3, 0.15, -0.2), _report(duplicates=0.4), ["mode collapse: 40% of samples"]),
    ((1.6, 0.3, 0.15, -0.2), _report(classes=6), ["mode collapse: samples cover 6 of 10"]),
])
def test_training_warnings(losses, report, expected):
    found = training_warnings(*losses, report)
    assert len(found) == len(expected)
    assert all(line.startswith(prefix) for line, prefix in zip(found, expected, strict=True))


def test_thresholds_are_settable():
    strict = CollapseThresholds(min_distance_ratio=1.1)
    assert training_warnings(1.6, 0.3, 0.15, -0.2, _report(ratio=1.0), strict)
    assert not training_warnings(1.6, 0.3, 0.15, -0.2, _report(ratio=1.0))


def test_training_can_start_from_a_saved_generator(digits):
    images, labels = digits
    first = train_gan(images, GANTrainConfig(diagnostic_samples=20), model_config=TINY_GAN, epochs=1, batch_size=10,
                      device="cpu", num_threads=1, max_steps=1, labels=labels)
    again = train_gan(images, GANTrainConfig(diagnostic_samples=20), epochs=1, device="cpu", num_threads=1,
                      max_steps=0, labels=labels, init=first.generator)
    assert all(torch.equal(a, b) for a, b in zip(first.generator.state_dict().values(),
                                                 again.generator.state_dict().values(), strict=True))
    assert again.generator is not first.generator and again.generator.config.num_classes == 10
    with pytest.raises(InputError, match="not both"):
        train_gan(images, model_config=TINY_GAN, epochs=1, device="cpu", labels=labels, init=first.generator)
