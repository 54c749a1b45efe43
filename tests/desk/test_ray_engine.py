"""The Ray Data engine of `verify`: byte-identical JSONL to the local engine on a mixed folder, resume, a file that
fails inside Ray, a cluster that cannot be reached, the actor plan, the CLI, and (slow) a 2-node local cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers.files import INTEROP, REPO
from helpers.net import free_port
from helpers.ray import require_ray
from PIL import Image

from synthguard.cli import main
from synthguard.desk.batch import VerifySettings, verify
from synthguard.desk.ray_engine import Accelerator, detector_uses_device, plan_actors
from synthguard.errors import InputError
from synthguard.policy import load_policy


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def mixed(home, tmp_path, png):
    """Signed, watermarked, re-encoded and foreign images, a text, a corrupt and an empty file, a dangling link, a
    FIFO and a name that is not UTF-8."""
    box = tmp_path / "mixed"
    (box / "sub").mkdir(parents=True)
    assert run("sign", png, "-o", box / "signed-ai.png", "--ai").exit_code == 0
    assert run("sign", png, "-o", box / "sub" / "capture.png", "--source-type", "digitalCapture",
               "--no-watermark").exit_code == 0
    Image.open(box / "signed-ai.png").convert("RGB").save(box / "stripped.jpg", quality=85)
    (box / "corrupt.png").write_bytes((box / "signed-ai.png").read_bytes()[:400])
    (box / "notes.txt").write_text("A reporter's note, written by a person.\n")
    (box / "interop.jpg").write_bytes((INTEROP / "C.jpg").read_bytes())
    (box / "empty.png").write_bytes(b"")
    (box / "dangling.png").symlink_to(box / "nowhere.png")
    os.mkfifo(box / "pipe.png")
    (box / os.fsdecode(b"caf\xe9.png")).write_bytes((box / "sub" / "capture.png").read_bytes())
    return box


def settings(home):
    return VerifySettings(policy=load_policy(REPO / "policies" / "newsroom-default.yaml"), home=home.root)


def test_ray_lines_are_byte_identical_to_two_local_workers(home, mixed, tmp_path, ray_local):
    local, on_ray = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    verify([mixed], settings(home), jsonl=local, workers=2, audit=False)
    result = verify([mixed], settings(home), jsonl=on_ray, engine="ray", audit=False)
    assert on_ray.read_text().splitlines() == local.read_text().splitlines()
    assert on_ray.read_bytes() == local.read_bytes() and local.read_bytes().count(b"\n") == 10
    by = {Path(json.loads(t)["file"]).name: json.loads(t) for t in on_ray.read_text().splitlines()}
    assert "symbolic link to nothing" in by["dangling.png"]["error"] and "FIFO" in by["pipe.png"]["error"]
    assert by["empty.png"]["error"] and by["corrupt.png"]["error"] and by["signed-ai.png"]["error"] is None
    assert result.engine == "ray" and result.ray.cluster.nodes == 1 and result.ray.cluster.cpus == 2
    assert result.ray.plan.pool == 2 and result.ray.plan.accelerator is Accelerator.CPU
    assert result.worker_peak_mb and all(mb > 50 for mb in result.worker_peak_mb)
    notes = "\n".join(result.resources())
    assert "engine: ray" in notes and "1 node(s), 2 CPU(s), 0 GPU(s)" in notes and "peak memory per actor" in notes
    summary = result.summary(settings(home).policy)
    assert summary["engine"] == "ray" and summary["ray"]["actors"]["accelerator"] == "cpu"


def test_resume_on_ray_sends_only_the_files_left(home, mixed, tmp_path, ray_local):
    full = tmp_path / "full.jsonl"
    verify([mixed], settings(home), jsonl=full, audit=False)
    lines = full.read_bytes().splitlines(keepends=True)
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(b"".join(lines[:7]) + lines[7][:30])
    result = verify([mixed], settings(home), jsonl=cut, resume=True, engine="ray", workers=1, audit=False)
    assert result.resumed == 7 and cut.read_bytes() == full.read_bytes() and result.ray.plan.pool == 1
    again = verify([mixed], settings(home), jsonl=cut, resume=True, engine="ray", address="127.0.0.1:1",
                   audit=False)
    assert again.resumed == 10 and again.ray is None  # nothing left: no cluster is joined, not even a bad one


def test_a_file_that_fails_inside_ray_becomes_its_error_line(home, mixed, tmp_path, ray_local, monkeypatch):
    import synthguard.desk.ray_engine as engine

    real = engine.precheck

    def vanishing(path, policy):  # the file goes away after the driver's check, before Ray reads it
        line = real(path, policy)
        if path.name == "notes.txt":
            path.unlink()
        return line

    monkeypatch.setattr(engine, "precheck", vanishing)
    result = verify([mixed], settings(home), jsonl=tmp_path / "r.jsonl", engine="ray", audit=False)
    by = {Path(line.file).name: line for line in result.lines}
    assert len(result.lines) == 10 and by["notes.txt"].error.endswith("notes.txt: no such file")
    assert by["signed-ai.png"].error is None and result.ray.retried >= 1


def test_an_unreachable_cluster_is_a_clear_error_before_any_output(home, mixed, tmp_path, ray_local):
    out = tmp_path / "never.jsonl"
    port = free_port()
    start = time.monotonic()
    with pytest.raises(InputError, match=f"cannot reach the Ray cluster at 127.0.0.1:{port}"):
        verify([mixed], settings(home), jsonl=out, engine="ray", address=f"127.0.0.1:{port}")
    assert time.monotonic() - start < 30 and not out.exists()


def test_cli_verify_engine_ray(home, mixed, tmp_path, ray_local):
    out = tmp_path / "cli.jsonl"
    result = run("verify", mixed, "--engine", "ray", "--workers", "2", "--jsonl", out, "--no-audit", "--json")
    assert result.exit_code == 2  # errors are listed, the run completes
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["engine"] == "ray" and summary["files"] == 10 and summary["ray"]["actors"]["pool"] == 2
    text = run("verify", mixed, "--engine", "ray", "--jsonl", tmp_path / "t.jsonl", "--no-audit")
    assert "engine: ray" in text.stderr and "actor pool: 2 actor(s) on CPU" in text.stderr
    bad = run("verify", mixed, "--address", "auto")
    assert bad.exit_code == 2 and "--engine ray" in bad.stderr


@pytest.mark.parametrize(("workers", "cpus", "gpus", "classifier", "device", "expect"), [
    (None, 4, 0, True, True, (4, Accelerator.CPU, "no GPU")),
    (8, 4, 0, True, True, (4, Accelerator.CPU, "no GPU")),
    (2, 16, 2, False, True, (2, Accelerator.CPU, "does not run the classifier")),
    (4, 16, 2, True, False, (4, Accelerator.CPU, "CPU only")),
    (4, 16, 2, True, True, (2, Accelerator.GPU, "2 GPU(s)")),
    (None, 0.5, 0, True, True, (1, Accelerator.CPU, "no GPU")),
])
def test_actor_plan(workers, cpus, gpus, classifier, device, expect):
    plan = plan_actors(workers, cpus, gpus, classifier=classifier, device_supported=device)
    assert (plan.pool, plan.accelerator) == expect[:2] and expect[2] in plan.reason
    assert plan.num_gpus == (1 if plan.accelerator is Accelerator.GPU else 0)


def test_only_a_discriminator_detector_can_use_a_gpu(tmp_path):
    settings = VerifySettings(policy=load_policy(None), home=tmp_path)
    assert detector_uses_device(settings)  # the built-in one
    (tmp_path / "probe").mkdir()
    (tmp_path / "probe" / "backbone.json").write_text("{}")
    assert not detector_uses_device(replace(settings, detector=tmp_path / "probe"))
    (tmp_path / "patch-detector").mkdir()
    assert detector_uses_device(replace(settings, detector=tmp_path / "patch-detector"))


TWO_NODES = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from synthguard.desk.batch import VerifySettings, verify
    from synthguard.policy import load_policy
    box, home, address, out = map(Path, sys.argv[1:5])
    s = VerifySettings(policy=load_policy(Path(sys.argv[5])), home=home)
    result = verify([box], s, jsonl=out, engine="ray", address=str(address), audit=False)
    print(json.dumps(result.summary(s.policy)))
""")


