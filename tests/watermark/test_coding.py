"""The coding pieces both watermarks share: the Rademacher tail bound, bisection, BCH with Chase-II decoding."""

from __future__ import annotations

import math

import numpy as np
import pytest

from synthguard.errors import InputError
from synthguard.watermark.coding import BchCode, bisect, log_tail


def test_log_tail_is_hoeffding_below_one_and_tighter_above():
    assert log_tail(0.5) == pytest.approx(-0.125)
    assert log_tail(-3.0) == 0.0
    for z in (2.0, 5.0, 10.0, 20.0):
        assert log_tail(z) <= -0.5 * z * z
    # At decision-making z the Pinelis bound is about 5.6 times smaller than Hoeffding's.
    assert math.exp(-50.0 - log_tail(10.0)) == pytest.approx(5.6, rel=0.05)


def test_log_tail_bounds_simulated_rademacher_sums():
    rng = np.random.default_rng(0)
    a = rng.random(64)
    a /= np.linalg.norm(a)
    sums = rng.choice([-1.0, 1.0], (200_000, 64)) @ a
    for z in (1.5, 2.5, 3.5):
        assert np.mean(sums >= z) <= math.exp(log_tail(z))


def test_bisect_finds_the_threshold_of_a_monotone_predicate():
    assert bisect(lambda x: x * x >= 2.0, 0.0, 4.0) == pytest.approx(math.sqrt(2.0), abs=1e-12)


def test_bch_code_shape_and_hard_correction():
    code = BchCode(6, 8)
    assert (code.k, code.n) == (48, 104)
    word = code.codeword(b"abcdef")
    assert word.shape == (104,) and set(np.unique(word)) <= {0, 1}
    assert np.array_equal(np.packbits(word[:48]).tobytes(), b"abcdef")
    soft = 2.0 * word - 1.0
    soft[np.random.default_rng(1).choice(104, 8, replace=False)] *= -1  # t errors: hard decoding fixes them
    payload, errors, score = code.chase(soft, lambda c: float(np.dot(soft, 2.0 * c - 1.0)), 1e9, 0)
    assert (payload, errors) == (b"abcdef", 8)
    assert score == pytest.approx(104 - 16)


def test_chase_uses_reliability_beyond_t_errors():
    code = BchCode(6, 8)
    word = code.codeword(b"\x01\x02\x03\x04\x05\x06")
    soft = 2.0 * word - 1.0
    wrong = np.random.default_rng(2).choice(104, 11, replace=False)  # beyond t = 8
    soft[wrong] *= -0.1  # flipped, but unreliable
    def score(c):
        return float(np.dot(soft, 2.0 * c - 1.0))
    assert code.chase(soft, score, 1e9, 0) is None or code.chase(soft, score, 1e9, 0)[0] != bytes(range(1, 7))
    payload, errors, _ = code.chase(soft, score, 1e9, 6)
    assert payload == bytes(range(1, 7)) and errors == 11


def test_bch_code_refuses_a_payload_that_fits_no_field():
    with pytest.raises(InputError, match="does not fit"):
        BchCode(200, 30)


def test_the_generator_matrix_spans_the_codewords():
    code = BchCode(6, 8)
    g = code.generator()
    assert g.shape == (48, 104)
    rng = np.random.default_rng(3)
    for _ in range(4):
        payload = bytes(rng.integers(0, 256, 6, dtype=np.uint8))
        bits = np.unpackbits(np.frombuffer(payload, np.uint8)).astype(np.int64)
        assert np.array_equal((bits @ g) & 1, code.codeword(payload))


def test_osd_corrects_far_more_than_t_errors_outside_the_reliable_basis():
    code = BchCode(6, 8)
    word = code.codeword(b"osd-ok")
    rng = np.random.default_rng(5)
    soft = (2.0 * word - 1.0) * rng.uniform(0.5, 1.5, 104)
    wrong = rng.choice(104, 20, replace=False)  # far beyond t = 8, and beyond Chase-II with a few bits
    soft[wrong] *= -0.2  # flipped, but unreliable
    payload, errors, corr = code.osd(soft, 2)
    assert payload == b"osd-ok" and errors == 20
    assert corr == pytest.approx(float(np.dot(soft, 2.0 * word - 1.0)))
    assert code.chase(soft, lambda c: float(np.dot(soft, 2.0 * c - 1.0)), 1e9, 4) is None or \
        code.chase(soft, lambda c: float(np.dot(soft, 2.0 * c - 1.0)), 1e9, 4)[0] != b"osd-ok"


def test_osd_flips_errors_among_the_most_reliable_bits():
    code = BchCode(6, 8)
    payload = b"\x00\xff\x10\x20\x30\x40"
    soft = 0.5 * (2.0 * code.codeword(payload) - 1.0)
    soft[[3, 60]] *= -1.8  # two errors, and the two most reliable bits: the basis holds them
    assert code.osd(soft, 0)[0] != payload  # re-encoding the hard basis alone keeps the errors
    assert code.osd(soft, 2)[0] == payload
    with pytest.raises(InputError, match="104 soft values"):
        code.osd(np.zeros(50), 2)
