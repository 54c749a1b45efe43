"""Audio on the web desk: a signed, marked WAV and an unmarked FLAC are verified with their waveform, spectrogram and
an <audio> player served from the desk with the right content type and the security headers (media from the desk
itself only); a broken WAV gives an error line, and bytes that only look like audio are refused (415)."""

from __future__ import annotations

import re

import pytest
import soundfile
from helpers.audio import music, stamped_speech

from synthguard.desk.batch import VerifySettings
from synthguard.policy import DEFAULT_POLICY

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from synthguard.desk.web import create_app  # noqa: E402


@pytest.fixture
def voice(home, identity, tmp_path):
    out = tmp_path / "voice.wav"
    stamped_speech(home, identity, out, "A generated voice, uploaded to the desk to be checked before it is published.")
    return out


@pytest.fixture
def client(home, tmp_path, voice):  # the identity exists before the desk starts: the desk trusts it
    app = create_app(VerifySettings(policy=DEFAULT_POLICY, home=home.root), storage=tmp_path / "store",
                     max_upload=4 * 1024 * 1024)
    return TestClient(app, base_url="http://127.0.0.1:8000")


def token(client) -> dict:
    return {"token": re.search(r'name=token value="([^"]+)"', client.get("/").text).group(1)}


def upload(client, name: str, data: bytes, mime: str = "application/octet-stream"):
    t = token(client)
    return client.post("/verify", params=t, data=t, files={"file": (name, data, mime)})


def test_an_audio_upload_gets_its_verdict_pictures_and_a_player(client, voice, tmp_path):
    data = voice.read_bytes()
    page = upload(client, "voice.wav", data, "audio/wav")
    assert page.status_code == 200
    assert re.search(r"data-verdict='ai-generated' data-action='label-ai'", page.text)
    assert 'alt="waveform"' in page.text and 'alt="spectrogram"' in page.text
    assert "SynthGuard audio watermark found" in page.text and "audio: WAV (pcm_16)" in page.text
    assert "media-src 'self'" in page.headers["content-security-policy"]
    src = re.search(r"<audio controls preload=metadata id=player src='(/media/[0-9a-f]{64})'></audio>", page.text)
    assert src is not None
    media = client.get(src.group(1))
    assert media.status_code == 200 and media.content == data
    assert media.headers["content-type"] == "audio/wav" and media.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in media.headers["content-security-policy"]
    # The review page of the same file plays it too.
    review = client.get("/file/" + src.group(1).rsplit("/", 1)[1])
    assert src.group(0) in review.text

    flac = tmp_path / "music.flac"
    soundfile.write(flac, music(5.0, 44100, seed=6, channels=2), 44100, format="FLAC")
    unmarked = upload(client, "music.flac", flac.read_bytes())
    assert re.search(r"data-verdict='unknown'", unmarked.text) and "<audio controls" in unmarked.text
    assert "no SynthGuard audio watermark found" in unmarked.text


def test_only_stored_audio_is_served_as_media(client, png):
    page = upload(client, "photo.png", png.read_bytes(), "image/png")
    digest = re.search(r"/review/([0-9a-f]{64})", page.text).group(1)
    assert "<audio" not in page.text
    assert client.get(f"/media/{digest}").status_code == 404  # an image is never served back
    assert client.get("/media/" + "0" * 64).status_code == 404
    assert client.get("/media/..%2F..%2Fetc%2Fpasswd").status_code == 404


def test_broken_audio_gives_an_error_and_look_alikes_are_refused(client, voice):
    broken = upload(client, "broken.wav", voice.read_bytes()[:4000], "audio/wav")
    assert broken.status_code == 200 and "truncated WAV" in broken.text and "Traceback" not in broken.text
    assert "<audio" not in broken.text  # an error line plays nothing
    # MPEG frame-sync bytes followed by noise: the first bytes look like MP3, no second frame follows.
    look_alike = upload(client, "song.mp3", b"\xff\xfb\x90\x64" + bytes(range(7, 250)) * 20, "audio/mpeg")
    assert look_alike.status_code == 415 and "not audio the desk reads" in look_alike.text
