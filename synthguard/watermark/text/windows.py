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
    # (start, end) of every window tried, the whole text first.
    parts = [np.array([[0, n]], np.int64)]
    for length in search.lengths:
        if length >= n:
            break
        step = max(1, int(length * search.stride_fraction))
        starts = np.arange(0, n - length + 1, step, dtype=np.int64)
        parts.append(np.stack([starts, starts + length], axis=1))
    if len(parts) == 1:
        return wm.result_for(int(h.hits.sum()), int(h.scores.sum()), n)
    cum_hits = np.concatenate([[0], np.cumsum(h.hits)])
    cum_scores = np.concatenate([[0], np.cumsum(h.scores)])
    bounds = np.concatenate(parts)
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
    s, e = int(bounds[i, 0]), int(bounds[i, 1])
    span = None
    if offsets is not None and n:
        first_tok, last_tok = int(h.positions[s]), int(h.positions[e - 1])
        span = (int(offsets[first_tok][0]), int(offsets[last_tok][1]))
    # Bonferroni with half the level on the whole text and half spread over the windows.
    result = wm.result_for(int(hits[i]), int(scores[i]), e - s, windows=2 * len(bounds), span=span,
                        note=f"best of {len(bounds)} windows")
    whole = wm.result_for(int(h.hits.sum()), int(h.scores.sum()), n, windows=2)
    if result.p_value < whole.p_value:
        return result
    if result.detected:
        # The whole text is the stronger test, but the mark is still located: the best window (itself significant
        # after its own correction) gives the span.
        return dataclasses.replace(whole, span=span, note=f"strongest in the best of {len(bounds)} windows")
    return whole


# Reading a text's tokens in windows of characters: memory bounded by the window, not the text.
WINDOW_CHARS = 1 << 16
OVERLAP_CHARS = 1 << 12
MAX_OVERLAP_CHARS = 1 << 18
# Tokens this close to a window's cut are not trusted; two windows must agree on this many tokens in a row.
GUARD_CHARS = 64
AGREE_TOKENS = 8


@dataclass(frozen=True)
class TokenPrefix:
    """The first tokens of a text, as tokenising the whole text gives them, read window by window."""

    ids: np.ndarray  # int64 token ids
    offsets: np.ndarray | None  # (tokens, 2) int64 character spans in the text; None when the tokenizer has none
    chars: int | None  # the text before this character was tokenised into ``ids`` (None: not known)
    text_chars: int
    complete: bool  # ``ids`` are all the text's tokens
    unverified_joins: int = 0  # window joins where two windows did not agree: tokens there may differ

    def __len__(self) -> int:
        return len(self.ids)

    def describe_cut(self) -> str | None:
        """The note a result carries when not all of the text was tested (None when it was)."""
        if self.complete:
            return None
        where = "" if self.chars is None else f" (the first {self.chars} of {self.text_chars} characters)"
        return f"only the first {len(self.ids)} tokens{where} were tested; the rest of the text was not tested"


def _encode_window(tm, text: str, left: int, right: int) -> tuple[np.ndarray, np.ndarray] | None:
    ids, offsets = tm.encode_with_offsets(text[left:right])
    if offsets is None:
        return None
    off = np.asarray(offsets, np.int64).reshape(-1, 2) + left
    return np.asarray(ids, np.int64).reshape(-1), off


def _clean(off: np.ndarray) -> np.ndarray:
    """Tokens that begin new characters (the later pieces of a character split into bytes share its span)."""
    clean = np.ones(len(off), bool)
    clean[1:] = off[1:, 0] >= off[:-1, 1]
    return clean


