"""Batch verification under a policy: every file of some folders (images, audio, texts), one JSON line each, a
grouped HTML report, the audit log, resumable, the same results with one worker or several.

A line holds what the desk needs and nothing that changes between runs (no times; those go to the audit log), so a
run killed half-way and resumed writes the same file as one that was never interrupted: lines are written in the
walk's order (sorted paths), a resumed run keeps the complete lines, drops a torn last one, and skips the files
they cover. Workers are processes (the classifier, watermark and c2pa all want a core), each scoring with one torch
thread, so a score does not depend on the number of workers.

Each file is read once: its bytes are hashed while they are copied into the verifier's private folder, and the
copy is what is inspected, so a verdict is always about the bytes of its ``sha256``. A file that cannot be read (no
permission, a FIFO or device, a dangling symbolic link or a loop, a folder that cannot be listed) is its own error
line; names that are not UTF-8 are shown with their bytes escaped (``caf\\xe9.png``). Every line carries the policy
hash, the detector and the tool version, so a resume under another one is refused rather than mixed; a lock file
beside the JSONL keeps two runs from writing it at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import multiprocessing
import os
import re
import shutil
import signal
import stat
import tempfile
import weakref
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from synthguard import __version__
from synthguard.core.fileio import write_atomic
from synthguard.core.home import Home
from synthguard.core.process import peak_rss_mb
from synthguard.desk.audit import AuditLog
from synthguard.detect import Inspection, InspectionContext, VerdictLabel, inspect_file
from synthguard.detect.audio import audio_peak_memory_bound_mb
from synthguard.detect.image import peak_memory_bound_mb
from synthguard.detect.metadata import MetadataSignal
from synthguard.detect.sd_marks import SDMarkSignal
from synthguard.detect.signals import (
    AudioSignal,
    ClassifierSignal,
    WatermarkSignal,
    provenance_from_dict,
    watermark_from_dict,
)
from synthguard.detect.text import TEXT_PEAK_MEMORY_BOUND_MB
from synthguard.errors import Hint, InputError, SynthGuardError
from synthguard.policy import DeskAction, Policy
from synthguard.provenance.reading import ProvenanceSignal
from synthguard.provenance.resolver import Resolver
from synthguard.provenance.signing import sidecar_path

if TYPE_CHECKING:
    from synthguard.desk.ray_engine import RayRunInfo

SIDECAR_SUFFIX = ".c2pa"
ENGINES = ("local", "ray")


def shown(path: Path | str) -> str:
    """A path as text that can be printed, stored and encoded anywhere: bytes of a name that is not UTF-8 are kept
    as ``\\xNN`` escapes (a name is never dropped or replaced by a placeholder)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def walk(paths: Iterable[Path]) -> list[Path]:
    """Files to verify, in a stable order: each given file, and every entry under each given folder (recursive,
    sorted), without hidden files and ``.c2pa`` sidecars (read with their asset). Nothing else is left out: a path
    that does not exist, a FIFO, a broken symbolic link, a link to a folder (not followed) and a folder that cannot
    be listed are kept, each to become an error line, never a silent skip."""
    out: list[Path] = []
    seen: set[Path] = set()
    for path in map(Path, paths):
        found = _walk_folder(path) if path.is_dir() else [path]
        for p in found:
            if p not in seen:
                seen.add(p)
                out.append(p)
    return out


def _walk_folder(root: Path) -> list[Path]:
    found: list[Path] = []

    def unlistable(exc: OSError) -> None:
        if exc.filename is not None and Path(exc.filename) != root:
            found.append(Path(exc.filename))
        elif exc.filename is not None:
            found.append(root)

    for folder, dirs, names in os.walk(root, onerror=unlistable):
        here = Path(folder)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        # os.walk lists a link to a folder with the folders but does not enter it: it is an entry of its own.
        found += [here / d for d in dirs if (here / d).is_symlink()]
        found += [here / n for n in names if not n.startswith(".") and not n.endswith(SIDECAR_SUFFIX)]
    return sorted(found)


_SAFE_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,12}")


