"""Batch verification under bad entries and races: unreadable files, names that are not UTF-8, FIFOs and broken
links each get their own error line; a verdict is about the bytes that were hashed; a resume never mixes runs; two
runs never write one JSONL at once."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers.files import REPO
from PIL import Image

import synthguard.desk.batch as batch
from synthguard.cli import main
from synthguard.desk.audit import AuditLog
from synthguard.desk.batch import VerifySettings, shown, verify
from synthguard.errors import InputError
from synthguard.policy import DeskAction, load_policy

LATIN1 = b"caf\xe9.png"


def settings(home, name="newsroom-default.yaml", **kw):
    return VerifySettings(policy=load_policy(REPO / "policies" / name), home=home.root, **kw)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def no_hang():
    """Fail instead of hanging (a FIFO opened for reading would block forever)."""
    def expired(*_):
        raise TimeoutError("verify hung")
    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(240)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def pair(tmp_path, png) -> Path:
    """A folder of two identical photos, a.png and b.png."""
    box = tmp_path / "in"
    box.mkdir()
    (box / "a.png").write_bytes(png.read_bytes())
    (box / "b.png").write_bytes(png.read_bytes())
    return box


@pytest.fixture
def bad_box(tmp_path, png):
    box = tmp_path / "box"
    box.mkdir()
    (box / "good.png").write_bytes(png.read_bytes())
    locked = box / "locked.png"
    locked.write_bytes(png.read_bytes())
    locked.chmod(0)
    fd = os.open(os.fsencode(box) + b"/" + LATIN1, os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, png.read_bytes())
    os.close(fd)
    os.mkfifo(box / "pipe.png")
    (box / "dangling.png").symlink_to(box / "nowhere.png")
    (box / "loop-a.png").symlink_to(box / "loop-b.png")
    (box / "loop-b.png").symlink_to(box / "loop-a.png")
    (tmp_path / "elsewhere").mkdir()
    (box / "linked-folder").symlink_to(tmp_path / "elsewhere")
    return box


@pytest.fixture
def unreadable(monkeypatch):
    """locked.png cannot be opened, also for root (whom chmod 000 does not stop)."""
    real = os.open

    def fake(path, *args, **kwargs):
        if os.fsencode(path).endswith(b"locked.png"):
            raise PermissionError(13, "Permission denied", path)
        return real(path, *args, **kwargs)
    monkeypatch.setattr(os, "open", fake)


EXPECTED_ERRORS = {"dangling.png": "a symbolic link to nothing (dangling)",
                   "linked-folder": "a symbolic link to a folder", "locked.png": "not readable (permission denied)",
                   "loop-a.png": "a symbolic link loop", "loop-b.png": "a symbolic link loop",
                   "pipe.png": "not a regular file (a FIFO)"}


def test_each_bad_entry_is_its_own_error_line(home, bad_box, tmp_path, unreadable, no_hang):
    out = tmp_path / "v.jsonl"
    result = verify([bad_box], settings(home), jsonl=out)
    raw = out.read_bytes()
    raw.decode("ascii")  # escaped names: the JSONL is plain text whatever the file names
    by = {Path(line.file).name: line for line in result.lines}
    assert set(by) == {"good.png", "caf\\xe9.png", *EXPECTED_ERRORS}  # nothing skipped
    for name, message in EXPECTED_ERRORS.items():
        assert by[name].error.startswith(str(bad_box / name) + ": " + message), by[name].error
        assert by[name].action is DeskAction.REJECT and by[name].verdict is None
    for name in ("good.png", "caf\\xe9.png"):  # the others are verified
        assert by[name].error is None and by[name].verdict is not None
        assert by[name].sha256 == hashlib.sha256((bad_box / "good.png").read_bytes()).hexdigest()
    assert result.errors == len(EXPECTED_ERRORS)
    assert '"file": "' + str(bad_box) + '/caf\\\\xe9.png"' in raw.decode()
    with AuditLog(home.audit_path) as log:  # the Latin-1 name is recorded, escaped
        assert sorted(Path(e.file).name for e in log.entries()) == sorted(by)
    # a resume gets past them all and writes the same file
    lines = raw.splitlines(keepends=True)
    out.write_bytes(b"".join(lines[:3]) + lines[3][:10])
    resumed = verify([bad_box], settings(home), jsonl=out, resume=True, audit=False)
    assert resumed.resumed == 3 and out.read_bytes() == raw


def test_cli_exit_status_report_and_workers(home, bad_box, tmp_path, no_hang):
    one, two, report = tmp_path / "one.jsonl", tmp_path / "two.jsonl", tmp_path / "r.html"
    first = run("verify", bad_box, "--jsonl", one, "--report", report, "--no-audit")
    assert first.exit_code == 2, first.output
    page = report.read_text(encoding="utf-8")
    assert "caf\\xe9.png" in page and "a symbolic link loop" in page and "(a FIFO)" in page
    assert run("verify", bad_box, "--jsonl", two, "--workers", "2", "--no-audit").exit_code == 2
    assert one.read_bytes() == two.read_bytes() and one.read_bytes().count(b"\n") == 2 + len(EXPECTED_ERRORS)


def test_the_verdict_is_about_the_hashed_bytes(home, tmp_path, png, monkeypatch):
    target = tmp_path / "swapped.png"
    original = png.read_bytes()
    target.write_bytes(original)
    real = batch.inspect_file

    def swap_then_inspect(path, context, **kwargs):
        target.write_bytes(b"A text that replaced the picture while it was being verified.\n")
        return real(path, context, **kwargs)
    monkeypatch.setattr(batch, "inspect_file", swap_then_inspect)
    line = verify([target], settings(home), audit=False).lines[0]
    assert line.sha256 == hashlib.sha256(original).hexdigest()
    assert line.mime == "image/png" and line.error is None and line.file == str(target)


def test_resume_under_another_policy_detector_or_version_is_refused(home, tmp_path, png, monkeypatch):
    box = tmp_path / "in"
    box.mkdir()
    (box / "a.png").write_bytes(png.read_bytes())
    out = tmp_path / "v.jsonl"
    verify([box], settings(home), jsonl=out, audit=False)
    with pytest.raises(InputError, match=r"line 1 was written with another policy sha256 [0-9a-f]{64} \(this run"):
        verify([box], settings(home, "newsroom-strict.yaml"), jsonl=out, resume=True)
    with pytest.raises(InputError, match=r"another detector builtin \(this run: .*in\)"):
        verify([box], settings(home, detector=box), jsonl=out, resume=True)
    monkeypatch.setattr(batch, "__version__", "99.0")
    with pytest.raises(InputError, match=r"another tool version .* \(this run: 99.0\)"):
        verify([box], settings(home), jsonl=out, resume=True)
    monkeypatch.undo()
    result = run("verify", box, "--jsonl", out, "--resume", "--policy", REPO / "policies" / "newsroom-strict.yaml")
    assert result.exit_code == 2 and "policy sha256" in result.output and "Traceback" not in result.output
    # a line of an older format, without the stamp, is not taken as this run's either
    data = json.loads(out.read_text())
    for key in ("policy_sha256", "detector", "tool_version"):
        del data[key]
    out.write_text(json.dumps(data) + "\n")
    with pytest.raises(InputError, match="another policy sha256 not recorded"):
        verify([box], settings(home), jsonl=out, resume=True)


def test_a_file_changed_since_its_line_is_verified_again(home, tmp_path, pair):
    box = pair
    out = tmp_path / "v.jsonl"
    verify([box], settings(home), jsonl=out, audit=False)
    noise = np.random.default_rng(7).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(box / "a.png")
    result = verify([box], settings(home), jsonl=out, resume=True, audit=False)
    lines = [json.loads(t) for t in out.read_text().splitlines()]
    assert [Path(d["file"]).name for d in lines] == ["b.png", "a.png"] and result.resumed == 1
    assert lines[1]["sha256"] == hashlib.sha256((box / "a.png").read_bytes()).hexdigest()
    assert verify([box], settings(home), jsonl=out, resume=True, audit=False).resumed == 2  # nothing changed now


def test_two_runs_on_one_jsonl_the_second_refuses(home, tmp_path, png):
    box = tmp_path / "in"
    box.mkdir()
    (box / "a.png").write_bytes(png.read_bytes())
    out = tmp_path / "v.jsonl"
    held = []

    def progress(done, total):  # while the run writes, its lock is held
        with open(tmp_path / "v.jsonl.lock", "ab") as other, pytest.raises(BlockingIOError):
            fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.append(done)
    verify([box], settings(home), jsonl=out, audit=False, progress=progress)
    assert held == [1]
    first = out.read_bytes()
    with open(tmp_path / "v.jsonl.lock", "ab") as other:
        fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(InputError, match="being written by another verify run"):
            verify([box], settings(home), jsonl=out, overwrite=True, audit=False)
        assert out.read_bytes() == first  # untouched by the refused run
    assert verify([box], settings(home), jsonl=out, overwrite=True, audit=False).lines  # released after a run


def test_shown_escapes_only_what_is_not_utf8():
    assert shown(Path("a/été.png")) == "a/été.png"
    assert shown(os.fsdecode(b"a/" + LATIN1)) == "a/caf\\xe9.png"


def test_an_unlistable_folder_is_an_error_line_and_no_copy_is_left(home, tmp_path, png, monkeypatch):
    box = tmp_path / "in"
    (box / "secret").mkdir(parents=True)
    (box / "a.png").write_bytes(png.read_bytes())
    real_scandir, real_listdir = os.scandir, os.listdir

    def refuse(real):
        def call(path=".", *args):
            if not isinstance(path, int) and os.fsencode(path).endswith(b"secret"):
                raise PermissionError(13, "Permission denied", path)
            return real(path, *args)
        return call
    monkeypatch.setattr(os, "scandir", refuse(real_scandir))
    monkeypatch.setattr(os, "listdir", refuse(real_listdir))
    monkeypatch.setattr(batch.tempfile, "tempdir", str(tmp_path / "private"))
    (tmp_path / "private").mkdir()
    lines = verify([box], settings(home), audit=False).lines
    assert [Path(line.file).name for line in lines] == ["a.png", "secret"]
    assert lines[1].error == f"{box / 'secret'}: a folder that cannot be listed (Permission denied)"
    assert list((tmp_path / "private").iterdir()) == []  # each private copy is removed after its file


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.add(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_killing_verify_ends_its_workers(home, tmp_path):
    import subprocess
    import sys
    import time

    from synthguard.core.samples import procedural_image

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for i in range(40):
        Image.fromarray(procedural_image(256, 256, seed=i)).save(inbox / f"{i:02d}.png")
    env = os.environ | {"SYNTHGUARD_HOME": str(home.root)}
    run = subprocess.Popen([sys.executable, "-c", "from synthguard.cli import main; main()", "verify", str(inbox),
                            "--workers", "2", "--jsonl", str(tmp_path / "v.jsonl")], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    workers: set[int] = set()
    while time.monotonic() < deadline and len(workers) < 2 and run.poll() is None:
        workers = {c for c in _children(run.pid) if b"multiprocessing" in (Path(f"/proc/{c}/cmdline").read_bytes()
                                                                          if Path(f"/proc/{c}").exists() else b"")}
        time.sleep(0.1)
    assert len(workers) >= 2, "the workers did not start"
    run.send_signal(signal.SIGKILL)
    run.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(Path(f"/proc/{w}").exists() for w in workers):
        time.sleep(0.1)
    alive = [w for w in workers if Path(f"/proc/{w}").exists()
             and Path(f"/proc/{w}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"]
    assert not alive, f"workers outlived a SIGKILLed verify: {alive}"


def test_an_audit_entry_lost_by_a_killed_run_is_recorded_on_resume(home, tmp_path, png, monkeypatch):
    box = tmp_path / "in"
    box.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        (box / name).write_bytes(png.read_bytes())
    out = tmp_path / "v.jsonl"
    real = batch._record
    calls = []

    def killed_after_two_lines(log, line, policy):  # the third line is written, then the run dies before its entry
        calls.append(line.file)
        if len(calls) == 3:
            raise KeyboardInterrupt
        real(log, line, policy)
    monkeypatch.setattr(batch, "_record", killed_after_two_lines)
    with pytest.raises(KeyboardInterrupt):
        verify([box], settings(home), jsonl=out)
    monkeypatch.setattr(batch, "_record", real)
    with AuditLog(home.audit_path) as log:
        assert len(log.entries()) == 2
    result = verify([box], settings(home), jsonl=out, resume=True)
    assert result.resumed == 3 and result.audit_recovered == 1
    with AuditLog(home.audit_path) as log:
        entries = log.entries()
        assert sorted(Path(e.file).name for e in entries) == ["a.png", "b.png", "c.png"]
        assert log.verify().intact and result.audit_head == log.head() == (3, log.verify().head)
    again = verify([box], settings(home), jsonl=out, resume=True)  # nothing lost now: nothing added
    assert again.audit_recovered == 0


def test_the_run_states_worker_memory_and_the_audit_head(home, tmp_path, png):
    box = tmp_path / "in"
    box.mkdir()
    (box / "a.png").write_bytes(png.read_bytes())
    report = tmp_path / "r.html"
    result = run("verify", box, "--jsonl", tmp_path / "v.jsonl", "--report", report, "--json")
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert len(summary["worker_peak_mb"]) == 1 and summary["worker_peak_mb"][0] > 50
    assert summary["worker_memory_bound_mb"] > summary["worker_peak_mb"][0]
    assert summary["audit_head"]["entry"] == 1 and len(summary["audit_head"]["sha256"]) == 64
    page = report.read_text()
    assert f"peak memory per worker: {summary['worker_peak_mb'][0]} MB" in page
    assert summary["audit_head"]["sha256"] in page


def test_a_resume_with_other_resolvers_is_refused(home, tmp_path, pair):
    box = pair
    out = tmp_path / "v.jsonl"
    verify([box], settings(home), jsonl=out, audit=False)
    lines = out.read_bytes().splitlines(keepends=True)
    assert b'"resolvers"' not in lines[0]  # a run without --resolver writes lines as before
    out.write_bytes(lines[0])
    with pytest.raises(InputError, match="--resolver list"):
        verify([box], settings(home, resolvers=("http://127.0.0.1:9/",)), jsonl=out, resume=True, audit=False)
    # The same resolvers, spelled otherwise (a trailing slash), resume.
    with_resolver = tmp_path / "r.jsonl"
    verify([box / "a.png"], settings(home, resolvers=("http://127.0.0.1:9",)), jsonl=with_resolver, audit=False)
    assert json.loads(with_resolver.read_text())["resolvers"] == "http://127.0.0.1:9"
    assert verify([box / "a.png"], settings(home, resolvers=("http://127.0.0.1:9/",)), jsonl=with_resolver,
                  resume=True, audit=False).resumed == 1
