"""Sampling from a causal LM: seeded and reproducible, settings checked, the watermark in the loop (detected from the
text alone), and the watermark's exact expected cost measured by ``ExpectedCostMeter``."""

from __future__ import annotations

import math

import pytest
import torch

from synthguard.errors import InputError
from synthguard.generate.sampling import ExpectedCostMeter, build_sampler, generate_text
from synthguard.models.text import load_text_model
from synthguard.watermark.text import make_watermarker


@pytest.fixture(scope="module")
def builtin():
    torch.set_num_threads(1)
    return load_text_model(None, device="cpu")


def test_seeded_generation_is_reproducible(builtin):
    a = generate_text(builtin, ["ROMEO:", "JULIET:"], max_new_tokens=30, seed=7, top_p=0.95)
    b = generate_text(builtin, ["ROMEO:", "JULIET:"], max_new_tokens=30, seed=7, top_p=0.95)
    c = generate_text(builtin, ["ROMEO:", "JULIET:"], max_new_tokens=30, seed=8, top_p=0.95)
    assert [s.text for s in a] == [s.text for s in b] != [s.text for s in c]
    assert all(0 < s.new_tokens <= 30 for s in a)


def test_bad_generation_settings_are_refused(builtin):
    for kwargs in ({"max_new_tokens": 0}, {"temperature": 0}, {"top_p": 0}, {"top_k": -1}):
        with pytest.raises(InputError):
            generate_text(builtin, ["x"], **kwargs)
    with pytest.raises(InputError):
        generate_text(builtin, [])


def test_watermarked_builtin_text_is_detected_from_the_text_alone(builtin):
    """Decoded, then re-tokenised: a trained model's text mostly re-tokenises to the same ids."""
    wm = make_watermarker("synthid", b"the identity secret of this test")
    samples = generate_text(builtin, ["ROMEO:", "First Citizen:", "KING HENRY:"], max_new_tokens=60, seed=1,
                            top_p=0.95, watermarker=wm)
    for s in samples:
        r = wm.detect(s.text, builtin.tokenizer)
        assert r.detected and r.tokens_scored > 40, (s.text, r)
    plain = generate_text(builtin, ["ROMEO:", "First Citizen:", "KING HENRY:"], max_new_tokens=60, seed=1, top_p=0.95)
    assert not any(wm.detect_ids(builtin.encode(s.text)).detected for s in plain)


def test_cost_meter_computes_the_expected_nll_rise_of_one_step():
    """Model m, sampler p (top-2 of m), watermark q (all mass on token 1): the rise is sum (q - p) * -log m."""
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2]]))

    def top2(input_ids, scores):
        return torch.where(scores >= scores.topk(2).values[:, -1:], scores, -torch.inf)

    def to_token_1(input_ids, scores):
        return torch.tensor([[-torch.inf, 0.0, -torch.inf]])

    meter = ExpectedCostMeter()
    scores = logits
    for proc in meter.wrap([top2], to_token_1):
        scores = proc(None, scores)
    meter.finish_batch([1])
    p = torch.tensor([0.5, 0.3]) / 0.8
    expected = -math.log(0.3) - float((p * -torch.log(torch.tensor([0.5, 0.3]))).sum())
    assert meter.samples == [(pytest.approx(expected, rel=1e-6), 1)]
    assert meter.mean_cost() == pytest.approx(expected, rel=1e-6)


def test_cost_meter_reads_zero_unmarked_and_leaves_samples_unchanged(builtin):
    prompts = ["ROMEO:", "JULIET:", "KING:"]
    plain = ExpectedCostMeter()
    a = generate_text(builtin, prompts, max_new_tokens=40, seed=3, top_p=0.95, cost_meter=plain)
    b = generate_text(builtin, prompts, max_new_tokens=40, seed=3, top_p=0.95)
    assert [s.token_ids for s in a] == [s.token_ids for s in b]
    assert [n for _, n in plain.samples] == [s.new_tokens for s in a]
    assert abs(plain.mean_cost()) < 1e-12
    # KGW moves mass onto a random green list: its expected NLL rises; SynthID's is zero in expectation over keys.
    kgw = ExpectedCostMeter()
    generate_text(builtin, prompts * 4, max_new_tokens=40, seed=3, top_p=0.95, cost_meter=kgw,
                  watermarker=make_watermarker("kgw", b"the identity secret of this test"))
    assert kgw.mean_cost() > 0.02


def test_cost_meter_counts_the_draw_that_ended_the_text(builtin):
    """A 'watermark' that forces the end token at the third draw: the text keeps 2 tokens, the meter 3 draws, and
    the rise of the ending draw (the only marked one) is in the sum; leaving it out would bias the cost."""
    eos = builtin.tokenizer.eos_token_id
    assert eos is not None

    class EndAtThird:
        def processor(self, vocab_size, device):
            state = {}

            def force(input_ids, scores):
                prompt = state.setdefault("prompt", input_ids.shape[1])
                if input_ids.shape[1] - prompt == 2:
                    forced = torch.full_like(scores, -torch.inf)
                    forced[:, eos] = 0.0
                    return forced
                return scores
            return force

    meter = ExpectedCostMeter()
    [sample] = generate_text(builtin, ["ROMEO:"], max_new_tokens=10, seed=3, top_p=0.95, watermarker=EndAtThird(),
                             cost_meter=meter)
    assert sample.new_tokens == 2
    [(rise, draws)] = meter.samples
    assert draws == 3 and rise != 0


def test_the_sampler_is_temperature_then_top_k_then_top_p_and_leaves_identity_settings_out():
    from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    sampler = build_sampler(temperature=0.7, top_k=5, top_p=0.9)
    assert [type(w) for w in sampler] == [TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper]
    assert build_sampler(temperature=1.0, top_k=0, top_p=1.0) == []


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from helpers.tiny_models import tiny_text_model

    torch.set_num_threads(1)
    return tiny_text_model(tmp_path_factory.mktemp("tiny-lm"))


def test_a_continuation_past_the_context_is_refused_up_front_with_the_limit_named(tiny):
    # The tiny model's context holds 256 tokens; transformers used to fail deep in sampling with an IndexError.
    prompt_tokens = len(tiny.encode("ROMEO:"))
    with pytest.raises(InputError, match=rf"holds 256 tokens.*at most {256 - prompt_tokens} new tokens"):
        generate_text(tiny, ["ROMEO:"], max_new_tokens=300, seed=0)
    with pytest.raises(InputError, match="holds 256 tokens"):
        generate_text(tiny, ["a", "ROMEO:"], max_new_tokens=257 - prompt_tokens, seed=0)
    with pytest.raises(InputError, match="holds 256 tokens.*shorten the prompt"):
        generate_text(tiny, ["ROMEO: " * 300], max_new_tokens=1, seed=0)


def test_a_continuation_that_just_fits_the_context_is_sampled_whole(tiny, monkeypatch):
    prompt_tokens = len(tiny.encode("ROMEO:"))
    eos = tiny.tokenizer.eos_token_id
    # The end token is ruled out so that the sample runs to the very end of the context.
    no_end = type("NoEnd", (), {"__call__": lambda self, ids, scores: scores.index_fill(1, torch.tensor([eos]),
                                                                                         -math.inf)})()
    from synthguard.generate import sampling

    monkeypatch.setattr(sampling, "build_sampler", lambda **kw: [no_end])
    mark = make_watermarker("synthid", b"k" * 32)
    (sample,) = generate_text(tiny, ["ROMEO:"], max_new_tokens=256 - prompt_tokens, seed=0, watermarker=mark)
    assert sample.new_tokens == 256 - prompt_tokens
