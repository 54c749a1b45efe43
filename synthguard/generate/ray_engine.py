"""Generate on Ray: ``generate_images``' flow spread over a Ray Data actor pool, for runs past one machine.

The seeds go out as a Ray dataset; ``map_batches`` hands them to a fixed pool of actors (one CPU each), and each
actor loads the generator and opens its own ``Stamper`` once, then for every batch samples its seeds (image ``i``
from seed ``seed + i``, the same pixels as the local engine), watermarks, signs and records each image in the
shared ledger, and writes the file into the output folder. Each row that comes back is one file's ``StampResult``
as a dict (JSON text); the driver collects them in seed order into the ``GenerateReport`` the local engine returns.

What the workers share, and so what a cluster needs: the output folder on a filesystem every node mounts at the
same path; the home's signing identity (``SYNTHGUARD_HOME``); and a ledger every node reaches, PostgreSQL
(``SYNTHGUARD_DATABASE_URL``) as soon as a node is on another machine: a SQLite file would split into one ledger per
machine, so that is refused. Watermark keys are reserved in the ledger (``Ledger.reserve_soft_binding``), so they
stay unique across actors and machines.

Errors a worker raises on purpose (``SynthGuardError``) come back as rows and are raised again here with their type
and hint, not as a Ray traceback. Ray is optional (the ``ray`` extra): imported inside the functions that use it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import math
import socket
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np

from synthguard import errors
from synthguard.core.database import DatabaseURL
from synthguard.core.home import Home
from synthguard.core.ray_cluster import RayCluster, configure_data_context, import_ray, ray_session
from synthguard.errors import Hint, IdentityError, InputError, LedgerError, SynthGuardError
from synthguard.generate.backends import load_generator
from synthguard.generate.base import ProgressCallback, check_labels
from synthguard.generate.runs import (
    Engine,
    GenerateReport,
    ImageRequest,
    check_markable,
    image_folder,
    output_path,
    output_paths,
    sample_specs,
    stage_seconds,
)
from synthguard.provenance.identity import IdentityStore, cert_fingerprint
from synthguard.provenance.ledger import Ledger
from synthguard.provenance.signing import SignResult
from synthguard.stamp import IdentitySource, Stamper, StampResult

# The SynthGuardError types a worker's error row can name (anything else is not raised again by name).
_ERRORS = {cls.__name__: cls for cls in vars(errors).values()
           if isinstance(cls, type) and issubclass(cls, SynthGuardError)}


def generate_images_on_ray(request: ImageRequest, home: Home, *, address: str | None = None,
                           actors: int | None = None, identity: IdentitySource = None,
                           progress: ProgressCallback | None = None) -> GenerateReport:
    """``generate_images`` on Ray: the request's images sampled, stamped and written by actors of the cluster at
    ``address`` ("auto", "host:port", "ray://host:port"; None: a local instance started for the run, or the session
    this process already has), ``actors`` of them (one CPU each; None: one per CPU of the cluster).

    Signs as the home's identity (``identity``, see ``IdentitySource``, must be it: the workers load it from the
    home). ``request.workers`` is not used (each actor stamps on its one CPU); ``progress(k)``: ``k`` more images
    stamped. The report's ``wall_seconds`` run from handing out the seeds to the last file, the actors' start-up
    (loading the generator, opening the ledger) included.
    """
    # 1. Check the inputs: the home, the actor count, the output folder, and that the ledger is one every worker
    #    writes (a cluster on other machines needs a shared database).
    if not isinstance(home, Home):
        raise InputError(f"the Ray engine opens a stamper on every worker from a Home, not a {type(home).__name__}")
    if actors is not None and (isinstance(actors, bool) or not isinstance(actors, int) or actors < 1):
        raise InputError(f"actors must be an integer of at least 1 or None, not {actors!r}")
    folder = image_folder(request.output_dir)
    ledger = Ledger.location_for(home)
    if address is not None and _names_another_machine(address):
        _need_shared_ledger(ledger, f"the Ray cluster at {address} is on another machine")

    # 2. Load the generator here too: its name names the outputs, and a model that does not load fails before a
    #    cluster is used.
    generator = load_generator(request.backend, request.model, output_size=request.size,
                               num_threads=request.threads, **request.diffusion_options(),
                               conditional=request.label is not None)
    if request.label is not None:
        check_labels(request.label, request.n, generator.num_classes)

    # 3. Name the outputs and refuse existing ones.
    seeds = [request.seed + i for i in range(request.n)]
    prefix = generator.name.rsplit("/", 1)[-1] + (f"-l{request.label}" if request.label is not None else "")
    paths = output_paths(folder, prefix, seeds, request.fmt.suffix, request.overwrite)
    del generator  # the actors load their own

    # 4. The signing identity: made here, once (never by racing workers), and the one the workers load.
    signer = _home_identity(home, identity)

    # 5. Connect to the cluster (or start one) and refuse one whose nodes would not share the ledger.
    with ray_session(address, env={"SYNTHGUARD_HOME": str(home.root.resolve())}) as cluster:
        remote = _remote_nodes()
        if remote:
            _need_shared_ledger(ledger, f"the Ray cluster has nodes on other machines ({', '.join(remote[:3])})")
        pool = _pool_size(actors, cluster, request.n)
        folder.mkdir(parents=True, exist_ok=True)

        # 6. Sample, stamp and write on the actors; collect one row per image.
        start = time.perf_counter()
        rows = _run(request, folder.resolve(), prefix, seeds, pool, cluster, home, _ledger_name(ledger),
                    cert_fingerprint(signer.certificate), progress)
        wall = time.perf_counter() - start

    # 7. Report, in seed order, each file under the name the request gave (the workers wrote absolute paths).
    rows.sort(key=lambda row: row["seed"])
    files = [_stamp_result(json.loads(row["file"]), path) for row, path in zip(rows, paths, strict=True)]
    missing = [f.signed.output for f in files if not f.signed.output.is_file()]
    if missing:
        raise InputError(f"the workers wrote {len(missing)} of the images where this machine does not see them "
                         f"(first: {missing[0]}): the output folder must be on a filesystem every node mounts at "
                         "the same path")
    first = rows[0]
    devices = sorted({row["device"] for row in rows})
    return GenerateReport(files, first["model"], first["version"], first["config_hash"], ",".join(devices),
                          stage_seconds(sum(row["model_seconds"] for row in rows), files), wall_seconds=wall,
                          engine=Engine.RAY, cluster=cluster)


def _run(request: ImageRequest, folder: Path, prefix: str, seeds: list[int], pool: int, cluster: RayCluster,
         home: Home, ledger: str, fingerprint: str, progress: ProgressCallback | None) -> list[dict]:
    """The pipeline: seeds -> ``map_batches`` over ``pool`` actors -> rows; a worker's error row raised here."""
    ray = import_ray()
    configure_data_context()
    # Each actor gets whole batches; no more of them per actor than spreads the seeds over the pool.
    batch = max(1, min(request.batch_size, math.ceil(len(seeds) / pool)))
    # The seeds are put in the object store from here, one int64 array per block (``from_numpy``: a column
    # "data"): a read task (``range``) would need a CPU that a pool holding every CPU of the cluster never frees.
    blocks = np.array_split(np.asarray(seeds, dtype=np.int64), math.ceil(len(seeds) / batch))
    dataset = ray.data.from_numpy(blocks)
    stamped = dataset.map_batches(
        ImageActor, batch_size=batch, batch_format="numpy", num_cpus=1,
        compute=ray.data.ActorPoolStrategy(size=pool), runtime_env=cluster.runtime_env(),
        fn_constructor_kwargs={"request": request, "folder": str(folder), "prefix": prefix,
                               "home_root": str(home.root.resolve()), "ledger": ledger, "fingerprint": fingerprint})
    rows = []
    for row in stamped.iter_rows():
        if row["error"]:
            _raise(json.loads(row["error"]))
        rows.append(row)
        if progress is not None:
            progress(1)
    return rows


