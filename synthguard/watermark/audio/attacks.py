"""The audio attack suite: each attack maps (samples, rate) to (samples, rate) under the audio sample contract
(float32 in [-1, 1], shape (frames,) or (frames, channels)).

Lossy codecs run through the ffmpeg command-line tool (libmp3lame, libopus); without it they raise InputError
naming the tool. ``ATTACKS`` names the set the benchmark reports, including the issue's must-show chains.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from fractions import Fraction

import numpy as np

from synthguard.errors import InputError, WatermarkError

Attack = Callable[[np.ndarray, int], tuple[np.ndarray, int]]

__all__ = ["ATTACKS", "Attack", "chain", "crop", "excerpt", "mono", "mp3", "noise", "opus", "resample", "speed",
           "tempo", "volume"]

_EXCERPT_START = 1.37  # seconds: the must-show excerpt starts off every block, cell and frame boundary


def _float32(x: np.ndarray) -> np.ndarray:
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def _channels(samples: np.ndarray) -> int:
    return 1 if samples.ndim == 1 else samples.shape[1]


def _ffmpeg(args: list[str], data: bytes) -> bytes:
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise InputError("this audio attack needs the ffmpeg command-line tool, which is not installed "
                         "(Debian: apt-get install ffmpeg)")
    done = subprocess.run([exe, "-hide_banner", "-loglevel", "error", "-nostdin", *args], input=data,
                          capture_output=True, check=False)
    if done.returncode != 0:
        raise WatermarkError(f"ffmpeg failed: {done.stderr.decode(errors='replace').strip()[:300]}")
    return done.stdout


def _codec_round_trip(samples: np.ndarray, rate: int, encoder: list[str], container: str) -> tuple[np.ndarray, int]:
    channels = _channels(samples)
    raw = ["-f", "f32le", "-ar", str(rate), "-ac", str(channels)]
    coded = _ffmpeg([*raw, "-i", "pipe:0", *encoder, "-f", container, "pipe:1"], _float32(samples).tobytes())
    decoded = _ffmpeg(["-f", container, "-i", "pipe:0", *raw, "pipe:1"], coded)
    out = np.frombuffer(decoded, np.float32)
    out = out.reshape(-1, channels) if channels > 1 else out
    return _float32(out), rate


def mp3(samples: np.ndarray, rate: int, bitrate: str = "128k") -> tuple[np.ndarray, int]:
    """An MP3 round trip (LAME, constant bitrate), decoded back at the clip's rate."""
    return _codec_round_trip(samples, rate, ["-c:a", "libmp3lame", "-b:a", bitrate], "mp3")


def opus(samples: np.ndarray, rate: int, bitrate: str = "48k") -> tuple[np.ndarray, int]:
    """An Opus round trip in Ogg (libopus at 48 kHz internally), decoded back at the clip's rate."""
    return _codec_round_trip(samples, rate, ["-c:a", "libopus", "-b:a", bitrate, "-ar", "48000"], "ogg")


def _resample_poly(x: np.ndarray, ratio: Fraction) -> np.ndarray:
    from scipy.signal import resample_poly  # noqa: PLC0415 (scipy loads only when an attack runs)

    return resample_poly(x.astype(np.float64), ratio.numerator, ratio.denominator, axis=0)


def resample(samples: np.ndarray, rate: int, target: int = 16_000) -> tuple[np.ndarray, int]:
    """Resampled to ``target`` Hz (polyphase, anti-aliased)."""
    if target == rate:
        return samples, rate
    return _float32(_resample_poly(samples, Fraction(target, rate))), target


def mono(samples: np.ndarray, rate: int) -> tuple[np.ndarray, int]:
    """Channels averaged into one."""
    return (samples if samples.ndim == 1 else _float32(samples.mean(axis=1))), rate


def volume(samples: np.ndarray, rate: int, gain: float = 0.5) -> tuple[np.ndarray, int]:
    """Scaled by ``gain``, clipped to [-1, 1] as a fixed-point file would be."""
    return _float32(samples.astype(np.float64) * gain), rate


