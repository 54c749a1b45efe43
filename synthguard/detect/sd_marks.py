"""The invisible marks of Stable Diffusion's reference generators (invisible-watermark ``dwtDct``), read as unsigned
AI declarations.

Who writes which mark (the generators' own source):

- **Stable Diffusion XL**: the 48 bits ``0xB3EC907BB19E`` (Stability's generative-models ``WatermarkEmbedder``,
  diffusers ``StableDiffusionXLWatermarker``), on images at least 256 px wide. Both hand the library a *float32*
  image of 0-255 values. generative-models (since its PR #25, July 2023) and diffusers 0.27+ (PR #7013, Feb. 2024)
  flip RGB to BGR first; diffusers 0.19-0.26, the releases SD-XL came out with, hand it RGB as if it were BGR.
  Both orders are read.
- **Stable Diffusion 1.x** (CompVis ``scripts/txt2img.py``): the bytes ``b"StableDiffusionV1"`` (136 bits);
  **2.x** (Stability-AI/stablediffusion ``scripts/txt2img.py``): ``b"SDV2"`` (32 bits). Both convert the uint8
  RGB image to BGR with ``cv2.cvtColor`` before encoding.

How dwtDct reads (invisible-watermark 0.2.0, ``imwatermark/maxDct.py``): the image, taken as BGR, goes to YUV
(``cv2.cvtColor``, whose U offset is 128 for uint8 and 0.5 for float32 images; a mark embedded in float32 reads back
inverted on warm images when read as uint8, so each mark is read in the type it was embedded in); only U is used
(``scales = [0, 36, 36]`` over ``range(2)``). The Haar approximation band of U is cut into 4x4 blocks (8x8
pixels), numbered row by row; block k carries bit ``k % n``. A block scores 1 when its largest non-first
coefficient, in absolute value, modulo 36 exceeds 18; a bit is 1 when the mean score of its blocks times 255 exceeds
127. The library's decoder loops over the blocks in Python: about 120 ms per megapixel and reading, 2 s for a 12 MP
photo, and each image needs four readings. This module computes the same scores with numpy (three passes: uint8
BGR, float32 BGR, float32 RGB), in strips of whole block rows so that memory stays bounded, with the parameters of
the installed library (``EmbedMaxDct``): about 30 ms for a 1024 x 1024 image and 0.4 s for 4000 x 3000, all
readings, one core. Its bits equal ``WatermarkDecoder.decode``'s bit for bit (tests/detect/test_sd_marks.py).

Thresholds (bits matching the generator's message). Under the null hypothesis of random bits the matches X are
Bin(n, 1/2); the per-image false-positive probability of a threshold k is P(X >= k), doubled for SD-XL's two
channel orders (a union bound):

| family | n | readings | likely | very likely | P(likely) per image | P(very likely) per image |
| --- | --- | --- | --- | --- | --- | --- |
| SD-XL | 48 | float32 BGR, float32 RGB as BGR | >= 34 | >= 36 | 2 x 2.76e-3 = 5.5e-3 | 2 x 3.59e-4 = 7.2e-4 |
| SD 1.x | 136 | uint8 BGR | >= 96 | >= 100 | 8.7e-7 | 1.9e-8 |
| SD 2.x | 32 | uint8 BGR | >= 27 | >= 30 | 5.7e-5 | 1.2e-7 |

SD-XL's thresholds are Stability's (generative-models ``scripts/demo/detect.py``: 34-35 of 48 "likely", 0.02 % of
10,000 unmarked images; 36 or more "very likely", none of them). SD 1.x's and 2.x's sit several bits above every
unmarked photo measured and below most marked ones. Real photographs are far from random bits: their chroma sits near
U = 128, where almost every block scores 0, so they read close to all zeros, i.e. the number of zeros of each
message (21 of 48, 68 of 136, 19 of 32); flat and grey images read exactly that. Measured with ``synthguard bench
sd-marks`` on 424 distinct unmarked real photos, crops and variants (250 from the scikit-image / scikit-learn set,
174 from the c2pa-rs photos of tests/fixtures/c2pa): no false positive of any family (95 % Clopper-Pearson upper
bound 0.9 %); the highest unmarked reads were 33 of 48 (one bit under Stability's threshold), 79 of 136 and 23 of
32. Marked and saved as PNG, the 20 + 12 photos read 21-48 of 48 (SD-XL counted, from 36 bits, on 55 of 64 over
both orders), 68-136 of 136 (29 of 32) and 13-32 of 32 (23 of 32): dwtDct itself fails on some photos
(saturated or strongly coloured areas clip what it writes, and a block whose largest coefficients tie loses its bit).

A mark counts as a declaration (``SDMarkSignal.declares_ai``) from SD 1.x's and 2.x's "likely", and from SD-XL's
"very likely" only: a "likely" SD-XL read is reported, not counted.

A strong mark of one family makes the other families' readings structured rather than random (the messages share
bit patterns under the block numbering): an SD 1.x mark on a warm photo reads 34 of 48 as SD-XL. So beside a
stronger mark only a "very likely" mark of another family is reported (``SDMarkSignal.marks``); every reading stays
in ``reads``.

What a mark is worth: nothing signs it. Anyone with the public library can write it into any image or strip it; it
does not survive a 50 % resize, a rotation or a JPEG with chroma subsampling (the usual 4:2:0, JPEG 85 included:
0-2 of 20 found). A mark found is a declaration of AI generation, not proof; no mark proves nothing.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import sys
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import cv2
import numpy as np

from synthguard.errors import InputError

MIN_SIDE = 256  # the generators mark only images at least this wide (the library needs 256 x 256 pixels' area)
INSTALL = "pip install --no-deps invisible-watermark==0.2.0"
STRIP_PIXELS = 1 << 20  # pixels read at a time, in whole rows of blocks: bounded memory on huge images

_UNSIGNED = ("the mark is unsigned: anyone with the public invisible-watermark library can add it to any image or "
             "remove it, so it declares AI generation without proving it")
_FRAGILE = ("the mark does not survive a 50 % resize, a rotation or a JPEG with chroma subsampling (JPEG 85 "
            "included), so its absence proves nothing")


class SDFamily(str, Enum):
    """The generator family whose reference code writes the mark."""

    SDXL = "Stable Diffusion XL"
    SD1 = "Stable Diffusion 1.x"
    SD2 = "Stable Diffusion 2.x"


class Strength(str, Enum):
    LIKELY = "likely"
    VERY_LIKELY = "very likely"


class CheckStatus(str, Enum):
    CHECKED = "checked"
    NOT_CHECKED = "not checked"  # the library is not installed
    NOT_APPLICABLE = "not applicable"  # too small to carry a mark


class Reading(str, Enum):
    """One way of handing the image to dwtDct: the way one generator handed it over when it embedded."""

    SDXL_BGR = "sdxl-bgr"  # float32, BGR: generative-models, diffusers >= 0.27
    SDXL_RGB = "sdxl-rgb"  # float32, RGB passed as BGR: diffusers 0.19-0.26
    SD1 = "sd1"  # uint8, BGR: CompVis scripts
    SD2 = "sd2"  # uint8, BGR: Stability-AI/stablediffusion scripts

    @property
    def family(self) -> SDFamily:
        return _SPECS[self].family

    @property
    def convention(self) -> str:
        """How the generator handed its pixels to the library, in words."""
        return _SPECS[self].convention

    @property
    def message(self) -> tuple[int, ...]:
        """The bits the generator embeds."""
        return _SPECS[self].message

    @property
    def threshold(self) -> int:
        """Bits matched from which a mark is reported ("likely")."""
        return _SPECS[self].likely

    @property
    def very_likely_at(self) -> int:
        return _SPECS[self].very_likely


@dataclass(frozen=True)
class _Spec:
    family: SDFamily
    message: tuple[int, ...]  # the bits the generator embeds
    rgb_as_bgr: bool  # the generator passed RGB where the library expects BGR
    float32: bool  # the generator passed float32 0-255 (U offset 0.5) rather than uint8 (offset 128)
    likely: int  # bits matched for "likely"
    very_likely: int  # bits matched for "very likely"
    convention: str


def _bits_of(data: bytes) -> tuple[int, ...]:
    return tuple(int(b) for b in np.unpackbits(np.frombuffer(data, np.uint8)))


SDXL_MESSAGE = tuple(int(b) for b in f"{0xB3EC907BB19E:048b}")
SD1_MESSAGE = _bits_of(b"StableDiffusionV1")
SD2_MESSAGE = _bits_of(b"SDV2")

_SPECS = {
    Reading.SDXL_BGR: _Spec(SDFamily.SDXL, SDXL_MESSAGE, False, True, 34, 36,
                            "float32 BGR, as generative-models and diffusers 0.27+ embed it"),
    Reading.SDXL_RGB: _Spec(SDFamily.SDXL, SDXL_MESSAGE, True, True, 34, 36,
                            "float32 RGB passed as BGR, as diffusers 0.19-0.26 embeds it"),
    Reading.SD1: _Spec(SDFamily.SD1, SD1_MESSAGE, False, False, 96, 100, "uint8 BGR, as the CompVis scripts embed it"),
    Reading.SD2: _Spec(SDFamily.SD2, SD2_MESSAGE, False, False, 27, 30,
                       "uint8 BGR, as the Stability-AI/stablediffusion scripts embed it"),
}


def readings_of(family: SDFamily) -> tuple[Reading, ...]:
    return tuple(r for r, spec in _SPECS.items() if spec.family is family)


def random_match_probability(matched: int, total: int, readings: int = 1) -> float:
    """Chance that random bits match at least ``matched`` of ``total`` in one of ``readings`` readings (a union
    bound): ``readings * P(X >= matched)``, X ~ Bin(total, 1/2), capped at 1."""
    tail = sum(math.comb(total, k) for k in range(max(matched, 0), total + 1)) / 2 ** total
    return min(1.0, readings * tail)


@dataclass(frozen=True)
class MarkRead:
    """What one reading gave: bits matching the generator's message."""

    reading: Reading
    bits_matched: int
    bits_total: int

    @property
    def family(self) -> SDFamily:
        return self.reading.family

    @property
    def strength(self) -> Strength | None:
        if self.bits_matched >= self.reading.very_likely_at:
            return Strength.VERY_LIKELY
        if self.bits_matched >= self.reading.threshold:
            return Strength.LIKELY
        return None

    @property
    def threshold(self) -> int:
        return self.reading.threshold

    @property
    def very_likely_at(self) -> int:
        return self.reading.very_likely_at

    @property
    def random_match_probability(self) -> float:
        """Chance that random bits match this well in one of this family's readings."""
        return random_match_probability(self.bits_matched, self.bits_total, len(readings_of(self.family)))

    def to_dict(self) -> dict:
        strength = self.strength
        return {"reading": self.reading.value, "family": self.family.value, "convention": self.reading.convention,
                "bits_matched": self.bits_matched, "bits_total": self.bits_total, "threshold": self.threshold,
                "very_likely_at": self.very_likely_at, "strength": strength.value if strength else None,
                "random_match_probability": self.random_match_probability}

    @classmethod
    def from_dict(cls, data: dict) -> MarkRead:
        return cls(Reading(data["reading"]), data["bits_matched"], data["bits_total"])

    def describe(self) -> str:
        strength = self.strength
        return (f"unsigned mark: the {self.family.value} invisible watermark (invisible-watermark dwtDct) is "
                f"{strength.value if strength else 'not'} present: {self.bits_matched} of {self.bits_total} bits "
                f"match, read as {self.reading.convention} (reported from {self.threshold} bits, very likely from "
                f"{self.very_likely_at}; random bits match this well with probability "
                f"{self.random_match_probability:.1e})")


