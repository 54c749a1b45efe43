"""``generate --backend audio`` and ``train audio`` through the CLI: clips written in the asked format and
length, the JSON report, and bad usage (too short, options of other backends, formats of the other medium, no
watermark) answered with exit 2 and no traceback; the image backends keep their defaults."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from synthguard.cli import main
from synthguard.models import audio as m

SECONDS = "8"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def tiny(tmp_path):
    """A user's model folder: a copy of the built-in's weights under another name."""
    folder = tmp_path / "tiny-chorale"
    shutil.copytree(m.BUILTIN_AUDIO_FOLDER, folder)
    return folder


def test_clips_in_the_asked_format_with_a_json_report(tiny, tmp_path):
    out = tmp_path / "clips"
    result = run("generate", "--backend", "audio", "--model", tiny, "-n", "2", "--seconds", SECONDS, "--format",
                 "flac", "--prompt", "E minor", "--threads", "1", "--json", "-o", out)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["clips"] == 2 and report["model"] == "tiny-chorale"
    assert [f["key"] for f in report["files"]] == ["E minor", "E minor"]
    assert all(f["watermark"]["embedded"] for f in report["files"])
    assert sorted(p.name for p in out.iterdir()) == ["tiny-chorale-000000.flac", "tiny-chorale-000001.flac"]


def test_a_generated_clip_is_detected_as_ai_generated(tiny, tmp_path):
    out = tmp_path / "clips"
    assert run("generate", "--backend", "audio", "--model", tiny, "--seconds", SECONDS, "-o", out).exit_code == 0
    result = run("detect", "--json", "--threads", "1", out / "tiny-chorale-000000.wav")
    verdicts = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert verdicts and verdicts[0]["verdict"]["label"] == "ai-generated", result.output


@pytest.mark.parametrize(("args", "message"), [
    (["--seconds", "1"], "too short for the audio watermark"),
    (["--label", "3"], "--label"),
    (["--interpolate", "1", "2"], "--interpolate"),
    (["--format", "png"], "image format"),
    (["--no-watermark"], "always watermarked"),
    (["--prompt", "D dorian"], "note name"),
])
def test_bad_audio_usage_exits_2(tiny, tmp_path, args, message):
    result = run("generate", "--backend", "audio", "--model", tiny, "-o", tmp_path / "out", *args)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_audio_options_are_refused_for_images(tmp_path):
    for args, message in ((["--format", "wav"], "audio format"), (["--seconds", "4"], "--seconds")):
        result = run("generate", "-n", "1", "-o", tmp_path / "out", *args)
        assert result.exit_code == 2 and message in result.output


def test_train_audio_on_a_folder(tmp_path):
    from music21 import corpus

    data = tmp_path / "scores"
    data.mkdir()
    for name in ("bwv10.7", "bwv101.7", "bwv102.7"):
        (data / f"{name}.mxl").write_bytes(corpus.getWork(name).read_bytes())
    result = run("train", "audio", "--data", data, "--steps", "2", "--batch-size", "2", "--width", "16",
                 "--layers", "1", "--bars", "1", "--eval-samples", "1", "--threads", "1", "-o", tmp_path / "model")
    assert result.exit_code == 0, result.output
    assert "validation perplexity" in result.output
    record = json.loads((tmp_path / "model" / "training.json").read_text())
    assert record["command"].startswith("synthguard train audio --data scores --steps 2")
