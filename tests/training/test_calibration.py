"""Fitting a calibration: positive weights keep each view's order, and the threshold meets the target FPR."""

from __future__ import annotations

import numpy as np
import pytest

from synthguard.errors import InputError
from synthguard.training.calibration import fit_calibration


def test_calibration_is_monotonic_and_threshold_meets_target_fpr():
    rng = np.random.default_rng(0)
    logits = np.r_[rng.normal(-2, 1, 300), rng.normal(2, 1, 300)]
    labels = np.r_[np.zeros(300), np.ones(300)].astype(int)
    calibration = fit_calibration(logits, labels, target_fpr=0.01)
    grid = np.linspace(-10, 10, 201)
    probabilities = calibration.probability(grid)
    assert np.all(np.diff(probabilities) > 0)
    assert calibration.weights[0] > 0
    assert calibration.measured_fpr <= 0.01
    real_p = calibration.probability(logits[:300])
    assert np.mean(real_p >= calibration.threshold) == pytest.approx(calibration.measured_fpr)
    assert (calibration.n_real, calibration.n_fake) == (300, 300)


def test_two_view_calibration_is_monotonic_in_each_view():
    rng = np.random.default_rng(1)
    real = np.c_[rng.normal(-1, 1, 300), rng.normal(-2, 1, 300)]
    fake = np.c_[rng.normal(1, 1, 300), rng.normal(2, 1, 300)]
    calibration = fit_calibration(np.r_[real, fake], np.r_[np.zeros(300), np.ones(300)].astype(int))
    assert len(calibration.weights) == 2 and all(w > 0 for w in calibration.weights)
    grid = np.linspace(-3, 3, 61)  # away from float saturation at 0 and 1
    for fixed in (-1.0, 0.0, 1.0):
        assert np.all(np.diff(calibration.probability(np.c_[grid, np.full_like(grid, fixed)])) > 0)
        assert np.all(np.diff(calibration.probability(np.c_[np.full_like(grid, fixed), grid])) > 0)
    # A view that carries no information still gets a positive weight (never a negative one that reverses it).
    noise = np.c_[np.r_[real[:, 0], fake[:, 0]], rng.normal(0, 1, 600)]
    assert all(w > 0 for w in fit_calibration(noise, np.r_[np.zeros(300), np.ones(300)].astype(int)).weights)


def test_calibration_refuses_one_class():
    with pytest.raises(InputError, match="both classes"):
        fit_calibration(np.zeros(4), np.zeros(4, dtype=int))


def test_calibration_refuses_a_bad_target_fpr():
    with pytest.raises(InputError, match="target_fpr"):
        fit_calibration(np.r_[0.0, 1.0], np.array([0, 1]), target_fpr=1.0)
