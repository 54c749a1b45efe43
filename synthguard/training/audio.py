"""``synthguard train audio``: the chorale transformer of ``synthguard.models.audio``, trained on J. S. Bach's
four-part chorales from the music21 corpus (in music21's PyPI wheel: no download) or on a folder of MusicXML / MIDI
files.

The data: every piece with exactly four parts in 4/4 whose notes fit the model's range, quantised to the 16th-note
grid (``score_grid``), with a front pad so that its first full bar starts at a multiple of 16 steps, and its key
from music21's Krumhansl-Schmuckler analysis. Parsing the corpus takes minutes, so the encoded grids are cached as
``bach-chorales-grid-v1.npz`` in the dataset cache (``synthguard.core.datasets.data_dir``; plain arrays). Pieces are
split by piece (a seeded shuffle, ``holdout`` of them held out). Training windows are random runs of whole bars of
a random piece, transposed by a random -5..+6 semitones (kept only where every note stays in range), the key token
moving with it. ``training.json`` records the command, the settings, the loss every ``log_every`` steps and the
evaluation: validation perplexity beside unigram and bigram baselines on the same tokens, and music statistics of
sampled pieces beside the validation pieces (``music_statistics``).
"""

from __future__ import annotations

import io
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from synthguard.errors import Hint, InputError
from synthguard.models import audio as m

CACHE_NAME = "bach-chorales-grid-v1.npz"
SCORE_SUFFIXES = {".mxl", ".musicxml", ".xml", ".mid", ".midi", ".krn"}
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Chorale:
    """One encoded piece: ``grid`` int16 (steps, 4) of note tokens (soprano first), its ``key`` token, its name."""

    name: str
    grid: np.ndarray
    key: int

    @property
    def bars(self) -> int:
        return len(self.grid) // m.STEPS_PER_BAR

    def tokens(self) -> np.ndarray:
        return m.grid_to_tokens(self.grid, self.key)

    def notes(self, bpm: float = m.DEFAULT_BPM) -> list[m.NoteEvent]:
        return m.tokens_to_notes(self.grid.reshape(-1), bpm=bpm)


def _quiet(_line: str) -> None:
    return None


# --- reading scores ----------------------------------------------------------------------------------------------

def score_grid(score: Any) -> tuple[np.ndarray, int] | None:
    """A music21 score -> (grid (steps, 4) int16, key token), or None when it is not a four-part 4/4 piece in the
    model's range. A tied note's continuation is a hold; a chord keeps its top note."""
    from music21 import chord, note  # noqa: PLC0415

    parts = list(score.parts)
    if len(parts) != m.N_VOICES:
        return None
    signatures = {ts.ratioString for ts in score.recurse().getElementsByClass("TimeSignature")}
    if signatures != {"4/4"}:
        return None
    measures = list(parts[0].getElementsByClass("Measure"))
    pad = 0
    if measures:
        first = float(measures[0].duration.quarterLength)
        if 0 < first < 4:
            pad = int(round((4 - first) * m.STEPS_PER_BEAT))
    end = max(float(p.highestTime) for p in parts)
    steps = pad + int(math.ceil(end * m.STEPS_PER_BEAT))
    steps += -steps % m.STEPS_PER_BAR
    grid = np.full((steps, m.N_VOICES), m.REST, np.int16)
    for voice, part in enumerate(parts):
        for element in part.flatten().notes:
            if isinstance(element, chord.Chord):
                pitch = max(p.midi for p in element.pitches)
            elif isinstance(element, note.Note):
                pitch = element.pitch.midi
            else:
                continue
            begin = pad + int(round(float(element.offset) * m.STEPS_PER_BEAT))
            stop = pad + int(round((float(element.offset) + float(element.quarterLength)) * m.STEPS_PER_BEAT))
            if stop <= begin:
                continue  # a grace note or one shorter than the grid
            if not m.LOWEST_PITCH <= pitch <= m.HIGHEST_PITCH:
                return None
            tied = element.tie is not None and element.tie.type in ("continue", "stop")
            sounding = begin > 0 and grid[begin - 1, voice] != m.REST
            grid[begin, voice] = m.HOLD if tied and sounding else m.pitch_token(pitch)
            grid[begin + 1:stop, voice] = m.HOLD
    analysed = score.analyze("key")
    return grid, m.key_token(analysed.tonic.pitchClass, analysed.mode == "minor")