def _open_regular(path: Path, name: str) -> int:
    """A descriptor of ``path`` open for reading, refusing (InputError) what is not a readable regular file; a FIFO
    or device is never opened, so it cannot hang the run."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"{name}: a symbolic link to nothing (dangling)" if os.path.islink(path)
                         else f"{name}: no such file") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputError(f"{name}: a symbolic link loop") from None
        raise InputError(f"{name}: cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(info.st_mode):
        if os.path.islink(path):
            raise InputError(f"{name}: a symbolic link to a folder (not followed)")
        try:
            os.listdir(path)
        except OSError as exc:
            raise InputError(f"{name}: a folder that cannot be listed ({exc.strerror or exc})") from None
        raise InputError(f"{name}: is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        kind = "a FIFO" if stat.S_ISFIFO(info.st_mode) else "a socket" if stat.S_ISSOCK(info.st_mode) else \
            "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) else "not a file"
        raise InputError(f"{name}: not a regular file ({kind})")
    try:
        # Non-blocking: should it have become a FIFO since the stat, the open still returns at once.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except PermissionError:
        raise InputError(f"{name}: not readable (permission denied)") from None
    except OSError as exc:
        raise InputError(f"{name}: cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InputError(f"{name}: not a regular file (it changed while being opened)")
    return fd


def _copy_hashing(path: Path, name: str, target: Path | None) -> str:
    """The SHA-256 of ``path``'s bytes, read once; written to ``target`` as they are read when given."""
    fd = _open_regular(path, name)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "rb") as source:
            sink = open(target, "xb") if target is not None else None  # noqa: SIM115 (closed below)
            try:
                for block in iter(lambda: source.read(1 << 20), b""):
                    digest.update(block)
                    if sink is not None:
                        sink.write(block)
            finally:
                if sink is not None:
                    sink.close()
    except OSError as exc:
        raise InputError(f"{name}: cannot be read ({exc.strerror or exc})") from None
    return digest.hexdigest()


