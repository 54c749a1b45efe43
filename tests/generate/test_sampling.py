"""Sampling from a causal LM: seeded and reproducible, settings checked, the watermark in the loop (detected from the
text alone), and the watermark's exact expected cost measured by ``ExpectedCostMeter``."""

from __future__ import annotations

import math

import pytest
import torch

from synthguard.errors import InputError
from synthguard.generate.sampling import ExpectedCostMeter, build_sampler, check_context, generate_text, slide_chunk
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


def test_a_prompt_that_fills_the_context_is_refused_up_front_with_the_limit_named(tiny):
    # The tiny model's context holds 256 tokens; transformers used to fail deep in sampling with an IndexError.
    with pytest.raises(InputError, match="holds 256 tokens.*shorten the prompt to at most 255 tokens"):
        generate_text(tiny, ["ROMEO: " * 300], max_new_tokens=1, seed=0)
    with pytest.raises(InputError, match="holds 256 tokens"):
        check_context(tiny, ["a", "ROMEO: " * 300], 1)
    prompt_tokens = len(tiny.encode("ROMEO:"))
    assert check_context(tiny, ["ROMEO:"], 256 - prompt_tokens) is False
    assert check_context(tiny, ["ROMEO:"], 257 - prompt_tokens) is True  # sampling slides its window
    assert slide_chunk(256) == 64


def no_end_sampler(tm, monkeypatch, *then):
    """Sample with the end token ruled out (so a text runs its full length), then ``then``'s processors."""
    eos = tm.tokenizer.eos_token_id

    def no_end(ids, scores):
        return scores.index_fill(1, torch.tensor([eos]), -math.inf)

    from synthguard.generate import sampling

    monkeypatch.setattr(sampling, "build_sampler", lambda **kw: [no_end, *then])


def test_a_text_past_the_context_slides_its_window_and_is_detected_as_one(builtin, monkeypatch):
    """400 new tokens from the built-in model (a context of 256): the watermark processor saw the real preceding
    tokens in every pass, so the whole text is marked; the same seed gives the same text."""
    no_end_sampler(builtin, monkeypatch)
    seen = []

    class Recording:
        def __init__(self, wm):
            self.wm = wm

        def processor(self, vocab_size, device):
            inner = self.wm.processor(vocab_size, device)

            def record(input_ids, scores):
                seen.append(input_ids.shape[1])
                return inner(input_ids, scores)
            return record

    wm = make_watermarker("synthid", b"the identity secret of this test")
    [sample] = generate_text(builtin, ["ROMEO:"], max_new_tokens=400, seed=5, watermarker=Recording(wm))
    assert sample.new_tokens == 400 and len(seen) == 400
    # One processor through every pass: a pass after the first starts from the last 256 - 64 tokens.
    assert max(seen) == 255 and seen.count(192) == 3
    r = wm.detect(sample.text, builtin.tokenizer)
    assert r.detected and r.tokens_scored > 300, r
    [again] = generate_text(builtin, ["ROMEO:"], max_new_tokens=400, seed=5, watermarker=wm)
    assert again.token_ids == sample.token_ids
    late = wm.detect_ids(sample.token_ids[300:])  # the last pass alone is marked too
    assert late.detected, late


def test_a_row_that_ended_before_the_window_slid_stays_ended(builtin, monkeypatch):
    """Two prompts in one batch: the first one's row is made to end at its fifth token; the other runs past the
    context. The ended row keeps its five tokens, its stop token counted as one more draw."""
    eos = builtin.tokenizer.eos_token_id
    first = builtin.encode("KING:")[0]

    def end_first_row(input_ids, scores):
        scores = scores.clone()
        for row in range(input_ids.shape[0]):
            if first in input_ids[row].tolist() and input_ids.shape[1] >= 5 + len(builtin.encode("KING:")):
                scores[row] = -math.inf
                scores[row, eos] = 0.0
        return scores

    no_end_sampler(builtin, monkeypatch, end_first_row)
    meter = ExpectedCostMeter()
    a, b = generate_text(builtin, ["KING:", "ROMEO and JULIET:"], max_new_tokens=300, seed=2, cost_meter=meter)
    assert a.new_tokens <= 5 and eos not in a.token_ids
    assert b.new_tokens == 300
    assert [n for _, n in meter.samples] == [a.new_tokens + 1, 300]


def test_a_streamer_sees_a_sliding_text_once(builtin, monkeypatch):
    from transformers import TextStreamer

    no_end_sampler(builtin, monkeypatch)
    pieces = []

    class Collect(TextStreamer):
        def on_finalized_text(self, text, stream_end=False):
            pieces.append((text, stream_end))

    [sample] = generate_text(builtin, ["ROMEO:"], max_new_tokens=300, seed=1,
                             streamer=Collect(builtin.tokenizer, skip_prompt=True))
    assert "".join(text for text, _ in pieces) == sample.text
    assert [end for _, end in pieces].count(True) == 1 and pieces[-1][1]


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


def test_a_sample_ends_at_the_first_stop_id_it_draws(tmp_path, monkeypatch):
    """A chat model's end of turn (<|im_end|>) is not its end of text: a sample stops at it when it is among the
    stop ids, and runs on past it (a special token, dropped from the text) when it is not."""
    from helpers.tiny_chat import tiny_chat_model

    torch.set_num_threads(1)
    tm = tiny_chat_model(tmp_path / "chat")
    end_of_turn = tm.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert tm.end_of_text_ids() == (tm.tokenizer.eos_token_id,)
    assert tm.end_of_turn_ids() == (tm.tokenizer.eos_token_id, end_of_turn)
    prompt = tm.render_chat("ROMEO:")
    start = len(tm.encode(prompt))

    def turn_ends_at_fourth(input_ids, scores):
        if input_ids.shape[1] - start == 3:
            scores = torch.full_like(scores, -math.inf)
            scores[:, end_of_turn] = 0.0
        return scores

    no_end_sampler(tm, monkeypatch, turn_ends_at_fourth)
    [chat] = generate_text(tm, [prompt], max_new_tokens=20, seed=0, stop_ids=tm.end_of_turn_ids())
    assert chat.new_tokens == 3 and end_of_turn not in chat.token_ids and "<|im_end|>" not in chat.text
    [plain] = generate_text(tm, [prompt], max_new_tokens=20, seed=0)
    assert plain.new_tokens == 20 and plain.token_ids[3] == end_of_turn and "<|im_end|>" not in plain.text
    assert plain.token_ids[:3] == chat.token_ids
