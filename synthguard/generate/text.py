"""The generate flow for text: sample with the text watermark in the loop, then stamp each text (written atomically
with a signed ``.c2pa`` sidecar: trainedAlgorithmicMedia, the model assertion, the watermark's scheme and key id as
soft binding; recorded in the ledger). One function, ``generate_texts(TextRequest)``, written as numbered steps.

A flow of its own beside ``runs.py`` (images): its model is a causal LM, its inputs are prompts, its outputs are a
file or a folder of texts with sidecars, and its watermark is applied while sampling rather than after.

Chat. An instruction-tuned model's tokenizer carries a chat template: with ``chat`` on (the default when it has one)
each prompt is the user's message, rendered by the template up to the start of the assistant's answer; sampling stops
at the template's end-of-turn token and the file holds the answer only. The watermark hashes the few tokens before
each position, so only the answer's first ones were marked after template tokens, and detection, which reads the
answer alone, does not score those: the answer is detected as written.

An empty sample (the model ended at once) is drawn again with the seeds after those the batches used, up to
``MAX_RESAMPLES`` times (its sidecar records the seed that made it); one that stays empty is reported in
``TextReport.failed`` and its file is not written, the others are. Only when no text at all is made does the flow
raise ``InputError``.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from synthguard.core.fileio import check_output_path
from synthguard.core.home import Home
from synthguard.core.media import read_text
from synthguard.core.torch_utils import torch_threads
from synthguard.errors import InputError
from synthguard.generate.base import MAX_SEED, ProgressCallback
from synthguard.generate.sampling import check_context, check_sampling, generate_text
from synthguard.models.text import load_text_model
from synthguard.provenance.manifest import ManifestSpec, ModelInfo
from synthguard.provenance.signing import sidecar_path
from synthguard.stamp import IdentitySource, Stamper
from synthguard.watermark.text import SCHEMES

# Fewer new tokens than this rarely carry a detectable watermark; such outputs are written with a warning.
SHORT_TEXT_TOKENS = 25
TEXT_SUFFIXES = (".txt", ".md")
# How many more times a sample that ended without any text is drawn (each time with a new seed).
MAX_RESAMPLES = 3


@dataclass(frozen=True, kw_only=True)
class TextRequest:
    """What to generate: ``n`` samples of each prompt, written to ``output`` (a ``.txt`` or ``.md`` file for one
    text; otherwise a folder of ``text-0000.txt``...). Checked when made (``InputError`` names the bad value)."""

    output: Path
    prompts: tuple[str, ...] = ("",)  # "" continues from the start of a text
    n: int = 1  # samples per prompt
    model: str | None = None  # None: the built-in model; a causal LM folder, a .gguf file or a hub id
    seed: int = 0  # batch b is sampled from seed + b
    device: str = "auto"
    batch_size: int = 16
    threads: int | None = None  # torch CPU threads; None: torch's choice
    max_new_tokens: int = 100
    temperature: float = 1.0
    top_p: float = 0.95
    top_k: int = 0  # 0: off
    scheme: str = "synthid"  # the text watermark, keyed by the signing identity
    watermark: bool = True  # mark while sampling (the sidecar declares AI either way)
    overwrite: bool = False
    chat: bool | None = None  # prompts as a user's messages through the chat template; None: when the model has one
    system: str | None = None  # the system message of a chat (None: the template's own default)

    def __post_init__(self):
        object.__setattr__(self, "output", Path(self.output))
        prompts = (self.prompts,) if isinstance(self.prompts, str) else tuple(self.prompts)
        if not prompts or not all(isinstance(p, str) for p in prompts):
            raise InputError(f"prompts must be one or more strings, not {self.prompts!r}")
        object.__setattr__(self, "prompts", prompts)
        for name in ("n", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a positive integer, not {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= MAX_SEED:
            raise InputError(f"seed must be an integer in [0, 2**63 - 1], not {self.seed!r}")
        threads = self.threads
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise InputError(f"threads must be a positive integer or None, not {threads!r}")
        check_sampling(max_new_tokens=self.max_new_tokens, temperature=self.temperature, top_p=self.top_p,
                       top_k=self.top_k)
        if self.scheme not in SCHEMES:
            raise InputError(f"unknown text watermark scheme {self.scheme!r}: choose from {sorted(SCHEMES)}")
        if self.chat not in (None, True, False):
            raise InputError(f"chat must be True, False or None (when the model has a chat template), not "
                             f"{self.chat!r}")
        if self.system is not None and not isinstance(self.system, str):
            raise InputError(f"system must be a string or None, not {self.system!r}")
        if self.system is not None and self.chat is False:
            raise InputError("a system message needs the chat template, but chat is off")

    @property
    def count(self) -> int:
        """How many texts the request makes."""
        return len(self.prompts) * self.n


@dataclass(frozen=True)
class TextOutput:
    file: Path
    sidecar: Path | None
    prompt_sha256: str
    new_tokens: int
    watermark: dict | None  # the scheme's public settings (algorithm, key id...), None when unmarked
    asset_id: str
    warning: str | None = None
    seed: int | None = None  # the seed of the batch that made it
    empty_seeds: tuple[int, ...] = ()  # seeds whose samples of this prompt ended without text (then drawn again)

    def to_dict(self) -> dict:
        return {"file": str(self.file), "sidecar": str(self.sidecar) if self.sidecar else None,
                "prompt_sha256": self.prompt_sha256, "new_tokens": self.new_tokens, "watermark": self.watermark,
                "asset_id": self.asset_id, "warning": self.warning, "seed": self.seed,
                "empty_seeds": list(self.empty_seeds)}


@dataclass(frozen=True)
class TextFailure:
    """A prompt whose every sample ended without any text: its file was not written."""

    prompt_index: int
    file: Path  # where it would have gone
    prompt_sha256: str
    seeds: tuple[int, ...]  # every seed tried

    def to_dict(self) -> dict:
        return {"prompt_index": self.prompt_index, "file": str(self.file), "prompt_sha256": self.prompt_sha256,
                "seeds": list(self.seeds)}

    def describe(self) -> tuple[str, ...]:
        return (f"{self.file}: not written: the model ended text {self.prompt_index} at once with each of seeds "
                f"{', '.join(map(str, self.seeds))}; try another prompt or seed",)


@dataclass(frozen=True)
class TextReport:
    model: str
    version: str
    device: str
    outputs: tuple[TextOutput, ...]
    seconds: float  # sampling time
    tokens_per_second: float
    failed: tuple[TextFailure, ...] = ()  # prompts that gave no text (their files are not written)
    chat: bool = False  # the prompts went through the model's chat template

    def to_dict(self) -> dict:
        return {"model": self.model, "version": self.version, "device": self.device,
                "outputs": [o.to_dict() for o in self.outputs], "seconds": self.seconds,
                "tokens_per_second": self.tokens_per_second, "failed": [f.to_dict() for f in self.failed],
                "chat": self.chat}


def read_prompts(path: Path) -> tuple[str, ...]:
    """The prompts of a UTF-8 file, one per non-blank line (stripped)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    prompts = tuple(line.strip() for line in read_text(path).splitlines() if line.strip())
    if not prompts:
        raise InputError(f"{path}: no prompt in it (one per line)")
    return prompts


