"""Batch verification under a policy: every file of some folders, one JSON line each, a grouped HTML report,
the audit log, resumable, the same results with one worker or several.

A line holds what the desk needs and nothing that changes between runs (no times; those go to the audit log), so a
run killed half-way and resumed writes the same file as one that was never interrupted: lines are written in the
walk's order (sorted paths), a resumed run keeps the complete lines, drops a torn last one, and skips the files
they cover. Workers are processes (the classifier, watermark and c2pa all want a core), each scoring with one torch
thread, so a score does not depend on the number of workers.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from synthguard.core.fileio import write_atomic
from synthguard.core.home import Home
from synthguard.core.media import file_sha256
from synthguard.desk.audit import AuditLog
from synthguard.detect import Inspection, InspectionContext, VerdictLabel, inspect_file
from synthguard.detect.metadata import MetadataSignal
from synthguard.detect.sd_marks import SDMarkSignal
from synthguard.detect.signals import (
    ClassifierSignal,
    WatermarkSignal,
    provenance_from_dict,
    watermark_from_dict,
)
from synthguard.errors import Hint, InputError, SynthGuardError
from synthguard.policy import DeskAction, Policy
from synthguard.provenance.reading import ProvenanceSignal

SIDECAR_SUFFIX = ".c2pa"


def walk(paths: Iterable[Path]) -> list[Path]:
    """Files to verify, in a stable order: each given file, and every file under each given folder (recursive,
    sorted), without hidden files and ``.c2pa`` sidecars (read with their asset). A path that does not exist is
    kept: it becomes an error line, never a silent skip."""
    out: list[Path] = []
    seen: set[Path] = set()
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file()
                           and not any(part.startswith(".") for part in p.relative_to(path).parts)
                           and not p.name.endswith(SIDECAR_SUFFIX))
        else:
            found = [path]
        for p in found:
            if p not in seen:
                seen.add(p)
                out.append(p)
    return out


@dataclass(frozen=True)
class VerifySettings:
    """What each worker needs to rebuild its own verifier (picklable)."""

    policy: Policy
    home: Path
    trust_extra: tuple[Path, ...] = ()
    detector: Path | None = None  # None: the built-in one
    use_ledger: bool = True
    text_model: str = "builtin"  # the tokenizer that re-reads texts for the identity's text watermark


@dataclass(frozen=True)
class VerifyLine:
    """One file's result under a policy: the verdict and desk action with their evidence, or the error that kept
    the file from being verified (then only ``file``, ``sha256``, ``action`` and ``error`` are set). Numbers are
    rounded to 6 digits so the line's text is the same on every platform."""

    file: str
    sha256: str | None
    action: DeskAction
    mime: str | None = None
    verdict: VerdictLabel | None = None
    confidence: float | None = None
    reasons: tuple[str, ...] = ()
    provenance: ProvenanceSignal | None = None
    watermark: WatermarkSignal | None = None
    classifier: ClassifierSignal | None = None
    metadata: MetadataSignal | None = None
    error: str | None = None
    sd_marks: SDMarkSignal | None = None

    @classmethod
    def of(cls, inspection: Inspection, sha256: str, policy: Policy) -> VerifyLine:
        """The line of an inspected file, with the desk action its verdict has under ``policy``."""
        verdict, classifier = inspection.verdict, inspection.classifier
        if classifier is not None and classifier.probability is not None:
            classifier = replace(classifier, probability=round(classifier.probability, 6))
        return cls(str(inspection.file), sha256, policy.actions.for_label(verdict.label.value),
                   inspection.media.mime, verdict.label,
                   None if verdict.confidence is None else round(verdict.confidence, 6), verdict.reasons,
                   inspection.provenance, inspection.watermark, classifier, inspection.metadata,
                   sd_marks=inspection.sd_marks)

    @classmethod
    def failed(cls, path: Path, sha256: str | None, error: SynthGuardError, policy: Policy) -> VerifyLine:
        """The line of a file that could not be verified: the policy's error action and the reason."""
        return cls(str(path), sha256, policy.actions.error, error=str(error))

    def to_dict(self) -> dict:
        line = {"file": self.file, "sha256": self.sha256, "mime": self.mime,
                "verdict": None if self.verdict is None else self.verdict.value, "confidence": self.confidence,
                "action": self.action.value, "reasons": list(self.reasons)}
        if self.error is not None:
            return {**line, "error": self.error}
        return {**line, "provenance": self.provenance.to_dict(),
                "watermark": None if self.watermark is None else self.watermark.to_dict(),
                "classifier": None if self.classifier is None else self.classifier.to_dict(),
                "metadata": None if self.metadata is None else self.metadata.to_dict(),
                "sd_marks": None if self.sd_marks is None else self.sd_marks.to_dict(), "error": None}

    @classmethod
    def from_dict(cls, data: dict) -> VerifyLine:
        """A line of an earlier run's JSONL read back."""
        return cls(data["file"], data["sha256"], DeskAction(data["action"]), data["mime"],
                   None if data["verdict"] is None else VerdictLabel(data["verdict"]), data["confidence"],
                   tuple(data["reasons"]), provenance_from_dict(data.get("provenance")),
                   watermark_from_dict(data.get("watermark")), ClassifierSignal.from_dict(data.get("classifier")),
                   MetadataSignal.from_dict(data.get("metadata")), data["error"],
                   SDMarkSignal.from_dict(data.get("sd_marks")))

    def to_json(self) -> str:
        """The JSONL line (keys sorted, no newline)."""
        return json.dumps(self.to_dict(), sort_keys=True)


