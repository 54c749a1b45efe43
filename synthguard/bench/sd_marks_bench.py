"""Stable Diffusion mark benchmark: how often ``detect.sd_marks`` finds the marks that SD-XL, SD 1.x and SD 2.x write,
and how often it finds one in real photographs that carry none.

Marked: 20 real photos, each marked with invisible-watermark's own encoder the way each generator calls it
(``embed_as_generator``) at that generator's usual size (SD-XL 1024 px, SD 1.x 512, SD 2.x 768), then saved as PNG
and as JPEG 85 (Pillow's default 4:2:0 chroma subsampling, as most encoders), and, reported for completeness, as
JPEG 85 without subsampling (4:4:4), resized to 50 % and rotated 90 degrees. A mark counts as detected when the
reader names the right family.

Unmarked: the same photos at their own size and deterministic crops, rescales, rotations, re-encodings and grey
copies of them, at least 256 px a side, each distinct; every reading of every family runs on each. Reported per
family and for any family: false positives, their rate and the upper end of its 95 % Clopper-Pearson interval.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from synthguard.bench.watermark_bench import SKIMAGE_PHOTOS, as_rgb, default_photos, folder_photos
from synthguard.detect.sd_marks import INSTALL, MIN_SIDE, Reading, SDFamily, SDMarkSignal, read_sd_marks, readings_of
from synthguard.errors import Hint, InputError

MARKED_PHOTOS = 20
GENERATOR_SIZE = {Reading.SDXL_BGR: 1024, Reading.SDXL_RGB: 1024, Reading.SD1: 512, Reading.SD2: 768}
REPORT_ONLY = ("jpeg85-444", "resize50", "rotate90")
TIMED_SIZES = ((1024, 1024), (3000, 4000))  # (height, width)


def _jpeg(rgb: np.ndarray, quality: int, subsampling: int | None = None) -> np.ndarray:
    buf = io.BytesIO()
    options = {} if subsampling is None else {"subsampling": subsampling}
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality, **options)
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        return np.asarray(im.convert("RGB"))


def _png(rgb: np.ndarray) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        return np.asarray(im.convert("RGB"))


def _half(rgb: np.ndarray) -> np.ndarray:
    return cv2.resize(rgb, (rgb.shape[1] // 2, rgb.shape[0] // 2), interpolation=cv2.INTER_AREA)


FORMATS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "png": _png,
    "jpeg85": lambda rgb: _jpeg(rgb, 85),
    "jpeg85-444": lambda rgb: _jpeg(rgb, 85, subsampling=0),
    "resize50": _half,
    "rotate90": lambda rgb: np.ascontiguousarray(np.rot90(rgb)),
}


def embed_as_generator(rgb: np.ndarray, reading: Reading) -> np.ndarray:
    """``rgb`` (uint8) marked by invisible-watermark's encoder as the generator behind ``reading`` calls it, and
    brought back to uint8 RGB as that generator saves it.

    SD-XL (diffusers' ``StableDiffusionXLWatermarker``, generative-models' ``WatermarkEmbedder``): a float32 image
    of 0-255 values, flipped to BGR (``SDXL_BGR``) or not (``SDXL_RGB``, diffusers 0.19-0.26), clamped and rounded
    back to uint8. SD 1.x / 2.x (``put_watermark`` of the reference scripts): uint8, ``cv2.COLOR_RGB2BGR``, encode,
    channels flipped back."""
    from imwatermark import WatermarkEncoder  # noqa: PLC0415

    encoder = WatermarkEncoder()
    if reading in (Reading.SDXL_BGR, Reading.SDXL_RGB):
        encoder.set_watermark("bits", list(reading.message))
        image = rgb.astype(np.float32)
        if reading is Reading.SDXL_BGR:
            out = encoder.encode(np.ascontiguousarray(image[:, :, ::-1]), "dwtDct")[:, :, ::-1]
        else:
            out = encoder.encode(image, "dwtDct")
        return np.round(np.clip(out, 0, 255)).astype(np.uint8)
    encoder.set_watermark("bytes", np.packbits(np.asarray(reading.message, np.uint8)).tobytes())
    out = encoder.encode(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), "dwtDct")
    return np.ascontiguousarray(out[:, :, ::-1])


def native_photos(folder: Path | None = None) -> list[tuple[str, np.ndarray]]:
    """The photos at their own size: scikit-image's and scikit-learn's (as ``bench watermark``), or a folder's."""
    if folder is not None:
        from synthguard.core.media import MediaKind, decode_image, sniff  # noqa: PLC0415

        found = []
        for path in sorted(Path(folder).iterdir()):
            if path.is_file():
                try:
                    if sniff(path).kind is MediaKind.IMAGE:
                        found.append((path.name, decode_image(path, keep_rgb=True).rgb))
                except InputError:
                    continue
        if not found:
            raise InputError(f"{folder}: no readable images")
        return found
    import skimage.data  # noqa: PLC0415
    from sklearn.datasets import load_sample_images  # noqa: PLC0415

    photos = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        photos += [(name, getattr(skimage.data, name)()) for name in SKIMAGE_PHOTOS]
        photos.append(("motorcycle_left", skimage.data.stereo_motorcycle()[0]))
        sample = load_sample_images()
        photos += [(Path(f).stem, im) for f, im in zip(sample.filenames, sample.images, strict=True)]
    return [(name, as_rgb(im)) for name, im in photos]


