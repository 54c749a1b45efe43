"""The machine-text criterion (Fast-DetectGPT): it separates the model's own samples from human text, and it only
ever leads to likely-synthetic."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthguard.detect.fusion import VerdictLabel, decide
from synthguard.detect.machine_text import calibrate, fast_detect_score, score_machine_text
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
