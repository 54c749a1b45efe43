"""Batch verification: walk order, actions under a policy, identical results with 1 or 2 workers, resume after an
interruption, refusals, the grouped report and the audit trail."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers.files import INTEROP, REPO
from PIL import Image

import synthguard
from synthguard.cli import main
from synthguard.desk.audit import AuditLog
from synthguard.desk.batch import VerifyLine, VerifySettings, verify, walk
from synthguard.detect import VerdictLabel
from synthguard.errors import Hint, InputError
from synthguard.policy import DeskAction, load_policy

LABEL_AI, PUBLISH, HUMAN_REVIEW = DeskAction.LABEL_AI, DeskAction.PUBLISH, DeskAction.HUMAN_REVIEW


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def inbox(home, tmp_path, png):
    box = tmp_path / "inbox"
    (box / "sub").mkdir(parents=True)
    assert run("sign", png, "-o", box / "signed-ai.png", "--ai").exit_code == 0  # watermark + trainedAlgorithmicMedia
    assert run("sign", png, "-o", box / "sub" / "capture.png", "--source-type", "digitalCapture",
               "--no-watermark").exit_code == 0
    Image.open(box / "signed-ai.png").convert("RGB").save(box / "stripped-reencoded.jpg", quality=85)
    (box / "corrupt.png").write_bytes((box / "signed-ai.png").read_bytes()[:400])
    (box / "notes.txt").write_text("A reporter's note, written by a person.\n")
    (box / "interop.jpg").write_bytes((INTEROP / "C.jpg").read_bytes())
    (box / ".hidden.png").write_bytes(b"ignored")
    return box


def settings(home, name="newsroom-default.yaml", **kw):
    return VerifySettings(policy=load_policy(REPO / "policies" / name), home=home.root, **kw)


def test_walk_is_sorted_skips_hidden_and_sidecars_and_keeps_missing(inbox, tmp_path):
    (inbox / "notes.txt.c2pa").write_bytes(b"x")
    files = walk([inbox, tmp_path / "missing.png", inbox / "notes.txt"])
    names = [p.relative_to(inbox).as_posix() if p.is_relative_to(inbox) else p.name for p in files]
    assert names == ["corrupt.png", "interop.jpg", "notes.txt", "signed-ai.png", "stripped-reencoded.jpg",
                     "sub/capture.png", "missing.png"]


def test_actions_under_newsroom_default(home, inbox, tmp_path):
    result = verify([inbox, tmp_path / "missing.png"], settings(home))
    by = {Path(line.file).name: line for line in result.lines}
    assert by["signed-ai.png"].verdict is VerdictLabel.AI_GENERATED and by["signed-ai.png"].action is LABEL_AI
    # A capture claimed by this machine's own key: the newsroom names no capture source, so the claim settles
    # nothing and the classifier speaks (the procedural picture scores as synthetic).
    assert by["capture.png"].verdict is VerdictLabel.LIKELY_SYNTHETIC and by["capture.png"].action is HUMAN_REVIEW
    # stripped and re-encoded: the watermark leads back to the manifest of the original; its AI bit declares AI
    assert by["stripped-reencoded.jpg"].verdict is VerdictLabel.AI_DECLARED
    assert by["stripped-reencoded.jpg"].action is LABEL_AI
    assert by["interop.jpg"].action is HUMAN_REVIEW  # a valid manifest from an untrusted signer
    assert by["notes.txt"].action is HUMAN_REVIEW and by["notes.txt"].mime.startswith("text/")
    for name in ("corrupt.png", "missing.png"):
        assert by[name].error and by[name].action is DeskAction.REJECT and by[name].verdict is None
    assert result.errors == 2 and result.counts == {"label-ai": 2, "human-review": 3, "reject": 2}
    strict = {Path(line.file).name: line.action for line in verify([inbox], settings(home, "newsroom-strict.yaml"),
                                                                   audit=False).lines}
    assert strict["signed-ai.png"] is DeskAction.REJECT and strict["capture.png"] is DeskAction.REJECT
    assert strict["stripped-reencoded.jpg"] is HUMAN_REVIEW  # an unsigned declaration alone is never rejected


def test_a_line_reads_back_to_the_same_text(home, inbox, tmp_path):
    out = tmp_path / "v.jsonl"
    result = verify([inbox, tmp_path / "missing.png"], settings(home), jsonl=out, audit=False)
    raw = out.read_text().splitlines()
    assert [line.to_json() for line in result.lines] == raw
    for text in raw:
        data = json.loads(text)
        assert VerifyLine.from_dict(data).to_dict() == data
        assert data["detector"] == "builtin" and data["tool_version"] == synthguard.__version__
        assert data["policy_sha256"] == load_policy(REPO / "policies" / "newsroom-default.yaml").sha256
        keys = {"file", "sha256", "mime", "verdict", "confidence", "action", "reasons", "error", "policy_sha256",
                "detector", "tool_version"}
        signals = {"provenance", "watermark", "classifier", "metadata", "sd_marks"}
        assert set(data) == (keys if data["error"] else keys | signals)
    notes = next(json.loads(t) for t in raw if t.find("notes.txt") > 0)
    assert notes["watermark"]["details"]["kind"] == "text" and not notes["watermark"]["detected"]
    assert notes["classifier"] is None


def test_same_lines_with_one_or_two_workers(home, inbox, tmp_path, monkeypatch):
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    # The private copies go to this run's own temporary folder (the workers read TMPDIR when they start), so what
    # is left there afterwards is what the run left behind.
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    verify([inbox], settings(home), jsonl=one, workers=1, audit=False)
    verify([inbox], settings(home), jsonl=two, workers=2, audit=False)
    assert one.read_bytes() == two.read_bytes() and one.read_bytes().count(b"\n") == 6
    assert not [p for p in scratch.iterdir() if p.name.startswith("synthguard-verify-")]


def test_interrupted_run_resumes_to_the_same_file(home, inbox, tmp_path):
    full = tmp_path / "full.jsonl"
    verify([inbox], settings(home), jsonl=full, audit=False)
    lines = full.read_bytes().splitlines(keepends=True)
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(b"".join(lines[:3]) + lines[3][:25])  # killed while writing the fourth line
    result = verify([inbox], settings(home), jsonl=cut, resume=True)
    assert result.resumed == 3 and cut.read_bytes() == full.read_bytes()
    assert result.audit_recovered == 3  # the kept lines had no audit entry (that run did not audit): now they do
    with AuditLog(home.audit_path) as log:
        assert len(log.entries()) == len(lines)
        assert sorted(e.file for e in log.entries()) == sorted(json.loads(t)["file"] for t in lines)


def test_existing_output_is_refused_without_resume_or_force(home, inbox, tmp_path):
    out = tmp_path / "o.jsonl"
    out.write_text("{}\n")
    with pytest.raises(InputError, match="exists") as exc:
        verify([inbox], settings(home), jsonl=out)
    assert exc.value.hint is Hint.RESUME_OR_OVERWRITE
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    with pytest.raises(InputError, match="not JSON"):
        verify([inbox], settings(home), jsonl=bad, resume=True)


def test_cli_verify_report_and_audit(home, inbox, tmp_path):
    out, report = tmp_path / "v.jsonl", tmp_path / "v.html"
    result = run("verify", inbox, "--policy", REPO / "policies" / "newsroom-default.yaml", "--jsonl", out,
                 "--report", report, "--json")
    assert result.exit_code == 2  # the corrupt file is an error (listed, not dropped)
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["files"] == 6 and summary["errors"] == 1 and summary["actions"]["label-ai"] == 2
    page = report.read_text()
    assert "desk action: label-ai" in page and "action: reject (1)" in page and "corrupt.png" in page
    assert page.count("<section>") == 6
    shown = run("audit", "show", "--json")
    entries = [json.loads(line) for line in shown.stdout.strip().splitlines()]
    assert len(entries) == 6 and {e["kind"] for e in entries} == {"verification"}
    assert all(e["policy"] == "newsroom-default" and e["tool_version"] for e in entries)


def test_check_bytes_gives_the_line_check_gives(home, inbox, tmp_path):
    from synthguard.desk.batch import Verifier

    (inbox / "sub" / "capture.png.c2pa").write_bytes(b"not a manifest")  # a sidecar beside it is read with it
    verifier = Verifier(settings(home))
    try:
        for path in walk([inbox]):
            assert verifier.check_bytes(path, path.read_bytes()) == verifier.check(path), path
        signed = inbox / "signed-ai.png"
        moved = tmp_path / "elsewhere.png"  # bytes and manifest given, nothing read from beside the path
        line = verifier.check_bytes(moved, signed.read_bytes(), b"")
        assert line.file == str(moved) and line.sha256 == verifier.check(signed).sha256
    finally:
        verifier.close()


def test_engine_and_workers_are_validated(home, inbox):
    with pytest.raises(InputError, match="engine 'spark'"):
        verify([inbox], settings(home), engine="spark")
    with pytest.raises(InputError, match="Ray engine only"):
        verify([inbox], settings(home), address="auto")
    with pytest.raises(InputError, match="workers must be"):
        verify([inbox], settings(home), workers=0)