def noise(samples: np.ndarray, rate: int, snr_db: float = 20.0, seed: int = 0) -> tuple[np.ndarray, int]:
    """White Gaussian noise added at ``snr_db`` below the clip's own power."""
    power = float(np.mean(samples.astype(np.float64) ** 2))
    scale = np.sqrt(power / 10.0 ** (snr_db / 10.0))
    added = np.random.default_rng(seed).standard_normal(samples.shape) * scale
    return _float32(samples + added), rate


def speed(samples: np.ndarray, rate: int, factor: float = 1.05) -> tuple[np.ndarray, int]:
    """Played ``factor`` times faster, tape-style: pitch and tempo change together (the clip is resampled and kept
    at its rate)."""
    ratio = Fraction(1.0 / factor).limit_denominator(1000)
    return _float32(_resample_poly(samples, ratio)), rate


def tempo(samples: np.ndarray, rate: int, factor: float = 1.05) -> tuple[np.ndarray, int]:
    """Played ``factor`` times faster with the pitch kept (ffmpeg's atempo, WSOLA time stretching)."""
    channels = _channels(samples)
    raw = ["-f", "f32le", "-ar", str(rate), "-ac", str(channels)]
    out = np.frombuffer(_ffmpeg([*raw, "-i", "pipe:0", "-filter:a", f"atempo={factor}", *raw, "pipe:1"],
                                _float32(samples).tobytes()), np.float32)
    return _float32(out.reshape(-1, channels) if channels > 1 else out), rate


def excerpt(samples: np.ndarray, rate: int, start: float = _EXCERPT_START, seconds: float = 4.0) -> tuple[np.ndarray,
                                                                                                            int]:
    """``seconds`` of the clip from ``start`` (seconds; the excerpt ends early at the clip's end)."""
    a = int(round(start * rate))
    if a >= samples.shape[0]:
        raise InputError(f"excerpt start {start} s is past the clip's end ({samples.shape[0] / rate:.2f} s)")
    return samples[a : a + int(round(seconds * rate))], rate


def crop(samples: np.ndarray, rate: int, head: float = 0.9, tail: float = 0.7) -> tuple[np.ndarray, int]:
    """The clip without its first ``head`` and last ``tail`` seconds."""
    a, b = int(round(head * rate)), samples.shape[0] - int(round(tail * rate))
    if b <= a:
        raise InputError(f"cropping {head} s and {tail} s leaves nothing of a {samples.shape[0] / rate:.2f} s clip")
    return samples[a:b], rate


def chain(*attacks: Attack) -> Attack:
    """The attacks applied in order."""
    def run(samples: np.ndarray, rate: int) -> tuple[np.ndarray, int]:
        for attack in attacks:
            samples, rate = attack(samples, rate)
        return samples, rate
    return run


def _excerpt_16k(samples: np.ndarray, rate: int) -> tuple[np.ndarray, int]:
    return resample(*excerpt(samples, rate))


# The benchmark's attacks by name (clips of at least 6 s: the excerpt starts at 1.37 s).
ATTACKS: dict[str, Attack] = {
    "none": lambda samples, rate: (samples, rate),
    "mp3-128k": mp3,
    "opus-48k": opus,
    "resample-16k": resample,
    "excerpt-4s-16k": _excerpt_16k,
    "mp3-128k+excerpt-4s-16k": chain(mp3, _excerpt_16k),
    "mono": mono,
    "volume-0.5": lambda samples, rate: volume(samples, rate, 0.5),
    "volume-1.5": lambda samples, rate: volume(samples, rate, 1.5),
    "noise-20db": noise,
    "speed-0.95": lambda samples, rate: speed(samples, rate, 0.95),
    "speed-1.05": lambda samples, rate: speed(samples, rate, 1.05),
    "tempo-0.95": lambda samples, rate: tempo(samples, rate, 0.95),
    "tempo-1.05": lambda samples, rate: tempo(samples, rate, 1.05),
    "crop": crop,
}

