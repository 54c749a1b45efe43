"""The TextWatermarker contract, held by every scheme in SCHEMES: marked generation is detected, unmarked text and
other keys are not; repeated n-grams are scored once; calibration raises the null rate for a biased corpus."""

from __future__ import annotations

import numpy as np
import pytest

from synthguard.errors import InputError
from synthguard.generate.sampling import generate_text
from synthguard.watermark.text import SCHEMES, make_watermarker
from synthguard.watermark.text.keys import derive_key
from synthguard.watermark.text.synthid import SynthIDText

KEY = derive_key(b"test secret for the text watermark tests", "synthid")


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_marked_generation_is_detected_and_unmarked_is_not(tm, scheme):
    wm = make_watermarker(scheme, b"identity secret of the tests")
    if scheme == "kgw":
        wm.bind_vocab(tm.vocab_size)
    prompts = ["The river", "A council", "Farmers counted"]
    marked = generate_text(tm, prompts, max_new_tokens=60, seed=3, watermarker=wm)
    plain = generate_text(tm, prompts, max_new_tokens=60, seed=3)
    # Token ids: a random-weight model emits byte sequences that are not valid UTF-8, so its text does not
    # re-tokenise to the same ids (tests/models/test_text.py checks detection from text with a trained model).
    for s in marked:
        r = wm.detect_ids(s.token_ids)
        assert r.detected and r.p_value < 1e-6, r
    for s in plain:
        assert not wm.detect_ids(s.token_ids).detected
    other = make_watermarker(scheme, b"someone else's secret")
    if scheme == "kgw":
        other.bind_vocab(tm.vocab_size)
    assert not any(other.detect_ids(s.token_ids).detected for s in marked)


def test_repeated_ngrams_are_scored_once():
    wm = SynthIDText(KEY, ngram_len=4)
    once = np.random.default_rng(1).integers(0, 5000, 50)
    r1 = wm.detect_ids(once)
    r10 = wm.detect_ids(np.tile(once, 10))
    assert r10.tokens_scored <= r1.tokens_scored + 3  # only the few contexts that span the joins are new
    assert abs(r10.z - r1.z) < 1.0


def test_calibration_raises_the_null_rate_for_a_biased_corpus():
    wm = SynthIDText(KEY, ngram_len=2)
    # A "corpus" made of a few repeated phrases: a fixed key's bits on them are fixed, so its rate drifts from 1/2.
    rng = np.random.default_rng(2)
    phrases = [rng.integers(0, 5000, 12) for _ in range(5)]
    windows = [np.concatenate([phrases[i] for i in rng.integers(0, 5, 10)]) for _ in range(200)]
    cal = wm.calibrate(windows, corpus="phrases")
    assert cal.windows == 200
    assert wm.null_rate == max(0.5, cal.rate + 3 * cal.stderr)
    with pytest.raises(InputError):
        wm.calibrate(windows[:5], corpus="too small")
