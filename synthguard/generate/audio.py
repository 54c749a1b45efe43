"""The generate flow for audio: four-part chorale-style music sampled from the chorale transformer
(``synthguard.models.audio``), rendered by its additive synthesiser, and each clip stamped (audio watermark,
read-back check, C2PA manifest, ledger record) through ``Stamper.stamp_audio``. One function,
``generate_audio(AudioRequest)``, written as numbered steps.

The prompt. A symbolic model has no text encoder, so a prompt is music: a key ("D minor", "F# major", "Bb major"),
a soprano melody in note names ("C4 D4 E4:2 D4", each a quarter note unless ``:beats`` follows), or a key then a
melody ("G major: G4 A4 B4 D5:2"). The key is the model's key token; the melody is written into the soprano from
the first beat (the model harmonises it with alto, tenor and bass, and continues freely after it). A melody without
a key gets the key whose scale holds most of its notes (ties: the first or last note as tonic, then major). No
prompt: the key is drawn from the clip's seed, uniformly over the 24 keys. Manifests hold the prompt only as its
sha256.

Seeds. Clip ``i`` draws its key (when the prompt gives none) and its tokens from seed ``seed + i``, so one clip can
be remade alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synthguard.core.audio import AudioFormat, output_rate
from synthguard.core.home import Home
from synthguard.errors import InputError, WatermarkError
from synthguard.generate.base import MAX_SEED, ProgressCallback
from synthguard.generate.runs import image_folder, output_paths
from synthguard.models import audio as m
from synthguard.provenance.manifest import DigitalSourceType, ManifestSpec, ModelInfo
from synthguard.stamp import IdentitySource, Stamper, StampResult

MAX_CLIP_SECONDS = 120.0
MAX_CLIPS = 1000
MAX_PROMPT_CHARS = 2000
DEFAULT_SECONDS = 8.0
RENDER_RATE = 44100
FADE_OUT_SECONDS = 0.25  # the clip's last moments fade, so a cut-off chord does not end abruptly
_KEY = re.compile(r"^\s*([A-Ga-g])([#b]?)\s+(major|minor)\b\s*[:;,]?\s*", re.IGNORECASE)


def _min_seconds() -> float:
    """The shortest clip the audio watermark marks and reads (its ``MIN_SECONDS``)."""
    from synthguard.watermark.audio import MIN_SECONDS  # noqa: PLC0415

    return float(MIN_SECONDS)


@dataclass(frozen=True)
class AudioPrompt:
    """A parsed prompt: the key token (None: drawn per clip) and the soprano melody as (pitch, beats) pairs."""

    key: int | None
    melody: tuple[tuple[int, float], ...] = ()

    @property
    def beats(self) -> float:
        return sum(b for _, b in self.melody)


def parse_prompt(text: str | None) -> AudioPrompt:
    """``"D minor"``, ``"C4 D4 E4:2"``, ``"G major: G4 A4 B4"`` or None -> an ``AudioPrompt`` (see the module
    comment); anything else raises ``InputError`` naming the part it could not read."""
    if text is None:
        return AudioPrompt(None)
    if not isinstance(text, str) or not text.strip():
        raise InputError("an audio prompt must be a key (\"D minor\"), note names (\"C4 D4 E4\") or both")
    if len(text) > MAX_PROMPT_CHARS:
        raise InputError(f"an audio prompt is at most {MAX_PROMPT_CHARS} characters, not {len(text)}")
    key = None
    match = _KEY.match(text)
    if match:
        letter, accidental, mode = match.groups()
        tonic = m.parse_note_name(f"{letter.upper()}{accidental}4") % 12
        key = m.key_token(tonic, mode.lower() == "minor")
        text = text[match.end():]
    melody = []
    for word in text.replace(",", " ").split():
        name, _, beats = word.partition(":")
        pitch = m.parse_note_name(name)
        if not m.LOWEST_PITCH <= pitch <= m.HIGHEST_PITCH:
            raise InputError(f"prompt note {name} is outside the model's range "
                             f"{m.note_name(m.LOWEST_PITCH)}-{m.note_name(m.HIGHEST_PITCH)}")
        try:
            value = float(beats) if beats else 1.0
        except ValueError:
            raise InputError(f"prompt note {word!r}: the beats after ':' must be a number such as 2 or 0.5") from None
        steps = value * m.STEPS_PER_BEAT
        if not 0 < value <= 16 or abs(steps - round(steps)) > 1e-9:
            raise InputError(f"prompt note {word!r}: beats must be a multiple of 0.25 up to 16")
        melody.append((pitch, value))
    if key is None and not melody:
        raise InputError(f"cannot read the audio prompt {text!r}: give a key (\"D minor\") and/or note names")
    if key is None:
        key = melody_key([p for p, _ in melody])
    return AudioPrompt(key, tuple(melody))


def melody_key(pitches: list[int]) -> int:
    """The key token whose scale holds most of ``pitches`` (ties: the last note, then the first note as the tonic,
    then major before minor, then the lowest tonic)."""
    def score(token: int) -> tuple:
        tonic, minor = m.key_of_token(token)
        scale = m.MINOR_SCALE if minor else m.MAJOR_SCALE
        inside = sum((p - tonic) % 12 in scale for p in pitches)
        return inside, pitches[-1] % 12 == tonic, pitches[0] % 12 == tonic, not minor, -tonic

    return max(range(m.FIRST_KEY_TOKEN, m.FIRST_KEY_TOKEN + 24), key=score)


@dataclass(frozen=True, kw_only=True)
class AudioRequest:
    """What to make: ``n`` clips of ``seconds`` from ``seed`` (clip ``i`` from seed ``seed + i``), written into
    ``output_dir`` as ``<model>-<seed>.<suffix>``. Checked when made (``InputError`` names the bad value)."""

    output_dir: Path
    n: int = 1
    seed: int = 0
    seconds: float = DEFAULT_SECONDS
    prompt: str | None = None
    fmt: AudioFormat = AudioFormat.WAV
    model: str | None = None  # None: the built-in chorale model; a folder of ChoraleTransformer.save_pretrained
    temperature: float = 1.0
    top_k: int | None = None
    bpm: float | None = None  # quarter notes a minute; None: the model's
    device: str = "cpu"  # "auto", "cpu", "cuda", "cuda:N", "mps"
    threads: int | None = None
    overwrite: bool = False

    def __post_init__(self):
        object.__setattr__(self, "output_dir", Path(self.output_dir))
        fmt = self.fmt if isinstance(self.fmt, AudioFormat) else AudioFormat.parse(str(self.fmt))
        object.__setattr__(self, "fmt", fmt)
        if isinstance(self.n, bool) or not isinstance(self.n, int) or not 1 <= self.n <= MAX_CLIPS:
            raise InputError(f"number of clips must be an integer in [1, {MAX_CLIPS}], not {self.n!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= MAX_SEED - self.n + 1:
            raise InputError(f"seed must be an integer in [0, 2**63 - n], not {self.seed!r}")
        seconds = self.seconds
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not math.isfinite(seconds):
            raise InputError(f"seconds must be a number, not {seconds!r}")
        minimum = _min_seconds()
        if seconds < minimum:
            raise InputError(f"a clip of {seconds:g} s is too short for the audio watermark: clips must last at least "
                             f"{minimum:g} s")
        if seconds > MAX_CLIP_SECONDS:
            raise InputError(f"a clip lasts at most {MAX_CLIP_SECONDS:g} s, not {seconds:g}")
        if not (isinstance(self.temperature, int | float) and 0 < self.temperature <= 10):
            raise InputError(f"temperature must lie in (0, 10], not {self.temperature!r}")
        if self.top_k is not None and (isinstance(self.top_k, bool) or not isinstance(self.top_k, int)
                                       or self.top_k < 1):
            raise InputError(f"top_k must be a positive integer or None, not {self.top_k!r}")
        if self.bpm is not None and (isinstance(self.bpm, bool) or not isinstance(self.bpm, int | float)
                                     or not 30 <= self.bpm <= 240):
            raise InputError(f"bpm must lie in [30, 240] or be None, not {self.bpm!r}")
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(self.threads, int)
                                         or self.threads < 1):
            raise InputError(f"threads must be a positive integer or None, not {self.threads!r}")
        parse_prompt(self.prompt)

    @property
    def parsed_prompt(self) -> AudioPrompt:
        return parse_prompt(self.prompt)


@dataclass(frozen=True)
class AudioClipOutput:
    """One written clip: its stamp, seed, key, and what is in it (for the report)."""

    stamp: StampResult
    seed: int
    key: str
    seconds: float
    rate: int
    notes: int
    pitch_range: tuple[str, str] | None  # lowest and highest note name

    def to_dict(self) -> dict:
        return {**self.stamp.to_dict(), "seed": self.seed, "key": self.key, "seconds": self.seconds,
                "rate": self.rate, "notes": self.notes,
                "pitch_range": list(self.pitch_range) if self.pitch_range else None}

    def describe(self) -> tuple[str, ...]:
        span = f", {self.pitch_range[0]}-{self.pitch_range[1]}" if self.pitch_range else ""
        return (f"{self.stamp.signed.output}: {self.seconds:g} s at {self.rate} Hz, {self.key}, {self.notes} "
                f"notes{span} (seed {self.seed})",)


@dataclass(frozen=True)
class AudioReport:
    """The clips written, the model that made them, and where the time went (seconds per stage: "model" sampling,
    "render" synthesis, "stamp" watermark + signing)."""

    clips: tuple[AudioClipOutput, ...]
    model: str
    version: str
    config_hash: str
    device: str
    seconds: dict = field(default_factory=dict)
    wall_seconds: float = 0.0

    @property
    def files(self) -> list[StampResult]:
        return [c.stamp for c in self.clips]

    def to_dict(self) -> dict:
        return {"model": self.model, "version": self.version, "config_hash": self.config_hash,
                "device": self.device, "clips": len(self.clips), "seconds": self.seconds,
                "wall_seconds": self.wall_seconds, "files": [c.to_dict() for c in self.clips]}

    def describe(self) -> tuple[str, ...]:
        lines = [f"{len(self.clips)} clip(s) from {self.model} {self.version} in {self.wall_seconds:.1f} s"]
        for clip in self.clips:
            lines.extend(clip.describe())
        return tuple(lines)


def _forced(prompt: AudioPrompt, steps: int) -> dict[int, int]:
    """The soprano melody as body token index -> token (an onset, then holds)."""
    forced, step = {}, 0
    for pitch, beats in prompt.melody:
        length = int(round(beats * m.STEPS_PER_BEAT))
        for offset in range(length):
            if step + offset < steps:
                forced[(step + offset) * m.N_VOICES] = m.pitch_token(pitch) if offset == 0 else m.HOLD
        step += length
    return forced


def _fade_out(samples: np.ndarray, rate: int) -> np.ndarray:
    frames = min(len(samples), int(FADE_OUT_SECONDS * rate))
    out = samples.copy()
    out[len(out) - frames:] *= np.linspace(1.0, 0.0, frames, dtype=np.float32)
    return out


def generate_audio(request: AudioRequest, stamper: Stamper | Home, *, identity: IdentitySource = None,
                   progress: ProgressCallback | None = None) -> AudioReport:
    """Sample, render and stamp the request's clips: each watermarked (and read back), signed with a manifest
    (trainedAlgorithmicMedia, the model, its seed and settings, the prompt's sha256) and recorded in the ledger.

    ``stamper``: an open Stamper, or a Home to open one from (signing as ``identity``) once the model has loaded.
    ``progress(k)``: ``k`` more clips written. A clip the watermark cannot mark raises ``WatermarkError``; nothing
    is written unmarked."""
    import torch  # noqa: PLC0415

    from synthguard.core.torch_utils import config_hash, resolve_device, torch_threads  # noqa: PLC0415

    # 1. Check the inputs: the stamper, the prompt, the output names (refused before any time goes into sampling).
    if isinstance(stamper, Stamper):
        if stamper.audio_watermarker is None:
            raise InputError("the stamper has no audio watermarker: generated audio is always watermarked")
    elif not isinstance(stamper, Home):
        raise InputError(f"stamper must be a Stamper or a Home, not {type(stamper).__name__}")
    prompt = request.parsed_prompt
    folder = image_folder(request.output_dir)
    seeds = [request.seed + i for i in range(request.n)]

    # Token-by-token sampling of a small model: on a CPU one thread is fastest, and on a loaded machine more are
    # much slower (threads spinning for a core); a GPU run leaves torch's setting alone.
    device = resolve_device(request.device)
    threads = request.threads if request.threads is not None else (1 if str(device) == "cpu" else None)
    with torch_threads(threads):
        # 2. Load the model; the clip's length in grid steps, which the prompt's melody must fit.
        loaded = m.load_audio_model(request.model, device=device)
        model = loaded.model
        bpm = float(request.bpm or model.config.bpm)
        step_seconds = 60.0 / bpm / m.STEPS_PER_BEAT
        steps = int(math.ceil(request.seconds / step_seconds))
        if prompt.beats * m.STEPS_PER_BEAT > steps:
            raise InputError(f"the prompt's melody lasts {prompt.beats:g} beats ({prompt.beats * 60 / bpm:.1f} s at "
                             f"{bpm:g} bpm), longer than the {request.seconds:g} s clip")
        forced = _forced(prompt, steps)
        paths = output_paths(folder, loaded.name, seeds, request.fmt.suffix, request.overwrite)
        rate = output_rate(request.fmt, RENDER_RATE)
        model_hash = config_hash(model.config)
        prompt_sha256 = hashlib.sha256(request.prompt.encode()).hexdigest() if request.prompt is not None else None

        # 3. Open the stamper (signing identity, ledger, audio watermark).
        opened = contextlib.nullcontext(stamper) if isinstance(stamper, Stamper) else \
            Stamper.from_home(stamper, identity=identity, image_watermark=False, audio_watermark=True)
        clips, timing, started = [], {"model": 0.0, "render": 0.0, "stamp": 0.0}, time.perf_counter()
        with opened as stamper:
            for seed, path in zip(seeds, paths, strict=True):
                # 4. Sample the clip's tokens (its key from its seed unless the prompt gave one) and decode them.
                clock = time.perf_counter()
                key = prompt.key if prompt.key is not None else \
                    m.FIRST_KEY_TOKEN + int(np.random.default_rng(seed).integers(24))
                with torch.inference_mode():
                    tokens = m.sample_tokens(model, key, steps, seed=seed, temperature=request.temperature,
                                             top_k=request.top_k, forced=forced)
                notes = m.tokens_to_notes(tokens, bpm=bpm)
                timing["model"] += time.perf_counter() - clock

                # 5. Render.
                clock = time.perf_counter()
                samples = _fade_out(m.render_notes(notes, rate=rate, seconds=request.seconds), rate)
                if not np.any(samples):
                    raise WatermarkError(f"clip {seed} rendered to silence (the model sampled rests only): nothing "
                                         "to mark; try another seed")
                timing["render"] += time.perf_counter() - clock

                # 6. Stamp: watermark + read-back check, signed manifest, ledger record.
                clock = time.perf_counter()
                spec = _spec(path, loaded, model_hash, seed, request, bpm, key, prompt_sha256)
                folder.mkdir(parents=True, exist_ok=True)
                stamped = stamper.stamp_audio(samples, rate, path, spec, fmt=request.fmt, overwrite=request.overwrite)
                timing["stamp"] += time.perf_counter() - clock
                pitches = [n.pitch for n in notes if n.start < request.seconds]
                span = (m.note_name(min(pitches)), m.note_name(max(pitches))) if pitches else None
                clips.append(AudioClipOutput(stamped, seed, m.key_name(key), float(request.seconds), rate,
                                             len(pitches), span))
                if progress is not None:
                    progress(1)

    # 7. Report.
    return AudioReport(tuple(clips), loaded.name, loaded.version, model_hash, str(next(model.parameters()).device),
                       {k: round(v, 3) for k, v in timing.items()}, round(time.perf_counter() - started, 3))


def _spec(path: Path, loaded: m.LoadedChoraleModel, model_hash: str, seed: int, request: AudioRequest, bpm: float,
          key: int, prompt_sha256: str | None) -> ManifestSpec:
    """The manifest of one clip: the model and how to remake it (the prompt only as its sha256)."""
    parameters: dict[str, Any] = {"seconds": request.seconds, "temperature": request.temperature, "bpm": bpm,
                                  "renderer": "synthguard additive synthesiser", "format": request.fmt.value}
    if request.top_k is not None:
        parameters["top_k"] = request.top_k
    if prompt_sha256 is not None:
        parameters["prompt_sha256"] = prompt_sha256
    else:
        parameters["key"] = m.key_name(key)
    return ManifestSpec(title=path.name, digital_source_type=DigitalSourceType.TRAINED_ALGORITHMIC_MEDIA,
                        model=ModelInfo(loaded.name, loaded.version, config_hash=model_hash, seed=seed,
                                        parameters=parameters))
