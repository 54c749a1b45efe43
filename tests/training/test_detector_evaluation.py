"""The evaluation's AUC: exact and rank-based (numpy only), checked against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from synthguard.errors import InputError
from synthguard.training.detector_evaluation import roc_auc


def test_auc_of_a_small_case_worked_by_hand():
    # Positives 0.35, 0.8; negatives 0.1, 0.4. Of the 4 (positive, negative) pairs the positive is higher in 3:
    # (0.35, 0.1), (0.8, 0.1), (0.8, 0.4); (0.35, 0.4) is the one miss. AUC = 3 / 4.
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75


def test_ties_count_one_half():
    # Positives 0.5, 0.9; negatives 0.5, 0.2. Pairs: (0.5, 0.5) a tie = 1/2, the other three wins: 3.5 / 4.
    assert roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9]) == 0.875
    assert roc_auc([0, 1, 0, 1], [7.0, 7.0, 7.0, 7.0]) == 0.5  # all tied: chance
    # Positives 3, 2; negatives 1, 2, 4. The 3 beats 1 and 2, loses to 4: 2. The 2 beats 1, ties 2, loses to 4:
    # 1.5. AUC = 3.5 / 6.
    assert roc_auc([1, 1, 0, 0, 0], [3, 2, 1, 2, 4]) == pytest.approx(3.5 / 6)


def test_perfect_and_reversed_order():
    assert roc_auc(np.r_[np.zeros(5), np.ones(5)], np.arange(10.0)) == 1.0
    assert roc_auc(np.r_[np.ones(5), np.zeros(5)], np.arange(10.0)) == 0.0


def test_matches_the_pairwise_definition_on_random_scores():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    scores = np.round(rng.normal(labels, 1.0), 1)  # rounded: many ties
    pos, neg = scores[labels == 1], scores[labels == 0]
    pairwise = ((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])).mean()
    assert roc_auc(labels, scores) == pytest.approx(pairwise, abs=1e-12)


@pytest.mark.parametrize(("labels", "scores", "message"), [
    ([0, 0, 0], [0.1, 0.2, 0.3], "both classes"),
    ([0, 1], [0.1], "labels"),
    ([0, 2], [0.1, 0.2], "labels"),
    ([0, 1], [0.1, float("nan")], "NaN"),
])
def test_auc_refuses_bad_input(labels, scores, message):
    with pytest.raises(InputError, match=message):
        roc_auc(labels, scores)