class ImageActor:
    """One actor of the pool: the generator and a Stamper, opened once; each call samples, stamps and writes a
    batch of seeds. Errors raised on purpose while opening or stamping come back as rows (see ``_raise``)."""

    def __init__(self, *, request: ImageRequest, folder: str, prefix: str, home_root: str, ledger: str,
                 fingerprint: str):
        self.request = request
        self.folder = Path(folder)
        self.prefix = prefix
        self.failure: SynthGuardError | None = None
        try:
            self._open(Home(Path(home_root)), ledger, fingerprint)
        except SynthGuardError as exc:
            self.failure = exc

    def _open(self, home: Home, ledger: str, fingerprint: str) -> None:
        where = _this_node()
        if not self.folder.is_dir():
            raise InputError(f"the output folder {self.folder} does not exist on the Ray node {where}: it must be "
                             "on a filesystem every node mounts at the same path")
        request = self.request
        # One CPU per actor: torch gets one thread unless the request says otherwise.
        self.generator = load_generator(request.backend, request.model, output_size=request.size,
                                        num_threads=request.threads or 1, **request.diffusion_options(),
                                        conditional=request.label is not None)
        identity = IdentityStore(home).load()
        if cert_fingerprint(identity.certificate) != fingerprint:
            raise IdentityError(f"the signing identity in {home.keys_dir} on the Ray node {where} is not the one "
                                "the run signs as: every node must see the same SynthGuard home")
        # Open for the actor's life: Ray ends the actor's process at the end of the run, and with it the ledger's
        # connection (every record is already committed).
        self.stamper = Stamper.from_home(home, identity=identity, image_watermark=request.watermark)
        found = _ledger_name(self.stamper.session.ledger.location)
        if found != ledger:
            self.stamper.close()
            raise LedgerError(f"the Ray node {where} opens the ledger {found}, not the run's {ledger}: set "
                              "SYNTHGUARD_DATABASE_URL alike on every node")

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        seeds = [int(s) for s in batch["data"]]
        try:
            if self.failure is not None:
                raise self.failure
            return self._stamp(seeds)
        except SynthGuardError as exc:
            error = json.dumps({"type": type(exc).__name__, "message": str(exc),
                                "hint": exc.hint.value if exc.hint is not None else None})
            return {"seed": seeds, "file": [""] * len(seeds), "error": [error] * len(seeds),
                    "model_seconds": [0.0] * len(seeds), "device": [""] * len(seeds), "model": [""] * len(seeds),
                    "version": [""] * len(seeds), "config_hash": [""] * len(seeds)}

    def _stamp(self, seeds: list[int]) -> dict[str, list]:
        request, files, model_seconds, results = self.request, [], [], []
        for run in _runs(seeds):
            start = time.perf_counter()
            labelled = {"labels": request.label} if request.label is not None else {}
            result = self.generator.generate(len(run), run[0], batch_size=request.batch_size,
                                             device=request.device, **labelled)
            seconds = time.perf_counter() - start
            check_markable(result.images, self.stamper)
            paths = [output_path(self.folder, self.prefix, seed, request.fmt.suffix) for seed in run]
            files += self.stamper.stamp_many(result.images, paths, sample_specs(result, paths, run),
                                             mime=request.fmt.mime, overwrite=request.overwrite, workers=1)
            model_seconds += [seconds / len(run)] * len(run)
            results += [result] * len(run)
        return {"seed": seeds, "file": [json.dumps({**f.to_dict(), "seconds": f.seconds}) for f in files],
                "error": [""] * len(seeds), "model_seconds": model_seconds,
                "device": [str(r.parameters.get("device", request.device)) for r in results],
                "model": [r.model for r in results], "version": [r.version for r in results],
                "config_hash": [r.config_hash for r in results]}


