"""A small symbolic music transformer over four-part chorales, and the additive synthesiser that renders its notes.

- Notes: ``NoteEvent`` (MIDI pitch, start and duration in seconds, velocity, voice 0-3: soprano, alto, tenor, bass).
- Tokens: the score on a 16th-note grid; each grid step holds four tokens, soprano to bass, each a new onset of a
  pitch, a hold of the voice's sounding note, or a rest (the "Bach Doodle" / Coconet-style flattening of Huang et al.
  2019 onto one decoder stream). A piece starts with a begin token and a key token (24: 12 tonics x major/minor);
  pieces are padded at the front so that every bar begins at a multiple of ``STEPS_PER_BAR`` grid steps.
- The model: a decoder-only transformer (Vaswani et al. 2017; GPT-2 layout, pre-norm), its token embedding plus a
  learned embedding of the position in the window, of the voice and of the step within the bar.
- The synthesiser: each note a sum of harmonics with a per-voice spectrum, an ADSR envelope and a delayed vibrato,
  summed in float64 and scaled into [-1, 1].

The training (chorales read with music21, transposition, the loop) is ``synthguard.training.audio``; sampling and
stamping is ``synthguard.generate.audio``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn
from torch.nn import functional as F

from synthguard.errors import Hint, InputError

BUILTIN_AUDIO_FOLDER = Path(__file__).parent / "weights" / "audio"
VOICES = ("soprano", "alto", "tenor", "bass")
N_VOICES = len(VOICES)
STEPS_PER_BEAT = 4  # the grid: 16th notes of a quarter-note beat
STEPS_PER_BAR = 16  # 4/4
DEFAULT_BPM = 84.0
LOWEST_PITCH, HIGHEST_PITCH = 33, 86  # MIDI A1..D6: every chorale voice, transposed up to +-6 semitones, fits

# The vocabulary: HOLD, REST, one onset per pitch, BOS, then the 24 keys.
HOLD = 0
REST = 1
FIRST_PITCH_TOKEN = 2
N_PITCHES = HIGHEST_PITCH - LOWEST_PITCH + 1
BOS = FIRST_PITCH_TOKEN + N_PITCHES
FIRST_KEY_TOKEN = BOS + 1
VOCAB_SIZE = FIRST_KEY_TOKEN + 24
HEADER = 2  # BOS, key
TOKENS_PER_BAR = STEPS_PER_BAR * N_VOICES
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)  # pitch classes above the tonic
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 9, 10, 11)  # natural minor with the raised 6th and 7th (melodic / harmonic)
PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_NOTE_NAME = re.compile(r"^([A-Ga-g])([#b]?)(-?\d)$")
_LETTER = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


@dataclass(frozen=True)
class NoteEvent:
    """One sounding note: MIDI ``pitch``, ``start`` and ``duration`` in seconds, ``velocity`` in (0, 1], ``voice``
    0-3 (soprano, alto, tenor, bass)."""

    pitch: int
    start: float
    duration: float
    velocity: float = 0.8
    voice: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.pitch, bool) or not isinstance(self.pitch, int) or not 0 <= self.pitch <= 127:
            raise InputError(f"NoteEvent: pitch must be a MIDI note number 0-127, not {self.pitch!r}")
        for name, value in (("start", self.start), ("duration", self.duration), ("velocity", self.velocity)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise InputError(f"NoteEvent: {name} must be a finite number, not {value!r}")
        if self.start < 0 or self.duration <= 0:
            raise InputError(f"NoteEvent: start must be >= 0 and duration > 0 (got {self.start}, {self.duration})")
        if not 0 < self.velocity <= 1:
            raise InputError(f"NoteEvent: velocity must lie in (0, 1], not {self.velocity!r}")
        if isinstance(self.voice, bool) or not isinstance(self.voice, int) or not 0 <= self.voice < N_VOICES:
            raise InputError(f"NoteEvent: voice must be 0-{N_VOICES - 1} ({', '.join(VOICES)}), not {self.voice!r}")

    @property
    def end(self) -> float:
        return self.start + self.duration

    @property
    def frequency(self) -> float:
        return 440.0 * 2.0 ** ((self.pitch - 69) / 12)


def note_name(pitch: int) -> str:
    """MIDI 60 -> "C4"."""
    return f"{PITCH_NAMES[pitch % 12]}{pitch // 12 - 1}"


def parse_note_name(text: str) -> int:
    """"C4", "F#3", "Bb4" -> a MIDI pitch; anything else raises ``InputError``."""
    match = _NOTE_NAME.match(text.strip())
    if not match:
        raise InputError(f"{text!r} is not a note name such as C4, F#3 or Bb4")
    letter, accidental, octave = match.groups()
    pitch = 12 * (int(octave) + 1) + _LETTER[letter.upper()] + {"#": 1, "b": -1, "": 0}[accidental]
    if not 0 <= pitch <= 127:
        raise InputError(f"{text!r} is outside the MIDI range")
    return pitch


# --- the synthesiser ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Timbre:
    harmonics: tuple[float, ...]  # amplitude of harmonic 1, 2, ...
    attack: float  # seconds
    decay: float
    sustain: float  # level, of the peak
    release: float
    vibrato: float  # depth, as a share of the frequency
    gain: float


# Soprano: flute-like (few harmonics); alto: clarinet-like (odd harmonics); tenor: string-like (1/h); bass: bassoon-
# like (strong second and third harmonics).
_TIMBRES = (
    _Timbre((1.0, 0.35, 0.12, 0.05, 0.02), 0.040, 0.12, 0.80, 0.12, 0.0040, 0.9),
    _Timbre((1.0, 0.05, 0.45, 0.04, 0.25, 0.03, 0.12, 0.02, 0.06), 0.030, 0.10, 0.75, 0.10, 0.0030, 0.75),
    _Timbre(tuple(1.0 / h for h in range(1, 11)), 0.050, 0.15, 0.70, 0.14, 0.0035, 0.6),
    _Timbre((0.7, 1.0, 0.8, 0.45, 0.3, 0.18, 0.1, 0.05), 0.025, 0.10, 0.70, 0.10, 0.0020, 0.7),
)
_VIBRATO_HZ = 5.2
_VIBRATO_DELAY = 0.18  # seconds before the vibrato fades in
_EDGE = 0.005  # seconds of fade where a clip cuts a note


def _envelope(frames: int, held: int, rate: int, timbre: _Timbre) -> np.ndarray:
    """ADSR over ``frames`` samples: attack, decay to sustain while held (``held`` samples), then release to 0."""
    t = np.arange(frames) / rate
    attack = max(timbre.attack, 1.0 / rate)
    env = np.where(t < attack, t / attack,
                   timbre.sustain + (1 - timbre.sustain) * np.exp(-(t - attack) / timbre.decay))
    hold_end = held / rate
    level = env[min(held, frames) - 1] if held else 0.0
    tail = t >= hold_end
    env[tail] = level * np.clip(1 - (t[tail] - hold_end) / timbre.release, 0, 1) ** 2
    return env


def render_notes(notes: list[NoteEvent] | tuple[NoteEvent, ...], rate: int = 44100, seconds: float | None = None
                 ) -> np.ndarray:
    """Render ``notes`` with the additive synthesiser: float32 mono ``(frames,)`` in [-1, 1] at ``rate`` Hz.

    ``seconds``: the clip's length (notes past it are cut with a short fade; silence fills the rest); None: up to
    the last note's release. Every note starts and ends at zero amplitude (attack and release), so there are no
    clicks; the mix is scaled to a peak of 0.8 (a silent clip stays zeros)."""
    if isinstance(rate, bool) or not isinstance(rate, int) or not 8000 <= rate <= 192000:
        raise InputError(f"rate must be an integer sample rate 8000-192000 Hz, not {rate!r}")
    notes = list(notes)
    for note in notes:
        if not isinstance(note, NoteEvent):
            raise InputError(f"render_notes takes NoteEvents, not {type(note).__name__}")
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int | float)
                                or not 0 < seconds <= 3600):
        raise InputError(f"seconds must be a positive length up to an hour, or None, not {seconds!r}")
    if seconds is None:
        seconds = max((n.end + _TIMBRES[n.voice].release for n in notes), default=0.0)
    total = int(round(seconds * rate))
    out = np.zeros(total, np.float64)
    nyquist = rate / 2
    for note in notes:
        timbre = _TIMBRES[note.voice]
        begin = int(round(note.start * rate))
        if begin >= total:
            continue
        held = max(1, int(round(note.duration * rate)))
        frames = min(held + int(timbre.release * rate), total - begin)
        t = np.arange(frames) / rate
        env = _envelope(frames, held, rate, timbre)
        if begin + frames == total and held + int(timbre.release * rate) > frames:
            edge = min(frames, int(_EDGE * rate))
            env[frames - edge:] *= np.linspace(1, 0, edge)
        depth = timbre.vibrato * np.clip((t - _VIBRATO_DELAY) / 0.2, 0, 1)
        omega = 2 * np.pi * _VIBRATO_HZ
        # Phase of the fundamental: 2 pi f * integral of (1 + depth * sin(omega t)) dt (depth ramps slowly).
        phase = 2 * np.pi * note.frequency * (t + depth * (1 - np.cos(omega * t)) / omega)
        tone = np.zeros(frames)
        for h, amp in enumerate(timbre.harmonics, start=1):
            if h * note.frequency * (1 + timbre.vibrato) >= nyquist:
                break
            tone += amp * np.sin(h * phase)
        out[begin:begin + frames] += timbre.gain * note.velocity * env * tone
    peak = float(np.abs(out).max()) if total else 0.0
    if peak > 0:
        out *= 0.8 / peak
    return out.astype(np.float32)


# --- tokens ------------------------------------------------------------------------------------------------------

def key_token(tonic: int, minor: bool) -> int:
    """Pitch class of the tonic (0 = C) and mode -> its key token."""
    return FIRST_KEY_TOKEN + (tonic % 12) + (12 if minor else 0)


def key_of_token(token: int) -> tuple[int, bool]:
    if not FIRST_KEY_TOKEN <= token < FIRST_KEY_TOKEN + 24:
        raise InputError(f"token {token} is not a key token")
    index = token - FIRST_KEY_TOKEN
    return index % 12, index >= 12


def key_name(token: int) -> str:
    tonic, minor = key_of_token(token)
    return f"{PITCH_NAMES[tonic]} {'minor' if minor else 'major'}"


def pitch_token(pitch: int) -> int:
    if not LOWEST_PITCH <= pitch <= HIGHEST_PITCH:
        raise InputError(f"pitch {pitch} ({note_name(pitch)}) is outside the model's range "
                         f"{note_name(LOWEST_PITCH)}-{note_name(HIGHEST_PITCH)}")
    return FIRST_PITCH_TOKEN + pitch - LOWEST_PITCH


def is_pitch_token(token: int) -> bool:
    return FIRST_PITCH_TOKEN <= token < FIRST_PITCH_TOKEN + N_PITCHES


def grid_to_tokens(grid: np.ndarray, key: int) -> np.ndarray:
    """A (steps, 4) grid of tokens (onsets, HOLD, REST; soprano first) and a key token -> the flat int16 sequence
    BOS, key, step 0's four tokens, step 1's..."""
    grid = np.asarray(grid)
    if grid.ndim != 2 or grid.shape[1] != N_VOICES:
        raise InputError(f"a grid must have shape (steps, {N_VOICES}), not {grid.shape}")
    return np.concatenate([[BOS, key], grid.reshape(-1)]).astype(np.int16)


def tokens_to_notes(tokens: list[int] | np.ndarray, bpm: float = DEFAULT_BPM, velocity: float = 0.8
                    ) -> list[NoteEvent]:
    """Decode a sequence (with or without its BOS/key header; the body a whole number of 4-token steps) into notes,
    a 16th-note step lasting 60 / bpm / 4 seconds. A hold after a rest (or at the start) is read as a rest."""
    body = [int(t) for t in tokens]
    if body[:1] == [BOS]:
        body = body[HEADER:]
    if len(body) % N_VOICES:
        raise InputError(f"a token body must be whole steps of {N_VOICES} tokens, not {len(body)} tokens")
    if not 0 < bpm <= 400:
        raise InputError(f"bpm must lie in (0, 400], not {bpm!r}")
    step = 60.0 / bpm / STEPS_PER_BEAT
    grid = np.array(body, dtype=np.int64).reshape(-1, N_VOICES)
    notes = []
    for voice in range(N_VOICES):
        pitch, onset = None, 0
        for i, token in enumerate([*grid[:, voice].tolist(), REST]):
            if token == HOLD and pitch is not None:
                continue
            if pitch is not None:
                notes.append(NoteEvent(pitch, onset * step, (i - onset) * step, velocity, voice))
                pitch = None
            if is_pitch_token(token):
                pitch, onset = LOWEST_PITCH + token - FIRST_PITCH_TOKEN, i
            elif token not in (HOLD, REST):
                raise InputError(f"token {token} is not a note token (onset, hold or rest)")
    return sorted(notes, key=lambda n: (n.start, n.voice))


# --- the transformer ---------------------------------------------------------------------------------------------

class _Block(nn.Module):
    def __init__(self, width: int, heads: int, dropout: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attention = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width),
                                 nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attention(h, h, h, attn_mask=mask, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class ChoraleTransformer(ModelMixin, ConfigMixin):
    """token ids (B, T), T <= max_tokens, a window that starts with BOS, key and then whole bars -> next-token logits
    (B, T, vocab_size)."""

    @register_to_config
    def __init__(self, vocab_size: int = VOCAB_SIZE, width: int = 128, layers: int = 4, heads: int = 4,
                 max_tokens: int = HEADER + 4 * TOKENS_PER_BAR, dropout: float = 0.1, bpm: float = DEFAULT_BPM,
                 lowest_pitch: int = LOWEST_PITCH, highest_pitch: int = HIGHEST_PITCH):
        super().__init__()
        for name, value in (("vocab_size", vocab_size), ("width", width), ("layers", layers), ("heads", heads),
                            ("max_tokens", max_tokens)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"ChoraleTransformer: {name} must be a positive integer, not {value!r}")
        if (vocab_size, lowest_pitch, highest_pitch) != (VOCAB_SIZE, LOWEST_PITCH, HIGHEST_PITCH):
            raise InputError(f"ChoraleTransformer: this version reads the vocabulary of {VOCAB_SIZE} tokens over "
                             f"MIDI {LOWEST_PITCH}-{HIGHEST_PITCH}, not {vocab_size} over {lowest_pitch}-"
                             f"{highest_pitch}")
        if width % heads:
            raise InputError(f"ChoraleTransformer: width {width} is not a multiple of heads {heads}")
        if max_tokens < HEADER + TOKENS_PER_BAR or (max_tokens - HEADER) % TOKENS_PER_BAR:
            raise InputError(f"ChoraleTransformer: max_tokens must be {HEADER} + a whole number of bars of "
                             f"{TOKENS_PER_BAR} tokens, not {max_tokens}")
        if not 0 < bpm <= 400:
            raise InputError(f"ChoraleTransformer: bpm must lie in (0, 400], not {bpm!r}")
        self.tokens = nn.Embedding(vocab_size, width)
        self.positions = nn.Embedding(max_tokens, width)
        # Role of a position: 0 BOS, 1 key, then 2 + voice, and separately the step within the bar (+1; 0: header).
        self.roles = nn.Embedding(HEADER + N_VOICES, width)
        self.beats = nn.Embedding(STEPS_PER_BAR + 1, width)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(_Block(width, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(width)
        roles = torch.tensor([0, 1] + [HEADER + i % N_VOICES for i in range(max_tokens - HEADER)])
        beats = torch.tensor([0, 0] + [1 + (i // N_VOICES) % STEPS_PER_BAR for i in range(max_tokens - HEADER)])
        self.register_buffer("role_ids", roles, persistent=False)
        self.register_buffer("beat_ids", beats, persistent=False)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        # GPT-2's initialisation: small normal weights, so that the tied output layer starts near uniform.
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        length = ids.shape[1]
        if length > self.config.max_tokens:
            raise InputError(f"a window of {length} tokens is longer than max_tokens {self.config.max_tokens}")
        x = (self.tokens(ids) + self.positions.weight[:length] + self.roles(self.role_ids[:length])
             + self.beats(self.beat_ids[:length]))  # (B, T, width)
        x = self.drop(x)
        mask = torch.ones(length, length, dtype=torch.bool, device=ids.device).triu(1)  # True: may not attend
        for block in self.blocks:
            x = block(x, mask)
        return self.norm(x) @ self.tokens.weight.T  # (B, T, vocab), the output layer tied to the embedding

    def loss(self, ids: torch.Tensor) -> torch.Tensor:
        """Mean next-token cross-entropy (nats) of windows (B, T), the header's key prediction included."""
        logits = self(ids[:, :-1])
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))


