"""Tiny seeded models, built from config (not the shipped weights), shared by the tests: generators, a text model
and a vision backbone. Plain functions; each test module wraps the ones it needs in its own fixtures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from synthguard.generate.backends import GANGenerator, VAEGenerator
from synthguard.models.gan import DCGANGenerator
from synthguard.models.vae import ConvVAE


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


TEXT = ("The river rose in the night and the town woke to water in the streets. " * 3 +
        "A council meeting was called; the mayor said help would come, and the people waited on the bridge. " * 3 +
        "Farmers counted what was lost, children carried sandbags, and the radio repeated the warnings. " * 3)


def tiny_text_model(folder):
    """A random-weight GPT-2 (vocab ~300, one layer) with a byte-level BPE trained on a paragraph, saved to
    ``folder`` and loaded the way users load models. Its next-token distributions are nearly flat: fine for
    mechanics, useless for measuring a watermark's power (the SmolLM2 benchmark does that)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from synthguard.models.text import load_text_model
    from synthguard.training.text import train_tokenizer

    tokenizer = train_tokenizer(TEXT, 300)
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=256, n_embd=32, n_layer=1, n_head=2,
                        eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.eos_token_id)
    model = GPT2LMHeadModel(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return load_text_model(str(folder), device="cpu")


def tiny_clip(folder: Path) -> Path:
    """A seeded 2-layer CLIP vision model with a projection head (32 px input), saved to ``folder``."""
    import transformers

    torch.manual_seed(0)
    config = transformers.CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                           num_attention_heads=2, image_size=32, patch_size=8, projection_dim=16)
    transformers.CLIPVisionModelWithProjection(config).save_pretrained(folder)
    return folder
