"""The audio flow: prompts read as keys and melodies, requests checked when made (the watermark's minimum length
among them), and clips sampled, rendered and stamped end to end (watermark read back from the file, manifest with
the model and the prompt's hash only, ledger record), never unmarked."""

from __future__ import annotations

import hashlib
import json
import shutil

import c2pa
import numpy as np
import pytest
import torch

from synthguard.core.audio import AudioFormat, decode_audio
from synthguard.errors import InputError, WatermarkError
from synthguard.generate.audio import AudioRequest, generate_audio, melody_key, parse_prompt
from synthguard.models import audio as m
from synthguard.provenance.ledger import Ledger
from synthguard.stamp import Stamper
from synthguard.watermark.audio import MIN_SECONDS, default_audio_watermarker

TINY = {"width": 16, "layers": 1, "heads": 2, "max_tokens": m.HEADER + m.TOKENS_PER_BAR, "dropout": 0.0}
SECONDS = 8.0  # the default length: the mark reads back from this music near its 3 s minimum only sometimes


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


@pytest.fixture
def tiny(tmp_path):
    """An untrained model: its 16th-note noise over five octaves is for the checks that stop before stamping."""
    torch.manual_seed(0)
    folder = tmp_path / "tiny-chorale"
    m.ChoraleTransformer(**TINY).save_pretrained(folder)
    return folder


@pytest.fixture
def mine(tmp_path):
    """A user's model folder: a copy of the built-in's weights under another name."""
    folder = tmp_path / "my-chorales"
    shutil.copytree(m.BUILTIN_AUDIO_FOLDER, folder)
    (folder / "training.json").unlink()
    return folder


def test_prompts_are_keys_melodies_or_both():
    assert parse_prompt(None).key is None
    assert m.key_name(parse_prompt("D minor").key) == "D minor" and parse_prompt("d MINOR").melody == ()
    both = parse_prompt("Bb major: Bb4 C5:2, D5:0.5")
    assert m.key_name(both.key) == "Bb major" and both.melody == ((70, 1.0), (72, 2.0), (74, 0.5))
    assert both.beats == 3.5
    assert m.key_name(parse_prompt("C4 D4 E4 F4 G4 A4 B4 C5").key) == "C major"
    assert m.key_name(melody_key([69, 71, 72, 74, 76, 77, 68, 69])) == "A minor"  # G#, ending on A
    for bad in ("", "   ", "D dorian", "C4 H4", "C4:0", "C4:0.3", "C4:x", "C0", "x" * 3000):
        with pytest.raises(InputError):
            parse_prompt(bad)


def test_requests_are_checked_when_made(tmp_path):
    with pytest.raises(InputError, match="too short for the audio watermark"):
        AudioRequest(output_dir=tmp_path, seconds=MIN_SECONDS - 0.5)
    for bad in ({"n": 0}, {"seed": -1}, {"seconds": 1e6}, {"fmt": "png"}, {"temperature": 0}, {"top_k": 0},
                {"bpm": 10}, {"prompt": "H2"}, {"threads": 0}):
        with pytest.raises(InputError):
            AudioRequest(output_dir=tmp_path, **bad)
    assert AudioRequest(output_dir=tmp_path, fmt="flac").fmt is AudioFormat.FLAC


def test_clips_are_marked_signed_and_recorded(mine, tmp_path, home):
    request = AudioRequest(output_dir=tmp_path / "out", n=2, seed=5, seconds=SECONDS, model=str(mine),
                           prompt="G major: G4 A4 B4:2")
    said = []
    report = generate_audio(request, home, progress=said.append)
    assert said == [1, 1] and [c.seed for c in report.clips] == [5, 6]
    assert report.model == "my-chorales" and report.version == "unknown"
    assert set(report.seconds) == {"model", "render", "stamp"}
    detector = default_audio_watermarker()
    with Ledger.from_home(home) as ledger:
        for clip in report.clips:
            path = clip.stamp.signed.output
            assert path.name == f"my-chorales-{clip.seed:06d}.wav" and clip.key == "G major"
            decoded = decode_audio(path)
            assert decoded.seconds == pytest.approx(SECONDS, abs=0.01)
            found = detector.detect(decoded.mono, decoded.rate)
            assert found.detected and found.payload == clip.stamp.payload
            assert ledger.get(clip.stamp.signed.asset_id) is not None
            assert ledger.find_by_soft_binding(clip.stamp.payload)
            with open(path, "rb") as handle, c2pa.Reader("audio/wav", handle) as reader:
                manifest = json.loads(reader.json())
            text = json.dumps(manifest)
            assert "trainedAlgorithmicMedia" in text and "G4 A4" not in text
            assert hashlib.sha256(request.prompt.encode()).hexdigest() in text
    assert report.to_dict()["clips"] == 2 and len(report.describe()) == 3


def test_a_clip_is_remade_from_its_seed(mine, tmp_path, home):
    def make(folder, seed, n):
        report = generate_audio(AudioRequest(output_dir=tmp_path / folder, n=n, seed=seed, seconds=SECONDS,
                                             model=str(mine), fmt="flac"), home)
        return report.clips[-1]

    again, alone = make("a", 3, 2), make("b", 4, 1)
    assert (again.key, again.notes, again.pitch_range) == (alone.key, alone.notes, alone.pitch_range)


def test_never_unmarked_and_existing_outputs_refused(mine, tiny, tmp_path, home, monkeypatch):
    request = AudioRequest(output_dir=tmp_path / "out", seconds=SECONDS, model=str(mine))
    with Stamper.from_home(home, audio_watermark=False) as unmarked, pytest.raises(InputError, match="always"):
        generate_audio(request, unmarked)
    with Stamper.from_home(home, image_watermark=False) as stamper:
        # A watermarker whose mark does not survive: the clip is an error and nothing is written.
        monkeypatch.setattr(stamper.audio_watermarker, "embed", lambda samples, rate, payload: samples)
        with pytest.raises(WatermarkError):
            generate_audio(request, stamper)
    assert not list((tmp_path / "out").glob("*"))
    generate_audio(request, home)
    with pytest.raises(InputError, match="already exists"):
        generate_audio(request, home)
    with pytest.raises(InputError, match="longer than"):
        generate_audio(AudioRequest(output_dir=tmp_path / "long", seconds=SECONDS, model=str(tiny),
                                    prompt="C4:16 C4:16"), home)
    with pytest.raises(InputError, match="not an audio model folder"):
        generate_audio(AudioRequest(output_dir=tmp_path / "x", seconds=SECONDS, model=str(tmp_path)), home)


def test_the_builtin_makes_music_in_key(tmp_path, home):
    report = generate_audio(AudioRequest(output_dir=tmp_path, seconds=SECONDS, prompt="D minor", seed=1), home)
    clip = report.clips[0]
    assert clip.notes >= 8 and report.model == "builtin-audio"
    low, high = (m.parse_note_name(n) for n in clip.pitch_range)
    assert 19 <= high - low <= 48  # bass to soprano: two to four octaves, give or take
    samples = decode_audio(clip.stamp.signed.output).mono
    assert np.abs(samples).max() > 0.3