def allowed_mask(voice_token_prev: int | None) -> torch.Tensor:
    """Tokens a body position may hold: onsets, rest, and hold (only while the voice sounds)."""
    mask = torch.zeros(VOCAB_SIZE, dtype=torch.bool)
    mask[FIRST_PITCH_TOKEN:FIRST_PITCH_TOKEN + N_PITCHES] = True
    mask[REST] = True
    mask[HOLD] = voice_token_prev is not None and voice_token_prev != REST
    return mask


def sample_tokens(model: ChoraleTransformer, key: int, steps: int, *, seed: int, temperature: float = 1.0,
                  top_k: int | None = None, forced: dict[int, int] | None = None) -> np.ndarray:
    """Sample ``steps`` grid steps after BOS + ``key`` with a seeded CPU generator: the flat sequence (header
    included) as int64. ``forced``: token index in the body -> token (a prompt melody in the soprano).

    Only note tokens are drawn in the body (never BOS or a key), and a hold only while the voice sounds. Past the
    model's window, the context slides by whole bars and keeps the header."""
    if not FIRST_KEY_TOKEN <= key < FIRST_KEY_TOKEN + 24:
        raise InputError(f"{key} is not a key token")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InputError(f"steps must be a positive integer, not {steps!r}")
    if not (isinstance(temperature, int | float) and 0 < temperature <= 10):
        raise InputError(f"temperature must lie in (0, 10], not {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise InputError(f"top_k must be a positive integer or None, not {top_k!r}")
    forced = forced or {}
    generator = torch.Generator("cpu").manual_seed(seed)
    window = model.config.max_tokens - HEADER
    body: list[int] = []
    # Per voice, the last token that was not a hold (None before the first).
    sounding: list[int | None] = [None] * N_VOICES
    device = next(model.parameters()).device
    with torch.inference_mode():
        for index in range(steps * N_VOICES):
            voice = index % N_VOICES
            if index in forced:
                token = forced[index]
            else:
                start = max(0, (len(body) - window + TOKENS_PER_BAR) // TOKENS_PER_BAR * TOKENS_PER_BAR) \
                    if len(body) >= window else 0
                context = torch.tensor([[BOS, key, *body[start:]]], device=device)
                logits = model(context)[0, -1].float().cpu() / temperature
                logits[~allowed_mask(sounding[voice])] = float("-inf")
                if top_k is not None and top_k < int(torch.isfinite(logits).sum()):
                    threshold = torch.topk(logits, top_k).values[-1]
                    logits[logits < threshold] = float("-inf")
                token = int(torch.multinomial(torch.softmax(logits, -1), 1, generator=generator))
            body.append(token)
            if token != HOLD:
                sounding[voice] = token
    return np.array([BOS, key, *body], dtype=np.int64)


@dataclass(frozen=True)
class LoadedChoraleModel:
    """The chorale transformer with where it came from."""

    model: ChoraleTransformer
    name: str  # "builtin-audio" or the folder's name (never a local path)
    version: str
    training: dict | None  # the folder's training.json, when it has one


def load_audio_model(spec: str | Path | None = None, *, device: str | torch.device = "cpu") -> LoadedChoraleModel:
    """The built-in chorale model (``None`` or "builtin") or a folder written by ``ChoraleTransformer.
    save_pretrained``; anything else raises ``InputError``."""
    from synthguard.core.torch_utils import load_model, read_training_record  # noqa: PLC0415

    builtin = spec in (None, "builtin")
    folder = BUILTIN_AUDIO_FOLDER if builtin else Path(spec).expanduser()
    if not folder.is_dir():
        raise InputError(f"{folder}: no such audio model folder" if not builtin else
                         f"the built-in audio model is missing from {folder} (an incomplete install)",
                         hint=Hint.NEEDS_MODEL if builtin else None)
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{folder}: not an audio model folder (config.json: {' '.join(str(exc).split())[:200]})"
                         ) from None
    if not isinstance(config, dict) or config.get("_class_name") != ChoraleTransformer.__name__:
        found = config.get("_class_name") if isinstance(config, dict) else None
        raise InputError(f"{folder}: not a chorale audio model folder (its config.json is for "
                         f"{found or 'something else'}, not {ChoraleTransformer.__name__})")
    model = load_model(ChoraleTransformer, folder)
    training, version = read_training_record(folder)
    model = model.to(torch.device(device) if isinstance(device, str) else device).eval()
    return LoadedChoraleModel(model, "builtin-audio" if builtin else folder.name, version, training)
