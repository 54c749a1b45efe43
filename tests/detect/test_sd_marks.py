"""The Stable Diffusion invisible marks (invisible-watermark dwtDct): read as the library reads them, found on a real
photo marked the way each generator marks, absent from the same photo unmarked, reported as not applicable / not
checked when they cannot be read."""

from __future__ import annotations

import io
import json
import sys

import numpy as np
import pytest
from helpers.files import INTEROP
from PIL import Image

from synthguard.bench.sd_marks_bench import embed_as_generator
from synthguard.detect import sd_marks
from synthguard.detect.sd_marks import (
    CheckStatus,
    MarkRead,
    Reading,
    SDFamily,
    SDMarkSignal,
    Strength,
    decode_bits,
    random_match_probability,
    read_sd_marks,
)
from synthguard.errors import InputError

PHOTO = INTEROP / "boxhash.jpg"  # a real colour photograph (c2pa-rs fixtures, 1024 x 683)


def _photo(height: int = 512, width: int = 512) -> np.ndarray:
    with Image.open(PHOTO) as im:
        rgb = np.asarray(im.convert("RGB"))
    top, left = (rgb.shape[0] - height) // 2, (rgb.shape[1] - width) // 2
    return np.ascontiguousarray(rgb[top:top + height, left:left + width])


def _png_round_trip(rgb: np.ndarray) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        return np.asarray(im.convert("RGB"))


def _library_bits(rgb: np.ndarray, reading: Reading) -> np.ndarray:
    """What invisible-watermark's own decoder says, given the pixels as the generator handed them over."""
    from imwatermark import WatermarkDecoder

    image = rgb if reading in (Reading.SDXL_RGB,) else rgb[:, :, ::-1]
    dtype = np.float32 if reading in (Reading.SDXL_BGR, Reading.SDXL_RGB) else np.uint8
    out = WatermarkDecoder("bits", len(reading.message)).decode(np.ascontiguousarray(image).astype(dtype), "dwtDct")
    return np.asarray(out, dtype=bool)


@pytest.mark.parametrize("reading", list(Reading))
def test_bits_equal_the_library_decoder(reading, monkeypatch):
    # An odd size (not a multiple of 8), read in strips of 40 block rows and in one piece, marked and unmarked.
    photo = _photo(683, 517) if reading is Reading.SD1 else _photo(600, 517)
    for image in (photo, embed_as_generator(photo, reading)):
        expected = _library_bits(image, reading)
        assert np.array_equal(decode_bits(image, reading), expected)
        with monkeypatch.context() as patch:
            patch.setattr(sd_marks, "STRIP_PIXELS", 320 * 512)
            assert np.array_equal(decode_bits(image, reading), expected)


@pytest.mark.parametrize("reading", list(Reading))
def test_a_photo_marked_as_each_generator_marks_is_found_with_its_family(reading):
    signal = read_sd_marks(_png_round_trip(embed_as_generator(_photo(), reading)))
    assert signal.checked and signal.declares_ai
    assert signal.families == (reading.family,)
    mark = signal.marks[0]
    assert mark.bits_matched >= mark.threshold and mark.strength is not None
    assert mark.random_match_probability < 1e-2
    lines = signal.describe()
    assert reading.family.value in lines[0] and f"of {len(reading.message)} bits match" in lines[0]
    assert any("unsigned" in line and "anyone" in line and "remove" in line for line in lines)


def test_the_mark_of_diffusers_own_sdxl_watermarker_is_found():
    # The installed diffusers' StableDiffusionXLWatermarker (0.27+: float32, BGR) on a decoded image in [-1, 1],
    # then diffusers' own post-processing to a PIL image, as the pipeline returns it.
    import torch
    from diffusers.image_processor import VaeImageProcessor
    from diffusers.pipelines.stable_diffusion_xl.watermark import StableDiffusionXLWatermarker

    decoded = torch.from_numpy(_photo()).permute(2, 0, 1)[None].float() / 255 * 2 - 1
    image = VaeImageProcessor().postprocess(StableDiffusionXLWatermarker().apply_watermark(decoded), "pil")[0]
    signal = read_sd_marks(_png_round_trip(np.asarray(image)))
    assert signal.families == (SDFamily.SDXL,)
    assert signal.marks[0].reading is Reading.SDXL_BGR


def test_the_same_photo_unmarked_has_no_mark():
    signal = read_sd_marks(_photo())
    assert signal.status is CheckStatus.CHECKED and not signal.declares_ai and signal.marks == ()
    assert {r.reading for r in signal.reads} == set(Reading)
    assert all(r.bits_matched < r.threshold for r in signal.reads)
    (line,) = signal.describe()
    assert "no Stable Diffusion invisible mark" in line and "proves nothing" in line and "50 % resize" in line


