"""The text checks of an inspection: the identity's text watermarks found and located, calibrations cached, and
what the signal says when there is no key."""

from __future__ import annotations

import pytest
import torch

from synthguard.detect.fusion import VerdictLabel, decide
from synthguard.detect.signals import TextWatermarkSignal
from synthguard.detect.text import TextChecks, text_checks_for_home
from synthguard.errors import InputError
from synthguard.generate.sampling import generate_text
from synthguard.models.text import load_text_model
from synthguard.provenance.reading import ProvenanceSignal, ProvenanceState
from synthguard.watermark.text import make_watermarker
from synthguard.watermark.text.human import load_corpus

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
