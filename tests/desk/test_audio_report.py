"""Audio in batch verification and the HTML reports: a folder mixing images and audio gives one line per file
(broken audio an error line, never a traceback), audio lines carry the audio block and read back unchanged, image
lines keep their JSON; the reports show each audio file's waveform and spectrogram, small pictures."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile
from helpers.audio import music, noise, require_tool, speech, write_wav
from PIL import Image

from synthguard.core.audio import AudioFormat
from synthguard.desk.batch import VerifyLine, VerifySettings, verify, write_batch_report
from synthguard.desk.report import AUDIO_PICTURES, audio_pictures, file_pictures, render_html
from synthguard.detect import InspectionContext, VerdictLabel, inspect_file
from synthguard.policy import DEFAULT_POLICY
from synthguard.provenance.manifest import DigitalSourceType, ManifestSpec
from synthguard.stamp import Stamper

AI_SPEC = ManifestSpec(title="voice", digital_source_type=DigitalSourceType.TRAINED_ALGORITHMIC_MEDIA)
MAX_PICTURE_BYTES = 100 * 1024


@pytest.fixture
def inbox(home, identity, tmp_path, png):
    """Images and audio (signed WAV, its MP3 copy, signed Opus with its sidecar, unmarked FLAC music, broken files)
    in one folder."""
    box = tmp_path / "inbox"
    box.mkdir()
    samples, rate = speech("A synthetic voice, signed and marked, in a folder with pictures and notes.")
    with Stamper.from_home(home, identity=identity) as stamper:
        stamper.stamp_audio(samples, rate, box / "voice.wav", AI_SPEC)
        stamper.stamp_audio(samples, rate, box / "voice.opus", AI_SPEC, fmt=AudioFormat.OPUS)
    subprocess.run([require_tool("ffmpeg"), "-loglevel", "error", "-i", str(box / "voice.wav"), "-b:a", "128k",
                    str(box / "voice-copy.mp3")], check=True)
    soundfile.write(box / "music.flac", music(6.0, 44100, seed=2, channels=2), 44100, format="FLAC")
    (box / "truncated.mp3").write_bytes((box / "voice-copy.mp3").read_bytes()[:5000])
    (box / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x10\x00WAVE" + bytes(range(256)) * 8)
    shutil.copyfile(png, box / "photo.png")
    Image.open(png).save(box / "photo.jpg", quality=90)
    return box


def test_a_mixed_folder_gives_one_line_per_file(home, inbox):
    run = verify([inbox], VerifySettings(policy=DEFAULT_POLICY, home=home.root))
    by = {Path(line.file).name: line for line in run.lines}
    assert sorted(by) == sorted(p.name for p in inbox.iterdir() if p.suffix != ".c2pa")
    assert len(run.lines) == len(by) == 8
    assert by["voice.wav"].verdict is VerdictLabel.AI_GENERATED and by["voice.wav"].audio.format == "wav"
    assert by["voice.opus"].verdict is VerdictLabel.AI_GENERATED and by["voice.opus"].provenance.source == "sidecar"
    copy = by["voice-copy.mp3"]
    assert copy.verdict is VerdictLabel.AI_DECLARED and copy.provenance.recovered_from_ledger
    assert copy.watermark.payload == by["voice.wav"].watermark.payload
    assert by["music.flac"].verdict is VerdictLabel.UNKNOWN and not by["music.flac"].watermark.detected
    for name, words in (("truncated.mp3", "truncated MP3"), ("corrupt.wav", "WAV")):
        line = by[name]
        assert line.error is not None and words in line.error and line.action is DEFAULT_POLICY.actions.error
        assert "Traceback" not in line.error and str(inbox) in line.error  # named as the file, not the copy
    for line in run.lines:
        assert VerifyLine.from_dict(json.loads(line.to_json())) == line
    image, audio = json.loads(by["photo.png"].to_json()), json.loads(by["voice.wav"].to_json())
    assert "audio" not in image and "audio" not in json.loads(by["photo.jpg"].to_json())
    assert audio["audio"]["codec"] == "pcm_16" and audio["watermark"]["details"]["kind"] == "audio"


def test_the_batch_report_shows_a_waveform_and_a_spectrogram_per_audio_file(home, inbox, tmp_path):
    run = verify([inbox], VerifySettings(policy=DEFAULT_POLICY, home=home.root))
    report = tmp_path / "report.html"
    write_batch_report(report, run.lines, DEFAULT_POLICY)
    page = report.read_text()
    sections = {m.group(1): m.group(2) for m in re.finditer(r"<section><h2>([^<]+)</h2>(.*?)</section>", page,
                                                           re.S)}
    for name in ("voice.wav", "voice.opus", "voice-copy.mp3", "music.flac"):
        (section,) = [body for file, body in sections.items() if file.endswith(name)]
        assert 'alt="waveform"' in section and 'alt="spectrogram"' in section and "Audio pictures" in section
        assert "not applicable to audio" in section
        for data in re.findall(r'src="data:image/(?:jpeg|png);base64,([^"]+)"', section):
            assert len(data) * 3 // 4 < MAX_PICTURE_BYTES
    (photo,) = [body for file, body in sections.items() if file.endswith("photo.png")]
    assert "Forensic pictures" in photo and "waveform" not in photo


def test_the_inspection_report_draws_the_decoded_clip(home, inbox):
    with InspectionContext.build(home, classifier=False) as context:
        kept = inspect_file(inbox / "voice.wav", context, keep_pixels=True)
    page = render_html([kept])
    assert page.count('alt="waveform"') == 1 and page.count('alt="spectrogram"') == 1
    assert "SynthGuard audio watermark found" in page and "audio: WAV (pcm_16)" in page
    pictures = file_pictures(inbox / "music.flac")
    assert tuple(pictures) == AUDIO_PICTURES and pictures["waveform"].startswith(b"\x89PNG")
    assert pictures["spectrogram"].startswith(b"\xff\xd8")


@pytest.mark.parametrize(("seconds", "rate", "channels"),
                         [(600.0, 16000, 1), (120.0, 8000, 1), (60.0, 48000, 2), (0.2, 8000, 1)])
def test_audio_pictures_stay_small(seconds, rate, channels):
    clip = noise(seconds, rate, seed=7, level=0.3)
    if channels == 2:
        clip = np.stack([clip, noise(seconds, rate, seed=8, level=0.05)], axis=1)
    for fmt in (".png", ".jpg"):
        for side in (384, 160):
            pictures = audio_pictures(clip, rate, preview_side=side, fmt=fmt)
            assert tuple(pictures) == AUDIO_PICTURES
            assert all(len(data) < MAX_PICTURE_BYTES for data in pictures.values()), \
                {k: len(v) for k, v in pictures.items()}


def test_a_report_of_an_audio_file_changed_since_it_was_verified_shows_its_line(home, tmp_path):
    wav = write_wav(tmp_path / "gone.wav", noise(4.0, 16000, seed=1), 16000)
    run = verify([wav], VerifySettings(policy=DEFAULT_POLICY, home=home.root))
    wav.write_bytes(b"RIFF\x00\x00\x10\x00WAVE" + b"\x00" * 64)  # broken since
    report = tmp_path / "r.html"
    write_batch_report(report, run.lines, DEFAULT_POLICY)
    page = report.read_text()
    assert "gone.wav" in page and 'alt="waveform"' not in page and "audio: WAV (pcm_16)" in page
