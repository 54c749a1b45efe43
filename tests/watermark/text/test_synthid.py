"""SynthID-Text: exact p-values of the mixture score, transformers-compatible g-values and output, a balanced
table, and a tournament that leaves the distribution unchanged in expectation over keys."""

from __future__ import annotations

import numpy as np
import torch

from synthguard.watermark.text.keys import accumulate_hash, derive_key
from synthguard.watermark.text.stats import lattice_sf
from synthguard.watermark.text.synthid import SynthIDText

KEY = derive_key(b"test secret for the text watermark tests", "synthid")


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
    contexts = ids.unfold(0, wm.context, 1)[:-1]
    return accumulate_hash(torch.ones(contexts.shape[0], dtype=torch.long), contexts)


def test_transformers_own_synthid_processor_output_is_detected(tm):
    """Text made with transformers' SynthIDTextWatermarkingConfig (our keys) is detected by ours: same watermark."""
    wm = SynthIDText(KEY, depth=30, ngram_len=4)
    enc = tm.tokenizer(["The river"], return_tensors="pt")
    torch.manual_seed(0)
    out = tm.model.generate(**enc, do_sample=True, max_new_tokens=80, watermarking_config=wm.transformers_config(),
                            pad_token_id=tm.tokenizer.pad_token_id)
    assert wm.detect_ids(out[0, enc["input_ids"].shape[1]:]).detected


def test_null_p_values_are_calibrated_on_random_text():
    """Unmarked token streams: the share with p <= 0.05 stays near 0.05, none at 1e-4 (1000 sequences)."""
    wm = SynthIDText(KEY, depth=30, ngram_len=4)
    rng = np.random.default_rng(0)
    ps = np.array([wm.detect_ids(rng.integers(0, 5000, 80)).p_value for _ in range(1000)])
    assert 0.03 <= (ps <= 0.05).mean() <= 0.07
    assert abs(wm.sampling_table.float().mean() - 0.5) <= 8 / 2 ** 16  # the balanced table (no key offset)
    assert (ps <= 1e-4).sum() <= 2


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
