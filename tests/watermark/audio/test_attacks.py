"""The audio attack suite: each attack keeps the sample contract and does what it says; BandMark survives the
codecs on a short clip (ffmpeg tests through require_tool)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.audio import music, noise, require_tool

from synthguard.errors import InputError
from synthguard.watermark.audio import attacks, default_audio_watermarker
from synthguard.watermark.audio.attacks import ATTACKS

PAYLOAD = b"\xa5\x01\x02\x03\x04\x05"
RATE = 22050


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return np.clip(music(6.5, RATE, 4, 2) + noise(6.5, RATE, 5, 0.02)[:, None], -1, 1).astype(np.float32)


@pytest.fixture(scope="module")
def marked(clip) -> np.ndarray:
    return default_audio_watermarker().embed(clip, RATE, PAYLOAD)


def _contract(samples: np.ndarray) -> None:
    assert samples.dtype == np.float32 and samples.ndim in (1, 2) and np.abs(samples).max() <= 1.0


def test_simple_attacks_do_what_they_say(clip):
    down, rate = attacks.resample(clip, RATE, 16000)
    assert rate == 16000 and abs(down.shape[0] - clip.shape[0] * 16000 / RATE) <= 1
    mono, _ = attacks.mono(clip, RATE)
    assert mono.ndim == 1 and np.allclose(mono, clip.mean(axis=1), atol=1e-6)
    loud, _ = attacks.volume(clip, RATE, 4.0)
    assert np.abs(loud).max() == 1.0  # clipped, not wrapped
    noisy, _ = attacks.noise(clip, RATE, 20.0)
    snr = 10 * np.log10(np.sum(clip.astype(float) ** 2) / np.sum((noisy - clip).astype(float) ** 2))
    assert snr == pytest.approx(20.0, abs=0.3)
    fast, rate = attacks.speed(clip, RATE, 1.05)
    assert rate == RATE and fast.shape[0] == pytest.approx(clip.shape[0] / 1.05, rel=1e-3)
    part, _ = attacks.excerpt(clip, RATE, 1.0, 4.0)
    assert part.shape[0] == 4 * RATE and np.array_equal(part, clip[RATE : 5 * RATE])
    cropped, _ = attacks.crop(clip, RATE, 1.0, 0.5)
    assert cropped.shape[0] == clip.shape[0] - int(1.5 * RATE)
    for out in (down, mono, loud, noisy, fast, part, cropped):
        _contract(out)


def test_out_of_range_cuts_are_refused(clip):
    with pytest.raises(InputError, match="past the clip"):
        attacks.excerpt(clip, RATE, 60.0)
    with pytest.raises(InputError, match="leaves nothing"):
        attacks.crop(clip, RATE, 4.0, 4.0)


@pytest.mark.parametrize("name", ["mp3-128k", "opus-48k", "tempo-1.05"])
def test_ffmpeg_attacks_keep_the_contract(clip, name):
    require_tool("ffmpeg")
    out, rate = ATTACKS[name](clip, RATE)
    _contract(out)
    assert rate == RATE and out.shape[1] == 2
    expected = clip.shape[0] / (1.05 if name.startswith("tempo") else 1.0)
    assert out.shape[0] == pytest.approx(expected, rel=0.05)


@pytest.mark.parametrize("name", ["mp3-128k", "opus-48k", "mp3-128k+excerpt-4s-16k", "mono", "volume-1.5", "crop"])
def test_the_mark_survives(marked, name):
    if name.startswith(("mp3", "opus")):
        require_tool("ffmpeg")
    found = default_audio_watermarker().detect(*ATTACKS[name](marked, RATE))
    assert found.detected and found.payload == PAYLOAD


def test_a_missing_ffmpeg_is_named(clip, monkeypatch):
    monkeypatch.setattr(attacks.shutil, "which", lambda _: None)
    with pytest.raises(InputError, match="ffmpeg"):
        attacks.mp3(clip, RATE)