def _centre_square(rgb: np.ndarray, size: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    side = min(h, w)
    crop = rgb[(h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA if side > size else cv2.INTER_CUBIC)


def _scaled(rgb: np.ndarray, factor: float) -> np.ndarray:
    size = (round(rgb.shape[1] * factor), round(rgb.shape[0] * factor))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC)


def unmarked_variants(name: str, rgb: np.ndarray) -> Iterable[tuple[str, np.ndarray]]:
    """Deterministic real-photo variants (some may be under 256 px; the caller keeps those that are not)."""
    h, w = rgb.shape[:2]
    yield f"{name}", rgb
    for size in (256, 384, 512, 768, 1024):
        yield f"{name} square {size}", _centre_square(rgb, size)
    ch, cw = int(h * 0.75), int(w * 0.75)
    for tag, top, left in (("tl", 0, 0), ("tr", 0, w - cw), ("bl", h - ch, 0), ("br", h - ch, w - cw)):
        yield f"{name} crop 75% {tag}", np.ascontiguousarray(rgb[top:top + ch, left:left + cw])
    yield f"{name} scale 0.8", _scaled(rgb, 0.8)
    yield f"{name} scale 1.5", _scaled(rgb, 1.5)
    yield f"{name} jpeg 85", _jpeg(rgb, 85)
    yield f"{name} square 512 jpeg 95", _jpeg(_centre_square(rgb, 512), 95)
    yield f"{name} rotate 90", np.ascontiguousarray(np.rot90(rgb))
    grey = cv2.cvtColor(_centre_square(rgb, 768), cv2.COLOR_RGB2GRAY)
    yield f"{name} square 768 grey", np.repeat(grey[..., None], 3, axis=2)


def unmarked_set(photos: list[tuple[str, np.ndarray]]) -> list[tuple[str, np.ndarray]]:
    """Every distinct variant at least ``MIN_SIDE`` a side."""
    seen, out = set(), []
    for name, rgb in photos:
        for label, image in unmarked_variants(name, rgb):
            if min(image.shape[:2]) < MIN_SIDE:
                continue
            digest = hashlib.sha256(repr(image.shape).encode() + image.tobytes()).hexdigest()
            if digest not in seen:
                seen.add(digest)
                out.append((label, image))
    return out


def clopper_pearson_upper(k: int, n: int, confidence: float = 0.95) -> float:
    """Upper end of the two-sided Clopper-Pearson interval for k successes in n trials: the p with
    P(X <= k | n, p) = (1 - confidence) / 2 (1 when k = n)."""
    if n <= 0 or k >= n:
        return 1.0
    alpha = (1 - confidence) / 2

    def cdf(p: float) -> float:
        return sum(np.exp(_log_comb(n, i) + i * np.log(p) + (n - i) * np.log1p(-p)) for i in range(k + 1))

    lo, hi = k / n, 1.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) > alpha else (lo, mid)
    return hi


def _log_comb(n: int, k: int) -> float:
    from math import lgamma  # noqa: PLC0415

    return lgamma(n + 1) - lgamma(k + 1) - lgamma(n - k + 1)


def _rate(k: int, n: int) -> dict:
    return {"count": k, "n": n, "rate": k / n if n else None, "upper_95": clopper_pearson_upper(k, n)}


def _timings(photo: np.ndarray, repeat: int = 5) -> dict[str, float]:
    out = {}
    for h, w in TIMED_SIZES:
        image = cv2.resize(photo, (w, h), interpolation=cv2.INTER_CUBIC)
        read_sd_marks(image)
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            read_sd_marks(image)
            times.append(time.perf_counter() - start)
        out[f"{w}x{h}"] = 1000 * statistics.median(times)
    return out


