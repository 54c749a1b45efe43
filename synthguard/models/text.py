"""A causal LM through transformers, loaded and scored: the built-in model, a local folder, a local GGUF file or a
Hugging Face hub id (``load_text_model``), and the negative log-likelihood of continuations under it (token NLL,
``continuation_nll``, ``perplexity``). Sampling from it, with the watermark in the loop, is
``synthguard.generate.sampling``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from synthguard.core.torch_utils import is_hub_id, resolve_device
from synthguard.errors import Hint, InputError

BUILTIN_TEXT_FOLDER = Path(__file__).parent / "weights" / "text"


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
            raise InputError(f"the built-in text model is missing from {where} (an incomplete install)",
                             hint=Hint.NEEDS_MODEL)
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
