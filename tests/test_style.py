"""The habits the project checks mechanically: ruff's rules (configured in pyproject.toml) hold everywhere."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ruff_is_clean():
    # ruff comes with the test extra; a missing ruff fails here rather than skipping the check.
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_module_is_too_long():
    limits = {"cli": 400}
    too_long = []
    for path in sorted((REPO / "synthguard").rglob("*.py")):
        limit = limits.get(path.relative_to(REPO / "synthguard").parts[0], 800)
        lines = path.read_text().count("\n")
        if lines > limit:
            too_long.append(f"{path.relative_to(REPO)}: {lines} lines (limit {limit})")
    assert too_long == []
