"""The green-list watermark of Kirchenbauer et al. (ICML 2023), ``io.synthguard.kgw.1``.

Generation uses transformers' own ``WatermarkLogitsProcessor`` ("lefthash": the green list is seeded by the previous
token and the key), which adds ``delta`` to the logits of a ``gamma`` fraction of the vocabulary. Detection counts
green tokens among n scored positions; unmarked text gives Binomial(n, gamma) (an exact binomial test: the score of
a position is its hit).
"""

from __future__ import annotations

import numpy as np
import torch

from synthguard.errors import InputError
from synthguard.watermark.text.base import TextWatermarker
from synthguard.watermark.text.keys import int64s


class KGWText(TextWatermarker):
    """The green-list watermark through transformers' ``WatermarkLogitsProcessor`` (lefthash, one token of
    context)."""

    name = "kgw"
    version = "1"
    context = 1
    dedupe_with_token = True

    def __init__(self, key: bytes, *, gamma: float = 0.25, delta: float = 2.0, **kwargs):
        super().__init__(key, **kwargs)
        if not 0 < gamma < 1 or delta <= 0:
            raise InputError("KGW needs 0 < gamma < 1 and delta > 0")
        self.gamma = gamma
        self.delta = delta
        self.hashing_key = int64s(key, "hashing-key", 1)[0] % (2 ** 31 - 1) + 1

    nominal_rate = property(lambda self: self.gamma)  # type: ignore[assignment]

    @property
    def trials_per_position(self) -> int:
        return 1

    def settings(self) -> dict:
        return {**super().settings(), "gamma": self.gamma, "delta": self.delta}

    def transformers_config(self):
        from transformers import WatermarkingConfig  # noqa: PLC0415

        return WatermarkingConfig(greenlist_ratio=self.gamma, bias=self.delta, hashing_key=self.hashing_key,
                                  seeding_scheme="lefthash", context_width=1)

    def processor(self, vocab_size: int, device: torch.device | str = "cpu"):
        from transformers.generation.logits_process import WatermarkLogitsProcessor  # noqa: PLC0415

        return WatermarkLogitsProcessor(vocab_size=vocab_size, device=device, greenlist_ratio=self.gamma,
                                        bias=self.delta, hashing_key=self.hashing_key, seeding_scheme="lefthash",
                                        context_width=1)

    def bind_vocab(self, vocab_size: int) -> None:
        """Detection needs the generating model's vocabulary size (the green list is a permutation of it)."""
        self.vocab_size = vocab_size

    def _position_hits(self, ids: torch.Tensor, ctx_hash: torch.Tensor) -> torch.Tensor:
        vocab = getattr(self, "vocab_size", None)
        if vocab is None:
            raise InputError("KGW detection needs the model's vocabulary size (bind_vocab)")
        prev, nxt = ids[:-1].tolist(), ids[1:].tolist()
        out = torch.zeros(len(nxt), dtype=torch.long)
        for i, (p, t) in enumerate(zip(prev, nxt, strict=True)):
            if 0 <= t < vocab:
                green = self._green(p, vocab)
                out[i] = int((green[t >> 3] >> (7 - (t & 7))) & 1)
        return out

    def _green(self, prev: int, vocab: int) -> np.ndarray:
        """The packed green-list bitset after token ``prev`` (cached: one permutation of the vocabulary each)."""
        cache = self.__dict__.setdefault("_green_cache", {})
        bits = cache.get(prev)
        if bits is None:
            generator = torch.Generator()
            # transformers' lefthash seed, then its permutation of the vocabulary: green = the first green_size.
            generator.manual_seed((self.hashing_key * prev) % (2 ** 64 - 1))
            perm = torch.randperm(vocab, generator=generator)[:int(vocab * self.gamma)].numpy()
            mask = np.zeros(vocab, bool)
            mask[perm] = True
            bits = np.packbits(mask)
            if len(cache) >= 50_000:
                cache.clear()
            cache[prev] = bits
        return bits
