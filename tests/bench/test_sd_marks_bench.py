"""The Stable Diffusion mark benchmark's parts: its false-positive bound, its unmarked image set, and its marking
as each generator marks (read back by ``detect.sd_marks``)."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
from helpers.files import INTEROP
from PIL import Image

from synthguard.bench.sd_marks_bench import clopper_pearson_upper, embed_as_generator, unmarked_set
from synthguard.detect.sd_marks import MIN_SIDE, Reading, read_sd_marks


def _photo(name: str, height: int, width: int) -> np.ndarray:
    """A centre crop of a real photograph of the C2PA fixtures."""
    with Image.open(INTEROP / name) as im:
        rgb = np.asarray(im.convert("RGB"))
    top, left = (rgb.shape[0] - height) // 2, (rgb.shape[1] - width) // 2
    return np.ascontiguousarray(rgb[top:top + height, left:left + width])


@pytest.mark.parametrize("n", [1, 20, 200, 1000])
def test_no_successes_give_the_closed_form_of_the_two_sided_interval(n):
    # P(X <= 0) = (1 - p)^n = 0.025 at the upper end: two-sided, 2.5 % in each tail.
    assert clopper_pearson_upper(0, n) == pytest.approx(1 - 0.025 ** (1 / n), rel=1e-9)
    assert clopper_pearson_upper(0, n, confidence=0.99) == pytest.approx(1 - 0.005 ** (1 / n), rel=1e-9)

@pytest.mark.parametrize("n", [2, 20, 200])
def test_all_but_one_success_give_the_closed_form(n):
    # P(X <= n - 1) = 1 - p^n = 0.025 at the upper end.
    assert clopper_pearson_upper(n - 1, n) == pytest.approx(0.975 ** (1 / n), rel=1e-9)


def test_the_two_sided_convention_not_the_one_sided_one():
    upper = clopper_pearson_upper(0, 200)
    assert upper == pytest.approx(0.018275340355, rel=1e-9)  # "rule of 3.69": 3.69 / 200
    assert upper != pytest.approx(1 - 0.05 ** (1 / 200), rel=1e-3)  # the one-sided 95 % bound, 0.014867


@pytest.mark.parametrize("k, n, upper", [
    # the 97.5 % quantile of Beta(k + 1, n - k), as the tables give it
    (1, 10, 0.4450161170), (5, 10, 0.8129139716), (2, 50, 0.1371376256), (3, 200, 0.0432082819),
])
def test_known_values(k, n, upper):
    assert clopper_pearson_upper(k, n) == pytest.approx(upper, rel=1e-8)


def test_edges_and_order():
    assert clopper_pearson_upper(5, 5) == 1.0 and clopper_pearson_upper(0, 0) == 1.0
    bounds = [clopper_pearson_upper(k, 50) for k in range(51)]
    assert all(a < b for a, b in zip(bounds, bounds[1:])) and bounds[-1] == 1.0
    assert all(bound > k / 50 for k, bound in enumerate(bounds[:-1]))


def test_the_unmarked_set_is_distinct_images_of_at_least_256_px():
    wide = _photo("boxhash.jpg", 300, 400)  # H x W
    square = _photo("cloud.jpg", 375, 375)
    flat = np.full((400, 512, 3), (120, 80, 40), np.uint8)
    images = unmarked_set([("wide", wide), ("square", square), ("flat", flat)])
    labels = [label for label, _ in images]
    assert len(labels) == len(set(labels))
    assert all(min(image.shape[:2]) >= MIN_SIDE and image.dtype == np.uint8 and image.shape[2] == 3
               for _, image in images)
    digests = {hashlib.sha256(repr(image.shape).encode() + image.tobytes()).hexdigest() for _, image in images}
    assert len(digests) == len(images)
    # 300 px high: its 75 % crops and its 0.8 rescale fall under 256 px and are left out.
    assert [label for label in labels if label.startswith("wide")] == [
        "wide", "wide square 256", "wide square 384", "wide square 512", "wide square 768", "wide square 1024",
        "wide scale 1.5", "wide jpeg 85", "wide square 512 jpeg 95", "wide rotate 90", "wide square 768 grey"]
    assert sum(label.startswith("square") for label in labels) == 16  # 375 px: every variant is kept
    # The four 75 % crops of a flat picture are one image: it is counted once.
    assert [label for label in labels if label.startswith("flat crop")] == ["flat crop 75% tl"]


@pytest.mark.parametrize("reading", list(Reading))
def test_a_photo_marked_as_the_generator_marks_it_reads_back(reading):
    photo = _photo("boxhash.jpg", 512, 512)
    marked = embed_as_generator(photo, reading)
    assert marked.shape == photo.shape and marked.dtype == np.uint8 and not np.array_equal(marked, photo)
    buf = io.BytesIO()
    Image.fromarray(marked).save(buf, "PNG")
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        signal = read_sd_marks(np.asarray(im.convert("RGB")))
    (mark,) = signal.counted
    # The generator's own convention is the reading that finds it, and finds it "very likely" even at 512 px.
    assert mark.reading is reading and mark.bits_matched >= reading.very_likely_at
    assert not read_sd_marks(photo).declares_ai
