"""Finding a marked passage inside a longer text: the whole-text test plus a search over windows of scored
positions, with every window tried counted in a union bound so the reported p-value stays valid."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from synthguard.watermark.text.base import TextWatermarker, TextWatermarkResult
from synthguard.watermark.text.stats import lattice_sf


@dataclass(frozen=True)
class WindowSearch:
    """Window lengths (scored positions) for finding a marked passage inside a longer text."""

    lengths: tuple[int, ...] = (50, 100, 200, 400, 800)
    stride_fraction: float = 0.25


def detect_windows(wm: TextWatermarker, ids: Sequence[int] | torch.Tensor, offsets: Sequence[tuple[int, int]] | None,
                   search: WindowSearch | None = None) -> TextWatermarkResult:
    """The whole-text test, plus a search over windows for a marked passage inside unmarked text.

    Every window tried counts in a union bound: the best window's p-value is multiplied by the number of windows
    (whole text included), so the reported p-value stays a valid bound. ``offsets`` (character span of each token)
    turn the best window into a character ``span``.
    """
    search = search or WindowSearch()
    h = wm.hits(ids)
    n = len(h.hits)
    windows = [(0, n)]
    for length in search.lengths:
        if length >= n:
            break
        step = max(1, int(length * search.stride_fraction))
        starts = range(0, n - length + 1, step)
        windows.extend((s, s + length) for s in starts)
    if len(windows) == 1:
        return wm.result_for(int(h.hits.sum()), int(h.scores.sum()), n)
    cum_hits = np.concatenate([[0], np.cumsum(h.hits)])
    cum_scores = np.concatenate([[0], np.cumsum(h.scores)])
    bounds = np.array(windows)
    hits = cum_hits[bounds[:, 1]] - cum_hits[bounds[:, 0]]
    scores = cum_scores[bounds[:, 1]] - cum_scores[bounds[:, 0]]
    positions = bounds[:, 1] - bounds[:, 0]
    pmf, mean, var = wm.null_moments()
    # Rank windows by z, then compute the exact tail for the best few.
    z = (scores - positions * mean) / np.sqrt(positions * var)
    best = None
    for i in np.argsort(-z)[:8]:
        p = lattice_sf(int(scores[i]), int(positions[i]), pmf)
        if best is None or p < best[0]:
            best = (p, int(i))
    _, i = best
    s, e = windows[i]
    span = None
    if offsets is not None and n:
        first_tok, last_tok = int(h.positions[s]), int(h.positions[e - 1])
        span = (int(offsets[first_tok][0]), int(offsets[last_tok][1]))
    # Bonferroni with half the level on the whole text and half spread over the windows.
    result = wm.result_for(int(hits[i]), int(scores[i]), e - s, windows=2 * len(windows), span=span,
                        note=f"best of {len(windows)} windows")
    whole = wm.result_for(int(h.hits.sum()), int(h.scores.sum()), n, windows=2)
    if result.p_value < whole.p_value:
        return result
    if result.detected:
        # The whole text is the stronger test, but the mark is still located: the best window (itself significant
        # after its own correction) gives the span.
        return dataclasses.replace(whole, span=span, note=f"strongest in the best of {len(windows)} windows")
    return whole
