"""Sampling text from a causal LM with the watermark in the loop: the sampler (temperature -> top-k -> top-p ->
watermark, in that order), ``generate_text`` and the watermark's exact expected cost (``ExpectedCostMeter``).

Seeds. ``generate_text`` seeds torch's generator with ``seed + b`` before batch ``b``: the same prompts, batch size,
settings and seed give the same text on the same machine and torch version.

Past the context. A model with a position table (the built-in one holds 256 tokens) has no position past it, so a
continuation that would run past it slides its window: the first pass samples up to the end of the context, and each
later pass samples ``slide_chunk(limit)`` more tokens with the last ``limit - chunk`` tokens as its context. The
watermark's processor is the same object through every pass and sees those real preceding tokens (it hashes the few
before each position), so the whole text is marked as one and detected as one. A prompt that alone fills the
context is refused (``check_context``): cutting it would drop what was asked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from synthguard.errors import InputError
from synthguard.models.text import TextModel

MAX_PROMPT_TOKENS = 4096
# Past the context, each pass after the first samples this share of it (the rest is the pass's context).
SLIDE_SHARE = 4


@dataclass(frozen=True)
class TextSample:
    prompt: str
    text: str  # the generated continuation only
    new_tokens: int
    token_ids: list[int]  # the continuation's token ids as generated
    seed: int | None = None  # the seed torch was seeded with before the sample's batch


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


def slide_chunk(limit: int) -> int:
    """How many tokens each pass after the first samples once the window slides (see the module docstring)."""
    return max(1, limit // SLIDE_SHARE)


def check_context(tm: TextModel, prompts: Sequence[str], max_new_tokens: int) -> bool:
    """Refuse, before any sampling, a prompt over MAX_PROMPT_TOKENS, or one that alone fills the model's context
    (no room for a new token). An empty prompt counts as one token: the start or end token it is replaced by.
    True when a continuation of ``max_new_tokens`` runs past the context, so that sampling slides its window."""
    longest = max([len(tm.encode(p)) for p in prompts if p] + [1])
    if longest > MAX_PROMPT_TOKENS:
        raise InputError(f"a prompt is over {MAX_PROMPT_TOKENS} tokens")
    limit = context_limit(tm)
    if limit is None:
        return False
    if longest >= limit:
        raise InputError(f"the model's context holds {limit} tokens, but the longest prompt has {longest}: shorten "
                         f"the prompt to at most {limit - 1} tokens (past the context, sampling slides its window, "
                         "but the prompt must fit)")
    return longest + max_new_tokens > limit


def _batches(items: Sequence, size: int):
    for start in range(0, len(items), size):
        yield start, items[start:start + size]


def generate_text(tm: TextModel, prompts: Sequence[str], *, max_new_tokens: int = 100, temperature: float = 1.0,
                  top_p: float = 1.0, top_k: int = 0, seed: int = 0, watermarker=None, batch_size: int = 16,
                  progress: Callable[[int], None] | None = None, streamer=None,
                  cost_meter: ExpectedCostMeter | None = None,
                  stop_ids: Sequence[int] | None = None) -> list[TextSample]:
    """Sample continuations of ``prompts``; ``watermarker`` (a ``TextWatermarker``) marks them while sampling;
    ``cost_meter`` measures the watermark's exact expected cost in NLL on the way. ``progress(done)`` is called
    with the number of prompts done after each batch. A sample ends at the first of ``stop_ids`` it draws (None:
    the model's end-of-text ids, ``TextModel.end_of_text_ids``; a chat passes ``end_of_turn_ids``), or after
    ``max_new_tokens``, past the context by sliding the window (see the module docstring)."""
    if not prompts:
        raise InputError("no prompt to generate from")
    check_sampling(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, top_k=top_k)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer, not {batch_size!r}")
    tok = tm.tokenizer
    # Every prompt is checked against the context before the first batch is sampled.
    check_context(tm, prompts, max_new_tokens)
    stop = tuple(tm.end_of_text_ids() if stop_ids is None else stop_ids)
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
        new = _sample_batch(tm, enc, max_new_tokens, processors, stop, streamer)  # (B, new), padded after a stop
        rows, draws = [], []
        for row in new.tolist():
            n = len(row)
            end = next((j for j, t in enumerate(row) if t in stop), None)
            if end is not None:
                n = end + 1
                row = row[:end]
            rows.append(row)
            draws.append(n)
        if cost_meter is not None:
            # Every draw counts, the one that ended the text included: leaving that step out would select steps
            # by their outcome (a marked step that drew the end token tends to have a negative rise) and bias
            # the cost upwards.
            cost_meter.finish_batch(draws)
        for prompt, row in zip(batch, rows, strict=True):
            out.append(TextSample(prompt, tok.decode(row, skip_special_tokens=True), len(row), row, seed + b))
        if progress is not None:
            progress(start + len(batch))
    return out


def _sample_batch(tm: TextModel, enc: dict, max_new_tokens: int, processors, stop: tuple[int, ...],
                  streamer) -> torch.Tensor:
    """The new tokens (B, T) of one left-padded batch, in one pass when prompt and continuation fit the context,
    else in passes whose context is the last ``limit - slide_chunk(limit)`` tokens; after a row's stop token its
    row holds padding. The processors (watermark, meter) see every pass, in order."""
    from transformers import StoppingCriteriaList  # noqa: PLC0415

    tok = tm.tokenizer
    limit = context_limit(tm)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    texts = [row[m.bool()].tolist() for row, m in zip(ids.cpu(), mask.cpu(), strict=True)]  # each row, unpadded
    ended = torch.zeros(len(texts), dtype=torch.bool)
    shown = _Passes(streamer) if streamer is not None else None
    pieces: list[torch.Tensor] = []
    produced = 0
    while produced < max_new_tokens and not bool(ended.all()):
        if pieces:  # a later pass: the context slides to the last limit - chunk tokens of each row
            chunk = min(slide_chunk(limit), max_new_tokens - produced)
            ids, mask = _left_padded([t[-(limit - chunk):] for t in texts], tok.pad_token_id, tm.device)
            if shown is not None:
                shown.skip_context()
        else:
            chunk = max_new_tokens if limit is None else min(max_new_tokens, limit - ids.shape[1])
        with torch.inference_mode():
            result = tm.model.generate(input_ids=ids, attention_mask=mask, do_sample=True, max_new_tokens=chunk,
                                       temperature=1.0, top_p=1.0, top_k=0, min_p=None, typical_p=1.0,
                                       logits_processor=processors, pad_token_id=tok.pad_token_id,
                                       eos_token_id=list(stop) or None, streamer=shown,
                                       stopping_criteria=StoppingCriteriaList([_Ended(ended.to(ids.device))]))
            new = result[:, ids.shape[1]:].cpu()
            new[ended] = tok.pad_token_id  # rows that ended in an earlier pass sampled nothing of theirs here
        pieces.append(new)
        produced += new.shape[1]
        for i, row in enumerate(new.tolist()):
            texts[i] += row
            ended[i] |= any(t in stop for t in row)
        if new.shape[1] < chunk:  # generate stopped early: every row drew a stop token
            break
    if shown is not None:
        shown.finish()
    return torch.cat(pieces, 1) if pieces else torch.zeros(len(texts), 0, dtype=torch.long)


def _left_padded(rows: list[list[int]], pad: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], dtype=torch.long, device=device)
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], dtype=torch.long, device=device)
    return ids, mask


class _Ended:
    """A stopping criterion: the rows that ended in an earlier pass are done from this pass's first step (so a
    pass stops once the rows still being written end)."""

    def __init__(self, ended: torch.Tensor):
        self.ended = ended

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        return self.ended.clone()


class _Passes:
    """One streamer across the passes of a sliding window: a later pass's context (already shown) is skipped, and
    the end is announced once, after the last pass."""

    def __init__(self, inner):
        self.inner, self.skip = inner, False

    def skip_context(self) -> None:
        self.skip = True

    def put(self, value) -> None:
        if self.skip:
            self.skip = False  # generate hands a streamer its context first
            return
        self.inner.put(value)

    def end(self) -> None:
        pass

    def finish(self) -> None:
        self.inner.end()
