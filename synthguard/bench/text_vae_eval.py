"""``synthguard eval text-vae``: a sentence VAE on held-out sentences and along interpolations.

Held-out sentences: the lines the training held out (the model's ``training.json`` settings: the same tokenizer,
token range and held-out share of the same file). Figures: reconstruction NLL per token and token accuracy, KL per
sentence, the perplexity bound per token from the ELBO and from the importance-weighted bound (Burda et al. 2016,
``k`` posterior samples per sentence: tighter), and active units.

Interpolation smoothness: ``pairs`` random pairs of held-out sentences (seeded); each path has ``steps`` points from
one posterior mean to the other, decoded greedily. An intermediate point (not an end) is *well-formed* when its
per-token perplexity under the built-in LM is at most the 90th percentile of the held-out real sentences' per-token
perplexities under the same LM (each sentence scored alone after the start token); the share of well-formed
intermediate sentences is reported with the real sentences' share for comparison (0.9 by construction, less ties),
and the share of distinct intermediate sentences within each path (1.0: every point decodes to its own sentence).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from synthguard.errors import InputError
from synthguard.generate.text_vae import interpolation_path
from synthguard.models.text import TextModel, token_nll_ids
from synthguard.models.text_vae import LoadedTextVAE
from synthguard.training.text import read_corpus
from synthguard.training.text_vae import TextVAETrainConfig, heldout_figures, pad_batch, split_sentences

WELL_FORMED_PERCENTILE = 90


@dataclass(frozen=True)
class TextVAEEvaluation:
    """What ``evaluate_text_vae`` measured (see the module's docstring for each figure's rule)."""

    model: str
    data: str
    data_matches_training: bool | None  # None: the model has no training record to compare with
    heldout: dict  # heldout_figures' figures
    iw_samples: int
    iw_nll_per_sentence: float
    iw_perplexity_bound_per_token: float
    pairs: int
    steps: int
    lm_threshold: float  # per-token perplexity under the built-in LM
    real_well_formed: float
    intermediate_well_formed: float
    lm_median: float  # the real sentences' median per-token perplexity: a stricter rule
    intermediate_below_median: float
    intermediate_median_perplexity: float
    intermediate_distinct: float
    ends_reconstructed: float  # share of path ends that decode (greedy, at the mean) to their own sentence
    examples: tuple[tuple[str, ...], ...]  # the first paths' decoded sentences

    def to_dict(self) -> dict:
        return {"model": self.model, "data": self.data, "data_matches_training": self.data_matches_training,
                "heldout": self.heldout,
                "importance_weighted": {"samples": self.iw_samples, "nll_per_sentence": self.iw_nll_per_sentence,
                                        "perplexity_bound_per_token": self.iw_perplexity_bound_per_token},
                "interpolation": {"pairs": self.pairs, "steps": self.steps,
                                  "rule": f"per-token perplexity under the built-in LM <= the "
                                          f"{WELL_FORMED_PERCENTILE}th percentile of the held-out sentences'",
                                  "lm_perplexity_threshold": self.lm_threshold,
                                  "real_well_formed": self.real_well_formed,
                                  "intermediate_well_formed": self.intermediate_well_formed,
                                  "real_median_perplexity": self.lm_median,
                                  "intermediate_below_real_median": self.intermediate_below_median,
                                  "intermediate_median_perplexity": self.intermediate_median_perplexity,
                                  "intermediate_distinct": self.intermediate_distinct,
                                  "ends_reconstructed": self.ends_reconstructed,
                                  "examples": [list(p) for p in self.examples]}}

    def describe(self) -> tuple[str, ...]:
        h = self.heldout
        match = {None: "", True: "", False: " (not the file the model was trained on)"}[self.data_matches_training]
        return (
            f"{self.model} on {h['sentences']} held-out sentences of {self.data}{match} ({h['tokens']} tokens):",
            f"  reconstruction {h['reconstruction_nll_per_token']:.3f} nats/token (at the posterior mean "
            f"{h['reconstruction_nll_per_token_at_mean']:.3f}; token accuracy {h['token_accuracy_at_mean']:.3f}), "
            f"KL {h['kl_per_sentence']:.2f} nats/sentence, active units {h['active_units']}/{h['latent_dim']}",
            f"  perplexity bound per token: ELBO {h['perplexity_bound_per_token']:.2f}, importance-weighted "
            f"(k={self.iw_samples}) {self.iw_perplexity_bound_per_token:.2f}",
            f"  interpolations ({self.pairs} pairs x {self.steps} steps, greedy): well-formed intermediate sentences "
            f"{self.intermediate_well_formed:.3f} (real held-out sentences {self.real_well_formed:.3f}; rule: "
            f"per-token perplexity under the built-in LM <= {self.lm_threshold:.1f}, the {WELL_FORMED_PERCENTILE}th "
            f"percentile of the real ones), distinct {self.intermediate_distinct:.3f}, ends reconstructed "
            f"{self.ends_reconstructed:.3f}",
            f"  stricter: intermediate sentences at or below the real ones' median perplexity ({self.lm_median:.1f}): "
            f"{self.intermediate_below_median:.3f}; their own median {self.intermediate_median_perplexity:.1f}",
        )


def heldout_sentences(vae: LoadedTextVAE, data: str | Path) -> tuple[list[tuple[int, ...]], list[str], bool | None]:
    """(token ids, texts, whether ``data`` is the file the model was trained on) of the held-out sentences, split
    as the model's training record says (the defaults when it has none)."""
    config = (vae.training or {}).get("config", {})
    defaults = TextVAETrainConfig()
    text, sha256, _ = read_corpus(data)
    split = split_sentences(text, vae.tokenizer, min_tokens=config.get("min_tokens", defaults.min_tokens),
                            max_tokens=config.get("max_tokens", defaults.max_tokens),
                            holdout=config.get("holdout", defaults.holdout))
    trained_on = (vae.training or {}).get("data", {}).get("sha256")
    return list(split.heldout), list(split.heldout_text), None if trained_on is None else trained_on == sha256