def test_a_flat_image_reads_all_zero_bits():
    # U = 128 everywhere: every block scores 0, so each reading matches the zeros of its message, below every
    # threshold (the docstring's claim about flat and grey images).
    signal = read_sd_marks(np.full((256, 384, 3), 117, dtype=np.uint8))
    assert {r.reading: r.bits_matched for r in signal.reads} == {
        r: len(r.message) - sum(r.message) for r in Reading}
    assert not signal.declares_ai


def test_a_tiny_image_is_not_applicable():
    signal = read_sd_marks(_photo(200, 512))
    assert signal.status is CheckStatus.NOT_APPLICABLE and not signal.checked and not signal.declares_ai
    assert "512x200" in signal.reason
    assert signal.describe() == (f"Stable Diffusion invisible marks: not applicable ({signal.reason})",)


def test_a_missing_library_is_reported_as_not_checked(monkeypatch):
    for name in [m for m in sys.modules if m == "imwatermark" or m.startswith("imwatermark.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "imwatermark", None)  # makes `import imwatermark...` raise ImportError
    # The library's parameters are read once per process: forget them (a failed read is not kept, so nothing
    # needs restoring afterwards).
    sd_marks._library_parameters.cache_clear()
    signal = read_sd_marks(_photo())
    assert signal.status is CheckStatus.NOT_CHECKED and not signal.checked and not signal.declares_ai
    assert signal.reason == "invisible-watermark is not installed (pip install --no-deps invisible-watermark==0.2.0)"
    assert signal.describe() == ("Stable Diffusion invisible marks not checked: invisible-watermark is not installed "
                                 "(pip install --no-deps invisible-watermark==0.2.0)",)
    with pytest.raises(ImportError):
        decode_bits(_photo(), Reading.SD1)


@pytest.mark.parametrize("bad", [np.zeros((300, 300), np.uint8), np.zeros((300, 300, 4), np.uint8),
                                 np.zeros((300, 300, 3), np.float32), [[1, 2, 3]]])
def test_anything_but_rgb_uint8_is_refused(bad):
    with pytest.raises(InputError, match="RGB uint8"):
        read_sd_marks(bad)


def test_json_round_trip():
    signal = read_sd_marks(embed_as_generator(_photo(), Reading.SD2))
    data = json.loads(json.dumps(signal.to_dict()))
    assert data["declares_ai"] and data["marks"][0]["family"] == "Stable Diffusion 2.x"
    assert data["marks"][0]["threshold"] == 27 and data["marks"][0]["strength"] in ("likely", "very likely")
    assert SDMarkSignal.from_dict(data) == signal
    assert SDMarkSignal.from_dict(None) is None


def test_a_weak_reading_beside_a_stronger_mark_of_another_family_is_an_echo():
    sd1, echo, strong = (MarkRead(Reading.SD1, 136, 136), MarkRead(Reading.SDXL_BGR, 34, 48),
                         MarkRead(Reading.SDXL_RGB, 40, 48))
    assert SDMarkSignal(CheckStatus.CHECKED, reads=(echo, sd1)).families == (SDFamily.SD1,)
    assert SDMarkSignal(CheckStatus.CHECKED, reads=(echo, strong, sd1)).families == (SDFamily.SD1, SDFamily.SDXL)
    alone = SDMarkSignal(CheckStatus.CHECKED, reads=(echo,))
    assert alone.families == (SDFamily.SDXL,) and alone.marks[0].strength is Strength.LIKELY


def test_thresholds_and_their_random_bit_tails():
    # The figures of the module docstring: P(X >= k), X ~ Bin(n, 1/2), times the readings of the family.
    assert (Reading.SDXL_BGR.threshold, Reading.SDXL_BGR.very_likely_at) == (34, 36)
    assert random_match_probability(34, 48) == pytest.approx(2.758e-3, rel=1e-3)
    assert random_match_probability(34, 48, readings=2) == pytest.approx(5.516e-3, rel=1e-3)
    assert random_match_probability(36, 48, readings=2) == pytest.approx(7.172e-4, rel=1e-3)
    assert (Reading.SD1.threshold, Reading.SD1.very_likely_at) == (96, 100)
    assert random_match_probability(96, 136) == pytest.approx(8.697e-7, rel=1e-3)
    assert random_match_probability(100, 136) == pytest.approx(1.860e-8, rel=1e-3)
    assert (Reading.SD2.threshold, Reading.SD2.very_likely_at) == (27, 30)
    assert random_match_probability(27, 32) == pytest.approx(5.654e-5, rel=1e-3)
    assert random_match_probability(30, 32) == pytest.approx(1.232e-7, rel=1e-3)
    assert random_match_probability(0, 48, readings=2) == 1.0


def test_the_messages_are_the_generators():
    assert int("".join(map(str, Reading.SDXL_BGR.message)), 2) == 0xB3EC907BB19E
    assert np.packbits(np.array(Reading.SD1.message, np.uint8)).tobytes() == b"StableDiffusionV1"
    assert np.packbits(np.array(Reading.SD2.message, np.uint8)).tobytes() == b"SDV2"
