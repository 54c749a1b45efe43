"""A Ray session for SynthGuard's distributed engines: connect to a cluster, or start a local instance, and hand the
workers the environment they need.

``ray_session(address)`` connects to a running cluster ("auto", "host:port" or "ray://host:port"), or with no
address starts a quiet local instance (no dashboard, warnings only) with ``num_cpus`` CPUs. A session already
initialised in this process is reused as it is and left running; only what the context started is shut down when
it ends. Workers get the SynthGuard variables that matter (home, database URL, pixel budget, resolver token, when
set), one OpenMP thread, and any ``env`` given, as the runtime environment's ``env_vars``.

Ray is optional (the ``ray`` extra) and is imported inside the functions that use it, never at module import.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from synthguard.errors import Hint, InputError, one_line

# The variables a worker reads that the driver's environment sets (passed on only when set here).
FORWARDED_VARIABLES = ("SYNTHGUARD_HOME", "SYNTHGUARD_DATABASE_URL", "SYNTHGUARD_MAX_PIXELS",
                       "SYNTHGUARD_RESOLVER_TOKEN")
RAY_MISSING = "the Ray engine needs Ray: pip install 'synthguard[ray]'"
# Seconds to wait for a cluster's port to accept a connection before Ray's own (minutes-long) retries.
REACH_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class RayCluster:
    """The cluster a session runs on: its address, alive nodes and their total CPUs and GPUs, whether this session
    started it (then it ends with the session), and the environment variables the workers get."""

    address: str
    nodes: int
    cpus: float
    gpus: float
    started_here: bool
    env_vars: tuple[tuple[str, str], ...] = ()

    def runtime_env(self) -> dict[str, dict[str, str]]:
        """The runtime environment to give tasks and actors (``runtime_env=``): the workers' variables. Needed on
        a reused session, whose job-level environment this session did not set."""
        return {"env_vars": dict(self.env_vars)}

    def to_dict(self) -> dict:
        """JSON-ready (the variables' names only: a database URL or token may hold a secret)."""
        return {"address": self.address, "nodes": self.nodes, "cpus": self.cpus, "gpus": self.gpus,
                "started_here": self.started_here, "env_vars": sorted(name for name, _ in self.env_vars)}

    def describe(self) -> tuple[str, ...]:
        how = "a local Ray instance started for this run" if self.started_here else "a running Ray cluster"
        return (f"{how} at {self.address}: {self.nodes} node(s), {_count(self.cpus)} CPU(s), "
                f"{_count(self.gpus)} GPU(s)",)


def _count(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def worker_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables Ray workers get: the SynthGuard ones set in this process, one OpenMP thread, then ``env``
    (which wins)."""
    out = {name: os.environ[name] for name in FORWARDED_VARIABLES if os.environ.get(name)}
    out["OMP_NUM_THREADS"] = "1"
    for name, value in (env or {}).items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise InputError(f"worker environment variable {name!r}: names and values must be strings")
        out[name] = value
    return out


def import_ray():
    """The ``ray`` module; InputError naming the extra when it is not installed."""
    try:
        import ray  # noqa: PLC0415 (optional: the ray extra)
    except ImportError:
        raise InputError(RAY_MISSING, hint=Hint.INSTALL_EXTRA) from None
    return ray


def _validate(address: str | None, num_cpus: int | None) -> None:
    if address is not None and (not isinstance(address, str) or not address.strip()):
        raise InputError(f"Ray address {address!r}: give 'auto', 'host:port' or 'ray://host:port'")
    if num_cpus is not None and (not isinstance(num_cpus, int) or isinstance(num_cpus, bool) or num_cpus < 1):
        raise InputError(f"num_cpus must be a whole number >= 1, not {num_cpus!r}")


def _connect(ray, address: str | None, num_cpus: int | None, env_vars: dict[str, str]) -> None:
    quiet = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": False,
             "runtime_env": {"env_vars": env_vars}}
    if address is None:
        ray.init(num_cpus=num_cpus or os.cpu_count() or 1, **quiet)
        return
    if address.startswith("ray://"):
        quiet.pop("include_dashboard")  # a Ray client connection takes no dashboard option
    _check_reachable(address)
    try:
        ray.init(address=address, **quiet)
    except (ConnectionError, TimeoutError, RuntimeError, ValueError, OSError) as exc:
        raise InputError(f"cannot reach the Ray cluster at {address}: {one_line(exc)}") from None
    except Exception as exc:  # Ray raises its own types (e.g. a gRPC error through the client)
        if type(exc).__module__.split(".")[0] not in ("ray", "grpc"):
            raise
        raise InputError(f"cannot reach the Ray cluster at {address}: {one_line(exc)}") from None


def _host_port(address: str) -> tuple[str, int] | None:
    """The host and port ``address`` names ("auto": the cluster Ray finds on this machine); None when it names no
    port to check. InputError when "auto" finds none."""
    if address == "auto":
        try:
            from ray._private.services import canonicalize_bootstrap_address  # noqa: PLC0415

            found = canonicalize_bootstrap_address("auto")
        except (ImportError, AttributeError):  # another Ray's internals: Ray itself reports what it finds
            return None
        except (ConnectionError, ValueError) as exc:
            raise InputError(f"cannot reach the Ray cluster at auto: {one_line(exc)}") from None
        if not found:
            raise InputError("cannot reach the Ray cluster at auto: no running Ray instance was found on this "
                             "machine")
        address = found
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise InputError(f"Ray address {address!r}: give 'auto', 'host:port' or 'ray://host:port'")
    return host.strip("[]"), int(port)


def _check_reachable(address: str) -> None:
    """InputError at once when nothing accepts connections at the address's port (Ray would retry for minutes)."""
    target = _host_port(address)
    if target is None:
        return
    try:
        socket.create_connection(target, timeout=REACH_TIMEOUT_S).close()
    except OSError as exc:
        raise InputError(f"cannot reach the Ray cluster at {address}: nothing answers at "
                         f"{target[0]}:{target[1]} ({exc.strerror or exc})") from None


def _check_same_cluster(address: str, current: str) -> None:
    """InputError when ``address`` (host:port) names another port than the cluster this process is connected to
    (one process holds one Ray session). A Ray client address is not compared: its port is the client server's."""
    if address.startswith("ray://"):
        return
    wanted, have = address.rpartition(":")[2], current.rpartition(":")[2]
    if have.isdigit() and wanted != have:
        raise InputError(f"this process is already connected to the Ray cluster at {current}; it cannot also join "
                         f"the one at {address}")


def describe_cluster(*, started_here: bool, address: str | None = None,
                     env_vars: Mapping[str, str] | None = None) -> RayCluster:
    """The cluster of the Ray session initialised in this process (alive nodes, total CPUs and GPUs)."""
    ray = import_ray()
    if not ray.is_initialized():
        raise InputError("no Ray session is initialised in this process")
    resources = ray.cluster_resources()
    nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
    try:
        found = ray.get_runtime_context().gcs_address
    except (AttributeError, RuntimeError):
        found = None
    return RayCluster(address=found or address or "local", nodes=nodes, cpus=float(resources.get("CPU", 0.0)),
                      gpus=float(resources.get("GPU", 0.0)), started_here=started_here,
                      env_vars=tuple(sorted((env_vars or {}).items())))


@contextmanager
def ray_session(address: str | None = None, *, num_cpus: int | None = None,
                env: dict[str, str] | None = None) -> Iterator[RayCluster]:
    """Run the body on a Ray cluster: ``address`` ("auto", "host:port", "ray://...") connects to a running one;
    None starts a local instance with ``num_cpus`` CPUs (default: this machine's), no dashboard, quiet logging. A
    session already initialised in this process is reused (``address`` and ``num_cpus`` are then not applied) and
    stays up afterwards; a session started or connected here is shut down when the body ends.

    Workers get ``env`` plus the SynthGuard variables set here (``worker_env``): as the job's runtime environment
    when this context connects, and through ``RayCluster.runtime_env()`` for the tasks of a reused session.
    InputError when Ray is not installed, the cluster cannot be reached, or this process is connected to another
    cluster than the ``address`` given."""
    _validate(address, num_cpus)
    ray = import_ray()
    env_vars = worker_env(env)
    if ray.is_initialized():
        cluster = describe_cluster(started_here=False, address=address, env_vars=env_vars)
        if address is not None and address != "auto":
            _check_reachable(address)
            _check_same_cluster(address, cluster.address)
        yield cluster
        return
    _connect(ray, address, num_cpus, env_vars)
    try:
        yield describe_cluster(started_here=address is None, address=address, env_vars=env_vars)
    finally:
        ray.shutdown()


def configure_data_context(ctx=None):
    """Set Ray Data's context for SynthGuard's pipelines: rows come out in input order, no progress bars, no
    execution banners or statistics in the log. Returns the context (``ctx``, default: the current one)."""
    import_ray()
    import ray.data  # noqa: PLC0415 (optional: the ray extra)

    ctx = ctx if ctx is not None else ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = False
    ctx.enable_operator_progress_bars = False
    ctx.print_on_execution_start = False
    ctx.enable_auto_log_stats = False
    ctx.verbose_stats_logs = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    return ctx
