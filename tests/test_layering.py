"""The dependency rule of ARCHITECTURE.md, checked by walking every module's imports with ``ast``.

Imports under ``if TYPE_CHECKING:`` are annotations only and do not count. Function-local imports count: a lazy
import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "synthguard"

# layer -> the layers it may import (besides itself, ``synthguard.errors`` and ``synthguard`` for __version__).
LOWER = {
    "core": set(),
    "provenance": {"core"},
    "watermark": {"core"},
    "models": {"core"},
    "policy": {"core", "provenance.manifest", "provenance.trustlist"},
    "stamp": {"core", "provenance", "watermark", "models"},
    "generate": {"core", "provenance", "watermark", "models", "stamp"},
    "detect": {"core", "provenance", "watermark", "models"},
    "desk": {"core", "provenance", "watermark", "models", "detect", "policy"},
    "demo": {"core", "provenance", "watermark", "models", "stamp", "detect", "policy"},
    "training": {"core", "provenance", "watermark", "models", "stamp", "generate", "detect", "policy"},
    "bench": {"core", "provenance", "watermark", "models", "stamp", "generate", "detect", "policy", "desk",
              "training"},
    "cli": {"core", "provenance", "watermark", "models", "stamp", "generate", "detect", "policy", "desk", "demo",
            "training", "bench", "api"},
    "api": set(),  # synthguard/__init__.py: the public API, loaded lazily by name (no import statements)
}
# Single modules allowed past their layer's rule: the policy applied to signals.
EXTRA = {"detect.rules": {"policy"}}
ALWAYS = {"errors", ""}


def _layer_of(module: str) -> str:
    parts = module.split(".")
    if parts == ["__init__"]:
        return "api"
    return parts[0]


def _allowed(module: str, target: str) -> bool:
    """May ``synthguard.<module>`` import ``synthguard.<target>``?"""
    layer, dest = _layer_of(module), target.split(".")[0]
    if target in ALWAYS or dest == layer:
        return True
    allowed = LOWER[layer] | EXTRA.get(module, set())
    return any(target == a or target.startswith(a + ".") or dest == a for a in allowed)


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def internal_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module below synthguard) of every import of SynthGuard code in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    skip = _type_checking_lines(tree)
    found = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "synthguard":
                found += [(node.lineno, alias.name) for alias in node.names if alias.name != "__version__"]
            elif node.module.startswith("synthguard."):
                found.append((node.lineno, node.module.removeprefix("synthguard.")))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name.removeprefix("synthguard.")) for a in node.names
                      if a.name.startswith("synthguard.")]
    return found


def violations(package: Path = PACKAGE) -> list[str]:
    out = []
    for path in sorted(package.rglob("*.py")):
        module = ".".join(path.relative_to(package).with_suffix("").parts)
        module = module.removesuffix(".__init__") if module != "__init__" else module
        for line, target in internal_imports(path):
            if not _allowed(module, target):
                out.append(f"synthguard/{path.relative_to(package)}:{line}: {module} may not import {target}")
    return out


def test_every_import_follows_the_dependency_rule():
    assert violations() == []


def test_the_rule_catches_a_wrong_import(tmp_path):
    # A copy of two real layers with one forbidden import added: the check must name it.
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "media.py").write_text("from synthguard.detect.fusion import decide\n")
    (tmp_path / "policy.py").write_text("from synthguard.detect import inspect_file\n")
    found = violations(tmp_path)
    assert found == ["synthguard/core/media.py:1: core.media may not import detect.fusion",
                     "synthguard/policy.py:1: policy may not import detect"]


@pytest.mark.parametrize(("module", "target", "ok"), [
    ("detect.rules", "policy", True), ("detect.fusion", "policy", False), ("desk.batch", "detect.context", True),
    ("models.detector", "generate.base", False), ("generate.runs", "stamp", True), ("stamp", "generate", False),
    ("cli.detect", "training.detector", True), ("detect.signals", "training.detector", False),
])
def test_rule_table(module, target, ok):
    assert _allowed(module, target) is ok