@dataclass(frozen=True)
class SDMarkSignal:
    """The Stable Diffusion marks of one image: whether they could be read, every reading, the marks found."""

    status: CheckStatus
    reason: str | None = None  # why not checked / not applicable
    reads: tuple[MarkRead, ...] = ()  # every reading made, found or not
    width: int = 0
    height: int = 0

    @property
    def checked(self) -> bool:
        return self.status is CheckStatus.CHECKED

    @property
    def marks(self) -> tuple[MarkRead, ...]:
        """The marks found, strongest first: the best reading of each family at or above its threshold, except that
        beside a stronger mark of another family only a "very likely" one is kept (a strong mark makes the other
        families' readings structured rather than random: a "likely" there is an echo, not a second mark)."""
        best: dict[SDFamily, MarkRead] = {}
        for read in self.reads:
            if read.strength is not None and (read.family not in best
                                              or read.bits_matched > best[read.family].bits_matched):
                best[read.family] = read
        found = sorted(best.values(), key=lambda r: r.random_match_probability)
        return tuple(found[:1] + [m for m in found[1:] if m.strength is Strength.VERY_LIKELY])

    @property
    def counted(self) -> tuple[MarkRead, ...]:
        """The marks that count as a declaration: SD 1.x and 2.x from "likely", SD-XL only from "very likely" (a
        "likely" SD-XL read has a 5.5e-3 chance per image under random bits, and an unmarked photo read one bit
        under it: too close to label a picture on)."""
        return tuple(m for m in self.marks if m.family is not SDFamily.SDXL or m.strength is Strength.VERY_LIKELY)

    @property
    def declares_ai(self) -> bool:
        """A Stable Diffusion mark that counts was found: an unsigned declaration of AI generation."""
        return bool(self.counted)

    @property
    def families(self) -> tuple[SDFamily, ...]:
        return tuple(m.family for m in self.marks)

    def to_dict(self) -> dict:
        return {"status": self.status.value, "reason": self.reason, "declares_ai": self.declares_ai,
                "marks": [m.to_dict() for m in self.marks], "reads": [r.to_dict() for r in self.reads],
                "width": self.width, "height": self.height}

    @classmethod
    def from_dict(cls, data: dict | None) -> SDMarkSignal | None:
        if data is None:
            return None
        return cls(CheckStatus(data["status"]), data["reason"], tuple(MarkRead.from_dict(r) for r in data["reads"]),
                   data["width"], data["height"])

    def describe(self) -> tuple[str, ...]:
        if self.status is CheckStatus.NOT_CHECKED:
            return (f"Stable Diffusion invisible marks not checked: {self.reason}",)
        if self.status is CheckStatus.NOT_APPLICABLE:
            return (f"Stable Diffusion invisible marks: not applicable ({self.reason})",)
        if self.marks:
            weak = [m for m in self.marks if m not in self.counted]
            notes = tuple(f"{m.family.value}: {m.bits_matched}/{m.bits_total} is only \"likely\"; under "
                          f"{m.very_likely_at} bits it is not counted as a declaration" for m in weak)
            return (*(m.describe() for m in self.marks), *notes, *((_UNSIGNED,) if self.counted else ()))
        best = []
        for family in SDFamily:
            reads = [r for r in self.reads if r.family is family]
            if reads:
                top = max(reads, key=lambda r: r.bits_matched)
                counts_from = top.very_likely_at if family is SDFamily.SDXL else top.threshold
                best.append(f"{family.value} {top.bits_matched}/{top.bits_total}, counted from {counts_from}")
        return (f"no Stable Diffusion invisible mark found (best matches: {'; '.join(best)}); {_FRAGILE}",)


