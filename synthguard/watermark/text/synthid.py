"""SynthID-Text tournament sampling (Dathathri et al., Nature 2024), ``io.synthguard.synthid-text.1``, the default
text watermark.

At each step the candidate tokens meet in a ``depth``-layer tournament decided by pseudo-random bits
``g_l(context, token)``. The closed form used here (the same as transformers' ``SynthIDTextWatermarkLogitsProcessor``)
reweights the next-token distribution layer by layer, ``p <- p * (1 + g_l - E_p[g_l])``: averaged over keys the
distribution is unchanged, so the watermark costs no quality in expectation. The g-values are computed exactly as
transformers computes them (same hash, same sampling table), but only for the ``MAX_CANDIDATES`` likeliest tokens the
sampler can still pick (after temperature / top-k / top-p; any tail keeps its probabilities), not for the whole
vocabulary at every layer: that is what keeps generation at the unmarked speed.

Detection: at every scored position, k of the observed token's ``depth`` bits are ones (Binomial(depth, 1/2) in
unmarked text). Each position scores the log-likelihood ratio of its k under a mixture, marked or not
(``SynthIDText.score_table``), which weighs strongly marked positions above those that look fair; the p-value is the
exact tail of the sum of those scores.

The bits come from a seeded table of 2^16 bits, which for a random seed holds ~0.2% more ones (or zeros) than half:
every text's null mean would move with the key. The seed is chosen so the table is balanced.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from synthguard.errors import InputError
from synthguard.watermark.text.base import TextWatermarker
from synthguard.watermark.text.keys import LCG_MULTIPLIER, accumulate_hash, int64s

# The tournament runs on at most this many of the likeliest tokens (the rest keep their probabilities).
MAX_CANDIDATES = 512
# SynthID's n-gram length (context = n - 1 tokens). A replaced word also changes the context of the n - 1 tokens
# after it, so a shorter context keeps more of the mark under substitution; but short contexts repeat more across
# texts, which moves a key's null. ARCHITECTURE.md ("Decisions and why") gives the reason for 4.
DEFAULT_SYNTHID_NGRAM = 4
# SynthID's detection score (``SynthIDText.score_table``): a mixture log-likelihood ratio with the mixture weight,
# the marked bits' rate and the integer scale.
MIX_WEIGHT, MIX_RATE, MIX_SCALE = 0.3, 0.7, 4.0
SYNTHID_SCORE = f"mixture-llr-{MIX_WEIGHT}-{MIX_RATE}-{MIX_SCALE:g}"



class SynthIDText(TextWatermarker):
    """SynthID-Text tournament sampling (see the module docstring)."""

    name = "synthid-text"
    version = "1"
    nominal_rate = 0.5

    def __init__(self, key: bytes, *, depth: int = 30, ngram_len: int = DEFAULT_SYNTHID_NGRAM,
                 sampling_table_size: int = 2 ** 16,
                 context_history_size: int = 1024, **kwargs):
        super().__init__(key, **kwargs)
        if depth < 1 or ngram_len < 2:
            raise InputError("SynthID-Text needs depth >= 1 and ngram_len >= 2")
        self.depth = depth
        self.ngram_len = ngram_len
        self.context = ngram_len - 1
        self.keys = int64s(key, "layer-keys", depth)
        self.sampling_table_size = sampling_table_size
        self.context_history_size = context_history_size
        # The g-values are bits of a seeded table (transformers' construction). A random table of 2^16 bits has
        # about 0.2% more ones or zeros than half, which shifts every text's null score the same way for a given
        # key (z about +-0.3 at 200 tokens): a key-dependent offset. The first seed whose table is balanced to
        # within 8 bits (a shift below 0.02 in z at 200 tokens) removes it; transformers builds the same table
        # from that seed.
        for attempt in range(100_000):
            seed = int64s(key, f"table-seed/{attempt}", 1)[0]
            table = torch.randint(0, 2, (sampling_table_size,), generator=torch.Generator().manual_seed(seed))
            if abs(2 * int(table.sum()) - sampling_table_size) <= 16:
                break
        self.sampling_table_seed, self.sampling_table = seed, table
        self._keys_t = torch.tensor(self.keys, dtype=torch.long)

    @property
    def trials_per_position(self) -> int:
        return self.depth

    @property
    def score_table(self) -> np.ndarray:
        """The log-likelihood ratio of a position's ``depth`` bits, k of them ones, for a mixture: with
        probability MIX_WEIGHT the position is marked with bits of rate MIX_RATE, else it is a fair coin
        (``log(1 - w + w (2r)^k (2 - 2r)^(depth - k))``), times MIX_SCALE and rounded to integers.

        Why not the plain count of ones. How much a position is marked depends on the model's entropy there: a
        confident step leaves the bits fair, an uncertain one pushes them up, and editing removes the mark around
        each changed word. The count weighs every position alike; this score is near zero for positions that look
        fair and rises steeply for strongly marked ones, so the marked minority counts. The p-value stays exact:
        the score's null distribution follows from Binomial(depth, rate) through the table (``null_pmf``)."""
        k = np.arange(self.depth + 1)
        w, r = MIX_WEIGHT, MIX_RATE
        llr = np.log1p(-w + w * np.exp(k * math.log(2 * r) + (self.depth - k) * math.log(2 - 2 * r)))
        return np.round(MIX_SCALE * (llr - llr.min())).astype(np.int64)

    def settings(self) -> dict:
        return {**super().settings(), "depth": self.depth, "ngram_len": self.ngram_len, "score": SYNTHID_SCORE}

    def transformers_config(self):
        """The same watermark as transformers' ``SynthIDTextWatermarkingConfig`` (its processor hashes the whole
        vocabulary at every layer, so it is slower; outputs are detected the same way)."""
        from transformers import SynthIDTextWatermarkingConfig  # noqa: PLC0415

        return SynthIDTextWatermarkingConfig(ngram_len=self.ngram_len, keys=self.keys,
                                             sampling_table_size=self.sampling_table_size,
                                             sampling_table_seed=self.sampling_table_seed,
                                             context_history_size=self.context_history_size)

    def g_values(self, context_hash: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Bits (..., depth) for ``tokens`` (...) after contexts whose hash is ``context_hash`` (broadcastable)."""
        h = accumulate_hash(context_hash, tokens[..., None])
        keyed = (h[..., None] + self._keys_t.to(h.device)) * LCG_MULTIPLIER + 1
        table = self.sampling_table.to(h.device)
        return table[keyed % self.sampling_table_size]

    def _position_hits(self, ids: torch.Tensor, ctx_hash: torch.Tensor) -> torch.Tensor:
        c = self.context
        step = 8192  # bounded memory on long texts: (positions x depth) int64 per chunk
        return torch.cat([self.g_values(ctx_hash[i:i + step], ids[c + i:c + i + step]).sum(-1)
                          for i in range(0, len(ctx_hash), step)])

    def processor(self, vocab_size: int, device: torch.device | str = "cpu"):
        return _SynthIDProcessor(self, torch.device(device))


class _SynthIDProcessor:
    """Tournament reweighting on the sampler's candidate tokens only (a transformers LogitsProcessor)."""

    def __init__(self, wm: SynthIDText, device: torch.device):
        self.wm = wm
        self.device = device
        self.seen: list[set[int]] | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        batch, vocab = scores.shape
        c = self.wm.context
        if self.seen is None:
            self.seen = [set() for _ in range(batch)]
        if input_ids.shape[1] < c:
            return scores
        finite = torch.isfinite(scores).sum(1).max().item()
        k = int(min(vocab, MAX_CANDIDATES, max(finite, 1)))
        logp = torch.log_softmax(scores.double(), dim=1)
        top_logp, top_ids = logp.topk(k, dim=1)
        mass = top_logp.exp().sum(1, keepdim=True)  # below 1 only when more than k tokens are possible
        probs = top_logp.exp() / mass
        ctx_hash = accumulate_hash(torch.ones(batch, dtype=torch.long, device=input_ids.device),
                                   input_ids[:, input_ids.shape[1] - c:])
        g = self.wm.g_values(ctx_hash[:, None], top_ids).to(probs.dtype)  # (batch, k, depth)
        for layer in range(g.shape[-1]):
            g_layer = g[..., layer]
            probs = probs * (1 + g_layer - (g_layer * probs).sum(1, keepdim=True))
        probs = probs.clamp_min(0)  # rounding can leave -1e-8 where 1 + g - E[g] is exactly 0
        # The tournament runs on the k likeliest tokens with their share of the mass; the tail keeps its own
        # probabilities, so the distribution is still unchanged in expectation over keys.
        out = logp.clone()
        out.scatter_(1, top_ids, torch.log(probs * mass))  # -inf where a probability is 0
        out = out.to(scores.dtype)
        hashes = ctx_hash.tolist()
        for row, h in enumerate(hashes):
            seen = self.seen[row]
            if h in seen:
                out[row] = scores[row]  # repeated context: leave it unmarked (and unscored at detection)
            else:
                if len(seen) < self.wm.context_history_size:
                    seen.add(h)
        return out