def _runs(seeds: list[int]) -> list[list[int]]:
    """``seeds`` cut into runs of consecutive seeds (one ``generate`` call each)."""
    runs: list[list[int]] = []
    for seed in seeds:
        if runs and runs[-1][-1] + 1 == seed:
            runs[-1].append(seed)
        else:
            runs.append([seed])
    return runs


def _raise(error: dict) -> None:
    """Raise a worker's error again as its own SynthGuardError type (with its hint)."""
    cls = _ERRORS.get(error.get("type"), SynthGuardError)
    hint = error.get("hint")
    raise cls(error.get("message", "a Ray worker failed"), hint=Hint(hint) if hint else None)


def _stamp_result(data: dict, path: Path) -> StampResult:
    """A worker's ``StampResult`` dict as the object, its output under the name the request gave."""
    signed = {f.name: data[f.name] for f in fields(SignResult)}
    signed["sidecar"] = Path(signed["sidecar"]) if signed["sidecar"] else None
    mark = data["watermark"]
    return StampResult(replace(SignResult(**signed), output=path),
                       bytes.fromhex(mark["payload"]) if mark["payload"] else None, mark["algorithm"],
                       mark["skipped"], data.get("seconds", {}))


def _pool_size(actors: int | None, cluster: RayCluster, n: int) -> int:
    """The actor count: as asked (at most one per image), else one per CPU of the cluster; refused when the
    cluster has fewer CPUs than actors (a fixed pool would wait for them forever)."""
    cpus = int(cluster.cpus)
    if cpus < 1:
        raise InputError(f"the Ray cluster at {cluster.address} has no CPU to run an actor on")
    if actors is not None and actors > cpus:
        raise InputError(f"{actors} actors of one CPU each asked for, but the Ray cluster at {cluster.address} has "
                         f"{cpus} CPU(s)")
    return max(1, min(actors or cpus, n))