def importance_weighted_nll(vae: LoadedTextVAE, sentences: Sequence[Sequence[int]], *, samples: int, seed: int = 0,
                            batch_size: int = 64) -> float:
    """Mean over sentences of -log p(x) estimated with ``samples`` posterior samples (an upper bound on the NLL
    that tightens with ``samples``), in nats per sentence."""
    model = vae.model
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    total = 0.0
    with torch.inference_mode():
        for start in range(0, len(sentences), batch_size):
            ids, lengths = pad_batch(sentences[start:start + batch_size], model.config.eos_token_id, device)
            mu, logvar = model.encode(ids, lengths)
            inputs, targets = model.teacher_inputs(ids, lengths)
            mask = torch.arange(targets.shape[1], device=device)[None] <= lengths[:, None]
            weights = []
            for _ in range(samples):
                eps = torch.randn(mu.shape, generator=generator).to(device)
                z = mu + eps * torch.exp(0.5 * logvar)
                logits, _ = model.decode_logits(z, inputs)
                log_px = -(torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
                           * mask).sum(1)
                log_pz = -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(1)
                log_qz = -0.5 * (eps.pow(2) + logvar + math.log(2 * math.pi)).sum(1)
                weights.append(log_px + log_pz - log_qz)
            log_p = torch.logsumexp(torch.stack(weights), 0) - math.log(samples)
            total -= float(log_p.sum())
    return total / len(sentences)


def lm_perplexity(lm: TextModel, ids: Sequence[int]) -> float:
    """Per-token perplexity of one sentence under ``lm``, scored alone after the start token."""
    nll = token_nll_ids(lm, [], list(ids))
    return math.exp(sum(nll) / len(nll)) if nll else math.inf


def evaluate_text_vae(vae: LoadedTextVAE, lm: TextModel, *, data: str | Path = "tinyshakespeare", pairs: int = 50,
                      steps: int = 8, iw_samples: int = 16, seed: int = 0, limit: int | None = None,
                      examples: int = 3) -> TextVAEEvaluation:
    """Evaluate ``vae`` on the held-out sentences of ``data`` (at most ``limit`` of them) and along ``pairs``
    ``steps``-point interpolations; ``lm`` (the built-in LM) judges well-formedness."""
    for name, value, low in (("pairs", pairs, 1), ("steps", steps, 3), ("iw_samples", iw_samples, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InputError(f"{name} must be an integer of at least {low}, not {value!r}")
    ids, texts, matches = heldout_sentences(vae, data)
    if limit is not None:
        ids, texts = ids[:limit], texts[:limit]
    if len(ids) < 2:
        raise InputError(f"{data}: {len(ids)} held-out sentence(s); the evaluation needs at least 2")
    figures = heldout_figures(vae.model, ids, seed=seed)
    iw = importance_weighted_nll(vae, ids, samples=iw_samples, seed=seed)
    scored_tokens = figures["tokens"]  # end tokens included, as in the ELBO bound

    real = np.array([lm_perplexity(lm, s) for s in ids])
    threshold = float(np.percentile(real, WELL_FORMED_PERCENTILE))
    rng = np.random.default_rng(seed)
    device = next(vae.model.parameters()).device
    median = float(np.median(real))
    well, distinct, ends, paths, middle_ppl = [], [], [], [], []
    with torch.inference_mode():
        for _ in range(pairs):
            a, b = rng.choice(len(ids), size=2, replace=False)
            mus = [vae.model.encode(torch.tensor([ids[k]], device=device), torch.tensor([len(ids[k])]))[0]
                   for k in (a, b)]
            decoded = vae.model.greedy(interpolation_path(mus[0], mus[1], steps), banned=vae.banned_ids)
            middle = decoded[1:-1]
            scored = [lm_perplexity(lm, m) if m else math.inf for m in middle]
            middle_ppl += scored
            well += [p <= threshold for p in scored]
            distinct.append(len({tuple(m) for m in middle}) / len(middle))
            ends += [decoded[0] == list(ids[a]), decoded[-1] == list(ids[b])]
            if len(paths) < examples:
                paths.append(tuple(vae.decode_ids(m) for m in decoded))
    return TextVAEEvaluation(
        model=vae.name, data=Path(str(data)).name, data_matches_training=matches, heldout=figures,
        iw_samples=iw_samples, iw_nll_per_sentence=iw,
        iw_perplexity_bound_per_token=math.exp(iw * len(ids) / scored_tokens), pairs=pairs, steps=steps,
        lm_threshold=threshold, real_well_formed=float(np.mean(real <= threshold)),
        intermediate_well_formed=float(np.mean(well)), lm_median=median,
        intermediate_below_median=float(np.mean(np.array(middle_ppl) <= median)),
        intermediate_median_perplexity=float(np.median(middle_ppl)), intermediate_distinct=float(np.mean(distinct)),
        ends_reconstructed=float(np.mean(ends)), examples=tuple(paths))
