"""The text-memory benchmark: deterministic texts of the asked size, and a measured `detect` process per size."""

from __future__ import annotations

import pytest

from synthguard.bench.text_memory_bench import MIB, render, run, write_text
from synthguard.errors import InputError


def test_texts_are_seeded_utf8_of_the_asked_size(tmp_path):
    a, b, c = tmp_path / "a.txt", tmp_path / "b.txt", tmp_path / "c.txt"
    size = write_text(a, 100_003, seed=7)
    write_text(b, 100_003, seed=7)
    write_text(c, 100_003, seed=8)
    data = a.read_bytes()
    assert size == len(data) and 100_000 <= size <= 100_003  # a character cut at the end is left out
    assert data == b.read_bytes() and data != c.read_bytes()
    text = data.decode("utf-8")
    assert len(text) < len(data) and "  " in text and "\n" in text
    with pytest.raises(InputError):
        write_text(a, 0)


def test_each_size_is_measured_in_its_own_detect_process(monkeypatch):
    monkeypatch.delenv("SYNTHGUARD_HOME", raising=False)
    result = run((0.2,), scorer=None, startup=False, log=lambda _: None)
    (row,) = result["rows"]
    assert row["exit_status"] == 0 and row["verdict"] == "unknown"
    assert abs(row["text_bytes"] - 0.2 * MIB) <= 3
    # The watermark test ran, on the whole text.
    assert row["tokens_tested"] > 50_000 and "not tested" not in (row["note"] or "")
    assert 50 < row["peak_rss_mb"] < 4000 and row["seconds"] > 0 and row["cpu_seconds"] > 0
    assert row["rss_ratio"] == 1.0 and result["startup"] is None
    assert "0.2 MB" in render(result)
    with pytest.raises(InputError):
        run((0.0,))