def content_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes; InputError when it is not a readable regular file."""
    return _copy_hashing(Path(path), shown(path), None)


@dataclass(frozen=True)
class VerifySettings:
    """What each worker needs to rebuild its own verifier (picklable)."""

    policy: Policy
    home: Path
    trust_extra: tuple[Path, ...] = ()
    detector: Path | None = None  # None: the built-in one
    use_ledger: bool = True
    text_model: str = "builtin"  # the tokenizer that re-reads texts for the identity's text watermark
    resolvers: tuple[str, ...] = ()  # Soft Binding Resolution API URLs, after the policy's
    # Where the image detector scores: "cpu" (numpy) or a torch device (a Ray GPU actor sets "cuda"); GPU scores
    # agree with the CPU's to about 1e-6, so they are not part of the stamp.
    device: str = "cpu"

    def stamp(self) -> dict[str, str | None]:
        """What a line's verdict depends on besides the file: the policy hash, the detector ("builtin" or its
        folder, resolved), the tool version, and the resolvers given besides the policy's (when any). A resume
        under another stamp is refused."""
        detector = "builtin" if self.detector is None else shown(Path(self.detector).resolve())
        return {"policy_sha256": self.policy.sha256, "detector": detector, "tool_version": __version__,
                "resolvers": " ".join(dict.fromkeys(Resolver(url).url for url in self.resolvers)) or None}


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
    policy_sha256: str | None = None  # the run's stamp (VerifySettings.stamp); None on a line made outside a run
    detector: str | None = None
    tool_version: str | None = None
    resolvers: str | None = None  # the resolvers given besides the policy's, when any (part of the stamp)
    audio: AudioSignal | None = None  # an audio file's format, codec, rate, channels and duration

    @classmethod
    def of(cls, inspection: Inspection, sha256: str, policy: Policy, *, file: str | None = None) -> VerifyLine:
        """The line of an inspected file, with the desk action its verdict has under ``policy``; ``file``: the
        name to show (default: the inspected path)."""
        verdict, classifier = inspection.verdict, inspection.classifier
        if classifier is not None and classifier.probability is not None:
            classifier = replace(classifier, probability=round(classifier.probability, 6))
        return cls(shown(inspection.file) if file is None else file, sha256,
                   policy.actions.for_label(verdict.label.value),
                   inspection.media.mime, verdict.label,
                   None if verdict.confidence is None else round(verdict.confidence, 6), verdict.reasons,
                   inspection.provenance, inspection.watermark, classifier, inspection.metadata,
                   sd_marks=inspection.sd_marks, audio=inspection.audio)

    @classmethod
    def failed(cls, path: Path | str, sha256: str | None, error: SynthGuardError | str, policy: Policy) -> VerifyLine:
        """The line of a file that could not be verified: the policy's error action and the reason."""
        return cls(path if isinstance(path, str) else shown(path), sha256, policy.actions.error, error=str(error))

    def stamped(self, stamp: dict[str, str | None]) -> VerifyLine:
        return replace(self, **stamp)

    def to_dict(self) -> dict:
        line = {"file": self.file, "sha256": self.sha256, "mime": self.mime,
                "verdict": None if self.verdict is None else self.verdict.value, "confidence": self.confidence,
                "action": self.action.value, "reasons": list(self.reasons), "policy_sha256": self.policy_sha256,
                "detector": self.detector, "tool_version": self.tool_version}
        if self.resolvers is not None:  # absent otherwise: a line without resolvers reads as it always did
            line["resolvers"] = self.resolvers
        if self.error is not None:
            return {**line, "error": self.error}
        if self.audio is not None:  # absent otherwise: an image's or a text's line reads as it always did
            line["audio"] = self.audio.to_dict()
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
                   SDMarkSignal.from_dict(data.get("sd_marks")), data.get("policy_sha256"), data.get("detector"),
                   data.get("tool_version"), data.get("resolvers"), AudioSignal.from_dict(data.get("audio")))

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
                                               detector=settings.detector, text_model=settings.text_model, threads=1,
                                               resolvers=settings.resolvers, device=settings.device)
        self.stamp = settings.stamp()
        # The private folder the copies are inspected in (mode 0700: only this user reads them), one per verifier;
        # each file's copy (and its sidecar's) is removed once its line is made.
        self._folder = Path(tempfile.mkdtemp(prefix="synthguard-verify-"))
        self._copies = 0
        # Removed by close(), or when the verifier goes or its process exits (a pool worker is never closed).
        self._remove_folder = weakref.finalize(self, shutil.rmtree, self._folder, ignore_errors=True)

    def check(self, path: Path) -> VerifyLine:
        """The line for ``path``; any unreadable input becomes an error line with the policy's action. The file is
        read once, hashed while it is copied into a private folder, and the copy is inspected."""
        return self._check(Path(path)).stamped(self.stamp)

    def check_bytes(self, path: Path | str, data: bytes, sidecar: bytes | None = None) -> VerifyLine:
        """The line for the file at ``path`` whose bytes are ``data`` (read elsewhere, e.g. by a Ray worker): the
        same inspection as :meth:`check`. Its manifest is ``sidecar`` when given, else read from beside ``path``
        when it has one there."""
        path = Path(path)

        def write(copy: Path) -> str:
            copy.write_bytes(data)
            if sidecar is not None:
                sidecar_path(copy).write_bytes(sidecar)
            return hashlib.sha256(data).hexdigest()

        return self._inspected(path, write, sidecar is None).stamped(self.stamp)

    def _check(self, path: Path) -> VerifyLine:
        return self._inspected(path, lambda copy: _copy_hashing(path, shown(path), copy), True)

    def _inspected(self, path: Path, write: Callable[[Path], str], read_sidecar: bool) -> VerifyLine:
        """The line of ``path`` once ``write(copy)`` has put its bytes at ``copy`` (returning their SHA-256); the
        sidecar beside ``path`` is copied beside the copy when ``read_sidecar`` and it exists."""
        policy, name = self.settings.policy, shown(path)
        suffix = path.suffix if _SAFE_SUFFIX.fullmatch(path.suffix) else ""
        self._copies += 1
        copy = self._folder / f"asset-{self._copies}{suffix}"
        digest = None
        try:
            try:
                digest = write(copy)
                side = sidecar_path(path)
                if read_sidecar and os.path.lexists(side):  # its manifest, when it has one, read once too
                    _copy_hashing(side, shown(side), sidecar_path(copy))
                inspection = inspect_file(copy, self.context, file_sha256=digest)
            except SynthGuardError as exc:
                return VerifyLine.failed(name, digest, self._named(str(exc), copy, name), policy)
            except OSError as exc:
                return VerifyLine.failed(name, digest, self._named(f"{name}: cannot be read ({exc})", copy, name),
                                         policy)
        finally:
            for leftover in (copy, sidecar_path(copy)):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(leftover)
        return VerifyLine.of(inspection, digest, policy, file=name)

    @staticmethod
    def _named(message: str, copy: Path, name: str) -> str:
        """A message about the private copy, told about the file itself."""
        return message.replace(str(sidecar_path(copy)), name + SIDECAR_SUFFIX).replace(str(copy), name)

    def close(self) -> None:
        self.context.close()
        self._remove_folder()


