"""``synthguard bench audio-watermark``: registered under ``bench``, a tiny real run as JSON, its help."""

from __future__ import annotations

import json

from click.testing import CliRunner
from helpers.audio import require_tool

from synthguard.cli.bench import bench


def test_help_names_the_options():
    out = CliRunner().invoke(bench, ["audio-watermark", "--help"])
    assert out.exit_code == 0
    for option in ("-n", "--unmarked", "--attack", "--json"):
        assert option in out.output


def test_a_tiny_run_prints_json():
    require_tool("espeak-ng")
    out = CliRunner().invoke(bench, ["audio-watermark", "-n", "2", "--unmarked", "0", "--attack", "none", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output[out.output.index("{"):])
    assert {r["method"] for r in data["rows"]} == {"io.synthguard.bandmark.1", "peer.dsss.1"}
    assert "own implementation" in data["peer_note"]


def test_an_unknown_attack_is_a_usage_error():
    out = CliRunner().invoke(bench, ["audio-watermark", "-n", "1", "--unmarked", "0", "--attack", "nope"])
    assert out.exit_code != 0 and "unknown audio attack" in str(out.exception or out.output)
