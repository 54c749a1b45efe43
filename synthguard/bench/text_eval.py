"""``synthguard eval text``: a causal LM's perplexity on text, and the text watermarks' cost to it.

The cost is measured twice on the same prompts and seeds: the sampled perplexity of marked against unmarked
continuations (noisy: every drawn token adds variance), and the exact expected rise of the NLL per marked token
(``ExpectedCostMeter``: the draw is averaged out at each visited context).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from synthguard.bench.text_watermark_bench import default_prompts, expected_cost
from synthguard.generate.sampling import ExpectedCostMeter, generate_text
from synthguard.models.text import TextModel, perplexity
from synthguard.watermark.text import make_watermarker
from synthguard.watermark.text.human import load_corpus


def evaluate_text(tm: TextModel, *, data: Path | None = None, windows: int = 100, window_words: int = 150,
                  watermark_cost: bool = False, n_prompts: int = 20, max_new_tokens: int = 100, top_p: float = 0.95,
                  n_keys: int = 1, schemes: tuple[str, ...] = ("synthid", "kgw")) -> dict:
    """Perplexity of ``tm`` on ``windows`` windows of ``window_words`` words of ``data`` (default: the standard
    library's docstrings); with ``watermark_cost`` also ``measure_watermark_cost`` over ``n_prompts`` news prompts."""
    texts = load_corpus(data if data is not None else "stdlib-docstrings", words=window_words, limit=windows)
    ppl, tokens = perplexity(tm, [("", t) for t in texts])
    result = {"model": tm.name, "data": str(data or "stdlib-docstrings"), "windows": len(texts), "tokens": tokens,
              "perplexity": ppl}
    if watermark_cost:
        prompts = (default_prompts() * (n_prompts // 50 + 1))[:n_prompts]
        result["watermark_cost"] = measure_watermark_cost(tm, prompts, max_new_tokens=max_new_tokens, top_p=top_p,
                                                          n_keys=n_keys, schemes=schemes)
    return result


def measure_watermark_cost(tm, prompts: list[str], *, max_new_tokens: int, top_p: float, n_keys: int,
                           schemes: tuple[str, ...]) -> dict:
    """Unmarked and marked continuations of the same prompts with the same seeds, for each scheme and measurement
    key: the sampled perplexity under ``tm`` and the exact expected cost per marked token (``ExpectedCostMeter``)."""
    def measure(wm) -> tuple[list, list]:
        meter = ExpectedCostMeter()
        samples = generate_text(tm, prompts, max_new_tokens=max_new_tokens, top_p=top_p, seed=0, watermarker=wm,
                                batch_size=min(len(prompts), 50), cost_meter=meter)
        return [(tm.encode(s.prompt), s.token_ids) for s in samples], meter.samples

    plain, _ = measure(None)
    plain_ppl, plain_tokens = perplexity(tm, plain)
    out: dict = {"prompts": len(prompts), "max_new_tokens": max_new_tokens, "top_p": top_p, "keys": n_keys,
                 "schemes": list(schemes), "unmarked": {"perplexity": plain_ppl, "tokens": plain_tokens}}
    for scheme in schemes:
        pairs, costs, per_key = [], [], []
        for k in range(n_keys):
            # Fixed measurement keys, not anyone's identity (key 0 is the one the published figures used).
            secret = b"synthguard eval text watermark cost" + (f" {k}".encode() if k else b"")
            wm = make_watermarker(scheme, secret)
            marked, cost = measure(wm)
            pairs += marked
            costs += cost
            per_key.append({"key_id": wm.key_id, "expected": expected_cost(cost)})
        value, count = perplexity(tm, pairs)
        entry = {"perplexity": value, "tokens": count, "increase": value / plain_ppl - 1,
                 "expected": expected_cost(costs), "keys": per_key}
        if n_keys >= 2:
            rises = np.array([e["expected"]["perplexity_increase"] for e in per_key])
            se = rises.std(ddof=1) / np.sqrt(len(rises))
            entry["over_keys"] = {"mean": float(rises.mean()), "sd": float(rises.std(ddof=1)),
                                  "95ci": [float(rises.mean() - 1.96 * se), float(rises.mean() + 1.96 * se)]}
        out[scheme] = entry
    return out
