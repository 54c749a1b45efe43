"""BandMark: a keyed spread-spectrum audio watermark in the band levels of a 16 kHz analysis signal (our design).

Method
------
Every clip is analysed as a 16 kHz mono signal (channels averaged, ``scipy.signal.resample_poly``) in STFT frames
of 64 ms (1024 samples, hop 256 = 16 ms, Hann). The band from 297 Hz to 6.9 kHz is split into 53 bands of 125 Hz,
time into cells of 2 hops (32 ms), and the clip into blocks of 64 cells (2.048 s) starting at its first sample.
Each block's 53 x 64 cells are allocated at random (from a seed) between *sync* cells (a third), each with a fixed
keyed sign, and *data* cells, each carrying one bit of the 104-bit BCH codeword (48 payload bits, t = 8) times its
own keyed sign (every bit spread over about 22 cells per block); the same block repeats through the clip.

Embedding raises or lowers the level of each cell: every STFT bin's magnitude moves by ``strength * sign *
min(mask, 2 |X|)`` along its own phase (a bin weaker than the change is removed, never flipped), where the mask is
a simple masking threshold: the largest neighbouring bin's power attenuated with distance (simultaneous masking),
held with a decay over the following frames (forward temporal masking) and one frame back (backward). The mark is
thus a small multiplicative modulation of the magnitudes that follows the sound (silent stretches carry none).
The 16 kHz residual (the inverse STFT of the added spectrum) is upsampled to the clip's rate and added to every
channel; the output is clipped to [-1, 1].

Detection reads the log band powers of the analysis signal per frame (at two sub-hop shifts of the frame grid, so
an excerpt cut anywhere lines up within 4 ms), whitens them (minus their moving average over 6 frames in time and
over 3 bands), limits outliers, and weights every (frame, band) value by its *signal share*: the part of its power
above the band's floor (the 2nd percentile over the window), ``1 - floor / power``, the part a multiplicative mark
can modulate (added noise and silent stretches read as 0). For each speed hypothesis (tape-style speed changes,
pitch and tempo together, 0.95 to 1.05 in steps of 0.0025; and tempo-only changes in steps of 0.005) it maps band
edges and frame times back to the original's, folds the frames onto the block period (averaging every repetition
seen) and finds the block offset as the peak of the circular cross-correlation with the sync signs (an FFT along
time). The best few (speed, offset) candidates by sync score are read: each band's data cells are weighted by the
mark's signal-to-noise ratio there over the band's rms (the SNR read from the band's sync cells, smoothed over 15
bands), soft bits summed over each bit's cells, then decoded by ordered-statistics decoding (order 2; order 3 when
the soft bits are strong) and, when that falls short, Chase-II BCH decoding (``watermark.coding``); the decoded
codeword with the largest correlation wins.

Significance: for audio not marked with this key, each data cell's value and weight are functions of the audio and
of the sync signs alone (the signal share and the whitening read only the audio; the band weights read the sync
cells and the rms of the cells, which does not depend on any sign), and the data chip signs are the key's
pseudo-random signs, independent of the sync signs that chose the candidate and set the weights; so for any one
codeword the normalised correlation z is a Rademacher sum, bounded by ``coding.log_tail`` whatever the audio. The
p-value is the union bound over all 2^48 codewords, multiplied by every searched hypothesis: windows (4) x frame
shifts (2) x speed hypotheses (61) x block offsets (128) x candidates decoded (3), about 1.9e5 (the offsets, shifts
and speeds need no factor, since only sync cells choose among them; counting them anyway costs about 10 % in z).
The decoders add no factor: every codeword they re-encode and score (OSD candidates, Chase-II test patterns) is one
of the 2^48 the union already covers, so the bound holds for whichever they return. Detected means p < 1e-6: a
codeword correlation z of at least 10.72.

Ideas from: spread-spectrum audio watermarking (Cox et al. 1997; Kirovski & Malvar 2003, cepstral/log-domain
chips and block repetition for synchronisation); psychoacoustic masking (Boney, Tewfik & Hamdy 1996); Chase-II
decoding (Chase 1972); ordered-statistics decoding (Fossorier & Lin 1995).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from synthguard.errors import InputError, WatermarkError
from synthguard.watermark.audio.base import AudioWatermarker, WatermarkResult
from synthguard.watermark.coding import BchCode, bisect, log_tail

RATE = 16_000  # analysis rate (Hz)
MIN_RATE, MAX_RATE = 8_000, 192_000
MIN_SECONDS = 3.0  # shortest clip marked or read: a block (2.048 s) plus margin
MAX_SECONDS = 3_600.0  # longest clip marked or read (memory and time budget)
_NFFT, _HOP = 1024, 256
_BAND_LO, _BAND_WIDTH, _N_BANDS = 19, 8, 53  # STFT bins: 19 * 15.625 = 297 Hz, 125 Hz wide, up to 6.9 kHz
_CELL = 2  # hops per time cell (32 ms)
_BLOCK_CELLS = 64  # time cells per block
_PERIOD = _CELL * _BLOCK_CELLS  # hops per block (2.048 s)
_SYNC_SHARE = 1.0 / 3.0
_WHITEN_FRAMES = 6  # frames of the moving average the detector subtracts from each band (96 ms)
_CLIP = 2.0  # whitened features are limited at this many times their rms (an odd function: the bound stands)
_CHASE_BITS = 10  # Chase-II flips every subset of this many least reliable bits: 1024 test patterns
_OSD_ORDER = 2  # ordered-statistics decoding re-encodes every pattern of up to 2 flips in the reliable basis
_WEIGHT_BANDS = 15  # neighbouring bands averaged into a band's reliability weight
_FLOOR_PERCENTILE = 2  # a band's noise floor: this percentile of its power over the window
_DEEP_MARGIN = 2.0  # order 3 is tried when even every bit agreeing would clear the threshold by this much
_PHASES = 2  # sub-hop shifts of the detector's frame grid
_N_CANDIDATES = 3  # (speed, offset) candidates decoded per window
_WINDOW_SECONDS = 12.0  # longest stretch folded at once (a speed error of 0.125 % drifts 7.5 ms over half of it)
_MAX_WINDOWS = 4  # windows read from a long clip, evenly spread
_SPEEDS = np.round(np.arange(0.95, 1.05 + 1e-9, 0.0025), 5)
_CHUNK_FRAMES = 4096  # STFT frames processed at once by the embedder (65 s)
_MARGIN = 24  # extra frames on each side of a chunk (temporal masking reaches this far)
_SILENT_RMS = 1e-4  # an analysis signal quieter than this (-80 dBFS) has nothing to hide a mark in
_MAX_RATIO = 2.0  # the change of a bin's magnitude is at most strength times this many times the magnitude
_DECAY_DB = 6.0  # forward masking: the threshold decays this much per 16 ms hop
_SPREAD_BINS = 20  # reach of the simultaneous masking, in bins each side
_POWER_FLOOR = 1e-5  # times the window's mean band power, added before the log (near-silence reads as a constant)


@dataclass(frozen=True)
class _Hypothesis:
    """How the clip was changed: tape-style speed (frequencies and times scaled) or tempo only (times scaled)."""

    speed: float
    pitch: bool


def _hypotheses() -> tuple[_Hypothesis, ...]:
    tape = [_Hypothesis(float(s), True) for s in _SPEEDS]
    tempo = [_Hypothesis(float(s), False) for s in _SPEEDS[::2] if abs(s - 1.0) > 1e-9]
    # Unchanged speed first, then by distance from it (the common cases decode before the search widens).
    return tuple(sorted(tape + tempo, key=lambda h: (abs(h.speed - 1.0), not h.pitch, h.speed)))


_HYPOTHESES = _hypotheses()


def _window() -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(_NFFT) / _NFFT)).astype(np.float64)


def _frames(x: np.ndarray) -> int:
    return len(x) // _HOP + 1


def _segment(x: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Samples ``lo`` to ``hi`` of ``x`` (zeros outside it)."""
    seg = np.zeros(hi - lo, np.float64)
    a, b = max(lo, 0), min(hi, len(x))
    if b > a:
        seg[a - lo : b - lo] = x[a:b]
    return seg


