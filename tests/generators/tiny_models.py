"""Tiny seeded generator models, built from config (not the shipped weights), shared by the generator tests.

Plain functions, not a conftest.py: the repository's tests import names from the top-level ``conftest`` module,
which a second conftest.py would shadow.
"""

from __future__ import annotations

import numpy as np
import torch

from synthguard.generators.gan import DCGANGenerator, GANGenerator
from synthguard.generators.vae import ConvVAE, VAEGenerator


def tiny_gan() -> GANGenerator:
    torch.manual_seed(0)
    return GANGenerator(DCGANGenerator(latent_dim=8, width=8), name="tiny-gan", output_size=32, num_threads=1)


def tiny_vae() -> VAEGenerator:
    torch.manual_seed(0)
    return VAEGenerator(ConvVAE(latent_dim=4, width=4), name="tiny-vae", output_size=None, num_threads=1)


def digits() -> np.ndarray:
    """64 MNIST-like (28, 28) uint8 images: bright strokes on black, seeded."""
    rng = np.random.default_rng(0)
    images = np.zeros((64, 28, 28), np.uint8)
    for image in images:
        r0, c0 = rng.integers(4, 12, size=2)
        image[r0 : r0 + rng.integers(8, 16), c0 : c0 + 3] = 255
        image[r0 : r0 + 3, c0 : c0 + rng.integers(5, 12)] = 200
    return images
