"""Sampling text from a causal LM with the watermark in the loop: the sampler (temperature -> top-k -> top-p ->
watermark, in that order), ``generate_text`` and the watermark's exact expected cost (``ExpectedCostMeter``).

Seeds. ``generate_text`` seeds torch's generator with ``seed + b`` before batch ``b``: the same prompts, batch size,
settings and seed give the same text on the same machine and torch version.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from synthguard.errors import InputError
from synthguard.models.text import TextModel

MAX_PROMPT_TOKENS = 4096


@dataclass(frozen=True)
class TextSample:
    prompt: str
    text: str  # the generated continuation only
    new_tokens: int
    token_ids: list[int]  # the continuation's token ids as generated


def check_sampling(*, max_new_tokens: int, temperature: float, top_p: float, top_k: int) -> None:
    """Validate the sampler's settings at the boundary."""
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise InputError(f"max_new_tokens must be an integer of at least 1, not {max_new_tokens!r}")
    if not temperature > 0:
        raise InputError(f"temperature must be above 0, not {temperature!r}")
    if not 0 < top_p <= 1:
        raise InputError(f"top_p must be in (0, 1], not {top_p!r}")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
        raise InputError(f"top_k must be 0 (off) or a positive integer, not {top_k!r}")


def build_sampler(*, temperature: float, top_k: int, top_p: float) -> list:
    """The warpers that turn the model's scores into the distribution sampled from, in order (identity settings
    leave their warper out)."""
    from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper  # noqa: PLC0415

    sampler = []
    if temperature != 1.0:
        sampler.append(TemperatureLogitsWarper(temperature))
    if top_k:
        sampler.append(TopKLogitsWarper(top_k))
    if top_p < 1.0:
        sampler.append(TopPLogitsWarper(top_p))
    return sampler


def logits_processors(sampler: list, mark, cost_meter: ExpectedCostMeter | None = None):
    """The processor list handed to ``model.generate``: the sampler, then the watermark (``mark``, or None), each
    seen by the meter when there is one."""
    from transformers import LogitsProcessorList  # noqa: PLC0415

    if cost_meter is not None:
        return LogitsProcessorList(cost_meter.wrap(sampler, mark))
    return LogitsProcessorList(sampler + ([mark] if mark is not None else []))


class _Stash:
    """A logits processor that keeps the scores it is handed (as log-probabilities) for the meter."""

    def __init__(self, meter: ExpectedCostMeter, slot: str):
        self.meter, self.slot = meter, slot

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        setattr(self.meter, self.slot, torch.log_softmax(scores.double(), dim=-1))
        return scores


class _Settle:
    def __init__(self, meter: ExpectedCostMeter):
        self.meter = meter

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        m = self.meter
        q = torch.softmax(scores.double(), dim=-1)
        diff = q - m._before.exp()
        # Tokens the model rules out (-inf) that neither distribution can draw add nothing.
        rise = torch.where(diff == 0, 0.0, diff * -m._model).sum(-1)
        m._steps.append(rise.cpu())
        return scores


class ExpectedCostMeter:
    """The watermark's exact cost in expected negative log-likelihood, per generated token.

    At each step let m be the model's distribution, p the sampler's (after temperature, top-k, top-p) and q the
    watermarked one actually sampled from. The expected NLL under m of the token drawn rises by
    ``sum_x (q(x) - p(x)) * -log m(x)``. Summed over a sample's tokens and divided by their number, this is the
    watermark's log-perplexity cost on that sample with the token draws averaged out exactly (Rao-Blackwellised):
    only the contexts the marked run visits are random, so far fewer samples give a tight interval than comparing
    the perplexity of two sets of samples. It is exactly 0 with no watermark, and 0 in expectation over keys for a
    distribution-preserving scheme (SynthID-Text); a distorting one (KGW) shows a positive cost.

    Pass it to ``generate_text(cost_meter=...)``; ``samples`` then holds (sum of the rise in nats, draws) per
    sample, in order; the draws are the sample's tokens plus the end-of-text token when one ended it.
    """

    def __init__(self):
        self.samples: list[tuple[float, int]] = []
        self._steps: list[torch.Tensor] = []
        self._model: torch.Tensor | None = None
        self._before: torch.Tensor | None = None

    def wrap(self, sampler: list, watermark) -> list:
        """The processor list: the model's scores, the sampler, the watermark, each seen by the meter."""
        return [_Stash(self, "_model"), *sampler, _Stash(self, "_before"),
                *([watermark] if watermark is not None else []), _Settle(self)]

    def finish_batch(self, lengths: Sequence[int]) -> None:
        steps = torch.stack(self._steps, 1) if self._steps else torch.zeros(len(lengths), 0, dtype=torch.float64)
        self._steps = []
        for row, n in enumerate(lengths):
            self.samples.append((float(steps[row, :n].sum()), int(n)))

    def mean_cost(self) -> float:
        """Mean rise in NLL per token (nats) over all samples: the perplexity ratio is ``exp`` of it."""
        tokens = sum(n for _, n in self.samples)
        return sum(c for c, _ in self.samples) / tokens if tokens else 0.0


