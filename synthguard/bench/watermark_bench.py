"""Watermark robustness benchmark: SynthGuard's watermark and peer watermarks through one attack suite, one run.

For every method, image and attack: embed a random payload, attack the marked image, decode; and attack the
*unmarked* image too, to count false detections. Reported per attack: share of images whose payload comes back
exactly, mean bit accuracy; per method: PSNR/SSIM of marked images, embed/decode time per megapixel.

Peers (optional): invisible-watermark's ``dwtDctSvd`` (48 bits) and ``rivaGan`` (32 bits, its fixed capacity). They
have no detection test of their own, so a peer "detects" only when every decoded bit matches the embedded payload;
their false positives count decodes of unmarked images that match exactly.
"""

from __future__ import annotations

import importlib.util
import statistics
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from synthguard.errors import InputError
from synthguard.watermark import ImageWatermarker, default_image_watermarker
from synthguard.watermark.image.attacks import REPORT_ONLY

# The photographs that ship inside scikit-image and scikit-learn (no download). Synthetic test charts are left out.
SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "camera", "immunohistochemistry",
                  "retina", "moon", "grass", "gravel", "brick", "coins", "clock", "cat", "page", "text")
PEERS_INSTALL = ("pip install -c constraints.txt -e '.[bench]' && pip install --no-deps invisible-watermark==0.2.0")


def _square(image: np.ndarray, size: int) -> np.ndarray:
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = image[top:top + side, left:left + side]
    interp = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
    return cv2.resize(crop, (size, size), interpolation=interp)


def as_rgb(image: np.ndarray) -> np.ndarray:
    """A photo as (H, W, 3) uint8 RGB: grey repeated, alpha dropped."""
    image = np.asarray(image, dtype=np.uint8)
    return np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else np.ascontiguousarray(image[..., :3])


def default_photos(size: int) -> list[tuple[str, np.ndarray]]:
    """The scikit-image and scikit-learn photographs, centre-cropped square at ``size``."""
    if importlib.util.find_spec("skimage") is None or importlib.util.find_spec("sklearn") is None:
        raise InputError("the default photo set needs scikit-image and scikit-learn: "
                         f"{PEERS_INSTALL.split(' && ')[0]} (or give --images DIR)")
    import skimage.data  # noqa: PLC0415
    from sklearn.datasets import load_sample_images  # noqa: PLC0415

    photos = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in SKIMAGE_PHOTOS:
            photos.append((name, getattr(skimage.data, name)()))
        photos.append(("motorcycle_left", skimage.data.stereo_motorcycle()[0]))
        sample = load_sample_images()
        photos += [(Path(f).stem, im) for f, im in zip(sample.filenames, sample.images, strict=True)]
    return [(name, _square(as_rgb(im), size)) for name, im in photos]


def folder_photos(folder: Path, size: int) -> list[tuple[str, np.ndarray]]:
    from synthguard.core.media import MediaKind, decode_image, sniff  # noqa: PLC0415

    found = []
    for path in sorted(Path(folder).iterdir()):
        if path.is_file():
            try:
                if sniff(path).kind is MediaKind.IMAGE:
                    found.append((path.name, _square(decode_image(path, keep_rgb=True).rgb, size)))
            except InputError:
                continue
    if not found:
        raise InputError(f"{folder}: no readable images")
    return found


@dataclass
class Method:
    """One watermark under test: ``embed(rgb, payload bits) -> rgb``, ``decode(rgb) -> (bits | None, detected)``."""

    name: str
    bits: int
    embed: Callable[[np.ndarray, np.ndarray], np.ndarray]
    decode: Callable[[np.ndarray], tuple[np.ndarray | None, bool]]


def synthguard_method(watermarker: ImageWatermarker) -> Method:
    n = watermarker.payload_bytes * 8

    def embed(rgb, bits):
        return watermarker.embed(rgb, np.packbits(bits).tobytes())

    def decode(rgb):
        result = watermarker.detect(rgb)
        if result.detected and result.payload is not None:
            return np.unpackbits(np.frombuffer(result.payload, np.uint8))[:n], True
        raw = getattr(watermarker, "estimate_payload_bits", None)  # best guess without the check, if offered
        return (raw(rgb) if raw else None), False

    return Method(f"synthguard {watermarker.algorithm_id}", n, embed, decode)


