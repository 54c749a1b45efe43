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
from synthguard.core.fileio import write_atomic
from synthguard.core.media import MediaKind, decode_image, sniff
from synthguard.detect import Inspection, forensics
from synthguard.errors import InputError

PREVIEW_SIDE = 384  # pictures are shown at most this many pixels on their long side

_LABEL_COLOURS = {"ai-generated": "#b3261e", "likely-synthetic": "#c26a00", "tampered": "#7b1fa2",
                  "authentic-capture": "#1b5e20", "edited": "#0d47a1", "unknown": "#455a64"}


def heatmap_overlay(image: np.ndarray, heatmap: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8: the image in grey with each patch's P(synthetic) laid over it (blue 0 -> red 1)."""
    grey = forensics.to_luma(image) if image.ndim == 3 else image
    h, w = grey.shape
    probs = np.clip(np.asarray(heatmap, dtype=np.float32), 0.0, 1.0)
    cells = cv2.resize((probs * 255).astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
    colour = cv2.cvtColor(cv2.applyColorMap(cells, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    base = cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)
    return cv2.addWeighted(base, 0.55, colour, 0.45, 0.0)


def pictures(pixels: np.ndarray | None, heatmap=None, *, preview_side: int = PREVIEW_SIDE,
             fmt: str = ".png") -> dict[str, bytes]:
    """Encoded pictures for one image: the image, its classifier heatmap overlay (when ``heatmap`` is given), and
    the forensic pictures; empty when there are no pixels. ``fmt`` ".jpg" keeps big batch reports small."""
    if pixels is None:
        return {}

    def encode(picture: np.ndarray) -> bytes:
        if fmt == ".png":
            return forensics.to_png(picture)
        bgr = picture if picture.ndim == 2 else cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)
        ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 85])
        if not ok:
            raise InputError(f"cannot encode a picture of shape {picture.shape}")
        return data.tobytes()

    def small(picture: np.ndarray) -> np.ndarray:
        h, w = picture.shape[:2]
        scale = min(1.0, preview_side / max(h, w))
        return picture if scale == 1.0 else cv2.resize(
            picture, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)

    shown = small(pixels)
    out = {"image": encode(shown)}
    if heatmap is not None:
        out["classifier heatmap"] = encode(heatmap_overlay(shown, np.asarray(heatmap, dtype=np.float32)))
    try:
        out["spectrum"] = encode(small(forensics.spectrum(pixels)))
        out["noise residual"] = encode(small(forensics.noise_residual(pixels)))
        out["error level (JPEG 90)"] = encode(small(forensics.error_level(pixels)))
    except InputError:  # too small for forensic pictures: the section says so through their absence
        pass
    return out


def file_pictures(path: Path, heatmap=None, **kwargs) -> dict[str, bytes]:
    """``pictures`` of an image file, decoded again (empty for other media); ``kwargs`` as for ``pictures``."""
    if sniff(path).kind is not MediaKind.IMAGE:
        return {}
    return pictures(decode_image(path, keep_rgb=True).rgb, None if heatmap is None else np.asarray(heatmap), **kwargs)


def _img(name: str, data: bytes) -> str:
    mime = "image/jpeg" if data[:2] == b"\xff\xd8" else "image/png"
    b64 = base64.b64encode(data).decode("ascii")
    return (f'<figure><img alt="{html.escape(name)}" src="data:{mime};base64,{b64}">'
            f"<figcaption>{html.escape(name)}</figcaption></figure>")


def _section(record: dict, figures: dict[str, bytes]) -> str:
    """One file's section from its JSON form (``Inspection.to_dict()``, or a ``verify`` line)."""
    e = html.escape
    verdict = record.get("verdict") or {}
    label = verdict.get("label", "error") if isinstance(verdict, dict) else str(verdict)
    colour = _LABEL_COLOURS.get(label, "#b3261e")
    confidence = verdict.get("confidence") if isinstance(verdict, dict) else record.get("confidence")
    conf = "" if confidence is None else f" <span class=conf>confidence {confidence:.3f}</span>"
    action = f' <span class=action>desk action: {e(record["action"])}</span>' if record.get("action") else ""
    parts = [f'<section><h2>{e(str(record.get("file", "")))}</h2>',
             f'<p><span class=label style="background:{colour}">{e(label)}</span>{conf}{action} '
             f'<span class=mime>{e(str(record.get("mime") or ""))}</span></p>']
    if record.get("error"):
        parts.append(f"<p class=errors>error: {e(str(record['error']))}</p>")
    reasons = (verdict.get("reasons") if isinstance(verdict, dict) else None) or record.get("reasons") or []
    parts.append("<ul class=reasons>" + "".join(f"<li>{e(str(r))}</li>" for r in reasons) + "</ul>")
    if figures:
        parts.append('<div class=figs>' + "".join(_img(k, data) for k, data in figures.items()) + "</div>")
        parts.append("<p class=note>Forensic pictures are evidence to look at, not verdicts: the spectrum shows "
                     "periodic peaks left by up-sampling, the noise residual what a denoiser removes, the error "
                     "level regions that re-compress differently. The heatmap shows each patch's P(synthetic) "
                     "(blue 0, red 1).</p>")
    p = record.get("provenance") or {}
    rows = [("provenance", p.get("state")), ("source", p.get("source")), ("signer", p.get("signer")),
            ("issuer", p.get("issuer")), ("digital source type", p.get("digital_source_type")),
            ("actions", ", ".join(a.get("action", "") for a in p.get("actions") or [])),
            ("ingredients", p.get("ingredients")), ("failures", ", ".join(p.get("failures") or []))]
    if p.get("model"):
        rows.append(("model", json.dumps(p["model"], sort_keys=True)))
    if p.get("recovered_from_ledger"):
        rows.append(("recovered from ledger",
                     f"by {p.get('ledger_match')}; content identical: {p.get('ledger_content_match')}"))
    w = record.get("watermark")
    if w:
        rows.append(("watermark", f"found, payload {w['payload']}, p={w['p_value']:.1e}, {w['algorithm']}"
                     if w.get("detected") else (f"not tested: {w['skipped']}" if w.get("skipped")
                                                else f"none found ({w.get('algorithm')})")))
    c = record.get("classifier")
    if c:
        rows.append(("classifier", f"not run: {c['skipped']}" if c.get("skipped") else
                     f"P(synthetic) {c['probability']:.3f}, threshold {c['threshold']:.3f}, {c.get('patches')} "
                     f"patches, {c.get('model')}"))
    parts.append("<table>" + "".join(f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in rows
                                     if v not in (None, "", 0) or k == "ingredients" and v == 0)
                 + "</table></section>")
    return "\n".join(parts)


