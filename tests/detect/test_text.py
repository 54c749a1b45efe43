"""The text checks of an inspection: the identity's text watermarks found and located, calibrations cached, and
what the signal says when there is no key."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
import torch

from synthguard.detect import text as text_module
from synthguard.detect.fusion import VerdictLabel, decide
from synthguard.detect.signals import TextWatermarkSignal
from synthguard.detect.text import TextChecks, text_checks_for_home
from synthguard.errors import InputError
from synthguard.generate.sampling import generate_text
from synthguard.models.text import load_text_model
from synthguard.provenance.reading import ProvenanceSignal, ProvenanceState
from synthguard.watermark.text import detect_windows, make_watermarker
from synthguard.watermark.text.human import load_corpus
from synthguard.watermark.text.windows import encode_prefix

ABSENT = ProvenanceSignal(present=False, state=ProvenanceState.ABSENT)


@pytest.fixture(scope="module")
def builtin():
    torch.set_num_threads(1)
    return load_text_model(None, device="cpu")


def test_text_checks_find_the_identity_mark_and_say_where(builtin, identity, tmp_path):
    secret = identity.text_watermark_secret()
    checks = TextChecks.create(builtin, secret, tmp_path / "cache")
    assert len(list((tmp_path / "cache").iterdir())) == 2  # one calibration per scheme, cached
    wm = make_watermarker("synthid", secret)
    marked = generate_text(builtin, ["ROMEO:"], max_new_tokens=80, seed=2, top_p=0.95, watermarker=wm)[0].text
    signal, machine = checks.score(marked)
    assert isinstance(signal, TextWatermarkSignal) and machine is None
    assert signal.detected and signal.ai_declared and signal.algorithm == wm.algorithm_id
    assert signal.key_id == wm.key_id and signal.p_value <= 1e-3 and 0 < signal.tokens_scored <= signal.tokens
    assert signal.schemes_tested == tuple(w.algorithm_id for w in checks.watermarkers)
    human = "\n".join(load_corpus("stdlib-docstrings", words=120, limit=4, seed=3))
    doc = human[:1500] + "\n" + marked + "\n" + human[1500:]
    signal, _ = checks.score(doc)
    start = 1501
    assert signal.detected and signal.span[0] < start + len(marked) and signal.span[1] > start
    v = decide(ABSENT, signal)
    assert v.label is VerdictLabel.AI_GENERATED and signal.describe()[0] in v.reasons
    assert f"characters {signal.span[0]}-{signal.span[1]}" in signal.describe()[0]
    signal, _ = checks.score(human)
    assert not signal.detected and decide(ABSENT, signal).label is VerdictLabel.UNKNOWN
    with pytest.raises(InputError, match="empty"):
        checks.score("  \n")
    again = TextChecks.create(builtin, secret, tmp_path / "cache")  # from the cache
    assert again.watermarkers[0].calibration == checks.watermarkers[0].calibration


def test_without_an_identity_the_watermark_test_says_why(builtin):
    signal, _ = TextChecks.create(builtin, None, None).score("Some text to test.")
    assert not signal.detected and "no SynthGuard identity" in signal.skipped
    assert signal.to_dict()["details"] is None and signal.describe() == (f"watermark not tested: {signal.skipped}",)


def test_a_turned_off_watermark_test_says_so_not_that_there_is_no_identity(home, identity):
    checks = text_checks_for_home(home, watermark=False)
    signal, _ = checks.score("Some text to test.")
    assert not checks.watermarkers and signal.skipped == "the watermark test is turned off"


class _CountingModel:
    """A text model whose tokenizer calls add up the characters they are given."""

    def __init__(self, tm):
        self.tm, self.chars, self.calls = tm, 0, 0

    def __getattr__(self, name):
        return getattr(self.tm, name)

    def encode(self, text):
        self.chars, self.calls = self.chars + len(text), self.calls + 1
        return self.tm.encode(text)

    def encode_with_offsets(self, text):
        self.chars, self.calls = self.chars + len(text), self.calls + 1
        return self.tm.encode_with_offsets(text)


def _awkward_text(n_words: int, seed: int) -> str:
    """Words with accents, CJK, emoji and combining marks, the model's own special token, and whitespace runs
    longer than a window's overlap."""
    rng = random.Random(seed)
    words = ("the", "café", "東京", "🙂🚀", "naïve", "e\u0301", "x" * 40, "<|endoftext|>", "...", "1,000", "Ελλάδα")
    seps = (" ",) * 8 + ("\n", "\n\n\n", "\t", " " * 40, "\r\n", " \n ")
    return "".join(rng.choice(words) + (" " * 6000 if rng.random() < 0.002 else rng.choice(seps))
                   for _ in range(n_words))