def read_sd_marks(rgb: np.ndarray) -> SDMarkSignal:
    """The Stable Diffusion 1.x / 2.x / XL invisible marks in an RGB uint8 image of shape (H, W, 3).

    Not checked when invisible-watermark is not installed; not applicable under 256 px a side. Raises
    ``InputError`` for an array that is not an RGB uint8 image."""
    _check_rgb(rgb)
    height, width = rgb.shape[:2]
    if min(height, width) < MIN_SIDE:
        return SDMarkSignal(CheckStatus.NOT_APPLICABLE,
                            f"the image is {width}x{height} px; the generators mark only images of {MIN_SIDE} px "
                            "and more a side", width=width, height=height)
    try:
        scales, block = _library_parameters()
    except ImportError as exc:
        missing = ("PyWavelets, which invisible-watermark's dwtDct needs, is not installed (pip install PyWavelets)"
                   if exc.name == "pywt" else f"invisible-watermark is not installed ({INSTALL})")
        return SDMarkSignal(CheckStatus.NOT_CHECKED, missing, width=width, height=height)
    reads = []
    for (rgb_as_bgr, float32), group in _passes().items():
        lengths = sorted({len(r.message) for r in group})
        bits = _decode_bits(rgb, rgb_as_bgr=rgb_as_bgr, float32=float32, lengths=lengths, scales=scales, block=block)
        for reading in group:
            message = np.asarray(reading.message, dtype=bool)
            reads.append(MarkRead(reading, int(np.count_nonzero(bits[len(message)] == message)), len(message)))
    return SDMarkSignal(CheckStatus.CHECKED, reads=tuple(reads), width=width, height=height)


