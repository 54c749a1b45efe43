"""Start-up cost: inspecting an image (``synthguard detect``, ``inspect_file``) and ``synthguard --help`` import no
torch, transformers or diffusers; a signal that needs them imports them when it runs (timings: the issue's report,
not asserted here).

Each check runs in a fresh interpreter (this one has long imported everything), on a PNG made on the spot and on a
signed C2PA sample of tests/fixtures.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.files import INTEROP
from PIL import Image

from synthguard.core.samples import procedural_image

HEAVY = ("torch", "transformers", "diffusers")

# Runs the CLI (or a Python call) in-process, then prints which of HEAVY were imported, as JSON on the last line.
SCRIPT = """
import json, runpy, sys
mode, args = sys.argv[1], sys.argv[2:]
if mode == "cli":
    sys.argv = ["synthguard", *args]
    try:
        runpy.run_module("synthguard.cli", run_name="__main__")
    except SystemExit as exc:
        code = exc.code
    else:
        code = 0
elif mode == "inspect":
    from pathlib import Path
    from synthguard.core.home import Home
    from synthguard.detect import InspectionContext, inspect_file
    with InspectionContext.build(Home.from_env()) as context:
        for name in args:
            print(inspect_file(Path(name), context).verdict.label.value)
    code = 0
else:
    import importlib
    importlib.import_module(args[0])
    code = 0
print(json.dumps({"code": code, "loaded": [m for m in HEAVY if m in sys.modules]}))
""".replace("HEAVY", repr(HEAVY))


def heavy_modules_after(mode: str, *args: str) -> tuple[dict, str]:
    done = subprocess.run([sys.executable, "-c", SCRIPT, mode, *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    *output, last = done.stdout.strip().splitlines()
    return json.loads(last), "\n".join(output)


@pytest.fixture
def images(tmp_path, identity) -> list[str]:
    """An unsigned PNG and a signed C2PA sample, inspected under a home with an identity and a ledger."""
    png = tmp_path / "photo.png"
    Image.fromarray(procedural_image(320, 256, seed=5)).save(png)
    return [str(png), str(INTEROP / "C.jpg")]


def test_detect_inspects_images_without_torch_transformers_or_diffusers(images):
    result, output = heavy_modules_after("cli", "detect", "--json", *images)
    assert result["code"] == 0
    lines = [json.loads(line) for line in output.splitlines()]
    assert [Path(line["file"]).name for line in lines] == ["photo.png", "C.jpg"]
    # Every image signal ran: the classifier scored both images (the numpy runtime), the watermark was tested.
    assert all(line["classifier"]["probability"] is not None and line["watermark"] is not None for line in lines)
    assert lines[1]["provenance"]["present"] is True
    assert result["loaded"] == []


def test_inspect_file_needs_no_torch_for_images(images):
    result, output = heavy_modules_after("inspect", *images)
    assert len(output.splitlines()) == 2
    assert result["loaded"] == []


def test_help_imports_none_of_them():
    result, output = heavy_modules_after("cli", "--help")
    assert result["code"] == 0 and "detect" in output
    assert result["loaded"] == []


def test_the_check_sees_torch_when_it_is_imported():
    """The torch modules of the detector import torch (and diffusers): the check above can fail."""
    result, _ = heavy_modules_after("import", "synthguard.models.detector_nets")
    assert {"torch", "diffusers"} <= set(result["loaded"])
