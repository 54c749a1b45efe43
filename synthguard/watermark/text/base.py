"""The interface of SynthGuard's statistical text watermarks (``TextWatermarker``) and what a test of a text returns.

A scheme marks text while it is generated, through a transformers ``LogitsProcessor``, and is detected from token
ids alone (text is re-tokenised with the generating model's tokenizer) by a one-sided exact test on the sum of
per-position scores, whose null distribution is computed exactly (``stats.lattice_sf``).

Scored positions. Only the first occurrence of each context (the ``context`` tokens before the position) counts:
repeated n-grams (boilerplate, refrains, copied lists) would otherwise repeat the same pseudo-random bits and inflate
the score; generation leaves repeated contexts unmarked for the same reason.

Key-dependent offset. For one fixed key, the bits of the commonest contexts of human language ("of the", ", and")
are fixed, so a key's null mean drifts a little from the nominal one. ``calibrate`` measures that drift on human
reference text (as the rate that gives the measured mean score) and detection then tests against the calibrated
null rate ``p0`` (the measured rate plus three standard errors, never below the nominal one): the stated p-value
stays honest for the key in use.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from synthguard.errors import InputError
from synthguard.watermark.text.keys import accumulate_hash, key_id
from synthguard.watermark.text.stats import lattice_sf

# Detection threshold: a text is "detected" when its p-value is at most this.
DEFAULT_MAX_P_VALUE = 1e-3


@dataclass(frozen=True)
class TextWatermarkResult:
    """What one test of a text found.

    ``score`` is the observed rate of hits (g-value ones, green tokens) over ``trials``; ``z`` the standard score of
    the test statistic (the sum of the per-position scores, see ``TextWatermarker.score_table``) under the null rate
    ``null_rate``; ``p_value`` the exact tail probability of a statistic this high in unmarked text (times the
    number of windows tried, for a windowed search); ``detected`` is ``p_value <=
    max_p_value``. ``span`` is the character range of the best window when a search over windows was made.
    """

    detected: bool
    algorithm: str
    key_id: str
    p_value: float
    z: float
    score: float
    null_rate: float
    tokens_scored: int
    trials: int
    max_p_value: float
    span: tuple[int, int] | None = None
    windows_tested: int = 1
    note: str | None = None

    def to_dict(self) -> dict:
        data = asdict(self)
        data["span"] = list(self.span) if self.span else None
        return data


@dataclass(frozen=True)
class KeyCalibration:
    """A key's null rate measured on human text (see the module docstring): the rate at which Binomial(trials, rate)
    hits per position give the mean per-position score measured over the windows (for a linear score, simply the
    mean hit rate), and its standard error."""

    rate: float
    stderr: float
    windows: int
    corpus: str

    def null_rate(self, nominal: float) -> float:
        # The measured rate plus 3 standard errors, never below the nominal rate.
        return max(nominal, self.rate + 3 * self.stderr)


@dataclass(frozen=True)
class PositionHits:
    """Per-position test data of one token sequence: ``hits[i]`` ones among ``trials_per_position`` for the i-th
    scored position, which is token ``positions[i]``; ``scores[i]`` its score (``score_table[hits[i]]``)."""

    hits: np.ndarray
    positions: np.ndarray
    trials_per_position: int
    scores: np.ndarray


class TextWatermarker(abc.ABC):
    """A text watermark keyed by the user's identity."""

    name: str
    version: str
    context: int  # tokens of context the pseudo-random bits depend on
    nominal_rate: float
    # Which repeats are skipped: a repeated context (schemes that leave it unmarked at generation) or a repeated
    # (context, token) n-gram (schemes that mark every position).
    dedupe_with_token: bool = False

    def __init__(self, key: bytes, *, max_p_value: float = DEFAULT_MAX_P_VALUE,
                 calibration: KeyCalibration | None = None):
        if len(key) < 16:
            raise InputError("a text watermark key must have at least 16 bytes")
        self.key = key
        self.max_p_value = max_p_value
        self.calibration = calibration

    @property
    def algorithm_id(self) -> str:
        return f"io.synthguard.{self.name}.{self.version}"

    @property
    def key_id(self) -> str:
        return key_id(self.key)

    def settings(self) -> dict:
        """Public settings, for a manifest's soft-binding record and for reports (no key material)."""
        return {"algorithm": self.algorithm_id, "key_id": self.key_id, "context": self.context}

    @abc.abstractmethod
    def processor(self, vocab_size: int, device: torch.device | str = "cpu"):
        """A transformers ``LogitsProcessor`` that marks generation (use a fresh one per ``generate`` call)."""

    @abc.abstractmethod
    def _position_hits(self, ids: torch.Tensor, ctx_hash: torch.Tensor) -> torch.Tensor:
        """Hits per position (len(ids) - context rows, aligned to tokens ``context..``); ``ctx_hash`` holds the
        hash of each position's context (computed once in ``hits``)."""

    @property
    @abc.abstractmethod
    def trials_per_position(self) -> int: ...

    @property
    def null_rate(self) -> float:
        if self.calibration is None:
            return self.nominal_rate
        return self.calibration.null_rate(self.nominal_rate)

    @property
    def score_table(self) -> np.ndarray:
        """Integer score of a position with k hits, k = 0..trials_per_position; the test statistic is their sum.
        Linear (the score is k: an exact binomial test) unless a scheme says otherwise."""
        return np.arange(self.trials_per_position + 1)

    def null_pmf(self, rate: float | None = None) -> np.ndarray:
        """Distribution of one position's score in unmarked text: Binomial(trials, rate) hits through the table."""
        rate = self.null_rate if rate is None else rate
        t = self.trials_per_position
        k = np.arange(t + 1)
        log_binom = np.array([math.lgamma(t + 1) - math.lgamma(i + 1) - math.lgamma(t - i + 1) for i in k])
        probs = np.exp(log_binom + k * math.log(rate) + (t - k) * math.log1p(-rate))
        table = self.score_table
        pmf = np.zeros(int(table.max()) + 1)
        np.add.at(pmf, table, probs)
        return pmf

    def _rate_for_mean_score(self, mean: float) -> float:
        """The rate at which the null mean score is ``mean`` (bisection: the mean rises with the rate)."""
        low, high = 1e-9, 1 - 1e-9
        values = np.arange(int(self.score_table.max()) + 1)
        for _ in range(60):
            mid = (low + high) / 2
            low, high = (mid, high) if float(self.null_pmf(mid) @ values) < mean else (low, mid)
        return (low + high) / 2

    def hits(self, ids: Sequence[int] | torch.Tensor) -> PositionHits:
        """The test data of one token sequence, counting each context once (repeated contexts are skipped)."""
        ids = torch.as_tensor(ids, dtype=torch.long).reshape(-1)
        c = self.context
        if ids.numel() <= c:
            empty = np.zeros(0, np.int64)
            return PositionHits(empty, empty, self.trials_per_position, empty)
        contexts = ids.unfold(0, c, 1)[:-1] if c > 0 else torch.zeros(ids.numel(), 0, dtype=torch.long)
        ctx_hash = accumulate_hash(torch.ones(contexts.shape[0], dtype=torch.long), contexts)
        key = accumulate_hash(ctx_hash, ids[c:, None]) if self.dedupe_with_token else ctx_hash
        _, first = np.unique(key.numpy(), return_index=True)
        keep = np.zeros(key.shape[0], bool)
        keep[first] = True
        per_position = self._position_hits(ids, ctx_hash).numpy()
        positions = np.arange(c, ids.numel())
        hits = per_position[keep].astype(np.int64)
        return PositionHits(hits, positions[keep], self.trials_per_position, self.score_table[hits])

    def null_moments(self) -> tuple[np.ndarray, float, float]:
        """The null pmf of one position's score (``null_pmf``) with its mean and variance."""
        pmf = self.null_pmf()
        values = np.arange(len(pmf))
        mean = float(pmf @ values)
        return pmf, mean, float(pmf @ (values - mean) ** 2)

    def result_for(self, hits: int, score: int, positions: int, *, windows: int = 1, span=None, note=None
                   ) -> TextWatermarkResult:
        """The test of ``positions`` scored positions holding ``hits`` hits and a summed score of ``score``; the
        p-value is multiplied by ``windows``, the tests a search made (a union bound)."""
        p0 = self.null_rate
        trials = positions * self.trials_per_position
        if positions == 0:
            return TextWatermarkResult(False, self.algorithm_id, self.key_id, 1.0, 0.0, 0.0, p0, 0, 0,
                                       self.max_p_value, span, windows, note or "no token to score")
        pmf, mean, var = self.null_moments()
        p = min(1.0, lattice_sf(int(score), positions, pmf) * windows)
        z = (score - positions * mean) / math.sqrt(positions * var)
        return TextWatermarkResult(p <= self.max_p_value, self.algorithm_id, self.key_id, p, z, hits / trials, p0,
                                   positions, trials, self.max_p_value, span, windows, note)

    def calibrate(self, windows: Sequence[Sequence[int]], corpus: str) -> KeyCalibration:
        """Measure this key's null rate on token windows of human text and use it from now on: the mean
        per-position score over windows, turned into the rate that gives that mean (``KeyCalibration``)."""
        means = []
        for ids in windows:
            h = self.hits(ids)
            if len(h.hits):
                means.append(h.scores.mean())
        if len(means) < 30:
            raise InputError(f"calibration needs at least 30 windows of human text, got {len(means)}")
        means = np.asarray(means)
        mean, stderr = float(means.mean()), float(means.std(ddof=1) / math.sqrt(len(means)))
        rate = self._rate_for_mean_score(mean)
        upper = self._rate_for_mean_score(mean + 3 * stderr)
        self.calibration = KeyCalibration(rate, (upper - rate) / 3, len(means), corpus)
        return self.calibration

    def detect(self, text_or_ids: str | Sequence[int] | torch.Tensor, tokenizer=None) -> TextWatermarkResult:
        """Test a text (re-tokenised with ``tokenizer``, the generating model's) or token ids, as a whole."""
        if isinstance(text_or_ids, str):
            if tokenizer is None:
                raise InputError("testing a text needs the generating model's tokenizer")
            text_or_ids = tokenizer(text_or_ids, add_special_tokens=False)["input_ids"]
        return self.detect_ids(text_or_ids)

    def detect_ids(self, ids: Sequence[int] | torch.Tensor) -> TextWatermarkResult:
        """Test one whole token sequence."""
        h = self.hits(ids)
        return self.result_for(int(h.hits.sum()), int(h.scores.sum()), len(h.hits))