def inspection_section(inspection: Inspection) -> str:
    record = inspection.to_dict()
    heatmap = inspection.classifier.heatmap if inspection.classifier is not None else None
    return _section(record, pictures(inspection.pixels, heatmap))


_STYLE = """body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#1c1c1c}
h1{font-size:1.4em}h2{font-size:1.05em;word-break:break-all}section{border-top:1px solid #ccc;padding:.5em 0}
.label{color:#fff;padding:.15em .6em;border-radius:.3em;font-weight:600}.conf,.mime{color:#555;margin-left:.8em}
.figs{display:flex;flex-wrap:wrap;gap:.8em}figure{margin:0}figure img{max-width:384px;display:block;
image-rendering:pixelated}figcaption{font-size:.85em;color:#555}table{border-collapse:collapse;margin-top:.5em}
th,td{text-align:left;padding:.15em .8em .15em 0;vertical-align:top}th{color:#555;font-weight:500}
.note{font-size:.85em;color:#555}.errors li,.errors{color:#b3261e}.action{font-weight:600;margin-left:.8em}
h2.group{background:#eee;padding:.3em .5em}"""


def render_html(inspections: Sequence[Inspection], errors: Sequence[tuple[str, str]] = (), *,
                title: str = "SynthGuard verification report") -> str:
    """The whole report as one HTML document; ``errors`` lists (file, message) of files that could not be read."""
    counts: dict[str, int] = {}
    for inspection in inspections:
        counts[inspection.verdict.label.value] = counts.get(inspection.verdict.label.value, 0) + 1
    return _document(title, len(inspections), counts, errors, [inspection_section(i) for i in inspections])


def render_records_html(sections: Sequence[tuple[dict, dict[str, bytes]]], *, title: str,
                        group_by: str | None = "action", subtitle: str = "") -> str:
    """A report from JSON-form records and their pictures (``verify``), grouped by desk action."""
    counts: dict[str, int] = {}
    for record, _ in sections:
        key = str(record.get(group_by) if group_by else "all")
        counts[key] = counts.get(key, 0) + 1
    order = ["reject", "human-review", "label-ai", "publish"]
    keys = sorted(counts, key=lambda k: (order.index(k) if k in order else len(order), k))
    body = []
    for key in keys:
        if group_by:
            body.append(f"<h2 class=group>{html.escape(group_by)}: {html.escape(key)} ({counts[key]})</h2>")
        body += [_section(r, f) for r, f in sections if str(r.get(group_by) if group_by else "all") == key]
    unreadable = [(str(r.get("file")), str(r["error"])) for r, _ in sections if r.get("error")]
    return _document(title, len(sections), counts, unreadable, body, subtitle)


def _document(title: str, n: int, counts: dict[str, int], errors: Sequence[tuple[str, str]], body: list[str],
              subtitle: str = "") -> str:
    e = html.escape
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    head = [f"<h1>{e(title)}</h1>",
            f"<p>{n} file(s){': ' + e(summary) if summary else ''}; {len(errors)} unreadable. "
            f"SynthGuard {e(__version__)}, {e(when)}.{' ' + e(subtitle) if subtitle else ''}</p>"]
    if errors:
        head.append("<h2>Unreadable files</h2><ul class=errors>"
                    + "".join(f"<li>{e(f)}: {e(msg)}</li>" for f, msg in errors) + "</ul>")
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{e(title)}</title>"
            f"<style>{_STYLE}</style></head><body>\n" + "\n".join(head + body) + "\n</body></html>\n")


def write_report(path: Path, inspections: Sequence[Inspection], errors: Sequence[tuple[str, str]] = ()) -> None:
    """Write the HTML report atomically (a half-written report never appears)."""
    write_atomic(Path(path), render_html(inspections, errors).encode("utf-8"))
