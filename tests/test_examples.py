import subprocess
import sys

from helpers.files import REPO


def test_library_example_runs(tmp_path, home):
    result = subprocess.run([sys.executable, str(REPO / "examples" / "sign_and_verify.py"), str(tmp_path / "ex")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "render-signed.png: ai-generated (provenance trusted" in result.stdout


def test_verify_folder_example_runs(tmp_path, home, png):
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "note.txt").write_text("written by a person\n")
    (folder / "broken.png").write_bytes(png.read_bytes()[:100])
    result = subprocess.run([sys.executable, str(REPO / "examples" / "verify_folder.py"), str(folder)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "reject" in result.stdout and "human-review  unknown" in result.stdout


def test_text_watermark_example_runs(home):
    result = subprocess.run([sys.executable, str(REPO / "examples" / "text_watermark.py"), "JULIET:"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "whole text: detected=True" in result.stdout
    assert "inside a human document: detected=True" in result.stdout


def test_audio_round_trip_example_runs(tmp_path, home):
    result = subprocess.run([sys.executable, str(REPO / "examples" / "audio_round_trip.py"), str(tmp_path / "ex")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("builtin-audio-") and ": ai-generated (provenance trusted; watermark found" in lines[0]
    assert "reposted.mp3: ai-declared (provenance trusted, from the ledger by soft-binding; watermark found" in lines[1]
