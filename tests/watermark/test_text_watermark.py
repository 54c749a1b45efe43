"""Text watermarks: transformers-compatible g-values, detection, calibrated nulls, repeats, windows, keys."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers.tiny_models import tiny_text_model

from synthguard.errors import InputError
from synthguard.models.text import generate_text
from synthguard.provenance.identity import IdentityStore
from synthguard.watermark.text.schemes import (
    KGWText,
    SynthIDText,
    binomial_sf,
    derive_key,
    detect_windows,
    key_id,
    lattice_sf,
    make_watermarker,
)

KEY = derive_key(b"test secret for the text watermark tests", "synthid")


@pytest.fixture(scope="module")
def tm(tmp_path_factory):
    torch.set_num_threads(1)
    return tiny_text_model(tmp_path_factory.mktemp("tiny-lm"))


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


def test_synthid_score_p_values_are_exact_on_fair_bits():
    """Fair coins through the mixture score: the empirical rate of p <= alpha stays at alpha."""
    wm = SynthIDText(KEY)
    rng = np.random.default_rng(0)
    pmf = wm.null_pmf()
    ps = []
    for _ in range(4000):
        k = rng.binomial(wm.depth, 0.5, size=60)
        ps.append(lattice_sf(int(wm.score_table[k].sum()), 60, pmf))
    ps = np.array(ps)
    for alpha in (0.05, 0.01):
        assert (ps <= alpha).mean() <= alpha * 1.3 + 0.003
    assert (ps <= 0.05).mean() > 0.02  # not a test that never fires
    assert list(wm.score_table) == sorted(wm.score_table) and wm.score_table[0] == 0


def test_g_values_match_transformers_synthid():
    from transformers.generation.logits_process import SynthIDTextWatermarkLogitsProcessor

    wm = SynthIDText(KEY, depth=12, ngram_len=4)
    ref = SynthIDTextWatermarkLogitsProcessor(ngram_len=4, keys=wm.keys, sampling_table_size=2 ** 16,
                                              sampling_table_seed=wm.sampling_table_seed, context_history_size=1024,
                                              device=torch.device("cpu"))
    ids = torch.randint(0, 49152, (3, 40), generator=torch.Generator().manual_seed(1))
    theirs = ref.compute_g_values(ids)  # (batch, positions, depth)
    for row in range(3):
        ours = wm.g_values(_ctx(wm, ids[row]), ids[row, 3:])
        assert torch.equal(ours, theirs[row])


def _ctx(wm, ids):
    from synthguard.watermark.text.schemes import accumulate_hash

    contexts = ids.unfold(0, wm.context, 1)[:-1]
    return accumulate_hash(torch.ones(contexts.shape[0], dtype=torch.long), contexts)


@pytest.mark.parametrize("scheme", ["synthid", "kgw"])
def test_marked_generation_is_detected_and_unmarked_is_not(tm, scheme):
    wm = make_watermarker(scheme, b"identity secret of the tests")
    if scheme == "kgw":
        wm.bind_vocab(tm.vocab_size)
    prompts = ["The river", "A council", "Farmers counted"]
    marked = generate_text(tm, prompts, max_new_tokens=60, seed=3, watermarker=wm)
    plain = generate_text(tm, prompts, max_new_tokens=60, seed=3)
    # Token ids: a random-weight model emits byte sequences that are not valid UTF-8, so its text does not
    # re-tokenise to the same ids (tests/generators/test_text.py checks detection from text with a trained model).
    for s in marked:
        r = wm.detect_ids(s.token_ids)
        assert r.detected and r.p_value < 1e-6, r
    for s in plain:
        assert not wm.detect_ids(s.token_ids).detected
    other = make_watermarker(scheme, b"someone else's secret")
    if scheme == "kgw":
        other.bind_vocab(tm.vocab_size)
    assert not any(other.detect_ids(s.token_ids).detected for s in marked)


def test_transformers_own_synthid_processor_output_is_detected(tm):
    """Text made with transformers' SynthIDTextWatermarkingConfig (our keys) is detected by ours: same watermark."""
    wm = SynthIDText(KEY, depth=30, ngram_len=4)
    enc = tm.tokenizer(["The river"], return_tensors="pt")
    torch.manual_seed(0)
    out = tm.model.generate(**enc, do_sample=True, max_new_tokens=80, watermarking_config=wm.transformers_config(),
                            pad_token_id=tm.tokenizer.pad_token_id)
    assert wm.detect_ids(out[0, enc["input_ids"].shape[1]:]).detected


