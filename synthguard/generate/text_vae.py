"""The generate flow for the sentence VAE (``synthguard.models.text_vae``): sentences decoded from prior draws, or
from points on the straight path between two sentences' posterior means (an interpolation, ends included). One
function, ``generate_text_vae(TextVAERequest)``, written as numbered steps.

Decoding. ``sample`` draws each token from the decoder's distribution (temperature -> top-k -> top-p -> the
identity's text watermark, the order of ``synthguard.generate.sampling``), so the watermark is in the loop and the
text is marked. ``greedy`` takes the likeliest token at each step: a deterministic function of z that a watermark
cannot bias without changing the text, so greedy texts are unmarked by construction, and their signed sidecars say
so (and still declare them AI-generated). Each text is written with a signed ``.c2pa`` sidecar through
``Stamper.stamp_text`` and recorded in the ledger, as ``synthguard.generate.text`` does.

Seeds. Text ``i`` draws its z (prior samples) and its tokens (sample decoding) from a generator seeded with
``seed + i``, so one text can be remade alone.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import torch

from synthguard.core.fileio import check_output_path
from synthguard.core.home import Home
from synthguard.core.torch_utils import config_hash, resolve_device, torch_threads
from synthguard.errors import InputError
from synthguard.generate.base import MAX_SEED, ProgressCallback
from synthguard.generate.sampling import build_sampler, check_sampling
from synthguard.generate.text import (
    SHORT_TEXT_TOKENS,
    TextOutput,
    TextReport,
    check_text_stamper,
    open_text_stamper,
    output_paths,
)
from synthguard.models.text_vae import LoadedTextVAE, TextVAE, load_text_vae
from synthguard.provenance.manifest import ManifestSpec, ModelInfo
from synthguard.provenance.signing import sidecar_path
from synthguard.stamp import IdentitySource, Stamper
from synthguard.watermark.text import SCHEMES

# An interpolation end longer than this many tokens is refused (bounded work; the model learnt far shorter lines).
MAX_SENTENCE_TOKENS = 256
MAX_SENTENCE_CHARS = 4096
# A prior draw that decodes to an empty text is drawn again (from the same seeded generator) up to this many times.
MAX_DRAWS = 8
UNMARKED_GREEDY = ("none: greedy decoding picks the likeliest token at each step, so the text is unmarked by "
                   "construction; the signed sidecar declares it AI-generated")


class Decoding(str, Enum):
    SAMPLE = "sample"  # tokens drawn from the decoder's distribution, the watermark in the loop
    GREEDY = "greedy"  # the likeliest token at each step (unmarked by construction)


@dataclass(frozen=True, kw_only=True)
class TextVAERequest:
    """What to make: ``n`` prior samples, or with ``interpolate`` (two sentences) ``steps`` texts on the path
    between their posterior means, ends included; written to ``output`` (a ``.txt``/``.md`` file for one text,
    otherwise a folder of ``text-0000.txt``...). Checked when made (``InputError`` names the bad value)."""

    output: Path
    n: int = 1
    interpolate: tuple[str, str] | None = None
    steps: int = 8
    model: str | None = None  # None: the built-in text VAE; a folder written by TextVAE.save_pretrained
    seed: int = 0
    decoding: Decoding | None = None  # None: sample for prior draws, greedy for an interpolation
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0: off
    max_tokens: int | None = None  # None: the model's max_tokens
    scheme: str = "synthid"  # the text watermark (sample decoding), keyed by the signing identity
    watermark: bool = True
    device: str = "cpu"
    threads: int | None = None
    overwrite: bool = False

    def __post_init__(self):
        object.__setattr__(self, "output", Path(self.output))
        for name in ("n", "steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a positive integer, not {value!r}")
        if self.interpolate is not None:
            ends = tuple(self.interpolate) if not isinstance(self.interpolate, str) else (self.interpolate,)
            if len(ends) != 2 or not all(isinstance(e, str) for e in ends):
                raise InputError(f"interpolate takes two sentences, not {self.interpolate!r}")
            for label, end in zip("AB", ends, strict=True):
                if not end.strip():
                    raise InputError(f"interpolation sentence {label} is empty")
                if len(end) > MAX_SENTENCE_CHARS:
                    raise InputError(f"interpolation sentence {label} is over {MAX_SENTENCE_CHARS} characters")
            object.__setattr__(self, "interpolate", (ends[0].strip(), ends[1].strip()))
            if self.steps < 2:
                raise InputError(f"an interpolation needs at least 2 steps (its two ends), not {self.steps}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= MAX_SEED - \
                self.count + 1:
            raise InputError(f"seed must be an integer in [0, 2**63 - {self.count}], not {self.seed!r}")
        decoding = self.decoding
        if decoding is None:
            decoding = Decoding.GREEDY if self.interpolate is not None else Decoding.SAMPLE
        try:
            object.__setattr__(self, "decoding", Decoding(decoding))
        except ValueError:
            raise InputError(f"unknown decoding {decoding!r}: choose from {[d.value for d in Decoding]}") from None
        max_tokens = self.max_tokens
        if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)
                                       or not 1 <= max_tokens <= 1024):
            raise InputError(f"max_tokens must be an integer in [1, 1024] or None, not {max_tokens!r}")
        check_sampling(max_new_tokens=max_tokens or 1, temperature=self.temperature, top_p=self.top_p,
                       top_k=self.top_k)
        threads = self.threads
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise InputError(f"threads must be a positive integer or None, not {threads!r}")
        if self.scheme not in SCHEMES:
            raise InputError(f"unknown text watermark scheme {self.scheme!r}: choose from {sorted(SCHEMES)}")

    @property
    def count(self) -> int:
        """How many texts the request makes."""
        return self.steps if self.interpolate is not None else self.n

    @property
    def marked(self) -> bool:
        """Whether the texts carry the watermark: sampled tokens, with the watermark asked for."""
        return self.watermark and self.decoding is Decoding.SAMPLE


@dataclass(frozen=True)
class _Decoded:
    ids: list[int]
    z_seed: int | None  # the seed of the generator z was drawn from (prior samples)
    draws: int  # prior draws made (1 unless an empty text was drawn again)
    position: float | None  # interpolation: 0 at sentence A, 1 at sentence B


def sample_ids(model: TextVAE, z: torch.Tensor, *, generator: torch.Generator, temperature: float = 1.0,
               top_k: int = 0, top_p: float = 1.0, watermarker=None, max_tokens: int | None = None,
               banned: torch.Tensor | None = None) -> list[int]:
    """One sentence's token ids drawn from the decoder given z (1, latent_dim), up to its end token; the sampler
    then ``watermarker``'s processor (a fresh one) see the scores at each step, as in ``generate_text``. The
    processor is handed the sentence's own tokens so far (not the start token): the ids the detector reads back.
    ``banned``: token ids never drawn (their scores set to -inf before the sampler)."""
    limit = model.config.max_tokens if max_tokens is None else max_tokens
    sampler = build_sampler(temperature=temperature, top_k=top_k, top_p=top_p)
    mark = watermarker.processor(model.config.vocab_size, z.device) if watermarker is not None else None
    processors = sampler + ([mark] if mark is not None else [])
    token = torch.full((1, 1), model.config.bos_token_id, dtype=torch.long, device=z.device)
    state, out = None, []
    with torch.inference_mode():
        for _ in range(limit):
            logits, state = model.decode_logits(z, token, state)
            scores = logits[:, -1].float()
            if banned is not None and len(banned):
                scores = scores.index_fill(1, banned.to(scores.device), float("-inf"))
            so_far = torch.tensor([out], dtype=torch.long, device=z.device).reshape(1, len(out))
            for processor in processors:
                scores = processor(so_far, scores)
            probs = torch.softmax(scores.double(), dim=-1).cpu()
            picked = int(torch.multinomial(probs, 1, generator=generator)[0, 0])
            if picked == model.config.eos_token_id:
                break
            out.append(picked)
            token = torch.full((1, 1), picked, dtype=torch.long, device=z.device)
    return out


def encode_sentence(vae: LoadedTextVAE, text: str) -> torch.Tensor:
    """The posterior mean (1, latent_dim) of one sentence."""
    ids = vae.encode_text(text)
    if not ids:
        raise InputError("a sentence to encode has no token")
    if len(ids) > MAX_SENTENCE_TOKENS:
        raise InputError(f"a sentence to encode has {len(ids)} tokens; at most {MAX_SENTENCE_TOKENS} are accepted")
    device = next(vae.model.parameters()).device
    with torch.inference_mode():
        mu, _ = vae.model.encode(torch.tensor([ids], device=device), torch.tensor([len(ids)]))
    return mu


def interpolation_path(start: torch.Tensor, end: torch.Tensor, steps: int) -> torch.Tensor:
    """``steps`` points (steps, latent_dim) evenly spaced on the straight line from ``start`` to ``end``, both
    included."""
    weights = torch.linspace(0.0, 1.0, steps, device=start.device)[:, None]
    return start * (1 - weights) + end * weights


def generate_text_vae(request: TextVAERequest, stamper: Stamper | Home, *, identity: IdentitySource = None,
                      progress: ProgressCallback | None = None) -> TextReport:
    """Decode the request's texts (sampled ones marked by the stamper's text watermarker) and stamp each.

    ``stamper``: an open Stamper (its ``text_watermarker`` marks sampled texts; it must have none for greedy or
    unmarked requests), or a Home to open one from (signing as ``identity``). ``progress(k)``: ``k`` more texts
    decoded. Returns ``synthguard.generate.text.TextReport`` (``new_tokens``: each text's tokens)."""
    # 1. Check the inputs: the stamper and outputs that are free, before the model loads.
    check_text_stamper(stamper, marked=request.marked, scheme=request.scheme)
    paths = output_paths(request.output, request.count)
    for path in paths:
        for out in (path, sidecar_path(path)):
            if out.parent.exists():
                check_output_path(out, overwrite=request.overwrite)

    with torch_threads(request.threads):
        # 2. Load the model; encode the interpolation's ends (refused before an identity is made for them).
        vae = load_text_vae(request.model, device=resolve_device(request.device))
        ends = None
        if request.interpolate is not None:
            ends = [encode_sentence(vae, s) for s in request.interpolate]

        # 3. Open the stamper (signing identity, ledger, the text watermark keyed from the identity).
        with open_text_stamper(stamper, marked=request.marked, scheme=request.scheme,
                               identity=identity) as stamper:
            wm = stamper.text_watermarker if request.marked else None

            # 4. Decode every text, the watermark in the loop when sampling.
            start = time.perf_counter()
            decoded = _decode_all(vae, request, ends, wm, progress)
            seconds = time.perf_counter() - start

            # 5. Stamp each text: the model, the seeds, the decoding and the watermark's settings (or why there is
            # none), in a signed sidecar.
            paths[0].parent.mkdir(parents=True, exist_ok=True)
            model_hash = config_hash(vae.model.config)
            ends_hashes = [hashlib.sha256(s.encode()).hexdigest() for s in request.interpolate or ()]
            prompt_sha256 = hashlib.sha256("\n".join(request.interpolate or ()).encode()).hexdigest()
            outputs = []
            for i, (item, path) in enumerate(zip(decoded, paths, strict=True)):
                text = vae.decode_ids(item.ids)
                params = _parameters(request, item, i, ends_hashes, wm)
                # Greedy decoding draws nothing at random: no seed to record.
                seed = request.seed + i if request.decoding is Decoding.SAMPLE or request.interpolate is None else None
                spec = ManifestSpec(title=path.name, model=ModelInfo(vae.name, vae.version, model_hash, seed, params))
                stamped = stamper.stamp_text(text, path, spec, overwrite=request.overwrite)
                warning = None
                if wm is not None and len(item.ids) < SHORT_TEXT_TOKENS:
                    warning = (f"only {len(item.ids)} tokens: too short for the watermark to be detected "
                               "reliably; the signed sidecar still declares it AI-generated")
                outputs.append(TextOutput(path, stamped.signed.sidecar, prompt_sha256, len(item.ids),
                                          wm.settings() if wm is not None else None, stamped.signed.asset_id,
                                          warning, seed=seed))

    # 6. Report.
    tokens = sum(len(d.ids) for d in decoded)
    device = str(next(vae.model.parameters()).device)
    return TextReport(vae.name, vae.version, device, tuple(outputs), seconds, tokens / max(seconds, 1e-9))


def _decode_all(vae: LoadedTextVAE, request: TextVAERequest, ends: list[torch.Tensor] | None, wm,
                progress: ProgressCallback | None) -> list[_Decoded]:
    model = vae.model
    device = next(model.parameters()).device
    latent = model.config.latent_dim
    path = interpolation_path(ends[0], ends[1], request.steps) if ends is not None else None
    out = []
    for i in range(request.count):
        generator = torch.Generator().manual_seed(request.seed + i)
        draws, ids = 0, []
        while not ids and draws < (MAX_DRAWS if path is None else 1):
            draws += 1
            z = (path[i:i + 1] if path is not None
                 else torch.randn((1, latent), generator=generator).to(device))
            if request.decoding is Decoding.GREEDY:
                ids = model.greedy(z, request.max_tokens, vae.banned_ids)[0]
            else:
                ids = sample_ids(model, z, generator=generator, temperature=request.temperature,
                                 top_k=request.top_k, top_p=request.top_p, watermarker=wm,
                                 max_tokens=request.max_tokens, banned=vae.banned_ids)
            if ids and not vae.decode_ids(ids).strip():
                ids = []
        if not ids:
            what = (f"interpolation step {i}" if path is not None else
                    f"sample {i} (seed {request.seed + i}, {draws} draws)")
            raise InputError(f"the text VAE decoded {what} to an empty text; try another seed or sentences")
        position = i / (request.steps - 1) if path is not None else None
        out.append(_Decoded(ids, request.seed + i if path is None else None, draws, position))
        if progress is not None:
            progress(1)
    return out


def _parameters(request: TextVAERequest, item: _Decoded, index: int, ends_hashes: list[str], wm) -> dict:
    params: dict = {"decoding": request.decoding.value, "new_tokens": len(item.ids), "index": index}
    if request.interpolate is not None:
        params.update({"latent": "interpolation between the posterior means of two sentences", "step": index,
                       "steps": request.steps, "position": item.position, "endpoints_sha256": ends_hashes})
    else:
        params.update({"latent": "prior draw N(0, I)", "z_seed": item.z_seed, "draws": item.draws})
    if request.decoding is Decoding.SAMPLE:
        params.update({"temperature": request.temperature, "top_p": request.top_p, "top_k": request.top_k,
                       "token_seed": request.seed + index})
        params["watermark"] = wm.settings() if wm is not None else "off: sampled without the text watermark"
    else:
        params["watermark"] = UNMARKED_GREEDY
    if request.max_tokens is not None:
        params["max_tokens"] = request.max_tokens
    return params


