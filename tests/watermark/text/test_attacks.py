"""Text attacks do what they say: the share of words changed is the share asked for."""

from __future__ import annotations

import pytest
import torch

from synthguard.models.text import load_text_model
from synthguard.watermark.text.attacks import (
    delete_words,
    insert_into,
    lm_proposer,
    substitute_words,
    word_list_proposer,
    words_changed,
)

TEXT = ("First Citizen: Before we proceed any further, hear me speak. All: Speak, speak. First Citizen: You are all "
        "resolved rather to die than to famish? All: Resolved. resolved. First Citizen: First, you know Caius "
        "Marcius is chief enemy to the people.")


@pytest.fixture(scope="module")
def builtin():
    torch.set_num_threads(1)
    return load_text_model(None, device="cpu")


@pytest.mark.parametrize("fraction", [0.1, 0.3])
def test_model_substitution_changes_the_share_asked_for(builtin, fraction):
    attacked = substitute_words(TEXT, fraction, 3, lm_proposer(builtin))
    assert words_changed(TEXT, attacked) == pytest.approx(fraction, abs=0.04)


def test_word_list_substitution_and_deletion():
    attacked = substitute_words(TEXT, 0.2, 1, word_list_proposer(["alpha", "beta", "gamma"], 1))
    assert words_changed(TEXT, attacked) == pytest.approx(0.2, abs=0.04)
    shorter = delete_words(TEXT, 0.2, 1)
    assert words_changed(TEXT, shorter) == pytest.approx(0.2, abs=0.03)
    assert delete_words(TEXT, 0.2, 1) == shorter  # seeded


def test_insertion_reports_the_span():
    doc, (a, b) = insert_into("before text", "MARKED", "after text")
    assert doc[a:b] == "MARKED"