def context_limit(tm: TextModel) -> int | None:
    """How many tokens the model's context holds (its position table), None when its config names no limit."""
    config = getattr(tm.model, "config", None)
    for name in ("n_positions", "max_position_embeddings"):
        value = getattr(config, name, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def check_context(tm: TextModel, prompts: Sequence[str], max_new_tokens: int) -> None:
    """Refuse, before any sampling, a prompt over MAX_PROMPT_TOKENS, or one that with ``max_new_tokens`` runs past
    the model's context (a learned position table has no entry past it). An empty prompt counts as one token: the
    start or end token it is replaced by."""
    longest = max([len(tm.encode(p)) for p in prompts if p] + [1])
    if longest > MAX_PROMPT_TOKENS:
        raise InputError(f"a prompt is over {MAX_PROMPT_TOKENS} tokens")
    limit = context_limit(tm)
    if limit is None or longest + max_new_tokens <= limit:
        return
    room = limit - longest
    advice = f"ask for at most {room} new tokens" if room >= 1 else "shorten the prompt"
    raise InputError(f"the model's context holds {limit} tokens, but the longest prompt ({longest} tokens) plus "
                     f"max_new_tokens {max_new_tokens} come to {longest + max_new_tokens}: {advice}")


def _batches(items: Sequence, size: int):
    for start in range(0, len(items), size):
        yield start, items[start:start + size]


def generate_text(tm: TextModel, prompts: Sequence[str], *, max_new_tokens: int = 100, temperature: float = 1.0,
                  top_p: float = 1.0, top_k: int = 0, seed: int = 0, watermarker=None, batch_size: int = 16,
                  progress: Callable[[int], None] | None = None, streamer=None,
                  cost_meter: ExpectedCostMeter | None = None) -> list[TextSample]:
    """Sample continuations of ``prompts``; ``watermarker`` (a ``TextWatermarker``) marks them while sampling;
    ``cost_meter`` measures the watermark's exact expected cost in NLL on the way. ``progress(done)`` is called
    with the number of prompts done after each batch."""
    if not prompts:
        raise InputError("no prompt to generate from")
    check_sampling(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, top_k=top_k)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer, not {batch_size!r}")
    tok = tm.tokenizer
    # Every prompt is checked against the context before the first batch is sampled.
    check_context(tm, prompts, max_new_tokens)
    out: list[TextSample] = []
    for b, (start, batch) in enumerate(_batches(list(prompts), batch_size)):
        enc = tok([p if p else (tok.bos_token or "") for p in batch], return_tensors="pt", padding=True,
                  add_special_tokens=False)
        if enc["input_ids"].shape[1] == 0:
            enc = tok([tok.eos_token] * len(batch), return_tensors="pt", add_special_tokens=False)
        if enc["input_ids"].shape[1] > MAX_PROMPT_TOKENS:
            raise InputError(f"a prompt is over {MAX_PROMPT_TOKENS} tokens")
        enc = {k: v.to(tm.device) for k, v in enc.items()}
        # The sampler is built here, in this order, and transformers' own warpers are switched off: it applies
        # user processors *before* its warpers, and a watermark must see the distribution actually sampled from.
        sampler = build_sampler(temperature=temperature, top_k=top_k, top_p=top_p)
        mark = watermarker.processor(tm.vocab_size, tm.device) if watermarker is not None else None
        processors = logits_processors(sampler, mark, cost_meter)
        torch.manual_seed(seed + b)
        with torch.inference_mode():
            ids = tm.model.generate(**enc, do_sample=True, max_new_tokens=max_new_tokens, temperature=1.0,
                                    top_p=1.0, top_k=0, min_p=None, typical_p=1.0, logits_processor=processors,
                                    pad_token_id=tok.pad_token_id, streamer=streamer)
        new = ids[:, enc["input_ids"].shape[1]:].cpu()  # (B, new tokens), padded after an end token
        rows, draws = [], []
        for row in new.tolist():
            n = len(row)
            if tok.eos_token_id is not None and tok.eos_token_id in row:
                n = row.index(tok.eos_token_id) + 1
                row = row[:n - 1]
            rows.append(row)
            draws.append(n)
        if cost_meter is not None:
            # Every draw counts, the one that ended the text included: leaving that step out would select steps
            # by their outcome (a marked step that drew the end token tends to have a negative rise) and bias
            # the cost upwards.
            cost_meter.finish_batch(draws)
        for prompt, row in zip(batch, rows, strict=True):
            out.append(TextSample(prompt, tok.decode(row, skip_special_tokens=True), len(row), row))
        if progress is not None:
            progress(start + len(batch))
    return out
