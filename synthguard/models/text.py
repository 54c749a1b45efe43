"""Autoregressive text generation through transformers: the built-in model, a local folder, a local GGUF file or a
Hugging Face hub id, with an optional text watermark in the sampling loop.

Seeds. ``generate_text`` seeds torch's generator with ``seed + b`` before batch ``b``: the same prompts, batch size,
settings and seed give the same text on the same machine and torch version.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from synthguard.core.torch_utils import is_hub_id, resolve_device
from synthguard.errors import InputError

BUILTIN_TEXT_FOLDER = Path(__file__).parent / "weights" / "text"
MAX_PROMPT_TOKENS = 4096


@dataclass
class TextModel:
    """A causal LM with its tokenizer, ready to generate and score."""

    model: Any
    tokenizer: Any
    name: str  # what the user named (or "builtin")
    version: str
    device: torch.device
    source: dict = field(default_factory=dict)

    @property
    def vocab_size(self) -> int:
        return int(self.model.get_output_embeddings().weight.shape[0])

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]] | None]:
        try:
            enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            return enc["input_ids"], [tuple(o) for o in enc["offset_mapping"]]
        except (NotImplementedError, TypeError, ValueError):
            return self.encode(text), None


def _quiet_transformers() -> None:
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import transformers  # noqa: PLC0415

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


def load_text_model(spec: str | os.PathLike | None = None, *, device: str = "auto",
                    dtype: torch.dtype = torch.float32) -> TextModel:
    """Load a causal LM: ``None`` or "builtin" for the built-in model, a folder holding ``config.json``, a ``.gguf``
    file, or a hub id "owner/name" (needs the network or the local hub cache). Errors raise ``InputError``."""
    _quiet_transformers()
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: PLC0415

    dev = resolve_device(device)
    name = "builtin" if spec in (None, "builtin") else str(spec)
    kwargs: dict[str, Any] = {}
    if name == "builtin":
        where = BUILTIN_TEXT_FOLDER
        if not (where / "config.json").is_file():
            raise InputError(f"the built-in text model is missing from {where}: run `synthguard train text`")
        load_from = str(where)
    else:
        path = Path(name).expanduser()
        if path.is_file() and path.suffix.lower() == ".gguf":
            load_from, kwargs["gguf_file"] = str(path.parent), path.name
        elif path.is_dir():
            if not (path / "config.json").is_file():
                raise InputError(f"{path}: not a model folder (no config.json)")
            load_from = str(path)
        elif path.exists():
            raise InputError(f"{path}: not a model folder or a .gguf file")
        elif is_hub_id(name):
            load_from = name
        else:
            raise InputError(f"{name}: no such model folder or file (and not a hub id owner/name)")
    local = load_from != name or Path(load_from).exists()
    try:
        tokenizer = AutoTokenizer.from_pretrained(load_from, local_files_only=local, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(load_from, local_files_only=local, dtype=dtype, **kwargs)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError, ImportError) as exc:
        hint = " (offline? a hub id needs the network or the local cache)" if not local else ""
        raise InputError(f"cannot load a causal LM from {name!r}{hint}: {' '.join(str(exc).split())[:300]}") from None
    model = model.to(dev).eval()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    version = "unknown"
    source: dict[str, Any] = {"model": name}
    if name == "builtin":
        training = json.loads((BUILTIN_TEXT_FOLDER / "training.json").read_text())
        version = training.get("version", "1")
        source["training"] = {k: training[k] for k in ("data", "steps", "final_loss") if k in training}
    return TextModel(model, tokenizer, name, version, dev, source)


@dataclass
class TextSample:
    prompt: str
    text: str  # the generated continuation only
    new_tokens: int
    token_ids: list[int]  # the continuation's token ids as generated


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


def _batches(items: Sequence, size: int):
    for start in range(0, len(items), size):
        yield start, items[start:start + size]


def generate_text(tm: TextModel, prompts: Sequence[str], *, max_new_tokens: int = 100, temperature: float = 1.0,
                  top_p: float = 1.0, top_k: int = 0, seed: int = 0, watermarker=None, batch_size: int = 16,
                  progress: Callable[[int], None] | None = None, streamer=None,
                  cost_meter: ExpectedCostMeter | None = None) -> list[TextSample]:
    """Sample continuations of ``prompts``; ``watermarker`` (a ``TextWatermarker``) marks them while sampling;
    ``cost_meter`` measures the watermark's exact expected cost in NLL on the way."""
    if not prompts:
        raise InputError("no prompt to generate from")
    if max_new_tokens < 1:
        raise InputError("max_new_tokens must be at least 1")
    if not temperature > 0:
        raise InputError("temperature must be above 0")
    if not 0 < top_p <= 1:
        raise InputError("top_p must be in (0, 1]")
    if top_k < 0:
        raise InputError("top_k must be 0 (off) or more")
    from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper  # noqa: PLC0415

    tok = tm.tokenizer
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
        sampler = []
        if temperature != 1.0:
            sampler.append(TemperatureLogitsWarper(temperature))
        if top_k:
            sampler.append(TopKLogitsWarper(top_k))
        if top_p < 1.0:
            sampler.append(TopPLogitsWarper(top_p))
        mark = watermarker.processor(tm.vocab_size, tm.device) if watermarker is not None else None
        if cost_meter is not None:
            processors = LogitsProcessorList(cost_meter.wrap(sampler, mark))
        else:
            processors = LogitsProcessorList(sampler + ([mark] if mark is not None else []))
        torch.manual_seed(seed + b)
        with torch.inference_mode():
            ids = tm.model.generate(**enc, do_sample=True, max_new_tokens=max_new_tokens, temperature=1.0,
                                    top_p=1.0, top_k=0, min_p=None, typical_p=1.0, logits_processor=processors,
                                    pad_token_id=tok.pad_token_id, streamer=streamer)
        new = ids[:, enc["input_ids"].shape[1]:].cpu()
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