def run(photos_dir: Path | None = None, *, progress: bool = True) -> dict:
    """The whole benchmark (``progress``: bars on stderr, when it is a terminal)."""
    from tqdm import tqdm  # noqa: PLC0415

    if importlib.util.find_spec("imwatermark") is None:
        raise InputError(f"the Stable Diffusion mark benchmark needs invisible-watermark: {INSTALL}",
                         hint=Hint.INSTALL_EXTRA)
    if photos_dir is None and (importlib.util.find_spec("skimage") is None
                               or importlib.util.find_spec("sklearn") is None):
        raise InputError("the default photo set needs scikit-image and scikit-learn (or give a folder of photos)",
                         hint=Hint.INSTALL_EXTRA)
    cv2.setNumThreads(1)
    marked = []
    for reading, size in GENERATOR_SIZE.items():
        squares = (folder_photos(photos_dir, size) if photos_dir else default_photos(size))[:MARKED_PHOTOS]
        bar = tqdm(squares, desc=f"marked {reading.value}", unit="photo", file=sys.stderr,
                   disable=None if progress else True)
        found = {f: 0 for f in FORMATS}
        wrong = {f: 0 for f in FORMATS}
        matched: dict[str, list[int]] = {f: [] for f in FORMATS}
        for _, photo in bar:
            mark = embed_as_generator(photo, reading)
            for fmt, transform in FORMATS.items():
                signal = read_sd_marks(transform(mark))
                counted = [m.family for m in signal.counted]  # what labels a picture ai-declared
                found[fmt] += reading.family in counted
                wrong[fmt] += any(f is not reading.family for f in counted)
                matched[fmt].append(_best(signal, reading.family))
        marked.append({"reading": reading.value, "family": reading.family.value, "convention": reading.convention,
                       "size": size, "photos": len(squares),
                       "formats": {f: {**_rate(found[f], len(squares)), "report_only": f in REPORT_ONLY,
                                       "other_family_found": wrong[f], "bits_matched_min": min(matched[f]),
                                       "bits_matched_median": statistics.median(matched[f])}
                                   for f in FORMATS}})
    photos = native_photos(photos_dir)
    images = unmarked_set(photos)
    hits = {family: [] for family in SDFamily}
    best = {family: 0 for family in SDFamily}
    for label, image in tqdm(images, desc="unmarked", unit="image", file=sys.stderr,
                             disable=None if progress else True):
        signal = read_sd_marks(image)
        for family in SDFamily:
            best[family] = max(best[family], _best(signal, family))
            if family in (m.family for m in signal.counted):
                hits[family].append(label)
    any_hit = sorted({label for labels in hits.values() for label in labels})
    n = len(images)
    families = {}
    for family in SDFamily:
        first = readings_of(family)[0]
        families[family.value] = {**_rate(len(hits[family]), n), "images": hits[family],
                                  "readings": [r.value for r in readings_of(family)],
                                  "threshold": first.very_likely_at if family is SDFamily.SDXL else first.threshold,
                                  "max_bits_matched": best[family],
                                  "bits_total": len(first.message)}
    timed = _timings(photos[0][1])
    return {"photos": len(photos), "marked_photos": min(MARKED_PHOTOS, len(photos)), "marked": marked,
            "unmarked": {"images": n, "min_side": MIN_SIDE, "families": families, "any": {**_rate(len(any_hit), n),
                                                                                         "images": any_hit}},
            "ms_per_image": timed, "photo_set": str(photos_dir) if photos_dir else "scikit-image + scikit-learn"}


def _best(signal: SDMarkSignal, family: SDFamily) -> int:
    return max((r.bits_matched for r in signal.reads if r.family is family), default=0)


def render(result: dict) -> str:
    lines = [f"Stable Diffusion invisible marks (invisible-watermark dwtDct), photo set: {result['photo_set']}",
             "", "detection rate: marked with the library's own encoder as each generator calls it "
             f"({result['marked_photos']} photos each)"]
    formats = list(FORMATS)
    lines.append(f"{'reading':<10} {'px':>5}" + "".join(f" {f:>11}" for f in formats))
    for row in result["marked"]:
        cells = "".join(f" {c['count']:>4}/{c['n']:<2} {_pct(c['rate'])}"
                        for c in (row["formats"][f] for f in formats))
        lines.append(f"{row['reading']:<10} {row['size']:>5}{cells}")
    lines += [f"  {row['reading']}: {row['family']}, {row['convention']}" for row in result["marked"]]
    lines.append(f"({', '.join(REPORT_ONLY)}: reported for completeness; jpeg85 is Pillow's default 4:2:0)")
    u = result["unmarked"]
    lines += ["", f"false positives on {u['images']} unmarked real photos, crops and variants (>= {u['min_side']} px):"]
    for family, row in u["families"].items():
        lines.append(f"  {family:<22} {row['count']:>3}/{row['n']}  rate {row['rate']:.4f}  95% upper "
                     f"{row['upper_95']:.4f}  (threshold {row['threshold']}/{row['bits_total']}, highest unmarked "
                     f"{row['max_bits_matched']}; readings {', '.join(row['readings'])})")
    a = u["any"]
    lines.append(f"  {'any family':<22} {a['count']:>3}/{a['n']}  rate {a['rate']:.4f}  95% upper {a['upper_95']:.4f}"
                 + (f"  ({'; '.join(a['images'])})" if a["images"] else ""))
    lines += ["", "time per image (all readings, one cv2 thread, median of 5): "
              + ", ".join(f"{size} {ms:.0f} ms" for size, ms in result["ms_per_image"].items())]
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "  -  " if value is None else f"{100 * value:4.0f}%"
