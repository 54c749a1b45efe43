"""How the CLI prints results: JSON lines, the human summary of an inspection, per-file error handling."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from synthguard.errors import InputError


def human_report(inspection) -> str:
    """An inspection for a person: the verdict, the evidence (each signal's own lines), then the verdict's other
    reasons."""
    v = inspection.verdict
    head = f"{inspection.file}: {v.label.value}" + ("" if v.confidence is None else f" (confidence {v.confidence:.3f})")
    findings = inspection.findings()
    return "\n".join([head, *(f"  {line}" for line in findings.evidence), *(f"  - {r}" for r in findings.reasons)])


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
