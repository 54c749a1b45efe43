"""``synthguard train text-vae``: the sentence VAE of ``synthguard.models.text_vae``, trained on the lines of a
plain-text file (``"tinyshakespeare"``: the built-in LM's corpus, from the dataset cache) tokenised with the built-in
LM's tokenizer.

The data: every non-blank line, stripped, of ``min_tokens``..``max_tokens`` tokens; the last ``holdout`` share of
them (in file order) is held out. The loss is the negative ELBO per sentence, reconstruction NLL + beta * KL, with
beta annealed from 0 to 1 (logistic or linear warm-up, Bowman et al. 2016) and optional free bits (Kingma et al.
2016: each latent dimension's batch-mean KL counts as at least ``free_bits`` nats, so the optimiser gains nothing by
pushing it below). Word dropout replaces a share of the decoder's inputs with the dropped token. ``training.json``
records the command, the data hash, the settings, the loss and KL every ``log_every`` steps and the held-out figures
(``heldout_figures``).
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from synthguard.errors import InputError
from synthguard.models.text import BUILTIN_TEXT_FOLDER
from synthguard.models.text_vae import TextVAE
from synthguard.training.records import check_output_folder, write_training_record
from synthguard.training.text import read_corpus

# The architecture of the built-in text VAE; train_text_vae's model_config overrides any of these keys.
TEXT_VAE_ARCHITECTURE = {"embed_dim": 128, "encoder_hidden": 128, "decoder_hidden": 256, "latent_dim": 32}
_FROM_TOKENIZER = frozenset({"vocab_size", "bos_token_id", "eos_token_id", "max_tokens"})
# A latent dimension is active when its posterior mean varies over the data by more than this (Burda et al. 2016).
ACTIVE_UNIT_VARIANCE = 0.01


class KLSchedule(str, Enum):
    """How beta, the KL term's weight, rises from 0 to 1 over the first ``kl_warmup`` steps."""

    LOGISTIC = "logistic"  # 1 / (1 + exp(-10 (step / warmup - 0.5))): half-way at warmup / 2
    LINEAR = "linear"  # step / warmup
    NONE = "none"  # 1 from the start


@dataclass(frozen=True)
class TextVAETrainConfig:
    """Data, optimiser and objective settings; the architecture is the model's config (``model_config``)."""

    steps: int = 6000
    batch_size: int = 64
    lr: float = 2e-3
    seed: int = 0
    holdout: float = 0.05
    min_tokens: int = 4
    max_tokens: int = 30
    word_dropout: float = 0.3
    kl_schedule: KLSchedule = KLSchedule.LOGISTIC
    kl_warmup: int = 3000  # steps
    free_bits: float = 0.0  # nats per latent dimension (0: off)
    log_every: int = 100

    def __post_init__(self):
        object.__setattr__(self, "kl_schedule", _schedule(self.kl_schedule))
        for name in ("steps", "batch_size", "min_tokens", "max_tokens", "log_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a positive integer, not {value!r}")
        if isinstance(self.kl_warmup, bool) or not isinstance(self.kl_warmup, int) or self.kl_warmup < 0:
            raise InputError(f"kl_warmup must be a whole number of steps, not {self.kl_warmup!r}")
        if self.min_tokens > self.max_tokens:
            raise InputError(f"min_tokens {self.min_tokens} is above max_tokens {self.max_tokens}")
        if not 0 <= self.word_dropout < 1:
            raise InputError(f"word_dropout must be in [0, 1), not {self.word_dropout!r}")
        if not 0 < self.holdout < 0.5:
            raise InputError(f"holdout must be in (0, 0.5), not {self.holdout!r}")
        if not self.lr > 0 or not 0 <= self.free_bits < 100:
            raise InputError(f"lr must be above 0 and free_bits in [0, 100) (got {self.lr!r}, {self.free_bits!r})")


def _schedule(value) -> KLSchedule:
    try:
        return KLSchedule(value)
    except ValueError:
        raise InputError(f"unknown KL schedule {value!r}: choose from {[s.value for s in KLSchedule]}") from None


def kl_weight(step: int, schedule: KLSchedule | str, warmup: int) -> float:
    """beta at ``step`` (0-based): rises from about 0 to 1 over ``warmup`` steps, 1 after."""
    schedule = _schedule(schedule)
    if schedule is KLSchedule.NONE or warmup == 0 or step >= warmup:
        return 1.0
    if schedule is KLSchedule.LINEAR:
        return step / warmup
    return 1.0 / (1.0 + math.exp(-10.0 * (step / warmup - 0.5)))


@dataclass(frozen=True)
class SentenceData:
    """The sentences of one corpus as token ids, split in file order."""

    train: tuple[tuple[int, ...], ...]
    heldout: tuple[tuple[int, ...], ...]
    heldout_text: tuple[str, ...]
    lines: int  # non-blank lines in the file
    sha256: str
    file: str


