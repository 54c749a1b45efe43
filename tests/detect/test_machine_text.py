"""The machine-text criterion (Fast-DetectGPT): it separates the model's own samples from human text, and it only
ever leads to likely-synthetic."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthguard.detect.fusion import VerdictLabel, decide
from synthguard.detect.machine_text import (
    MAX_SCORED_TOKENS,
    MachineTextCalibration,
    calibrate,
    fast_detect_score,
    score_machine_text,
)
from synthguard.detect.signals import MachineTextSignal
from synthguard.errors import InputError
from synthguard.generate.sampling import generate_text
from synthguard.models.text import load_text_model
from synthguard.provenance.reading import ProvenanceSignal, ProvenanceState
from synthguard.watermark.text.human import load_corpus

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


class _CountingModel:
    """A text model whose tokenizer calls add up the characters they are given."""

    def __init__(self, tm):
        self.tm, self.chars = tm, 0

    def __getattr__(self, name):
        return getattr(self.tm, name)

    def encode(self, text):
        self.chars += len(text)
        return self.tm.encode(text)

    def encode_with_offsets(self, text):
        self.chars += len(text)
        return self.tm.encode_with_offsets(text)


def test_a_long_text_is_tokenised_only_as_far_as_it_is_scored(builtin):
    human = "\n".join(load_corpus("stdlib-docstrings", words=120, limit=40, seed=1))
    calibration = MachineTextCalibration("builtin", 0.0, 0.01, 0.01, 40, "test", [float(s) for s in range(-20, 20)])
    counting = _CountingModel(builtin)
    text = human * (2_000_000 // len(human) + 1)  # 2 million characters
    signal = score_machine_text(counting, text, calibration)
    assert signal.tokens == MAX_SCORED_TOKENS and signal.score is not None
    assert counting.chars < 200_000, "the whole text was tokenised"
    # The same score as scoring the first tokens of the whole text's tokenisation.
    whole = fast_detect_score(builtin, builtin.encode(text[:len(human) * 2])[:MAX_SCORED_TOKENS])
    assert signal.score == pytest.approx(whole[0], rel=1e-9)
