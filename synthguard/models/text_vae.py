"""A sentence VAE over the built-in text model's tokenizer.

Bowman et al. 2016, "Generating Sentences from a Continuous Space": a recurrent encoder gives the posterior
q(z|x) = N(mu, diag(sigma^2)) of a sentence, and a recurrent decoder, conditioned on z, gives p(x|z) one token at a
time. Here the encoder is a bidirectional GRU, and the decoder a GRU whose initial state is computed from z and whose
every input is the previous token's embedding concatenated with z (so the decoder cannot easily learn to ignore z).
Its output layer is tied to the input embedding. Word dropout (during training) replaces a share of the decoder's
input tokens with a "dropped" token of their own (index ``vocab_size``, never produced): the decoder then has to
take what it cannot see from z.

Sentences are token ids of the built-in LM's tokenizer, so a text sampled with the identity's text watermark in the
loop is tested by the detector with its default tokenizer. ``bos_token_id`` starts the decoder's input and
``eos_token_id`` ends the target (the built-in tokenizer has one special token for both).

The loss (negative ELBO, with KL annealing and free bits) is ``synthguard.training.text_vae``'s; sampling with the
watermark in the loop is ``synthguard.generate.text_vae``'s.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from synthguard.errors import Hint, InputError

BUILTIN_TEXT_VAE_FOLDER = Path(__file__).parent / "weights" / "text-vae"
WEIGHTS_FILE = "diffusion_pytorch_model.safetensors"
_CONTROL = re.compile("[\x00-\x1f\x7f]")


class TextVAE(ModelMixin, ConfigMixin):
    """token ids (B, T) <-> latents (B, latent_dim)."""

    @register_to_config
    def __init__(self, vocab_size: int = 1024, embed_dim: int = 128, encoder_hidden: int = 128,
                 decoder_hidden: int = 256, latent_dim: int = 32, max_tokens: int = 32, bos_token_id: int = 0,
                 eos_token_id: int = 0):
        super().__init__()
        for name, value in (("vocab_size", vocab_size), ("embed_dim", embed_dim), ("encoder_hidden", encoder_hidden),
                            ("decoder_hidden", decoder_hidden), ("latent_dim", latent_dim),
                            ("max_tokens", max_tokens)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"TextVAE: {name} must be a positive integer, not {value!r}")
        for name, value in (("bos_token_id", bos_token_id), ("eos_token_id", eos_token_id)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < vocab_size:
                raise InputError(f"TextVAE: {name} must be a token id below vocab_size {vocab_size}, not {value!r}")
        # One row more than the vocabulary: the "dropped" token of word dropout.
        self.embedding = nn.Embedding(vocab_size + 1, embed_dim)
        self.encoder = nn.GRU(embed_dim, encoder_hidden, batch_first=True, bidirectional=True)
        self.to_posterior = nn.Linear(2 * encoder_hidden, 2 * latent_dim)
        self.to_state = nn.Linear(latent_dim, decoder_hidden)
        self.decoder = nn.GRU(embed_dim + latent_dim, decoder_hidden, batch_first=True)
        self.to_embedding = nn.Linear(decoder_hidden, embed_dim)
        self.output_bias = nn.Parameter(torch.zeros(vocab_size))

    @property
    def dropped_token_id(self) -> int:
        """The decoder input that word dropout puts in place of a token."""
        return self.config.vocab_size

    def encode(self, ids: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sentences (B, T), padded after ``lengths`` (B,) tokens, -> (mu, log-variance), each (B, latent_dim)."""
        packed = pack_padded_sequence(self.embedding(ids), lengths.cpu().clamp_min(1), batch_first=True,
                                      enforce_sorted=False)
        _, last = self.encoder(packed)  # (2, B, encoder_hidden): the forward and the backward final states
        mu, logvar = self.to_posterior(torch.cat([last[0], last[1]], dim=1)).chunk(2, dim=1)
        return mu, logvar.clamp(-30, 20)  # keeps exp() finite early in training

    def initial_state(self, z: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim) -> the decoder's first hidden state (1, B, decoder_hidden)."""
        return torch.tanh(self.to_state(z))[None]

    def decode_logits(self, z: torch.Tensor, inputs: torch.Tensor, state: torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoder inputs (B, T) given z (B, latent_dim) -> (logits (B, T, vocab_size), last hidden state).
        ``state``: carry on from a previous call (None: start from z)."""
        x = self.embedding(inputs)
        x = torch.cat([x, z[:, None, :].expand(-1, x.shape[1], -1)], dim=2)
        out, state = self.decoder(x, self.initial_state(z) if state is None else state)
        logits = self.to_embedding(out) @ self.embedding.weight[:self.config.vocab_size].T + self.output_bias
        return logits, state

    def teacher_inputs(self, ids: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(decoder inputs, targets), each (B, T + 1): BOS + sentence, and sentence + EOS, padded with EOS (a
        target past ``lengths + 1`` is not scored)."""
        batch = len(ids)
        bos = torch.full((batch, 1), self.config.bos_token_id, dtype=ids.dtype, device=ids.device)
        pad = torch.full((batch, 1), self.config.eos_token_id, dtype=ids.dtype, device=ids.device)
        targets = torch.cat([ids, pad], dim=1)
        positions = torch.arange(targets.shape[1], device=ids.device)[None]
        targets = torch.where(positions == lengths[:, None].to(ids.device), self.config.eos_token_id, targets)
        return torch.cat([bos, ids], dim=1), targets

    def greedy(self, z: torch.Tensor, max_tokens: int | None = None, banned: torch.Tensor | None = None
               ) -> list[list[int]]:
        """The likeliest token at each step, from z (B, latent_dim): each sentence's ids, up to its end token.
        ``banned``: token ids never picked (see ``LoadedTextVAE.banned_ids``)."""
        limit = self.config.max_tokens if max_tokens is None else max_tokens
        token = torch.full((len(z), 1), self.config.bos_token_id, dtype=torch.long, device=z.device)
        state, rows, done = None, [[] for _ in range(len(z))], [False] * len(z)
        with torch.inference_mode():
            for _ in range(limit):
                logits, state = self.decode_logits(z, token, state)
                scores = logits[:, -1]
                if banned is not None and len(banned):
                    scores = scores.index_fill(1, banned.to(scores.device), float("-inf"))
                token = scores.argmax(-1, keepdim=True)
                for row, t in enumerate(token[:, 0].tolist()):
                    if not done[row]:
                        if t == self.config.eos_token_id:
                            done[row] = True
                        else:
                            rows[row].append(t)
                if all(done):
                    break
        return rows


@dataclass(frozen=True)
class LoadedTextVAE:
    """A text VAE with its tokenizer (the built-in LM's unless the folder holds its own)."""

    model: TextVAE
    tokenizer: object
    name: str  # "builtin" or the folder's name (never a local path)
    version: str
    training: dict | None  # the folder's training.json, when it has one

    def encode_text(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def decode_ids(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    @functools.cached_property
    def banned_ids(self) -> torch.Tensor:
        """Token ids a sentence never holds: those that decode to a control character (a line break included),
        which a one-line plain text cannot carry. Decoding leaves them out."""
        vocab = min(len(self.tokenizer), self.model.config.vocab_size)
        special = set(self.tokenizer.all_special_ids)
        banned = [i for i in range(vocab) if i not in special and _CONTROL.search(self.tokenizer.decode([i]))]
        return torch.tensor(banned, dtype=torch.long)


def load_text_vae(spec: str | Path | None = None, *, device: str | torch.device = "cpu") -> LoadedTextVAE:
    """The built-in text VAE (``None`` or "builtin") or a folder written by ``TextVAE.save_pretrained`` (a
    ``tokenizer.json`` beside it is used; otherwise the built-in LM's tokenizer). Errors raise ``InputError``."""
    from transformers import AutoTokenizer  # noqa: PLC0415

    from synthguard.core.torch_utils import read_training_record  # noqa: PLC0415
    from synthguard.models.text import BUILTIN_TEXT_FOLDER, _quiet_transformers  # noqa: PLC0415

    _quiet_transformers()
    builtin = spec in (None, "builtin")
    folder = BUILTIN_TEXT_VAE_FOLDER if builtin else Path(spec).expanduser()
    if not folder.is_dir():
        raise InputError(f"{folder}: no such text VAE folder" if not builtin else
                         f"the built-in text VAE is missing from {folder} (an incomplete install)",
                         hint=Hint.NEEDS_MODEL if builtin else None)
    config_file = folder / "config.json"
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{folder}: not a text VAE folder (config.json: {' '.join(str(exc).split())[:200]})"
                         ) from None
    if not isinstance(config, dict) or config.get("_class_name") != TextVAE.__name__:
        found = config.get("_class_name") if isinstance(config, dict) else None
        raise InputError(f"{folder}: not a text VAE folder (its config.json is for {found or 'something else'})")
    try:
        model = TextVAE.from_pretrained(str(folder))
    except (OSError, ValueError, RuntimeError, KeyError, TypeError, InputError) as exc:
        raise InputError(f"cannot load the text VAE in {folder}: {' '.join(str(exc).split())[:300]}") from None
    tok_folder = folder if (folder / "tokenizer.json").is_file() else BUILTIN_TEXT_FOLDER
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(tok_folder), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot load the tokenizer in {tok_folder}: {' '.join(str(exc).split())[:300]}") from None
    if len(tokenizer) > model.config.vocab_size:
        raise InputError(f"{folder}: the tokenizer has {len(tokenizer)} tokens but the model only "
                         f"{model.config.vocab_size}")
    training, version = read_training_record(folder)
    model = model.to(torch.device(device) if isinstance(device, str) else device).eval()
    return LoadedTextVAE(model, tokenizer, "builtin-text-vae" if builtin else folder.name, version, training)