def test_kgw_green_lists_are_transformers_own(tm):
    wm = KGWText(derive_key(b"k" * 32, "kgw"))
    wm.bind_vocab(tm.vocab_size)
    proc = wm.processor(tm.vocab_size)
    for prev in (0, 7, 123):
        green = set(proc._get_greenlist_ids(torch.tensor([5, prev])).tolist())
        ours = np.unpackbits(wm._green(prev, tm.vocab_size))[:tm.vocab_size]
        assert set(np.flatnonzero(ours).tolist()) == green
        hits = wm.hits([prev, 3, prev, 4]).hits  # positions (prev, 3), (3, prev), (prev, 4), all distinct
        assert hits[0] == (3 in green) and hits[2] == (4 in green)


def test_null_p_values_are_calibrated_on_random_text():
    """Unmarked token streams: the share with p <= 0.05 stays near 0.05, none at 1e-4 (1000 sequences)."""
    wm = SynthIDText(KEY, depth=30, ngram_len=4)
    rng = np.random.default_rng(0)
    ps = np.array([wm.detect_ids(rng.integers(0, 5000, 80)).p_value for _ in range(1000)])
    assert 0.03 <= (ps <= 0.05).mean() <= 0.07
    assert abs(wm.sampling_table.float().mean() - 0.5) <= 8 / 2 ** 16  # the balanced table (no key offset)
    assert (ps <= 1e-4).sum() <= 2


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


def test_windowed_search_finds_and_locates_a_marked_passage(tm):
    wm = make_watermarker("synthid", b"identity secret of the tests")
    marked = generate_text(tm, ["The river"], max_new_tokens=80, seed=5, watermarker=wm)[0].token_ids
    plain = [s.token_ids for s in generate_text(tm, ["A council"] * 2, max_new_tokens=250, seed=6)]
    ids = plain[0] + marked + plain[1]
    offsets = [(i, i + 1) for i in range(len(ids))]  # one "character" per token
    r = detect_windows(wm, ids, offsets)
    assert r.detected and r.windows_tested > 2
    start = len(plain[0])
    assert r.span[0] < start + len(marked) and r.span[1] > start
    assert r.span[1] - r.span[0] < len(ids) / 2  # the window, not the whole document
    clean = plain[0] + plain[1]
    assert not detect_windows(wm, clean, None).detected


def test_processor_keeps_the_distribution_in_expectation_over_keys():
    """Averaged over keys, the tournament's output distribution equals the input (distortion-free)."""
    probs = torch.softmax(torch.randn(1, 40, generator=torch.Generator().manual_seed(0)) * 2, -1)
    scores = probs.log()
    ids = torch.tensor([[1, 2, 3, 4]])
    total = torch.zeros_like(probs)
    keys = 200
    for k in range(keys):
        wm = SynthIDText(derive_key(bytes([k % 256, k // 256]) * 16, "synthid"), depth=8, ngram_len=4)
        total += torch.softmax(wm.processor(40)(ids, scores.clone()), -1)
    assert torch.allclose(total / keys, probs, atol=0.02)


def test_keys_come_from_the_identity(home):
    a = IdentityStore(home).init("A", "Org")
    secret = a.text_watermark_secret()
    assert secret == IdentityStore(home).load().text_watermark_secret()
    wm = make_watermarker("synthid", secret)
    assert wm.key_id == key_id(derive_key(secret, "synthid")) and len(wm.key_id) == 16
    assert wm.keys != SynthIDText(derive_key(b"other" * 8, "synthid")).keys
    assert "key" not in " ".join(map(str, wm.settings().values())).lower() or "key_id" in wm.settings()
    with pytest.raises(InputError):
        make_watermarker("nope", secret)
