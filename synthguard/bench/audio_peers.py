"""The classic peer the audio watermark benchmark runs beside BandMark: time-domain direct-sequence spread spectrum
(Bender, Gruhl, Morimoto & Lu 1996, "Techniques for data hiding", section on spread spectrum; Cox, Kilian, Leighton
& Shamoon 1997), carrying the same 48 payload bits.

This is the project's own implementation of that published method. No packaged peer runs offline here: AudioSeal,
WavMark and SilentCipher fetch their weights from the Hugging Face hub (no network), resemble-perth ships weights
but needs torchaudio (which does not install beside this torch), ``aware`` pins an older torch, and audiowmark is
not packaged in Debian 12.

Method: the clip's mono downmix at 16 kHz carries one keyed pseudo-random +-1 chip sequence per sample; bit b owns
the samples of every 128 ms segment ``b mod 48`` (48 bits = 6.1 s, repeated through the clip), and its chips are
multiplied by the bit's sign. The chips are scaled by the host's local RMS (a 16 ms moving window, so quiet passages
get less) times ``strength`` and the residual is upsampled to the clip's rate and added to every channel. Detection
correlates the first difference of the 16 kHz downmix (a simple whitening) with the chips, assuming the clip starts
where the mark does (the classic method has no synchronisation). Its p-value uses the same argument as BandMark's:
the chips are keyed random signs, so for any codeword the normalised correlation is a Rademacher sum, and the bound
is taken over all 2^48 payloads (no error-correcting code: the best payload is every bit's own sign).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from synthguard.errors import InputError
from synthguard.watermark.audio.base import AudioWatermarker, WatermarkResult
from synthguard.watermark.coding import log_tail

_RATE = 16_000
_SEGMENT = 2048  # samples per bit segment at 16 kHz (128 ms)
_ENVELOPE = 256  # samples of the moving RMS that scales the chips
MIN_SECONDS = 1.0


def _resample(x: np.ndarray, rate_from: int, rate_to: int) -> np.ndarray:
    from scipy.signal import resample_poly  # noqa: PLC0415 (scipy loads only when the benchmark runs)

    if rate_from == rate_to:
        return x
    r = Fraction(rate_to, rate_from)
    return resample_poly(x, r.numerator, r.denominator, axis=0)


class SpreadSpectrumPeer(AudioWatermarker):
    """Time-domain DSSS (Bender et al. 1996; Cox et al. 1997), 48 bits, no sync: the benchmark's classic peer."""

    name = "dsss"
    version = "1"

    def __init__(self, payload_bytes: int = 6, strength: float = 0.05, seed: int = 0x4453_5353,
                 threshold: float = 1e-6) -> None:
        self.payload_bytes = payload_bytes
        self.strength = strength
        self.threshold = threshold
        self._seed = seed
        self._k = 8 * payload_bytes

    @property
    def algorithm_id(self) -> str:
        return f"peer.dsss.{self.version}"

    def _chips(self, n: int) -> np.ndarray:
        return np.random.default_rng(self._seed).choice(np.array([-1.0, 1.0]), n)

    def _bit_of(self, n: int) -> np.ndarray:
        return (np.arange(n) // _SEGMENT) % self._k

    @staticmethod
    def _mono16(samples: np.ndarray, rate: int) -> np.ndarray:
        if not isinstance(samples, np.ndarray) or samples.dtype.kind != "f" or samples.ndim not in (1, 2):
            raise InputError("audio samples must be a float numpy array shaped (frames,) or (frames, channels)")
        if samples.shape[0] < MIN_SECONDS * rate or not np.all(np.isfinite(samples)):
            raise InputError(f"the peer needs at least {MIN_SECONDS:g} s of finite samples")
        mono = samples.astype(np.float64) if samples.ndim == 1 else samples.astype(np.float64).mean(axis=1)
        return _resample(mono, int(rate), _RATE)

    def embed(self, samples: np.ndarray, rate: int, payload: bytes) -> np.ndarray:
        if len(payload) != self.payload_bytes:
            raise InputError(f"payload must be {self.payload_bytes} bytes, got {len(payload)}")
        x = self._mono16(samples, rate)
        bits = np.unpackbits(np.frombuffer(bytes(payload), np.uint8)).astype(np.float64)
        n = len(x)
        kernel = np.ones(_ENVELOPE) / _ENVELOPE
        envelope = np.sqrt(np.convolve(x * x, kernel, mode="same"))
        residual16 = self.strength * envelope * self._chips(n) * (2.0 * bits[self._bit_of(n)] - 1.0)
        residual = _resample(residual16, _RATE, int(rate))
        residual = np.pad(residual, (0, max(0, samples.shape[0] - len(residual))))[: samples.shape[0]]
        if samples.ndim == 2:
            residual = residual[:, None]
        return np.clip(samples.astype(np.float64) + residual, -1.0, 1.0).astype(samples.dtype)

    def _soft(self, samples: np.ndarray, rate: int) -> tuple[np.ndarray, float]:
        x = self._mono16(samples, rate)
        white = np.diff(x, prepend=x[0])
        n = len(white)
        signed = white * self._chips(n)
        soft = np.bincount(self._bit_of(n), weights=signed, minlength=self._k)
        return soft, float(np.sqrt(np.sum(white * white)))

    def detect(self, samples: np.ndarray, rate: int) -> WatermarkResult:
        soft, norm = self._soft(samples, rate)
        z = float(np.sum(np.abs(soft))) / norm if norm > 0 else 0.0
        p = math.exp(min(0.0, self._k * math.log(2.0) + log_tail(z)))
        detected = p < self.threshold
        payload = np.packbits((soft > 0).astype(np.uint8)).tobytes() if detected else None
        return WatermarkResult(detected=detected, payload=payload, bit_errors=None, confidence=1.0 - p, p_value=p,
                               algorithm=self.algorithm_id)

    def estimate_payload_bits(self, samples: np.ndarray, rate: int) -> np.ndarray | None:
        return (self._soft(samples, rate)[0] > 0).astype(np.uint8)