def decode_bits(rgb: np.ndarray, reading: Reading) -> np.ndarray:
    """The bits (bool, one per message bit) that invisible-watermark's ``WatermarkDecoder("bits", n).decode(image,
    "dwtDct")`` gives for ``image``, the RGB uint8 pixels handed over as ``reading``'s generator handed them to the
    encoder. Raises ``ImportError`` without the library, ``InputError`` for an image that is not RGB uint8 or is
    under 256 x 256 pixels' area (the library's own limit)."""
    _check_rgb(rgb)
    if rgb.shape[0] * rgb.shape[1] < 256 * 256:
        raise InputError(f"dwtDct reads images of at least 256 x 256 pixels' area, not {rgb.shape[1]}x{rgb.shape[0]}")
    scales, block = _library_parameters()
    spec = _SPECS[reading]
    n = len(spec.message)
    return _decode_bits(rgb, rgb_as_bgr=spec.rgb_as_bgr, float32=spec.float32, lengths=[n], scales=scales,
                        block=block)[n]


def _check_rgb(rgb: object) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        shape = getattr(rgb, "shape", None)
        dtype = getattr(rgb, "dtype", type(rgb).__name__)
        raise InputError(f"the Stable Diffusion marks are read from an RGB uint8 image (H, W, 3), not {dtype} "
                         f"{shape}")


