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
from dataclasses import dataclass
from pathlib import Path

from synthguard.core.fileio import write_atomic
from synthguard.core.home import Home
from synthguard.core.media import file_sha256
from synthguard.desk.audit import AuditLog
from synthguard.errors import Hint, InputError, SynthGuardError
from synthguard.policy import Policy

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


class Verifier:
    """One process's verifier: trust anchors, ledger, watermarker and detector built once, then ``check(path)``."""

    def __init__(self, settings: VerifySettings):
        from synthguard.detect import load_detector  # noqa: PLC0415
        from synthguard.provenance.ledger import Ledger  # noqa: PLC0415
        from synthguard.watermark import default_image_watermarker  # noqa: PLC0415

        self.settings = settings
        policy = settings.policy
        home = Home(settings.home)
        self.trust = policy.trust_anchors(home, extra=settings.trust_extra)
        self.ledger = Ledger(home.ledger_path) if settings.use_ledger and home.ledger_path.exists() else None
        self.watermarker = default_image_watermarker() if policy.detection.watermark else None
        # One torch thread: scores are then identical whatever the number of workers.
        self.detector = load_detector(settings.detector, num_threads=1) if policy.detection.classifier else None
        self._text_checks = None  # built on the first text file (loads a language model)

    def text_checks(self, path: Path):
        from synthguard.core.media import MediaKind, sniff  # noqa: PLC0415
        from synthguard.detect.text_signal import text_checks_for_home  # noqa: PLC0415

        if self._text_checks is None and sniff(path).kind is MediaKind.TEXT:
            rules = self.settings.policy.detection
            self._text_checks = text_checks_for_home(Home(self.settings.home), self.settings.text_model,
                                                     watermark=rules.watermark,
                                                     max_p_value=rules.text_watermark_max_p_value)
        return self._text_checks

    def check(self, path: Path) -> dict:
        """One JSON-ready line for ``path``; any unreadable input becomes an error line with the policy's action."""
        from synthguard.detect import inspect_file  # noqa: PLC0415

        policy = self.settings.policy
        digest = None
        try:
            if not path.is_file():
                raise InputError(f"{path}: no such file" if not path.exists() else f"{path}: not a regular file")
            digest = file_sha256(path)
            inspection = inspect_file(path, trust=self.trust, ledger=self.ledger, watermarker=self.watermarker,
                                      detector=self.detector,
                                      classifier_threshold=policy.detection.classifier_threshold, policy=policy,
                                      text_checks=self.text_checks(path))
        except SynthGuardError as exc:
            return {"file": str(path), "sha256": digest, "mime": None, "verdict": None, "confidence": None,
                    "action": policy.actions.error.value, "reasons": [], "error": str(exc)}
        data = inspection.to_dict()
        verdict = inspection.verdict
        classifier = data["classifier"]
        if classifier and classifier.get("probability") is not None:  # stable text across platforms
            classifier["probability"] = round(classifier["probability"], 6)
        return {"file": str(path), "sha256": digest, "mime": data["mime"], "verdict": verdict.label.value,
                "confidence": None if verdict.confidence is None else round(verdict.confidence, 6),
                "action": policy.actions.for_label(verdict.label.value).value, "reasons": list(verdict.reasons),
                "provenance": data["provenance"], "watermark": data["watermark"], "classifier": classifier,
                "error": None}


_WORKER: Verifier | None = None


def _init_worker(settings: VerifySettings) -> None:
    global _WORKER
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import cv2  # noqa: PLC0415

    cv2.setNumThreads(1)
    _WORKER = Verifier(settings)


def _check_in_worker(path: Path) -> dict:
    assert _WORKER is not None
    return _WORKER.check(path)


def _results(files: list[Path], settings: VerifySettings, workers: int) -> Iterator[dict]:
    """Lines in ``files`` order, computed by ``workers`` processes (in this process when 1)."""
    if workers <= 1:
        import cv2  # noqa: PLC0415

        previous = cv2.getNumThreads()
        cv2.setNumThreads(1)
        try:
            verifier = Verifier(settings)
            for path in files:
                yield verifier.check(path)
        finally:
            cv2.setNumThreads(previous)
        return
    # "spawn": a forked child inherits torch's and OpenCV's thread pools mid-state and can hang in them.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker,
                             initargs=(settings,)) as pool:
        yield from pool.map(_check_in_worker, files, chunksize=4)


def read_finished(jsonl: Path) -> tuple[list[dict], int]:
    """Complete lines of an earlier run and the byte length they take (a torn last line is not counted)."""
    data = jsonl.read_bytes()
    lines, keep = [], 0
    for raw in data.splitlines(keepends=True):
        if not raw.endswith(b"\n"):
            break
        try:
            lines.append(json.loads(raw))
        except ValueError as exc:
            raise InputError(f"{jsonl}: line {len(lines) + 1} is not JSON ({exc}); it is not a verify output") \
                from None
        keep += len(raw)
    return lines, keep


@dataclass(frozen=True)
class VerifyRun:
    lines: list[dict]  # every line of the output, earlier ones first when resumed
    resumed: int  # lines kept from an earlier run
    seconds: float

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for line in self.lines:
            out[line["action"]] = out.get(line["action"], 0) + 1
        return out


def verify(paths: Iterable[Path], settings: VerifySettings, *, jsonl: Path | None = None, workers: int = 1,
           resume: bool = False, overwrite: bool = False, audit: bool | None = None,
           progress: Callable[[int, int], None] | None = None) -> VerifyRun:
    """Verify every file under ``paths``; stream the lines to ``jsonl`` (appending when ``resume``); record each
    in the audit log when the policy says so (``audit`` overrides). ``progress(done, total)`` after each file."""
    import time  # noqa: PLC0415

    start = time.perf_counter()
    files = walk(paths)
    earlier: list[dict] = []
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
    done = {line["file"] for line in earlier}
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
                out.write((json.dumps(line, sort_keys=True) + "\n").encode())
                out.flush()
            if log is not None:
                log.record_verification(file=line["file"], file_sha256=line["sha256"], policy=policy.name,
                                        policy_sha256=policy.sha256, verdict=line["verdict"], action=line["action"],
                                        reasons=line["reasons"] if policy.audit.reasons else None)
            if progress is not None:
                progress(len(lines), total)
    finally:
        if out is not None:
            out.close()
        if log is not None:
            log.close()
    return VerifyRun(lines, len(earlier), time.perf_counter() - start)


def write_batch_report(path: Path, lines: list[dict], policy: Policy,
                       progress: Callable[[int, int], None] | None = None) -> None:
    """The HTML report of a run, grouped by desk action: each image re-decoded for its thumbnail, heatmap and
    forensic pictures (JPEG, 160 px, so a thousand files stay a few tens of MB); written atomically."""
    from synthguard.desk.report import file_pictures, render_records_html  # noqa: PLC0415

    sections = []
    for i, line in enumerate(lines):
        figures: dict[str, bytes] = {}
        if not line.get("error"):
            try:
                figures = file_pictures(Path(line["file"]), (line.get("classifier") or {}).get("heatmap"),
                                        preview_side=160, fmt=".jpg")
            except SynthGuardError:  # changed or gone since it was verified: the section shows the line only
                figures = {}
        sections.append((line, figures))
        if progress is not None:
            progress(i + 1, len(lines))
    page = render_records_html(sections, title=f"SynthGuard verification: policy {policy.name}",
                               subtitle=f"Policy sha256 {policy.sha256[:16]}...")
    write_atomic(Path(path), page.encode("utf-8"))
