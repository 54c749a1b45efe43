"""The windowed search finds and locates a marked passage pasted into unmarked text, and finds none in clean text."""

from __future__ import annotations

from synthguard.generate.sampling import generate_text
from synthguard.watermark.text import make_watermarker
from synthguard.watermark.text.windows import detect_windows


def test_windowed_search_finds_and_locates_a_marked_passage(tm):
    wm = make_watermarker("synthid", b"identity secret of the tests")
    marked = generate_text(tm, ["The river"], max_new_tokens=80, seed=5, watermarker=wm)[0].token_ids
    plain = [s.token_ids for s in generate_text(tm, ["A council"] * 2, max_new_tokens=250, seed=6)]
    ids = plain[0] + marked + plain[1]
    offsets = [(i, i + 1) for i in range(len(ids))]  # one "character" per token
    r = detect_windows(wm, ids, offsets)
    assert r.detected and r.windows_tested > 2
    start = len(plain[0])
    assert r.span[0] < start + len(marked) and r.span[1] > start
    assert r.span[1] - r.span[0] < len(ids) / 2  # the window, not the whole document
    clean = plain[0] + plain[1]
    assert not detect_windows(wm, clean, None).detected