def token_nll(tm: TextModel, prompt: str, continuation: str) -> list[float]:
    """Negative log-likelihood (nats) of each token of ``continuation`` after ``prompt`` under ``tm``."""
    return token_nll_ids(tm, tm.encode(prompt) if prompt else [], tm.encode(continuation))


def token_nll_ids(tm: TextModel, prompt_ids: Sequence[int], ids: Sequence[int]) -> list[float]:
    if not ids:
        return []
    context = list(prompt_ids) or [tm.tokenizer.bos_token_id or tm.tokenizer.eos_token_id]
    full = torch.tensor([context + list(ids)], device=tm.device)
    limit = getattr(tm.model.config, "max_position_embeddings", None) or getattr(tm.model.config, "n_positions",
                                                                                  None)
    if limit and full.shape[1] > limit:
        full = full[:, -limit:]
    with torch.inference_mode():
        logits = tm.model(full).logits[0, :-1].float()
    logp = torch.log_softmax(logits, -1)
    targets = full[0, 1:]
    nll = -logp.gather(1, targets[:, None])[:, 0]
    return nll[-len(ids):].tolist()


def continuation_nll(tm: TextModel, pairs: Sequence[tuple[str, str]] | Sequence[tuple[Sequence[int], Sequence[int]]]
                     ) -> list[tuple[float, int]]:
    """(sum of token NLLs in nats, tokens) of each continuation given its prompt (text or token ids)."""
    out = []
    for prompt, cont in pairs:
        nll = token_nll(tm, prompt, cont) if isinstance(cont, str) else token_nll_ids(tm, prompt, cont)
        out.append((sum(nll), len(nll)))
    return out


def perplexity(tm: TextModel, pairs: Sequence[tuple[str, str]] | Sequence[tuple[Sequence[int], Sequence[int]]]
               ) -> tuple[float, int]:
    """Token-weighted perplexity of continuations given their prompts, and the number of tokens scored."""
    nll = continuation_nll(tm, pairs)
    count = sum(n for _, n in nll)
    if count == 0:
        raise InputError("no token to score")
    return math.exp(sum(total for total, _ in nll) / count), count