def output_paths(output: Path, count: int) -> list[Path]:
    """One ``.txt``/``.md`` file for one text; otherwise a folder of ``text-0000.txt``..."""
    if output.suffix.lower() in TEXT_SUFFIXES:
        if count != 1:
            raise InputError(f"{output} names one file, but {count} texts will be made: give a folder")
        return [output]
    if output.exists() and not output.is_dir():
        raise InputError(f"{output} is a file; several texts go into a folder")
    return [output / f"text-{i:04d}.txt" for i in range(count)]


def generate_texts(request: TextRequest, stamper: Stamper | Home, *, identity: IdentitySource = None,
                   progress: ProgressCallback | None = None,
                   stream: Callable[[str, bool], None] | None = None) -> TextReport:
    """Sample the request's texts, marked by the stamper's text watermarker, and stamp each.

    ``stamper``: an open Stamper (its ``text_watermarker`` marks the texts), or a Home to open one from (signing as
    ``identity``, see ``IdentitySource``, once the model has loaded; the request's scheme keyed from it).
    ``progress(k)``: ``k`` more texts sampled. ``stream(text, end)``: called with the decoded text (prompt
    included; a chat's answer only) as it is sampled, ``end`` True on the last piece; one text only.
    """
    # 1. Check the inputs: the stamper, every prompt n times, and outputs that are free, before minutes go into
    # sampling.
    check_text_stamper(stamper, marked=request.watermark, scheme=request.scheme)
    prompts = [p for p in request.prompts for _ in range(request.n)]
    if stream is not None and len(prompts) != 1:
        raise InputError(f"streaming shows one text as it is sampled, but {len(prompts)} will be made")
    paths = output_paths(request.output, len(prompts))
    for path in paths:
        for out in (path, sidecar_path(path)):
            if out.parent.exists():
                check_output_path(out, overwrite=request.overwrite)

    with torch_threads(request.threads):
        # 2. Load the model, and render the prompts through its chat template when chatting.
        tm = load_text_model(request.model, device=request.device)
        chat = tm.chat_template is not None if request.chat is None else request.chat
        if chat and tm.chat_template is None:
            raise InputError(f"the model {tm.name!r} has no chat template: its prompts can only be continued "
                             "(turn chat off)")
        if request.system is not None and not chat:
            raise InputError(f"a system message needs a chat template, and the model {tm.name!r} has none")
        inputs = [tm.render_chat(p, request.system) for p in prompts] if chat else prompts
        stop = tm.end_of_turn_ids() if chat else tm.end_of_text_ids()
        # Prompts that do not fit the model's context are refused before an identity is made for them.
        check_context(tm, inputs, request.max_new_tokens)

        # 3. Open the stamper (signing identity, ledger, the text watermark keyed from the identity).
        with open_text_stamper(stamper, marked=request.watermark, scheme=request.scheme,
                               identity=identity) as stamper:
            wm = stamper.text_watermarker

            # 4. Sample, the watermark in the loop; a sample that ended without any text is drawn again with the
            # seeds after those the batches used.
            start = time.perf_counter()
            streamer = _streamer(tm, stream, skip_prompt=chat)

            def sample(texts: list[str], seed: int, progress=None) -> list:
                return generate_text(tm, texts, max_new_tokens=request.max_new_tokens,
                                     temperature=request.temperature, top_p=request.top_p, top_k=request.top_k,
                                     seed=seed, watermarker=wm, batch_size=request.batch_size, progress=progress,
                                     streamer=streamer, stop_ids=stop)

            samples = sample(inputs, request.seed, _increments(progress))
            drawn = list(samples)  # every sample drawn, for the token rate
            empty_seeds: dict[int, list[int]] = {}
            seed = request.seed + math.ceil(len(inputs) / request.batch_size)
            for _ in range(MAX_RESAMPLES):
                empty = [i for i, s in enumerate(samples) if not s.text.strip()]
                if not empty:
                    break
                for i in empty:
                    empty_seeds.setdefault(i, []).append(samples[i].seed)
                again = sample([inputs[i] for i in empty], seed)
                seed += math.ceil(len(empty) / request.batch_size)
                drawn += again
                for i, s in zip(empty, again, strict=True):
                    samples[i] = s
            seconds = time.perf_counter() - start

            # 5. Stamp each text: the model, how it was sampled and the watermark's settings, in a signed sidecar.
            paths[0].parent.mkdir(parents=True, exist_ok=True)
            outputs, failed = [], []
            for i, (sample_i, path) in enumerate(zip(samples, paths, strict=True)):
                prompt_sha256 = hashlib.sha256(prompts[i].encode()).hexdigest()
                if not sample_i.text.strip():
                    failed.append(TextFailure(i, path, prompt_sha256, (*empty_seeds[i], sample_i.seed)))
                    continue
                params = {"prompt_sha256": prompt_sha256, "prompt_index": i,
                          "max_new_tokens": request.max_new_tokens, "temperature": request.temperature,
                          "top_p": request.top_p, "top_k": request.top_k, "batch_size": request.batch_size,
                          "new_tokens": sample_i.new_tokens, "sample_seed": sample_i.seed}
                if i in empty_seeds:
                    params["empty_sample_seeds"] = empty_seeds[i]
                if chat:
                    params["chat_template_sha256"] = tm.chat_template_sha256
                    if request.system is not None:
                        params["system_sha256"] = hashlib.sha256(request.system.encode()).hexdigest()
                if wm is not None:
                    params["watermark"] = wm.settings()
                spec = ManifestSpec(title=path.name, model=ModelInfo(tm.recorded_name, tm.version, None,
                                                                     request.seed, params))
                stamped = stamper.stamp_text(sample_i.text, path, spec, overwrite=request.overwrite)
                warning = None
                if wm is not None and sample_i.new_tokens < SHORT_TEXT_TOKENS:
                    warning = (f"only {sample_i.new_tokens} tokens: too short for the watermark to be detected "
                               "reliably; the signed sidecar still declares it AI-generated")
                outputs.append(TextOutput(path, stamped.signed.sidecar, prompt_sha256, sample_i.new_tokens,
                                          wm.settings() if wm is not None else None, stamped.signed.asset_id,
                                          warning, sample_i.seed, tuple(empty_seeds.get(i, ()))))
    if not outputs:
        raise InputError("; ".join(line for f in failed for line in f.describe()))

    # 6. Report.
    tokens = sum(s.new_tokens for s in drawn)
    return TextReport(tm.name, tm.version, str(tm.device), tuple(outputs), seconds, tokens / max(seconds, 1e-9),
                      tuple(failed), chat)


