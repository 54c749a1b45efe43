"""Exact tail probabilities for the text watermarks' one-sided tests: the binomial tail, and the tail of a sum of
i.i.d. integer scores (``lattice_sf``), computed by FFT after exponential tilting so that tails far below 1e-16
come out right."""

from __future__ import annotations

import math

import numpy as np
import torch


def binomial_sf(k: int, n: int, p: float) -> float:
    """P[Binomial(n, p) >= k], exact (log-space sum of the pmf)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    ks = torch.arange(k, n + 1, dtype=torch.float64)
    n_t = torch.tensor(float(n), dtype=torch.float64)
    logpmf = (torch.lgamma(n_t + 1) - torch.lgamma(ks + 1) - torch.lgamma(n_t - ks + 1)
              + ks * math.log(p) + (n_t - ks) * math.log1p(-p))
    return float(min(1.0, torch.logsumexp(logpmf, 0).exp()))


# Above this many lattice points the n-fold convolution is not formed and the Chernoff bound (never below the exact
# tail, so the p-value stays valid) is reported instead: long texts, where the test has power to spare.
MAX_FFT_POINTS = 1 << 22


def lattice_sf(s: int, n: int, pmf: np.ndarray) -> float:
    """P[X_1 + ... + X_n >= s] for i.i.d. X_i on 0..W with probabilities ``pmf``, exact up to rounding.

    The n-fold convolution is taken by FFT after exponential tilting: the X_i are reweighted by exp(lam * x) so that
    their sum is centred on ``s``, where the FFT is accurate, and the tail is weighted back, so tails far below
    1e-16 come out right. Past ``MAX_FFT_POINTS`` it returns the Chernoff bound exp(n log M(lam) - lam s) (an upper
    bound)."""
    pmf = np.asarray(pmf, np.float64)
    width = len(pmf) - 1
    if s <= 0:
        return 1.0
    if n <= 0 or s > n * width:
        return 0.0
    k = np.arange(width + 1)
    with np.errstate(divide="ignore"):
        logf = np.log(pmf)
    target = s / n
    lam = 0.0
    if target > float(pmf @ k):
        if target >= width:
            return float(math.exp(n * logf[width]))

        def tilted_mean(lam_: float) -> float:
            a = logf + lam_ * k
            e = np.exp(a - a.max())
            return float(e @ k / e.sum())

        low, high = 0.0, 1.0
        while tilted_mean(high) < target:
            high *= 2
        for _ in range(100):
            mid = (low + high) / 2
            low, high = (mid, high) if tilted_mean(mid) < target else (low, mid)
        lam = low
    a = logf + lam * k
    finite = np.isfinite(a)
    log_m = float(a[finite].max() + np.log(np.exp(a[finite] - a[finite].max()).sum()))
    log_chernoff = n * log_m - lam * s
    size = n * width + 1
    if size > MAX_FFT_POINTS:
        return float(min(1.0, math.exp(log_chernoff)))
    tilted = np.exp(a - log_m)
    points = 1 << (size - 1).bit_length()
    dist = np.clip(np.fft.irfft(np.fft.rfft(tilted, points) ** n, points)[:size], 0, None)
    tail = float((dist[s:] * np.exp(-lam * (np.arange(s, size) - s))).sum())
    if tail <= 0:
        return 0.0
    return float(min(1.0, math.exp(log_chernoff + math.log(tail))))