def peer_methods() -> list[Method]:
    """invisible-watermark's dwtDctSvd and rivaGan, when installed."""
    if importlib.util.find_spec("imwatermark") is None:
        return []
    from imwatermark import WatermarkDecoder, WatermarkEncoder  # noqa: PLC0415

    def make(method: str, bits: int) -> Method:
        if method == "rivaGan":
            WatermarkEncoder.loadModel()

        def embed(rgb, payload):
            encoder = WatermarkEncoder()
            encoder.set_watermark("bits", [int(b) for b in payload])
            return cv2.cvtColor(encoder.encode(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), method), cv2.COLOR_BGR2RGB)

        def decode(rgb):
            out = WatermarkDecoder("bits", bits).decode(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), method)
            return np.asarray(out, dtype=np.uint8), None

        return Method(f"invisible-watermark {method}", bits, embed, decode)

    return [make("dwtDctSvd", 48), make("rivaGan", 32)]


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of the luma (Gaussian window sigma 1.5, the usual constants)."""
    x = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(np.float64)
    y = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY).astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    blur = lambda z: cv2.GaussianBlur(z, (11, 11), 1.5)  # noqa: E731
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    return float(np.mean((2 * mx * my + c1) * (2 * cxy + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2))))


@dataclass
class MethodReport:
    method: str
    bits: int
    images: int
    psnr: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    embed_ms_per_mp: list[float] = field(default_factory=list)
    decode_ms_per_mp: list[float] = field(default_factory=list)
    exact: dict[str, list[bool]] = field(default_factory=dict)
    bit_accuracy: dict[str, list[float]] = field(default_factory=dict)
    false_positives: dict[str, int] = field(default_factory=dict)
    unmarked_tests: int = 0

    def summary(self) -> dict:
        med = lambda v: statistics.median(v) if v else None  # noqa: E731
        mean = lambda v: float(np.mean(v)) if v and not np.isnan(v).any() else None  # noqa: E731
        return {
            "method": self.method, "payload_bits": self.bits, "images": self.images,
            "psnr_mean": mean(self.psnr), "psnr_min": min(self.psnr) if self.psnr else None,
            "ssim_mean": mean(self.ssim), "embed_ms_per_mp": med(self.embed_ms_per_mp),
            "decode_ms_per_mp": med(self.decode_ms_per_mp),
            "attacks": {a: {"exact": mean(v), "bit_accuracy": mean(self.bit_accuracy.get(a, [])),
                            "false_positives": self.false_positives.get(a, 0), "report_only": a in REPORT_ONLY}
                        for a, v in self.exact.items()},
            "false_positives_total": sum(self.false_positives.values()), "unmarked_tests": self.unmarked_tests,
        }


def run_method(method: Method, photos: list[tuple[str, np.ndarray]], attacks: dict, *, seed: int = 0,
               tick: Callable[[], None] = lambda: None) -> MethodReport:
    rng = np.random.default_rng(seed)
    report = MethodReport(method.name, method.bits, len(photos))
    for _, image in photos:
        mp = image.shape[0] * image.shape[1] / 1e6
        payload = rng.integers(0, 2, method.bits, dtype=np.uint8)
        t0 = time.perf_counter()
        marked = method.embed(image, payload)
        t1 = time.perf_counter()
        method.decode(marked)
        t2 = time.perf_counter()
        report.embed_ms_per_mp.append((t1 - t0) * 1e3 / mp)
        report.decode_ms_per_mp.append((t2 - t1) * 1e3 / mp)
        report.psnr.append(float(cv2.PSNR(image, marked)))
        report.ssim.append(ssim(image, marked))
        for name, attack in attacks.items():
            bits, detected = method.decode(attack(marked))
            exact = bits is not None and bool(np.array_equal(bits, payload)) and detected is not False
            report.exact.setdefault(name, []).append(exact)
            # NaN when the method offers no bit estimate for a failed decode: the mean is then not reported, rather
            # than averaged over the successes only.
            accuracy = float(np.mean(bits == payload)) if bits is not None else float("nan")
            report.bit_accuracy.setdefault(name, []).append(accuracy)
            bits_u, detected_u = method.decode(attack(image))
            false = bool(detected_u) if detected_u is not None else (
                bits_u is not None and bool(np.array_equal(bits_u, payload)))
            report.false_positives[name] = report.false_positives.get(name, 0) + int(false)
            report.unmarked_tests += 1
            tick()
    return report


def iter_methods(include_peers: bool) -> Iterator[Method]:
    yield synthguard_method(default_image_watermarker())
    if include_peers:
        yield from peer_methods()


SCREEN_TIMINGS = ("unmarked_screen", "unmarked_full", "marked_screen", "marked_full")


@dataclass
class ScreenRow:
    """One attack of the screen comparison: TileMark's ``detect`` with its rejection screen and without it."""

    attack: str
    exact_screen: int = 0
    exact_full: int = 0
    false_positives_screen: int = 0
    false_positives_full: int = 0
    lost: int = 0  # marked images the full search detects and the screened detect does not
    differing: int = 0  # marked images whose two results differ in any field
    unmarked_passed: int = 0  # unmarked images the screen let on to the full search
    images: int = 0
    ms: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in SCREEN_TIMINGS})

    def to_dict(self) -> dict:
        med = {k: (statistics.median(v) if v else None) for k, v in self.ms.items()}
        return {"attack": self.attack, "images": self.images, "exact_screen": self.exact_screen,
                "exact_full": self.exact_full, "false_positives_screen": self.false_positives_screen,
                "false_positives_full": self.false_positives_full, "lost": self.lost, "differing": self.differing,
                "unmarked_passed": self.unmarked_passed, "median_ms": med}