def check_text_stamper(target: Stamper | Home, *, marked: bool, scheme: str) -> None:
    """A given Stamper must mark texts as the request asks (``scheme`` when ``marked``, none otherwise); anything
    else must be a Home to open one from."""
    if isinstance(target, Stamper):
        wm = target.text_watermarker
        if marked and not isinstance(wm, SCHEMES[scheme]):
            raise InputError(f"the request asks for the {scheme} text watermark, but the stamper's text "
                             f"watermarker is {type(wm).__name__ if wm is not None else 'None'}")
        if not marked and wm is not None:
            raise InputError("the request makes unmarked texts, but the stamper has a text watermarker: its "
                             "sidecars would claim a watermark the texts do not carry")
    elif not isinstance(target, Home):
        raise InputError(f"stamper must be a Stamper or a Home, not {type(target).__name__}")


def open_text_stamper(target: Stamper | Home, *, marked: bool, scheme: str, identity: IdentitySource):
    """The given Stamper (left open after the block), or one opened from the Home (closed after it) marking texts
    with ``scheme`` when ``marked``."""
    if isinstance(target, Stamper):
        return contextlib.nullcontext(target)
    return Stamper.from_home(target, identity=identity, image_watermark=False,
                             text_watermark=scheme if marked else None)


def _increments(progress: ProgressCallback | None) -> Callable[[int], None] | None:
    """``generate_text`` reports how many prompts are done; the flows' callbacks take how many more."""
    if progress is None:
        return None
    done = 0

    def report(total: int) -> None:
        nonlocal done
        progress(total - done)
        done = total

    return report


def _streamer(tm, stream: Callable[[str, bool], None] | None, *, skip_prompt: bool = False):
    """A transformers streamer that hands each finalised piece of text to ``stream`` (the prompt too unless
    ``skip_prompt``)."""
    if stream is None:
        return None
    from transformers import TextStreamer  # noqa: PLC0415

    class _Forward(TextStreamer):
        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            stream(text, stream_end)

    return _Forward(tm.tokenizer, skip_prompt=skip_prompt, skip_special_tokens=True)
