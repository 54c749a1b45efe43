"""Self-contained HTML reports of inspections: verdict, reasons, classifier heatmap and forensic pictures (images),
waveform and spectrogram (audio), and the evidence (each signal's own ``describe()`` lines), one section per file
(pictures inlined as data URIs, so the file can be mailed or archived). A section is made from a ``ReportEntry``:
of an inspection (``detect --report``) or of a ``verify`` line (``verify --report``, the web desk).

Every string from a file (names, signer, manifest fields) is HTML-escaped: a hostile manifest cannot inject markup.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from synthguard import __version__
from synthguard.core.fileio import write_atomic
from synthguard.core.media import MediaKind, decode_image, sniff
from synthguard.detect import Inspection, forensics
from synthguard.detect.audio import SPECTROGRAM_SIZE, WAVEFORM_SIZE, spectrogram, waveform
from synthguard.detect.signals import Findings
from synthguard.errors import InputError
from synthguard.provenance.identity import TrustSource

if TYPE_CHECKING:
    from synthguard.desk.batch import VerifyLine

PREVIEW_SIDE = 384  # pictures are shown at most this many pixels on their long side
AUDIO_PICTURES = ("waveform", "spectrogram")  # the names of an audio file's pictures

LABEL_COLOURS = {"ai-generated": "#b3261e", "ai-declared": "#d84315", "likely-synthetic": "#c26a00",
                 "tampered": "#7b1fa2", "authentic-capture": "#1b5e20", "edited": "#0d47a1", "unknown": "#455a64",
                 "error": "#b3261e"}


def heatmap_overlay(image: np.ndarray, heatmap: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8: the image in grey with each patch's P(synthetic) laid over it (blue 0 -> red 1)."""
    grey = forensics.to_luma(image) if image.ndim == 3 else image
    h, w = grey.shape
    probs = np.clip(np.asarray(heatmap, dtype=np.float32), 0.0, 1.0)
    cells = cv2.resize((probs * 255).astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
    colour = cv2.cvtColor(cv2.applyColorMap(cells, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    base = cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)
    return cv2.addWeighted(base, 0.55, colour, 0.45, 0.0)


def _encode(picture: np.ndarray, fmt: str) -> bytes:
    if fmt == ".png":
        return forensics.to_png(picture)
    bgr = picture if picture.ndim == 2 else cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise InputError(f"cannot encode a picture of shape {picture.shape}")
    return data.tobytes()


def audio_pictures(samples: np.ndarray, rate: int, *, preview_side: int = PREVIEW_SIDE,
                   fmt: str = ".png") -> dict[str, bytes]:
    """Encoded pictures for one audio clip (float32 ``(frames,)`` or ``(frames, channels)`` at ``rate`` Hz): its
    waveform (PNG, or JPEG with ``fmt`` ".jpg") and its spectrogram (always JPEG: its texture makes PNGs of several
    hundred KB). Full size with the default ``preview_side``, narrower with a smaller one (batch reports)."""
    scale = min(1.0, 2 * preview_side / WAVEFORM_SIZE[0])

    def sized(size: tuple[int, int]) -> tuple[int, int]:
        return max(64, round(size[0] * scale)), max(48, round(size[1] * scale))

    return {"waveform": _encode(waveform(samples, rate, sized(WAVEFORM_SIZE)), fmt),
            "spectrogram": _encode(spectrogram(samples, rate, sized(SPECTROGRAM_SIZE)), ".jpg")}


def pictures(pixels: np.ndarray | None, heatmap=None, *, preview_side: int = PREVIEW_SIDE,
             fmt: str = ".png") -> dict[str, bytes]:
    """Encoded pictures for one image: the image, its classifier heatmap overlay (when ``heatmap`` is given), and
    the forensic pictures; empty when there are no pixels. ``fmt`` ".jpg" keeps big batch reports small."""
    if pixels is None:
        return {}

    def encode(picture: np.ndarray) -> bytes:
        return _encode(picture, fmt)

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
    """``pictures`` of an image file or ``audio_pictures`` of an audio file, decoded again (empty for other media);
    ``kwargs`` as for ``pictures``."""
    kind = sniff(path).kind
    if kind is MediaKind.AUDIO:
        from synthguard.core.audio import decode_audio  # noqa: PLC0415 (decoders load for audio files only)

        clip = decode_audio(path)
        return audio_pictures(clip.samples, clip.rate, **kwargs)
    if kind is not MediaKind.IMAGE:
        return {}
    return pictures(decode_image(path, keep_rgb=True).rgb, None if heatmap is None else np.asarray(heatmap), **kwargs)


@dataclass(frozen=True)
class ReportEntry:
    """One file's section: the verdict (``label`` "error" when the file could not be verified), the findings'
    lines and the pictures (name -> encoded PNG or JPEG)."""

    file: str
    label: str
    mime: str | None = None
    confidence: float | None = None
    action: str | None = None
    findings: Findings = Findings((), ())
    error: str | None = None
    figures: dict[str, bytes] = field(default_factory=dict)
    chain: tuple[dict, ...] = ()  # the provenance chain: each manifest's ManifestLink.to_dict()

    @classmethod
    def of_inspection(cls, inspection: Inspection) -> ReportEntry:
        """An inspection's section, with pictures of its pixels when it kept them."""
        heatmap = inspection.classifier.heatmap if inspection.classifier is not None else None
        v = inspection.verdict
        # A name that is not UTF-8 is shown with its bytes escaped (as verify's lines show it).
        name = os.fsencode(inspection.file).decode("utf-8", "backslashreplace")
        clip = inspection.clip
        figures = (audio_pictures(clip.samples, clip.rate) if clip is not None
                   else pictures(inspection.pixels, heatmap))
        return cls(name, v.label.value, inspection.media.mime, v.confidence,
                   findings=inspection.findings(), figures=figures, chain=_chain(inspection.provenance))

    @classmethod
    def of_line(cls, line: VerifyLine, figures: dict[str, bytes] | None = None) -> ReportEntry:
        """A ``verify`` line's section (its desk action shown), with the given pictures."""
        findings = Findings.of(line.provenance, (line.audio, line.watermark, line.sd_marks, line.metadata,
                                                 line.classifier), line.reasons)
        return cls(line.file, "error" if line.verdict is None else line.verdict.value, line.mime, line.confidence,
                   line.action.value, findings, line.error, figures or {}, _chain(line.provenance))


def _chain(provenance) -> tuple[dict, ...]:
    details = provenance.details if provenance is not None else None
    return tuple(details.to_dict().get("chain") or ()) if details is not None else ()


def chain_table(chain: tuple[dict, ...]) -> str:
    """The provenance chain as a table: each manifest's signer, where trust in it comes from, its time-stamp and
    the kind of its validation result."""
    e = html.escape
    sources = {s.value: s.title for s in TrustSource}
    rows = []
    for link in chain:
        stamp = link.get("timestamp") or {}
        if stamp.get("status") in (None, "absent"):
            when = "none"
        else:
            when = f"{stamp.get('time') or '?'} by {stamp.get('authority') or '?'}: {stamp.get('status')}"
        trust = sources.get(link.get("trust_source"), "none of your roots")
        if link.get("trust_entity"):
            trust += f" ({link['trust_entity']})"
        validation = link.get("validation") or ""
        if link.get("failures"):
            validation += f" ({', '.join(link['failures'])})"
        role = "this file" if link.get("active") else "ingredient"
        rows.append(f"<tr><td>{role}: {e(link.get('title') or link.get('label') or '')}</td>"
                    f"<td>{e(link.get('signer') or 'unnamed')}<br><small>{e(link.get('issuer') or '')}</small></td>"
                    f"<td>{e(trust)}</td><td>{e(when)}</td><td>{e(validation)}</td></tr>")
    return ("<table class=chain><tr><th>manifest</th><th>signer</th><th>trusted via</th><th>time-stamp</th>"
            "<th>validation</th></tr>" + "".join(rows) + "</table>")


def _img(name: str, data: bytes) -> str:
    mime = "image/jpeg" if data[:2] == b"\xff\xd8" else "image/png"
    b64 = base64.b64encode(data).decode("ascii")
    return (f'<figure><img alt="{html.escape(name)}" src="data:{mime};base64,{b64}">'
            f"<figcaption>{html.escape(name)}</figcaption></figure>")


def section_html(entry: ReportEntry) -> str:
    """One file's section: verdict, the reasons, the pictures, then the evidence of each signal."""
    e = html.escape
    colour = LABEL_COLOURS.get(entry.label, LABEL_COLOURS["error"])
    conf = "" if entry.confidence is None else f" <span class=conf>confidence {entry.confidence:.3f}</span>"
    action = f" <span class=action>desk action: {e(entry.action)}</span>" if entry.action else ""
    parts = [f"<section><h2>{e(entry.file)}</h2>",
             f'<p><span class=label style="background:{colour}">{e(entry.label)}</span>{conf}{action} '
             f"<span class=mime>{e(entry.mime or '')}</span></p>"]
    if entry.error:
        parts.append(f"<p class=errors>error: {e(entry.error)}</p>")
    parts.append("<ul class=reasons>" + "".join(f"<li>{e(r)}</li>" for r in entry.findings.reasons) + "</ul>")
    if entry.figures:
        parts.append("<div class=figs>" + "".join(_img(k, data) for k, data in entry.figures.items()) + "</div>")
        if set(entry.figures) == set(AUDIO_PICTURES):
            parts.append("<p class=note>Audio pictures are evidence to look at, not verdicts: the waveform shows "
                         "each moment's range (light) and loudness (dark), so clipping, gaps and splices stand out; "
                         "the spectrogram shows frequency (0 Hz at the bottom to half the sample rate at the top) "
                         "over time, where a lossy or resampled copy ends in a sharp upper edge. SynthGuard's audio "
                         "watermark is inaudible by design and does not show in either.</p>")
        else:
            parts.append("<p class=note>Forensic pictures are evidence to look at, not verdicts: the spectrum "
                         "shows periodic peaks left by up-sampling, the noise residual what a denoiser removes, "
                         "the error level regions that re-compress differently. The heatmap shows each patch's "
                         "P(synthetic) (blue 0, red 1).</p>")
    if entry.chain:
        parts.append(chain_table(entry.chain))
    if entry.findings.evidence:
        parts.append("<ul class=evidence>" + "".join(f"<li>{e(line)}</li>" for line in entry.findings.evidence)
                     + "</ul>")
    parts.append("</section>")
    return "\n".join(parts)


STYLE = """body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#1c1c1c}
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
    return _document(title, len(inspections), counts, errors,
                     [section_html(ReportEntry.of_inspection(i)) for i in inspections])


_ACTION_ORDER = ["reject", "human-review", "label-ai", "publish"]


def render_grouped_html(entries: Sequence[ReportEntry], *, title: str, subtitle: str = "",
                        notes: Sequence[str] = ()) -> str:
    """A report of ``verify`` sections, grouped by desk action (the ones needing attention first)."""
    counts: dict[str, int] = {}
    for entry in entries:
        counts[str(entry.action)] = counts.get(str(entry.action), 0) + 1
    keys = sorted(counts, key=lambda k: (_ACTION_ORDER.index(k) if k in _ACTION_ORDER else len(_ACTION_ORDER), k))
    body = []
    for key in keys:
        body.append(f"<h2 class=group>action: {html.escape(key)} ({counts[key]})</h2>")
        body += [section_html(entry) for entry in entries if str(entry.action) == key]
    unreadable = [(entry.file, entry.error) for entry in entries if entry.error]
    return _document(title, len(entries), counts, unreadable, body, subtitle, notes)


def _document(title: str, n: int, counts: dict[str, int], errors: Sequence[tuple[str, str]], body: list[str],
              subtitle: str = "", notes: Sequence[str] = ()) -> str:
    e = html.escape
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    head = [f"<h1>{e(title)}</h1>",
            f"<p>{n} file(s){': ' + e(summary) if summary else ''}; {len(errors)} unreadable. "
            f"SynthGuard {e(__version__)}, {e(when)}.{' ' + e(subtitle) if subtitle else ''}</p>"]
    if notes:
        head.append("<ul class=run>" + "".join(f"<li>{e(note)}</li>" for note in notes) + "</ul>")
    if errors:
        head.append("<h2>Unreadable files</h2><ul class=errors>"
                    + "".join(f"<li>{e(f)}: {e(msg)}</li>" for f, msg in errors) + "</ul>")
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{e(title)}</title>"
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(head + body) + "\n</body></html>\n")


def write_report(path: Path, inspections: Sequence[Inspection], errors: Sequence[tuple[str, str]] = ()) -> None:
    """Write the HTML report atomically (a half-written report never appears)."""
    write_atomic(Path(path), render_html(inspections, errors).encode("utf-8"))
