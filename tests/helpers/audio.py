"""Audio the tests make themselves: speech from Debian's espeak-ng, harmonic "music" and noise from numpy, WAV files
through soundfile; and the external tools the audio tests need (ffmpeg, espeak-ng).

Without a tool the tests that need it are skipped, saying why; with SYNTHGUARD_REQUIRE_AUDIO_TOOLS=1 (CI, which
installs both) they fail instead."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

REQUIRE_ENV = "SYNTHGUARD_REQUIRE_AUDIO_TOOLS"


def require_tool(name: str) -> str:
    """The path of the executable ``name`` (``ffmpeg``, ``espeak-ng``), or a skip (a failure under
    SYNTHGUARD_REQUIRE_AUDIO_TOOLS=1) without it."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but {name} is not installed")
        pytest.skip(f"needs {name} (Debian: apt-get install {name}); set {REQUIRE_ENV}=1 to fail instead")
    return path


def speech(text: str = "The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs.",
           voice: str = "en", speed: int = 160) -> tuple[np.ndarray, int]:
    """``text`` spoken by espeak-ng in ``voice`` (e.g. en, en-us, de, fr, es, en+f3): mono float32 samples and the
    rate (22050 Hz)."""
    import soundfile

    exe = require_tool("espeak-ng")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "speech.wav"
        subprocess.run([exe, "-v", voice, "-s", str(speed), "-w", str(out), text], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples, rate = soundfile.read(out, dtype="float32", always_2d=False)
    return samples, int(rate)


def music(seconds: float = 6.0, rate: int = 44100, seed: int = 0, channels: int = 1) -> np.ndarray:
    """Notes of a seeded random melody with chords, each a few decaying harmonics: float32 ``(frames,)`` or
    ``(frames, channels)`` in [-1, 1]."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    out = np.zeros(n, np.float64)
    t0 = 0
    while t0 < n:
        length = int(rate * rng.choice([0.25, 0.5, 0.75]))
        t = np.arange(min(length, n - t0)) / rate
        env = np.minimum(1.0, t / 0.01) * np.exp(-3.0 * t)
        root = 220.0 * 2 ** (rng.integers(0, 24) / 12)
        for ratio in (1.0, 1.26, 1.5):
            for h in range(1, 5):
                out[t0:t0 + len(t)] += env * np.sin(2 * np.pi * root * ratio * h * t + rng.uniform(0, 6.28)) / (h * 3)
        t0 += length
    out *= 0.5 / max(np.abs(out).max(), 1e-9)
    out = out.astype(np.float32)
    if channels > 1:
        out = np.stack([out * (0.8 + 0.2 * c / channels) for c in range(channels)], axis=1)
    return out


def noise(seconds: float = 5.0, rate: int = 16000, seed: int = 0, level: float = 0.1) -> np.ndarray:
    """Seeded white noise, float32 ``(frames,)``."""
    return (np.random.default_rng(seed).standard_normal(int(seconds * rate)) * level).clip(-1, 1).astype(np.float32)


def write_wav(path: Path, samples: np.ndarray, rate: int, subtype: str = "PCM_16") -> Path:
    """Write ``samples`` as a WAV file (16-bit PCM by default) and return ``path``."""
    import soundfile

    soundfile.write(str(path), samples, rate, subtype=subtype, format="WAV")
    return path


def stamped_speech(home, identity, path: Path, text: str):
    """``text`` spoken by espeak-ng, watermarked and signed as AI-generated into ``path`` (a WAV) through a Stamper
    over ``home``; returns the StampResult."""
    from synthguard.provenance.manifest import DigitalSourceType, ManifestSpec
    from synthguard.stamp import Stamper

    samples, rate = speech(text)
    spec = ManifestSpec(title=path.stem, digital_source_type=DigitalSourceType.TRAINED_ALGORITHMIC_MEDIA)
    with Stamper.from_home(home, identity=identity) as stamper:
        return stamper.stamp_audio(samples, rate, path, spec)
