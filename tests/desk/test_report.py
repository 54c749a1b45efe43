"""HTML reports: every section, escaped strings, pictures inlined, written atomically; and `detect --report`."""

from __future__ import annotations

import html
import json

import numpy as np
from click.testing import CliRunner
from PIL import Image

from synthguard.cli import main
from synthguard.core.media import file_sha256
from synthguard.core.samples import procedural_image
from synthguard.desk.report import heatmap_overlay, render_html, write_report
from synthguard.detect import InspectionContext, inspect_file
from synthguard.detect.signals import watermark_from_dict


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_heatmap_overlay_covers_the_image():
    image = procedural_image(120, 90, seed=1)
    h, w = image.shape[:2]
    out = heatmap_overlay(image, np.array([[0.0, 1.0], [0.5, 0.2]]))
    assert out.shape == (h, w, 3) and out.dtype == np.uint8
    # the high-probability quadrant is redder than the low one
    assert out[: h // 2, w // 2 :, 0].mean() > out[: h // 2, : w // 2, 0].mean()


def test_report_escapes_hostile_names_and_lists_errors(home, tmp_path):
    hostile = tmp_path / "<script>alert(1)<\\script>.png"
    Image.fromarray(procedural_image(96, 96, seed=2)).save(hostile)
    inspection = inspect_file(hostile, InspectionContext.build(home, threads=1), keep_pixels=True)
    page = render_html([inspection], [("bad<b>.png", "not an image")])
    assert "<script>alert(1)" not in page and "&lt;script&gt;" in page
    assert "bad&lt;b&gt;.png" in page
    for caption in ("classifier heatmap", "spectrum", "noise residual", "error level"):
        assert caption in page
    assert page.count("data:image/png;base64,") == 5
    out = tmp_path / "r.html"
    write_report(out, [inspection])
    assert out.read_text().startswith("<!doctype html>")


def test_detect_report_and_json_fields(home, tmp_path):
    photo = tmp_path / "photo.png"
    Image.fromarray(procedural_image(128, 160, seed=3)).save(photo)
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(photo.read_bytes()[:200])
    before = file_sha256(photo)
    report = tmp_path / "report.html"
    result = run("detect", photo, corrupt, "--json", "--report", report)
    assert result.exit_code == 2  # the corrupt file is an error, the other is still inspected and reported
    first, second = (json.loads(line) for line in result.stdout.strip().splitlines())
    assert first["classifier"]["probability"] is not None and first["classifier"]["heatmap"]
    assert "confidence" in first["verdict"] and "error" in second
    page = report.read_text()
    assert "photo.png" in page and "corrupt.png" in page and "Unreadable files" in page
    assert file_sha256(photo) == before
    # the report may not replace an input
    refused = run("detect", photo, "--report", photo)
    assert refused.exit_code == 2 and "input" in refused.stderr
    assert file_sha256(photo) == before


def test_text_watermark_section_names_scheme_key_tokens_and_span(home, tmp_path):
    """A text generated and stamped by the built-in text backend, and a document quoting it: the report says which
    scheme found the mark, with which key, on how many tokens, and where."""
    story = tmp_path / "story.txt"
    made = run("generate", "--backend", "text", "--prompt", "ROMEO:", "--max-new-tokens", "80", "--seed", "3",
               "--threads", "1", "-o", story, "--json")
    assert made.exit_code == 0, made.output
    stamped = json.loads(made.output.splitlines()[-1])["outputs"][0]["watermark"]
    human = "It was the best of times, it was the worst of times, it was the age of wisdom. " * 12
    article = tmp_path / "article.txt"
    article.write_text(human + "\n" + story.read_text() + "\n" + human)
    report = tmp_path / "r.html"
    result = run("detect", story, article, "--json", "--threads", "1", "--report", report)
    assert result.exit_code == 0, result.output
    page = report.read_text()
    assert "payload None" not in page
    for data in map(json.loads, result.stdout.strip().splitlines()):
        signal = watermark_from_dict(data["watermark"])
        assert signal.detected and signal.key_id == stamped["key_id"]
        line = html.escape(signal.describe()[0])
        assert page.count(line) == 1  # in the section's evidence, not repeated among its reasons
        for fact in (signal.algorithm, f"key {stamped['key_id']}",
                     f"{signal.tokens_scored} of {signal.tokens} tokens scored"):
            assert fact in line
    start = len(human) + 1
    assert signal.span[0] < start + len(story.read_text()) and signal.span[1] > start  # the article's passage
    assert f"characters {signal.span[0]}-{signal.span[1]}" in page


def test_detect_without_classifier_and_policy_threshold(home, tmp_path):
    photo = tmp_path / "photo.png"
    Image.fromarray(procedural_image(128, 128, seed=4)).save(photo)
    off = json.loads(run("detect", photo, "--json", "--no-classifier").stdout)
    assert off["classifier"] is None
    policy = tmp_path / "strict.yaml"
    policy.write_text("version: 1\ndetection:\n  classifier_threshold: 0.000001\n")
    flagged = json.loads(run("detect", photo, "--json", "--policy", policy).stdout)
    assert flagged["classifier"]["threshold"] == 1e-6 and flagged["classifier"]["threshold_fpr"] is None
    assert flagged["verdict"]["label"] == "likely-synthetic"
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\ndetection:\n  classifier_threshold: 2\n")
    result = run("detect", photo, "--policy", bad)
    assert result.exit_code == 2 and "classifier_threshold" in result.stderr


def test_train_detector_command_and_detect_with_it(home, tmp_path):
    real, fake = tmp_path / "real", tmp_path / "gan"
    real.mkdir()
    fake.mkdir()
    for i in range(5):
        Image.fromarray(procedural_image(64, 64, seed=i)).save(real / f"{i}.png")
        Image.fromarray(np.full((64, 64), 90 + 5 * i, np.uint8)).save(fake / f"{i}.png")
    (fake / "notes.txt").write_text("not an image")  # skipped: not an image
    out = tmp_path / "det"
    result = run("train", "detector", "--real", real, "--fake", fake, "-o", out, "--steps", "3",
                 "--global-epochs", "1", "--threads", "1")
    assert result.exit_code == 0, result.output
    assert "measured FPR" in result.stdout
    assert {"patch", "global", "calibration.json", "training.json"} <= {p.name for p in out.iterdir()}
    detected = json.loads(run("detect", real / "0.png", "--json", "--detector", out).stdout)
    assert detected["classifier"]["model"] == str(out)
    again = run("train", "detector", "--real", real, "--fake", fake, "-o", out)
    assert again.exit_code == 2 and "not empty" in again.stderr
    few = tmp_path / "few"
    few.mkdir()
    Image.fromarray(procedural_image(64, 64, seed=9)).save(few / "0.png")
    result = run("train", "detector", "--real", few, "--fake", fake, "-o", tmp_path / "det2")
    assert result.exit_code == 2 and "at least 2" in result.stderr


def test_unstamped_gan_output_is_likely_synthetic_and_a_real_photo_unknown(home, tmp_path):
    """The issue's check: a GAN output without manifest or watermark, and a real photograph, through `detect`."""
    from synthguard.generate.backends import builtin_generator

    data = __import__("pytest").importorskip("skimage.data")
    gan = tmp_path / "gan.png"
    Image.fromarray(builtin_generator("gan", num_threads=1).generate(1, 4_000_000, device="cpu").images[0]).save(gan)
    photo = tmp_path / "photo.png"
    Image.fromarray(data.astronaut()).save(photo)
    report = tmp_path / "r.html"
    result = run("detect", gan, photo, "--json", "--report", report)
    assert result.exit_code == 0
    fake, real = (json.loads(line) for line in result.stdout.strip().splitlines())
    assert fake["verdict"]["label"] == "likely-synthetic" and fake["watermark"]["detected"] is False
    assert fake["verdict"]["confidence"] == fake["classifier"]["probability"]
    assert real["verdict"]["label"] == "unknown"
    page = report.read_text()
    assert page.count("<figcaption>classifier heatmap</figcaption>") == 2 and "likely-synthetic" in page


def test_the_provenance_chain_table_names_each_manifests_signer_trust_time_stamp_and_validation(home):
    from helpers.files import INTEROP

    from synthguard.desk.batch import VerifyLine
    from synthguard.desk.report import ReportEntry, section_html

    context = InspectionContext.build(home, classifier=False, watermark=False)
    inspection = inspect_file(INTEROP / "CACAE-uri-CA.jpg", context)
    entry = ReportEntry.of_inspection(inspection)
    assert [link["active"] for link in entry.chain] == [True, False, False]
    page = section_html(entry)
    assert page.count("<tr>") == 4 and "DigiCert Timestamp 2023: untrusted" in page
    assert "none of your roots" in page and "trust (signingCredential.untrusted)" in page
    # A verify line read back (a resumed run's report) shows the same chain.
    line = VerifyLine.from_dict(json.loads(json.dumps({
        "file": "x.jpg", "sha256": "0" * 64, "mime": "image/jpeg", "verdict": "unknown", "confidence": None,
        "action": "human-review",
        "reasons": [], "provenance": inspection.provenance.to_dict(), "watermark": None, "classifier": None,
        "metadata": None, "error": None})))
    assert ReportEntry.of_line(line).chain == entry.chain
    assert line.provenance.details.describe() == inspection.provenance.details.describe()


def test_a_file_name_that_is_not_utf8_is_shown_escaped_in_the_report(home, tmp_path):
    import os

    name = os.fsdecode(b"caf\xe9.png")
    path = tmp_path / name
    Image.fromarray(procedural_image(96, 96, seed=3)).save(path)
    inspection = inspect_file(path, InspectionContext.build(home, classifier=False))
    out = tmp_path / "r.html"
    write_report(out, [inspection])
    assert "caf\\xe9.png" in out.read_text(encoding="utf-8")
