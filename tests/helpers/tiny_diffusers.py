"""Tiny random text-to-image pipelines, built offline from config and saved with ``save_pretrained``: Stable
Diffusion 1.x/2.x (``StableDiffusionPipeline``) and SDXL (``StableDiffusionXLPipeline``, two text encoders and the
"text_time" added conditioning). Each has a CLIP tokenizer over a small vocabulary written here (letters, digits,
a few merges), so nothing is downloaded. Seeded: the same call writes the same weights."""

from __future__ import annotations

import json
import string
import tempfile
from pathlib import Path

import torch

# The pixel side of one latent cell: a VAE with four blocks downsamples three times, as Stable Diffusion's does.
VAE_SCALE = 8
TEXT_DIM = 16


def _tokenizer():
    """A CLIPTokenizer over single characters (each also with CLIP's end-of-word mark) and a few merges."""
    from transformers import CLIPTokenizer  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as scratch:
        return _write_tokenizer(CLIPTokenizer, Path(scratch))


def _write_tokenizer(cls, folder: Path):
    chars = list(string.ascii_lowercase + string.digits + ".,!?'-")
    merges = [("t", "h"), ("th", "e</w>"), ("a", "n"), ("c", "a"), ("ca", "t</w>")]
    tokens = ["<|startoftext|>", "<|endoftext|>", *chars, *(c + "</w>" for c in chars), *("".join(m) for m in merges)]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(dict.fromkeys(tokens))}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    return cls(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77,
                         pad_token="<|endoftext|>")


def _text_config(vocab_size: int, **extra):
    from transformers import CLIPTextConfig  # noqa: PLC0415

    return CLIPTextConfig(vocab_size=vocab_size, hidden_size=TEXT_DIM, intermediate_size=32, num_hidden_layers=1,
                          num_attention_heads=2, max_position_embeddings=77, bos_token_id=0, eos_token_id=1,
                          pad_token_id=1, **extra)


def _vae():
    from diffusers import AutoencoderKL  # noqa: PLC0415

    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8, 8, 8),
                         down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                         layers_per_block=1, norm_num_groups=4, sample_size=256)


def _unet(sample_size, cross_attention_dim: int, **extra):
    from diffusers import UNet2DConditionModel  # noqa: PLC0415

    return UNet2DConditionModel(sample_size=sample_size, in_channels=4, out_channels=4, layers_per_block=1,
                                block_out_channels=(8, 16), norm_num_groups=4,
                                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
                                cross_attention_dim=cross_attention_dim, attention_head_dim=4, **extra)


def _scheduler():
    from diffusers import DDIMScheduler  # noqa: PLC0415

    return DDIMScheduler(num_train_timesteps=100, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                         clip_sample=False, set_alpha_to_one=False, steps_offset=1)


def tiny_sd(folder: Path, *, sample_size: int | tuple[int, int] = (24, 32)) -> Path:
    """A random ``StableDiffusionPipeline`` saved into ``folder``; its own size is ``sample_size`` latents (an int or
    (height, width)) times 8 pixels: 192x256 (height x width) unless told."""
    from diffusers import StableDiffusionPipeline  # noqa: PLC0415
    from transformers import CLIPTextModel  # noqa: PLC0415

    torch.manual_seed(0)
    folder = Path(folder)
    tokenizer = _tokenizer()
    pipeline = StableDiffusionPipeline(
        vae=_vae(), text_encoder=CLIPTextModel(_text_config(len(tokenizer))), tokenizer=tokenizer,
        unet=_unet(list(sample_size) if isinstance(sample_size, tuple) else sample_size, TEXT_DIM),
        scheduler=_scheduler(), safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipeline.save_pretrained(folder)
    return folder


def tiny_sdxl(folder: Path, *, sample_size: int = 32) -> Path:
    """A random ``StableDiffusionXLPipeline`` (two CLIP text encoders, the second with a projection, "text_time"
    added conditioning) saved into ``folder``; its own size is ``sample_size`` * 8 pixels square."""
    from diffusers import StableDiffusionXLPipeline  # noqa: PLC0415
    from transformers import CLIPTextModel, CLIPTextModelWithProjection  # noqa: PLC0415

    torch.manual_seed(0)
    folder = Path(folder)
    tokenizer = _tokenizer()
    time_dim = 8
    # The added embedding sees the pooled text (projection_dim) and six size/crop numbers, each time_dim wide.
    unet = _unet(sample_size, 2 * TEXT_DIM, addition_embed_type="text_time", addition_time_embed_dim=time_dim,
                 projection_class_embeddings_input_dim=TEXT_DIM + 6 * time_dim, transformer_layers_per_block=1)
    pipeline = StableDiffusionXLPipeline(
        vae=_vae(), text_encoder=CLIPTextModel(_text_config(len(tokenizer))),
        text_encoder_2=CLIPTextModelWithProjection(_text_config(len(tokenizer), projection_dim=TEXT_DIM)),
        tokenizer=tokenizer, tokenizer_2=tokenizer, unet=unet, scheduler=_scheduler())
    pipeline.save_pretrained(folder)
    return folder