@functools.cache
def _library_parameters() -> tuple[tuple[int, ...], int]:
    """dwtDct's scales (per YUV channel) and block size, as the installed invisible-watermark defines them.

    Read from the library's ``maxDct`` module alone: the package's ``__init__`` also imports its RivaGAN
    watermark, and with it torch, which reading dwtDct does not need. Raises ``ImportError`` (``name`` saying
    what is missing) without the library or PyWavelets."""
    module = sys.modules.get("imwatermark.maxDct")
    if module is None:
        package = importlib.util.find_spec("imwatermark")  # a top-level spec: the package is not imported
        locations = package.submodule_search_locations if package is not None else None
        source = Path(locations[0]) / "maxDct.py" if locations else None
        if source is None or not source.is_file():
            raise ImportError("invisible-watermark is not installed", name="imwatermark")
        spec = importlib.util.spec_from_file_location("synthguard_imwatermark_maxdct", source)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    params = module.EmbedMaxDct()
    return tuple(int(s) for s in params._scales), int(params._block)


def _passes() -> dict[tuple[bool, bool], list[Reading]]:
    """The readings grouped by how the pixels are handed over: one pass over the image per group."""
    groups: dict[tuple[bool, bool], list[Reading]] = {}
    for reading, spec in _SPECS.items():
        groups.setdefault((spec.rgb_as_bgr, spec.float32), []).append(reading)
    return groups


def _decode_bits(rgb: np.ndarray, *, rgb_as_bgr: bool, float32: bool, lengths: list[int],
                 scales: tuple[int, ...], block: int) -> dict[int, np.ndarray]:
    """The bits ``WatermarkDecoder("bits", n).decode(image, "dwtDct")`` gives, for each n in ``lengths``, where
    ``image`` is the pixels as the generator handed them over (BGR or RGB, uint8 or float32)."""
    import pywt  # noqa: PLC0415

    low = pywt.Wavelet("haar").dec_lo[0]
    rows, cols = rgb.shape[0] // 4 * 4, rgb.shape[1] // 4 * 4  # the part the library transforms
    block_rows, block_cols = (rows // 2) // block, (cols // 2) // block  # blocks of the half-size Haar band
    span = 2 * block  # pixel rows per block row
    strip = max(span, STRIP_PIXELS // max(cols, 1) // span * span)
    sums = {n: np.zeros(n) for n in lengths}
    counts = {n: np.zeros(n, dtype=np.int64) for n in lengths}
    for channel in range(2):  # the library's loop: Y and U, each when its scale is positive
        scale = scales[channel]
        if scale <= 0:
            continue
        for top in range(0, block_rows * span, strip):
            bottom = min(top + strip, block_rows * span)
            pixels = rgb[top:bottom, :cols]
            image = pixels if rgb_as_bgr else cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
            if float32:
                image = image.astype(np.float32)
            band = _haar_approximation(np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGR2YUV)[:, :, channel]),
                                       low)
            n_rows = (bottom - top) // span
            blocks = (band[:n_rows * block, :block_cols * block]
                      .reshape(n_rows, block, block_cols, block).swapaxes(1, 2).reshape(-1, block * block))
            rest = np.abs(blocks[:, 1:])
            peak = rest[np.arange(len(rest)), rest.argmax(axis=1)]
            scores = (peak % scale) > 0.5 * scale
            index = top // span * block_cols + np.arange(len(scores))
            for n in lengths:
                sums[n] += np.bincount(index % n, weights=scores, minlength=n)
                counts[n] += np.bincount(index % n, minlength=n)
    out = {}
    for n in lengths:
        mean = np.divide(sums[n], counts[n], out=np.zeros(n), where=counts[n] > 0)
        out[n] = (mean * 255 > 127) & (counts[n] > 0)
    return out


def _haar_approximation(channel: np.ndarray, low: float) -> np.ndarray:
    """``pywt.dwt2(channel, "haar")[0]`` for an even-sized channel, computed the way pywt does (axis 0, then axis 1;
    each output the sum of two products with the low-pass tap, in float64 for integers, else in the input's type),
    without the three detail bands; equal to pywt's bit for bit (tested)."""
    x = channel.astype(np.float64) if channel.dtype.kind in "iu" else channel
    tap = x.dtype.type(low)
    rows = x[0::2] * tap + x[1::2] * tap
    return rows[:, 0::2] * tap + rows[:, 1::2] * tap
