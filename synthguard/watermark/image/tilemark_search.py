"""TileMark's geometry search and its rejection screen (see ``tilemark``'s module docstring for the method).

The detector reads the tile's coefficients straight from the whitened working grid's spectrum (``_Spectrum``) at a
candidate geometry, a 2x2 map of tile frequencies; ``GeometrySearch`` scores geometries by the sync correlation's
peak z-score on the scale and rotation lines and a coarse scale x rotation grid, then refines the best starts.
``_screen`` runs the same starts in float32 (a packed-DFT spectrum, correlations as float32 matrix products) and
tells whether any comes within reach of the decoder's exact bound, at the start itself or, for the coarse grid's
start and line starts near the threshold, after the refine; ``TileMarkWatermarker`` (which mixes this class in)
skips the searched candidates when none does.
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np

from synthguard.core.process import one_blas_thread

_N = 256  # working grid side
_P = 64  # tile period in the working grid; _N / _P tiles per side
# Geometry search. Spatial scale of the tile in the working grid (a crop kept at its size enlarges it: crop to 80 %
# = 1.25) and rotation. A coarse step must keep the low sync frequencies (<= _COARSE_K cycles per tile) within
# about half an FFT bin of their true position; the fine stage then uses every sync frequency.
_COARSE_K = 11
_COARSE_M = 32  # offset grid of the coarse correlation (holds frequencies up to +-15 without aliasing)
_LOG_SCALE_STEP, _ANGLE_STEP = 0.016, math.radians(0.8)
_SCALES = np.exp(np.arange(math.log(0.9), math.log(1.85), _LOG_SCALE_STEP))
_ANGLES = np.arange(-8.0, 8.01, 0.8) * (math.pi / 180.0)
# The edits people actually make are a crop (scale only) or a straightening rotation (angle only): those two lines
# are searched on the full sync set, at a step fine enough for its highest frequency, where a busy image's sync peak
# still stands clear of the search's noise maximum; on the coarse 2-D grid it often does not.
_LINE_SCALES = np.exp(np.arange(math.log(0.9), math.log(1.85), _LOG_SCALE_STEP / 2.0))
_LINE_ANGLES = np.arange(-8.0, 8.01, 0.4) * (math.pi / 180.0)
_SCREEN_MARGIN = 0.25  # the screen passes geometries its float32 search reads this close to the decoder's bound
_REFINE_REACH = 0.5  # the screen refines a line's start only when its own bound is this close to its threshold
_CLIP = 1.0  # chips are soft-limited at this many times their rms before decoding
_CHUNK = 128  # geometries correlated at once: arrays that stay in the cache, several times faster than one batch


def _vertex(left: np.ndarray, mid: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Offsets of parabolas' vertices through three equally spaced samples (0 where not a maximum)."""
    den = left - 2.0 * mid + right
    return np.where(den < 0, np.clip(0.5 * (left - right) / np.where(den < 0, den, -1.0), -0.5, 0.5), 0.0)


def _rotation(angle: np.ndarray) -> np.ndarray:
    cos, sin = np.cos(angle), np.sin(angle)
    return np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)


