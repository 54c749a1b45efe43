"""The ledger under load: several processes recording at once into one ledger, then lookups by the keys a verifier
uses (soft binding, file hash, asset id), on the database given and, beside it, an embedded SQLite file as the peer.

Each writer process opens its own connection and records its share of the records (8 kB manifests, every key
distinct) as fast as it can; the run checks afterwards that the ledger holds exactly the records the writers
reported: none lost, none twice. Lookups run from one connection, one in ten for a key that is not there. Latencies
are per call (p50, p99); rates are calls over the wall time of the whole phase.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import queue
import random
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from synthguard.core.database import Backend, Database, DatabaseURL
from synthguard.errors import InputError
from synthguard.provenance.ledger import Ledger, LedgerRecord

MANIFEST_BYTES = 8000
STAMP_SIDE = 256  # px: the stamped images of ``stamp=True``
LOOKUPS = ("soft_binding", "file_hash", "asset_id")


@dataclass(frozen=True)
class Latency:
    calls: int
    p50_ms: float
    p99_ms: float
    mean_ms: float

    @classmethod
    def of(cls, seconds: list[float]) -> Latency:
        if not seconds:
            return cls(0, 0.0, 0.0, 0.0)
        ordered = sorted(seconds)
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        return cls(len(ordered), round(statistics.median(ordered) * 1e3, 3), round(p99 * 1e3, 3),
                   round(statistics.fmean(ordered) * 1e3, 3))


@dataclass(frozen=True)
class LedgerBenchRun:
    """One backend's figures. ``stored``: rows in the ledger afterwards; ``duplicates``: rows beyond one per asset
    id; ``lost``: records a writer reported written that the ledger does not hold; ``wrong_lookups``: lookups whose
    answer was not the expected record (or, for a missing key, not empty)."""

    backend: str
    location: str
    processes: int
    records: int
    insert_wall_s: float
    inserts_per_s: float
    insert: Latency
    stored: int
    duplicates: int
    lost: int
    lookups_per_s: float
    lookup: Latency
    wrong_lookups: int

    @property
    def ok(self) -> bool:
        return self.stored == self.records and not (self.duplicates or self.lost or self.wrong_lookups)

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}

    def describe(self) -> tuple[str, ...]:
        return (
            f"{self.backend} ({self.location}): {self.processes} processes recorded {self.records} records in "
            f"{self.insert_wall_s:.2f} s ({self.inserts_per_s:.0f}/s; per record p50 {self.insert.p50_ms:.2f} ms, "
            f"p99 {self.insert.p99_ms:.2f} ms)",
            f"  stored {self.stored}, {self.duplicates} duplicates, {self.lost} lost",
            f"  {self.lookup.calls} lookups: {self.lookups_per_s:.0f}/s, p50 {self.lookup.p50_ms:.2f} ms, "
            f"p99 {self.lookup.p99_ms:.2f} ms, {self.wrong_lookups} wrong",
        )


@dataclass(frozen=True)
class LedgerBench:
    runs: tuple[LedgerBenchRun, ...]

    @property
    def ok(self) -> bool:
        return all(run.ok for run in self.runs)

    def to_dict(self) -> dict:
        return {"runs": [run.to_dict() for run in self.runs], "ok": self.ok}

    def describe(self) -> tuple[str, ...]:
        return tuple(line for run in self.runs for line in run.describe())


def _bench_record(writer: int, i: int, seed: int) -> LedgerRecord:
    """Record ``i`` of writer ``writer``: every key distinct, derived from (seed, writer, i)."""
    key = hashlib.sha256(f"{seed}:{writer}:{i}".encode()).digest()
    return LedgerRecord(
        asset_id=f"urn:uuid:bench-{key[:16].hex()}", created_at=time.time(), mime="image/png",
        file_sha256=hashlib.sha256(key + b"file").hexdigest(), content_sha256=hashlib.sha256(key + b"px").hexdigest(),
        manifest_label=f"urn:c2pa:{key[16:].hex()}", manifest=random.Random(key).randbytes(MANIFEST_BYTES),
        signer="SynthGuard bench", soft_binding_alg="com.synthguard.tilemark", soft_binding_value=key[:6])


def _writer(url: DatabaseURL, writer: int, count: int, seed: int, barrier, results, stamp_home: Path | None) -> None:
    """One writer process: wait for the others, record ``count`` records, report (ids, latencies, start, end).
    With ``stamp_home`` each record is a real stamp: a photo-like image watermarked, C2PA-signed with that home's
    identity, written to a temporary folder and recorded by the signing session."""
    import torch  # noqa: PLC0415

    torch.set_num_threads(1)
    ids, latencies = [], []
    with Ledger(url) as ledger:
        if stamp_home is None:
            records = [_bench_record(writer, i, seed) for i in range(count)]
            barrier.wait(timeout=300)
            start = time.monotonic()
            for rec in records:
                t0 = time.perf_counter()
                ledger.record(rec)
                latencies.append(time.perf_counter() - t0)
                ids.append(rec.asset_id)
        else:
            from synthguard.core.home import Home  # noqa: PLC0415
            from synthguard.core.samples import procedural_image  # noqa: PLC0415
            from synthguard.provenance.identity import IdentityStore  # noqa: PLC0415
            from synthguard.provenance.manifest import DigitalSourceType, ManifestSpec  # noqa: PLC0415
            from synthguard.provenance.signing import SigningSession  # noqa: PLC0415
            from synthguard.stamp import Stamper  # noqa: PLC0415
            from synthguard.watermark import default_image_watermarker  # noqa: PLC0415

            spec = ManifestSpec(title="bench", digital_source_type=DigitalSourceType.TRAINED_ALGORITHMIC_MEDIA)
            identity = IdentityStore(Home(stamp_home)).load()
            with tempfile.TemporaryDirectory(prefix="synthguard-stamp-bench-") as out, \
                    SigningSession(identity, ledger) as session:
                stamper = Stamper(session, default_image_watermarker())
                images = [procedural_image(STAMP_SIDE, STAMP_SIDE, seed=seed * 100_000 + writer * 10_000 + i)
                          for i in range(count)]
                barrier.wait(timeout=300)
                start = time.monotonic()
                for i, pixels in enumerate(images):
                    t0 = time.perf_counter()
                    result = stamper.stamp_pixels(pixels, Path(out) / f"{writer}-{i}.png", spec)
                    latencies.append(time.perf_counter() - t0)
                    ids.append(result.signed.asset_id)
        end = time.monotonic()
    results.put((writer, ids, latencies, start, end))


def _run(url: DatabaseURL, records: int, processes: int, lookups: int, seed: int,
         stamp_home: Path | None = None) -> LedgerBenchRun:
    with Ledger(url) as ledger:
        if ledger.count():
            raise InputError(f"the ledger benchmark writes {records} records and needs an empty ledger, but "
                             f"{url.masked()} holds {ledger.count()}")
    shares = [records // processes + (1 if w < records % processes else 0) for w in range(processes)]
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(processes), context.Queue()
    workers = [context.Process(target=_writer, args=(url, w, n, seed, barrier, results, stamp_home))
               for w, n in enumerate(shares)]
    for worker in workers:
        worker.start()
    reports = []
    try:
        while len(reports) < len(workers):
            try:
                reports.append(results.get(timeout=1.0))
            except queue.Empty:
                failed = [w.exitcode for w in workers if w.exitcode]
                if failed:
                    raise RuntimeError(f"ledger benchmark writers failed (exit codes {failed})") from None
    finally:
        for worker in workers:
            if worker.is_alive() and len(reports) < len(workers):
                worker.terminate()
            worker.join()
    written = {asset_id for _, ids, _, _, _ in reports for asset_id in ids}
    wall = max(r[4] for r in reports) - min(r[3] for r in reports)
    insert = Latency.of([s for _, _, lat, _, _ in reports for s in lat])

    with Database(url, label="the ledger") as db:
        stored_ids = [row[0] for row in db.execute("SELECT asset_id FROM assets")]
    with Ledger(url) as ledger:
        if stamp_home is None:
            expected = [_bench_record(w, i, seed) for w, n in enumerate(shares) for i in range(n)]
        else:  # what the stamps recorded, looked up again by the keys a verifier has
            expected = [rec for rec in (ledger.get(asset_id) for asset_id in sorted(written)) if rec is not None]
        rng = random.Random(seed)
        latencies, wrong = [], 0
        start = time.perf_counter()
        for k in range(lookups):
            missing = rng.random() < 0.1
            rec = expected[rng.randrange(len(expected))]
            how = LOOKUPS[k % len(LOOKUPS)]
            t0 = time.perf_counter()
            if how == "soft_binding":
                found = ledger.find_by_soft_binding(b"\xff" * 7 if missing else rec.soft_binding_value)
            elif how == "file_hash":
                found = ledger.find_by_file_hash("0" * 64 if missing else rec.file_sha256)
            else:
                one = ledger.get("urn:uuid:none" if missing else rec.asset_id)
                found = [] if one is None else [one]
            latencies.append(time.perf_counter() - t0)
            wrong += (found != []) if missing else ([f.asset_id for f in found] != [rec.asset_id])
        lookup_wall = time.perf_counter() - start
    return LedgerBenchRun(
        backend=url.backend.value + (" (stamping images)" if stamp_home else ""), location=url.masked(),
        processes=processes, records=records,
        insert_wall_s=round(wall, 3), inserts_per_s=round(records / wall, 1) if wall else 0.0, insert=insert,
        stored=len(stored_ids), duplicates=len(stored_ids) - len(set(stored_ids)),
        lost=len(written - set(stored_ids)), lookups_per_s=round(lookups / lookup_wall, 1) if lookup_wall else 0.0,
        lookup=Latency.of(latencies), wrong_lookups=wrong)


def run_ledger_benchmark(url: str | DatabaseURL | None = None, *, records: int = 2000, processes: int = 4,
                         lookups: int = 3000, seed: int = 0, peer: bool = True, stamp: bool = False) -> LedgerBench:
    """Record ``records`` records from ``processes`` processes at once into the ledger at ``url`` (None: a new
    SQLite file in a temporary folder), then time ``lookups`` lookups. ``url`` must hold an empty ledger (the
    benchmark's records stay in it). With ``peer``, a PostgreSQL run is followed by the same run on an embedded
    SQLite file, so the two are measured on the same machine at the same time. With ``stamp``, each record is a
    real stamp (a 256 px image watermarked and signed by a throw-away identity) instead of a synthetic record."""
    if records < 1 or processes < 1 or lookups < 0:
        raise InputError(f"the ledger benchmark needs records >= 1, processes >= 1 and lookups >= 0, got "
                         f"{records}, {processes}, {lookups}")
    target = None if url is None else DatabaseURL.parse(url)
    with tempfile.TemporaryDirectory(prefix="synthguard-ledger-bench-") as tmp:
        embedded = DatabaseURL.sqlite(Path(tmp) / "ledger.sqlite")
        stamp_home = None
        if stamp:
            from synthguard.core.home import Home  # noqa: PLC0415
            from synthguard.provenance.identity import IdentityStore  # noqa: PLC0415

            stamp_home = Path(tmp) / "home"
            IdentityStore(Home(stamp_home)).init("SynthGuard ledger benchmark", "SynthGuard")
        runs = [_run(target or embedded, records, processes, lookups, seed, stamp_home)]
        if peer and target is not None and target.backend is Backend.POSTGRESQL:
            runs.append(_run(embedded, records, processes, lookups, seed, stamp_home))
    return LedgerBench(tuple(runs))
