"""Text signals: the machine-text criterion, the text checks of inspect, and the verdicts they lead to."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthguard.detect.fusion import VerdictLabel, decide
from synthguard.detect.machine_text import MachineTextSignal, calibrate, fast_detect_score, score_machine_text
from synthguard.detect.text_signal import TextChecks
from synthguard.errors import InputError
from synthguard.models.text import generate_text, load_text_model
from synthguard.provenance.reading import ProvenanceSignal, ProvenanceState
from synthguard.watermark.text.human import load_corpus
from synthguard.watermark.text.schemes import make_watermarker

ABSENT = ProvenanceSignal(present=False, state=ProvenanceState.ABSENT)


@pytest.fixture(scope="module")
def builtin():
    torch.set_num_threads(1)
    return load_text_model(None, device="cpu")


def test_model_text_scores_above_human_text(builtin):
    """The criterion separates the model's own samples from human text it was not trained on."""
    human = load_corpus("stdlib-docstrings", words=60, limit=60)
    calibration = calibrate(builtin, human, target_fpr=0.05, corpus="stdlib-docstrings")
    assert calibration.windows == 60 and 0 <= calibration.measured_fpr <= 0.2
    samples = generate_text(builtin, ["ROMEO:", "First Citizen:", "KING HENRY:", "MENENIUS:"] * 3,
                            max_new_tokens=80, seed=0)
    scores = [fast_detect_score(builtin, s.token_ids)[0] for s in samples]
    assert np.median(scores) > calibration.threshold > np.median(calibration.scores)
    flagged = [score_machine_text(builtin, s.text, calibration) for s in samples]
    assert sum(f.flagged for f in flagged) >= 8
    assert all(0 < f.empirical_p <= 1 for f in flagged)
    with pytest.raises(InputError):
        fast_detect_score(builtin, [5])


def test_machine_text_only_ever_gives_likely_synthetic():
    flagged = MachineTextSignal("m", 3.0, 2.0, 0.01, 0.002, True, 100)
    v = decide(ABSENT, None, None, flagged)
    assert v.label is VerdictLabel.LIKELY_SYNTHETIC and v.confidence == pytest.approx(0.998)
    assert any("not proof" in r for r in v.reasons)
    quiet = MachineTextSignal("m", 1.0, 2.0, 0.01, 0.3, False, 100)
    assert decide(ABSENT, None, None, quiet).label is VerdictLabel.UNKNOWN


def test_text_checks_find_the_identity_mark_and_say_where(builtin, identity, tmp_path):
    secret = identity.text_watermark_secret()
    checks = TextChecks.create(builtin, secret, tmp_path / "cache")
    assert len(list((tmp_path / "cache").iterdir())) == 2  # one calibration per scheme, cached
    wm = make_watermarker("synthid", secret)
    marked = generate_text(builtin, ["ROMEO:"], max_new_tokens=80, seed=2, top_p=0.95, watermarker=wm)[0].text
    signal, machine = checks.score(marked)
    assert signal.detected and signal.ai_declared and machine is None
    assert signal.details["key_id"] == wm.key_id and signal.p_value <= 1e-3
    human = "\n".join(load_corpus("stdlib-docstrings", words=120, limit=4, seed=3))
    doc = human[:1500] + "\n" + marked + "\n" + human[1500:]
    signal, _ = checks.score(doc)
    start = 1501
    assert signal.detected and signal.details["span"][0] < start + len(marked) and signal.details["span"][1] > start
    v = decide(ABSENT, signal)
    assert v.label is VerdictLabel.AI_GENERATED and any("characters" in r for r in v.reasons)
    signal, _ = checks.score(human)
    assert not signal.detected and decide(ABSENT, signal).label is VerdictLabel.UNKNOWN
    with pytest.raises(InputError, match="empty"):
        checks.score("  \n")
    again = TextChecks.create(builtin, secret, tmp_path / "cache")  # from the cache
    assert again.watermarkers[0].calibration == checks.watermarkers[0].calibration


def test_without_an_identity_the_watermark_test_says_why(builtin):
    signal, _ = TextChecks.create(builtin, None, None).score("Some text to test.")
    assert not signal.detected and "no SynthGuard identity" in signal.skipped
