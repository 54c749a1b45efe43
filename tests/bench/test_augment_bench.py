"""The augmentation benchmark's arithmetic (stratified subsets, t- and Wilson intervals, paired differences) and a
run on tiny made-up digits."""

import json
import math

import numpy as np
import pytest

from synthguard.bench.augment_bench import (
    SyntheticSet,
    run_augment_benchmark,
    stratified_subset,
    synthetic_from_folder,
    t_interval,
    t_quantile_975,
    train_classifier,
    wilson_interval,
)
from synthguard.errors import InputError


def test_stratified_subsets_keep_every_class_share_and_follow_the_seed():
    labels = np.repeat(np.arange(10), [100, 50, 20, 200, 10, 30, 40, 60, 80, 3])
    index = stratified_subset(labels, 0.1, seed=0)
    counts = np.bincount(labels[index], minlength=10)
    assert counts.tolist() == [10, 5, 2, 20, 1, 3, 4, 6, 8, 1]  # round(0.1 * n_k), at least one
    assert len(np.unique(index)) == len(index) and np.all(np.diff(index) > 0)
    assert np.array_equal(index, stratified_subset(labels, 0.1, seed=0))
    assert not np.array_equal(index, stratified_subset(labels, 0.1, seed=1))
    assert len(stratified_subset(labels, 1.0, seed=3)) == len(labels)
    for bad in (0, 1.5, -0.1, True):
        with pytest.raises(InputError, match="fraction"):
            stratified_subset(labels, bad, seed=0)


def test_t_interval_matches_the_textbook():
    interval = t_interval([0.90, 0.92, 0.94])
    assert interval.mean == pytest.approx(0.92)
    assert interval.half_width == pytest.approx(4.3027 * 0.02 / math.sqrt(3))
    assert interval.n == 3 and interval.low < 0.92 < interval.high
    single = t_interval([0.5])
    assert single.low is None and single.high is None and "no interval" in single.describe()[0]
    with pytest.raises(InputError):
        t_interval([])
    with pytest.raises(InputError):
        t_interval([0.1, float("nan")])


def test_t_quantiles_agree_with_scipy():
    stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 3, 5, 10, 29, 30, 31, 45, 120, 10_000):
        assert t_quantile_975(df) == pytest.approx(stats.t.ppf(0.975, df), abs=2e-4)
    with pytest.raises(InputError):
        t_quantile_975(0)


def test_wilson_interval():
    low, high = wilson_interval(9000, 10_000)
    assert low == pytest.approx(0.893966, abs=1e-6) and high == pytest.approx(0.905727, abs=1e-6)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == pytest.approx(1.0)
    with pytest.raises(InputError):
        wilson_interval(11, 10)


def _digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Made-up 'digits': class k is a bright bar in row band k, plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
    for i, k in enumerate(labels):
        images[i, 2 + 2 * k: 4 + 2 * k, 4:24] = 255
    return images, labels.astype(np.int64)


def test_a_tiny_run_gives_rows_and_paired_differences():
    train, train_labels = _digits(200, 0)
    test, test_labels = _digits(50, 1)
    synthetic = SyntheticSet("fake", *_digits(30, 2), model="made-up bars", how="in the test")
    result = run_augment_benchmark(train, train_labels, test, test_labels, [synthetic], fractions=(0.05, 0.2),
                                   seeds=2, steps=3, threads=1)
    assert [(r.fraction, r.synthetic, r.real_images, r.synthetic_per_class) for r in result.rows] == [
        (0.05, None, 10, 0), (0.05, "fake", 10, 3), (0.2, None, 40, 0), (0.2, "fake", 40, 3)]
    for row in result.rows:
        assert len(row.accuracies) == 2 and all(0 <= a <= 1 for a in row.accuracies)
        assert row.accuracy.mean == pytest.approx(np.mean(row.accuracies)) and row.test_images == 50
        assert all(round(a * 50) == pytest.approx(a * 50) for a in row.accuracies)  # k of 50 right
    for delta, (without, with_) in zip(result.deltas, [result.rows[0:2], result.rows[2:4]], strict=True):
        expected = [w - b for w, b in zip(with_.accuracies, without.accuracies, strict=True)]
        assert list(delta.differences) == pytest.approx(expected)
        assert delta.difference.mean == pytest.approx(np.mean(expected))
    again = run_augment_benchmark(train, train_labels, test, test_labels, [synthetic], fractions=(0.05, 0.2),
                                  seeds=2, steps=3, threads=1)
    assert [r.accuracies for r in again.rows] == [r.accuracies for r in result.rows]  # seeded
    table = "\n".join(result.describe())
    assert "with - without" in table and "fake" in table and "3 Adam steps" in table
    assert json.loads(json.dumps(result.to_dict()))["rows"][1]["synthetic"] == "fake"


def test_training_takes_exactly_the_steps_asked(monkeypatch):
    import torch
    images, labels = _digits(20, 0)
    steps = []
    original = torch.optim.Adam.step

    def counted(self, *a, **kw):
        steps.append(1)
        return original(self, *a, **kw)

    monkeypatch.setattr(torch.optim.Adam, "step", counted)
    train_classifier(images, labels, steps=7, seed=0, batch_size=8)  # 3 batches per pass: 2 passes and a bit
    assert len(steps) == 7


def test_bad_inputs_are_refused():
    train, labels = _digits(20, 0)
    with pytest.raises(InputError, match="uint8"):
        run_augment_benchmark(train.astype(np.float32), labels, train, labels, [])
    with pytest.raises(InputError, match="seeds"):
        run_augment_benchmark(train, labels, train, labels, [], seeds=0)


def test_a_folder_that_augment_did_not_write_is_refused(tmp_path):
    with pytest.raises(InputError, match="not a dataset written by augment"):
        synthetic_from_folder(tmp_path)
    (tmp_path / "dataset.json").write_text(json.dumps(
        {"model": {"name": "x", "version": "1"}, "classes": [{"label": 0, "files": ["../../etc/passwd"]}]}))
    with pytest.raises(InputError, match="outside the folder"):
        synthetic_from_folder(tmp_path)
