"""The detector's two views as torch modules (diffusers ``ModelMixin`` / ``ConfigMixin``): what training fits and
what scores on a torch device. Scoring on the CPU runs the same networks in numpy (``models.detector``), from the
same ``save_pretrained`` folders, without importing this module.

``to_torch`` builds the module of a numpy view (``PatchNet`` / ``GlobalNet``) with the same weights.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from synthguard.models.detector import GlobalConfig, GlobalNet, PatchConfig, PatchNet


class GlobalDiscriminator(ModelMixin, ConfigMixin):
    """(B, 1, S, S) luma thumbnails in [0, 1] -> (B,) logits of "synthetic" (S = ``size``, see ``thumbnail``).

    Stride-2 3x3 convolutions with LeakyReLU (0.2), no normalisation, and a linear read-out of the flattened
    feature map: position matters here (a digit's shape is the cue), unlike in the patch view.
    """

    @register_to_config
    def __init__(self, size: int = GlobalConfig.size, widths: tuple[int, ...] = GlobalConfig.widths):
        super().__init__()
        GlobalConfig(size, widths)  # refuses an architecture that cannot be built
        layers: list[nn.Module] = [nn.Conv2d(1, widths[0], 3, padding=1), nn.LeakyReLU(0.2)]
        for c_in, c_out in itertools.pairwise(widths):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers)
        side = size // 2 ** (len(widths) - 1)
        self.head = nn.Linear(widths[-1] * side * side, 1)

    def forward(self, thumbs: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(thumbs - 0.5).flatten(1))[:, 0]


class PatchDiscriminator(ModelMixin, ConfigMixin):
    """(B, 1, P, P) luma patches in [0, 1] -> (B,) logits of "synthetic".

    ``widths[0]`` channels at full resolution first (a stride-2 first layer would alias away the highest
    frequencies, where resampling and generator traces live), then one stride-2 conv per further width, LeakyReLU
    (0.2, DCGAN's), no normalisation (a batch statistic would make a patch's score depend on its batch-mates), a
    spatial mean and a linear read-out. ``max_grid`` is a scoring setting kept here so that it travels with the
    weights: the most patches per image side that ``PatchDetector.score`` takes.
    """

    @register_to_config
    def __init__(self, patch_size: int = PatchConfig.patch_size, widths: tuple[int, ...] = PatchConfig.widths,
                 max_grid: int = PatchConfig.max_grid):
        super().__init__()
        PatchConfig(patch_size, widths, max_grid)  # refuses an architecture that cannot be built
        # Two input planes: the centred luma and its high-pass residual (luma minus its 3x3 mean). Forensic CNNs
        # learn far faster when handed the residual (the idea of SRM filters and Bayar & Stamm's constrained conv),
        # since content dwarfs the traces in raw pixels.
        layers: list[nn.Module] = [nn.Conv2d(2, widths[0], 3, padding=1), nn.LeakyReLU(0.2)]
        for c_in, c_out in itertools.pairwise(widths):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(widths[-1], 1)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        residual = patches - nn.functional.avg_pool2d(patches, 3, stride=1, padding=1, count_include_pad=False)
        x = torch.cat([patches - 0.5, 8 * residual], dim=1)  # (B, 2, P, P); 8x: residuals are a few grey levels
        h = self.features(x)  # (B, C, P / 2**(n-1), P / 2**(n-1))
        return self.head(h.mean(dim=(2, 3)))[:, 0]  # (B, C) -> (B,)


def to_torch(net: PatchNet | GlobalNet) -> PatchDiscriminator | GlobalDiscriminator:
    """The torch module of a numpy view, with its weights, in eval mode on the CPU."""
    cls = PatchDiscriminator if isinstance(net, PatchNet) else GlobalDiscriminator
    module = cls(**net.init_kwargs())
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in net.state_dict().items()}
    module.load_state_dict(state, strict=True)
    return module.eval()
