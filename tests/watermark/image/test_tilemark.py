"""TileMark's rejection screen: it never loses a mark the full geometry search decodes, it rejects unmarked images,
and ``detect(screen=False)`` still runs the full search (seeded synthetic images)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from synthguard.watermark import TileMarkWatermarker
from synthguard.watermark.image import tilemark, tilemark_search
from synthguard.watermark.image.attacks import ATTACKS

# Marked images the identity geometry cannot read (the full search must find them) and ones it can.
SEARCHED = ("crop80", "rotate2", "crop80+jpeg75", "rotate2+jpeg75", "rescale0.7+crop80+jpeg75")
IDENTITY = ("jpeg75", "resize0.5", "none")


def photo_like(size: int, seed: int) -> np.ndarray:
    """Smooth shapes, edges and texture at several scales: a stand-in for a photo, in colour."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    luma = 70 + 110 * (0.5 * xx + 0.5 * yy)
    for _ in range(6):
        cy, cx, r = rng.random(3) * [1, 1, 0.25] + [0, 0, 0.05]
        luma = luma + 45 * rng.choice([-1, 1]) * (((yy - cy) ** 2 + (xx - cx) ** 2) < r**2)
    for sigma, amp in ((1.0, 12), (4.0, 18)):
        luma = luma + amp * cv2.GaussianBlur(rng.normal(0, 1, (size, size)), (0, 0), sigma) * (sigma + 1) ** 0.5
    luma = np.clip(luma, 0, 255)
    return np.clip(np.stack([luma * 1.05, luma, luma * 0.9 + 12], -1), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def wm() -> TileMarkWatermarker:
    return TileMarkWatermarker()


@pytest.fixture(scope="module")
def marked(wm):
    out = []
    for seed in (21, 22, 23):
        image = photo_like(512, seed)
        payload = bytes(np.random.default_rng(seed).integers(0, 256, wm.payload_bytes, dtype=np.uint8))
        out.append((image, wm.embed(image, payload), payload))
    return out


@pytest.mark.parametrize("attack", SEARCHED + IDENTITY)
def test_screen_never_loses_a_mark_the_full_search_decodes(wm, marked, attack):
    for _, out, payload in marked:
        attacked = ATTACKS[attack](out)
        full = wm.detect(attacked, screen=False)
        assert full.detected and full.payload == payload  # the set is one the full search reads
        assert wm.detect(attacked) == full  # same payload, bit errors and p-value, field for field
        if attack in SEARCHED:
            assert wm.passes_screen(attacked)


def test_unmarked_images_are_rejected_and_read_as_the_full_search_does(wm):
    rejected = 0
    tests = 0
    for seed in range(30, 36):
        image = photo_like(512, seed)
        for attack in ("none", "jpeg75", "crop80", "rotate2"):
            plain = ATTACKS[attack](image)
            screened, full = wm.detect(plain), wm.detect(plain, screen=False)
            assert not screened.detected and not full.detected
            tests += 1
            if not wm.passes_screen(plain):
                rejected += 1
                # Nothing searched was decoded: only the identity candidates can have set the p-value.
                assert screened.p_value >= full.p_value or screened.p_value == 1.0
    assert rejected >= 0.8 * tests


def test_screen_switch_selects_the_search(wm, monkeypatch):
    calls = []
    starts = TileMarkWatermarker._starts

    def spy(self, spec, fast):
        calls.append(fast)
        return starts(self, spec, fast)

    monkeypatch.setattr(TileMarkWatermarker, "_starts", spy)
    plain = photo_like(512, 40)
    assert not wm.passes_screen(plain)
    calls.clear()
    wm.detect(plain)
    assert calls == [True]  # the float32 starts only: the screen rejected the image
    calls.clear()
    wm.detect(plain, screen=False)
    assert calls == [False]  # the exact search, unscreened


def test_fast_search_replays_the_exact_one(wm, marked):
    """The screen's claim rests on this: the float32 search refines the same starts to the same geometries."""
    for attack in ("crop80", "rotate2", "none"):
        for image in (ATTACKS[attack](marked[0][1]), ATTACKS[attack](marked[0][0])):
            white = wm._whiten(tilemark._image_to_working(image))
            spec = tilemark_search._Spectrum(white, 2)
            fast, exact = wm._search(spec, True), wm._search(spec, False)
            assert len(fast) == len(exact) >= 3
            for (zf, gf, of), (ze, ge, oe) in zip(fast, exact, strict=True):
                assert zf == pytest.approx(ze, abs=1e-4)
                np.testing.assert_allclose(gf, ge, rtol=0, atol=1e-12)
                np.testing.assert_allclose(of, oe, rtol=0, atol=1e-3)


def test_estimate_payload_bits_is_unscreened(wm, marked):
    _, out, payload = marked[0]
    bits = wm.estimate_payload_bits(ATTACKS["crop80"](out))
    assert np.mean(bits == np.unpackbits(np.frombuffer(payload, np.uint8))) > 0.9


def test_screen_refines_only_the_coarse_start_and_near_line_starts(wm, marked, monkeypatch):
    """A start whose own bound passes lets the image on unrefined; otherwise only the coarse grid's start and the
    line starts within _REFINE_REACH of the threshold are refined."""
    refined = []
    refine = TileMarkWatermarker._refine

    def spy(self, spec, starts, fast):
        refined.append(len(starts))
        return refine(self, spec, starts, fast)

    monkeypatch.setattr(TileMarkWatermarker, "_refine", spy)
    enough = wm._z_enough - tilemark_search._SCREEN_MARGIN
    for image, expect_pass in ((ATTACKS["crop80"](marked[1][1]), True), (photo_like(512, 41), False)):
        spec = tilemark_search._Spectrum(wm._whiten(tilemark._image_to_working(image)), 2)
        starts, n_line = wm._starts(spec, True)
        bounds = wm._bounds(spec, starts, wm._sync_peaks(spec, starts, False, True)[1])
        refined.clear()
        assert wm._screen(spec) is expect_pass
        if bounds.max() >= enough:
            assert refined == []
        else:
            near = int(np.sum(bounds[:n_line] >= enough - tilemark_search._REFINE_REACH))
            assert refined == [near + len(starts) - n_line]


def test_bounds_are_the_decoders_test(wm, marked):
    """_bounds, batched, is _decode's skip test sum|soft| / norm at each geometry's chips."""
    image = ATTACKS["rotate2"](marked[2][1])
    spec = tilemark_search._Spectrum(wm._whiten(tilemark._image_to_working(image)), 2)
    geometry = np.array([[1.0, 0.0], [1.02, 0.01], [1.25, -0.03]])
    offset = np.array([[0.0, 0.0], [3.5, 61.2], [10.0, 20.25]])
    for b, g, o in zip(wm._bounds(spec, geometry, offset), geometry, offset, strict=True):
        _, soft, norm = wm._soft(wm._chips_at(spec, g, o))
        assert b == pytest.approx(float(np.sum(np.abs(soft))) / norm, rel=1e-9)


@pytest.mark.parametrize(("m", "coarse"), [(64, False), (32, True)])
def test_float32_correlation_is_the_inverse_fft(wm, m, coarse):
    """The float32 correlation's matrix products give numpy's irfft2 of the Hermitian sync grid."""
    idx = wm._sync_idx[wm._coarse] if coarse else wm._sync_idx
    rng = np.random.default_rng(3)
    prod = rng.normal(size=(7, idx.size)) + 1j * rng.normal(size=(7, idx.size))
    z_fast, off_fast = wm._correlate(prod.astype(np.complex64), idx, coarse, True, True)
    z_exact, off_exact = wm._correlate(prod, idx, coarse, False, True)
    np.testing.assert_allclose(z_fast, z_exact, rtol=1e-4)
    np.testing.assert_allclose(off_fast, off_exact, atol=1e-3)


@pytest.mark.parametrize("pad", [1, 2])
def test_packed_spectrum_is_the_complex_one(wm, pad):
    """The screen's spectrum, unpacked from OpenCV's packed real DFT, is the search's up to float32 rounding."""
    white = wm._whiten(tilemark._image_to_working(photo_like(300, 7)))
    full, packed = tilemark_search._Spectrum(white, pad), tilemark_search._Spectrum(white, pad, packed=True)
    assert packed.g.shape == full.g.shape
    np.testing.assert_allclose(packed.g, full.g, rtol=0, atol=1e-6 * float(np.abs(full.g).max()))
    np.testing.assert_allclose(packed.ring_rms, full.ring_rms, rtol=1e-5)