@pytest.mark.parametrize("seed", [0, 1])
def test_tokens_read_in_windows_equal_the_whole_text_tokens(builtin, seed):
    text = _awkward_text(6000, seed)
    ids, offsets = builtin.encode_with_offsets(text)
    for window in (1024, 1 << 13):
        whole = encode_prefix(builtin, text, 10**9, window_chars=window)
        assert whole.complete and whole.unverified_joins == 0 and whole.describe_cut() is None
        assert whole.ids.tolist() == ids and [tuple(o) for o in whole.offsets.tolist()] == offsets
        cut = encode_prefix(builtin, text, 3000, window_chars=window)
        assert cut.ids.tolist() == ids[:3000] and not cut.complete and cut.chars == offsets[2999][1]
        assert cut.describe_cut() == (f"only the first 3000 tokens (the first {cut.chars} of {len(text)} characters) "
                                      "were tested; the rest of the text was not tested")


@pytest.fixture(scope="module")
def seeded_checks(builtin, tmp_path_factory):
    return TextChecks.create(builtin, bytes(range(32)), tmp_path_factory.mktemp("calibration"))


def test_a_long_text_is_tokenised_only_as_far_as_it_is_tested(builtin, seeded_checks, monkeypatch):
    monkeypatch.setattr(text_module, "MAX_TOKENS", 5000)
    counting = _CountingModel(builtin)
    checks = dataclasses.replace(seeded_checks, tm=counting)
    text = _awkward_text(3000, 5) * 40  # about 4 million characters
    signal, _ = checks.score(text)
    assert signal.tokens == 5000 and not signal.detected
    assert counting.chars < 200_000, "the whole text was tokenised"
    assert "only the first 5000 tokens" in signal.note and "the rest of the text was not tested" in signal.note
    short, _ = checks.score(text[:2000])
    assert short.note is None or "not tested" not in short.note


def test_windowed_tokens_leave_the_watermark_result_unchanged(builtin, seeded_checks):
    secret = bytes(range(32))
    wm = make_watermarker("synthid", secret)
    marked = generate_text(builtin, ["ROMEO:"], max_new_tokens=80, seed=4, top_p=0.95, watermarker=wm)[0].text
    human = "\n".join(load_corpus("stdlib-docstrings", words=120, limit=60, seed=3))
    doc = human[:20_000] + "\n" + marked + "\n" + human[20_000:]
    signal, _ = seeded_checks.score(doc)
    ids, offsets = builtin.encode_with_offsets(doc)
    expected = [detect_windows(w, ids, offsets) for w in seeded_checks.watermarkers]
    best = min(expected, key=lambda r: r.p_value)
    assert signal.detected and signal.tokens == len(ids) and signal.z == best.z and signal.span == tuple(best.span)


class _NoOffsets(_CountingModel):
    def encode_with_offsets(self, text):
        return self.encode(text), None


def test_a_tokenizer_without_offsets_gets_growing_prefixes(builtin):
    text = _awkward_text(6000, 2)
    ids = builtin.encode(text)
    model = _NoOffsets(builtin)
    cut = encode_prefix(model, text, 2000, window_chars=1024)
    assert cut.ids.tolist() == ids[:2000] and cut.offsets is None and not cut.complete and cut.chars is None
    assert cut.describe_cut() == "only the first 2000 tokens were tested; the rest of the text was not tested"
    assert model.chars < len(text) // 2
    whole = encode_prefix(model, text, 10**9, window_chars=1024)
    assert whole.complete and whole.ids.tolist() == ids


class _WindowDependent(_CountingModel):
    """A tokenizer whose ids depend on the length of what it is given: no two windows ever agree."""

    def encode_with_offsets(self, text):
        ids, offsets = self.tm.encode_with_offsets(text)
        return [(t + len(text)) % 1024 for t in ids], offsets


def test_windows_that_never_agree_are_counted_not_hidden(builtin, seeded_checks):
    text = _awkward_text(3000, 3)
    prefix = encode_prefix(_WindowDependent(builtin), text, 10**9, window_chars=1 << 13)
    assert prefix.complete and prefix.unverified_joins > 0 and prefix.chars == len(text)
    assert prefix.offsets[-1, 1] == len(text) and (np.diff(prefix.offsets[:, 0]) >= 0).all()
    signal, _ = dataclasses.replace(seeded_checks, tm=_WindowDependent(builtin)).score(text)
    assert f"the tokens at {prefix.unverified_joins} places where the text was read in parts" in signal.note