@functools.cache
def _rings(pad: int) -> tuple[np.ndarray, np.ndarray]:
    """Ring index (radius in bins of the unpadded FFT) of each half-plane bin of the padded FFT, and each ring's
    bin count: fixed per padding, and as costly as the FFT itself, so computed once (the embedder reads several)."""
    q = _N * pad
    fy = np.fft.fftfreq(q, 1.0 / q)[:, None]
    fx = np.arange(q // 2 + 1)[None, :]
    ring = np.rint(np.hypot(fy, fx) / pad).astype(int).ravel()
    return ring, np.maximum(np.bincount(ring), 1)


@functools.cache
def _inverse_dft(m: int, cols: int, reach: int) -> tuple[np.ndarray, np.ndarray]:
    """float32 matrices of numpy's inverse DFTs (``ifft2``'s scaling) of an m x m Hermitian spectrum held only at
    |ky| <= reach and 0 <= kx < cols (kx = 0 both ways), for its half stored as complex64 (kx, ky + reach) rows.

    The first maps a row's interleaved real and imaginary parts along ky to the real, then imaginary, parts of its
    inverse DFT at the m offsets; the second maps, at one offset, the real then imaginary parts over kx to the real
    inverse DFT along kx (kx > 0 counted twice for its conjugate)."""
    ky, y = np.arange(-reach, reach + 1)[:, None], np.arange(m)[None, :]
    angle = 2.0 * np.pi * ky * y / m
    cos, sin = np.cos(angle) / m, np.sin(angle) / m
    along_ky = np.empty((2 * ky.size, 2 * m))
    along_ky[0::2] = np.concatenate([cos, sin], axis=1)  # real part of each ky
    along_ky[1::2] = np.concatenate([-sin, cos], axis=1)  # imaginary part
    k, x = np.arange(cols)[:, None], np.arange(m)[None, :]
    weight = np.where(k == 0, 1.0, 2.0) / m
    angle = 2.0 * np.pi * k * x / m
    along_kx = np.concatenate([weight * np.cos(angle), -weight * np.sin(angle)])
    return along_ky.astype(np.float32), along_kx.astype(np.float32)


def _unpack_ccs(ccs: np.ndarray) -> np.ndarray:
    """The (q, q / 2 + 1) complex64 half-plane of a real q x q DFT from OpenCV's packed (CCS) layout: columns 1 to
    q / 2 - 1 are stored as interleaved real and imaginary parts; columns 0 and q / 2 are each a real signal's
    spectrum packed down the column (rows 1 to q / 2 - 1 in pairs, row q / 2 last, the rest their conjugates)."""
    q = ccs.shape[0]
    h = q // 2
    g = np.empty((q, h + 1), np.complex64)
    g[:, 1:h] = ccs[:, 1 : q - 1].view(np.complex64)
    for col, src in ((0, ccs[:, 0]), (h, ccs[:, q - 1])):
        g[0, col] = src[0]
        g[h, col] = src[q - 1]
        g[1:h, col] = src[1 : q - 1 : 2] + 1j * src[2 : q - 1 : 2]
        g[h + 1 :, col] = np.conj(g[h - 1 : 0 : -1, col])
    return g


class _Spectrum:
    """The whitened working grid's half-plane spectrum, optionally zero-padded, with per-ring power.

    The grid is centred on the origin before the FFT so the spectrum varies slowly between padded bins and
    bilinear interpolation at fractional frequencies is accurate; a shift is absorbed by the offset search.
    """

    def __init__(self, white: np.ndarray, pad: int, packed: bool = False) -> None:
        """``packed`` unpacks OpenCV's packed real DFT instead of asking it for the complex one (about half the
        cost; the same spectrum up to float32 rounding, for the screen)."""
        q = _N * pad
        buf = np.zeros((q, q), np.float32)
        buf[:_N, :_N] = white
        self.pad = pad
        # OpenCV's float32 DFT: several times faster than numpy's float64 FFT, and float32 is ample here.
        centred = np.roll(buf, (-(_N // 2), -(_N // 2)), (0, 1))
        if packed:
            self.g = _unpack_ccs(cv2.dft(centred))
        else:
            half = cv2.dft(centred, flags=cv2.DFT_COMPLEX_OUTPUT)[:, : q // 2 + 1]
            self.g = half[..., 0] + 1j * half[..., 1]
        ring, count = _rings(pad)
        power = self.g.real**2 + self.g.imag**2
        self.ring_rms = np.sqrt(np.bincount(ring, weights=power.ravel()) / count + 1e-12)

    def sample(self, freq: np.ndarray | None, plan: tuple | None = None) -> np.ndarray:
        """Ring-normalised spectrum at frequencies ``freq`` (..., 2) [x, y] in _N FFT bins, or at ``plan``'s."""
        flat, weights, flip, ring = _Spectrum.plan(freq, self.pad) if plan is None else plan
        g = self.g.ravel()
        v = g[flat[0]] * weights[0] + g[flat[1]] * weights[1] + g[flat[2]] * weights[2] + g[flat[3]] * weights[3]
        v = np.where(flip, np.conj(v), v)
        return v / self.ring_rms[ring].astype(v.real.dtype)

    @staticmethod
    def plan(freq: np.ndarray, pad: int) -> tuple:
        """Where ``sample`` reads: 4 neighbouring bins (flat indices), their weights, other half-plane or not, ring."""
        x, y = freq[..., 0] * pad, freq[..., 1] * pad
        flip = x < 0
        x, y = np.where(flip, -x, x), np.where(flip, -y, y)
        x0, y0 = np.floor(x), np.floor(y)
        fx, fy = x - x0, y - y0
        x0, y0 = x0.astype(int), y0.astype(int)
        q = _N * pad
        r0, r1 = (y0 % q) * (q // 2 + 1), ((y0 + 1) % q) * (q // 2 + 1)
        flat = (r0 + x0, r0 + x0 + 1, r1 + x0, r1 + x0 + 1)
        weights = ((1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy)
        ring = np.minimum(np.rint(np.hypot(x, y) / pad).astype(int), _rings(pad)[1].size - 1)
        return flat, weights, flip, ring


class GeometrySearch:
    """The geometry search of ``TileMarkWatermarker`` (mixed in): it reads the tile layout the watermarker's
    ``__init__`` sets (``_kx``, ``_ky``, ``_kxy``, ``_sync_idx``, ``_sync_coef``, ``_data_idx``) and its ``_chips_at``
    and ``_soft``, and ``_init_search`` builds the fixed grids and their sampling plans."""

    def _init_search(self, radius: np.ndarray) -> None:
        """The coarse sync subset, the two fixed geometry grids and where the padded spectrum is read for them;
        ``radius`` is each tile frequency's radius in cycles per tile."""
        self._coarse = radius[self._sync_idx] <= _COARSE_K
        scale, angle = np.meshgrid(_SCALES, _ANGLES, indexing="ij")
        self._coarse_grid = np.stack([scale.ravel(), angle.ravel()], -1)
        scale_line = np.stack([_LINE_SCALES, np.zeros_like(_LINE_SCALES)], -1)
        angle_line = np.stack([np.ones_like(_LINE_ANGLES), _LINE_ANGLES], -1)
        self._line_grid = np.concatenate([scale_line, angle_line])
        # Where the padded spectrum is read for the sync coefficients at each geometry of the two fixed grids.
        self._plans = {c: _Spectrum.plan(self._kxy[self._sync_idx[self._coarse if c else slice(None)]] @ np.swapaxes(
            self._freq_maps(g), 1, 2), 2) for c, g in ((False, self._line_grid), (True, self._coarse_grid))}
        # The same in float32 for the float32 search (``fast``), and the sync phases' conjugates in complex64.
        self._plans32 = {c: (flat, tuple(w.astype(np.float32) for w in weights), flip, ring)
                         for c, (flat, weights, flip, ring) in self._plans.items()}
        self._sync_conj32 = np.conj(self._sync_coef).astype(np.complex64)

    def _freq_maps(self, geometry: np.ndarray) -> np.ndarray:
        """(scale, angle) rows -> 2x2 maps from tile frequency (cycles per tile) to working-grid FFT bins."""
        return _rotation(geometry[:, 1]) * ((_N / _P) / geometry[:, 0])[:, None, None]

    def _sync_peaks(self, spec: _Spectrum, geometry: np.ndarray, coarse: bool, fast: bool = False,
                    offsets: bool = True) -> tuple:
        """Sync correlation z-score and cyclic offset (dy, dx in tile pixels) for each (scale, angle) row; the
        offsets are None when ``offsets`` is false (the z-scores are the same)."""
        sel = self._coarse if coarse else slice(None)
        plan = None
        if geometry is (self._coarse_grid if coarse else self._line_grid):
            plan = (self._plans32 if fast else self._plans)[coarse]
        freq = None if plan else self._kxy[self._sync_idx[sel]] @ np.swapaxes(self._freq_maps(geometry), 1, 2)
        prod = spec.sample(freq, plan) * (self._sync_conj32 if fast else np.conj(self._sync_coef))[sel]
        parts = [self._correlate(prod[i : i + _CHUNK], self._sync_idx[sel], coarse, fast, offsets)
                 for i in range(0, len(prod), _CHUNK)]
        return np.concatenate([z for z, _ in parts]), np.concatenate([o for _, o in parts]) if offsets else None

    def _correlate(self, prod: np.ndarray, idx: np.ndarray, coarse: bool, fast: bool, with_offsets: bool) -> tuple:
        """Peak z-score and offset of the correlation of each row of products; ``fast`` in float32 (see below)."""
        m = _COARSE_M if coarse else _P
        # The correlation is the real part of the inverse FFT: with each coefficient's conjugate placed at the
        # opposite frequency the grid is Hermitian and a real inverse FFT on its half gives it at half the cost.
        kx, ky = self._kx[idx], self._ky[idx]
        if fast:
            # Only the half is filled (kx < 0 as its conjugate, kx = 0 both ways), transposed (kx, ky), on the few
            # frequencies the set holds (|kx| < cols, |ky| <= reach; the rest of the spectrum is zero). The inverse
            # DFT along ky, then the real one along kx, are each one float32 matrix product with their cosines and
            # sines: on so few nonzero inputs, cheaper than batches of short FFTs.
            cols, reach = int(np.abs(kx).max()) + 1, int(np.abs(ky).max())
            n = prod.shape[0]
            grid = np.zeros((n, cols, 2 * reach + 1), np.complex64)
            grid[:, np.abs(kx), np.where(kx < 0, -ky, ky) + reach] = np.where(kx < 0, np.conj(prod), prod)
            grid[:, 0, reach - ky[kx == 0]] = np.conj(prod[:, kx == 0])
            along_ky, along_kx = _inverse_dft(m, cols, reach)
            half = grid.view(np.float32).reshape(n * cols, -1) @ along_ky  # (n cols, [real | imag] x m rows)
            rows = half.reshape(n, cols, 2, m).transpose(0, 3, 2, 1).reshape(n * m, 2 * cols)
            corr = (rows @ along_kx).reshape(n, -1)
        else:
            grid = np.zeros((prod.shape[0], m, m), complex)
            grid[:, ky % m, kx % m] = prod
            grid[:, -ky % m, -kx % m] = np.conj(prod)
            corr = np.fft.irfft2(grid[:, :, : m // 2 + 1], s=(m, m)).reshape(prod.shape[0], -1)
        peak = np.argmax(corr, axis=1)
        rms = np.sqrt(2.0 * np.sum(prod.real**2 + prod.imag**2, axis=1)) / (m * m) if fast else corr.std(axis=1)
        z = corr[np.arange(corr.shape[0]), peak] / (rms + 1e-12)
        if not with_offsets:
            return z, None
        offsets = np.stack([peak // m, peak % m], -1).astype(np.float64) * (_P / m)
        if not coarse:  # sub-pixel offset from the correlation's neighbours
            cg, r, c = corr.reshape(-1, m, m), peak // m, peak % m
            g = np.arange(cg.shape[0])
            offsets[:, 0] += _vertex(cg[g, (r - 1) % m, c], cg[g, r, c], cg[g, (r + 1) % m, c])
            offsets[:, 1] += _vertex(cg[g, r, (c - 1) % m], cg[g, r, c], cg[g, r, (c + 1) % m])
        return z, offsets

    def _search(self, spec: _Spectrum, fast: bool) -> list[tuple[float, np.ndarray, np.ndarray]]:
        """The refined starts (z, geometry, offset), best first: the scale and rotation lines' peaks and the coarse
        grid's, each refined on the full sync set so all compare on one score."""
        return sorted(self._refine(spec, self._starts(spec, fast)[0], fast), key=lambda t: -t[0])

    def _starts(self, spec: _Spectrum, fast: bool) -> tuple[np.ndarray, int]:
        """(scale, angle) rows the refine starts from: the scale and rotation lines' peaks, then the coarse grid's;
        and how many of them are the lines'."""
        line_z, _ = self._sync_peaks(spec, self._line_grid, False, fast, offsets=False)
        starts = [self._line_grid[i] for i in self._peaks(line_z, [_LINE_SCALES.size, _LINE_ANGLES.size], 4, 2)]
        coarse_z, _ = self._sync_peaks(spec, self._coarse_grid, True, fast, offsets=False)
        n_line = len(starts)
        starts += [self._coarse_grid[i] for i in self._peaks(coarse_z, [coarse_z.size], 2, 1, _ANGLES.size)]
        return np.array(starts), n_line

    def _bounds(self, spec: _Spectrum, geometry: np.ndarray, offset: np.ndarray) -> np.ndarray:
        """The decoder's bound at each (scale, angle) row and its offset: the z of a codeword agreeing with every
        read bit's sign (``_decode``'s test, on ``_chips_at``'s chips, all rows in one pass)."""
        idx = self._data_idx
        vals = spec.sample(self._kxy[idx] @ np.swapaxes(self._freq_maps(geometry), 1, 2))
        phase = np.exp(2j * np.pi * (self._ky[idx] * offset[:, :1] + self._kx[idx] * offset[:, 1:]) / _P)
        chips = self._chips(vals * phase)
        c = _CLIP * np.sqrt(np.mean(chips * chips, axis=1, keepdims=True))
        chips = np.clip(chips, -c, c)
        # Chip i carries bit i mod n: padded to whole rounds of n, each bit's sum is a sum over rounds.
        n = self._n
        signed = np.zeros((chips.shape[0], -(-chips.shape[1] // n) * n))
        signed[:, : chips.shape[1]] = chips * self._chip_sign
        soft = signed.reshape(chips.shape[0], -1, n).sum(axis=1)
        return np.abs(soft).sum(axis=1) / (np.sqrt(np.sum(chips * chips, axis=1)) + 1e-12)

    def _screen(self, spec: _Spectrum) -> bool:
        """Whether the float32 search finds a geometry within _SCREEN_MARGIN of the decoder's bound.

        The bound is read first at each start itself (at its offset on the full sync set): a start there already
        passes the image. Then the coarse grid's starts (up to half a coarse step off in both scale and angle) are
        refined, and the lines' starts only where their bound comes within _REFINE_REACH of the threshold; the
        image passes when one of them does after the refine."""
        # The float32 correlations are small matrix products: BLAS threads only contend for them (and stall badly
        # on a busy machine), so the screen holds BLAS to one thread.
        with one_blas_thread():
            return self._screen_single(spec)

    def _screen_single(self, spec: _Spectrum) -> bool:
        """``_screen``'s test, on the BLAS threads in force."""
        enough = self._z_enough - _SCREEN_MARGIN
        starts, n_line = self._starts(spec, True)
        _, offsets = self._sync_peaks(spec, starts, False, True)
        bounds = self._bounds(spec, starts, offsets)
        if bounds.max() >= enough:
            return True
        near = bounds >= enough - _REFINE_REACH
        near[n_line:] = True
        refined = self._refine(spec, starts[near], True)
        return bool(self._bounds(spec, np.array([g for _, g, _ in refined]), np.array([o for _, _, o in refined])).max()
                    >= enough)

    @staticmethod
    def _peaks(z: np.ndarray, sizes: list[int], radius: int, count: int, width: int = 0) -> list[int]:
        """Indices of the ``count`` highest scores of each consecutive segment of ``sizes``, each suppressing its
        neighbours within ``radius`` steps (in a 2-D segment of rows ``width`` long, along both axes)."""
        out: list[int] = []
        start = 0
        for size in sizes:
            seg = z[start : start + size]
            taken = np.zeros(size, bool)
            picked = 0
            for i in np.argsort(seg)[::-1]:
                if taken[i]:
                    continue
                if width:
                    r, c = divmod(int(i), width)
                    rows = np.arange(max(r - radius, 0), min(r + radius + 1, size // width))
                    cols = np.arange(max(c - radius, 0), min(c + radius + 1, width))
                    taken[(rows[:, None] * width + cols[None, :]).ravel()] = True
                else:
                    taken[max(i - radius, 0) : i + radius + 1] = True
                out.append(start + int(i))
                picked += 1
                if picked == count:
                    break
            start += size
        return out

    def _refine(self, spec: _Spectrum, starts: np.ndarray, fast: bool) -> list[tuple[float, np.ndarray, np.ndarray]]:
        """Two rounds of a 5x5 local search around each (scale, angle) start on the full sync set, each at half the
        previous step; (z, geometry, offset) per start."""
        step = np.array([math.exp(_LOG_SCALE_STEP) - 1.0, _ANGLE_STEP])
        rows, d, geometry = np.arange(starts.shape[0]), np.arange(-2, 3), starts
        for _ in range(2):
            step = step / 2.0
            ds, da = np.meshgrid(d * step[0], d * step[1], indexing="ij")
            grid = np.stack([geometry[:, :1] * (1.0 + ds.ravel()), geometry[:, 1:] + da.ravel()], -1)
            zs, offsets = self._sync_peaks(spec, grid.reshape(-1, 2), False, fast)
            best = rows * d.size**2 + np.argmax(zs.reshape(rows.size, -1), axis=1)
            z, geometry, offset = zs[best], grid.reshape(-1, 2)[best], offsets[best]
        return [(float(z[i]), geometry[i], offset[i]) for i in rows]
