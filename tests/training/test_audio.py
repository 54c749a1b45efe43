"""Training the chorale model: scores read onto the grid (pickups, ties, what is refused), two corpus chorales parsed
(no network: music21's wheel holds them), transposition, the split by piece, the baselines and music statistics
on hand-made grids, a tiny run end to end, and the cache."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from synthguard.errors import InputError
from synthguard.models import audio as m
from synthguard.training import audio as t

TINY = {"width": 16, "layers": 1, "heads": 2, "max_tokens": m.HEADER + m.TOKENS_PER_BAR, "dropout": 0.0}


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def four_parts(pitches: list[list[int]], pickup: bool = True, meter: str = "4/4"):
    """A score of four parts: an optional one-beat pickup, then one bar of quarter notes per part."""
    from music21 import meter as m21meter
    from music21 import note, stream, tie

    score = stream.Score()
    for row in pitches:
        part = stream.Part()
        first = stream.Measure(number=0)
        first.append(m21meter.TimeSignature(meter))
        if pickup:
            first.append(note.Note(row[0], quarterLength=1))
            part.append(first)
            bar = stream.Measure(number=1)
        else:
            bar = first
        for i, pitch in enumerate(row[1:]):
            n = note.Note(pitch, quarterLength=1)
            if i == 1:  # the second note is tied over from the first
                n.tie = tie.Tie("stop")
            bar.append(n)
        part.append(bar)
        score.insert(0, part)
    return score


def test_a_score_reads_onto_the_grid_with_its_pickup_and_ties():
    rows = [[72, 71, 71, 74, 72], [67, 67, 67, 65, 64], [64, 62, 62, 59, 60], [48, 55, 55, 55, 48]]
    grid, key = t.score_grid(four_parts(rows))
    assert grid.shape == (32, 4) and (grid[:12] == m.REST).all()  # the pickup beat ends bar 0
    assert grid[12, 0] == m.pitch_token(72) and (grid[13:16, 0] == m.HOLD).all()
    assert grid[16, 0] == m.pitch_token(71) and grid[20, 0] == m.HOLD  # tied: held, not struck again
    assert grid[24, 3] == m.pitch_token(55) and m.key_name(key) == "C major"


def test_scores_that_do_not_fit_are_skipped():
    rows = [[72, 71, 71, 74, 72], [67, 67, 67, 65, 64], [64, 62, 62, 59, 60], [48, 55, 55, 55, 48]]
    assert t.score_grid(four_parts(rows[:3])) is None  # three parts
    assert t.score_grid(four_parts(rows, meter="3/4")) is None
    low = [row[:] for row in rows]
    low[3][1] = 20  # below the model's range
    assert t.score_grid(four_parts(low)) is None


def test_two_corpus_chorales_parse_to_notes():
    pieces = t.load_chorales(limit=2)
    assert len(pieces) == 2 and all(p.grid.shape[1] == 4 and len(p.grid) % 16 == 0 for p in pieces)
    notes = t.chorale_notes(limit=2)
    assert len(notes) == 2 and min(n.start for n in notes[0]) == 0.0
    assert {n.voice for n in notes[0]} == {0, 1, 2, 3}
    soprano = np.mean([n.pitch for n in notes[0] if n.voice == 0])
    bass = np.mean([n.pitch for n in notes[0] if n.voice == 3])
    assert soprano - bass > 12


def test_a_folder_of_scores_and_its_errors(tmp_path):
    with pytest.raises(InputError, match="no such folder"):
        t.load_chorales(tmp_path / "missing")
    with pytest.raises(InputError, match="holds no MusicXML"):
        t.load_chorales(tmp_path)
    rows = [[72, 71, 71, 74, 72], [67, 67, 67, 65, 64], [64, 62, 62, 59, 60], [48, 55, 55, 55, 48]]
    four_parts(rows).write("musicxml", fp=str(tmp_path / "hymn.musicxml"))
    (tmp_path / "broken.mxl").write_bytes(b"not a zip")
    said = []
    pieces = t.load_chorales(tmp_path, progress=said.append)
    assert [p.name for p in pieces] == ["hymn"] and any("broken.mxl" in s for s in said)


def test_cache_round_trip(tmp_path):
    pieces = [t.Chorale("a", np.full((16, 4), m.REST, np.int16), m.key_token(0, False)),
              t.Chorale("b", np.full((32, 4), m.HOLD, np.int16), m.key_token(9, True))]
    t._save_cache(tmp_path / "c.npz", pieces)
    back = t._load_cache(tmp_path / "c.npz")
    assert [(p.name, p.key, p.grid.shape) for p in back] == [("a", pieces[0].key, (16, 4)),
                                                            ("b", pieces[1].key, (32, 4))]
    (tmp_path / "bad.npz").write_bytes(b"junk")
    with pytest.raises(InputError, match="not a chorale cache"):
        t._load_cache(tmp_path / "bad.npz")


def test_transposition_moves_notes_and_key_and_refuses_the_range():
    grid = np.array([[m.pitch_token(60), m.HOLD, m.REST, m.pitch_token(40)]], np.int16)
    moved, key = t.transpose_grid(grid, m.key_token(0, True), 2)
    assert moved[0].tolist() == [m.pitch_token(62), m.HOLD, m.REST, m.pitch_token(42)]
    assert m.key_name(key) == "D minor"
    assert t.transpose_grid(grid, m.key_token(0, True), -(40 - m.LOWEST_PITCH) - 1) is None


def test_split_is_by_piece_and_seeded():
    pieces = [t.Chorale(str(i), np.full((16, 4), m.REST, np.int16), m.key_token(0, False)) for i in range(20)]
    train, held = t.split_pieces(pieces, 0.1, seed=0)
    assert len(held) == 2 and not {p.name for p in train} & {p.name for p in held}
    assert [p.name for p in held] == [p.name for p in t.split_pieces(pieces, 0.1, seed=0)[1]]
    with pytest.raises(InputError):
        t.split_pieces(pieces[:1], 0.1, seed=0)


def scale_piece(name: str, bars: int = 2) -> t.Chorale:
    """Each voice a C major scale in quarter notes, an octave apart."""
    steps = bars * m.STEPS_PER_BAR
    grid = np.full((steps, 4), m.HOLD, np.int16)
    scale = [0, 2, 4, 5, 7, 9, 11, 12]
    for voice, base in enumerate((72, 60, 48, 36)):
        for beat in range(steps // 4):
            grid[beat * 4, voice] = m.pitch_token(base + scale[beat % 8])
    return t.Chorale(name, grid, m.key_token(0, False))


def test_baselines_score_the_same_tokens():
    pieces = [scale_piece(str(i)) for i in range(3)]
    windows, mask = t.validation_windows(pieces[:1], 1)
    assert windows.shape == (2, m.HEADER + m.TOKENS_PER_BAR) and mask.sum() == 2 * m.TOKENS_PER_BAR
    figures = t.baseline_perplexities(pieces, windows, mask)
    # Holds follow holds: the bigrams know it, the unigram does not.
    assert figures["bigram"] < figures["unigram"] and figures["voice_bigram"] < figures["unigram"]


def test_music_statistics_count_keys_crossings_and_parallels():
    piece = scale_piece("x")
    figures = t.music_statistics([(piece.grid, piece.key)])
    assert figures["in_key_share"] == 1.0 and figures["crossed_voice_share"] == 0.0
    # Every voice moves up the same scale an octave from the next: every move of every pair is a parallel octave.
    assert figures["parallels_per_100_moves"] == 100.0 and figures["onsets_per_bar"] == 16.0
    assert figures["voice_range"]["soprano"] == ["C5", "C6"]
    crossed = piece.grid.copy()
    crossed[:, 3] = np.where(crossed[:, 3] >= m.FIRST_PITCH_TOKEN, m.pitch_token(84), m.HOLD)
    assert t.music_statistics([(crossed, piece.key)])["crossed_voice_share"] == 1.0
    assert t.histogram_distance([1] + [0] * 11, [0] * 11 + [1]) == 1.0


def test_a_tiny_run_trains_evaluates_and_saves(tmp_path):
    from synthguard.training.runs import train_and_save_audio

    config = t.AudioTrainConfig(steps=4, batch_size=2, warmup=1, log_every=2, eval_samples=1, eval_bars=1)
    said = []
    result = train_and_save_audio(tmp_path / "out", data=None, config=config, model_config=TINY, num_threads=1,
                                  limit=3, command="test", log=said.append)
    assert len(result.history) == 2 and len(result.validation_pieces) == 1
    record = json.loads((tmp_path / "out" / "training.json").read_text())
    evaluation = record["evaluation"]
    assert np.isfinite(evaluation["validation_perplexity"]) and set(evaluation["baseline_perplexity"]) == {
        "unigram", "bigram", "voice_bigram"}
    assert 0 <= evaluation["music"]["pitch_class_distance"] <= 1 and record["pieces"] == 3
    assert m.load_audio_model(tmp_path / "out").model.config.width == 16
    assert any("validation perplexity" in line for line in said)
    with pytest.raises(InputError, match="not empty"):
        train_and_save_audio(tmp_path / "out", config=config, model_config=TINY, limit=3)


def test_config_is_checked():
    for bad in ({"steps": 0}, {"holdout": 0.6}, {"lr": 0}, {"warmup": -1}):
        with pytest.raises(InputError):
            t.AudioTrainConfig(**bad)
