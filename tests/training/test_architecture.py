"""Building a network to train from its model config: the config's keys win, unknown ones are refused."""

from __future__ import annotations

import pytest

from synthguard.errors import InputError
from synthguard.models.gan import DCGANGenerator
from synthguard.training.architecture import architecture_of, build


def test_config_then_fallbacks_then_class_defaults():
    model = build(DCGANGenerator, {"width": 8}, image_size=12, latent_dim=4)
    assert architecture_of(model) == {"latent_dim": 4, "width": 8, "channels": 1, "image_size": 12, "num_classes": 0}
    assert build(DCGANGenerator, {"image_size": 16}, image_size=12).config.image_size == 16
    assert build(DCGANGenerator).config.width == DCGANGenerator().config.width


def test_a_saved_config_rebuilds_the_same_architecture(tmp_path):
    DCGANGenerator(latent_dim=8, width=8).save_pretrained(tmp_path)
    saved = DCGANGenerator.load_config(tmp_path)  # carries diffusers' private keys (_class_name, ...)
    assert architecture_of(build(DCGANGenerator, saved)) == {"latent_dim": 8, "width": 8, "channels": 1,
                                                             "image_size": 28, "num_classes": 0}


def test_unknown_settings_are_refused_not_ignored():
    with pytest.raises(InputError, match="no setting 'widht'.*width"):
        build(DCGANGenerator, {"widht": 8})