@pytest.mark.slow
def test_two_node_local_cluster(home, mixed, tmp_path):
    """A head and a second node on loopback (`ray start --block`, so stopping them stops exactly their processes,
    never the session's instance), verified from another process, byte-identical to the local engine."""
    require_ray()
    import shutil
    import tempfile

    ray_bin = Path(sys.executable).with_name("ray")
    port = free_port()
    temp = tempfile.mkdtemp(prefix="sgray-", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    # A throw-away loopback cluster: no auth token to share between its processes.
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    head = subprocess.Popen([ray_bin, "start", "--head", "--block", f"--port={port}", "--num-cpus=1",
                             "--node-ip-address=127.0.0.1", "--include-dashboard=false",
                             f"--temp-dir={temp}", "--disable-usage-stats"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    nodes = [head]
    try:
        _wait_for_port(port, head)
        worker = subprocess.Popen([ray_bin, "start", "--block", f"--address=127.0.0.1:{port}", "--num-cpus=1",
                                   "--node-ip-address=127.0.0.1", "--disable-usage-stats"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        nodes.append(worker)
        local = tmp_path / "local.jsonl"
        verify([mixed], settings(home), jsonl=local, workers=2, audit=False)
        on_ray = tmp_path / "two-nodes.jsonl"
        policy = REPO / "policies" / "newsroom-default.yaml"
        deadline = time.monotonic() + 60
        while True:  # the second node joins a few seconds after the head answers
            done = subprocess.run([sys.executable, "-c", TWO_NODES, mixed, home.root, f"127.0.0.1:{port}", on_ray,
                                   policy], capture_output=True, text=True, env=env, timeout=300)
            assert done.returncode == 0, done.stderr[-3000:]
            summary = json.loads(done.stdout.strip().splitlines()[-1])
            if summary["ray"]["cluster"]["nodes"] == 2 or time.monotonic() > deadline:
                break
            on_ray.unlink()
            time.sleep(2)
        assert summary["ray"]["cluster"]["nodes"] == 2 and summary["ray"]["cluster"]["cpus"] == 2
        assert not summary["ray"]["cluster"]["started_here"] and summary["ray"]["actors"]["pool"] == 2
        assert on_ray.read_bytes() == local.read_bytes()
    finally:
        for node in reversed(nodes):
            node.terminate()
        for node in reversed(nodes):
            try:
                node.wait(timeout=60)
            except subprocess.TimeoutExpired:
                node.kill()
        shutil.rmtree(temp, ignore_errors=True)


def _wait_for_port(port: int, process: subprocess.Popen) -> None:
    import socket

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "ray start --head exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"the Ray head did not listen on {port}")