def _score_files(source: str | os.PathLike | None) -> list[Path]:
    if source is None:
        from music21 import corpus  # noqa: PLC0415

        return sorted((Path(p) for p in corpus.getComposer("bach")
                       if Path(p).suffix in (".mxl", ".xml") and Path(p).name.startswith("bwv")),
                      key=lambda p: p.name)
    folder = Path(source).expanduser()
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder of MusicXML / MIDI files")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SCORE_SUFFIXES)
    if not files:
        raise InputError(f"{folder} holds no MusicXML / MIDI files ({', '.join(sorted(SCORE_SUFFIXES))})")
    return files


def _parse(files: Sequence[Path], progress: Progress, limit: int | None) -> list[Chorale]:
    from music21 import converter  # noqa: PLC0415

    pieces: list[Chorale] = []
    started = time.monotonic()
    for i, file in enumerate(files):
        try:
            encoded = score_grid(converter.parse(str(file)))
        except Exception as exc:  # noqa: BLE001 (music21 raises many types for a broken file: each one skips it)
            progress(f"skipped {file.name}: cannot be read ({' '.join(str(exc).split())[:120]})")
            continue
        if encoded is not None:
            pieces.append(Chorale(file.stem, *encoded))
        if (i + 1) % 50 == 0:
            progress(f"read {i + 1}/{len(files)} scores, {len(pieces)} kept ({time.monotonic() - started:.0f} s)")
        if limit is not None and len(pieces) >= limit:
            break
    return pieces


def _save_cache(path: Path, pieces: Sequence[Chorale]) -> None:
    from synthguard.core.fileio import write_atomic  # noqa: PLC0415

    buffer = io.BytesIO()
    np.savez(buffer, names=np.array([p.name for p in pieces]), keys=np.array([p.key for p in pieces], np.int16),
             lengths=np.array([len(p.grid) for p in pieces], np.int64),
             grids=np.concatenate([p.grid for p in pieces]).astype(np.int16))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, buffer.getvalue())


def _load_cache(path: Path) -> list[Chorale]:
    try:
        with np.load(path, allow_pickle=False) as arrays:
            names, keys, lengths, grids = arrays["names"], arrays["keys"], arrays["lengths"], arrays["grids"]
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"{path} is not a chorale cache (delete it to rebuild): {' '.join(str(exc).split())[:200]}"
                         ) from None
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    if bounds[-1] != len(grids) or grids.ndim != 2 or grids.shape[1] != m.N_VOICES:
        raise InputError(f"{path} is an inconsistent chorale cache (delete it to rebuild)")
    return [Chorale(str(n), grids[a:b].copy(), int(k)) for n, k, a, b in zip(names, keys, bounds[:-1], bounds[1:])]


def load_chorales(source: str | os.PathLike | None = None, *, limit: int | None = None,
                  progress: Progress | None = None) -> list[Chorale]:
    """The encoded pieces, in file-name order: music21's Bach chorales (``source=None``; from the cache when it is
    there, else parsed and, for the whole corpus, cached) or a folder of MusicXML / MIDI files (parsed each time).
    ``limit``: stop after that many kept pieces."""
    from synthguard.core.datasets import data_dir  # noqa: PLC0415

    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InputError(f"limit must be a positive integer or None, not {limit!r}")
    progress = progress or _quiet
    cache = data_dir() / CACHE_NAME
    if source is None and cache.is_file():
        return _load_cache(cache)[:limit]
    pieces = _parse(_score_files(source), progress, limit)
    if not pieces:
        raise InputError(f"no four-part 4/4 pieces in range among the scores of {source or 'the music21 corpus'}",
                         hint=Hint.NEEDS_DATA)
    if source is None and limit is None:
        try:
            _save_cache(cache, pieces)
            progress(f"cached {len(pieces)} chorales in {cache}")
        except OSError as exc:
            progress(f"could not cache the chorales in {cache} ({exc}): they will be parsed again next time")
    return pieces


