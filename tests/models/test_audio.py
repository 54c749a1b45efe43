"""The chorale model: notes checked when made, the synthesiser's output (range, pitch, timbre, no clicks), the token
grid decoded back to notes, the transformer saved and loaded, seeded sampling with its constraints, and the shipped
weights with their record."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from synthguard.errors import InputError
from synthguard.models import audio as m

TINY = {"width": 16, "layers": 1, "heads": 2, "max_tokens": m.HEADER + m.TOKENS_PER_BAR, "dropout": 0.0}


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    return m.ChoraleTransformer(**TINY).eval()


@pytest.mark.parametrize("kwargs", [{"pitch": 128}, {"pitch": 60.0}, {"duration": 0}, {"start": -1},
                                    {"velocity": 0}, {"velocity": 1.5}, {"voice": 4}, {"voice": True},
                                    {"start": float("nan")}])
def test_note_events_are_checked_when_made(kwargs):
    with pytest.raises(InputError):
        m.NoteEvent(**{"pitch": 60, "start": 0.0, "duration": 1.0, **kwargs})


def test_note_names_read_and_write():
    assert [m.parse_note_name(n) for n in ("C4", "A4", "F#3", "Bb4", "c5")] == [60, 69, 54, 70, 72]
    assert m.note_name(61) == "C#4" and m.note_name(m.parse_note_name("Eb2")) == "Eb2"
    for bad in ("H4", "C", "C##4", "4C"):
        with pytest.raises(InputError):
            m.parse_note_name(bad)


def test_render_is_float32_in_range_at_the_note_pitch():
    rate = 16000
    out = m.render_notes([m.NoteEvent(69, 0.1, 0.8, 0.9, 0)], rate=rate, seconds=1.0)
    assert out.dtype == np.float32 and out.shape == (rate,) and np.abs(out).max() <= 0.8 + 1e-6
    spectrum = np.abs(np.fft.rfft(out * np.hanning(len(out))))
    assert np.fft.rfftfreq(len(out), 1 / rate)[spectrum.argmax()] == pytest.approx(440, abs=2)
    assert np.all(out[:int(0.1 * rate)] == 0)  # silence before the note


def test_render_has_no_clicks_and_voices_differ_in_timbre():
    rate = 16000
    centroids = []
    for voice in range(4):
        out = m.render_notes([m.NoteEvent(57, 0.0, 0.5, 0.8, voice)], rate=rate).astype(np.float64)
        # The attack starts at zero and the release returns to it: the first and last samples are (near) silent,
        # and the steps between samples at the note's edges are smaller than in its sustain (a click is a jump).
        assert abs(out[0]) < 1e-3 and abs(out[-1]) < 1e-3
        steps, edge = np.abs(np.diff(out)), int(0.005 * rate)
        sustain = steps[int(0.2 * rate):int(0.4 * rate)].max()
        assert steps[:edge].max() < sustain and steps[-edge:].max() < sustain
        spectrum = np.abs(np.fft.rfft(out))
        freqs = np.fft.rfftfreq(len(out), 1 / rate)
        centroids.append(float((spectrum * freqs).sum() / spectrum.sum()))
    assert len({round(c) for c in centroids}) == 4  # each voice has its own spectrum
    assert centroids[2] > centroids[0]  # the tenor's 1/h spectrum is brighter than the soprano's flute


def test_render_cut_at_seconds_fades_and_empty_is_silence():
    cut = m.render_notes([m.NoteEvent(60, 0.0, 4.0)], rate=8000, seconds=1.0)
    assert len(cut) == 8000 and abs(float(cut[-1])) < 1e-6
    assert not np.any(m.render_notes([], rate=8000, seconds=0.5))
    with pytest.raises(InputError):
        m.render_notes([m.NoteEvent(60, 0.0, 1.0)], rate=100)
    with pytest.raises(InputError):
        m.render_notes(["C4"], rate=8000)


def test_tokens_decode_to_notes():
    c4, e4 = m.pitch_token(60), m.pitch_token(64)
    grid = np.full((8, 4), m.REST)
    grid[0, 0], grid[1:4, 0], grid[4, 0], grid[5, 0] = c4, m.HOLD, e4, m.HOLD  # C4 for 4 steps, E4 for 2
    grid[2, 3] = m.HOLD  # a hold after a rest reads as a rest
    notes = m.tokens_to_notes(m.grid_to_tokens(grid, m.key_token(0, False)), bpm=60)
    step = 0.25  # a 16th at 60 bpm
    assert [(n.pitch, n.start, n.duration, n.voice) for n in notes] == [(60, 0.0, 4 * step, 0),
                                                                         (64, 4 * step, 2 * step, 0)]
    with pytest.raises(InputError):
        m.tokens_to_notes([m.HOLD] * 5)
    with pytest.raises(InputError):
        m.pitch_token(20)


def test_keys_round_trip():
    assert m.key_name(m.key_token(2, True)) == "D minor" and m.key_name(m.key_token(13, False)) == "C# major"
    with pytest.raises(InputError):
        m.key_of_token(m.HOLD)


def test_config_is_checked():
    for bad in ({"width": 15}, {"max_tokens": 100}, {"vocab_size": 10}, {"layers": 0}):
        with pytest.raises(InputError):
            m.ChoraleTransformer(**{**TINY, **bad})


def test_forward_loss_and_save_load_round_trip(tiny, tmp_path):
    ids = torch.randint(0, m.VOCAB_SIZE, (2, TINY["max_tokens"]))
    assert tiny(ids).shape == (2, TINY["max_tokens"], m.VOCAB_SIZE)
    assert abs(tiny.loss(ids).item() - np.log(m.VOCAB_SIZE)) < 1.0  # near uniform at initialisation
    tiny.save_pretrained(tmp_path / "model")
    loaded = m.load_audio_model(tmp_path / "model")
    assert loaded.name == "model" and loaded.version == "unknown"
    assert torch.equal(loaded.model(ids), tiny(ids))
    with pytest.raises(InputError):
        tiny(torch.zeros((1, TINY["max_tokens"] + 1), dtype=torch.long))


def test_loading_refuses_other_folders(tmp_path):
    with pytest.raises(InputError, match="no such audio model folder"):
        m.load_audio_model(tmp_path / "missing")
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"_class_name": "TextVAE"}))
    with pytest.raises(InputError, match="not a chorale audio model folder"):
        m.load_audio_model(other)
    (other / "config.json").write_text("{not json")
    with pytest.raises(InputError, match="not an audio model folder"):
        m.load_audio_model(other)


def test_sampling_is_seeded_and_decodable(tiny):
    key = m.key_token(7, False)
    a = m.sample_tokens(tiny, key, 8, seed=3, temperature=1.0, top_k=8)
    assert np.array_equal(a, m.sample_tokens(tiny, key, 8, seed=3, temperature=1.0, top_k=8))
    assert not np.array_equal(a, m.sample_tokens(tiny, key, 8, seed=4, temperature=1.0, top_k=8))
    assert a[:2].tolist() == [m.BOS, key] and len(a) == 2 + 8 * 4
    body = a[2:].reshape(-1, 4)
    # Only note tokens, and a hold only while its voice sounds.
    assert body.max() < m.FIRST_PITCH_TOKEN + m.N_PITCHES
    for voice in range(4):
        previous = None
        for token in body[:, voice]:
            assert not (token == m.HOLD and previous in (None, m.REST))
            previous = token if token != m.HOLD else previous
    m.tokens_to_notes(a)


def test_sampling_keeps_forced_tokens_and_slides_past_the_window(tiny):
    forced = {0: m.pitch_token(67), 4: m.HOLD, 8: m.pitch_token(69)}
    steps = 3 * m.STEPS_PER_BAR  # three bars through a one-bar window
    tokens = m.sample_tokens(tiny, m.key_token(0, False), steps, seed=0, forced=forced)
    assert len(tokens) == 2 + steps * 4
    assert all(tokens[2 + i] == t for i, t in forced.items())
    for bad in ({"steps": 0}, {"temperature": 0}, {"top_k": 0}):
        with pytest.raises(InputError):
            m.sample_tokens(tiny, m.key_token(0, False), **{"steps": 2, "seed": 0, **bad})


def test_the_builtin_loads_with_its_record_and_beats_its_baselines():
    from synthguard.training.audio import AUDIO_ARCHITECTURE

    loaded = m.load_audio_model()
    assert loaded.name == "builtin-audio" and loaded.version == "1"
    shipped = {k: v for k, v in loaded.model.config.items() if not k.startswith("_")}
    assert shipped == {k: v for k, v in m.ChoraleTransformer(**AUDIO_ARCHITECTURE).config.items()
                       if not k.startswith("_")}
    weights = m.BUILTIN_AUDIO_FOLDER / "diffusion_pytorch_model.safetensors"
    assert weights.stat().st_size < 5_000_000
    evaluation = loaded.training["evaluation"]
    assert evaluation["validation_perplexity"] < evaluation["baseline_perplexity"]["bigram"]
    assert evaluation["validation_perplexity"] < evaluation["baseline_perplexity"]["voice_bigram"]
