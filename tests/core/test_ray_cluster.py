"""ray_session: reusing the session's instance, the workers' environment, clear errors for bad or unreachable
addresses, no Ray import at module import, and the Ray-missing message."""

from __future__ import annotations

import builtins
import subprocess
import sys
import time

import pytest
from helpers.net import free_port

from synthguard.core import ray_cluster
from synthguard.core.ray_cluster import RayCluster, configure_data_context, ray_session, worker_env
from synthguard.errors import Hint, InputError


def test_module_import_does_not_import_ray():
    code = "import sys, synthguard.core.ray_cluster, synthguard.desk.batch; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_worker_env_forwards_what_is_set(monkeypatch):
    monkeypatch.setenv("SYNTHGUARD_MAX_PIXELS", "1000000")
    monkeypatch.delenv("SYNTHGUARD_RESOLVER_TOKEN", raising=False)
    env = worker_env({"EXTRA": "1"})
    assert env["SYNTHGUARD_MAX_PIXELS"] == "1000000" and env["OMP_NUM_THREADS"] == "1" and env["EXTRA"] == "1"
    assert env["SYNTHGUARD_HOME"]  # the conftest's per-test home
    assert "SYNTHGUARD_RESOLVER_TOKEN" not in env and "SYNTHGUARD_DATABASE_URL" not in env
    assert worker_env({"OMP_NUM_THREADS": "4"})["OMP_NUM_THREADS"] == "4"
    with pytest.raises(InputError, match="must be strings"):
        worker_env({"N": 1})


def test_ray_missing_names_the_extra(monkeypatch):
    real = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError(f"No module named {name!r}")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(InputError, match=r"the Ray engine needs Ray: pip install 'synthguard\[ray\]'") as exc, \
            ray_session():
        pass
    assert exc.value.hint is Hint.INSTALL_EXTRA


@pytest.mark.parametrize("address", ["", "  ", "no-port", "host:abc", ":6379"])
def test_malformed_addresses(address):
    with pytest.raises(InputError, match="give 'auto', 'host:port'"), ray_session(address):
        pass


@pytest.mark.parametrize("form", ["127.0.0.1:{port}", "ray://127.0.0.1:{port}"])
def test_unreachable_cluster_fails_fast_naming_the_address(form):
    address = form.format(port=free_port())
    start = time.monotonic()
    with pytest.raises(InputError, match=f"cannot reach the Ray cluster at {address}"), ray_session(address):
        pass
    assert time.monotonic() - start < ray_cluster.REACH_TIMEOUT_S + 5


def test_bad_num_cpus():
    with pytest.raises(InputError, match="num_cpus"), ray_session(num_cpus=0):
        pass


def test_session_instance_is_reused_and_left_running(ray_local, monkeypatch):
    monkeypatch.setenv("SYNTHGUARD_MAX_PIXELS", "123456")
    with ray_session(num_cpus=7, env={"SG_TEST": "yes"}) as cluster:
        assert isinstance(cluster, RayCluster) and not cluster.started_here
        assert (cluster.nodes, cluster.cpus, cluster.gpus) == (1, 2.0, 0.0)  # the fixture's, not num_cpus=7
        assert ":" in cluster.address
        assert cluster.describe() == (f"a running Ray cluster at {cluster.address}: 1 node(s), 2 CPU(s), 0 GPU(s)",)
        assert cluster.to_dict()["env_vars"] == sorted(dict(cluster.env_vars))

        @ray_local.remote(runtime_env=cluster.runtime_env())
        def seen():
            import os

            return {k: os.environ.get(k) for k in ("SG_TEST", "SYNTHGUARD_MAX_PIXELS", "OMP_NUM_THREADS")}

        assert ray_local.get(seen.remote()) == {"SG_TEST": "yes", "SYNTHGUARD_MAX_PIXELS": "123456",
                                                "OMP_NUM_THREADS": "1"}
    assert ray_local.is_initialized()


def test_data_context_is_ordered_and_quiet(ray_local):
    import ray.data

    ctx = configure_data_context(ray.data.DataContext())
    assert ctx.execution_options.preserve_order and not ctx.enable_progress_bars
    assert not ctx.print_on_execution_start


def test_another_address_than_the_session_s_is_refused(ray_local):
    import socket

    with ray_session() as cluster:
        port = cluster.address.rpartition(":")[2]
        with ray_session(f"127.0.0.1:{port}") as same:
            assert same.address == cluster.address
    gone = free_port()
    with pytest.raises(InputError, match=f"cannot reach the Ray cluster at 127.0.0.1:{gone}"), \
            ray_session(f"127.0.0.1:{gone}"):
        pass
    with socket.socket() as other:  # something answers there, but it is not this process's cluster
        other.bind(("127.0.0.1", 0))
        other.listen()
        address = f"127.0.0.1:{other.getsockname()[1]}"
        with pytest.raises(InputError, match=f"already connected to the Ray cluster at .*the one at {address}"), \
                ray_session(address):
            pass
