"""Self-contained HTML reports of inspections: verdict, reasons, provenance, watermark, classifier heatmap and
forensic pictures, one section per file (pictures inlined as PNG data URIs, so the file can be mailed or archived).

Every string from a file (names, signer, manifest fields) is HTML-escaped: a hostile manifest cannot inject markup.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

from synthguard import __version__
from synthguard.detect import Inspection
from synthguard.detect import forensics
from synthguard.errors import InputError
from synthguard.fileio import write_atomic

PREVIEW_SIDE = 384  # pictures are shown at most this many pixels on their long side

_LABEL_COLOURS = {"ai-generated": "#b3261e", "likely-synthetic": "#c26a00", "tampered": "#7b1fa2",
                  "authentic-capture": "#1b5e20", "edited": "#0d47a1", "unknown": "#455a64"}


def _preview(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    scale = min(1.0, PREVIEW_SIDE / max(h, w))
    if scale == 1.0:
        return image
    return cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def heatmap_overlay(image: np.ndarray, heatmap: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8: the image in grey with each patch's P(synthetic) laid over it (blue 0 -> red 1)."""
    grey = forensics.to_luma(image) if image.ndim == 3 else image
    h, w = grey.shape
    probs = np.clip(np.asarray(heatmap, dtype=np.float32), 0.0, 1.0)
    cells = cv2.resize((probs * 255).astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
    colour = cv2.cvtColor(cv2.applyColorMap(cells, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    base = cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)
    return cv2.addWeighted(base, 0.55, colour, 0.45, 0.0)


def pictures(inspection: Inspection) -> dict[str, bytes]:
    """PNG pictures for one inspected image (empty for other media or when its pixels were not kept)."""
    image = inspection.pixels
    if image is None:
        return {}
    shown = _preview(image)
    out = {"image": forensics.to_png(shown)}
    c = inspection.classifier
    if c is not None and c.heatmap is not None:
        out["classifier heatmap"] = forensics.to_png(heatmap_overlay(shown, c.heatmap))
    try:
        out["spectrum"] = forensics.to_png(_preview(forensics.spectrum(image)))
        out["noise residual"] = forensics.to_png(_preview(forensics.noise_residual(image)))
        out["error level (JPEG 90)"] = forensics.to_png(_preview(forensics.error_level(image)))
    except InputError:  # too small for forensic pictures: the section says so through their absence
        pass
    return out


def _img(name: str, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(name)}</figcaption></figure>")


def _section(inspection: Inspection) -> str:
    e = html.escape
    v = inspection.verdict
    colour = _LABEL_COLOURS.get(v.label.value, "#455a64")
    confidence = "" if v.confidence is None else f" <span class=conf>confidence {v.confidence:.3f}</span>"
    parts = [f'<section><h2>{e(str(inspection.file))}</h2>',
             f'<p><span class=label style="background:{colour}">{e(v.label.value)}</span>{confidence} '
             f'<span class=mime>{e(inspection.media.mime)}</span></p>',
             "<ul class=reasons>" + "".join(f"<li>{e(r)}</li>" for r in v.reasons) + "</ul>"]
    figures = pictures(inspection)
    if figures:
        parts.append('<div class=figs>' + "".join(_img(k, png) for k, png in figures.items()) + "</div>")
        parts.append("<p class=note>Forensic pictures are evidence to look at, not verdicts: the spectrum shows "
                     "periodic peaks left by up-sampling, the noise residual what a denoiser removes, the error "
                     "level regions that re-compress differently. The heatmap shows each patch's P(synthetic) "
                     "(blue 0, red 1).</p>")
    p = inspection.provenance
    rows = [("state", p.state.value), ("source", p.source or ""), ("signer", p.signer or ""),
            ("issuer", p.issuer or ""), ("digital source type", p.digital_source_type or ""),
            ("actions", ", ".join(a.action for a in p.actions)), ("ingredients", str(p.ingredients)),
            ("failures", ", ".join(p.failures))]
    if p.model:
        rows.append(("model", json.dumps(p.model, sort_keys=True)))
    if p.recovered_from_ledger:
        rows.append(("recovered from ledger", f"by {p.ledger_match}; content identical: {p.ledger_content_match}"))
    if inspection.watermark is not None:
        w = inspection.watermark
        rows.append(("watermark", f"found, payload {w.payload}, p={w.p_value:.1e}, {w.algorithm}" if w.detected
                     else (f"not tested: {w.skipped}" if w.skipped else f"none found ({w.algorithm})")))
    if inspection.classifier is not None:
        c = inspection.classifier
        rows.append(("classifier", f"not run: {c.skipped}" if c.skipped else
                     f"P(synthetic) {c.probability:.3f}, threshold {c.threshold:.3f}, {c.patches} patches, "
                     f"{c.model}"))
    parts.append("<table>" + "".join(f"<tr><th>{e(k)}</th><td>{e(val)}</td></tr>" for k, val in rows if val)
                 + "</table></section>")
    return "\n".join(parts)


_STYLE = """body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#1c1c1c}
h1{font-size:1.4em}h2{font-size:1.05em;word-break:break-all}section{border-top:1px solid #ccc;padding:.5em 0}
.label{color:#fff;padding:.15em .6em;border-radius:.3em;font-weight:600}.conf,.mime{color:#555;margin-left:.8em}
.figs{display:flex;flex-wrap:wrap;gap:.8em}figure{margin:0}figure img{max-width:384px;display:block;
image-rendering:pixelated}figcaption{font-size:.85em;color:#555}table{border-collapse:collapse;margin-top:.5em}
th,td{text-align:left;padding:.15em .8em .15em 0;vertical-align:top}th{color:#555;font-weight:500}
.note{font-size:.85em;color:#555}.errors li{color:#b3261e}"""


def render_html(inspections: Sequence[Inspection], errors: Sequence[tuple[str, str]] = (), *,
                title: str = "SynthGuard verification report") -> str:
    """The whole report as one HTML document; ``errors`` lists (file, message) of files that could not be read."""
    e = html.escape
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    counts: dict[str, int] = {}
    for inspection in inspections:
        counts[inspection.verdict.label.value] = counts.get(inspection.verdict.label.value, 0) + 1
    summary = ", ".join(f"{n} {label}" for label, n in sorted(counts.items()))
    body = [f"<h1>{e(title)}</h1>",
            f"<p>{len(inspections)} file(s) inspected{': ' + e(summary) if summary else ''}; "
            f"{len(errors)} unreadable. SynthGuard {e(__version__)}, {e(when)}.</p>"]
    if errors:
        body.append("<h2>Unreadable files</h2><ul class=errors>"
                    + "".join(f"<li>{e(f)}: {e(msg)}</li>" for f, msg in errors) + "</ul>")
    body += [_section(i) for i in inspections]
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{e(title)}</title>"
            f"<style>{_STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def write_report(path: Path, inspections: Sequence[Inspection], errors: Sequence[tuple[str, str]] = ()) -> None:
    """Write the HTML report atomically (a half-written report never appears)."""
    write_atomic(Path(path), render_html(inspections, errors).encode("utf-8"))
