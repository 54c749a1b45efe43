"""The audio signals: what an audio file holds (format, codec, rate, channels, duration), SynthGuard's audio
watermark in its decoded samples, and two pictures for a person to look at (a waveform and a spectrogram).

An audio file goes through the same inspection as an image (``detect.context.inspect_file``): decoded with budgets
checked before any sample is decoded (``core.audio.decode_audio``: a corrupt, truncated or oversized file is an
input error), hashed for the ledger's content lookup (``core.audio.audio_content_sha256``), tested for the
watermark, whose payload finds a stripped copy's manifest in the ledger exactly as an image's does. The image tests
(the classifier, the Stable Diffusion marks, metadata declarations, forensic pictures) read pixels: an audio file's
findings list them as not applicable (``signals.AUDIO_NOT_APPLICABLE``).

The pictures are drawn with numpy and OpenCV in a few milliseconds per minute of audio:

- ``waveform``: per pixel column, the range (min to max) of the channels' mean over that column's samples, and
  their RMS darker inside it: clipping shows as a flat top, silence and gaps as a line, a splice often as a step.
- ``spectrogram``: the log-magnitude short-time Fourier transform (Hann window of about 43 ms, linear 0 Hz to
  Nyquist bottom to top, the top 90 dB shown): a band-limited copy (an MP3 or a 16 kHz resample) ends in a sharp
  horizontal edge, synthetic speech may show too-regular harmonics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from synthguard.detect.signals import AudioSignal, AudioWatermarkSignal
from synthguard.errors import InputError, WatermarkError
from synthguard.watermark.payload import declared_ai

if TYPE_CHECKING:
    from synthguard.core.audio import AudioClip, AudioInfo
    from synthguard.watermark.audio.base import AudioWatermarker

WAVEFORM_SIZE = (768, 160)  # (width, height) in pixels of the report's pictures at full size
SPECTROGRAM_SIZE = (768, 256)
SPECTROGRAM_DB = 90.0  # dynamic range shown below the loudest bin
_BACKGROUND = np.array([250, 250, 250], np.uint8)
_RANGE = np.array([120, 160, 210], np.uint8)
_RMS = np.array([25, 70, 150], np.uint8)
_AXIS = np.array([200, 200, 200], np.uint8)


@dataclass(frozen=True)
class AudioInspection:
    """An audio file decoded and tested: its info block, the decoded clip, the content hash (the ledger's key for
    stripped copies) and the watermark signal (None when watermarks are off)."""

    info: AudioSignal
    content_sha256: str
    watermark: AudioWatermarkSignal | None
    clip: AudioClip = field(repr=False, compare=False)


# Peak resident memory per decoded sample while a clip is inspected: 13.8 bytes measured (`detect` of a 5-minute
# 96 kHz stereo WAV, 57.6 M samples, peaked 0.8 GB above a short clip's: the decoded copies, the mono mix, the
# watermark's analysis), rounded up; plus the process itself (0.2 GB measured).
_BYTES_PER_SAMPLE = 16
_PROCESS_MB = 256


def audio_peak_memory_bound_mb() -> int:
    """The most memory one process should need to inspect the longest accepted audio: the decoder's sample cap
    (``core.audio``: ``SYNTHGUARD_MAX_AUDIO_SECONDS`` of at most 96 kHz stereo) at the measured bytes per sample."""
    from synthguard.core.audio import MAX_SAMPLES_PER_SECOND, max_audio_seconds  # noqa: PLC0415

    samples = max_audio_seconds() * MAX_SAMPLES_PER_SECOND
    return int(_PROCESS_MB + samples * _BYTES_PER_SAMPLE / 2**20)


def inspect_audio(path: Path, watermarker: AudioWatermarker | None) -> AudioInspection:
    """Decode the audio file at ``path`` within the audio budgets and test it for the watermark with
    ``watermarker`` (None: not tested). InputError when the file cannot be decoded."""
    from synthguard.core.audio import audio_content_sha256, audio_info, decode_audio  # noqa: PLC0415 (decoders)

    clip = decode_audio(Path(path))  # first: the budgets and the truncation checks, before anything else reads it
    info = audio_signal(clip, audio_info(Path(path)))
    samples = clip.samples[:, 0] if clip.channels == 1 else clip.samples  # mono as (frames,), as the stamper reads it
    watermark = None if watermarker is None else score_audio_watermark(samples, clip.rate, watermarker)
    return AudioInspection(info, audio_content_sha256(clip), watermark, clip)


def audio_signal(clip: AudioClip, header: AudioInfo | None = None) -> AudioSignal:
    """The info block of a decoded clip, with the codec and bit rate its file's ``header`` declares."""
    return AudioSignal(clip.format.value, None if header is None else header.codec, int(clip.rate),
                       int(clip.channels), int(clip.frames), round(float(clip.seconds), 6),
                       None if header is None else header.bitrate)


