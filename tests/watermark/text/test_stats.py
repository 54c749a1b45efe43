"""Exact tails: the binomial tail and the tilted-FFT tail of a sum of integer scores."""

from __future__ import annotations

import math

import numpy as np
import pytest

from synthguard.watermark.text.stats import binomial_sf, lattice_sf


def test_binomial_tail_is_exact():
    n, p = 30, 0.3
    for k in (0, 5, 9, 20, 30):
        direct = sum(math.comb(n, j) * p ** j * (1 - p) ** (n - j) for j in range(k, n + 1))
        assert binomial_sf(k, n, p) == pytest.approx(direct, rel=1e-9)
    assert binomial_sf(31, 30, 0.5) == 0.0


def test_lattice_tail_is_exact():
    """The tilted-FFT tail against a direct convolution, from the bulk to tails far below 1e-16, and against the
    binomial tail for a two-point score."""
    pmf = np.array([0.5, 0.0, 0.2, 0.0, 0.0, 0.3])
    n = 40
    dist = np.array([1.0])
    for _ in range(n):
        dist = np.convolve(dist, pmf)
    for s in (0, 50, 80, 120, 150, 190, 200):
        assert lattice_sf(s, n, pmf) == pytest.approx(dist[s:].sum(), rel=1e-7, abs=1e-300)
    assert lattice_sf(201, n, pmf) == 0.0
    for k in (10, 60, 95):
        assert lattice_sf(k, 100, np.array([0.7, 0.3])) == pytest.approx(binomial_sf(k, 100, 0.3), rel=1e-7)
