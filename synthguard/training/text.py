"""``synthguard train text``: the built-in text model, a small GPT-2 with a byte-level BPE tokenizer, trained from
scratch on one plain-text file: a path, or ``"tinyshakespeare"`` for the built-in weights' corpus (the dataset of
``synthguard.core.datasets``, read from the dataset cache).

The last 5% of the text is held out; its perplexity is recorded in ``training.json`` with the command, settings,
data hash and loss curve.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from synthguard.core.datasets import dataset_path
from synthguard.errors import InputError
from synthguard.training.records import check_output_folder, write_training_record

EOS = "<|endoftext|>"
_FROM_TOKENIZER = frozenset({"vocab_size", "bos_token_id", "eos_token_id", "pad_token_id"})
BUILTIN_CORPUS = "tinyshakespeare"


# The GPT-2 architecture of the built-in model; train_text_model's model_config overrides any of these keys.
GPT2_ARCHITECTURE = {"n_layer": 4, "n_head": 4, "n_embd": 128, "n_positions": 256}


@dataclass(frozen=True)
class TextTrainConfig:
    """Tokenizer, optimiser and data settings; the architecture is the model's config (``model_config``)."""

    vocab_size: int = 1024  # of the byte-level BPE tokenizer trained on the data
    steps: int = 2000
    batch_size: int = 8
    lr: float = 3e-3
    warmup: int = 100
    seed: int = 0
    holdout: float = 0.05


def train_tokenizer(text: str, vocab_size: int):
    """A byte-level BPE tokenizer trained on ``text`` (every byte sequence stays encodable)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: PLC0415
    from transformers import PreTrainedTokenizerFast  # noqa: PLC0415

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator([text[i:i + 10000] for i in range(0, len(text), 10000)], trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, bos_token=EOS, pad_token=EOS)


def corpus_path(data: str | Path) -> Path:
    """The training text: ``"tinyshakespeare"`` (the built-in model's corpus, from the dataset cache) or a path."""
    return dataset_path(BUILTIN_CORPUS) if str(data) == BUILTIN_CORPUS else Path(data)


def read_corpus(data: str | Path) -> tuple[str, str, str]:
    """(text, sha256 of its bytes, file name) of a UTF-8 corpus (``"tinyshakespeare"`` or a path)."""
    path = corpus_path(data)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (invalid byte at offset {exc.start})") from None
    return text, hashlib.sha256(raw).hexdigest(), Path(path).name


def train_text_model(data: str | Path, output: Path, config: TextTrainConfig, *, device: torch.device,
                     model_config: Mapping[str, Any] | None = None,
                     progress: Callable[[int, float], None] | None = None, command: str = "",
                     overwrite: bool = False) -> dict:
    """Train a GPT-2 and its tokenizer on the text file ``data``; save both and ``training.json`` (the record,
    also returned) to ``output``, which must be empty or new unless ``overwrite``.

    ``model_config``: GPT-2 config keys over ``GPT2_ARCHITECTURE`` (its ``n_positions`` is also the training
    context); the vocabulary size and special tokens come from the tokenizer."""
    from transformers import GPT2Config, GPT2LMHeadModel  # noqa: PLC0415

    architecture = {**GPT2_ARCHITECTURE, **(model_config or {})}
    unknown = sorted(set(architecture) - set(GPT2Config().to_dict()) | set(architecture) & _FROM_TOKENIZER)
    if unknown:
        raise InputError(f"GPT-2 has no architecture setting {', '.join(map(repr, unknown))} (the vocabulary and "
                         "special tokens come from the tokenizer)")
    context = int(architecture["n_positions"])
    output = check_output_folder(output, overwrite=overwrite)
    data = corpus_path(data)
    text, data_sha256, _ = read_corpus(data)
    if len(text) < 10_000:
        raise InputError(f"{data}: {len(text)} characters; training needs at least 10,000")
    torch.manual_seed(config.seed)
    split = int(len(text) * (1 - config.holdout))
    tokenizer = train_tokenizer(text[:split], config.vocab_size)
    train_ids = torch.tensor(tokenizer(text[:split])["input_ids"], dtype=torch.long)
    val_ids = torch.tensor(tokenizer(text[split:])["input_ids"], dtype=torch.long)
    gpt2 = GPT2Config(**architecture, vocab_size=len(tokenizer), bos_token_id=tokenizer.eos_token_id,
                      eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.eos_token_id)
    model = GPT2LMHeadModel(gpt2).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.1, betas=(0.9, 0.95))

    def lr_at(step: int) -> float:
        if step < config.warmup:
            return config.lr * (step + 1) / config.warmup
        done = (step - config.warmup) / max(1, config.steps - config.warmup)
        return config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * done)))

    generator = torch.Generator().manual_seed(config.seed)
    history = []
    start = time.perf_counter()
    model.train()
    for step in range(config.steps):
        starts = torch.randint(0, len(train_ids) - context - 1, (config.batch_size,), generator=generator)
        batch = torch.stack([train_ids[s:s + context] for s in starts.tolist()]).to(device)
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        loss = model(batch, labels=batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 100 == 0 or step == config.steps - 1:
            history.append({"step": step, "loss": float(loss.detach())})
        if progress is not None:
            progress(step + 1, float(loss))
    model.eval()
    total, count = 0.0, 0
    with torch.inference_mode():
        for s in range(0, len(val_ids) - 1, context):
            chunk = val_ids[s:s + context + 1]
            if len(chunk) < 2:
                break
            out = model(chunk[None, :-1].to(device))
            nll = torch.nn.functional.cross_entropy(out.logits[0].float(), chunk[1:].to(device), reduction="sum")
            total += float(nll)
            count += len(chunk) - 1
    record = {
        "version": "1",
        "command": command,
        "data": {"file": Path(data).name, "sha256": data_sha256, "characters": len(text),
                 "train_tokens": len(train_ids), "heldout_tokens": len(val_ids)},
        "config": asdict(config),
        "model_config": architecture,
        "parameters": sum(p.numel() for p in model.parameters()),
        "steps": config.steps,
        "final_loss": history[-1]["loss"],
        "heldout_perplexity_per_token": math.exp(total / count),
        "heldout_bits_per_character": total / math.log(2) / len(text[split:]),
        "seconds": time.perf_counter() - start,
        "device": str(device),
        "torch": torch.__version__,
        "history": history,
    }
    output.mkdir(parents=True, exist_ok=True)
    model.cpu().save_pretrained(output)
    tokenizer.save_pretrained(output)
    write_training_record(output, record)
    return record