def score_audio_watermark(samples: np.ndarray, rate: int, watermarker: AudioWatermarker) -> AudioWatermarkSignal:
    """The watermark test of float32 samples ``(frames,)`` or ``(frames, channels)`` at ``rate`` Hz; a clip the
    detector cannot test (too short, a rate it does not take) gives a signal that says why."""
    try:
        result = watermarker.detect(samples, rate)
    except (WatermarkError, InputError) as exc:
        return AudioWatermarkSignal(False, watermarker.algorithm_id, skipped=str(exc))
    if not result.detected or result.payload is None:
        return AudioWatermarkSignal(False, result.algorithm, p_value=result.p_value)
    ai = declared_ai(result.payload)
    offset, speed = _location(result)
    return AudioWatermarkSignal(True, result.algorithm, result.payload.hex(), result.p_value, result.bit_errors, ai,
                                offset_seconds=offset, speed=speed)


def _location(result) -> tuple[float | None, float | None]:
    """Where the detector locked on (seconds into the clip) and the speed it undid, for a watermarker whose result
    carries ``offset_seconds`` and ``speed``; (None, None) for the plain ``WatermarkResult``."""
    offset = getattr(result, "offset_seconds", None)
    speed = getattr(result, "speed", None)
    return (None if offset is None else round(float(offset), 4)), (None if speed is None else round(float(speed), 4))


def _mono(samples: np.ndarray) -> np.ndarray:
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 2:
        samples = samples.mean(axis=1, dtype=np.float32)
    if samples.ndim != 1 or samples.size == 0:
        raise InputError(f"no audio samples to draw (shape {samples.shape})")
    return samples


def waveform(samples: np.ndarray, rate: int, size: tuple[int, int] = WAVEFORM_SIZE) -> np.ndarray:
    """(height, width, 3) uint8 RGB: the waveform of the channels' mean, -1 at the bottom, +1 at the top, with a
    faint line each second (each ten seconds past a minute)."""
    width, height = size
    x = _mono(samples)
    columns = min(width, x.size)
    edges = np.linspace(0, x.size, columns + 1).astype(np.int64)
    lo = np.minimum.reduceat(x, edges[:-1])
    hi = np.maximum.reduceat(x, edges[:-1])
    rms = np.sqrt(np.add.reduceat(x.astype(np.float64) ** 2, edges[:-1]) / np.diff(edges)).astype(np.float32)

    def row(value: np.ndarray) -> np.ndarray:  # +1 -> row 0, -1 -> the last row
        return np.clip(np.round((1.0 - np.clip(value, -1.0, 1.0)) * 0.5 * (height - 1)), 0, height - 1)

    rows = np.arange(height, dtype=np.float32)[:, None]
    picture = np.broadcast_to(_BACKGROUND, (height, columns, 3)).copy()
    seconds = x.size / rate
    step = 1.0 if seconds <= 60 else 10.0
    ticks = np.unique(np.round(np.arange(step, seconds, step) * rate / x.size * columns).astype(np.int64))
    picture[:, ticks[ticks < columns]] = _AXIS
    picture[height // 2, :] = _AXIS
    picture[(rows >= row(hi)) & (rows <= row(lo))] = _RANGE
    picture[(rows >= row(rms)) & (rows <= row(-rms))] = _RMS
    if columns < width:  # a clip shorter than the picture is wide: stretched, not padded
        import cv2  # noqa: PLC0415

        picture = cv2.resize(picture, (width, height), interpolation=cv2.INTER_NEAREST)
    return picture


def spectrogram(samples: np.ndarray, rate: int, size: tuple[int, int] = SPECTROGRAM_SIZE) -> np.ndarray:
    """(height, width, 3) uint8 RGB: the log-magnitude spectrogram of the channels' mean (time left to right, 0 Hz at
    the bottom to rate / 2 at the top), the loudest bin white-yellow, SPECTROGRAM_DB below it and under black."""
    import cv2  # noqa: PLC0415

    width, height = size
    x = _mono(samples)
    n_fft = int(2 ** np.ceil(np.log2(max(rate * 0.043, 64))))
    if x.size < n_fft:
        x = np.pad(x, (0, n_fft - x.size))
    # At most one frame per pixel column (a long clip is sampled, not summed): bounded work whatever its length.
    frames = min(width, max(1, (x.size - n_fft) // (n_fft // 4) + 1))
    starts = np.linspace(0, x.size - n_fft, frames).astype(np.int64)
    window = np.hanning(n_fft).astype(np.float32)
    power = np.abs(np.fft.rfft(x[starts[:, None] + np.arange(n_fft)] * window, axis=1)) ** 2  # (frames, bins)
    db = 10.0 * np.log10(power + 1e-20)
    top = float(db.max())
    scaled = np.clip((db - (top - SPECTROGRAM_DB)) / SPECTROGRAM_DB, 0.0, 1.0)
    grey = (scaled.T[::-1] * 255).astype(np.uint8)  # (bins, frames), low frequencies at the bottom
    grey = cv2.resize(grey, (width, height), interpolation=cv2.INTER_AREA if grey.shape[0] > height
                      else cv2.INTER_LINEAR)
    return cv2.cvtColor(cv2.applyColorMap(grey, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)