_WORKER: Verifier | None = None
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent(parent: int) -> None:
    """On Linux, ask the kernel to end this worker when the process that started it dies (a SIGKILLed ``verify``
    must not leave workers holding hundreds of MB); elsewhere a worker ends when its task pipe breaks."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request was made
        os._exit(1)


def _init_worker(settings: VerifySettings, parent: int | None = None) -> None:
    global _WORKER
    if parent is not None:
        _die_with_parent(parent)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import cv2  # noqa: PLC0415

    cv2.setNumThreads(1)
    _WORKER = Verifier(settings)


def worker_memory_bound_mb() -> int:
    """The most memory one worker should need for any accepted file: the image at the pixel budget in force
    (``detect.image.peak_memory_bound_mb``), the largest accepted text, or the longest accepted audio
    (``detect.audio.audio_peak_memory_bound_mb``), whichever is more."""
    return max(peak_memory_bound_mb(), TEXT_PEAK_MEMORY_BOUND_MB, audio_peak_memory_bound_mb())


def _check_in_worker(path: Path) -> tuple[VerifyLine, int, int]:
    assert _WORKER is not None
    line = _WORKER.check(path)
    return line, os.getpid(), int(peak_rss_mb())


def _results(files: list[Path], settings: VerifySettings, workers: int) -> Iterator[tuple[VerifyLine, int, int]]:
    """``(line, worker pid, the worker's peak memory in MiB so far)`` in ``files`` order, computed by ``workers``
    processes (in this process when 1)."""
    if workers <= 1:
        import cv2  # noqa: PLC0415

        previous = cv2.getNumThreads()
        cv2.setNumThreads(1)
        try:
            verifier = Verifier(settings)
            try:
                for path in files:
                    yield verifier.check(path), os.getpid(), int(peak_rss_mb())
            finally:
                verifier.close()
        finally:
            cv2.setNumThreads(previous)
        return
    # "spawn": a forked child inherits torch's and OpenCV's thread pools mid-state and can hang in them.
    context = multiprocessing.get_context("spawn")
    # Workers are started from this thread (the pool starts them on submit), so the kernel's parent-death signal
    # follows this process, not a helper thread that may end first.
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker,
                             initargs=(settings, os.getpid())) as pool:
        yield from pool.map(_check_in_worker, files, chunksize=4)


def precheck(path: Path, policy: Policy) -> VerifyLine | None:
    """The error line (unstamped) of a file that is not a readable regular file, with the message the local engine
    gives it; None when it can be opened for reading (it is not read)."""
    try:
        os.close(_open_regular(path, shown(path)))
    except InputError as exc:
        return VerifyLine.failed(path, None, exc, policy)
    return None


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
    worker_peak_mb: tuple[int, ...] = ()  # each worker's peak resident memory (MiB), highest first
    audit_head: tuple[int, str] | None = None  # the audit log's last entry (id, hash) after the run
    audit_recovered: int = 0  # audit entries written on resume for lines whose entry an interrupted run lost
    engine: str = "local"  # "local" (processes) or "ray" (Ray Data actors)
    ray: RayRunInfo | None = None  # the Ray engine's cluster and actor pool (None: not run on Ray)

    def resources(self) -> tuple[str, ...]:
        """The run's cost and its audit anchor, in plain lines (the report's header quotes them)."""
        out = [f"engine: {self.engine}"] if self.engine != "local" else []
        if self.ray is not None:
            out += self.ray.describe()
        if self.worker_peak_mb:
            who = "actor" if self.engine == "ray" else "worker"
            out.append(f"peak memory per {who}: {', '.join(f'{mb} MB' for mb in self.worker_peak_mb)} "
                       f"(bounded by the pixel, text and audio budgets: at most about {worker_memory_bound_mb()} MB)")
        if self.audit_head is not None:
            out.append(f"audit log head after this run: entry #{self.audit_head[0]}, sha256 {self.audit_head[1]}")
        if self.audit_recovered:
            out.append(f"{self.audit_recovered} audit entries lost by an interrupted run were recorded on resume")
        return tuple(out)

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
                "report": str(report) if report else None, "worker_peak_mb": list(self.worker_peak_mb),
                "worker_memory_bound_mb": worker_memory_bound_mb(),
                "audit_head": None if self.audit_head is None else {"entry": self.audit_head[0],
                                                                      "sha256": self.audit_head[1]},
                "audit_recovered": self.audit_recovered, "engine": self.engine,
                "ray": None if self.ray is None else self.ray.to_dict()}


def verify(paths: Iterable[Path], settings: VerifySettings, *, jsonl: Path | None = None,
           workers: int | None = None, resume: bool = False, overwrite: bool = False, audit: bool | None = None,
           progress: Callable[[int, int], None] | None = None, engine: str = "local",
           address: str | None = None) -> VerifyRun:
    """Verify every file under ``paths``; stream the lines to ``jsonl`` (appending when ``resume``); record each
    in the audit log when the policy says so (``audit`` overrides). ``progress(done, total)`` after each file.

    ``engine``: "local" checks with ``workers`` processes (default 1); "ray" with a pool of ``workers`` Ray Data
    actors (default: the cluster's CPUs) on the cluster at ``address`` ("auto", "host:port", "ray://..."; None: the
    session already initialised here, else a local instance). Both write the same lines.

    ``jsonl`` is locked for the run (``<jsonl>.lock`` beside it): a second run on it is refused. A resume keeps the
    earlier lines only when they carry this run's stamp (else InputError naming what differs), and verifies again
    each file whose bytes no longer match its line's sha256."""
    import time  # noqa: PLC0415

    start = time.perf_counter()
    if engine not in ENGINES:
        raise InputError(f"engine {engine!r}: choose one of {', '.join(ENGINES)}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise InputError(f"workers must be a whole number >= 1, not {workers!r}")
    if address is not None and engine != "ray":
        raise InputError("a cluster address is used by the Ray engine only")
    files = walk(paths)
    lock = None
    if jsonl is not None:
        jsonl = Path(jsonl)
        if not jsonl.parent.exists():
            raise InputError(f"output folder {jsonl.parent} does not exist")
        lock = _lock_output(jsonl)
    try:
        return _verify_locked(files, settings, jsonl, workers, resume, overwrite, audit, progress, start,
                              (engine, address))
    finally:
        if lock is not None:
            lock.close()  # closing the descriptor releases the lock


def _lock_output(jsonl: Path):
    """The open lock file of ``jsonl``, locked; InputError when another run holds it."""
    import fcntl  # noqa: PLC0415 (POSIX)

    path = jsonl.with_name(jsonl.name + ".lock")
    try:
        handle = open(path, "ab")  # noqa: SIM115 (held for the run, closed by the caller)
    except OSError as exc:
        raise InputError(f"cannot create the lock file {shown(path)}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise InputError(f"{shown(jsonl)} is being written by another verify run (it holds {shown(path)}); "
                         "wait for it to finish") from None
    return handle


def _check_stamp(jsonl: Path, earlier: list[VerifyLine], stamp: dict[str, str | None]) -> None:
    names = {"policy_sha256": "policy sha256", "detector": "detector", "tool_version": "tool version",
             "resolvers": "--resolver list"}
    for number, line in enumerate(earlier, 1):
        differ = [f"{names[k]} {getattr(line, k) or 'not recorded'} (this run: {v or 'none'})"
                  for k, v in stamp.items() if getattr(line, k) != v]
        if differ:
            raise InputError(f"{shown(jsonl)}: line {number} was written with another {', '.join(differ)}; a resume "
                             "must use the same ones", hint=Hint.RESUME_OR_OVERWRITE)


def _unchanged(line: VerifyLine, path: Path | None) -> bool:
    """Whether an earlier line still holds for its file: an error line without a hash always does (it is kept as
    it was), one with a hash only while the file's bytes still have it."""
    if line.sha256 is None or path is None:
        return True
    try:
        return content_sha256(path) == line.sha256
    except InputError:
        return False


def _verify_locked(files: list[Path], settings: VerifySettings, jsonl: Path | None, workers: int, resume: bool,
                   overwrite: bool, audit: bool | None, progress: Callable[[int, int], None] | None,
                   start: float, engine: tuple[str, str | None] = ("local", None)) -> VerifyRun:
    import time  # noqa: PLC0415

    earlier: list[VerifyLine] = []
    mode = "wb"
    if jsonl is not None:
        if jsonl.exists() and resume:
            earlier, keep = read_finished(jsonl)
            _check_stamp(jsonl, earlier, settings.stamp())
            by_name = {shown(p): p for p in files}
            kept = [line for line in earlier if _unchanged(line, by_name.get(line.file))]
            if len(kept) < len(earlier):  # files changed since: their lines go, they are verified again
                write_atomic(jsonl, b"".join((line.to_json() + "\n").encode() for line in kept))
                earlier = kept
            else:
                with open(jsonl, "r+b") as handle:  # drop a torn last line, keep the complete ones
                    handle.truncate(keep)
            mode = "ab"
        elif jsonl.exists() and not overwrite:
            raise InputError(f"{shown(jsonl)} exists", hint=Hint.RESUME_OR_OVERWRITE)
    done = {line.file for line in earlier}
    todo = [p for p in files if shown(p) not in done]
    record = settings.policy.audit.record if audit is None else audit
    policy = settings.policy
    lines = list(earlier)
    ray_run = None
    if engine[0] == "ray" and todo:  # nothing left to verify (all resumed): no cluster is joined
        from synthguard.desk.ray_engine import RayResults  # noqa: PLC0415 (Ray only when asked for)

        ray_run = RayResults(todo, settings, workers, engine[1]).open()  # before the output is touched
    results = ray_run if ray_run is not None else _results(todo, settings, workers or 1)
    peaks: dict[int | str, int] = {}
    recovered, head = 0, None
    try:
        log = AuditLog.from_home(Home(settings.home)) if record else None
        out = open(jsonl, mode) if jsonl is not None else None  # noqa: SIM115 (streamed, closed below)
    except BaseException:
        if ray_run is not None:
            ray_run.close()
        raise
    try:
        if log is not None and earlier:
            recovered = _record_lost_entries(log, earlier, policy)
        total = len(earlier) + len(todo)
        for line, worker, peak in results:
            lines.append(line)
            if worker is not None:  # None: an error line the Ray engine's driver made (no worker's memory)
                peaks[worker] = max(peak, peaks.get(worker, 0))
            if out is not None:
                out.write((line.to_json() + "\n").encode())
                out.flush()
            if log is not None:
                _record(log, line, policy)
            if progress is not None:
                progress(len(lines), total)
        if log is not None:
            head = log.head()
    finally:
        if out is not None:
            out.close()
        if log is not None:
            log.close()
        if ray_run is not None:
            ray_run.close()
    return VerifyRun(tuple(lines), len(earlier), time.perf_counter() - start,
                     tuple(sorted(peaks.values(), reverse=True)), head, recovered, engine[0],
                     None if ray_run is None else ray_run.info)


def _record(log: AuditLog, line: VerifyLine, policy: Policy) -> None:
    log.record_verification(file=line.file, file_sha256=line.sha256, policy=policy.name, policy_sha256=policy.sha256,
                            verdict=None if line.verdict is None else line.verdict.value, action=line.action.value,
                            reasons=list(line.reasons) if policy.audit.reasons else None)


def _record_lost_entries(log: AuditLog, earlier: list[VerifyLine], policy: Policy) -> int:
    """Audit entries for the kept lines that have none (the run that wrote them was killed between the line and its
    entry): afterwards every line of the output has an entry in the log under this policy."""
    have = log.verified(policy.sha256)
    lost = [line for line in earlier
            if (line.file, line.sha256, None if line.verdict is None else line.verdict.value, line.action.value)
            not in have]
    for line in lost:
        _record(log, line, policy)
    return len(lost)


def write_batch_report(path: Path, lines: Iterable[VerifyLine], policy: Policy,
                       progress: Callable[[int, int], None] | None = None, notes: Iterable[str] = ()) -> None:
    """The HTML report of a run, grouped by desk action: each image re-decoded for its thumbnail, heatmap and
    forensic pictures (JPEG, 160 px, so a thousand files stay a few tens of MB), each audio file for its waveform
    and spectrogram (JPEG, 320 px wide); written atomically. ``notes``
    (e.g. :meth:`VerifyRun.resources`) are printed in its header."""
    from synthguard.desk.report import ReportEntry, file_pictures, render_grouped_html  # noqa: PLC0415

    lines = list(lines)
    entries = []
    for i, line in enumerate(lines):
        figures: dict[str, bytes] = {}
        if line.error is None:
            heatmap = line.classifier.heatmap if line.classifier is not None else None
            try:
                figures = file_pictures(Path(line.file), heatmap, preview_side=160, fmt=".jpg")
            except (SynthGuardError, OSError):  # changed or gone since it was verified: the section shows the line only
                figures = {}
        entries.append(ReportEntry.of_line(line, figures))
        if progress is not None:
            progress(i + 1, len(lines))
    page = render_grouped_html(entries, title=f"SynthGuard verification: policy {policy.name}",
                               subtitle=f"Policy sha256 {policy.sha256[:16]}...", notes=tuple(notes))
    write_atomic(Path(path), page.encode("utf-8"))