def _stft(x: np.ndarray, start: int, stop: int, base: int = 0) -> np.ndarray:
    """STFT frames ``start`` to ``stop`` of a signal of which ``x`` holds the samples from ``base`` on: frame t is
    centred on sample t * hop (zeros beyond the ends); complex (frames, 513)."""
    lo = start * _HOP - _NFFT // 2
    seg = _segment(x, lo - base, (stop - 1) * _HOP + _NFFT // 2 - base)
    view = np.lib.stride_tricks.sliding_window_view(seg, _NFFT)[::_HOP][: stop - start]
    return np.fft.rfft(view * _window(), axis=1)


def _istft_add(out: np.ndarray, spec: np.ndarray, start: int, base: int = 0) -> None:
    """Overlap-add the inverse of STFT frames ``spec`` (frames ``start``...) into ``out``, which holds the samples
    from ``base`` on (Hann analysis and synthesis at hop N/4: the squared windows sum to 1.5)."""
    frames = np.fft.irfft(spec, n=_NFFT, axis=1) * (_window() / 1.5)
    for i, frame in enumerate(frames):
        lo = (start + i) * _HOP - _NFFT // 2 - base
        a, b = max(lo, 0), min(lo + _NFFT, len(out))
        if b > a:
            out[a:b] += frame[a - lo : b - lo]


def _band_edges() -> np.ndarray:
    return _BAND_LO + _BAND_WIDTH * np.arange(_N_BANDS + 1, dtype=np.float64)


def _check_audio(samples: np.ndarray, rate: int) -> None:
    if not isinstance(samples, np.ndarray) or samples.dtype.kind != "f":
        kind = getattr(samples, "dtype", type(samples).__name__)
        raise InputError(f"audio samples must be a float numpy array in [-1, 1], got {kind}")
    if samples.ndim not in (1, 2) or (samples.ndim == 2 and not 1 <= samples.shape[1] <= 64):
        raise InputError(f"audio must be shaped (frames,) or (frames, channels) with 1-64 channels, "
                         f"got {samples.shape}")
    if isinstance(rate, bool) or not isinstance(rate, int | np.integer) or not MIN_RATE <= rate <= MAX_RATE:
        raise InputError(f"sample rate must be an integer from {MIN_RATE} to {MAX_RATE} Hz, got {rate!r}")
    seconds = samples.shape[0] / rate
    if seconds < MIN_SECONDS:
        raise InputError(f"audio of {seconds:.2f} s is too short for the audio watermark: it needs at least "
                         f"{MIN_SECONDS:g} s")
    if seconds > MAX_SECONDS:
        raise InputError(f"audio of {seconds:.0f} s is longer than the audio watermark's {MAX_SECONDS:g} s budget")
    if not np.all(np.isfinite(samples)):
        raise InputError("audio samples contain NaN or infinite values")


def _ratio(rate_from: float, rate_to: float) -> tuple[int, int]:
    r = Fraction(rate_to) / Fraction(rate_from)
    return r.numerator, r.denominator


def _resample(x: np.ndarray, rate_from: int, rate_to: int) -> np.ndarray:
    from scipy.signal import resample_poly  # noqa: PLC0415 (scipy loads only when audio is processed)

    if rate_from == rate_to:
        return x
    up, down = _ratio(rate_from, rate_to)
    return resample_poly(x, up, down, axis=0)


def _analysis(samples: np.ndarray, rate: int) -> np.ndarray:
    """The 16 kHz mono float64 signal the mark lives in."""
    mono = samples.astype(np.float64) if samples.ndim == 1 else samples.astype(np.float64).mean(axis=1)
    return _resample(mono, int(rate), RATE)


class BandMarkWatermarker(AudioWatermarker):
    """Keyed band-level spread-spectrum audio watermark with block sync, speed search and BCH coding (OSD and
    Chase-II soft decoding).

    Parameters
    ----------
    payload_bytes
        Data bytes carried (6: ``Payload.to_bytes()``).
    bch_t
        Bit errors the BCH code corrects.
    strength
        Relative amplitude of the added spectrum against the masking threshold (sets the audibility: 0.15 is a
        level modulation of about +-1.3 dB per cell on a dense spectrum).
    seed
        Seeds the cell allocation and the chip signs; a detector needs the embedder's seed.
    threshold
        A decode counts as detected when its p-value is below this.
    """

    name = "bandmark"
    version = "1"

    def __init__(self, payload_bytes: int = 6, bch_t: int = 8, strength: float = 0.15, seed: int = 0x5347_4144,
                 threshold: float = 1e-6) -> None:
        if payload_bytes < 1:
            raise InputError(f"payload_bytes must be >= 1, got {payload_bytes}")
        if not 0.0 < strength < 1.0:
            raise InputError(f"strength must be in (0, 1), got {strength}")
        self.payload_bytes = payload_bytes
        self.strength = strength
        self.threshold = threshold
        self._code = BchCode(payload_bytes, bch_t)
        self._k, self._n = self._code.k, self._code.n
        rng = np.random.default_rng(seed)
        n_cells = _N_BANDS * _BLOCK_CELLS
        cells = rng.permutation(n_cells)
        n_sync = int(round(_SYNC_SHARE * n_cells))
        self._sync_cells, self._data_cells = cells[:n_sync], cells[n_sync:]
        if self._data_cells.size < self._n:
            raise InputError("codeword too long for the block's cells")
        self._sync_sign = rng.choice(np.array([-1.0, 1.0]), n_sync)
        self._chip_sign = rng.choice(np.array([-1.0, 1.0]), self._data_cells.size)
        self._chip_bit = np.arange(self._data_cells.size) % self._n
        self._sync_band, self._data_band = self._sync_cells // _BLOCK_CELLS, self._data_cells // _BLOCK_CELLS
        self._sync_per_band = np.bincount(self._sync_band, minlength=_N_BANDS)
        # Sync signs laid out per band and block position (hop), zero on data cells: the cross-correlation template.
        template = np.zeros((_N_BANDS, _BLOCK_CELLS))
        template.flat[self._sync_cells] = self._sync_sign
        self._template = np.repeat(template, _CELL, axis=1)
        self._template_fft = np.fft.rfft(self._template, axis=1)
        # Every hypothesis the p-value is corrected for (see the module docstring).
        self._n_tests = _MAX_WINDOWS * _PHASES * len(_HYPOTHESES) * _PERIOD * _N_CANDIDATES
        budget = math.log(threshold) - math.log(self._n_tests) - self._k * math.log(2.0)
        self._z_enough = bisect(lambda z: log_tail(z) <= budget, 0.0, 64.0)

    @property
    def z_threshold(self) -> float:
        """The codeword correlation z at which the p-value reaches ``threshold``."""
        return self._z_enough

    def _p_value(self, z: float) -> float:
        return math.exp(min(0.0, math.log(self._n_tests) + self._k * math.log(2.0) + log_tail(z)))

    def _cell_signs(self, code: np.ndarray) -> np.ndarray:
        """(bands, block cells) signs of the mark carrying codeword bits ``code``."""
        signs = np.zeros(_N_BANDS * _BLOCK_CELLS)
        signs[self._sync_cells] = self._sync_sign
        signs[self._data_cells] = self._chip_sign * (2.0 * code[self._chip_bit] - 1.0)
        return signs.reshape(_N_BANDS, _BLOCK_CELLS)

    # ------------------------------------------------------------------------------------------------ embed

    def embed(self, samples: np.ndarray, rate: int, payload: bytes) -> np.ndarray:
        """Return a marked copy of ``samples`` (same shape and dtype) carrying ``payload`` (``payload_bytes``
        bytes). Raises InputError for unusable input, WatermarkError for a silent clip (nothing to hide it in)."""
        _check_audio(samples, rate)
        if not isinstance(payload, bytes | bytearray) or len(payload) != self.payload_bytes:
            raise InputError(f"payload must be {self.payload_bytes} bytes, got {len(payload)!r}")
        x16 = _analysis(samples, rate)
        if float(np.sqrt(np.mean(x16 * x16))) < _SILENT_RMS:
            raise WatermarkError("the clip is silent (below -80 dBFS): an audio watermark needs sound to hide in")
        residual16 = self._residual(x16, self._cell_signs(self._code.codeword(bytes(payload))))
        residual = _resample(residual16, RATE, int(rate))
        n = samples.shape[0]
        if residual.shape[0] < n:
            residual = np.pad(residual, (0, n - residual.shape[0]))
        residual = residual[:n]
        if samples.ndim == 2:
            residual = residual[:, None]
        return np.clip(samples.astype(np.float64) + residual, -1.0, 1.0).astype(samples.dtype)

    def _residual(self, x16: np.ndarray, signs: np.ndarray) -> np.ndarray:
        """The 16 kHz residual, chunk by chunk of STFT frames (with margins for the masking's reach)."""
        out = np.zeros_like(x16)
        total = _frames(x16)
        edges = _band_edges().astype(int)
        bin_band = np.full(_NFFT // 2 + 1, -1)
        for band in range(_N_BANDS):
            bin_band[edges[band] : edges[band + 1]] = band
        in_band = np.flatnonzero(bin_band >= 0)
        for start in range(0, total, _CHUNK_FRAMES):
            stop = min(start + _CHUNK_FRAMES, total)
            lo, hi = max(0, start - _MARGIN), min(total, stop + _MARGIN)
            spec = _stft(x16, lo, hi)
            mag = np.abs(spec)
            mask = _masking_threshold(mag * mag)[:, in_band]
            phase = np.where(mag > 0, spec / np.maximum(mag, 1e-30), 1.0)[:, in_band]
            mag = mag[:, in_band]
            chip = signs[bin_band[in_band]][:, (np.arange(lo, hi) % _PERIOD) // _CELL].T  # (frames, bins)
            # Each bin's magnitude moves by strength times the masking threshold (at most twice its own magnitude),
            # up or down with the chip's sign; a bin weaker than that change is removed rather than flipped.
            added = np.zeros(spec.shape, complex)
            step = self.strength * chip * np.minimum(mask, _MAX_RATIO * mag)
            added[:, in_band] = (np.maximum(mag + step, 0.0) - mag) * phase
            _istft_add(out, added[start - lo : stop - lo], start)
        return out

    # ------------------------------------------------------------------------------------------------ detect

    def detect(self, samples: np.ndarray, rate: int) -> WatermarkResult:
        """Look for the mark in ``samples`` (any excerpt of at least MIN_SECONDS, any speed within 5 %).

        Returns
        -------
        WatermarkResult
            ``detected`` only when a decoded codeword's p-value (every searched hypothesis counted) is below
            ``threshold``; ``payload`` the 6 bytes then; ``bit_errors`` the codeword bits corrected.
        """
        return self.read(samples, rate)[0]

    def estimate_payload_bits(self, samples: np.ndarray, rate: int) -> np.ndarray | None:
        """Hard decisions on the payload bits (before error correction) at the candidate whose sync reads
        strongest; no detection claim."""
        return self.read(samples, rate)[1]

    def read(self, samples: np.ndarray, rate: int) -> tuple[WatermarkResult, np.ndarray]:
        """``detect`` and ``estimate_payload_bits`` from one search: the result and the 48 estimated bits."""
        _check_audio(samples, rate)
        best_p, best, bits = 1.0, None, None
        for signed, norm in self._candidates(_analysis(samples, rate)):
            if bits is None:
                soft = np.bincount(self._chip_bit, weights=signed, minlength=self._n)
                bits = (soft[: self._k] > 0).astype(np.uint8)
            decoded = self._decode(signed, norm)
            if decoded is None:
                continue
            payload, errors, z = decoded
            p = self._p_value(z)
            if p < best_p:
                best_p, best = p, (payload, errors)
            if p < self.threshold:
                break
        detected = best is not None and best_p < self.threshold
        result = WatermarkResult(detected=detected, payload=best[0] if detected else None,
                                 bit_errors=best[1] if detected else None, confidence=1.0 - best_p, p_value=best_p,
                                 algorithm=self.algorithm_id)
        return result, bits if bits is not None else np.zeros(self._k, np.uint8)

    def _decode(self, signed: np.ndarray, norm: float) -> tuple[bytes, int, float] | None:
        soft = np.bincount(self._chip_bit, weights=signed, minlength=self._n)
        # No codeword scores more than every bit agreeing with its read sign: skip the decoder when even that is
        # short of a detection (exact, not a heuristic).
        if norm <= 0.0 or float(np.sum(np.abs(soft))) / norm < self._z_enough:
            return None
        payload, errors, corr = self._code.osd(soft, _OSD_ORDER)
        best = (payload, errors, corr / norm)
        if best[2] >= self._z_enough:
            return best
        if float(np.sum(np.abs(soft))) / norm >= self._z_enough + _DEEP_MARGIN:
            payload, errors, corr = self._code.osd(soft, _OSD_ORDER + 1)
            if corr / norm > best[2]:
                best = (payload, errors, corr / norm)
            if best[2] >= self._z_enough:
                return best
        chased = self._code.chase(soft, lambda code: float(np.dot(soft, 2.0 * code - 1.0)) / norm, self._z_enough,
                                  _CHASE_BITS)
        return chased if chased is not None and chased[2] > best[2] else best

    def _candidates(self, x16: np.ndarray):
        """Yield (signed data cells, their norm) for the best (speed, offset) candidates of each window: the best
        candidate of the first window first."""
        n = len(x16)
        win = int(_WINDOW_SECONDS * RATE)
        if n <= win:
            starts = [0]
        else:
            count = min(_MAX_WINDOWS, math.ceil(n / win))
            starts = [int(round(i * (n - win) / (count - 1))) for i in range(count)]
        for start in starts:
            scored = []
            # Frames read at _PHASES sub-hop shifts: an excerpt cut anywhere has one within hop / (2 _PHASES) of the
            # embedder's frame grid.
            for phase in range(_PHASES):
                features = _Features(x16[start + phase * _HOP // _PHASES : start + win])
                for hyp in _HYPOTHESES:
                    folded = features.folded(hyp)
                    if folded is None:
                        continue
                    z, offset = self._sync_peak(folded[0])
                    scored.append((z, offset, folded))
            scored.sort(key=lambda item: -item[0])
            for _, offset, (mean, count) in scored[:_N_CANDIDATES]:
                yield self._data_view(mean, count, offset)

    def _sync_peak(self, mean: np.ndarray) -> tuple[float, int]:
        """The block offset whose sync signs correlate best with the folded features, and that normalised score."""
        corr = np.fft.irfft(self._template_fft * np.conj(np.fft.rfft(mean, axis=1)), n=_PERIOD, axis=1).sum(axis=0)
        offset = int(np.argmax(corr))
        scale = float(np.sqrt(np.sum(self._template**2) * np.mean(mean * mean))) + 1e-12
        return float(corr[offset]) / scale, offset

    def _data_view(self, mean: np.ndarray, count: np.ndarray, offset: int) -> tuple[np.ndarray, float]:
        """Cell values at block ``offset`` (position q of the block is folded position (q - offset) mod period),
        limited; returns the data cells times their chip signs and the norm of the data cells."""
        q = np.arange(_PERIOD)
        src = (q - offset) % _PERIOD
        sums = (mean * count)[:, src].reshape(_N_BANDS, _BLOCK_CELLS, _CELL).sum(axis=2)
        counts = np.broadcast_to(count[src], (_N_BANDS, _PERIOD)).reshape(_N_BANDS, _BLOCK_CELLS, _CELL).sum(axis=2)
        cells = (sums / np.maximum(counts, 1e-12)).ravel()
        data = cells[self._data_cells] * self._band_weights(cells)[self._data_band]
        return data * self._chip_sign, float(np.sqrt(np.sum(data * data)))

    def _band_weights(self, cells: np.ndarray) -> np.ndarray:
        """Per-band reliability weights: the mark's signal-to-noise ratio in the band (its mean level in the band's
        sync cells over the rms of all the band's cells; smoothed over neighbouring bands, negative as 0) over that
        rms. A function of the audio and the sync signs only, never of the data chip signs (module docstring)."""
        grid = cells.reshape(_N_BANDS, _BLOCK_CELLS)
        rms = np.sqrt(np.mean(grid * grid, axis=1))
        rms = np.maximum(rms, 1e-6 * float(np.max(rms)) + 1e-30)
        level = np.bincount(self._sync_band, weights=cells[self._sync_cells] * self._sync_sign, minlength=_N_BANDS)
        snr = level / np.maximum(self._sync_per_band, 1) / rms
        snr = _moving_mean(snr, _WEIGHT_BANDS, axis=0)
        return np.maximum(snr, 0.0) / rms


class _Features:
    """Log band powers of one analysis window, read back under speed hypotheses."""

    def __init__(self, x16: np.ndarray) -> None:
        spec = _stft(x16, 0, _frames(x16))
        power = spec.real**2 + spec.imag**2
        # Cumulative power over bins, so a band with fractional (scaled) edges is a difference of interpolations.
        self._cum = np.concatenate([np.zeros((power.shape[0], 1)), np.cumsum(power, axis=1)], axis=1)
        self._n_frames = power.shape[0]
        self._cache: dict[float, tuple[np.ndarray, np.ndarray]] = {}

    def _band_power(self, scale: float) -> np.ndarray:
        edges = _band_edges() * scale
        idx = np.floor(edges).astype(int)
        frac = edges - idx
        at = self._cum[:, idx] + frac * (self._cum[:, idx + 1] - self._cum[:, idx])
        return np.diff(at, axis=1) / np.diff(edges)

    def _log_power(self, scale: float) -> tuple[np.ndarray, np.ndarray]:
        """(frames, bands) log band powers with band edges scaled by ``scale``, and each cell's signal share."""
        if scale in self._cache:
            return self._cache[scale]
        power = self._band_power(scale)
        out = np.log(power + _POWER_FLOOR * float(np.mean(power)) + 1e-20)
        self._cache[scale] = out, _signal_share(out)
        return self._cache[scale]

    def folded(self, hyp: _Hypothesis) -> tuple[np.ndarray, np.ndarray] | None:
        """The whitened features, times their signal share, folded onto the block period in the original's time
        under ``hyp``: the mean per (band, block position) and the number of frames averaged per position; None
        when too short."""
        band, share = self._log_power(hyp.speed if hyp.pitch else 1.0)
        # Original frame tau sits at observed frame tau / speed.
        n_orig = int(math.floor((self._n_frames - 1) * hyp.speed)) + 1
        if n_orig < _PERIOD:
            return None
        pos = np.arange(n_orig) / hyp.speed
        i0 = np.minimum(np.floor(pos).astype(int), self._n_frames - 2)
        frac = (pos - i0)[:, None]
        g = band[i0] * (1.0 - frac) + band[i0 + 1] * frac
        white = _whiten(g) * (share[i0] * (1.0 - frac) + share[i0 + 1] * frac)
        blocks = -(-n_orig // _PERIOD)
        padded = np.zeros((blocks * _PERIOD, _N_BANDS))
        padded[:n_orig] = white
        count = np.bincount(np.arange(n_orig) % _PERIOD, minlength=_PERIOD).astype(np.float64)
        mean = padded.reshape(blocks, _PERIOD, _N_BANDS).sum(axis=0).T
        return mean / np.maximum(count, 1.0), count


def _signal_share(g: np.ndarray) -> np.ndarray:
    """(frames, bands) weights from log band powers: the share of each cell's power above the band's floor (its
    _FLOOR_PERCENTILE-th percentile over the window), the part a multiplicative mark can modulate; 0 at the floor."""
    k = (g.shape[0] - 1) * _FLOOR_PERCENTILE // 100
    floor = np.partition(g, k, axis=0)[k]
    return np.clip(1.0 - np.exp(floor - g), 0.0, 1.0)


def _moving_mean(x: np.ndarray, width: int, axis: int) -> np.ndarray:
    """Centred moving average over ``width`` samples along ``axis`` (edges: the samples available)."""
    x = np.moveaxis(x, axis, 0)
    cum = np.concatenate([np.zeros((1,) + x.shape[1:]), np.cumsum(x, axis=0)])
    n = x.shape[0]
    lo = np.clip(np.arange(n) - width // 2, 0, n)
    hi = np.clip(np.arange(n) + width // 2 + 1, 0, n)
    shape = (n,) + (1,) * (x.ndim - 1)
    out = (cum[hi] - cum[lo]) / (hi - lo).reshape(shape)
    return np.moveaxis(out, 0, axis)


def _whiten(g: np.ndarray) -> np.ndarray:
    """(frames, bands) log powers minus their local means over 3 cells in time and 3 bands, limited at _CLIP rms."""
    w = g - _moving_mean(g, _WHITEN_FRAMES, axis=0)
    w = w - _moving_mean(w, 3, axis=1)
    c = _CLIP * float(np.sqrt(np.mean(w * w))) + 1e-12
    return np.clip(w, -c, c)


def _masking_threshold(power: np.ndarray) -> np.ndarray:
    """A simple masking threshold (magnitude) per STFT bin from the (frames, bins) power.

    Simultaneous masking: the largest neighbour's power attenuated by its distance, 3 dB per 15.6 Hz bin towards
    lower frequencies and 1.5 dB per bin towards higher ones (masking spreads upwards), over 20 bins each side.
    Temporal masking: held over the next frames with a decay of _DECAY_DB per 16 ms hop (forward) and over one
    frame back at -3 dB (backward).
    """
    spread = power.copy()
    n = power.shape[1]
    for d in range(1, _SPREAD_BINS + 1):
        # A masker at bin k masks k + d (above it) at -1.5 d dB and k - d (below it) at -3 d dB.
        np.maximum(spread[:, d:], power[:, : n - d] * 10.0 ** (-0.15 * d), out=spread[:, d:])
        np.maximum(spread[:, : n - d], power[:, d:] * 10.0 ** (-0.3 * d), out=spread[:, : n - d])
    held = spread
    decay = 10.0 ** (-_DECAY_DB / 10.0)
    for t in range(1, held.shape[0]):
        np.maximum(held[t], held[t - 1] * decay, out=held[t])
    held[:-1] = np.maximum(held[:-1], 0.5 * held[1:])
    return np.sqrt(held)
