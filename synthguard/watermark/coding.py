"""Coding pieces shared by SynthGuard's image and audio watermarks: the Rademacher tail bound behind their p-values,
a monotone bisection, and a binary BCH code with Chase-II soft decoding.

Significance: when a mark's chip signs are a key's pseudo-random signs and the values read do not depend on them,
the normalised correlation of the read values with any one codeword is a Rademacher sum ``sum a_i e_i`` with
``sum a_i^2 = 1``; ``log_tail`` bounds its upper tail, whatever the content. A detector takes the union bound over
all 2^k codewords (which covers whichever one the decoder picks) times its decode attempts.

Chase-II (Chase 1972): BCH-decode the hard decisions with every subset of the ``chase_bits`` least reliable bits
flipped and keep the decoded codeword the caller's score likes best. BCH by the ``bchlib`` package.

Ordered-statistics decoding (Fossorier & Lin 1995): take the k most reliable linearly independent positions (the
most reliable basis), re-encode their hard decisions with every pattern of at most ``order`` of them flipped, and
keep the codeword with the largest correlation with the soft values. It uses every bit's reliability, and corrects
any number of errors outside the basis. Neither decoder changes a detector's union bound: every codeword it
returns is one of the 2^k the bound already covers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import combinations

import bchlib
import numpy as np

from synthguard.errors import InputError

__all__ = ["BchCode", "bisect", "log_tail"]


def log_tail(z: float) -> float:
    """log of an upper bound on P(sum a_i e_i >= z) for independent Rademacher signs e_i and sum a_i^2 = 1.

    The smaller of Hoeffding's exp(-z^2 / 2) and Pinelis' (1994) 2e^3/9 * P(N(0,1) >= z), the Gaussian tail in turn
    bounded by phi(z) / z (Mills' ratio): smaller by the factor sqrt(2 pi) z / (2e^3/9), about 5.6 at z = 10, where
    decisions are made.
    """
    z = max(z, 0.0)
    hoeffding = -0.5 * z * z
    if z <= 1.0:
        return hoeffding
    pinelis = math.log(2.0 * math.e**3 / 9.0) - 0.5 * z * z - math.log(z) - 0.5 * math.log(2.0 * math.pi)
    return min(hoeffding, pinelis)


def bisect(ok: Callable[[float], bool], lo: float, hi: float) -> float:
    """The smallest x in [lo, hi] with ok(x), for a monotone predicate (false below, true above)."""
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi


class BchCode:
    """The shortest binary BCH code (smallest Galois field, m from 5 to 10) carrying ``payload_bytes`` data bytes
    and correcting ``t`` bit errors; codewords are bit arrays, data bits first (most significant bit of each byte
    first), then the parity bits.

    The ``bchlib`` codec holds per-call state: one instance per thread.
    """

    def __init__(self, payload_bytes: int, t: int) -> None:
        self.payload_bytes = payload_bytes
        self.k = 8 * payload_bytes
        m = next((m for m in range(5, 11) if self.k + m * t < 2**m), None)
        if m is None:
            raise InputError(f"payload of {payload_bytes} bytes with t={t} does not fit a BCH code up to m=10")
        self._bch = bchlib.BCH(t, m=m)
        self.t = t
        self.ecc_bits = self._bch.ecc_bits
        self.ecc_bytes = self._bch.ecc_bytes
        self.n = self.k + self.ecc_bits
        self._generator: np.ndarray | None = None
        self._flip_sets: dict[int, np.ndarray] = {}

    def codeword(self, payload: bytes) -> np.ndarray:
        """The ``n`` codeword bits (uint8 0/1) of ``payload`` (exactly ``payload_bytes`` bytes)."""
        ecc = self._bch.encode(payload)
        bits = np.unpackbits(np.frombuffer(payload + bytes(ecc), np.uint8))
        return bits[: self.n]

    def chase(self, soft: np.ndarray, score: Callable[[np.ndarray], float], enough: float,
              chase_bits: int) -> tuple[bytes, int, float] | None:
        """Chase-II decoding of ``n`` soft bits (positive reads as 1).

        Every subset of the ``chase_bits`` least reliable hard decisions is flipped and BCH-decoded; each distinct
        decoded payload's codeword is scored by ``score(codeword bits)``, and the search stops at the first score
        reaching ``enough``. Returns (payload, codeword bits differing from the hard decisions, best score), or None
        when no test pattern decodes.
        """
        hard = (soft > 0).astype(np.uint8)
        weak = np.argsort(np.abs(soft))[:chase_bits]
        nbytes = self.payload_bytes
        pad = np.zeros(8 * (nbytes + self.ecc_bytes) - self.n, np.uint8)
        best: tuple[bytes, int, float] | None = None
        tried: set[bytes] = set()
        for pattern in range(2**chase_bits):
            trial = hard.copy()
            flips = weak[[b for b in range(chase_bits) if pattern >> b & 1]]
            trial[flips] ^= 1
            packed = np.packbits(np.concatenate([trial, pad]))
            data, ecc = bytearray(packed[:nbytes].tobytes()), bytearray(packed[nbytes:].tobytes())
            if self._bch.decode(data, ecc) < 0:
                continue
            self._bch.correct(data, ecc)
            payload = bytes(data)
            if payload in tried:
                continue
            tried.add(payload)
            code = self.codeword(payload)
            z = score(code)
            if best is None or z > best[2]:
                best = (payload, int(np.count_nonzero(code != hard)), z)
            if z >= enough:
                break
        return best

    def generator(self) -> np.ndarray:
        """The (k, n) uint8 generator matrix: row i is the codeword of the payload with only bit i set (the code is
        linear, so a payload's codeword is the GF(2) sum of the rows of its set bits)."""
        if self._generator is None:
            rows = []
            for i in range(self.k):
                unit = np.zeros(self.k, np.uint8)
                unit[i] = 1
                rows.append(self.codeword(np.packbits(unit).tobytes()))
            self._generator = np.array(rows, np.uint8)
        return self._generator

    def _flips(self, order: int) -> np.ndarray:
        """Every (k,) pattern of at most ``order`` ones, the empty pattern first."""
        if order not in self._flip_sets:
            rows = [()] + [combo for r in range(1, order + 1) for combo in combinations(range(self.k), r)]
            flips = np.zeros((len(rows), self.k), np.uint8)
            for i, combo in enumerate(rows):
                flips[i, list(combo)] = 1
            self._flip_sets[order] = flips
        return self._flip_sets[order]

    def osd(self, soft: np.ndarray, order: int) -> tuple[bytes, int, float]:
        """Ordered-statistics decoding of ``n`` soft bits (positive reads as 1) up to ``order`` flips in the most
        reliable basis. Returns (payload, codeword bits differing from the hard decisions, correlation
        ``sum soft * (2 c - 1)`` of the chosen codeword c): the best-correlated of the candidates tried."""
        soft = np.asarray(soft, np.float64)
        if soft.shape != (self.n,):
            raise InputError(f"OSD needs {self.n} soft values, got shape {soft.shape}")
        order_pos = np.argsort(-np.abs(soft), kind="stable")
        g = self.generator()[:, order_pos].copy()
        basis: list[int] = []
        row = 0
        for col in range(self.n):
            if row == self.k:
                break
            pivots = np.flatnonzero(g[row:, col]) + row
            if pivots.size == 0:
                continue
            pivot = int(pivots[0])
            if pivot != row:
                g[[row, pivot]] = g[[pivot, row]]
            others = np.flatnonzero(g[:, col])
            others = others[others != row]
            g[others] ^= g[row]
            basis.append(col)
            row += 1
        hard = (soft[order_pos] > 0).astype(np.uint8)
        info = hard[basis]
        trials = self._flips(order) ^ info
        words = (trials.astype(np.int32) @ g.astype(np.int32)) & 1  # codewords in reliability order
        scores = (2.0 * words - 1.0) @ soft[order_pos]
        best = int(np.argmax(scores))
        code = np.empty(self.n, np.uint8)
        code[order_pos] = words[best]
        payload = np.packbits(code[: self.k]).tobytes()
        return payload, int(np.count_nonzero(code != (soft > 0))), float(scores[best])
