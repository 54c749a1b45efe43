"""How the CLI prints results: JSON lines, the human summary of an inspection, per-file error handling."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from synthguard.errors import InputError


def human_report(inspection) -> str:
    p, v = inspection.provenance, inspection.verdict
    lines = [f"{inspection.file}: {v.label.value}"]
    source = f" ({p.source})" if p.source else ""
    line = f"  provenance: {p.state.value}{source}"
    if p.signer:
        line += f", signed by {p.signer}" + (f" / {p.issuer}" if p.issuer else "")
    lines.append(line)
    if p.present or p.recovered_from_ledger:
        ai = {True: "yes", False: "no", None: "not declared"}[p.ai_generated]
        declared = p.digital_source_type.rsplit("/", 1)[-1] if p.digital_source_type else "(no source type)"
        lines.append(f"  declares: {declared}; AI-generated: {ai}")
        if p.actions:
            lines.append(f"  actions: {', '.join(a.action for a in p.actions)}; ingredients: {p.ingredients}")
        if p.model:
            lines.append(f"  model: {json.dumps(p.model, sort_keys=True)}")
        if p.failures:
            lines.append(f"  failures: {', '.join(p.failures)}")
    w = inspection.watermark
    d = (w.details or {}) if w is not None else {}
    if d.get("kind") == "text" and not w.skipped:
        where = f", characters {d['span'][0]}-{d['span'][1]}" if d.get("span") else ""
        lines.append(f"  text watermark: {'found' if w.detected else 'not found'} ({w.algorithm}, z={d['z']:.2f}, "
                     f"p={w.p_value:.1e}, {d['tokens_scored']} of {d['tokens']} tokens scored{where})")
    elif w is not None:
        if w.detected:
            ai = {True: "declares AI", False: "does not declare AI", None: "unknown payload layout"}[w.ai_declared]
            lines.append(f"  watermark: found, payload {w.payload} ({ai}), p={w.p_value:.1e}, {w.algorithm}")
        else:
            lines.append(f"  watermark: {'not tested (' + w.skipped + ')' if w.skipped else 'none found'}")
    m = inspection.machine_text
    if m is not None:
        lines.append(f"  machine-text score: not computed ({m.skipped})" if m.skipped else
                     f"  machine-text score: {m.score:.2f} (threshold {m.threshold:.2f}, {100 * m.threshold_fpr:.1f}% "
                     f"of held-out human text above it), {m.model}")
    c = inspection.classifier
    if c is not None:
        lines.append(f"  classifier: not run ({c.skipped})" if c.skipped else
                     f"  classifier: P(synthetic) {c.probability:.3f} (threshold {c.threshold:.3f}), {c.model}")
    if v.confidence is not None:
        lines[0] += f" (confidence {v.confidence:.3f})"
    for reason in v.reasons:
        lines.append(f"  - {reason}")
    return "\n".join(lines)


def write_report(report_path: Path | None, done, errors, as_json: bool) -> None:
    if report_path is None:
        return
    from synthguard.desk.report import write_report  # noqa: PLC0415

    write_report(report_path, done, errors)
    if not as_json:
        click.echo(f"report: {report_path}", err=True)


def per_file(files, as_json: bool, work, as_dict, as_text, finish=None) -> None:
    """Run ``work`` on each file and print its result; a file that fails is reported (as JSON too) and the rest
    still run; the exit status is then 2. ``finish`` runs after the last file, before that exit."""
    failed = 0
    for path in files:
        try:
            result = work(path)
        except InputError as exc:
            failed += 1
            if as_json:
                print_json({"file": str(path), "error": str(exc)})
            else:
                click.echo(f"error: {exc}", err=True)
            continue
        click.echo(json.dumps(as_dict(path, result)) if as_json else as_text(path, result))
    if finish is not None:
        finish()
    if failed:
        sys.exit(InputError.exit_code)


def print_json(data) -> None:
    click.echo(json.dumps(data, indent=None, sort_keys=False))