class Verifier:
    """One process's verifier: an inspection context made once from the settings, then ``check(path)``."""

    def __init__(self, settings: VerifySettings):
        self.settings = settings
        # One torch thread: scores are then identical whatever the number of workers.
        self.context = InspectionContext.build(Home(settings.home), policy=settings.policy,
                                               trust=settings.trust_extra, ledger=settings.use_ledger,
                                               detector=settings.detector, text_model=settings.text_model, threads=1)

    def check(self, path: Path) -> VerifyLine:
        """The line for ``path``; any unreadable input becomes an error line with the policy's action."""
        policy = self.settings.policy
        digest = None
        try:
            if not path.is_file():
                raise InputError(f"{path}: no such file" if not path.exists() else f"{path}: not a regular file")
            digest = file_sha256(path)
            inspection = inspect_file(path, self.context)
        except SynthGuardError as exc:
            return VerifyLine.failed(path, digest, exc, policy)
        return VerifyLine.of(inspection, digest, policy)

    def close(self) -> None:
        self.context.close()


_WORKER: Verifier | None = None


def _init_worker(settings: VerifySettings) -> None:
    global _WORKER
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import cv2  # noqa: PLC0415

    cv2.setNumThreads(1)
    _WORKER = Verifier(settings)


def _check_in_worker(path: Path) -> VerifyLine:
    assert _WORKER is not None
    return _WORKER.check(path)


def _results(files: list[Path], settings: VerifySettings, workers: int) -> Iterator[VerifyLine]:
    """Lines in ``files`` order, computed by ``workers`` processes (in this process when 1)."""
    if workers <= 1:
        import cv2  # noqa: PLC0415

        previous = cv2.getNumThreads()
        cv2.setNumThreads(1)
        try:
            verifier = Verifier(settings)
            try:
                for path in files:
                    yield verifier.check(path)
            finally:
                verifier.close()
        finally:
            cv2.setNumThreads(previous)
        return
    # "spawn": a forked child inherits torch's and OpenCV's thread pools mid-state and can hang in them.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker,
                             initargs=(settings,)) as pool:
        yield from pool.map(_check_in_worker, files, chunksize=4)


def read_finished(jsonl: Path) -> tuple[list[VerifyLine], int]:
    """Complete lines of an earlier run and the byte length they take (a torn last line is not counted)."""
    data = jsonl.read_bytes()
    lines, keep = [], 0
    for raw in data.splitlines(keepends=True):
        if not raw.endswith(b"\n"):
            break
        try:
            lines.append(VerifyLine.from_dict(json.loads(raw)))
        except ValueError as exc:
            raise InputError(f"{jsonl}: line {len(lines) + 1} is not JSON ({exc}); it is not a verify output") \
                from None
        except (KeyError, TypeError, AttributeError) as exc:
            raise InputError(f"{jsonl}: line {len(lines) + 1} is not a verify line (no {exc}); it is not a verify "
                             "output") from None
        keep += len(raw)
    return lines, keep


