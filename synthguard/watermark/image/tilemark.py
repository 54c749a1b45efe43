"""TileMark: a tiled spread-spectrum image watermark that finds its own geometry (our design).

Method
------
The luma is resampled to a fixed 256x256 working grid, so rescaling the image changes nothing there. In that
grid we add one 64x64 tile, repeated 4x4 times, built in the 2-D Fourier domain of the tile: a band of mid
frequencies is split at random (from a seed) between a fixed *sync* part with pseudo-random phases and a *data*
part that carries the BCH codeword as signs of the real and imaginary parts of the coefficients (each bit spread
over several frequencies, the *chips*). The residual is scaled by a local-contrast mask (stronger in texture,
weaker in flat areas), upsampled to the image size and added equally to R, G and B. The embedder simulates the
detector on the host and adds just enough to the bits the host pushes the wrong way, and cancels part of the
host's sync interference (informed embedding); then it scales the whole mark until the detector's statistic
reaches its target both on the marked grid and after a simulated centre crop read at its known geometry.

Detection whitens the working grid (high-pass and local-contrast normalisation) and reads the tile's
coefficients straight from the image spectrum: a mark tiled on a lattice puts its energy at the lattice's
reciprocal frequencies, so for a candidate geometry (scale and rotation, a 2x2 frequency map) each tile
coefficient is the image spectrum sampled (bilinearly, on a 2x zero-padded FFT) at the mapped frequency. The
tile's cyclic offset (a crop's position) is the peak of the FFT cross-correlation with the sync phases. The
identity geometry is tried first; failing that, geometries are scored by that sync peak (z-score): the scale line
(crops) and the rotation line on the full sync set at a fine step, and a coarse scale x rotation grid on the low
sync frequencies, which tolerate a coarse step; the best peaks of both are refined on the full set and the best
few decoded.
The data chips read at the chosen geometry and offset are decoded by Chase-II over the BCH code.

Small images (short side under 256 px) are upsampled onto the working grid, which would put the band's top next
to their own Nyquist frequency, where resampling and JPEG remove it. For them the embedder also draws the tile at
twice its size (half the frequencies; 2x2 tiles on the grid), simulates its mark through the image's own
resampling, aims its closed loop higher, marks the image both ways and keeps whichever reads back best after a
JPEG 75 round trip. The detector reads the identity geometry at both tile scales before searching.

Significance: for an image not marked with this key, the chip signs are the key's pseudo-random signs times
values that do not depend on them, so for any one codeword the normalised chip correlation z is a Rademacher sum
and P(z >= t) <= min(exp(-t^2 / 2), 2e^3/9 * Q(t)) (Hoeffding; Pinelis 1994 for symmetric sums, Q the standard
normal tail), whatever the image. The p-value is the union bound over all 2^k
codewords (which already covers whichever codeword the decoder picks), multiplied, conservatively, by every
decode attempt: each geometry decoded x each Chase-II test pattern. The offset and the searched geometry are
picked by the sync coefficients alone, which share no frequency with the data; only the chosen few are decoded.
A screen (``tilemark_search``) skips them when a float32 pass over the same starts finds none within reach of the
decoder's bound: it reads that bound at each start, then refines the coarse grid's start and the line starts near
the threshold. It only removes decode attempts, so the bound stands (and a rejected image reads as if none of them
had passed the bound); that it loses no mark the full search decodes is measured on the attack suite.

Ideas from: spread-spectrum watermarking (Cox et al. 1997); periodic tiling to recover affine transforms (Kutter
1998); informed embedding (Malvar & Florencio 2003, improved spread spectrum); perceptual masking by local activity
(Voloshynovskiy et al. 1999); Chase-II soft decoding (Chase 1972). BCH coding by the ``bchlib`` package.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import cv2
import numpy as np

from synthguard.errors import InputError, WatermarkError
from synthguard.watermark.coding import BchCode, bisect, log_tail
from synthguard.watermark.image.base import ImageWatermarker, WatermarkResult
from synthguard.watermark.image.tilemark_search import _CLIP, _N, _P, GeometrySearch, _Spectrum

_KMIN, _KMAX = 4, 16  # band of tile frequencies used, in cycles per tile (16 = 0.25 cycles per working pixel)
_MIN_SIDE = 128
# Below this short side the tile is drawn twice as large on the working grid (half the frequencies), so in image
# pixels the band sits where it sits on a 256 px image instead of next to the small image's Nyquist frequency,
# where resampling and JPEG's quantisation remove it.
_SMALL_SIDE = 256
# An image smaller than the working grid has few pixels per chip, and a JPEG of it quantises a larger share of the
# band: its closed loop aims this much higher (bounded by the same PSNR floor).
_SMALL_TARGET = 1.4
_FAINT_PSNR_DB = 45.0  # a mark fainter than this is checked through JPEG 75 (flat, dark or black images)
_SYNC_SHARE = 0.35  # share of the band's coefficients given to the sync (geometry and offset search)
_N_GEOMETRIES = 3  # refined geometries decoded, besides the identity
_CHASE_BITS = 7  # Chase-II flips every subset of this many least reliable bits: 2^7 test patterns
_GAIN_STEPS = 4  # closed-loop gain iterations in the embedder
_MIN_GAIN = 0.75  # the closed loop may weaken a mark that reads strongly, but not below this (compression margin)
_CROP_CHECK = 0.8  # the embedder also reads its mark after a centre crop keeping this share of each side
_DELTA_SCALE = 2.0  # the residual is added as uint8 (value * 2 + 128): half-grey-level precision, +-64 range


def _tile_scale(h: int, w: int) -> int:
    return 2 if min(h, w) < _SMALL_SIDE else 1


_JPEG_MAX_SIDE = 65_535 - 35  # JPEG stores sides in 16 bits; OpenCV's encoder stops a little short
_JPEG_STRIP = 65_488  # under the limit, a multiple of 16: strips meet on block boundaries, as one JPEG's blocks would


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """A JPEG round trip (OpenCV's codec, 4:2:0), in the image's own channel layout. A side longer than a JPEG can
    hold is round-tripped in strips of whole blocks."""
    height, width = image.shape[:2]
    if height > _JPEG_MAX_SIDE:
        return np.concatenate([_jpeg(image[y:y + _JPEG_STRIP], quality) for y in range(0, height, _JPEG_STRIP)])
    if width > _JPEG_MAX_SIDE:
        return np.concatenate([_jpeg(image[:, x:x + _JPEG_STRIP], quality) for x in range(0, width, _JPEG_STRIP)],
                              axis=1)
    bgr = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise WatermarkError("JPEG round trip of the marked image failed")
    out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return out if image.ndim == 2 else cv2.cvtColor(out, cv2.COLOR_BGR2RGB)


def _luma(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def _to_working(luma: np.ndarray) -> np.ndarray:
    h, w = luma.shape
    interp = cv2.INTER_AREA if min(h, w) >= _N else cv2.INTER_LINEAR
    return cv2.resize(luma.astype(np.float32), (_N, _N), interpolation=interp)


# Images up to this many pixels reach the working grid in one resize of their float luma (16 MB at most); larger
# ones in strips of about _STRIP_PIXELS pixels (see _image_to_working).
DIRECT_PIXELS = 1 << 22
_STRIP_PIXELS = 1 << 20


def _image_to_working(image: np.ndarray) -> np.ndarray:
    """The working grid of a uint8 (H, W) grey or (H, W, 3) RGB image: ``_to_working(_luma(image))``.

    Above DIRECT_PIXELS the image is read in strips across its long side: each strip's luma, in float, area-resized
    along the long side to the grid's side, then the (_N, short side) result area-resized along the short side.
    Area resampling is separable, so this is the same average up to float rounding, while memory holds one strip
    (about _STRIP_PIXELS pixels) and the grid's float rows instead of the full-resolution luma and its float copy.
    """
    h, w = image.shape[:2]
    if h * w <= DIRECT_PIXELS or min(h, w) < _N:
        return _to_working(_luma(image))
    # Transposed views when the image is taller than wide, so the strips are always runs of whole rows.
    view = image if w >= h else np.swapaxes(image, 0, 1)
    short, long = view.shape[:2]
    step = max(1, _STRIP_PIXELS // long)
    rows = np.empty((short, _N), np.float32)
    for top in range(0, short, step):
        strip = _luma(np.ascontiguousarray(view[top : top + step])).astype(np.float32)
        rows[top : top + strip.shape[0]] = cv2.resize(strip, (_N, strip.shape[0]), interpolation=cv2.INTER_AREA)
    grid = cv2.resize(rows, (_N, _N), interpolation=cv2.INTER_AREA)
    return grid if w >= h else np.ascontiguousarray(grid.T)


def _highpass(y: np.ndarray, sigma: float) -> np.ndarray:
    return y - cv2.GaussianBlur(y, (0, 0), sigma)



class TileMarkWatermarker(GeometrySearch, ImageWatermarker):
    """Tiled Fourier spread-spectrum watermark with sync-phase geometry search and BCH coding.

    Parameters
    ----------
    payload_bytes
        Data bytes carried.
    bch_t
        Bit errors the BCH code corrects; the code is the shortest binary BCH code that fits.
    strength
        Residual amplitude relative to the local contrast (the mask); sets the visibility, so the PSNR varies
        with the image: high on smooth images, lower on busy textures that hide the mark.
    floor
        Mask floor in grey levels, so smooth areas still carry a weak mark that survives compression.
    cancel
        Share of the host's interference on the sync coefficients the embedder cancels (informed embedding).
    min_psnr_db
        Per-image PSNR floor: the closed loop never makes the residual stronger than this (busy textures).
    target_z
        Detector statistic the closed loop aims for on the unattacked marked image (10.2 is the detection
        threshold at the default ``threshold``); the margin above it is what attacks eat.
    target_crop_z
        The same after a simulated centre crop (read at its known geometry): a crop loses tiles and the host
        cancellation's alignment, which on busy images costs more than any filter or re-encoding. Both targets
        are in the embedder's simulation, which reads above the decoded 8-bit image: the default leaves the
        detection threshold plus a JPEG margin on the image itself.
    seed
        Seeds the frequency allocation, phases and signs; a detector needs the embedder's seed.
    threshold
        A decode counts as detected when its p-value is below this.
    """

    name = "tilemark"
    version = "4"

    def __init__(
        self,
        payload_bytes: int = 6,
        bch_t: int = 10,
        strength: float = 0.15,
        floor: float = 6.0,
        cancel: float = 0.3,
        min_psnr_db: float = 32.5,
        target_z: float = 15.0,
        target_crop_z: float = 13.2,
        seed: int = 0x5347_574D,
        threshold: float = 1e-6,
    ) -> None:
        if payload_bytes < 6:
            raise InputError(f"payload_bytes must be >= 6, got {payload_bytes}")
        # Kept to build independent copies (`fresh`): the BCH codec holds per-call state, so threads need their own.
        self._settings = dict(payload_bytes=payload_bytes, bch_t=bch_t, strength=strength, floor=floor, cancel=cancel,
                              min_psnr_db=min_psnr_db, target_z=target_z, target_crop_z=target_crop_z, seed=seed,
                              threshold=threshold)
        self.payload_bytes = payload_bytes
        self.strength = strength
        self.floor = floor
        self.cancel = cancel
        self.min_psnr_db = min_psnr_db
        self.target_z = target_z
        self.target_crop_z = target_crop_z
        self.threshold = threshold
        self._k = 8 * payload_bytes
        # The shortest BCH code (smallest Galois field) that fits the data and t corrections.
        self._bch = BchCode(payload_bytes, bch_t)
        self._n = self._bch.n

        rng = np.random.default_rng(seed)
        f = np.fft.fftfreq(_P, 1.0 / _P).astype(int)
        ky, kx = np.meshgrid(f, f, indexing="ij")
        self._ky, self._kx = ky.ravel(), kx.ravel()
        radius = np.hypot(self._ky, self._kx)
        half = (self._ky > 0) | ((self._ky == 0) & (self._kx > 0))  # one of each conjugate pair
        band = np.flatnonzero(half & (radius >= _KMIN) & (radius <= _KMAX))
        band = band[rng.permutation(band.size)]
        n_sync = int(round(_SYNC_SHARE * band.size))
        self._sync_idx, self._data_idx = band[:n_sync], band[n_sync:]
        if self._data_idx.size < self._n:
            raise InputError("codeword too long for the tile's frequency band")
        n_chips = 2 * self._data_idx.size  # real and imaginary part of each data coefficient
        self._chip_bit = np.arange(n_chips) % self._n
        self._chip_sign = rng.choice(np.array([-1.0, 1.0]), n_chips)
        self._bit_chips = np.bincount(self._chip_bit, minlength=self._n)
        # Sync coefficients get the data coefficients' magnitude (sqrt 2): a flat spectrum over the band.
        self._sync_coef = np.sqrt(2.0) * np.exp(2j * np.pi * rng.random(n_sync))

        # Tile frequencies (x, y) in cycles per tile; a geometry maps them to working-grid FFT bins.
        self._kxy = np.stack([self._kx, self._ky], -1).astype(np.float64)
        self._init_search(radius)
        # Decode attempts the p-value is corrected for (see the module docstring).
        # The identity at both tile scales, then the searched geometries.
        self._n_tests = (_N_GEOMETRIES + 2) * 2**_CHASE_BITS
        # The z at which the p-value reaches the threshold: a decoder can stop at the first codeword beyond it.
        budget = math.log(threshold) - math.log(self._n_tests) - self._k * math.log(2.0)
        self._z_enough = bisect(lambda z: log_tail(z) <= budget, 0.0, 64.0)

    # ----------------------------------------------------------------------------------------------- coding

    def _tile_from(self, idx: np.ndarray, coef: np.ndarray, period: int = _P) -> np.ndarray:
        """The real ``period`` x ``period`` tile whose spectrum holds ``coef`` at ``idx`` (and their conjugates)."""
        q = period
        spec = np.zeros(q * q, complex)
        spec[(self._ky[idx] % q) * q + (self._kx[idx] % q)] = coef
        spec[(-self._ky[idx] % q) * q + (-self._kx[idx] % q)] = np.conj(coef)
        return np.fft.ifft2(spec.reshape(q, q)).real * (q / _P) ** 2

    def _codeword(self, payload: bytes) -> np.ndarray:
        return self._bch.codeword(payload)

    @staticmethod
    def _chips(coef: np.ndarray) -> np.ndarray:
        """Data coefficients as interleaved real / imaginary chips."""
        chips = np.empty(coef.shape[:-1] + (2 * coef.shape[-1],))
        chips[..., 0::2], chips[..., 1::2] = coef.real, coef.imag
        return chips

    def _data_coef(self, bits: np.ndarray) -> np.ndarray:
        chips = self._chip_sign * (2.0 * bits[self._chip_bit] - 1.0)
        return chips[0::2] + 1j * chips[1::2]

    def _p_value(self, z: float) -> float:
        """Union bound over all codewords and decode attempts of the tail of one codeword's z (``coding.log_tail``)."""
        return math.exp(min(0.0, math.log(self._n_tests) + self._k * math.log(2.0) + log_tail(z)))

    # ----------------------------------------------------------------------------------------------- embed

    def _check(self, image: np.ndarray) -> None:
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
            raise InputError(f"image must be a uint8 numpy array, got {getattr(image, 'dtype', type(image))}")
        if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
            raise InputError(f"image must be (H, W) grey or (H, W, 3) RGB, got shape {image.shape}")
        if min(image.shape[:2]) < _MIN_SIDE:
            raise WatermarkError(
                f"image {image.shape[1]}x{image.shape[0]} is too small to watermark: the short side must be "
                f">= {_MIN_SIDE} px"
            )

    def fresh(self) -> TileMarkWatermarker:
        return TileMarkWatermarker(**self._settings)

    def embed(self, image: np.ndarray, payload: bytes) -> np.ndarray:
        """Return a marked copy of ``image`` carrying ``payload``.

        Parameters
        ----------
        image
            uint8 (H, W) or (H, W, 3) RGB, short side >= 128 px.
        payload
            Exactly ``payload_bytes`` bytes.
        """
        self._check(image)
        if not isinstance(payload, bytes | bytearray) or len(payload) != self.payload_bytes:
            raise InputError(f"payload must be {self.payload_bytes} bytes, got {len(payload)!r}")
        work = _to_working(_luma(image))
        code = self._codeword(bytes(payload))
        if min(image.shape[:2]) >= _SMALL_SIDE:
            residual = self._gained_residual(image, work, code, 1)
            marked = self._apply(image, residual)
            # A mark the closed loop made very faint (flat or black images: the clean read is easy, but JPEG
            # removes sub-grey-level detail) is checked after a JPEG 75 round trip and strengthened until it
            # survives or reaches the PSNR floor.
            boost = 1.0
            while cv2.PSNR(image, marked) > _FAINT_PSNR_DB and self._read_p(_jpeg(marked, 75), bytes(payload)) >= 1.0:
                cap = self._psnr_cap(residual) / boost
                if cap <= 1.0:
                    break
                boost *= min(2.0, cap)
                marked = self._apply(image, residual * boost)
            return marked
        # A small image: the half-frequency tile survives compression better on smooth images, the full-frequency
        # one holds more bits under busy texture at the PSNR floor. Mark both ways and keep the one that reads
        # best after a JPEG 75 round trip (then on the marked pixels themselves); the detector tries both scales.
        best, best_key = None, None
        for tile_scale in (2, 1):
            marked = self._embed_at(image, work, code, tile_scale)
            key = tuple(self._read_p(x, bytes(payload)) for x in (_jpeg(marked, 75), marked))
            if best_key is None or key < best_key:
                best, best_key = marked, key
        return best

    def _read_p(self, image: np.ndarray, payload: bytes) -> float:
        found = self.detect(image, screen=False)
        return found.p_value if found.detected and found.payload == payload else 1.0

    def _embed_at(self, image: np.ndarray, work: np.ndarray, code: np.ndarray, tile_scale: int) -> np.ndarray:
        return self._apply(image, self._gained_residual(image, work, code, tile_scale))

    def _gained_residual(self, image: np.ndarray, work: np.ndarray, code: np.ndarray, tile_scale: int) -> np.ndarray:
        residual = self._residual(work, self._data_coef(code), tile_scale)
        return residual * self._closed_loop_gain(work, residual, code, tile_scale, image.shape[:2])

    def _psnr_cap(self, residual: np.ndarray) -> float:
        """The largest scale of ``residual`` (on the working grid) that keeps the PSNR floor."""
        return math.sqrt(255.0**2 / 10.0 ** (self.min_psnr_db / 10.0) / (float(np.mean(residual**2)) + 1e-12))

    @staticmethod
    def _apply(image: np.ndarray, residual: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        # Upsample once, as uint8 with an offset (value * 2 + 128), and add with saturation in one pass: the
        # float work stays on the working grid, which keeps a 4096 px embed within a few full-size passes.
        coded = np.clip(np.rint(residual * _DELTA_SCALE + 128.0), 0, 255).astype(np.uint8)
        if image.ndim == 3:
            coded = cv2.merge([coded, coded, coded])
        interp = cv2.INTER_LINEAR if min(h, w) >= _N else cv2.INTER_AREA
        delta = cv2.resize(coded, (w, h), interpolation=interp)
        return cv2.addWeighted(image, 1.0, delta, 1.0 / _DELTA_SCALE, -128.0 / _DELTA_SCALE, dtype=cv2.CV_8U)

    def _closed_loop_gain(
        self, work: np.ndarray, residual: np.ndarray, code: np.ndarray, tile_scale: int, size: tuple[int, int]
    ) -> float:
        """Scale for the residual that brings the detector's z on the marked working grid to the target, both as is
        and after a simulated centre crop.

        Smooth images read far above the targets and give energy back (higher PSNR); busy textures, whose host
        interference drowns the default strength, get more, down to the PSNR floor. z grows less than linearly
        with the gain (the chip correlation saturates), hence the 1.5 power on each proportional step.
        """
        cap = self._psnr_cap(residual)
        sign = 2.0 * code[self._chip_bit] - 1.0
        side = int(round(_CROP_CHECK * _N))
        lo = (_N - side) // 2
        identity, crop = np.array([float(tile_scale), 0.0]), np.array([tile_scale * _N / side, 0.0])

        def z_at(spec: _Spectrum, geometry: np.ndarray, offset: np.ndarray) -> float:
            chips = self._limit(self._chips_at(spec, geometry, offset))
            return float(np.dot(chips * self._chip_sign, sign)) / (float(np.sqrt(np.sum(chips * chips))) + 1e-12)

        h, w = size

        def at_image_size(grid: np.ndarray) -> np.ndarray:
            """The grid as the detector sees it after the image's own resampling: only an image smaller than the
            grid loses anything (the band's top end near its Nyquist frequency)."""
            if min(h, w) >= _N:
                return grid
            return _to_working(cv2.resize(grid, (w, h), interpolation=cv2.INTER_AREA))

        gain, tried = min(1.0, cap), []
        for _ in range(_GAIN_STEPS):
            # Saturated as the image will be: on black or white areas only one sign of the mark survives.
            marked = at_image_size(np.clip(work + gain * residual, 0.0, 255.0))
            z = z_at(_Spectrum(self._whiten(marked), 1), identity, np.zeros(2))
            cropped = cv2.resize(marked[lo : lo + side, lo : lo + side], (_N, _N), interpolation=cv2.INTER_LINEAR)
            spec = _Spectrum(self._whiten(cropped), 2)
            _, offset = self._sync_peaks(spec, crop[None], coarse=False)
            boost = _SMALL_TARGET if min(h, w) < _N else 1.0
            short = boost * max(self.target_z / max(z, 1.0), self.target_crop_z / max(z_at(spec, crop, offset[0]), 1.0))
            tried.append((gain, short <= 1.0))
            gain = float(np.clip(gain * short**1.5, _MIN_GAIN, cap))
        # The weakest gain that reached both targets, else the strongest tried.
        enough = [g for g, ok in tried if ok]
        return min(enough) if enough else max(g for g, _ in tried)

    def _residual(self, work: np.ndarray, data_coef: np.ndarray, tile_scale: int) -> np.ndarray:
        """The masked, tiled residual on the working grid, with the host's own projection cancelled.

        The detector's view of the unmarked host (whitened, read at the identity geometry) already has some
        component on every sync and data coefficient; that host interference, not the attack, is what limits a
        blind decoder. Since the embedder knows it, it subtracts it from the coefficients it writes (informed
        embedding, in the spirit of Malvar & Florencio's improved spread spectrum), measuring the detector's gain
        per frequency ring by simulating it once, then correcting the leftover error in a second pass.
        """
        idx = np.concatenate([self._sync_idx, self._data_idx])
        coef = np.concatenate([self._sync_coef, data_coef])
        mask = self._mask(work)
        unit = self.strength / float(np.sqrt(np.mean(self._tile_from(idx, coef) ** 2)))
        period = _P * tile_scale
        freq = self._kxy[idx] * (_N / period)

        def residual(c: np.ndarray) -> np.ndarray:
            tile = self._tile_from(idx, c, period)
            return mask * np.tile(tile, (_N // period, _N // period)).astype(np.float32) * unit

        def seen(extra: np.ndarray) -> np.ndarray:
            return _Spectrum(self._whiten(work + extra), 1).sample(freq)

        host = seen(np.zeros_like(work))
        gain_per_coef = ((seen(residual(coef)) - host) * np.conj(coef)).real / np.abs(coef) ** 2
        ring = np.rint(np.hypot(self._kx[idx], self._ky[idx])).astype(int)
        gain = np.bincount(ring, weights=gain_per_coef, minlength=_P) / np.maximum(np.bincount(ring, minlength=_P), 1)
        gain = np.maximum(gain[ring], 1e-3)
        target = coef.copy()
        n_sync = self._sync_idx.size
        for _ in range(2):
            error = (seen(residual(coef)) - gain * target) / gain
            # Sync: cancel the host, it would bias the offset estimate. Data: the decoder sums each bit's chips,
            # so only a bit whose sum falls short of its target gets help, spread evenly over its chips (several
            # times cheaper than cancelling chip by chip); a host that already helps costs nothing.
            coef[:n_sync] -= self.cancel * error[:n_sync]
            want = self._chips(target[n_sync:])
            got = want + self._chips(error[n_sync:])
            margin = np.bincount(self._chip_bit, weights=got * want, minlength=self._n) / self._bit_chips
            boost = np.maximum(0.0, 1.0 - margin)[self._chip_bit] * want
            coef[n_sync:] += boost[0::2] + 1j * boost[1::2]
        return residual(coef)

    def _mask(self, work: np.ndarray) -> np.ndarray:
        """Local contrast of the working grid, floored so flat areas still carry a weak mark."""
        hp = _highpass(work, 1.5)
        activity = np.sqrt(cv2.GaussianBlur(hp * hp, (0, 0), 4.0))
        return np.sqrt(activity * activity + self.floor**2)

    # ----------------------------------------------------------------------------------------------- detect

    def detect(self, image: np.ndarray, *, screen: bool = True) -> WatermarkResult:
        """Decode the watermark, if any.

        ``screen`` skips the geometry search when its float32 pass over the search's starts finds no geometry within
        reach of a detection (``passes_screen``); ``screen=False`` always runs the full search.

        Returns
        -------
        WatermarkResult
            ``detected`` only when a decoded codeword's p-value is below ``threshold``.
        """
        self._check(image)
        best_p, best = 1.0, None
        white = self._whiten(_image_to_working(image))
        for chips in self._candidate_chips(white, _tile_scale(*image.shape[:2]), screen):
            decoded = self._decode(chips)
            if decoded is None:
                continue
            payload, errors, z = decoded
            p = self._p_value(z)
            if p < best_p:
                best_p, best = p, (payload, errors)
            if p < self.threshold:
                break
        detected = best is not None and best_p < self.threshold
        return WatermarkResult(
            detected=detected,
            payload=best[0] if detected else None,
            bit_errors=best[1] if detected else None,
            confidence=1.0 - best_p,
            p_value=best_p,
            algorithm=self.algorithm_id,
        )

    def estimate_payload_bits(self, image: np.ndarray) -> np.ndarray | None:
        """Hard decisions on the payload's systematic bits, before any error correction, at the geometry candidate
        whose chips agree most strongly with some codeword bits (largest soft-bit energy); no detection claim."""
        self._check(image)
        best, best_score = None, -1.0
        for chips in self._candidate_chips(self._whiten(_image_to_working(image)), _tile_scale(*image.shape[:2])):
            chips = self._limit(chips)
            soft = np.bincount(self._chip_bit, weights=chips * self._chip_sign, minlength=self._n)
            score = float(np.sum(soft * soft)) / (float(np.sum(chips * chips)) + 1e-12)
            if score > best_score:
                best, best_score = soft, score
        return (best[: self._k] > 0).astype(np.uint8)

    @staticmethod
    def _whiten(work: np.ndarray) -> np.ndarray:
        """High-pass, then divide by local contrast so texture and edges do not drown the mark elsewhere."""
        hp = _highpass(work, 3.0)
        local = np.sqrt(cv2.GaussianBlur(hp * hp, (0, 0), 6.0))
        return np.clip(hp / (local + 1.0), -3.0, 3.0)

    def _chips_at(self, spec: _Spectrum, geometry: np.ndarray, offset: np.ndarray) -> np.ndarray:
        """Data chips read at one geometry, shifted back by the tile offset."""
        idx = self._data_idx
        vals = spec.sample(self._kxy[idx] @ self._freq_maps(geometry[None])[0].T)
        phase = np.exp(2j * np.pi * (self._ky[idx] * offset[0] + self._kx[idx] * offset[1]) / _P)
        return self._chips(vals * phase)

    def _candidate_chips(self, white: np.ndarray, tile_scale: int, screen: bool = False) -> Iterator[np.ndarray]:
        """Yield the data chips of each geometry candidate: the identity at the tile scale an image of this size is
        marked at, then at the other scale (a small copy of a larger marked image), then the searched ones (none
        when ``screen`` is set and ``_screen`` finds no geometry within reach of the decoder's bound)."""
        spec = _Spectrum(white, 1)
        for scale in (tile_scale, 3 - tile_scale):
            identity = np.array([[float(scale), 0.0]])
            _, offset = self._sync_peaks(spec, identity, coarse=False)
            yield self._chips_at(spec, identity[0], offset[0])
        if screen and not self._screen(_Spectrum(white, 2, packed=True)):
            return
        spec = _Spectrum(white, 2)
        for _, geometry, offset in self._search(spec, False)[:_N_GEOMETRIES]:
            yield self._chips_at(spec, geometry, offset)

    def passes_screen(self, image: np.ndarray) -> bool:
        """Whether ``detect``'s screen lets ``image`` on to the full geometry search."""
        self._check(image)
        return self._screen(_Spectrum(self._whiten(_image_to_working(image)), 2, packed=True))

    @staticmethod
    def _limit(chips: np.ndarray) -> np.ndarray:
        """Soft-limit the chips at _CLIP times their rms: a few chips the host dominates (an edge, a periodic
        texture) would otherwise outweigh many small ones that agree. Any odd function keeps the z bound valid."""
        c = _CLIP * float(np.sqrt(np.mean(chips * chips)))
        return np.clip(chips, -c, c)

    def _soft(self, chips: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """The limited chips times the key's signs, their sums per bit (the soft bits) and the chips' norm."""
        chips = self._limit(chips)
        signed = chips * self._chip_sign
        soft = np.bincount(self._chip_bit, weights=signed, minlength=self._n)
        return signed, soft, float(np.sqrt(np.sum(chips * chips))) + 1e-12

    def _decode(self, chips: np.ndarray) -> tuple[bytes, int, float] | None:
        """Chase-II: BCH-decode the hard bits with every subset of the least reliable bits flipped; keep the
        codeword whose chips correlate best with the read ones. Returns (payload, bits corrected, z)."""
        signed, soft, norm = self._soft(chips)
        # No codeword can score more than every bit agreeing with its read sign: when even that falls short of a
        # detection (the usual case on an unmarked image), skip the decoder. Exact, not a heuristic.
        if float(np.sum(np.abs(soft))) / norm < self._z_enough:
            return None
        return self._bch.chase(
            soft, lambda code: float(np.dot(signed, 2.0 * code[self._chip_bit] - 1.0)) / norm, self._z_enough,
            _CHASE_BITS)
