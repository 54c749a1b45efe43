"""The image memory benchmark's parts at tiny sizes: its photo-like images, their files, and one measurement in a
fresh process against the stated bound."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from synthguard.bench.image_memory_bench import measure_file, photo_like, photo_size, run, table, write_image
from synthguard.detect.image import peak_memory_bound_mb
from synthguard.errors import InputError


@pytest.mark.parametrize("megapixels", [0.05, 1, 25, 100])
def test_photo_size_is_four_by_three_within_the_megapixels(megapixels):
    height, width = photo_size(megapixels)
    assert 3 * width == 4 * height and height * width <= megapixels * 1e6
    assert 12 * (height // 3 + 1) ** 2 > megapixels * 1e6  # the largest such image
    with pytest.raises(InputError):
        photo_size(0)


def test_photo_like_is_seeded_and_not_flat():
    a, b, c = photo_like(300, 400, seed=1), photo_like(300, 400, seed=1), photo_like(300, 400, seed=2)
    assert a.shape == (300, 400, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    grain = a.astype(float) - cv2.GaussianBlur(a, (0, 0), 3).astype(float)
    assert a.std() > 10 and 1 < grain.std() < 10  # shading and waves, and a few grey levels of grain


def test_written_files_decode_to_the_image(tmp_path):
    rgb = photo_like(120, 160, seed=3)
    png = cv2.cvtColor(cv2.imread(str(write_image(tmp_path / "a.png", rgb, "png"))), cv2.COLOR_BGR2RGB)
    jpeg = cv2.cvtColor(cv2.imread(str(write_image(tmp_path / "a.jpg", rgb, "jpeg"))), cv2.COLOR_BGR2RGB)
    assert np.array_equal(png, rgb)
    assert jpeg.shape == rgb.shape and np.abs(jpeg.astype(int) - rgb).mean() < 3
    with pytest.raises(InputError):
        write_image(tmp_path / "a.gif", rgb, "gif")


def test_one_measurement_in_a_fresh_process_stays_under_the_bound(tmp_path):
    height, width = photo_size(0.3)
    path = write_image(tmp_path / "p.png", photo_like(height, width, seed=4), "png")
    row = measure_file(path)
    bound = peak_memory_bound_mb(height * width)
    assert 0 < row["baseline_rss_mb"] <= row["peak_rss_mb"] < bound
    assert row["seconds"] > 0 and isinstance(row["verdict"], str)
    line = table([{"megapixels": 0.3, "format": "png", "file_bytes": path.stat().st_size, **row,
                   "bound_mb": bound}]).splitlines()[1]
    assert "png" in line and row["verdict"] in line


def test_a_run_makes_its_files_in_another_process_and_measures_each():
    rows = run((0.1,), ("png", "jpeg"), log=lambda _: None)
    assert [r["format"] for r in rows] == ["png", "jpeg"]
    for r in rows:
        assert (r["height"], r["width"]) == photo_size(0.1) and r["file_bytes"] > 0
        assert r["peak_rss_mb"] < r["bound_mb"] == peak_memory_bound_mb(r["height"] * r["width"])


def test_sizes_over_the_pixel_budget_and_unreadable_files_are_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("SYNTHGUARD_MAX_PIXELS", "1000000")
    with pytest.raises(InputError, match="pixel budget"):
        run((0.5, 2), log=lambda _: None)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 4)  # no media type: its process fails, and the error says so
    with pytest.raises(InputError, match="failed in its process"):
        measure_file(junk)