def _agreement(p: tuple[np.ndarray, np.ndarray], c: tuple[np.ndarray, np.ndarray], lo: int) -> tuple[int, int] | None:
    """The first token ``i`` of window ``p`` starting at or after character ``lo`` from which ``AGREE_TOKENS``
    tokens equal (ids and spans) those of the later window ``c`` from its token ``j``: ``(i, j)``, or None."""
    (p_ids, p_off), (c_ids, c_off) = p, c
    c_starts, c_clean = c_off[:, 0], _clean(c_off)
    for i in np.flatnonzero(_clean(p_off) & (p_off[:, 0] >= lo)):
        if i + AGREE_TOKENS > len(p_ids):
            break
        j = int(np.searchsorted(c_starts, p_off[i, 0], "left"))
        if j + AGREE_TOKENS > len(c_ids) or c_starts[j] != p_off[i, 0] or not c_clean[j]:
            continue
        if (np.array_equal(p_ids[i:i + AGREE_TOKENS], c_ids[j:j + AGREE_TOKENS])
                and np.array_equal(p_off[i:i + AGREE_TOKENS], c_off[j:j + AGREE_TOKENS])):
            return int(i), j
    return None


def encode_prefix(tm, text: str, max_tokens: int, *, window_chars: int = WINDOW_CHARS) -> TokenPrefix:
    """The first ``max_tokens`` tokens of ``text`` under ``tm``'s tokenizer, equal to the first tokens of the whole
    text's tokenisation, read in windows of ``window_chars`` characters so memory does not grow with the text.

    Consecutive windows overlap; the join is where both windows give the same tokens for ``AGREE_TOKENS`` tokens
    in a row, away from either cut (the overlap grows when a long run, such as whitespace, spans it). A tokenizer
    without character offsets is given growing prefixes of the text instead (doubling until enough tokens)."""
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be positive, got {max_tokens}")
    n = len(text)
    first = _encode_window(tm, text, 0, min(n, window_chars))
    if first is None:
        return _encode_growing_prefix(tm, text, max_tokens, window_chars)
    ids_parts, off_parts, have, unverified = [], [], 0, 0
    cur, right = first, min(n, window_chars)
    # Stop once the tokens before the last window's unsettled end are more than wanted.
    while right < n and have + int((cur[1][:, 1] <= right - OVERLAP_CHARS).sum()) <= max_tokens:
        overlap = OVERLAP_CHARS
        while True:
            start = int(cur[1][0, 0]) if len(cur[0]) else right
            left = max(start, right - overlap)
            nxt_right = min(n, max(left + window_chars, right + overlap))
            nxt = _encode_window(tm, text, left, nxt_right)
            found = _agreement(cur, nxt, left + GUARD_CHARS)
            if found is not None or overlap >= MAX_OVERLAP_CHARS or left == start:
                break
            overlap *= 2
        if found is None:
            # No agreement within the largest overlap: keep the tokens well before the cut and start afresh.
            unverified += 1
            keep = np.flatnonzero(_clean(cur[1]) & (cur[1][:, 0] <= right - overlap // 2))
            i = int(keep[-1]) if len(keep) and keep[-1] > 0 else len(cur[0])
            restart = int(cur[1][i, 0]) if i < len(cur[0]) else right
            nxt_right = min(n, restart + window_chars)
            nxt = _encode_window(tm, text, restart, nxt_right)
            j = 0
        else:
            i, j = found
        ids_parts.append(cur[0][:i])
        off_parts.append(cur[1][:i])
        have += i
        cur, right = (nxt[0][j:], nxt[1][j:]), nxt_right
    ids_parts.append(cur[0])
    off_parts.append(cur[1])
    ids, off = np.concatenate(ids_parts), np.concatenate(off_parts)
    complete = right >= n and len(ids) <= max_tokens
    ids, off = ids[:max_tokens], off[:max_tokens]
    chars = n if complete else int(off[-1, 1])
    return TokenPrefix(ids, off, chars, n, complete, unverified)


def _encode_growing_prefix(tm, text: str, max_tokens: int, size: int) -> TokenPrefix:
    """Tokens of doubling prefixes of ``text`` until ``max_tokens`` plus a margin are there or the text ends."""
    n = len(text)
    while True:
        ids = np.asarray(tm.encode(text[:size]), np.int64).reshape(-1)
        if size >= n or len(ids) > max_tokens + AGREE_TOKENS * 8:
            break
        size *= 2
    complete = size >= n and len(ids) <= max_tokens
    return TokenPrefix(ids[:max_tokens], None, n if complete else None, n, complete, 0 if size >= n else 1)