def run_screen_comparison(watermarker, photos: list[tuple[str, np.ndarray]], attacks: dict, *, seed: int = 0,
                          tick: Callable[[], None] = lambda: None) -> dict:
    """Every photo marked with a random payload, every attack on the marked and on the unmarked photo, each read by
    ``detect(screen=True)`` and ``detect(screen=False)`` (timed, one after the other); ``passes_screen`` on the
    unmarked ones gives the screen's pass rate. ``lost`` and ``differing`` must stay 0."""
    rng = np.random.default_rng(seed)
    rows = {name: ScreenRow(name) for name in attacks}

    def timed(image, screen):
        t0 = time.perf_counter()
        result = watermarker.detect(image, screen=screen)
        return result, (time.perf_counter() - t0) * 1e3

    for _, image in photos:
        payload = np.packbits(rng.integers(0, 2, watermarker.payload_bytes * 8, dtype=np.uint8)).tobytes()
        marked = watermarker.embed(image, payload)
        for name, attack in attacks.items():
            row, attacked, plain = rows[name], attack(marked), attack(image)
            (m_scr, t_ms), (m_full, t_mf) = timed(attacked, True), timed(attacked, False)
            (u_scr, t_us), (u_full, t_uf) = timed(plain, True), timed(plain, False)
            row.images += 1
            row.exact_screen += int(m_scr.detected and m_scr.payload == payload)
            row.exact_full += int(m_full.detected and m_full.payload == payload)
            row.false_positives_screen += int(u_scr.detected)
            row.false_positives_full += int(u_full.detected)
            row.lost += int(m_full.detected and not m_scr.detected)
            row.differing += int(m_scr != m_full)
            row.unmarked_passed += int(watermarker.passes_screen(plain))
            for key, value in zip(SCREEN_TIMINGS, (t_us, t_uf, t_ms, t_mf), strict=True):
                row.ms[key].append(value)
            tick()
    out = [r.to_dict() for r in rows.values()]
    every = {k: [v for r in rows.values() for v in r.ms[k]] for k in SCREEN_TIMINGS}
    return {"method": f"synthguard {watermarker.algorithm_id}", "attacks": out,
            "lost": sum(r.lost for r in rows.values()), "differing": sum(r.differing for r in rows.values()),
            "unmarked_passed": sum(r.unmarked_passed for r in rows.values()),
            "unmarked_tests": sum(r.images for r in rows.values()),
            **{f"median_ms_{k}": statistics.median(v) if v else None for k, v in every.items()}}


def screen_table(result: dict) -> list[str]:
    """The lines ``bench watermark --screen-compare`` prints for ``run_screen_comparison``'s result."""
    lines = [f"{result['method']}: detect with the rejection screen vs the full geometry search",
             f"{'attack':<26} | exact (screen / full) | FP (screen / full) | ms unmarked (screen / full) | "
             "ms marked (screen / full) | lost | screen passed"]
    fmt = lambda v: "  -  " if v is None else f"{v:5.1f}"  # noqa: E731
    for a in result["attacks"]:
        ms, n = a["median_ms"], a["images"]
        lines.append(f"{a['attack']:<26} | {a['exact_screen']:>4d} / {a['exact_full']:<4d} of {n:<4d}    | "
                     f"{a['false_positives_screen']:>3d} / {a['false_positives_full']:<3d}          | "
                     f"{fmt(ms['unmarked_screen'])} / {fmt(ms['unmarked_full'])}               | "
                     f"{fmt(ms['marked_screen'])} / {fmt(ms['marked_full'])}             | {a['lost']:>4d} | "
                     f"{a['unmarked_passed']}/{n}")
    lines.append(f"marked images the full search detects and the screen loses: {result['lost']}; results differing: "
                 f"{result['differing']}; unmarked images the screen let through: {result['unmarked_passed']}/"
                 f"{result['unmarked_tests']}")
    lines.append(f"median detect: unmarked {fmt(result['median_ms_unmarked_screen'])} ms with the screen, "
                 f"{fmt(result['median_ms_unmarked_full'])} ms without; marked {fmt(result['median_ms_marked_screen'])}"
                 f" ms with, {fmt(result['median_ms_marked_full'])} ms without")
    return lines