@dataclass(frozen=True)
class VerifyRun:
    lines: tuple[VerifyLine, ...]  # every line of the output, earlier ones first when resumed
    resumed: int  # lines kept from an earlier run
    seconds: float

    @property
    def counts(self) -> dict[str, int]:
        """Lines per desk action."""
        out: dict[str, int] = {}
        for line in self.lines:
            out[line.action.value] = out.get(line.action.value, 0) + 1
        return out

    @property
    def errors(self) -> int:
        return sum(1 for line in self.lines if line.error is not None)

    def summary(self, policy: Policy, jsonl: Path | None = None, report: Path | None = None) -> dict:
        """The run in figures (files, errors, lines per action, speed) with the policy and the outputs."""
        fresh = len(self.lines) - self.resumed
        return {"files": len(self.lines), "resumed": self.resumed, "errors": self.errors, "actions": self.counts,
                "seconds": round(self.seconds, 2), "files_per_second": round(fresh / max(self.seconds, 1e-9), 2),
                "policy": policy.name, "policy_sha256": policy.sha256, "jsonl": str(jsonl) if jsonl else None,
                "report": str(report) if report else None}


def verify(paths: Iterable[Path], settings: VerifySettings, *, jsonl: Path | None = None, workers: int = 1,
           resume: bool = False, overwrite: bool = False, audit: bool | None = None,
           progress: Callable[[int, int], None] | None = None) -> VerifyRun:
    """Verify every file under ``paths``; stream the lines to ``jsonl`` (appending when ``resume``); record each
    in the audit log when the policy says so (``audit`` overrides). ``progress(done, total)`` after each file."""
    import time  # noqa: PLC0415

    start = time.perf_counter()
    files = walk(paths)
    earlier: list[VerifyLine] = []
    mode = "wb"
    if jsonl is not None:
        jsonl = Path(jsonl)
        if jsonl.exists() and resume:
            earlier, keep = read_finished(jsonl)
            with open(jsonl, "r+b") as handle:  # drop a torn last line, keep the complete ones
                handle.truncate(keep)
            mode = "ab"
        elif jsonl.exists() and not overwrite:
            raise InputError(f"{jsonl} exists", hint=Hint.RESUME_OR_OVERWRITE)
        if not jsonl.parent.exists():
            raise InputError(f"output folder {jsonl.parent} does not exist")
    done = {line.file for line in earlier}
    todo = [p for p in files if str(p) not in done]
    record = settings.policy.audit.record if audit is None else audit
    policy = settings.policy
    lines = list(earlier)
    log = AuditLog(Home(settings.home).audit_path) if record else None
    out = open(jsonl, mode) if jsonl is not None else None  # noqa: SIM115 (streamed, closed below)
    try:
        total = len(earlier) + len(todo)
        for line in _results(todo, settings, max(1, workers)):
            lines.append(line)
            if out is not None:
                out.write((line.to_json() + "\n").encode())
                out.flush()
            if log is not None:
                log.record_verification(file=line.file, file_sha256=line.sha256, policy=policy.name,
                                        policy_sha256=policy.sha256,
                                        verdict=None if line.verdict is None else line.verdict.value,
                                        action=line.action.value,
                                        reasons=list(line.reasons) if policy.audit.reasons else None)
            if progress is not None:
                progress(len(lines), total)
    finally:
        if out is not None:
            out.close()
        if log is not None:
            log.close()
    return VerifyRun(tuple(lines), len(earlier), time.perf_counter() - start)


def write_batch_report(path: Path, lines: Iterable[VerifyLine], policy: Policy,
                       progress: Callable[[int, int], None] | None = None) -> None:
    """The HTML report of a run, grouped by desk action: each image re-decoded for its thumbnail, heatmap and
    forensic pictures (JPEG, 160 px, so a thousand files stay a few tens of MB); written atomically."""
    from synthguard.desk.report import ReportEntry, file_pictures, render_grouped_html  # noqa: PLC0415

    lines = list(lines)
    entries = []
    for i, line in enumerate(lines):
        figures: dict[str, bytes] = {}
        if line.error is None:
            heatmap = line.classifier.heatmap if line.classifier is not None else None
            try:
                figures = file_pictures(Path(line.file), heatmap, preview_side=160, fmt=".jpg")
            except SynthGuardError:  # changed or gone since it was verified: the section shows the line only
                figures = {}
        entries.append(ReportEntry.of_line(line, figures))
        if progress is not None:
            progress(i + 1, len(lines))
    page = render_grouped_html(entries, title=f"SynthGuard verification: policy {policy.name}",
                               subtitle=f"Policy sha256 {policy.sha256[:16]}...")
    write_atomic(Path(path), page.encode("utf-8"))