def split_sentences(text: str, tokenizer, *, min_tokens: int, max_tokens: int, holdout: float,
                    sha256: str = "", file: str = "") -> SentenceData:
    """Every non-blank line of ``text`` of ``min_tokens``..``max_tokens`` tokens; the last ``holdout`` share held
    out."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    kept = []
    for line in lines:
        ids = tokenizer(line, add_special_tokens=False)["input_ids"]
        if min_tokens <= len(ids) <= max_tokens:
            kept.append((line, tuple(ids)))
    n_held = max(1, int(len(kept) * holdout))
    if len(kept) - n_held < 2:
        raise InputError(f"{file or 'the text'}: {len(kept)} lines of {min_tokens}..{max_tokens} tokens; training "
                         "needs at least 3")
    train, held = kept[:-n_held], kept[-n_held:]
    return SentenceData(tuple(ids for _, ids in train), tuple(ids for _, ids in held),
                        tuple(line for line, _ in held), len(lines), sha256, file)


def builtin_tokenizer():
    from transformers import AutoTokenizer  # noqa: PLC0415

    return AutoTokenizer.from_pretrained(str(BUILTIN_TEXT_FOLDER), local_files_only=True)


def pad_batch(sentences: Sequence[Sequence[int]], pad_id: int, device: torch.device | str = "cpu"
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids (B, T) padded with ``pad_id``, lengths (B,))."""
    lengths = torch.tensor([len(s) for s in sentences], dtype=torch.long)
    ids = torch.full((len(sentences), int(lengths.max())), pad_id, dtype=torch.long)
    for row, s in enumerate(sentences):
        ids[row, :len(s)] = torch.tensor(s, dtype=torch.long)
    return ids.to(device), lengths.to(device)


@dataclass(frozen=True)
class ElboTerms:
    """Per sentence (B,): reconstruction NLL in nats (end token included), KL in nats, and tokens scored; and the
    batch-mean KL per latent dimension (latent_dim,)."""

    nll: torch.Tensor
    kl: torch.Tensor
    tokens: torch.Tensor
    kl_per_dim: torch.Tensor
    correct: torch.Tensor  # (B,) tokens the decoder's argmax got right


def elbo_terms(model: TextVAE, ids: torch.Tensor, lengths: torch.Tensor, *, word_dropout: float = 0.0,
               generator: torch.Generator | None = None, use_mean: bool = False) -> ElboTerms:
    """One pass: z drawn from the posterior (its mean with ``use_mean``), decoder inputs word-dropped."""
    mu, logvar = model.encode(ids, lengths)
    if use_mean:
        z = mu
    else:
        noise = torch.randn(mu.shape, generator=generator, device="cpu").to(mu.device)
        z = mu + noise * torch.exp(0.5 * logvar)
    inputs, targets = model.teacher_inputs(ids, lengths)
    if word_dropout > 0:
        drop = torch.rand(inputs.shape, generator=generator, device="cpu").to(inputs.device) < word_dropout
        drop[:, 0] = False  # the start token always stays
        inputs = torch.where(drop, model.dropped_token_id, inputs)
    logits, _ = model.decode_logits(z, inputs)
    mask = torch.arange(targets.shape[1], device=ids.device)[None] <= lengths[:, None]
    nll = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none") * mask
    correct = ((logits.argmax(-1) == targets) & mask).sum(1)
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar)  # (B, latent_dim)
    return ElboTerms(nll.sum(1), kl.sum(1), mask.sum(1), kl.mean(0), correct)


def training_loss(terms: ElboTerms, beta: float, free_bits: float) -> torch.Tensor:
    """Batch mean of reconstruction NLL + beta * KL, each dimension's KL floored at ``free_bits``."""
    kl = terms.kl_per_dim.clamp_min(free_bits).sum() if free_bits > 0 else terms.kl.mean()
    return terms.nll.mean() + beta * kl


def heldout_figures(model: TextVAE, sentences: Sequence[Sequence[int]], *, batch_size: int = 256, seed: int = 0
                    ) -> dict:
    """The held-out figures: reconstruction NLL per token (z drawn from the posterior, and at its mean), token
    accuracy at the mean, KL per sentence, the ELBO's perplexity bound per token (``exp((NLL + KL) / tokens)``,
    end tokens counted) and active units (posterior-mean variance over the sentences above
    ``ACTIVE_UNIT_VARIANCE``)."""
    if not sentences:
        raise InputError("no held-out sentence to evaluate on")
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    nll = nll_mean = kl = tokens = correct = 0.0
    mus = []
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(sentences), batch_size):
            ids, lengths = pad_batch(sentences[start:start + batch_size], model.config.eos_token_id, device)
            sampled = elbo_terms(model, ids, lengths, generator=generator)
            at_mean = elbo_terms(model, ids, lengths, use_mean=True)
            nll += float(sampled.nll.sum())
            kl += float(sampled.kl.sum())
            tokens += float(sampled.tokens.sum())
            nll_mean += float(at_mean.nll.sum())
            correct += float(at_mean.correct.sum())
            mus.append(model.encode(ids, lengths)[0].cpu())
    model.train(was_training)
    mu = torch.cat(mus)
    variance = mu.var(0) if len(mu) > 1 else torch.zeros(mu.shape[1])
    n = len(sentences)
    return {"sentences": n, "tokens": int(tokens),
            "reconstruction_nll_per_token": nll / tokens, "reconstruction_nll_per_token_at_mean": nll_mean / tokens,
            "token_accuracy_at_mean": correct / tokens, "kl_per_sentence": kl / n,
            "elbo_per_sentence": -(nll + kl) / n, "perplexity_bound_per_token": math.exp((nll + kl) / tokens),
            "active_units": int((variance > ACTIVE_UNIT_VARIANCE).sum()), "latent_dim": int(mu.shape[1])}