def _ledger_name(location: DatabaseURL) -> str:
    """What the driver and each worker compare to know they write one ledger: a SQLite file's absolute path, or
    the database URL with its password masked."""
    return str(location.path.resolve()) if location.path is not None else location.masked()


def _need_shared_ledger(ledger: DatabaseURL, why: str) -> None:
    if not ledger.shared:
        raise InputError(f"{why}, but the ledger is the SQLite file {ledger.masked()}: workers on other machines "
                         "would each write a ledger of their own. Set SYNTHGUARD_DATABASE_URL to a PostgreSQL "
                         "ledger (postgresql://user@host/database) that every node reaches")


def _local_addresses() -> set[str]:
    """The names and addresses of this machine."""
    names = {"localhost", socket.gethostname(), socket.getfqdn()}
    with contextlib.suppress(OSError):
        names.update(socket.gethostbyname_ex(socket.gethostname())[2])
    return names


def _names_another_machine(address: str) -> bool:
    """Whether a Ray address names a host other than this machine ("auto" is a cluster started here)."""
    if address.strip() == "auto":
        return False
    host = address.strip().removeprefix("ray://").rsplit(":", 1)[0].strip("[]")
    return not _loopback(host) and host not in _local_addresses()


def _remote_nodes() -> list[str]:
    """The addresses of the alive nodes of the connected cluster that are not this machine."""
    ray = import_ray()
    local = _local_addresses() | {ray.util.get_node_ip_address()}
    found = sorted({node["NodeManagerAddress"] for node in ray.nodes() if node.get("Alive")})
    return [a for a in found if a not in local and not _loopback(a)]


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _this_node() -> str:
    return socket.gethostname()


def _home_identity(home: Home, identity: IdentitySource):
    """The identity the run signs as, which must be the home's (the workers load it from there): the home's own,
    made on first use when none is given."""
    store = IdentityStore(home)
    if callable(identity):
        identity = identity()
    elif identity is None:
        identity, _ = store.ensure()
    if not store.exists() or store.load().chain_pem != identity.chain_pem:
        raise IdentityError(f"the Ray engine signs on every worker with the identity in {home.keys_dir}, and the "
                            "identity given is not that one: import it into that home first",
                            hint=Hint.NEEDS_IDENTITY)
    return identity
