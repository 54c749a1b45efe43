"""`synthguard detect` and `synthguard verify` on audio: the human summary names the format, rate, channels,
duration, the mark and the verdict; `--json` carries the audio block; `--report` draws the waveform and
spectrogram; broken audio is an error line and exit status 2, never a traceback."""

from __future__ import annotations

import json
import shutil

import pytest
import soundfile
from click.testing import CliRunner
from helpers.audio import noise, stamped_speech, write_wav

from synthguard.cli import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def voice(home, identity, tmp_path):
    out = tmp_path / "voice.wav"
    result = stamped_speech(home, identity, out,
                            "Generated speech, checked on the command line, long enough to carry its watermark.")
    return out, result.payload.hex(), soundfile.info(str(out)).samplerate


def test_detect_summarises_an_audio_file(voice, tmp_path):
    wav, payload, rate = voice
    human = run("detect", wav, "--no-classifier")
    assert human.exit_code == 0, human.output
    lines = human.output.splitlines()
    assert lines[0] == f"{wav}: ai-generated (confidence 1.000)"
    assert any(line.strip().startswith(f"audio: WAV (pcm_16), {rate} Hz mono, ") for line in lines)
    assert any(f"SynthGuard audio watermark found (io.synthguard.bandmark.1, payload {payload}" in line
               for line in lines)
    assert any("not applicable to audio" in line for line in lines)
    as_json = run("detect", wav, "--json")
    assert as_json.exit_code == 0
    data = json.loads(as_json.output)
    assert data["mime"] == "audio/wav" and data["verdict"]["label"] == "ai-generated"
    assert data["audio"]["rate"] == rate and data["audio"]["channels"] == 1 and data["audio"]["format"] == "wav"
    assert data["watermark"]["payload"] == payload and data["watermark"]["details"]["kind"] == "audio"
    assert data["classifier"] is None and data["sd_marks"] is None


def test_detect_report_draws_the_audio(voice, tmp_path):
    report = tmp_path / "r.html"
    done = run("detect", voice[0], "--report", report)
    assert done.exit_code == 0
    page = report.read_text()
    assert 'alt="waveform"' in page and 'alt="spectrogram"' in page


def test_broken_audio_is_an_error_and_exit_status_2(voice, tmp_path):
    truncated = tmp_path / "cut.wav"
    truncated.write_bytes(voice[0].read_bytes()[:5000])
    mixed = run("detect", truncated, voice[0])
    assert mixed.exit_code == 2 and "Traceback" not in mixed.output
    assert f"error: {truncated}: truncated WAV" in mixed.output and f"{voice[0]}: ai-generated" in mixed.output
    as_json = run("detect", truncated, "--json")
    assert as_json.exit_code == 2 and "truncated WAV" in json.loads(as_json.output)["error"]


def test_verify_a_folder_of_images_and_audio_gives_one_line_per_file(voice, tmp_path, png):
    box = tmp_path / "box"
    box.mkdir()
    shutil.copyfile(voice[0], box / "voice.wav")
    shutil.copyfile(png, box / "photo.png")
    write_wav(box / "noise.wav", noise(4.0, 16000, seed=3), 16000)
    # A FLAC whose STREAMINFO declares 2^36 - 1 samples (43 days at 16 kHz): refused before decoding.
    soundfile.write(box / "bomb.flac", noise(1.0, 16000, seed=4), 16000, format="FLAC")
    data = bytearray((box / "bomb.flac").read_bytes())
    info = int.from_bytes(data[18:26], "big") | ((1 << 36) - 1)
    data[18:26] = info.to_bytes(8, "big")
    (box / "bomb.flac").write_bytes(bytes(data))
    done = run("verify", box, "--no-audit")
    assert done.exit_code == 2 and "Traceback" not in done.output
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    by = {line["file"].rsplit("/", 1)[1]: line for line in lines}
    assert sorted(by) == ["bomb.flac", "noise.wav", "photo.png", "voice.wav"]
    assert by["voice.wav"]["verdict"] == "ai-generated" and by["voice.wav"]["audio"]["format"] == "wav"
    assert by["noise.wav"]["verdict"] == "unknown" and not by["noise.wav"]["watermark"]["detected"]
    assert by["photo.png"]["verdict"] is not None and "audio" not in by["photo.png"]
    assert by["bomb.flac"]["verdict"] is None and "over the 900 s limit" in by["bomb.flac"]["error"]
