"""Lookups through the Soft Binding Resolution API: a real ``synthguard ledger serve`` process on loopback over a
ledger of ``records`` records, asked ``GET /matches/byBinding`` by the project's own client from 1 and from N
threads, beside the same lookups made in-process on the ledger (the peer: what the HTTP service costs on top).

Every answer is checked: a key that is there must come back as exactly its manifest, one in ten keys asked is not
there and must come back with no match. Latencies are per call (p50, p99); rates are calls over the phase's wall
time. The server and the client share this machine's cores.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from synthguard.bench.ledger_bench import Latency, _bench_record
from synthguard.core.database import DatabaseURL
from synthguard.errors import InputError
from synthguard.provenance.ledger import Ledger, LedgerRecord
from synthguard.provenance.resolver import Resolver
from synthguard.watermark import default_image_watermarker


@dataclass(frozen=True)
class LookupRun:
    how: str
    clients: int
    lookups: int
    lookups_per_s: float
    latency: Latency
    wrong: int
    failed: int  # answers that were not ok (unreachable, timeout, invalid, HTTP error)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ResolverBench:
    records: int
    backend: str
    runs: tuple[LookupRun, ...]

    @property
    def ok(self) -> bool:
        return all(run.wrong == 0 and run.failed == 0 for run in self.runs)

    def to_dict(self) -> dict:
        return {"records": self.records, "backend": self.backend, "runs": [r.to_dict() for r in self.runs],
                "ok": self.ok}

    def describe(self) -> tuple[str, ...]:
        direct = next((r for r in self.runs if r.how == "in-process"), None)
        lines = [f"{self.records} records in a {self.backend} ledger; lookups by soft binding (one in ten for a "
                 "key that is not there)", "| path | clients | lookups/s | p50 ms | p99 ms | wrong | failed | "
                 "vs in-process |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in self.runs:
            ratio = f"{direct.lookups_per_s / r.lookups_per_s:.1f}x slower" if direct and r is not direct and \
                r.lookups_per_s else "-"
            lines.append(f"| {r.how} | {r.clients} | {r.lookups_per_s:.0f} | {r.latency.p50_ms:.2f} | "
                         f"{r.latency.p99_ms:.2f} | {r.wrong} | {r.failed} | {ratio} |")
        return tuple(lines)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(port: int, process: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise InputError(f"ledger serve exited with status {process.returncode} before it answered: "
                             f"{process.stderr.read().decode(errors='replace')[-400:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise InputError(f"ledger serve did not start on port {port} within {timeout:.0f} s")


def _questions(records: list[LedgerRecord], lookups: int, seed: int) -> list[tuple[bytes, str | None]]:
    rng = random.Random(seed)
    out = []
    for _ in range(lookups):
        if rng.random() < 0.1:
            out.append((rng.randbytes(6), None))
        else:
            rec = records[rng.randrange(len(records))]
            out.append((rec.soft_binding_value, rec.manifest_label))
    return out


def _through_http(url: str, alg: str, questions: list[tuple[bytes, str | None]], clients: int) -> LookupRun:
    shares = [questions[i::clients] for i in range(clients)]
    latencies: list[float] = []
    counts = {"wrong": 0, "failed": 0}
    lock = threading.Lock()

    def client(share):
        resolver = Resolver(url, timeout=30.0)
        mine, wrong, failed = [], 0, 0
        for value, expected in share:
            t0 = time.perf_counter()
            outcome = resolver.resolve_by_binding(alg, value)
            mine.append(time.perf_counter() - t0)
            if not outcome.ok:
                failed += 1
            elif [m.manifest_id for m in outcome.matches] != ([] if expected is None else [expected]):
                wrong += 1
        with lock:
            latencies.extend(mine)
            counts["wrong"] += wrong
            counts["failed"] += failed

    threads = [threading.Thread(target=client, args=(share,)) for share in shares]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    return LookupRun("ledger serve (HTTP)", clients, len(questions), round(len(questions) / wall, 1),
                     Latency.of(latencies), counts["wrong"], counts["failed"])


def _in_process(ledger: Ledger, questions: list[tuple[bytes, str | None]]) -> LookupRun:
    latencies, wrong = [], 0
    start = time.perf_counter()
    for value, expected in questions:
        t0 = time.perf_counter()
        found = ledger.find_by_soft_binding(value)
        latencies.append(time.perf_counter() - t0)
        wrong += [r.manifest_label for r in found] != ([] if expected is None else [expected])
    wall = time.perf_counter() - start
    return LookupRun("in-process", 1, len(questions), round(len(questions) / wall, 1), Latency.of(latencies), wrong,
                     0)


def run_resolver_benchmark(url: str | None = None, *, records: int = 2000, lookups: int = 2000,
                           clients: tuple[int, ...] = (1, 4), seed: int = 0) -> ResolverBench:
    """Fill an empty ledger (``url``: a database URL; None: a SQLite file in a temporary home) with ``records``
    records, serve it with ``synthguard ledger serve`` and time ``lookups`` lookups per client count."""
    if records < 1 or lookups < 1 or not clients or min(clients) < 1:
        raise InputError("the resolver benchmark needs records >= 1, lookups >= 1 and client counts >= 1")
    alg = default_image_watermarker().algorithm_id
    with tempfile.TemporaryDirectory(prefix="synthguard-resolver-bench-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        location = DatabaseURL.parse(url) if url else DatabaseURL.sqlite(home / "ledger.sqlite")
        made = [replace(_bench_record(0, i, seed), soft_binding_alg=alg) for i in range(records)]
        with Ledger(location) as ledger:
            if ledger.count():
                raise InputError(f"the resolver benchmark needs an empty ledger, but {location.masked()} holds "
                                 f"{ledger.count()} records")
            for rec in made:
                ledger.record(rec)
            questions = _questions(made, lookups, seed)
            runs = [_in_process(ledger, questions)]
        port = _free_port()
        env = os.environ | {"SYNTHGUARD_HOME": str(home), "OMP_NUM_THREADS": "1"}
        if url:
            env["SYNTHGUARD_DATABASE_URL"] = url
        else:
            env.pop("SYNTHGUARD_DATABASE_URL", None)
        server = subprocess.Popen([sys.executable, "-m", "synthguard.cli", "ledger", "serve", "--port", str(port),
                                   "--rate-limit", "0", "--max-connections", "256"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            _wait_for(port, server)
            for n in clients:
                runs.append(_through_http(f"http://127.0.0.1:{port}", alg, questions, n))
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
    return ResolverBench(records, location.backend.value, tuple(runs))
