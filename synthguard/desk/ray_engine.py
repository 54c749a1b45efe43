"""The Ray Data engine of batch verification: the same lines as the local engine, checked by a pool of actors.

The driver walks and pre-checks the files as the local engine does: one that is not a readable regular file is its
error line, made here with the local engine's message. The rest are read as bytes by Ray Data
(``read_binary_files`` with their paths: the bytes are all that is inspected, manifest and metadata included) and
checked by ``map_batches`` with a callable class: each actor builds one ``Verifier`` and runs
``Verifier.check_bytes`` on each row, so a line depends only on the file, never on the engine.

Nothing is lost: a block that fails in Ray (a file that changed or went away before Ray read it, an actor that
crashed) is dropped by Ray Data and its files are checked again, each read on the driver and sent alone; a file
that still has no line then gets an error line naming the failure. Lines come back in the walk's order.

Paths are sent absolute: every node must see the files at the same paths (one machine, or a shared file system).
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
import warnings
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path

from synthguard.core.process import peak_rss_mb
from synthguard.core.ray_cluster import RayCluster, configure_data_context, ray_session
from synthguard.desk.batch import Verifier, VerifyLine, VerifySettings, _open_regular, precheck, shown
from synthguard.errors import InputError, one_line

BATCH_SIZE = 4  # rows an actor checks per call: small, so the pool stays busy to the end
BLOCK_FILES = 16  # files per block Ray Data reads (at least two blocks per actor): a failed block retries these
RETRY_CHUNK = 32  # files read on the driver at a time when failed blocks are retried


class Accelerator(str, Enum):
    CPU = "cpu"
    GPU = "gpu"


@dataclass(frozen=True)
class ActorPlan:
    """How the actor pool runs: its size, the GPUs each actor holds, and why."""

    pool: int
    accelerator: Accelerator
    reason: str

    @property
    def num_gpus(self) -> int:
        return 1 if self.accelerator is Accelerator.GPU else 0

    def to_dict(self) -> dict:
        return {"pool": self.pool, "accelerator": self.accelerator.value, "num_gpus_per_actor": self.num_gpus,
                "reason": self.reason}

    def describe(self) -> tuple[str, ...]:
        return (f"actor pool: {self.pool} actor(s) on {self.accelerator.value.upper()} ({self.reason})",)


def detector_uses_device(settings: VerifySettings) -> bool:
    """Whether the run's detector can score on a GPU: the built-in one and a saved discriminator detector can (the
    torch modules on the device); a backbone probe runs on the CPU only."""
    from synthguard.models.backbone import BACKBONE_FILE  # noqa: PLC0415

    return settings.detector is None or not (Path(settings.detector) / BACKBONE_FILE).is_file()


def plan_actors(workers: int | None, cluster_cpus: float, cluster_gpus: float, *, classifier: bool,
                device_supported: bool) -> ActorPlan:
    """The actor pool for a run: ``workers`` actors (default: the cluster's CPUs, at least 1), one CPU each, never
    more than the cluster has CPUs (a pool that cannot be placed would wait forever); one GPU each only when the
    cluster has GPUs, the policy scores with the classifier and the detector can run on a GPU (then at most one
    actor per GPU)."""
    cpus = max(1, int(cluster_cpus))
    pool = min(workers or cpus, cpus)
    if cluster_gpus < 1:
        return ActorPlan(pool, Accelerator.CPU, "the cluster has no GPU")
    if not classifier:
        return ActorPlan(pool, Accelerator.CPU, "the policy does not run the classifier")
    if not device_supported:
        return ActorPlan(pool, Accelerator.CPU, "the detector runs on the CPU only")
    return ActorPlan(min(pool, int(cluster_gpus)), Accelerator.GPU, f"{int(cluster_gpus)} GPU(s) for the classifier")


@dataclass(frozen=True)
class RayRunInfo:
    """The Ray side of a run: the cluster, the actor pool, and the seconds taken to start or join the cluster."""

    cluster: RayCluster
    plan: ActorPlan
    start_seconds: float
    retried: int = 0  # files checked again, one at a time, after their block failed in Ray

    def to_dict(self) -> dict:
        return {"cluster": self.cluster.to_dict(), "actors": self.plan.to_dict(),
                "start_seconds": round(self.start_seconds, 2), "retried": self.retried}

    def describe(self) -> tuple[str, ...]:
        out = (*self.cluster.describe(), *self.plan.describe(), f"Ray start-up: {self.start_seconds:.1f} s")
        if self.retried:
            out += (f"{self.retried} file(s) were checked again after their block failed in Ray",)
        return out


class CheckActor:
    """One Ray Data actor: a verifier built once, then ``check_bytes`` on every row of each batch."""

    def __init__(self, settings: VerifySettings):
        os.environ["OMP_NUM_THREADS"] = "1"
        import cv2  # noqa: PLC0415

        cv2.setNumThreads(1)
        self.verifier = Verifier(settings)
        self.worker = f"{socket.gethostname()}:{os.getpid()}"

    def __call__(self, batch: dict) -> dict:
        import numpy as np  # noqa: PLC0415

        lines = [self._line(path, data) for path, data in zip(batch["path"], batch["bytes"], strict=True)]
        peak = int(peak_rss_mb())
        return {"path": batch["path"], "line": np.array(lines, dtype=object),
                "worker": np.array([self.worker] * len(lines), dtype=object),
                "peak": np.array([peak] * len(lines), dtype=np.int64)}

    def _line(self, path: str | bytes, data: bytes) -> str:
        target = Path(os.fsdecode(path))
        try:
            return self.verifier.check_bytes(target, bytes(data)).to_json()
        except Exception as exc:  # noqa: BLE001 (a fault in the checks: this file's error line, not a lost batch)
            name = shown(target)
            return VerifyLine.failed(name, hashlib.sha256(data).hexdigest(),
                                     f"{name}: could not be checked ({type(exc).__name__}: {one_line(exc)})",
                                     self.verifier.settings.policy).stamped(self.verifier.stamp).to_json()


class RayResults:
    """``(line, actor, the actor's peak memory in MiB)`` for ``files`` in their order, checked on Ray.

    ``open()`` joins the cluster (InputError when it cannot be reached) and sets ``info``; iterating checks the
    files, and ``close()`` (also at the end of the iteration) leaves the cluster."""

    def __init__(self, files: list[Path], settings: VerifySettings, workers: int | None, address: str | None):
        self.files, self.settings, self.workers, self.address = files, settings, workers, address
        self.info: RayRunInfo | None = None
        self._session = None

    def open(self) -> RayResults:
        started = time.perf_counter()
        session = ray_session(self.address)
        cluster = session.__enter__()
        self._session = session
        plan = plan_actors(self.workers, cluster.cpus, cluster.gpus,
                           classifier=self.settings.policy.detection.classifier,
                           device_supported=detector_uses_device(self.settings))
        self.info = RayRunInfo(cluster, plan, time.perf_counter() - started)
        return self

    def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.__exit__(None, None, None)

    def __iter__(self) -> Iterator[tuple[VerifyLine, str | None, int]]:
        if self.info is None:
            self.open()
        policy, stamp = self.settings.policy, self.settings.stamp()
        ready: dict[int, tuple[VerifyLine, str, int]] = {}
        sendable: list[int] = []
        for i, path in enumerate(self.files):
            line = precheck(path, policy)
            if line is not None:
                ready[i] = (line.stamped(stamp), None, 0)
            else:
                sendable.append(i)
        try:
            yield from self._merged(ready, sendable, self.info.cluster, self.info.plan)
        finally:
            self.close()

    def _merged(self, ready: dict, sendable: list[int], cluster: RayCluster,
                plan: ActorPlan) -> Iterator[tuple[VerifyLine, str, int]]:
        """Lines in file order as they arrive: the driver's error lines, then Ray's, then the retried ones."""
        policy, stamp = self.settings.policy, self.settings.stamp()
        keys: dict[str, deque[int]] = {}
        direct: list[int] = []  # names that are not UTF-8 cannot be Arrow paths: read on the driver
        for i in sendable:
            key = os.path.abspath(self.files[i])
            try:
                key.encode("utf-8")
            except UnicodeEncodeError:
                direct.append(i)
                continue
            keys.setdefault(key, deque()).append(i)
        following = 0

        def flush() -> Iterator[tuple[VerifyLine, str, int]]:
            nonlocal following
            while following in ready:
                yield ready.pop(following)
                following += 1

        def take(rows: dict, lookup: dict) -> None:
            for path, line, worker, peak in zip(rows["path"], rows["line"], rows["worker"], rows["peak"],
                                                strict=True):
                waiting = lookup.get(path)
                if waiting:
                    i = waiting.popleft()
                    ready[i] = (self._renamed(VerifyLine.from_dict(_json(line)), i), str(worker), int(peak))

        yield from flush()
        if keys:
            paths = [key for key, indices in keys.items() for _ in indices]
            try:
                for rows in self._pipeline(cluster, plan, None, paths):
                    take(rows, keys)
                    yield from flush()
            except Exception:  # noqa: BLE001 (a Ray failure: the files without a line are retried below)
                pass
        retry = sorted(direct + [i for indices in keys.values() for i in indices])
        if self.info is not None and retry:
            self.info = RayRunInfo(self.info.cluster, self.info.plan, self.info.start_seconds,
                                   len(retry) - len(direct))
        broken = None  # set once a whole Ray run fails: the files left get error lines without another try
        for start in range(0, len(retry), RETRY_CHUNK):
            chunk = retry[start:start + RETRY_CHUNK]
            rows, digests, lookup = [], {}, {}
            for i in chunk:
                path, name = self.files[i], shown(self.files[i])
                try:
                    data = _read(path, name)
                except InputError as exc:
                    ready[i] = (VerifyLine.failed(name, None, exc, policy).stamped(stamp), None, 0)
                    continue
                key = os.fsencode(os.path.abspath(path))
                digests[i] = hashlib.sha256(data).hexdigest()
                lookup.setdefault(key, deque()).append(i)
                rows.append({"path": key, "bytes": data})
            failure = broken or "the Ray actor checking it failed"
            if rows and broken is None:
                try:
                    for batch in self._pipeline(cluster, plan, rows, None):
                        take(batch, lookup)
                except Exception as exc:  # noqa: BLE001 (the run goes on: these files get error lines)
                    failure = broken = f"the Ray run failed ({type(exc).__name__}: {_plain(exc)})"
            for i in chunk:
                if i not in ready:
                    name = shown(self.files[i])
                    ready[i] = (VerifyLine.failed(name, digests.get(i), f"{name}: could not be checked ({failure})",
                                                  policy).stamped(stamp), None, 0)
            yield from flush()

    def _pipeline(self, cluster: RayCluster, plan: ActorPlan, rows: list[dict] | None,
                  paths: list[str] | None) -> Iterator[dict]:
        """Batches of checked rows: ``paths`` read by Ray Data, or ``rows`` (path and bytes, one block each)."""
        import ray.data  # noqa: PLC0415 (optional: the ray extra)

        ctx = configure_data_context()
        errored = ctx.max_errored_blocks
        ctx.max_errored_blocks = -1  # a failed block is dropped, not fatal: its files are retried by the caller
        try:
            checked = self._dataset(ray, cluster, plan, rows, paths)
        finally:  # the dataset keeps its copy of the context; other pipelines of this process keep theirs
            ctx.max_errored_blocks = errored
        yield from checked.iter_batches(batch_format="numpy", batch_size=None)

    def _dataset(self, ray, cluster: RayCluster, plan: ActorPlan, rows: list[dict] | None, paths: list[str] | None):
        if paths is not None:
            # Reading is I/O: its tasks take no CPU, so that a pool holding every CPU cannot starve them.
            blocks = min(len(paths), max(2 * plan.pool, -(-len(paths) // BLOCK_FILES)))
            # At most as many reads at once as there are actors: a CPU-free task has no other bound, and Ray would
            # start a worker process for each one in flight.
            dataset = ray.data.read_binary_files(paths, include_paths=True, num_cpus=0, override_num_blocks=blocks,
                                                 concurrency=plan.pool, runtime_env=cluster.runtime_env())
        else:
            dataset = ray.data.from_items(rows, override_num_blocks=len(rows))
        with warnings.catch_warnings():  # Ray names max_task_retries among the deprecated catch-all arguments
            warnings.simplefilter("ignore", DeprecationWarning)
            # A crashed actor is restarted, but the batch it held is tried once more at most: a file that kills
            # its actor loses only its own block, not the run.
            # A GPU actor scores with the torch modules on its GPU (Ray sets CUDA_VISIBLE_DEVICES to its own).
            settings = replace(self.settings, device="cuda") if plan.num_gpus else self.settings
            checked = dataset.map_batches(_bound(settings), batch_size=BATCH_SIZE if paths is not None else 1,
                                          batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=plan.pool),
                                          num_cpus=1,
                                          num_gpus=plan.num_gpus, runtime_env=cluster.runtime_env(),
                                          max_task_retries=1)
        return checked

    def _renamed(self, line: VerifyLine, i: int) -> VerifyLine:
        """A line made under the absolute path, told under the walk's name for the file (as the local engine)."""
        absolute, name = shown(os.path.abspath(self.files[i])), shown(self.files[i])
        if absolute == name:
            return line
        return replace(line, file=name, error=None if line.error is None else line.error.replace(absolute, name))


def _bound(settings: VerifySettings) -> type[CheckActor]:
    """A ``CheckActor`` class that holds ``settings`` (pickled with the class), so that the actors take no
    constructor arguments from the object store (which a restarted actor could no longer find)."""

    class BoundCheckActor(CheckActor):
        def __init__(self):
            super().__init__(settings)

    return BoundCheckActor


def _plain(exc: BaseException) -> str:
    """An exception's message on one line, without terminal colours, at most 300 characters."""
    import re  # noqa: PLC0415

    return re.sub(r"\x1b\[[0-9;]*m", "", one_line(exc))[:300]


def _json(text: str) -> dict:
    import json  # noqa: PLC0415

    return json.loads(text)


def _read(path: Path, name: str) -> bytes:
    """The bytes of a readable regular file; InputError with the local engine's message otherwise."""
    fd = _open_regular(path, name)
    try:
        with os.fdopen(fd, "rb") as source:
            return source.read()
    except OSError as exc:
        raise InputError(f"{name}: cannot be read ({exc.strerror or exc})") from None

