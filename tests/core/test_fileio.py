"""Outputs that would clobber an input are refused, also through links; a link loop is an input error, never a
traceback (through the CLI too)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from synthguard.cli import main
from synthguard.core.fileio import check_output_path
from synthguard.errors import InputError


def test_an_output_that_is_the_input_through_a_link_is_refused(tmp_path):
    src = tmp_path / "a.png"
    src.write_bytes(b"x")
    (tmp_path / "link.png").symlink_to(src)
    with pytest.raises(InputError, match="is the input file"):
        check_output_path(tmp_path / "link.png", inputs=(src,), overwrite=True)


def test_a_symbolic_link_loop_is_an_input_error(tmp_path):
    (tmp_path / "a.png").symlink_to(tmp_path / "b.png")
    (tmp_path / "b.png").symlink_to(tmp_path / "a.png")
    with pytest.raises(InputError, match="symbolic link loop"):
        check_output_path(tmp_path / "out.png", inputs=(tmp_path / "a.png",))
    result = CliRunner().invoke(main, ["sign", str(tmp_path / "a.png"), "-o", str(tmp_path / "out.png")])
    assert result.exit_code == 2 and "symbolic link loop" in result.output and "internal error" not in result.output