def chorale_notes(limit: int | None = None, bpm: float = m.DEFAULT_BPM) -> list[list[m.NoteEvent]]:
    """The notes of music21's Bach chorales (four-part, 4/4), one list per piece, at ``bpm`` quarter notes a
    minute, shifted so that each piece's first note starts at 0 s: for ``synthguard.models.audio.render_notes``."""
    out = []
    for piece in load_chorales(limit=limit):
        notes = piece.notes(bpm)
        first = min((n.start for n in notes), default=0.0)
        out.append([replace(n, start=n.start - first) for n in notes])
    return out


# --- splits, windows, baselines ----------------------------------------------------------------------------------

# The architecture of the built-in model; train_audio's model_config overrides any of these keys.
AUDIO_ARCHITECTURE = {"width": 128, "layers": 4, "heads": 4, "max_tokens": m.HEADER + 4 * m.TOKENS_PER_BAR,
                      "dropout": 0.1}
TRANSPOSITIONS = tuple(range(-5, 7))  # semitones: every key once
BIGRAM_PRIOR = 5.0  # pseudo-counts of the bigram baselines' unigram prior


@dataclass(frozen=True)
class AudioTrainConfig:
    """Data, optimiser and evaluation settings (the defaults are the shipped run's); the architecture is the
    model's config (``model_config``)."""

    steps: int = 700
    batch_size: int = 8
    lr: float = 2e-3  # peak; linear warm-up over ``warmup`` steps, then cosine decay to a tenth
    warmup: int = 50
    weight_decay: float = 0.01
    seed: int = 0
    holdout: float = 0.1  # share of pieces held out for validation
    transpose: bool = True
    log_every: int = 50
    eval_samples: int = 16  # pieces sampled for the music statistics
    eval_bars: int = 8
    eval_temperature: float = 1.0

    def __post_init__(self):
        for name in ("steps", "batch_size", "log_every", "eval_samples", "eval_bars"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a positive integer, not {value!r}")
        if isinstance(self.warmup, bool) or not isinstance(self.warmup, int) or self.warmup < 0:
            raise InputError(f"warmup must be a whole number of steps, not {self.warmup!r}")
        if not 0 < self.holdout < 0.5:
            raise InputError(f"holdout must be in (0, 0.5), not {self.holdout!r}")
        if not self.lr > 0 or not 0 <= self.weight_decay < 1 or not 0 < self.eval_temperature <= 10:
            raise InputError(f"lr must be above 0, weight_decay in [0, 1) and eval_temperature in (0, 10] (got "
                             f"{self.lr!r}, {self.weight_decay!r}, {self.eval_temperature!r})")


def split_pieces(pieces: Sequence[Chorale], holdout: float, seed: int) -> tuple[list[Chorale], list[Chorale]]:
    """(train, validation) by piece: a seeded shuffle, ``holdout`` of the pieces (at least one) held out."""
    if len(pieces) < 2:
        raise InputError(f"training needs at least 2 pieces (one to validate on), not {len(pieces)}")
    order = np.random.default_rng(seed).permutation(len(pieces))
    n_held = max(1, int(round(len(pieces) * holdout)))
    return [pieces[i] for i in sorted(order[n_held:])], [pieces[i] for i in sorted(order[:n_held])]


def transpose_grid(grid: np.ndarray, key: int, shift: int) -> tuple[np.ndarray, int] | None:
    """The grid and key moved by ``shift`` semitones, or None when a note would leave the model's range."""
    onsets = (grid >= m.FIRST_PITCH_TOKEN) & (grid < m.FIRST_PITCH_TOKEN + m.N_PITCHES)
    if onsets.any():
        low, high = int(grid[onsets].min()) + shift, int(grid[onsets].max()) + shift
        if low < m.FIRST_PITCH_TOKEN or high >= m.FIRST_PITCH_TOKEN + m.N_PITCHES:
            return None
    tonic, minor = m.key_of_token(key)
    return np.where(onsets, grid + shift, grid).astype(np.int16), m.key_token(tonic + shift, minor)


def _window(piece: Chorale, bar: int, bars: int) -> np.ndarray:
    """Tokens of ``bars`` bars from ``bar`` (padded with rests past the piece's end), header first."""
    steps = bars * m.STEPS_PER_BAR
    grid = piece.grid[bar * m.STEPS_PER_BAR:bar * m.STEPS_PER_BAR + steps]
    if len(grid) < steps:
        grid = np.concatenate([grid, np.full((steps - len(grid), m.N_VOICES), m.REST, np.int16)])
    return m.grid_to_tokens(grid, piece.key)


def sample_batch(pieces: Sequence[Chorale], bars: int, batch: int, rng: np.random.Generator, transpose: bool
                 ) -> np.ndarray:
    """(batch, HEADER + bars * 64) training windows: a piece drawn by length, a start bar so that the window fits
    the piece (or from bar 0 when it is shorter), a transposition that keeps it in range."""
    weights = np.array([max(p.bars, 1) for p in pieces], np.float64)
    rows = []
    while len(rows) < batch:
        piece = pieces[int(rng.choice(len(pieces), p=weights / weights.sum()))]
        bar = int(rng.integers(0, max(piece.bars - bars, 0) + 1))
        if transpose:
            moved = transpose_grid(piece.grid, piece.key, int(rng.choice(TRANSPOSITIONS)))
            if moved is None:
                continue
            piece = Chorale(piece.name, *moved)
        rows.append(_window(piece, bar, bars))
    return np.stack(rows).astype(np.int64)


def validation_windows(pieces: Sequence[Chorale], bars: int) -> tuple[np.ndarray, np.ndarray]:
    """Every validation piece cut into consecutive windows of ``bars`` bars, untransposed: (tokens (N, T), mask
    (N, T - 1) of the targets that are scored: body tokens inside the piece)."""
    rows, masks = [], []
    for piece in pieces:
        for bar in range(0, max(piece.bars, 1), bars):
            rows.append(_window(piece, bar, bars))
            real = min(piece.bars - bar, bars) * m.TOKENS_PER_BAR
            mask = np.zeros(m.HEADER - 1 + bars * m.TOKENS_PER_BAR, bool)
            mask[m.HEADER - 1:m.HEADER - 1 + real] = True
            masks.append(mask)
    return np.stack(rows).astype(np.int64), np.stack(masks)


def baseline_perplexities(train: Sequence[Chorale], windows: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Perplexity of the scored tokens of ``windows`` under count models of the training pieces' note tokens: the
    unigram (add-one), and two bigrams smoothed towards it (Dirichlet prior, ``BIGRAM_PRIOR`` pseudo-counts spread
    as the unigram): on the previous token of the stream, and ("voice bigram") on the same voice's token one step
    earlier (the key token before the first step)."""
    note_vocab = m.FIRST_PITCH_TOKEN + m.N_PITCHES  # HOLD, REST and the onsets
    unigram = np.ones(note_vocab)
    bigram = np.zeros((m.VOCAB_SIZE, note_vocab))
    voice = np.zeros((m.VOCAB_SIZE, note_vocab))
    for piece in train:
        tokens = piece.tokens().astype(np.int64)
        body = tokens[m.HEADER:]
        np.add.at(unigram, body, 1)
        np.add.at(bigram, (tokens[m.HEADER - 1:-1], body), 1)
        previous = np.concatenate([np.full(m.N_VOICES, piece.key), body[:-m.N_VOICES]])
        np.add.at(voice, (previous, body), 1)
    prior = BIGRAM_PRIOR * unigram / unigram.sum()
    bigram, voice = bigram + prior, voice + prior
    logs = {}
    targets = windows[:, 1:][mask]
    prev = windows[:, :-1][mask]
    same = np.concatenate([np.repeat(windows[:, 1:2], m.N_VOICES, axis=1), windows[:, m.HEADER:-m.N_VOICES]],
                          axis=1)
    same = np.concatenate([windows[:, :1], same], axis=1)[mask]  # aligned with the targets (index 0 unscored)
    logs["unigram"] = -np.log(unigram[targets] / unigram.sum()).mean()
    logs["bigram"] = -np.log(bigram[prev, targets] / bigram[prev].sum(1)).mean()
    logs["voice_bigram"] = -np.log(voice[same, targets] / voice[same].sum(1)).mean()
    return {name: float(np.exp(value)) for name, value in logs.items()}


# --- music statistics --------------------------------------------------------------------------------------------

def _scale(key: int) -> tuple[int, frozenset[int]]:
    tonic, minor = m.key_of_token(key)
    return tonic, frozenset(m.MINOR_SCALE if minor else m.MAJOR_SCALE)


def music_statistics(pieces: Sequence[tuple[np.ndarray, int]]) -> dict[str, Any]:
    """Figures of (grid, key) pieces that can be checked without listening: the pitch-class histogram of onsets
    relative to the tonic (12 shares), the share of onsets in the key's scale (minor: natural minor plus the raised
    6th and 7th), each voice's lowest and highest pitch, onsets per bar, the share of rest steps, the share of
    fully sounding steps with crossed voices, and parallel fifths / octaves per 100 moves of a voice pair (both
    voices moving the same way to a new onset from a perfect fifth or octave to the same interval)."""
    histogram = np.zeros(12)
    in_key = onsets = rests = cells = crossed = full = parallels = moves = 0
    low = [m.HIGHEST_PITCH + 1] * m.N_VOICES
    high = [m.LOWEST_PITCH - 1] * m.N_VOICES
    bars = 0.0
    for grid, key in pieces:
        tonic, scale = _scale(key)
        grid = np.asarray(grid, np.int64)
        pitches = np.full(grid.shape, -1)  # the sounding pitch of each cell, -1 for a rest
        for voice in range(m.N_VOICES):
            current = -1
            for step, token in enumerate(grid[:, voice]):
                if m.is_pitch_token(token):
                    current = m.LOWEST_PITCH + token - m.FIRST_PITCH_TOKEN
                    relative = (current - tonic) % 12
                    histogram[relative] += 1
                    in_key += relative in scale
                    onsets += 1
                    low[voice], high[voice] = min(low[voice], current), max(high[voice], current)
                elif token == m.REST:
                    current = -1
                pitches[step, voice] = current
        rests += int((pitches < 0).sum())
        cells += pitches.size
        sounding = (pitches >= 0).all(axis=1)
        full += int(sounding.sum())
        crossed += int((sounding & (np.diff(pitches, axis=1) > 0).any(axis=1)).sum())
        for a in range(m.N_VOICES):
            for b in range(a + 1, m.N_VOICES):
                for step in range(1, len(grid)):
                    if not (m.is_pitch_token(grid[step, a]) and m.is_pitch_token(grid[step, b])):
                        continue
                    before, after = pitches[step - 1, [a, b]], pitches[step, [a, b]]
                    if (before < 0).any():
                        continue
                    da, db = after - before
                    if da == 0 and db == 0:
                        continue
                    moves += 1
                    perfect = {0, 7}
                    if (np.sign(da) == np.sign(db) and da != 0 and (before[0] - before[1]) % 12 in perfect
                            and (after[0] - after[1]) % 12 == (before[0] - before[1]) % 12):
                        parallels += 1
        bars += len(grid) / m.STEPS_PER_BAR
    share = histogram / max(histogram.sum(), 1)
    return {
        "pieces": len(pieces), "onsets": onsets,
        "pitch_class_histogram": [round(float(x), 4) for x in share],
        "in_key_share": round(in_key / max(onsets, 1), 4),
        "voice_range": {m.VOICES[v]: ([m.note_name(low[v]), m.note_name(high[v])] if low[v] <= high[v] else None)
                        for v in range(m.N_VOICES)},
        "onsets_per_bar": round(onsets / max(bars, 1e-9), 2),
        "rest_share": round(rests / max(cells, 1), 4),
        "crossed_voice_share": round(crossed / max(full, 1), 4),
        "parallels_per_100_moves": round(100 * parallels / max(moves, 1), 2),
    }


def histogram_distance(a: Sequence[float], b: Sequence[float]) -> float:
    """Total variation distance between two pitch-class histograms (0 same, 1 disjoint)."""
    return round(0.5 * float(np.abs(np.asarray(a) - np.asarray(b)).sum()), 4)


# --- training ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AudioTrainStep:
    step: int
    loss: float  # training cross-entropy, nats per token, mean since the last record
    lr: float
    seconds: float  # since the start


@dataclass(frozen=True)
class AudioTraining:
    """A finished run: the model (eval mode), the loss history, the evaluation and the split."""

    model: Any  # ChoraleTransformer
    history: tuple[AudioTrainStep, ...]
    evaluation: dict[str, Any]
    train_pieces: tuple[str, ...]
    validation_pieces: tuple[str, ...]
    seconds: float


def _lr(step: int, config: AudioTrainConfig) -> float:
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    progress = (step - config.warmup) / max(config.steps - config.warmup, 1)
    return config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def validation_perplexity(model: Any, windows: np.ndarray, mask: np.ndarray, batch_size: int = 32) -> float:
    """exp(mean cross-entropy) of the model over the scored targets of ``windows``."""
    import torch  # noqa: PLC0415
    import torch.nn.functional as F  # noqa: PLC0415

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.inference_mode():
        for i in range(0, len(windows), batch_size):
            ids = torch.from_numpy(windows[i:i + batch_size]).to(device)
            scored = torch.from_numpy(mask[i:i + batch_size]).to(device)
            logits = model(ids[:, :-1])
            nll = F.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")
            total += float(nll[scored].sum())
            count += int(scored.sum())
    model.train(was_training)
    return math.exp(total / max(count, 1))


def evaluate_model(model: Any, train: Sequence[Chorale], validation: Sequence[Chorale], config: AudioTrainConfig,
                   log: Progress = _quiet) -> dict[str, Any]:
    """Validation perplexity beside the baselines, and music statistics of sampled pieces (keys drawn from the
    validation pieces', seeds ``config.seed`` + i) beside those of the validation pieces and their distance."""
    bars = (model.config.max_tokens - m.HEADER) // m.TOKENS_PER_BAR
    windows, mask = validation_windows(validation, bars)
    figures: dict[str, Any] = {"validation_tokens": int(mask.sum()),
                               "validation_perplexity": round(validation_perplexity(model, windows, mask), 3)}
    figures["baseline_perplexity"] = {k: round(v, 3) for k, v in baseline_perplexities(train, windows, mask).items()}
    log(f"validation perplexity {figures['validation_perplexity']} (unigram "
        f"{figures['baseline_perplexity']['unigram']}, bigram {figures['baseline_perplexity']['bigram']}, voice "
        f"bigram {figures['baseline_perplexity']['voice_bigram']})")
    rng = np.random.default_rng(config.seed)
    samples = []
    started = time.monotonic()
    for i in range(config.eval_samples):
        key = validation[int(rng.integers(len(validation)))].key
        tokens = m.sample_tokens(model, key, config.eval_bars * m.STEPS_PER_BAR, seed=config.seed + i,
                                 temperature=config.eval_temperature)
        samples.append((tokens[m.HEADER:].reshape(-1, m.N_VOICES), key))
    data = music_statistics([(p.grid, p.key) for p in validation])
    sampled = music_statistics(samples)
    figures["music"] = {
        "sampled": sampled, "validation": data,
        "pitch_class_distance": histogram_distance(sampled["pitch_class_histogram"], data["pitch_class_histogram"]),
        "sampling": {"pieces": config.eval_samples, "bars": config.eval_bars,
                     "temperature": config.eval_temperature, "seconds": round(time.monotonic() - started, 1)},
    }
    log(f"sampled {config.eval_samples} pieces: in-key {sampled['in_key_share']} (data {data['in_key_share']}), "
        f"pitch-class distance {figures['music']['pitch_class_distance']}")
    return figures


def train_audio(pieces: Sequence[Chorale], config: AudioTrainConfig | None = None, *,
                model_config: dict[str, Any] | None = None, device: str = "cpu", num_threads: int | None = None,
                log: Progress = _quiet) -> AudioTraining:
    """Train a ``ChoraleTransformer`` (``AUDIO_ARCHITECTURE`` updated by ``model_config``) on ``pieces``, split by
    piece; evaluate it (``evaluate_model``)."""
    import torch  # noqa: PLC0415

    from synthguard.core.torch_utils import resolve_device, torch_threads  # noqa: PLC0415

    config = config or AudioTrainConfig()
    train, validation = split_pieces(pieces, config.holdout, config.seed)
    with torch_threads(num_threads):
        torch.manual_seed(config.seed)
        model = m.ChoraleTransformer(**{**AUDIO_ARCHITECTURE, **(model_config or {})}).to(resolve_device(device))
        bars = (model.config.max_tokens - m.HEADER) // m.TOKENS_PER_BAR
        parameters = sum(p.numel() for p in model.parameters())
        log(f"{len(train)} training and {len(validation)} validation pieces; {parameters:,} parameters, windows of "
            f"{bars} bars")
        decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embed" not in n]
        rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embed" not in n)]
        optimiser = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                       {"params": rest, "weight_decay": 0.0}], lr=config.lr, betas=(0.9, 0.98))
        rng = np.random.default_rng(config.seed)
        history, running, count = [], 0.0, 0
        started = time.monotonic()
        model.train()
        for step in range(config.steps):
            lr = _lr(step, config)
            for group in optimiser.param_groups:
                group["lr"] = lr
            ids = torch.from_numpy(sample_batch(train, bars, config.batch_size, rng, config.transpose))
            loss = model.loss(ids.to(next(model.parameters()).device))
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            value = float(loss.detach())
            if not math.isfinite(value):
                raise InputError(f"training diverged at step {step} (loss {value}): lower the learning rate")
            running, count = running + value, count + 1
            if (step + 1) % config.log_every == 0 or step + 1 == config.steps:
                history.append(AudioTrainStep(step + 1, round(running / count, 4), lr,
                                              round(time.monotonic() - started, 1)))
                log(f"step {step + 1}/{config.steps}: loss {running / count:.3f} nats/token, lr {lr:.2e}, "
                    f"{time.monotonic() - started:.0f} s")
                running, count = 0.0, 0
        seconds = time.monotonic() - started
        model.eval()
        evaluation = evaluate_model(model, train, validation, config, log)
    evaluation["parameters"] = parameters
    return AudioTraining(model, tuple(history), evaluation, tuple(p.name for p in train),
                         tuple(p.name for p in validation), round(seconds, 1))


def training_record(result: AudioTraining, config: AudioTrainConfig, *, command: str, data: str,
                    pieces: int) -> dict[str, Any]:
    """What ``training.json`` holds for a run."""
    import music21  # noqa: PLC0415

    return {"command": command, "version": "1", "data": data, "music21": music21.__version__, "pieces": pieces,
            "config": asdict(config), "model_config": {k: v for k, v in result.model.config.items()
                                                       if not k.startswith("_")},
            "train_seconds": result.seconds, "history": [asdict(h) for h in result.history],
            "evaluation": result.evaluation, "train_pieces": list(result.train_pieces),
            "validation_pieces": list(result.validation_pieces)}
