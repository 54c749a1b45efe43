"""The screen comparison of the watermark bench, on one small seeded synthetic photo."""

from __future__ import annotations

import numpy as np

from synthguard.bench.watermark_bench import SCREEN_TIMINGS, run_screen_comparison, screen_table
from synthguard.watermark import TileMarkWatermarker
from synthguard.watermark.image.attacks import ATTACKS


def test_screen_comparison_counts_and_table():
    rng = np.random.default_rng(5)
    base = np.clip(128 + 40 * rng.normal(0, 1, (256, 256)), 0, 255).astype(np.uint8)
    photo = np.repeat(base[..., None], 3, axis=2)
    attacks = {"none": ATTACKS["none"], "crop80": ATTACKS["crop80"]}
    result = run_screen_comparison(TileMarkWatermarker(), [("noise", photo)], attacks, seed=1)
    assert [a["attack"] for a in result["attacks"]] == ["none", "crop80"]
    for row in result["attacks"]:
        assert row["images"] == 1
        assert row["exact_screen"] == row["exact_full"] == 1
        assert row["false_positives_screen"] == row["false_positives_full"] == 0
        assert set(row["median_ms"]) == set(SCREEN_TIMINGS) and all(v > 0 for v in row["median_ms"].values())
    assert result["lost"] == 0 and result["differing"] == 0
    assert result["unmarked_tests"] == 2 and 0 <= result["unmarked_passed"] <= 2
    lines = screen_table(result)
    assert lines[2].startswith("none") and lines[3].startswith("crop80")
    assert "loses: 0" in lines[-2]