def train_text_vae(data: str | Path, output: Path, config: TextVAETrainConfig, *, device: torch.device,
                   model_config: Mapping[str, Any] | None = None,
                   progress: Callable[[int, dict], None] | None = None, command: str = "",
                   overwrite: bool = False, tokenizer=None) -> dict:
    """Train a text VAE on the lines of ``data``; save it (config.json + safetensors) and ``training.json`` (the
    record, also returned) to ``output``, which must be empty or new unless ``overwrite``.

    ``model_config``: TextVAE config keys over ``TEXT_VAE_ARCHITECTURE`` (the vocabulary, special tokens and
    length come from the tokenizer and the config). ``tokenizer``: None for the built-in LM's (whose texts the
    detector re-tokenises by default). ``progress(step, figures)`` after each step."""
    architecture = {**TEXT_VAE_ARCHITECTURE, **(model_config or {})}
    known = set(inspect.signature(TextVAE.__init__).parameters) - {"self"}
    unknown = sorted(set(architecture) - known | set(architecture) & _FROM_TOKENIZER)
    if unknown:
        raise InputError(f"the text VAE has no architecture setting {', '.join(map(repr, unknown))} (the "
                         "vocabulary, special tokens and length come from the tokenizer and the training settings)")
    output = check_output_folder(output, overwrite=overwrite)
    text, sha256, file = read_corpus(data)
    tokenizer = builtin_tokenizer() if tokenizer is None else tokenizer
    sentences = split_sentences(text, tokenizer, min_tokens=config.min_tokens, max_tokens=config.max_tokens,
                                holdout=config.holdout, sha256=sha256, file=file)
    torch.manual_seed(config.seed)
    eos = tokenizer.eos_token_id
    model = TextVAE(**architecture, vocab_size=len(tokenizer), max_tokens=config.max_tokens + 2,
                    bos_token_id=eos if tokenizer.bos_token_id is None else tokenizer.bos_token_id,
                    eos_token_id=eos).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    history: list[dict] = []
    window: dict[str, float] = {"loss": 0.0, "nll": 0.0, "kl": 0.0, "tokens": 0.0, "count": 0}
    start = time.perf_counter()
    model.train()
    for step in range(config.steps):
        beta = kl_weight(step, config.kl_schedule, config.kl_warmup)
        picks = torch.randint(0, len(sentences.train), (config.batch_size,), generator=generator).tolist()
        ids, lengths = pad_batch([sentences.train[i] for i in picks], eos, device)
        terms = elbo_terms(model, ids, lengths, word_dropout=config.word_dropout, generator=generator)
        loss = training_loss(terms, beta, config.free_bits)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        window["loss"] += float(loss.detach())
        window["nll"] += float(terms.nll.detach().sum())
        window["kl"] += float(terms.kl.detach().sum())
        window["tokens"] += float(terms.tokens.sum())
        window["count"] += 1
        if (step + 1) % config.log_every == 0 or step == config.steps - 1:
            n = window["count"] * config.batch_size
            history.append({"step": step + 1, "beta": round(beta, 4), "loss": window["loss"] / window["count"],
                            "nll_per_token": window["nll"] / window["tokens"], "kl_per_sentence": window["kl"] / n})
            window = dict.fromkeys(window, 0.0)
        if progress is not None:
            progress(step + 1, history[-1] if history else {})
    seconds = time.perf_counter() - start
    model.eval()
    heldout = heldout_figures(model, sentences.heldout, seed=config.seed)
    record = {
        "version": "1",
        "command": command,
        "data": {"file": sentences.file, "sha256": sentences.sha256, "lines": sentences.lines,
                 "train_sentences": len(sentences.train), "heldout_sentences": len(sentences.heldout),
                 "sentence": f"a non-blank line of {config.min_tokens}..{config.max_tokens} tokens of the built-in "
                             "LM's tokenizer; the last share held out in file order"},
        "config": {**asdict(config), "kl_schedule": config.kl_schedule.value},
        "model_config": dict(model.config),
        "parameters": sum(p.numel() for p in model.parameters()),
        "steps": config.steps,
        "final": history[-1],
        "heldout": heldout,
        "seconds": seconds,
        "device": str(device),
        "torch": torch.__version__,
        "history": history,
    }
    output.mkdir(parents=True, exist_ok=True)
    model.cpu().save_pretrained(output)
    write_training_record(output, record)
    return record
