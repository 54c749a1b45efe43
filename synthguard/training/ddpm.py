"""A tiny DDPM (Ho et al. 2020, "Denoising Diffusion Probabilistic Models") on MNIST digits: one of the detector's
fake families, made with diffusers (``UNet2DModel``, ``DDPMScheduler`` to train, ``DDIMScheduler`` to sample)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from synthguard.core.torch_utils import torch_threads


def train_tiny_ddpm(digits: np.ndarray, *, steps: int = 400, batch_size: int = 32, seed: int = 0,
                    num_threads: int | None = None, log: Callable[[str], None] = print):
    """A small diffusers ``UNet2DModel`` DDPM on 32x32 (28 padded) digits, epsilon objective, 1000 linear-beta
    timesteps. Minutes on one CPU thread: its samples are rough, which is fine for a fake family."""
    from diffusers import DDPMScheduler, UNet2DModel  # noqa: PLC0415

    torch.manual_seed(seed)
    unet = UNet2DModel(sample_size=32, in_channels=1, out_channels=1, block_out_channels=(16, 32, 32),
                       layers_per_block=1, down_block_types=("DownBlock2D",) * 3, up_block_types=("UpBlock2D",) * 3,
                       norm_num_groups=8)
    scheduler = DDPMScheduler(num_train_timesteps=1000)
    data = torch.from_numpy(np.pad(digits, ((0, 0), (2, 2), (2, 2)))).float().div(127.5).sub(1)[:, None]  # (N,1,32,32)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=2e-3)
    rng = torch.Generator().manual_seed(seed)
    with torch_threads(num_threads):
        unet.train()
        for step in range(steps):
            x0 = data[torch.randint(len(data), (batch_size,), generator=rng)]
            noise = torch.randn(x0.shape, generator=rng)
            t = torch.randint(0, 1000, (batch_size,), generator=rng)
            loss = torch.nn.functional.mse_loss(unet(scheduler.add_noise(x0, noise, t), t).sample, noise)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step % 100 == 0 or step == steps - 1:
                log(f"ddpm step {step} loss {loss.item():.4f}")
    return unet.eval()


def sample_tiny_ddpm(unet, n: int, seed: int, *, inference_steps: int = 25, batch_size: int = 50,
                     num_threads: int | None = None) -> np.ndarray:
    """(n, 28, 28) uint8 DDIM samples (eta 0): the centre of each 32x32 sample."""
    from diffusers import DDIMScheduler  # noqa: PLC0415

    scheduler = DDIMScheduler(num_train_timesteps=1000)
    scheduler.set_timesteps(inference_steps)
    out: list[np.ndarray] = []
    with torch_threads(num_threads), torch.inference_mode():
        for start in range(0, n, batch_size):
            count = min(batch_size, n - start)
            x = torch.randn((count, 1, 32, 32), generator=torch.Generator().manual_seed(seed + start))
            for t in scheduler.timesteps:
                x = scheduler.step(unet(x, t).sample, t, x).prev_sample
            out.append(((x[:, 0, 2:30, 2:30].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy())
    return np.concatenate(out) if out else np.zeros((0, 28, 28), np.uint8)
