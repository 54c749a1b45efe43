"""A conformance table over C2PA files: for each file, what c2pa itself says, SynthGuard's provenance state, the
label and why; with the counts a desk cares about (``synthguard bench provenance``).

c2pa's own state is read with the same trust anchors as SynthGuard's inspection, so the two columns differ only
where SynthGuard weighs a failure by its kind (``provenance.validation``): an expired credential or an identity
that cannot be checked offline is c2pa "Invalid" but not "tampered" here.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import c2pa

from synthguard.detect.context import InspectionContext, inspect_file
from synthguard.errors import InputError, one_line
from synthguard.provenance.reading import validation_context

SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".avif", ".heic", ".gif"})


@dataclass(frozen=True)
class Row:
    file: str
    c2pa_state: str  # "Invalid", "Valid", "Trusted", or the reader's error type ("ManifestNotFound", "Remote"...)
    state: str  # SynthGuard's provenance state
    label: str
    why: str  # the verdict's first reason
    failures: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()  # the kinds of the failures (integrity, credential, trust, not-checked...)
    trust_source: str | None = None
    timestamp: str | None = None  # the time-stamp's status (trusted, untrusted, absent...)
    identities: int = 0

    def to_dict(self) -> dict:
        data = asdict(self)
        data["failures"], data["kinds"] = list(self.failures), list(self.kinds)
        return data


def files_of(paths: Iterable[Path]) -> list[Path]:
    """The image files given, folders expanded (sorted, not recursive)."""
    found: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
        elif path.is_file():
            found.append(path)
        else:
            raise InputError(f"{path}: no such file or folder")
    if not found:
        raise InputError("no image files among the paths given")
    return found


def _c2pa_state(path: Path, context: c2pa.Context) -> str:
    try:
        with c2pa.Reader(str(path), context=context) as reader:
            return reader.get_validation_state() or "none"
    except c2pa.C2paError as exc:
        return one_line(exc).split(":", 1)[0]


def run(paths: Iterable[Path], context: InspectionContext) -> dict:
    """The table's rows and counts for the files in ``paths`` under ``context`` (its policy and trust)."""
    anchors = validation_context(context.trust)
    rows = []
    for path in files_of(paths):
        try:
            inspection = inspect_file(path, context)
        except InputError as exc:
            rows.append(Row(str(path), _c2pa_state(path, anchors), "error", "error", str(exc)))
            continue
        p, verdict = inspection.provenance, inspection.verdict
        kinds = tuple(k for k in ("integrity", "credential", "trust", "not_checked", "unclassified")
                      if getattr(p.kinds, k))
        stamp = p.timestamp
        identities = len(p.details.identities) if p.details is not None and hasattr(p.details, "identities") else 0
        rows.append(Row(str(path), _c2pa_state(path, anchors), p.state.value, verdict.label.value,
                        verdict.reasons[0] if verdict.reasons else "", p.failures,
                        tuple(k.replace("_", "-") for k in kinds), p.trust_source,
                        stamp.status.value if stamp else None, identities))
    return {"policy": context.policy.name, "files": len(rows), "rows": [r.to_dict() for r in rows],
            "labels": dict(Counter(r.label for r in rows)),
            "c2pa_invalid_not_tampered": sum(r.c2pa_state == "Invalid" and r.label != "tampered" for r in rows),
            "tampered": sum(r.label == "tampered" for r in rows)}


def render(result: dict) -> str:
    lines = [f"{'file':34} {'c2pa says':17} {'SynthGuard':10} {'label':17} why"]
    for row in result["rows"]:
        why = row["why"] if len(row["why"]) <= 110 else row["why"][:107] + "..."
        kinds = f" [{', '.join(row['kinds'])}]" if row["kinds"] else ""
        lines.append(f"{Path(row['file']).name[:34]:34} {row['c2pa_state'][:17]:17} {row['state']:10} "
                     f"{row['label']:17} {why}{kinds}")
    lines.append("")
    lines.append(f"{result['files']} files under policy {result['policy']!r}: "
                 + ", ".join(f"{k} {v}" for k, v in sorted(result["labels"].items()))
                 + f"; c2pa Invalid but not tampered here: {result['c2pa_invalid_not_tampered']}")
    return "\n".join(lines)


def to_json(result: dict) -> str:
    return json.dumps(result)
